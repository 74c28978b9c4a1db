"""Admin keys apart from client keys, and the admin routes' local-only rule with no keys."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bentos.auth import (
    ADMIN_KEY_PREFIX,
    ApiKeyAuth,
    AuthStatus,
    KeyScope,
    generate_api_key,
    is_direct_local,
)
from bentos.edge import EdgeMiddleware, EdgePolicy
from bentos.schemas import ApiErrorBody

CLIENT, CLIENT_HASH = generate_api_key()
ADMIN, ADMIN_HASH = generate_api_key(ADMIN_KEY_PREFIX)
WARM = "/v1/admin/cache/warm"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("peer", "headers", "local"),
    [
        (("127.0.0.1", 5000), {}, True),
        (("127.8.9.10", 5000), {}, True),  # all of 127/8 is loopback
        (("::1", 5000), {}, True),
        (("::ffff:127.0.0.1", 5000), {}, True),  # IPv4-mapped, as a dual-stack socket sees it
        (["127.0.0.1", 5000], {}, True),  # some servers give a list
        (("10.0.0.7", 5000), {}, False),
        (("::ffff:10.0.0.7", 5000), {}, False),
        (("testclient", 50000), {}, False),  # not an address: not provably local
        (None, {}, False),  # a unix socket: no peer
        (("127.0.0.1", 5000), {"x-forwarded-for": "127.0.0.1"}, False),  # NGINX on this host
        (("127.0.0.1", 5000), {"x-forwarded-for": ""}, False),  # present, even empty
        (("127.0.0.1", 5000), {"x-real-ip": "203.0.113.9"}, False),
        (("127.0.0.1", 5000), {"forwarded": "for=203.0.113.9"}, False),
        (("127.0.0.1", 5000), {"x-forwarded-proto": "http"}, False),
        (("127.0.0.1", 5000), {"x-forwarded-host": "api.example"}, False),
        (("127.0.0.1", 5000), {"x-request-id": "abc", "user-agent": "curl"}, True),
    ],
)
def test_direct_local_needs_a_loopback_peer_and_no_proxy_header(
    peer: tuple[str, int] | None, headers: Mapping[str, str], local: bool
) -> None:
    assert is_direct_local(peer, headers) is local


def test_each_kind_of_key_works_only_on_its_routes() -> None:
    auth = ApiKeyAuth([CLIENT_HASH], per_key_rpm=60, admin_hashes=[ADMIN_HASH.upper()])
    assert auth.check(CLIENT).status is AuthStatus.OK
    assert auth.check(ADMIN, KeyScope.ADMIN).status is AuthStatus.OK
    on_admin = auth.check(CLIENT, KeyScope.ADMIN)
    assert (on_admin.status, on_admin.key_id) == (AuthStatus.WRONG_SCOPE, CLIENT_HASH[:12])
    assert not on_admin.ok
    assert auth.check(ADMIN).status is AuthStatus.WRONG_SCOPE
    assert auth.check("fs_unknown", KeyScope.ADMIN).status is AuthStatus.INVALID
    assert auth.check(None, KeyScope.ADMIN).status is AuthStatus.MISSING
    assert auth.check(ADMIN_HASH, KeyScope.ADMIN).status is AuthStatus.INVALID  # hash is no key


def test_a_refused_scope_costs_no_budget_and_admin_keys_have_their_own() -> None:
    clock = FakeClock()
    auth = ApiKeyAuth(
        [CLIENT_HASH], per_key_rpm=60, admin_hashes=[ADMIN_HASH], burst=1, clock=clock
    )
    for _ in range(3):
        assert auth.check(CLIENT, KeyScope.ADMIN).status is AuthStatus.WRONG_SCOPE
    assert auth.check(CLIENT).ok  # the client's one request is still there
    assert auth.check(CLIENT).status is AuthStatus.RATE_LIMITED
    assert auth.check(ADMIN, KeyScope.ADMIN).ok
    assert auth.check(ADMIN, KeyScope.ADMIN).status is AuthStatus.RATE_LIMITED


def test_client_routes_are_guarded_only_with_client_keys() -> None:
    assert ApiKeyAuth([CLIENT_HASH], per_key_rpm=60).guards_clients
    assert not ApiKeyAuth([], per_key_rpm=60, admin_hashes=[ADMIN_HASH]).guards_clients


def test_a_malformed_admin_hash_is_named_as_such() -> None:
    with pytest.raises(ValueError, match="admin key hash #0: expected 64 hex digits"):
        ApiKeyAuth([CLIENT_HASH], per_key_rpm=60, admin_hashes=["fs_plain"])


# --- the edge -----------------------------------------------------------------------------------


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def client_for(auth: ApiKeyAuth | None, peer: tuple[str, int] = ("127.0.0.1", 40000)):
    app = Starlette(
        routes=[Route("/v1/forecast", ok, methods=["POST"]), Route(WARM, ok, methods=["POST"])]
    )
    policy = EdgePolicy(auth, "replica-1")
    return TestClient(EdgeMiddleware(app, policy=lambda: policy), client=peer)


def forbidden(response, error: str) -> str:
    """The 403's message, after checking its status, envelope and code."""
    assert response.status_code == 403, response.text
    body = ApiErrorBody.model_validate(response.json())
    assert set(response.json()) == set(ApiErrorBody.model_fields)  # the whole envelope
    assert (body.error, body.field) == (error, "X-API-Key")
    return body.message


