"""The daily flow on an exchange holiday: "market closed", nothing ingested or retrained."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from flows.daily import daily_flow

pytestmark = pytest.mark.integration
SP = ZoneInfo("America/Sao_Paulo")


def test_carnival_is_market_closed_for_b3(caplog: pytest.LogCaptureFixture) -> None:
    summary = daily_flow(exchange="BVMF", now=datetime(2025, 3, 4, 18, 30, tzinfo=SP))
    assert summary.message == "market closed: BVMF did not trade on 2025-03-04 (holiday)"
    assert summary.retrain is None
    assert summary.ingest.processed == []
    assert "market closed: BVMF did not trade on 2025-03-04 (holiday)" in caplog.text
