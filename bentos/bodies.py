"""The request bodies the API's POST routes take: JSON, sent as JSON, of a bounded size.

BentoML parses a POST body as JSON whatever its Content-Type says (``text/plain``, a misspelt
``application/jso``, ``charset=nope``: all answered 200), crashes on ``multipart/form-data``
(a 500) and reads a body of any size. The edge (``bentos.edge``) calls :func:`read_json_body`
before BentoML sees a request: a body over the configured size gets a 413, a body sent as
anything but ``application/json`` (optionally ``; charset=utf-8``: JSON is UTF-8) a 415, both
in the API's error envelope. A request without a body needs no Content-Type (the warm-up
route's fields all have defaults). The body is read here, at most ``limit`` bytes of it, and
replayed to BentoML.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bentos.schemas import ApiErrorBody

JSON_MEDIA_TYPE = "application/json"
_UTF8 = frozenset({"utf-8", "utf8"})

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]


@dataclass(frozen=True)
class BodyRefusal:
    """A request body refused before parsing: its status (413 or 415) and error body."""

    status: int
    body: dict[str, Any]


def media_type_problem(content_types: list[str], has_body: bool) -> str | None:
    """Why a request's Content-Type header(s) cannot carry a JSON body; None when they can.

    Args:
        content_types: The request's Content-Type header values (usually zero or one).
        has_body: Whether the request has a non-empty body.
    """
    if not content_types:
        return f"missing Content-Type: send '{JSON_MEDIA_TYPE}'" if has_body else None
    if len(content_types) > 1:
        return "more than one Content-Type header"
    media, *parameters = (part.strip() for part in content_types[0].split(";"))
    if media.lower() != JSON_MEDIA_TYPE:
        return f"unsupported Content-Type {media!r}: send '{JSON_MEDIA_TYPE}'"
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in _UTF8:
            return f"unsupported Content-Type parameter {parameter!r}: JSON is UTF-8"
    return None


def _too_large(limit: int) -> BodyRefusal:
    body = ApiErrorBody(
        error="payload_too_large", message=f"request body over {limit} bytes", field="body"
    )
    return BodyRefusal(413, body.model_dump())


async def read_json_body(
    scope: dict[str, Any], receive: Receive, limit: int
) -> BodyRefusal | Receive:
    """Read a POST request's body and check it is JSON of at most ``limit`` bytes.

    Returns:
        The refusal (413: too large, by Content-Length or by the bytes read; 415: not sent as
        JSON), or a ``receive`` callable replaying the body read, for the wrapped app.
    """
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    declared = [v for k, v in headers if k.lower() == b"content-length"]
    if any(value.isdigit() and int(value) > limit for value in declared):
        return _too_large(limit)  # before reading: nothing of it is buffered
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":  # the client went away: let the app see it
            break
        size += len(message.get("body", b""))
        if size > limit:
            return _too_large(limit)
        if not message.get("more_body", False):
            break
    content_types = [v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"]
    problem = media_type_problem(content_types, has_body=size > 0)
    if problem is not None:
        body = ApiErrorBody(error="unsupported_media_type", message=problem, field="Content-Type")
        return BodyRefusal(415, body.model_dump())

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay
