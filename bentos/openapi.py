"""The forecast API's error answers in its OpenAPI spec, which BentoML 1.4 cannot declare.

BentoML builds ``/docs.json`` from the service's type hints and lists the same generic answers
for every route (400, 404 and 500, with its own error schemas); ``@bentoml.api`` has no way to
declare others. The edge middleware (``bentos.edge``) passes the generated spec through
:func:`document_errors`, which puts in what each route really answers: 401, 404, 422, 429 and
503, with the bodies of ``bentos.schemas`` (``ApiErrorBody``, ``ValidationErrorBody``) and their
headers. ``bentoml build`` still writes BentoML's own spec into the bento's ``apis/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from bentos.schemas import ApiErrorBody, ValidationErrorBody

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
    404: (
        "unknown_ticker (with suggestions) or insufficient_history: the ticker cannot be forecast",
        ApiErrorBody,
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
