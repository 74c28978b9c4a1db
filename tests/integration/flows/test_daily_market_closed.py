"""The daily flow on an exchange holiday: "market closed", nothing ingested or retrained; the
run counts as the day's success for DailyFlowMissed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from finsimples.lake import Lake
from finsimples.records import DailyStatus, daily_status_path, read_record
from flows.daily import daily_flow
from tests.integration.flows.conftest import flow_environment

pytestmark = pytest.mark.integration
SP = ZoneInfo("America/Sao_Paulo")


def test_carnival_is_market_closed_for_b3(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = flow_environment(monkeypatch, state_dir=tmp_path)
    summary = daily_flow(exchange="BVMF", now=datetime(2025, 3, 4, 18, 30, tzinfo=SP))
    assert summary.message == "market closed: BVMF did not trade on 2025-03-04 (holiday)"
    assert summary.retrain is None
    assert summary.ingest.processed == []
    assert "market closed: BVMF did not trade on 2025-03-04 (holiday)" in caplog.text
    status = read_record(
        Lake.from_settings(settings).location, daily_status_path("BVMF"), DailyStatus
    )
    assert status is not None
    assert status.success
    # Ash Wednesday trades: its close (plus the delay) is when the next run is due.
    assert status.due_at == datetime(2025, 3, 5, 18, 30, tzinfo=SP)


def test_on_a_compressed_market_clock_the_files_set_the_day_not_the_wall_clock(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    flow_environment(
        monkeypatch, state_dir=tmp_path, daily_every_seconds=15, flow_io_backoff_seconds=0.1
    )
    summary = daily_flow(exchange="BVMF", now=datetime(2025, 3, 4, 18, 30, tzinfo=SP))
    assert summary.closed is None  # Carnival on the wall clock does not stop the run
    assert summary.retrain is not None
    assert summary.retrain.message == "nothing to do: the lake is empty: nothing to train on"
    assert "compressed market clock: the files pending set BVMF's trading day" in caplog.text
