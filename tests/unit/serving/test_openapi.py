"""The spec corrections of bentos.openapi: required bodies and limits set at run time."""

from __future__ import annotations

from typing import Any

from bentos.openapi import Link, document_errors, document_links, document_security, limit_items


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


def test_a_field_defaulting_to_null_may_be_sent_as_null() -> None:
    # Found by schemathesis' coverage phase: the warm-up route takes tickers: null (the most
    # requested ones), but BentoML's schema dropped the null.
    spec = generated()
    warm = spec["paths"]["/v1/admin/cache/warm"]["post"]["requestBody"]["content"]
    warm["application/json"]["schema"]["properties"]["tickers"]["default"] = None
    document_errors(spec, {("post", "/v1/admin/cache/warm"): (422,)})
    assert warm["application/json"]["schema"]["properties"]["tickers"]["nullable"] is True
    tickers = batch_body(spec)["content"]["application/json"]["schema"]["properties"]["tickers"]
    assert "nullable" not in tickers


def test_links_point_at_their_target_operation() -> None:
    body = {"tickers": ["$response.body#/ticker"]}
    links = {
        ("post", "/v1/forecast/batch"): {"Warm": Link(("post", "/v1/admin/cache/warm"), body=body)}
    }
    spec = document_links(generated(), links | {("get", "/v1/absent"): {}})
    link = spec["paths"]["/v1/forecast/batch"]["post"]["responses"]["200"]["links"]["Warm"]
    assert link == {"operationRef": "#/paths/~1v1~1admin~1cache~1warm/post", "requestBody": body}


def test_keyed_routes_declare_both_ways_to_send_the_key() -> None:
    spec = document_security(generated(), [("post", "/v1/forecast/batch"), ("get", "/v1/absent")])
    assert spec["paths"]["/v1/forecast/batch"]["post"]["security"] == [
        {"ApiKey": []},
        {"Bearer": []},
    ]
    assert "security" not in spec["paths"]["/v1/admin/cache/warm"]["post"]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"]["scheme"] == "bearer"


def test_keyed_routes_answer_400_to_a_key_sent_both_ways() -> None:
    spec = document_errors(generated(), {("post", "/v1/forecast/batch"): (401,)})
    spec = document_security(spec, [("post", "/v1/forecast/batch")])
    answers = spec["paths"]["/v1/forecast/batch"]["post"]["responses"]
    assert answers["400"]["description"].startswith("invalid_request: a key sent both as")
    assert answers["400"]["content"]["application/json"]["schema"]["$ref"].endswith("ApiErrorBody")
    assert "WWW-Authenticate" in answers["400"]["headers"]
    assert "400" not in spec["paths"]["/v1/admin/cache/warm"]["post"]["responses"]  # not keyed
