"""The page's routes and `GET /v1/history` over HTTP, on the real replicas."""

from __future__ import annotations

import pytest

from tests.champion import WATERMARK
from tests.integration.api.conftest import KEYS, ApiServer

pytestmark = pytest.mark.integration


def test_root_redirects_to_the_page_with_a_same_origin_policy(replica_b: ApiServer) -> None:
    with replica_b.http() as http:
        root = http.get("/")
        page = http.get("/app/")
        script = http.get("/app/app.js")
        spec = http.get("/docs.json")
    assert (root.status_code, root.headers["location"]) == (307, "/app/")
    assert page.status_code == 200
    assert '<html lang="pt-BR">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "https://" not in page.text + script.text  # nothing from another host
    assert spec.status_code == 200  # BentoML's own routes still answer


def test_history_answers_the_last_closes(replica_b: ApiServer) -> None:
    with replica_b.http() as http:
        answer = http.get("/v1/history", params={"ticker": "ko", "days": 30}).json()
    assert answer["ticker"] == "KO"
    assert len(answer["points"]) == 30
    dates = [p["date"] for p in answer["points"]]
    assert dates == sorted(dates)
    assert dates[-1] >= WATERMARK.isoformat()
    assert all(p["close"] > 0 for p in answer["points"])


def test_history_errors_follow_the_api(replica_a: ApiServer) -> None:
    with replica_a.http() as anonymous:
        missing = anonymous.get("/v1/history", params={"ticker": "KO"})
    with replica_a.http(KEYS["contract"]) as http:
        unknown = http.get("/v1/history", params={"ticker": "KOO"})
        bad_days = http.get("/v1/history", params={"ticker": "KO", "days": 0})
        bad_ticker = http.get("/v1/history", params={"ticker": "K O!"})
        spec = http.get("/docs.json").json()
    assert missing.status_code == 401
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_ticker")
    assert "KO" in unknown.json()["suggestions"]
    assert (bad_days.status_code, bad_days.json()["field"]) == (422, "days")
    assert (bad_ticker.status_code, bad_ticker.json()["field"]) == (422, "ticker")
    responses = spec["paths"]["/v1/history"]["get"]["responses"]
    assert {"200", "401", "404", "422", "429", "503"} <= set(responses)
