"""The lake's tickers table: written with the prices in one commit, from options, reference
files, COTAHIST and the rules; ambiguous tickers and rows on holidays refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from finsimples.ingest import IngestError, ingest_files
from finsimples.lake import Lake
from finsimples.storage import Location
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
        "PETR4", "BVMF", "BRL", "PETROBRAS PN N2", "America/Sao_Paulo"
    )
    assert (listings["AAPL"].exchange, listings["AAPL"].currency) == ("XNAS", "USD")
    assert set(listings) == {"AAPL", "MSFT", "MGLU3", "PETR4", "VALE3"}


def test_exchange_option_places_an_unknown_ticker_and_a_reference_file_too(lake: Lake) -> None:
    with pytest.raises(IngestError, match=r"exchange unknown for ticker.* ZZZ: pass --exchange"):
        ingest_files(lake, [DATA / "bad/ambiguous_ticker.csv"], today=TODAY)
    assert lake.manifest().version == 0
    ingest_files(lake, [DATA / "bad/ambiguous_ticker.csv"], exchange="XNYS", today=TODAY)
    assert lake.listings()["ZZZ"].exchange == "XNYS"
    # A reference file alone: the table changes, the prices do not.
    report = ingest_files(lake, [DATA / "formats/tickers_reference.csv"], today=TODAY)
    assert report.write.version == 2
    assert report.rows == 0
    listings = lake.listings()
    assert listings["ZZZ"].name == "Zed Corp"
    assert listings["ITSA4"].exchange == "BVMF"  # .SA stripped, kept without prices
    # Same again: nothing to commit.
    assert ingest_files(lake, [DATA / "formats/tickers_reference.csv"]).write.version is None


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
    real_write = Location.write_bytes

    def crash_on_tickers(self: Location, path: str, data: bytes) -> None:
        if "/tickers/" in path or path.startswith("tickers/"):
            raise OSError("disk full (injected)")
        real_write(self, path, data)

    monkeypatch.setattr(Location, "write_bytes", crash_on_tickers)
    with pytest.raises(OSError, match="injected"):
        ingest_files(lake, [DATA / "formats/indexed.csv"], today=TODAY)
    monkeypatch.undo()
    assert lake.manifest().version == 0
    assert lake.listings() == {}
    assert lake.read_prices().empty
    ingest_files(lake, [DATA / "formats/indexed.csv"], today=TODAY)
    assert set(lake.listings()) == {"AAPL", "MSFT"}
    assert any(p.startswith("prices/") for p in lake.vacuum(keep_versions=1))


def test_vacuum_keeps_the_tickers_table_of_kept_versions(lake: Lake) -> None:
    ingest_files(lake, [DATA / "formats/indexed.csv"], today=TODAY)
    ingest_files(lake, [DATA / "formats/tickers_reference.csv"], today=TODAY)
    removed = lake.vacuum(keep_versions=1)
    assert "tickers/0000000001.parquet" in removed
    assert set(lake.listings()) == {"AAPL", "MSFT", "ITSA4", "ZZZ"}
