"""The HTTP edge middleware on a small Starlette app: keys, rate limit, 422s, replica header."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bentos.auth import ApiKeyAuth, hash_api_key
from bentos.edge import EdgeMiddleware, EdgePolicy, validation_body

KEY = "fs_unit-test-key"
BENTOML_400 = {
    "error": "1 validation error for Input",
    "detail": [{"type": "less_than_equal", "loc": ["horizon_days"], "msg": "too big"}],
}


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def forecast(request: Request) -> JSONResponse:
    body = await request.json()
    if body.get("horizon_days", 5) > 30:  # what BentoML answers a schema violation
        return JSONResponse(BENTOML_400, status_code=400)
    return JSONResponse({"ok": True})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("\n")


def client_for(policy: Callable[[], EdgePolicy | None]) -> TestClient:
    app = Starlette(
        routes=[
            Route("/v1/forecast", forecast, methods=["POST"]),
            Route("/v1/other", forecast, methods=["POST"]),
            Route("/healthz", health),
        ]
    )
    return TestClient(EdgeMiddleware(app, policy=policy))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> TestClient:
    auth = ApiKeyAuth([hash_api_key(KEY)], per_key_rpm=60, burst=2, clock=clock)
    policy = EdgePolicy(auth, "replica-7", frozenset({"/v1/forecast"}))
    return client_for(lambda: policy)


def test_missing_and_invalid_keys_are_401(client: TestClient) -> None:
    missing = client.post("/v1/forecast", json={})
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert missing.json()["message"].startswith("missing API key")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.headers["x-finsimples-replica"] == "replica-7"
    invalid = client.post("/v1/forecast", json={}, headers={"X-API-Key": "fs_wrong"})
    assert (invalid.status_code, invalid.json()["message"][:15]) == (401, "invalid API key")


def test_the_401_challenge_names_invalid_token_only_for_a_wrong_key(client: TestClient) -> None:
    missing = client.post("/v1/forecast", json={})
    assert missing.headers["www-authenticate"] == 'Bearer realm="finsimples"'
    wrong = client.post("/v1/forecast", json={}, headers={"Authorization": "Bearer fs_wrong"})
    challenge = 'Bearer realm="finsimples", error="invalid_token"'
    assert (wrong.status_code, wrong.headers["www-authenticate"]) == (401, challenge)


@pytest.mark.parametrize(
    ("api_key", "bearer"),
    [(KEY, "fs_wrong"), ("fs_wrong", KEY), (KEY, KEY)],
    ids=["valid-header-bad-bearer", "bad-header-valid-bearer", "same-key-twice"],
)
def test_a_key_sent_both_ways_is_400_invalid_request(
    client: TestClient, api_key: str, bearer: str
) -> None:
    headers = {"X-API-Key": api_key, "Authorization": f"Bearer {bearer}"}
    refused = [client.post("/v1/forecast", json={}, headers=headers) for _ in range(3)]
    assert [r.status_code for r in refused] == [400] * 3  # never served on the valid one
    body = refused[0].json()
    assert (body["error"], body["field"]) == ("invalid_request", "X-API-Key")
    assert "RFC 6750" in body["message"]
    challenge = 'Bearer realm="finsimples", error="invalid_request"'
    assert refused[0].headers["www-authenticate"] == challenge
    assert refused[0].headers["x-finsimples-replica"] == "replica-7"
    # Neither key was checked: the valid key's budget (burst 2) is whole.
    statuses = [client.post("/v1/forecast", json={}, headers={"X-API-Key": KEY}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]


def test_a_key_sent_both_ways_on_an_admin_route_is_400() -> None:
    admin, admin_hash = "fs_admin_unit-test-key", hash_api_key("fs_admin_unit-test-key")
    auth = ApiKeyAuth([hash_api_key(KEY)], per_key_rpm=60, admin_hashes=[admin_hash])
    app = Starlette(routes=[Route("/v1/admin/cache/warm", forecast, methods=["POST"])])
    client = TestClient(EdgeMiddleware(app, policy=lambda: EdgePolicy(auth, "r")))
    headers = {"X-API-Key": admin, "Authorization": "Bearer fs_wrong"}
    response = client.post("/v1/admin/cache/warm", json={}, headers=headers)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert client.post("/v1/admin/cache/warm", json={}, headers={"X-API-Key": admin}).is_success


def test_a_key_sent_both_ways_passes_where_no_key_is_checked() -> None:
    client = client_for(lambda: EdgePolicy(None, "r", frozenset()))
    headers = {"X-API-Key": "a", "Authorization": "Bearer b"}
    assert client.post("/v1/forecast", json={}, headers=headers).status_code == 200


def test_a_valid_key_passes_as_header_or_bearer(client: TestClient) -> None:
    assert client.post("/v1/forecast", json={}, headers={"X-API-Key": KEY}).json() == {"ok": True}
    bearer = client.post("/v1/forecast", json={}, headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200
    assert bearer.headers["x-finsimples-replica"] == "replica-7"


def test_over_the_rate_is_429_with_retry_after(client: TestClient, clock: FakeClock) -> None:
    headers = {"X-API-Key": KEY}
    first = [client.post("/v1/forecast", json={}, headers=headers) for _ in range(2)]
    assert [r.status_code for r in first] == [200, 200]
    limited = client.post("/v1/forecast", json={}, headers=headers)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["retry_after"] == 1
    clock.now += 1.0  # one token back at 60 per minute
    assert client.post("/v1/forecast", json={}, headers=headers).status_code == 200


def test_health_stays_open(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["x-finsimples-replica"] == "replica-7"


def test_validation_400_becomes_422_naming_the_field(client: TestClient) -> None:
    response = client.post("/v1/forecast", json={"horizon_days": 31}, headers={"X-API-Key": KEY})
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["field"]) == ("invalid_request", "horizon_days")
    assert body["message"] == "horizon_days: too big"
    assert int(response.headers["content-length"]) == len(response.content)
    # Only the listed API routes are rewritten.
    other = client.post("/v1/other", json={"horizon_days": 31}, headers={"X-API-Key": KEY})
    assert other.status_code == 400


def test_auth_off_lets_every_request_through() -> None:
    client = client_for(lambda: EdgePolicy(None, "r", frozenset()))
    assert client.post("/v1/forecast", json={}).status_code == 200


def test_before_the_service_is_ready_only_open_paths_answer() -> None:
    client = client_for(lambda: None)
    starting = client.post("/v1/forecast", json={})
    assert (starting.status_code, starting.headers["retry-after"]) == (503, "1")
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"detail": "x"}'])
def test_odd_400_bodies_still_give_a_422_body(raw: bytes) -> None:
    body = validation_body(raw)
    assert (body["error"], body["field"]) == ("invalid_request", "body")


def test_the_openapi_spec_gets_the_error_answers() -> None:
    from bentos.openapi import document_errors

    generated = {
        "paths": {
            "/v1/forecast": {"post": {"responses": {"200": {}, "400": {}, "404": {}, "500": {}}}},
            "/v1/tickers": {"get": {"responses": {"200": {}}}},
        },
        "components": {"schemas": {"InvalidArgument": {}}},
    }

    async def spec(request: Request) -> JSONResponse:
        return JSONResponse(generated)

    routes = {("post", "/v1/forecast"): (404, 422, 503), ("get", "/v1/absent"): (401,)}
    app = Starlette(routes=[Route("/docs.json", spec)])
    client = TestClient(
        EdgeMiddleware(app, policy=lambda: None, openapi=lambda s: document_errors(s, routes))
    )
    response = client.get("/docs.json")
    assert response.status_code == 200
    document = response.json()
    answers = document["paths"]["/v1/forecast"]["post"]["responses"]
    assert sorted(answers) == ["200", "404", "422", "500", "503"]  # BentoML's 400 is a 422 here
    assert answers["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationErrorBody"
    }
    assert "Retry-After" in answers["503"]["headers"]
    schemas = document["components"]["schemas"]
    assert {"ApiErrorBody", "ValidationErrorBody", "FieldError", "InvalidArgument"} <= set(schemas)
    assert document["paths"]["/v1/tickers"]["get"]["responses"] == {"200": {}}
    assert int(response.headers["content-length"]) == len(response.content)
