"""B3's daily COTAHIST ZIP dropped as B3 serves it: the daily flow's ingest takes it in, with a
Portuguese events sheet dropped beside it; a broken ZIP is quarantined with its reason."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from finsimples.calendars import next_sessions
from finsimples.drop import PROCESSED_DIR, QUARANTINE_DIR, DropZone
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from flows.ingest import ingest_flow
from tests.b3 import Quote, write_cotahist
from tests.integration.flows.conftest import flow_environment

pytestmark = pytest.mark.integration
DAYS = next_sessions("BVMF", date(2023, 1, 2), 4)


def day_quotes(day: date, price: float) -> list[Quote]:
    return [
        Quote(day, "PETR4", price, name="PETROBRAS", especi="PN      N2"),
        Quote(day, "PETR4F", price, market="020", name="PETROBRAS", especi="PN      N2"),
    ]


def test_the_daily_zip_is_ingested_and_a_broken_one_quarantined(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = flow_environment(monkeypatch, state_dir=tmp_path / "state")
    lake, drop = Lake.from_settings(settings), DropZone.from_settings(settings)
    history = [q for i, day in enumerate(DAYS[:2]) for q in day_quotes(day, 22.0 + i)]
    ingest_files(lake, [write_cotahist(tmp_path, "COTAHIST_M012023", history)])
    daily = write_cotahist(tmp_path, f"COTAHIST_D{DAYS[2]:%d%m%Y}", day_quotes(DAYS[2], 24.5))
    broken = write_cotahist(tmp_path, f"COTAHIST_D{DAYS[3]:%d%m%Y}", day_quotes(DAYS[3], 25.0))
    drop.put(daily.name, daily.read_bytes())
    drop.put(broken.name, broken.read_bytes()[:100])
    # A dividend of 0.23 on the daily file's session, after a 23.00 close: x 0.99 before it.
    drop.put(
        "eventos.csv",
        f"Ticker;Data Ex;Tipo;Valor\nPETR4;{DAYS[2]:%d/%m/%Y};Dividendo;0,23\n".encode(),
    )
    assert drop.pending() == sorted([daily.name, broken.name, "eventos.csv"])

    summary = ingest_flow()

    assert summary.processed == [daily.name, "eventos.csv"]
    assert list(summary.quarantined) == [broken.name]
    assert "is not a complete ZIP archive" in summary.quarantined[broken.name]
    assert summary.report is not None
    assert summary.report.skipped == {"020": 1}
    assert lake.watermarks() == {"PETR4": DAYS[2]}
    petr = lake.read_prices(["PETR4"])
    assert petr["close"].tolist() == [22.0, 23.0, 24.5]
    assert petr["adj_close"].tolist() == pytest.approx([22.0 * 0.99, 23.0 * 0.99, 24.5], rel=1e-12)
    assert summary.report.events == 1
    assert drop.pending() == []
    assert sorted(n.split("-", 1)[1] for n in drop.handled(PROCESSED_DIR)) == [
        daily.name,
        "eventos.csv",
    ]
    assert [n.split("-", 1)[1] for n in drop.handled(QUARANTINE_DIR)] == [broken.name]