def test_edge_admin_route_statuses_with_keys() -> None:
    auth = ApiKeyAuth([CLIENT_HASH], per_key_rpm=60, admin_hashes=[ADMIN_HASH])
    client = client_for(auth)
    assert client.post(WARM, headers={"X-API-Key": ADMIN}).json() == {"ok": True}
    message = forbidden(client.post(WARM, headers={"X-API-Key": CLIENT}), "admin_key_required")
    assert "needs an admin key" in message
    assert "FINSIMPLES_ADMIN_KEY_HASHES" in message
    missing = client.post(WARM)
    assert (missing.status_code, missing.json()["message"][:17]) == (401, "missing admin key")
    unknown = client.post(WARM, headers={"Authorization": "Bearer fs_nope"})
    assert (unknown.status_code, unknown.json()["error"]) == (401, "unauthorized")
    message = forbidden(
        client.post("/v1/forecast", headers={"X-API-Key": ADMIN}), "client_key_required"
    )
    assert "client API key" in message
    assert client.post("/v1/forecast", headers={"X-API-Key": CLIENT}).status_code == 200


def test_edge_with_client_keys_only_has_no_admin_key_to_accept() -> None:
    client = client_for(ApiKeyAuth([CLIENT_HASH], per_key_rpm=60))
    forbidden(client.post(WARM, headers={"X-API-Key": CLIENT}), "admin_key_required")
    assert client.post(WARM).status_code == 401  # even from this host: keys are on


def test_edge_with_admin_keys_only_leaves_client_routes_open() -> None:
    client = client_for(ApiKeyAuth([], per_key_rpm=60, admin_hashes=[ADMIN_HASH]))
    assert client.post("/v1/forecast").status_code == 200
    assert client.post(WARM).status_code == 401
    assert client.post(WARM, headers={"X-API-Key": ADMIN}).status_code == 200


def test_edge_without_keys_admin_routes_are_local_only() -> None:
    local = client_for(None)
    assert local.post(WARM).json() == {"ok": True}
    message = forbidden(
        local.post(WARM, headers={"X-Forwarded-For": "203.0.113.9"}), "admin_local_only"
    )
    assert "FINSIMPLES_ADMIN_KEY_HASHES" in message
    remote = client_for(None, peer=("192.0.2.4", 40000))
    forbidden(remote.post(WARM), "admin_local_only")
    assert remote.post("/v1/forecast").status_code == 200  # client routes: open, as before
