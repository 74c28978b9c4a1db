"""The forecast API's error answers in its OpenAPI spec, which BentoML 1.4 cannot declare.

BentoML builds ``/docs.json`` from the service's type hints and lists the same generic answers
for every route (400, 404 and 500, with its own error schemas); ``@bentoml.api`` has no way to
declare others. The edge middleware (``bentos.edge``) passes the generated spec through
:func:`document_errors`, which puts in what each route really answers: 401, 403, 404, 409, 422,
429 and 503, with the bodies of ``bentos.schemas`` (``ApiErrorBody``, ``StaleTickerBody``,
``ValidationErrorBody``) and their headers. It also marks a request body with required fields
as required: BentoML leaves every body optional, so by its spec a request without one is valid,
yet it gets a 422. Limits set at run time (a batch's ``batch_max_tickers``) go in with
:func:`limit_items`. ``bentoml build`` still writes BentoML's own spec into the bento's ``apis/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from bentos.schemas import ApiErrorBody, StaleTickerBody, ValidationErrorBody

REF_TEMPLATE = "#/components/schemas/{model}"
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_ANSWERS: dict[int, tuple[str, type[BaseModel], dict[str, Any]]] = {
    401: (
        "unauthorized: missing or invalid API key (when the replica has keys configured)",
        ApiErrorBody,
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    403: (
        "admin_key_required (a client key on an admin route), client_key_required (an admin key "
        "on a client route) or admin_local_only (an admin route through a proxy while the "
        "replica has no keys configured)",
        ApiErrorBody,
        {},
    ),
    404: (
        "unknown_ticker (with suggestions) or insufficient_history: the ticker cannot be forecast",
        ApiErrorBody,
        {},
    ),
    409: (
        "stale_ticker: the ticker's prices stop more than stale_after_sessions sessions before "
        "the lake's newest; the body gives its last date, the lake's and the gap",
        StaleTickerBody,
        {},
    ),
    422: (
        "invalid_request: names the field, the value and what was expected",
        ValidationErrorBody,
        {},
    ),
    429: ("rate_limited: too many requests for this API key", ApiErrorBody, _RETRY_AFTER),
    503: (
        "unavailable: no answer within the latency budget and no fallback answer stored; "
        "or the replica is starting",
        ApiErrorBody,
        _RETRY_AFTER,
    ),
}
_GENERIC = ("400", "404")  # BentoML's own; the edge turns 400s into 422s on these routes


def document_errors(
    spec: dict[str, Any], routes: Mapping[tuple[str, str], Iterable[int]]
) -> dict[str, Any]:
    """Add the error answers of ``routes`` to a generated spec (in place; also returned).

    A route's request body with required fields is marked required, since a request without
    one gets a 422.

    Args:
        spec: The OpenAPI document BentoML generated.
        routes: ``(method, path)`` to the statuses it answers besides 200, e.g.
            ``{("post", "/v1/forecast"): (401, 404, 422, 429, 503)}``. Statuses are keys of
            the table above; routes missing from the spec are skipped.
    """
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in {answer[1] for answer in _ANSWERS.values()}:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for (method, path), statuses in routes.items():
        operation = spec.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        _require_body(operation)
        responses = operation.setdefault("responses", {})
        for generic in _GENERIC:
            responses.pop(generic, None)
        for status in statuses:
            description, model, headers = _ANSWERS[status]
            content = {
                "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}
            }
            responses[str(status)] = {"description": description, "content": content}
            if headers:
                responses[str(status)]["headers"] = headers
    return spec


def _require_body(operation: dict[str, Any]) -> None:
    """Mark the operation's request body required when its schema has required fields."""
    body = operation.get("requestBody")
    if body is None:
        return
    if any(media.get("schema", {}).get("required") for media in body.get("content", {}).values()):
        body["required"] = True


def limit_items(spec: dict[str, Any], method: str, path: str, field: str, limit: int) -> None:
    """Lower ``maxItems`` of a request body's array ``field`` to a limit configured at run time.

    The type hints give the schema a fixed upper bound; a replica's settings may accept fewer
    items, and a longer list gets a 422, so the spec it serves states that limit.
    """
    operation = spec.get("paths", {}).get(path, {}).get(method) or {}
    for media in operation.get("requestBody", {}).get("content", {}).values():
        items = media.get("schema", {}).get("properties", {}).get(field)
        if items is not None:
            items["maxItems"] = min(items.get("maxItems", limit), limit)
