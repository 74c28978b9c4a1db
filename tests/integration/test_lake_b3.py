"""B3's COTAHIST files into a real lake: share kinds in the tickers table (also in a table
written before they were kept), skipped markets in the report, broken files leave no trace."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from finsimples.calendars import next_sessions
from finsimples.ingest import IngestError, ingest_files
from finsimples.lake import Lake
from finsimples.schemas import LEGACY_TICKERS_SCHEMA
from tests.b3 import Quote, cotahist_text, write_cotahist

pytestmark = pytest.mark.integration
TODAY = date(2026, 11, 30)
DAYS = next_sessions("BVMF", date(2022, 4, 29), 3)


def quotes() -> list[Quote]:
    rows = []
    for i, day in enumerate(DAYS):
        rows += [
            Quote(day, "VALE3", 80.0 + i, name="VALE", especi="ON      NM"),
            Quote(day, "HGLG11", 160.0 + i, name="FII CSHG LOG", especi="CI"),
            Quote(day, "VALE3F", 80.1 + i, market="020", name="VALE", especi="ON      NM"),
            Quote(day, "VALEE850", 1.5, market="070", name="VALEE", especi="ON      NM"),
        ]
    return rows


def files(lake: Lake) -> dict[str, bytes]:
    root = lake.location.path("")
    return {p[len(root) :]: lake.location.read_bytes(p) for p in lake.location.list_files("")}


def test_a_yearly_zip_lands_with_share_kinds_and_counts_what_it_skipped(
    lake: Lake, tmp_path: Path
) -> None:
    path = write_cotahist(tmp_path, "COTAHIST_A2022", quotes())

    report = ingest_files(lake, [path], today=TODAY)

    assert (report.rows, report.write.new) == (6, 6)
    assert report.skipped == {"020": 3, "070": 3}
    assert "6 quotes of other markets skipped (020 (fractional lots): 3, 070 (calls): 3)" in (
        report.summary()
    )
    listings = lake.listings()
    assert (listings["VALE3"].share_kind, listings["HGLG11"].share_kind) == ("ON", "CI")
    assert listings["HGLG11"].name == "FII CSHG LOG CI"
    prices = lake.read_prices(["HGLG11"])
    assert prices["close"].tolist() == prices["adj_close"].tolist() == [160.0, 161.0, 162.0]
    again = ingest_files(lake, [write_cotahist(tmp_path, "COTAHIST_A2022", quotes(), zipped=False)])
    assert (again.write.new, again.write.replaced, again.write.version) == (0, 0, None)


def test_a_tickers_table_written_before_share_kinds_reads_and_takes_them(
    lake: Lake, tmp_path: Path
) -> None:
    old = lake.tickers_table.create(LEGACY_TICKERS_SCHEMA)
    row = {
        "ticker": "VALE3",
        "exchange": "BVMF",
        "currency": "BRL",
        "name": "Vale",
        "timezone": "America/Sao_Paulo",
    }
    old.merge(
        pa.Table.from_pylist([row], schema=LEGACY_TICKERS_SCHEMA),
        predicate="t.ticker = s.ticker",
        source_alias="s",
        target_alias="t",
    ).when_not_matched_insert_all().execute()
    assert lake.listings()["VALE3"].share_kind == ""  # the missing column reads as empty

    ingest_files(lake, [write_cotahist(tmp_path, "COTAHIST_A2022", quotes())], today=TODAY)

    listings = lake.listings()
    assert listings["VALE3"].share_kind == "ON"
    assert listings["VALE3"].name == "Vale"  # the stored listing kept, its kind added
    assert listings["HGLG11"].share_kind == "CI"
    schema = lake.tickers_table.open().schema().to_arrow()  # type: ignore[union-attr]
    assert "share_kind" in pa.schema(schema).names


@pytest.mark.parametrize("broken", ["truncated", "two files", "wrong count"])
def test_a_broken_file_among_good_ones_leaves_the_lake_untouched(
    lake: Lake, tmp_path: Path, broken: str
) -> None:
    good = write_cotahist(tmp_path, "COTAHIST_A2022", quotes())
    ingest_files(lake, [good], today=TODAY)
    before = files(lake)
    later = [Quote(next_sessions("BVMF", DAYS[-1], 1)[0], "VALE3", 90.0)]
    (tmp_path / "day").mkdir()
    bad = write_cotahist(tmp_path / "day", "COTAHIST_D05052022", later)
    if broken == "truncated":
        bad.write_bytes(bad.read_bytes()[:-40])
        reason = "is not a complete ZIP archive"
    elif broken == "two files":
        with zipfile.ZipFile(bad, "a") as archive:
            archive.writestr("COTAHIST_D06052022.TXT", cotahist_text(later))
        reason = "holds 2 files"
    else:
        bad = tmp_path / "COTAHIST_D05052022.TXT"
        bad.write_bytes(cotahist_text(later, total=99))
        reason = "the trailer counts '00000000099' records but the file has 3 lines"

    with pytest.raises(IngestError, match=reason) as info:
        ingest_files(lake, [good, bad], today=TODAY)

    assert str(info.value).startswith(bad.name)
    assert files(lake) == before
