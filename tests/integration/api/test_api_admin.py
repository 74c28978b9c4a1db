"""The admin routes on real replicas: admin keys only; with no keys, direct local requests only.

Replica A has client and admin keys; replica B has none. NGINX runs in front of them with the
config the stack generates (``deploy/nginx.py``): through it, a request reaches a replica from
127.0.0.1 like a local one, and must still be refused by a replica without keys.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.api.conftest import ADMIN_KEY, BUDGET, KEYS, ApiServer
from tests.servers import nginx_in_front

pytestmark = pytest.mark.integration

CLIENT_KEY = KEYS["admin"]
INVALIDATE = "/v1/admin/cache/invalidate"
WARM = "/v1/admin/cache/warm"
# Bodies that change no cache another module relies on: no such version, no ticker.
ADMIN_CALLS = [(INVALIDATE, {"model_version": "no-such-version"}), (WARM, {"tickers": []})]


def post(base: str, route: str, body: object, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(base + route, json=body, headers=headers, timeout=30)


def error_of(answer: httpx.Response, status: int) -> dict[str, object]:
    """The error body, after checking the status and the API's error envelope."""
    assert answer.status_code == status, answer.text
    body = dict(answer.json())
    assert {"error", "message", "field", "suggestions", "retry_after"} <= set(body), body
    return body


@pytest.fixture(scope="module")
def nginx_b(replica_b: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NGINX in front of replica B (no keys)."""
    upstream = [replica_b.url.removeprefix("http://")]
    with nginx_in_front(upstream, tmp_path_factory.mktemp("admin") / "nginx-b", BUDGET) as url:
        yield url


@pytest.fixture(scope="module")
def nginx_a(replica_a: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NGINX in front of replica A (client and admin keys)."""
    upstream = [replica_a.url.removeprefix("http://")]
    with nginx_in_front(upstream, tmp_path_factory.mktemp("admin") / "nginx-a", BUDGET) as url:
        yield url


@pytest.mark.parametrize(("route", "body"), ADMIN_CALLS, ids=["invalidate", "warm"])
def test_with_keys_the_admin_routes_take_only_admin_keys(
    replica_a: ApiServer, route: str, body: object
) -> None:
    client = error_of(post(replica_a.url, route, body, {"X-API-Key": CLIENT_KEY}), 403)
    assert client["error"] == "admin_key_required"
    assert "needs an admin key" in str(client["message"])
    assert error_of(post(replica_a.url, route, body, {}), 401)["error"] == "unauthorized"
    unknown = post(replica_a.url, route, body, {"X-API-Key": "fs_admin_unknown"})
    assert error_of(unknown, 401)["error"] == "unauthorized"
    admin = post(replica_a.url, route, body, {"Authorization": f"Bearer {ADMIN_KEY}"})
    assert admin.status_code == 200, admin.text
    assert admin.json()["model_version"]


def test_an_admin_key_is_refused_on_the_client_routes(replica_a: ApiServer) -> None:
    with replica_a.http(ADMIN_KEY) as http:
        refused = http.get("/v1/model")
    assert error_of(refused, 403)["error"] == "client_key_required"
    with replica_a.http(CLIENT_KEY) as http:
        assert http.get("/v1/model").status_code == 200


def test_without_keys_only_direct_local_requests_reach_the_admin_routes(
    replica_b: ApiServer,
) -> None:
    route, body = ADMIN_CALLS[0]
    direct = post(replica_b.url, route, body, {})
    assert direct.json() == {"model_version": "no-such-version", "removed": 0, "warmed": 0}
    for header in ({"X-Forwarded-For": "127.0.0.1"}, {"X-Real-IP": "127.0.0.1"}):
        refused = error_of(post(replica_b.url, route, body, header), 403)
        assert refused["error"] == "admin_local_only"
        assert "FINSIMPLES_ADMIN_KEY_HASHES" in str(refused["message"])


def test_through_nginx_a_replica_without_keys_refuses_the_admin_routes(nginx_b: str) -> None:
    assert httpx.get(f"{nginx_b}/v1/tickers", timeout=30).status_code == 200  # NGINX passes
    for route, body in ADMIN_CALLS:
        refused = error_of(post(nginx_b, route, body, {}), 403)
        assert refused["error"] == "admin_local_only"
    # A client cannot make its request look direct: NGINX adds X-Forwarded-For to whatever
    # the client sent (here an empty one) and sets X-Forwarded-Proto.
    spoofed = post(nginx_b, INVALIDATE, ADMIN_CALLS[0][1], {"X-Forwarded-For": ""})
    assert error_of(spoofed, 403)["error"] == "admin_local_only"


def test_through_nginx_an_admin_key_reaches_the_admin_routes(nginx_a: str) -> None:
    route, body = ADMIN_CALLS[0]
    assert post(nginx_a, route, body, {"X-API-Key": ADMIN_KEY}).status_code == 200
    assert error_of(post(nginx_a, route, body, {"X-API-Key": CLIENT_KEY}), 403)["error"] == (
        "admin_key_required"
    )
