"""The API's contract over real HTTP: answers, errors, auth, rate limits, OpenAPI."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import bentoml
import pytest
from bentoml.exceptions import BentoMLException

from tests.champion import TICKERS, WATERMARK
from tests.integration.api.conftest import BURST, KEYS, ApiServer, ApiStack

pytestmark = pytest.mark.integration
KEY = KEYS["contract"]


@pytest.fixture(scope="module")
def client(replica_a: ApiServer) -> bentoml.SyncHTTPClient:
    """The BentoML client, as a client app uses it (the key as a bearer token)."""
    with bentoml.SyncHTTPClient(replica_a.url, token=KEY) as client:
        yield client


def test_forecast_through_the_bentoml_client(client: Any, api_stack: ApiStack) -> None:
    answer = client.forecast(ticker="jnj", horizon_days=4, locale="en")
    assert (answer["ticker"], answer["horizon_days"], answer["locale"]) == ("JNJ", 4, "en")
    assert date.fromisoformat(answer["as_of"]) == WATERMARK
    assert [p["day"] for p in answer["path"]] == [1, 2, 3, 4]
    point = answer["path"][-1]
    assert point["prices"]["q0.05"] < point["prices"]["q0.5"] < point["prices"]["q0.95"]
    assert {"q0.05", "q0.5", "q0.95"} <= set(point["returns"])
    assert 0 < point["prob_gain"] < 1
    assert "expected_return" in point
    assert "investment advice" in answer["narrative"]
    provenance = answer["provenance"]
    assert provenance["model_version"] == api_stack.v1
    assert provenance["alias"] == "champion"
    assert provenance["data_watermark"] == WATERMARK.isoformat()
    assert provenance["feature_version"]
    assert len(provenance["run_id"]) == 32
    assert (provenance["source"], provenance["stale"]) == ("fresh", False)
    timings = answer["timings"]  # the parts of a fresh answer fit in its whole
    assert (
        timings["total_ms"] >= timings["cache_ms"] + timings["predict_ms"] + timings["narrate_ms"]
    )


def test_defaults_and_replica_header(replica_a: ApiServer) -> None:
    with replica_a.http(KEY) as http:
        response = http.post("/v1/forecast", json={"ticker": "KO"})
    assert response.status_code == 200, response.text
    assert response.headers["x-finsimples-replica"] == "replica-a"
    body = response.json()
    assert (body["horizon_days"], body["locale"]) == (5, "pt-BR")
    assert "recomendação de investimento" in body["narrative"]


def test_batch_answers_each_ticker(replica_a: ApiServer) -> None:
    with replica_a.http(KEY) as http:
        response = http.post(
            "/v1/forecast/batch", json={"tickers": ["KO", "KOO", "aapl"], "horizon_days": 2}
        )
        too_many = http.post("/v1/forecast/batch", json={"tickers": ["KO", "JNJ", "XOM", "JPM"]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    statuses = [(r["ticker"], r["status"]) for r in results]
    assert statuses == [("KO", 200), ("KOO", 404), ("AAPL", 200)]
    assert results[1]["error"]["suggestions"] == ["KO"]
    assert results[2]["answer"]["horizon_days"] == 2
    assert too_many.status_code == 422
    assert too_many.json()["field"] == "tickers"
    assert "at most 3 tickers" in too_many.json()["message"]


def test_tickers_and_model_card(replica_a: ApiServer, api_stack: ApiStack) -> None:
    with replica_a.http(KEY) as http:
        tickers = http.get("/v1/tickers").json()
        card = http.get("/v1/model").json()
    assert [t["ticker"] for t in tickers["tickers"]] == sorted(TICKERS)
    assert tickers["tickers"][0]["last_date"] == WATERMARK.isoformat()
    ko = next(t for t in tickers["tickers"] if t["ticker"] == "KO")
    assert (ko["exchange"], ko["currency"]) == ("XNYS", "USD")
    assert card["version"] == api_stack.v1
    assert card["loaded_from"].startswith("bentoml:finsimples-forecaster:v")
    assert (card["interval"], card["max_horizon"]) == (0.9, 30)
    h1 = next(r for r in card["coverage"] if r["horizon"] == 1)
    assert (h1["coverage"], h1["worst_year"], h1["nominal"]) == (0.89, 0.86, 0.9)
    assert card["metrics"]["h5_coverage"] == 0.9


def test_unknown_ticker_is_404_with_suggestions(client: Any, replica_a: ApiServer) -> None:
    with pytest.raises(BentoMLException) as caught:
        client.forecast(ticker="KOO")
    assert caught.value.error_code == 404
    with replica_a.http(KEY) as http:
        body = http.post("/v1/forecast", json={"ticker": "JMP"}).json()
    assert body["error"] == "unknown_ticker"
    assert body["field"] == "ticker"
    assert "JPM" in body["suggestions"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ticker": "KO", "horizon_days": 0}, "horizon_days"),
        ({"ticker": "KO", "horizon_days": 31}, "horizon_days"),
        ({"ticker": "KO", "horizon_days": "five"}, "horizon_days"),
        ({"ticker": "KO", "locale": "fr"}, "locale"),
        ({"ticker": "$$$"}, "ticker"),
        ({"ticker": "A" * 13}, "ticker"),
        ({"horizon_days": 5}, "ticker"),
        ({"tickers": []}, "tickers"),
    ],
)
def test_invalid_input_is_422_naming_the_field(
    replica_a: ApiServer, payload: dict[str, Any], field: str
) -> None:
    route = "/v1/forecast/batch" if "tickers" in payload else "/v1/forecast"
    with replica_a.http(KEY) as http:
        response = http.post(route, json=payload)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field
    assert body["message"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"KO"',
        b"12",
        b'{"ticker": null}',
        b'{"ticker": ["KO"]}',
        b'{"ticker": {"$ne": 1}}',
        b'{"ticker": "KO", "horizon_days": 1e309}',
        b'{"ticker": "KO", "horizon_days": -99999999999999999999}',
        b'{"ticker": "KO", "locale": null}',
        b'{"ticker": "K\\u0000O"}',
        '{"ticker": "PETR4ÇÃ"}'.encode(),
        b'{"ticker": "KO", "extra": [1, 2, {"a": null}]}',
    ],
)
def test_bad_input_never_gets_a_500(replica_a: ApiServer, raw: bytes) -> None:
    with replica_a.http(KEY) as http:
        response = http.post(
            "/v1/forecast", content=raw, headers={"content-type": "application/json"}
        )
    assert response.status_code in (200, 404, 422), (response.status_code, response.text)


def test_keys_are_required_and_health_stays_open(replica_a: ApiServer) -> None:
    with replica_a.http() as anonymous:
        missing = anonymous.post("/v1/forecast", json={"ticker": "KO"})
        tickers = anonymous.get("/v1/tickers")
        open_paths = [anonymous.get(p).status_code for p in ("/healthz", "/readyz", "/metrics")]
    with replica_a.http("fs_not-a-key") as wrong:
        invalid = wrong.post("/v1/forecast", json={"ticker": "KO"})
    assert (missing.status_code, tickers.status_code, invalid.status_code) == (401, 401, 401)
    assert missing.json()["error"] == "unauthorized"
    assert open_paths == [200, 200, 200]


@pytest.mark.parametrize(
    ("api_key", "bearer"),
    [(KEY, "fs_not-a-key"), ("fs_not-a-key", KEY)],
    ids=["bad-bearer", "bad-header"],
)
def test_two_keys_that_disagree_are_400_not_served(
    replica_a: ApiServer, api_key: str, bearer: str
) -> None:
    # RFC 6750 §2 and §3.1: one method per request, else invalid_request (README "API keys").
    with replica_a.http(api_key) as http:
        response = http.get("/v1/tickers", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.headers["www-authenticate"].endswith('error="invalid_request"')


def test_over_the_key_rate_is_429_with_retry_after(replica_a: ApiServer) -> None:
    with replica_a.http(KEYS["limited"]) as http:
        statuses = [http.get("/v1/tickers") for _ in range(BURST + 10)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, "no 429 after a burst of requests"
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["error"] == "rate_limited"
    assert {r.status_code for r in statuses} == {200, 429}


def test_openapi_spec_lists_every_endpoint(replica_a: ApiServer) -> None:
    with replica_a.http() as http:
        spec = http.get("/docs.json").json()
    paths = spec["paths"]
    for route in ("/v1/forecast", "/v1/forecast/batch", "/v1/tickers", "/v1/model"):
        assert route in paths
    schemas = json.dumps(spec)
    assert '"maximum": 30' in schemas
    assert "pt-BR" in schemas
    # The error answers BentoML cannot declare, added by the edge (bentos.openapi).
    forecast = paths["/v1/forecast"]["post"]["responses"]
    assert {"200", "401", "404", "422", "429", "503"} <= set(forecast)
    # The edge answers schema violations with 422; its only 400 is a key sent two ways.
    assert forecast["400"]["description"].startswith("invalid_request: a key sent both as")
    assert "Retry-After" in forecast["503"]["headers"]
    assert "429" in paths["/v1/tickers"]["get"]["responses"]
    assert "ValidationErrorBody" in spec["components"]["schemas"]


def test_openapi_spec_states_what_the_replica_accepts(replica_a: ApiServer) -> None:
    # Found by the schema fuzzer (test_api_schemathesis_cli.py): by BentoML's spec a request
    # without a body was valid, and a batch of up to 100 tickers; both got a 422.
    with replica_a.http() as http:
        paths = http.get("/docs.json").json()["paths"]
    with replica_a.http(KEY) as http:
        no_body = http.post("/v1/forecast", headers={"content-type": "application/json"})
    assert paths["/v1/forecast"]["post"]["requestBody"]["required"] is True
    assert no_body.status_code == 422
    assert "required" not in paths["/v1/admin/cache/warm"]["post"]["requestBody"]  # all defaults
    batch = paths["/v1/forecast/batch"]["post"]["requestBody"]
    tickers = batch["content"]["application/json"]["schema"]["properties"]["tickers"]
    assert batch["required"] is True
    assert tickers["maxItems"] == 3  # FINSIMPLES_BATCH_MAX_TICKERS of the test stack


def test_auth_off_replica_answers_without_a_key(replica_b: ApiServer) -> None:
    with replica_b.http() as http:
        response = http.post("/v1/forecast", json={"ticker": "XOM", "horizon_days": 1})
    assert response.status_code == 200, response.text
    assert response.headers["x-finsimples-replica"] == "replica-b"
    assert response.json()["provenance"]["narrator"] == "template"
