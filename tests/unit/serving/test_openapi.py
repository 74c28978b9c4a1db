"""The spec corrections of bentos.openapi: required bodies and limits set at run time."""

from __future__ import annotations

from typing import Any

from bentos.openapi import document_errors, limit_items


def generated() -> dict[str, Any]:
    """Two routes as BentoML 1.4 generates them: inline body schemas, no ``required`` body."""

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    def tickers() -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100}

    return {
        "paths": {
            "/v1/forecast/batch": {
                "post": {
                    "requestBody": body(
                        {
                            "type": "object",
                            "required": ["tickers"],
                            "properties": {"tickers": tickers()},
                        }
                    ),
                    "responses": {"200": {}},
                }
            },
            "/v1/admin/cache/warm": {
                "post": {
                    "requestBody": body({"type": "object", "properties": {"tickers": tickers()}}),
                    "responses": {"200": {}},
                }
            },
        }
    }


def batch_body(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["paths"]["/v1/forecast/batch"]["post"]["requestBody"]


def test_a_body_with_required_fields_is_required() -> None:
    # Without it, a request with no body is valid by the spec, yet the route answers 422.
    routes = {("post", "/v1/forecast/batch"): (422,), ("post", "/v1/admin/cache/warm"): (422,)}
    spec = document_errors(generated(), routes)
    assert batch_body(spec)["required"] is True
    assert "required" not in spec["paths"]["/v1/admin/cache/warm"]["post"]["requestBody"]


def test_the_configured_limit_lowers_max_items() -> None:
    spec = generated()
    limit_items(spec, "post", "/v1/forecast/batch", "tickers", 3)
    tickers = batch_body(spec)["content"]["application/json"]["schema"]["properties"]["tickers"]
    assert (tickers["minItems"], tickers["maxItems"]) == (1, 3)
    # Never above the schema's own bound (the request is validated against that too).
    limit_items(spec, "post", "/v1/forecast/batch", "tickers", 500)
    assert tickers["maxItems"] == 3
    warm = spec["paths"]["/v1/admin/cache/warm"]["post"]["requestBody"]
    assert warm["content"]["application/json"]["schema"]["properties"]["tickers"]["maxItems"] == 100


def test_limits_of_absent_routes_and_fields_are_skipped() -> None:
    spec = generated()
    limit_items(spec, "post", "/v1/absent", "tickers", 3)
    limit_items(spec, "post", "/v1/forecast/batch", "absent", 3)
    assert spec == generated()
