"""The forecast API's error answers in its OpenAPI spec, which BentoML 1.4 cannot declare.

BentoML builds ``/docs.json`` from the service's type hints and lists the same generic answers for
every route (400, 404 and 500, with its own error schemas); ``@bentoml.api`` has no way to declare
others. The edge middleware (``bentos.edge``) passes the generated spec through
:func:`document_errors`, which puts in what each route really answers: 401, 403, 404, 409, 422,
429 and 503, with the bodies of ``bentos.schemas`` (``ApiErrorBody``, ``ConflictBody``: a
stale ticker or an unexplained jump, ``ValidationErrorBody``) and their headers. It also marks
a request body with required fields as required: BentoML leaves every body optional, so by its
spec a request without one is valid, yet it gets a 422. Limits set at run time (a batch's
``batch_max_tickers``) go in with :func:`limit_items`. ``bentoml build`` still writes BentoML's
own spec into the bento's ``apis/``.

The edge's own refusals of a POST body (413 too large, 415 not JSON: ``bentos.bodies``) are listed
too; a body field whose default is null is marked nullable (BentoML drops the null); and
:func:`document_links` adds the OpenAPI links between routes (a ticker of ``/v1/tickers`` is one
``/v1/forecast`` takes), which schema fuzzers follow to chain requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from bentos.schemas import ApiErrorBody, ConflictBody, ValidationErrorBody

REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Link:
    """An OpenAPI link from a route's 200 answer to ``target``, a ``(method, path)``.

    ``parameters`` and ``body`` map the target's query parameters (``query.ticker``) and body
    fields to runtime expressions on the answer (``$response.body#/ticker``).
    """

    target: tuple[str, str]
    parameters: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"schema": {"type": "string"}}}
_ANSWERS: dict[int, tuple[str, type[BaseModel], dict[str, Any]]] = {
    400: (
        "invalid_request: a key sent both as X-API-Key and as Authorization: Bearer, equal or "
        "not (RFC 6750 §2: one method per request); neither key is checked. Schema violations "
        "are 422",
        ApiErrorBody,
        _WWW_AUTHENTICATE,
    ),
    401: (
        "unauthorized: missing or invalid API key (when the replica has keys configured); "
        'an invalid one is challenged with error="invalid_token" (RFC 6750 §3.1)',
        ApiErrorBody,
        _WWW_AUTHENTICATE,
    ),
    403: (
        "admin_key_required (a client key on an admin route), client_key_required (an admin key "
        "on a client route) or admin_local_only (an admin route through a proxy while the "
        "replica has no keys configured)",
        ApiErrorBody,
        {},
    ),
    413: ("payload_too_large: the request body is over the replica's size limit", ApiErrorBody, {}),
    415: (
        "unsupported_media_type: a body not sent as 'Content-Type: application/json'",
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
        "the lake's newest; the body gives its last date, the lake's and the gap. Or "
        "unexplained_jump: its recent prices move like a split no corporate event explains; "
        "the body gives the date, the ratio and the likely split",
        ConflictBody,
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
# BentoML's own; the edge turns its 400s into 422s on these routes (its own 400 is listed apart)
_GENERIC = ("400", "404")


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
        _admit_null_defaults(operation)
        responses = operation.setdefault("responses", {})
        for generic in _GENERIC:
            responses.pop(generic, None)
        for status in statuses:
            responses[str(status)] = _answer(status)
    return spec


def _answer(status: int) -> dict[str, Any]:
    """The OpenAPI response object of ``status``, from the table above."""
    description, model, headers = _ANSWERS[status]
    content = {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}}
    answer: dict[str, Any] = {"description": description, "content": content}
    if headers:
        answer["headers"] = headers
    return answer


def _require_body(operation: dict[str, Any]) -> None:
    """Mark the operation's request body required when its schema has required fields."""
    body = operation.get("requestBody")
    if body is None:
        return
    if any(media.get("schema", {}).get("required") for media in body.get("content", {}).values()):
        body["required"] = True


def _admit_null_defaults(operation: dict[str, Any]) -> None:
    """Let a request body field whose default is null be sent as null.

    BentoML drops ``None`` from an optional field's type (``list[Ticker] | None = None`` becomes
    an array with ``default: null``), yet the route takes null: it means the default.
    """
    for media in operation.get("requestBody", {}).get("content", {}).values():
        for prop in media.get("schema", {}).get("properties", {}).values():
            if "default" in prop and prop["default"] is None and "type" in prop:
                prop["nullable"] = True


def document_links(
    spec: dict[str, Any], links: Mapping[tuple[str, str], Mapping[str, Link]]
) -> dict[str, Any]:
    """Add OpenAPI links to the 200 answers of ``links``' routes (in place; also returned).

    A link says which value of one answer a client can send to another route (a ticker of
    ``/v1/tickers`` to ``/v1/forecast``); schema fuzzers chain requests along them.

    Args:
        spec: The OpenAPI document.
        links: ``(method, path)`` of the source route to link name to :class:`Link`.
    """
    for (method, path), named in links.items():
        answer = spec.get("paths", {}).get(path, {}).get(method, {}).get("responses", {}).get("200")
        if answer is None:
            continue
        for name, link in named.items():
            target_method, target_path = link.target
            pointer = target_path.replace("~", "~0").replace("/", "~1")
            entry: dict[str, Any] = {"operationRef": f"#/paths/{pointer}/{target_method}"}
            if link.parameters:
                entry["parameters"] = dict(link.parameters)
            if link.body:
                entry["requestBody"] = dict(link.body)
            if link.description:
                entry["description"] = link.description
            answer.setdefault("links", {})[name] = entry
    return spec


API_KEY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "the API key as a bearer token"},
}
"""The two ways a request carries its key (``bentos.auth.api_key_from_headers``): one or the
other, never both (400)."""


def document_security(spec: dict[str, Any], routes: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Declare that ``routes`` (``(method, path)``) need an API key (in place; also returned).

    A replica with keys configured serves its spec through this: either scheme will do, not
    both (400 ``invalid_request``, added to each route's answers). Call it after
    :func:`document_errors`, which removes BentoML's generic 400.
    """
    spec.setdefault("components", {}).setdefault("securitySchemes", {}).update(API_KEY_SCHEMES)
    for method, path in routes:
        operation = spec.get("paths", {}).get(path, {}).get(method)
        if operation is not None:
            operation["security"] = [{name: []} for name in API_KEY_SCHEMES]
            operation.setdefault("responses", {})["400"] = _answer(400)
    return spec


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
