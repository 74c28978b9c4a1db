"""The HTTP edge of the API, an ASGI middleware: API keys, rate limits, 422s, replica header.

It runs before BentoML parses a request body, so a request without a valid key is refused (401)
or throttled (429 + Retry-After) before any work is done; health, metrics and docs paths stay
open. A request sending a key both ways (``X-API-Key`` and ``Authorization: Bearer``) is refused
with 400 ``invalid_request`` before either key is checked (RFC 6750 §2, §3.1). The admin
routes (``/v1/admin/``) take admin keys only, the others client keys only: a valid key of the
other kind gets 403. With no key configured at all, the admin routes answer
only requests made directly on the replica's host, never through NGINX (403 otherwise).
BentoML answers a request body that fails validation with 400; input errors of this API are 422
naming the field, so the edge rewrites those answers; a body not sent as JSON gets 415 and
one over the size limit 413 (``bentos.bodies``). Every response carries the
replica id, so a client (or the load test) sees which replica answered behind the balancer.
It also completes the generated OpenAPI spec with the error answers (``bentos.openapi``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bentos.auth import (
    ApiKeyAuth,
    AuthStatus,
    KeyScope,
    TwoCredentialsError,
    api_key_from_headers,
    is_direct_local,
)
from bentos.bodies import BodyRefusal, read_json_body
from bentos.schemas import ApiErrorBody

REPLICA_HEADER = "x-finsimples-replica"
PROTECTED_PREFIX = "/v1/"
ADMIN_PREFIX = "/v1/admin/"
KEY_HINT = "send it as 'X-API-Key: KEY' or 'Authorization: Bearer KEY'"
CHALLENGE = 'Bearer realm="finsimples"'  # RFC 6750 §3: the WWW-Authenticate challenge
TWO_CREDENTIALS = (
    "a key in both X-API-Key and Authorization: Bearer; send it one way only (RFC 6750 §2)"
)
SPEC_PATH = "/docs.json"  # BentoML's OpenAPI document

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


@dataclass(frozen=True)
class EdgePolicy:
    """What the edge enforces.

    Attributes:
        auth: API key check and per-key rate limit; None: no key configured (local use), the
            client routes are open and the admin routes answer direct local requests only.
        replica_id: Sent in the ``X-FinSimples-Replica`` header.
        validated_paths: POST routes whose 400 answers are validation errors to rewrite; their
            bodies must be JSON (415) of at most ``max_body_bytes`` (413), see ``bentos.bodies``.
        max_body_bytes: The largest request body the validated routes read.
    """

    auth: ApiKeyAuth | None
    replica_id: str
    validated_paths: frozenset[str] = frozenset()
    max_body_bytes: int = 65_536


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
        if rewrite and policy is not None:
            read = await read_json_body(scope, receive, policy.max_body_bytes)
            if isinstance(read, BodyRefusal):
                await self._send(send, read.status, read.body, [], replica)
                return
            receive = read
        await self.app(scope, receive, _Responder(send, replica, rewrite))

    @staticmethod
    def _check(policy: EdgePolicy, scope: Scope):
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        admin = scope.get("path", "").startswith(ADMIN_PREFIX)
        if policy.auth is None:
            if not admin or is_direct_local(scope.get("client"), headers):
                return None
            return _forbidden("admin_local_only")
        if not admin and not policy.auth.guards_clients:
            return None  # only admin keys configured: the client routes are open
        wanted = KeyScope.ADMIN if admin else KeyScope.CLIENT
        try:
            key = api_key_from_headers(headers)
        except TwoCredentialsError:
            body = ApiErrorBody(error="invalid_request", message=TWO_CREDENTIALS, field="X-API-Key")
            challenge = f'{CHALLENGE}, error="invalid_request"'
            return 400, body.model_dump(), [("www-authenticate", challenge)]
        result = policy.auth.check(key, wanted)
        if result.status is AuthStatus.OK:
            return None
        if result.status is AuthStatus.WRONG_SCOPE:
            return _forbidden("admin_key_required" if admin else "client_key_required")
        if result.status is AuthStatus.RATE_LIMITED:
            wait = max(1, math.ceil(result.retry_after))
            message = f"too many requests for this API key; retry after {wait} s"
            body = ApiErrorBody(error="rate_limited", message=message, retry_after=wait)
            return 429, body.model_dump(), [("retry-after", str(wait))]
        what = "missing" if result.status is AuthStatus.MISSING else "invalid"
        kind = "admin key" if admin else "API key"
        message = f"{what} {kind}: {KEY_HINT}"
        body = ApiErrorBody(error="unauthorized", message=message, field="X-API-Key")
        # RFC 6750 §3.1: no error code when the request carried no key at all.
        challenge = CHALLENGE if what == "missing" else f'{CHALLENGE}, error="invalid_token"'
        return 401, body.model_dump(), [("www-authenticate", challenge)]

    @staticmethod
    async def _send(send: Send, status: int, body: dict[str, Any], headers, replica) -> None:
        start, payload = _json_response(status, body, headers)
        start["headers"].append(replica)
        await send(start)
        await send({"type": "http.response.body", "body": payload})


FORBIDDEN = {
    "admin_local_only": "with no API keys configured, the admin routes answer only requests "
    "made directly on the replica's host (not through a proxy); to call them from elsewhere, "
    "set FINSIMPLES_ADMIN_KEY_HASHES (`finsimples api-key new --admin`)",
    "admin_key_required": "this route needs an admin key (FINSIMPLES_ADMIN_KEY_HASHES); "
    "a client API key is not accepted here",
    "client_key_required": "this route needs a client API key (FINSIMPLES_API_KEY_HASHES); "
    "an admin key is accepted only on the /v1/admin/ routes",
}
"""The 403 answers: error code to message."""


def _forbidden(error: str) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """A 403 in the API's error envelope (``bentos.schemas.ApiErrorBody``)."""
    body = ApiErrorBody(error=error, message=FORBIDDEN[error], field="X-API-Key")
    return 403, body.model_dump(), []


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
