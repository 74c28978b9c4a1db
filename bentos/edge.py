"""The HTTP edge of the API, an ASGI middleware: API keys, rate limits, 422s, replica header.

It runs before BentoML parses a request body, so a request without a valid key is refused (401)
or throttled (429 + Retry-After) before any work is done; health, metrics and docs paths stay
open. BentoML answers a request body that fails validation with 400; input errors of this API
are 422 naming the field, so the edge rewrites those answers. Every response carries the
replica id, so a client (or the load test) sees which replica answered behind the balancer.
It also completes the generated OpenAPI spec with the error answers (``bentos.openapi``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bentos.auth import ApiKeyAuth, AuthStatus, api_key_from_headers

REPLICA_HEADER = "x-finsimples-replica"
PROTECTED_PREFIX = "/v1/"
SPEC_PATH = "/docs.json"  # BentoML's OpenAPI document

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


@dataclass(frozen=True)
class EdgePolicy:
    """What the edge enforces.

    Attributes:
        auth: API key check and per-key rate limit; None: auth off (local use).
        replica_id: Sent in the ``X-FinSimples-Replica`` header.
        validated_paths: POST routes whose 400 answers are validation errors to rewrite.
    """

    auth: ApiKeyAuth | None
    replica_id: str
    validated_paths: frozenset[str] = frozenset()


def _json_response(status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()):
    payload = json.dumps(body).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.encode(), v.encode()) for k, v in headers),
    ]
    return {"type": "http.response.start", "status": status, "headers": raw}, payload


def validation_body(original: bytes) -> dict[str, Any]:
    """A 422 body from BentoML's 400 body (pydantic errors under ``detail``)."""
    try:
        details = json.loads(original).get("detail") or []
    except (ValueError, AttributeError):
        details = []
    fields = []
    for error in details if isinstance(details, list) else []:
        location = [str(part) for part in error.get("loc", [])]
        fields.append(
            {
                "field": ".".join(location) or "body",
                "message": str(error.get("msg", "invalid")),
                "type": str(error.get("type", "")),
            }
        )
    first = fields[0] if fields else {"field": "body", "message": "invalid request body"}
    return {
        "error": "invalid_request",
        "message": f"{first['field']}: {first['message']}",
        "field": first["field"],
        "suggestions": [],
        "retry_after": None,
        "fields": fields,
    }


class EdgeMiddleware:
    """ASGI middleware enforcing an :class:`EdgePolicy`.

    Args:
        app: The wrapped ASGI app.
        policy: Returns the policy; called per request because the policy is built by the
            service instance, which exists only after the middleware stack (BentoML builds it
            first). Returns None while the service is starting: requests then pass unchecked
            only to paths that are open anyway, others get 503.
        openapi: Completes the OpenAPI document served at :data:`SPEC_PATH` (None: as is).
    """

    def __init__(
        self,
        app: Any,
        policy: Callable[[], EdgePolicy | None],
        openapi: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.openapi = openapi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy()
        path: str = scope.get("path", "")
        replica = (REPLICA_HEADER.encode(), (policy.replica_id if policy else "").encode())
        if path.startswith(PROTECTED_PREFIX):
            if policy is None:
                body = {"error": "starting", "message": "the service is starting"}
                await self._send(send, 503, body, [("retry-after", "1")], replica)
                return
            refused = self._check(policy, scope)
            if refused is not None:
                status, body, headers = refused
                await self._send(send, status, body, headers, replica)
                return
        if path == SPEC_PATH and self.openapi is not None:
            await self.app(scope, receive, _Responder(send, replica, spec=self.openapi))
            return
        rewrite = (
            policy is not None and scope.get("method") == "POST" and path in policy.validated_paths
        )
        await self.app(scope, receive, _Responder(send, replica, rewrite))

    @staticmethod
    def _check(policy: EdgePolicy, scope: Scope):
        if policy.auth is None:
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        result = policy.auth.check(api_key_from_headers(headers))
        if result.status is AuthStatus.OK:
            return None
        if result.status is AuthStatus.RATE_LIMITED:
            wait = max(1, math.ceil(result.retry_after))
            body = {
                "error": "rate_limited",
                "message": f"too many requests for this API key; retry after {wait} s",
                "retry_after": wait,
            }
            return 429, body, [("retry-after", str(wait))]
        what = "missing" if result.status is AuthStatus.MISSING else "invalid"
        body = {
            "error": "unauthorized",
            "message": f"{what} API key: send it as 'X-API-Key: KEY' or "
            "'Authorization: Bearer KEY'",
            "field": "X-API-Key",
        }
        return 401, body, [("www-authenticate", 'Bearer realm="finsimples"')]

    @staticmethod
    async def _send(send: Send, status: int, body: dict[str, Any], headers, replica) -> None:
        start, payload = _json_response(status, body, headers)
        start["headers"].append(replica)
        await send(start)
        await send({"type": "http.response.body", "body": payload})


class _Responder:
    """Adds the replica header; buffers and rewrites a 400 into a 422, or the spec, when asked."""

    def __init__(
        self,
        send: Send,
        replica: tuple[bytes, bytes],
        rewrite: bool = False,
        spec: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.send, self.replica, self.rewrite, self.spec = send, replica, rewrite, spec
        self.held: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), self.replica]}
            if (self.rewrite and message["status"] == 400) or (
                self.spec is not None and message["status"] == 200
            ):
                self.held = message
                return
            await self.send(message)
        elif message["type"] == "http.response.body" and self.held is not None:
            self.chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            original = b"".join(self.chunks)
            if self.spec is not None:
                status, body = 200, self.spec(json.loads(original))
            else:
                status, body = 422, validation_body(original)
            start, payload = _json_response(status, body)
            kept = [(k, v) for k, v in self.held["headers"] if k.lower() not in _REPLACED]
            start["headers"] = [*kept, *[(k, v) for k, v in start["headers"]]]
            await self.send(start)
            await self.send({"type": "http.response.body", "body": payload})
        else:
            await self.send(message)


_REPLACED = {b"content-type", b"content-length"}
