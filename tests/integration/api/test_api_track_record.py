"""The realized track record through real replicas: /v1/model, the narrative and /metrics."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from bentos.narrative import format_percent
from finsimples.lake import Lake
from finsimples.records import TRACK_RECORD_SUMMARY, TrackRecordSummary, read_record
from tests.champion import WATERMARK
from tests.integration.api.conftest import RETRAINED_ON, TRACK_RECORD_DAYS, ApiServer, ApiStack
from tests.integration.api.test_api_metrics import samples, value

pytestmark = pytest.mark.integration


def seeded(api_stack: ApiStack) -> TrackRecordSummary:
    location = Lake.from_settings(api_stack.settings).location
    record = read_record(location, TRACK_RECORD_SUMMARY, TrackRecordSummary)
    assert record is not None
    return record


def test_model_card_shows_the_realized_track_record(
    replica_b: ApiServer, api_stack: ApiStack
) -> None:
    record = seeded(api_stack)
    with replica_b.http() as http:
        card = http.get("/v1/model").json()
    realized = {r["horizon"]: r for r in card["track_record"]}
    assert sorted(realized) == [1, 5, 10, 21, 30]  # the settings' evaluated horizons
    h1 = realized[1]
    assert h1["n"] == 63 * 6  # 69 days of h=1 outcomes, the last 63 in the window
    assert h1["coverage"] == record.at(1).coverage  # type: ignore[union-attr]
    assert (h1["window_days"], h1["as_of"], h1["nominal"]) == (63, WATERMARK.isoformat(), 0.9)
    assert 0 < h1["width"] < realized[30]["width"]
    assert h1["pinball"] > 0
    assert realized[30]["n"] == (TRACK_RECORD_DAYS - 30) * 6
    assert card["coverage"][0]["horizon"] == 1  # the backtest's record is still there


def test_narrative_quotes_the_realized_coverage(replica_b: ApiServer, api_stack: ApiStack) -> None:
    record = seeded(api_stack)
    payload = {"ticker": "KO", "horizon_days": 2, "locale": "en"}
    with replica_b.http() as http:
        answer = http.post("/v1/forecast", json=payload).json()
        pt = http.post("/v1/forecast", json=payload | {"locale": "pt-BR"}).json()
    h1 = record.at(2)  # nearest logged horizon: 1
    assert h1 is not None
    assert h1.horizon == 1
    assert (
        f"Track record: over the last 63 trading days, {format_percent(h1.coverage, 'en')} "
        "of actual prices fell inside the 90% ranges the model served."
    ) in answer["narrative"]
    assert f"nos últimos 63 pregões, {format_percent(h1.coverage, 'pt-BR')}" in pt["narrative"]
    # h=30 holds 40 x 6 = 240 >= 100 scored forecasts too: quoted; nothing is invented.
    assert "not enough history" not in answer["narrative"]


def test_replicas_export_the_model_gauges(
    replica_a: ApiServer, replica_b: ApiServer, api_stack: ApiStack
) -> None:
    record = seeded(api_stack)
    today = datetime.now(ZoneInfo("America/Sao_Paulo")).date()
    days = int(np.busday_count(RETRAINED_ON, today))
    for replica in (replica_a, replica_b):
        found = samples(replica)
        for horizon in record.horizons:
            got = value(found, "finsimples_realized_coverage", horizon=str(horizon.horizon))
            assert got == pytest.approx(horizon.coverage), replica.replica
        assert value(found, "finsimples_drift_detected") == 1.0
        assert value(found, "finsimples_retrain_last_run_success") == 1.0
        assert value(found, "finsimples_trading_days_since_retrain") == days
    text = httpx.get(f"{replica_b.url}/metrics", timeout=10).text
    assert "# TYPE finsimples_realized_coverage gauge" in text
