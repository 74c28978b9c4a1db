"""The lake's tickers table: merged just before the prices, from options, reference files,
COTAHIST and the rules; ambiguous tickers and rows on holidays refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from finsimples.ingest import IngestError, ingest_files
from finsimples.lake import Lake
from finsimples.tables import TableRef
from finsimples.tickers import Listing

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data"
TODAY = date(2026, 11, 30)


def snapshot(lake: Lake) -> dict[str, bytes]:
    root = lake.location.path("")
    return {p[len(root) :]: lake.location.read_bytes(p) for p in lake.location.list_files("")}


def test_listings_come_from_rules_cotahist_and_the_bundled_reference(lake: Lake) -> None:
    ingest_files(
        lake,
        [DATA / "formats/COTAHIST_D20240103.TXT", DATA / "formats/indexed.csv"],
        today=TODAY,
    )
    listings = lake.listings()
    assert listings["PETR4"] == Listing(
        "PETR4", "BVMF", "BRL", "PETROBRAS PN N2", "America/Sao_Paulo", "PN"
    )
    assert (listings["AAPL"].exchange, listings["AAPL"].currency) == ("XNAS", "USD")
    assert set(listings) == {"AAPL", "MSFT", "MGLU3", "PETR4", "VALE3"}


def test_exchange_option_places_an_unknown_ticker_and_a_reference_file_too(lake: Lake) -> None:
    with pytest.raises(IngestError, match=r"exchange unknown for ticker.* ZZZ: pass --exchange"):
        ingest_files(lake, [DATA / "bad/ambiguous_ticker.csv"], today=TODAY)
    assert lake.snapshot().version == 0
    ingest_files(lake, [DATA / "bad/ambiguous_ticker.csv"], exchange="XNYS", today=TODAY)
    assert lake.listings()["ZZZ"].exchange == "XNYS"
    # A reference file alone: the tickers table changes, the prices do not.
    prices_version = lake.snapshot().version
    report = ingest_files(lake, [DATA / "formats/tickers_reference.csv"], today=TODAY)
    assert report.write.version is None
    assert report.write.listings == 2  # ZZZ named, ITSA4 new
    assert "2 ticker(s) listed or changed" in report.summary()
    assert report.rows == 0
    assert lake.snapshot().version == prices_version
    listings = lake.listings()
    assert listings["ZZZ"].name == "Zed Corp"
    assert listings["ITSA4"].exchange == "BVMF"  # .SA stripped, kept without prices
    # Same again: nothing to commit.
    again = ingest_files(lake, [DATA / "formats/tickers_reference.csv"]).write
    assert (again.version, again.listings, again.objects_written) == (None, 0, 0)


def test_rows_on_an_exchange_holiday_are_refused(lake: Lake) -> None:
    with pytest.raises(IngestError) as info:
        ingest_files(lake, [DATA / "bad/holiday_row.csv"], today=TODAY)
    assert (
        "holiday_row.csv, column 'date': value '2025-07-04': KO has a row on 2025-07-04, "
        "a holiday of XNYS (no trading session)"
    ) in str(info.value)
    assert snapshot(lake) == {}


def test_a_failure_writing_the_tickers_table_commits_nothing(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tickers table is merged first, so a failure there happens before any price commit.
    real_create = TableRef.create

    def crash_on_tickers(self: TableRef, *args: Any, **kwargs: Any) -> DeltaTable:
        if self.name == "tickers":
            raise OSError("disk full (injected)")
        return real_create(self, *args, **kwargs)

    monkeypatch.setattr(TableRef, "create", crash_on_tickers)
    with pytest.raises(OSError, match="injected"):
        ingest_files(lake, [DATA / "formats/indexed.csv"], today=TODAY)
    monkeypatch.undo()
    assert lake.snapshot().version == 0
    assert lake.listings() == {}
    assert lake.read_prices().empty
    ingest_files(lake, [DATA / "formats/indexed.csv"], today=TODAY)
    assert set(lake.listings()) == {"AAPL", "MSFT"}


def test_vacuum_keeps_the_tickers_table_of_the_latest_version(lake: Lake) -> None:
    ingest_files(lake, [DATA / "formats/indexed.csv"], today=TODAY)
    ingest_files(lake, [DATA / "formats/tickers_reference.csv"], today=TODAY)
    removed = lake.vacuum(retention_hours=0)
    # The reference file replaced the tickers table's file: the old one goes, the table stays.
    assert any(p.startswith("tickers/") for p in removed), removed
    assert set(lake.listings()) == {"AAPL", "MSFT", "ITSA4", "ZZZ"}
