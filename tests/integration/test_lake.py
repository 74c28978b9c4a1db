"""The lake against a local folder and against a real S3 API server process (moto)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsimples.ingest import IngestError, ingest_files
from finsimples.lake import Lake
from finsimples.schemas import VALUE_COLUMNS
from finsimples.storage import Location

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data"
BAD_FILES = sorted((DATA / "bad").iterdir())


def snapshot(lake: Lake) -> dict[str, bytes]:
    """Every object of the lake with its content."""
    root = lake.location.path("")
    return {p[len(root) :]: lake.location.read_bytes(p) for p in lake.location.list_files("")}


def test_full_sample_round_trips(lake: Lake, sample_path: Path, sample_wide: pd.DataFrame) -> None:
    report = ingest_files(lake, [sample_path])
    assert report.write.new == sample_wide.drop(columns="Date").notna().sum().sum()

    frame = lake.read_prices()
    assert frame["ticker"].nunique() == 20
    assert frame["date"].nunique() == 8313
    wide = frame.pivot(index="date", columns="ticker", values="adj_close")
    expected = sample_wide.set_index("Date").rename_axis(index="date", columns="ticker")
    pd.testing.assert_frame_equal(wide, expected, check_names=False, check_freq=False)
    assert set(frame["source"]) == {"sp500_prices.csv.gz"}
    assert lake.watermarks() == dict.fromkeys(expected.columns, date(2022, 12, 28))


def test_ingesting_twice_changes_nothing(lake: Lake, sample_path: Path) -> None:
    ingest_files(lake, [sample_path], until=date(2000, 12, 29))
    before = snapshot(lake)
    again = ingest_files(lake, [sample_path], until=date(2000, 12, 29))
    assert (again.write.new, again.write.replaced, again.write.version) == (0, 0, None)
    assert again.write.unchanged == again.rows
    assert snapshot(lake) == before


def test_a_corrected_value_replaces_the_old_one_and_is_recorded(lake: Lake, tmp_path: Path) -> None:
    ingest_files(lake, [DATA / "formats" / "AAPL.csv"])
    fixed = tmp_path / "AAPL.csv"
    fixed.write_text(
        (DATA / "formats" / "AAPL.csv").read_text().replace("129.652,69007800", "129.7,69007800")
    )
    report = ingest_files(lake, [fixed])
    assert (report.write.new, report.write.replaced, report.write.unchanged) == (0, 1, 4)

    row = lake.read_prices(["AAPL"], start=date(2022, 12, 27), end=date(2022, 12, 27))
    assert row["adj_close"].tolist() == [129.7]
    assert lake.manifest().tickers["AAPL"].rows == 5
    corrections = lake.corrections()
    assert len(corrections) == 1
    record = corrections.iloc[0]
    assert (record["ticker"], str(record["date"])) == ("AAPL", "2022-12-27")
    assert (record["adj_close_old"], record["adj_close_new"]) == (129.652, 129.7)
    assert record["close_old"] == record["close_new"] == 130.03
    assert [c.operation for c in lake.history()] == ["write", "write"]


def test_replaying_day_by_day_writes_two_objects_per_day(lake: Lake, sample_path: Path) -> None:
    ingest_files(lake, [sample_path], until=date(2022, 12, 20))
    for expected_day in (date(2022, 12, 21), date(2022, 12, 22), date(2022, 12, 23)):
        before = set(snapshot(lake))
        report = ingest_files(lake, [sample_path], next_day=True)
        added = set(snapshot(lake)) - before
        assert report.write.new == 20
        assert report.last_date == expected_day
        assert len(added) == report.write.objects_written == 2  # one data file, one manifest
        assert set(lake.watermarks().values()) == {expected_day}
    new = lake.read_new_since(date(2022, 12, 21))
    assert sorted(new["date"].dt.date.unique()) == [date(2022, 12, 22), date(2022, 12, 23)]


def test_compaction_bounds_the_files_a_full_read_opens(
    lake_settings,
    sample_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    lake = Lake.from_settings(lake_settings.model_copy(update={"lake_compact_min_files": 3}))
    ingest_files(lake, [sample_path], until=date(2022, 12, 20))
    full = lake.read_prices()
    ingest_files(lake, [sample_path], next_day=True)
    assert sum(f.year == 2022 for f in lake.manifest().files) == 2  # the bulk file + one day
    report = ingest_files(lake, [sample_path], next_day=True)  # a third file: 2022 merges
    assert report.compacted_version == report.write.version + 1  # type: ignore[operator]
    manifest = lake.manifest()
    assert len(manifest.files) == 33  # one file per year, 1990-2022
    assert manifest.commit is not None
    assert manifest.commit.operation == "compact"
    after = lake.read_prices()
    old = after[after["date"] <= "2022-12-20"].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, full)
    assert after["date"].max() == pd.Timestamp("2022-12-22")


def test_a_failure_mid_write_leaves_the_previous_version_whole(
    lake: Lake, sample_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_files(lake, [sample_path], until=date(2021, 12, 31))
    version, before = lake.manifest().version, lake.read_prices()

    real_write = Location.write_bytes
    calls = []

    def crash_on_second_file(self: Location, path: str, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full (injected)")
        real_write(self, path, data)

    monkeypatch.setattr(Location, "write_bytes", crash_on_second_file)
    with pytest.raises(OSError, match="injected"):
        ingest_files(lake, [sample_path])  # 2022 and a correction would be two data files
    monkeypatch.undo()

    assert lake.manifest().version == version
    pd.testing.assert_frame_equal(lake.read_prices(), before)
    # The file that made it is not part of any version: vacuum removes it, reads never see it.
    assert any(p.startswith("prices/") for p in lake.vacuum(keep_versions=10))
    report = ingest_files(lake, [sample_path])
    assert report.write.version == version + 1
    assert lake.read_prices()["date"].max() == pd.Timestamp("2022-12-28")


def test_a_half_written_file_is_never_read(lake: Lake, sample_path: Path) -> None:
    ingest_files(lake, [sample_path], until=date(1995, 12, 29))
    before = lake.read_prices()
    stray = lake.location.path("prices", "year=1995", "9999999999-deadbeef.parquet")
    lake.location.write_bytes(stray, b"PAR1 truncated")
    lake.location.write_bytes(lake.location.path("_manifests", ".tmp-123"), b"{")
    pd.testing.assert_frame_equal(lake.read_prices(), before)
    assert lake.manifest().version == 1
    removed = lake.vacuum(keep_versions=5)
    assert "prices/year=1995/9999999999-deadbeef.parquet" in removed
    assert "_manifests/.tmp-123" in removed


@pytest.mark.parametrize("bad", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_bad_input_leaves_the_lake_unchanged(lake: Lake, bad: Path) -> None:
    ingest_files(lake, [DATA / "formats" / "AAPL.csv"])
    before = snapshot(lake)
    with pytest.raises(IngestError, match="nothing was written"):
        # With a valid file first: one bad file stops the whole ingest.
        ingest_files(lake, [DATA / "formats" / "long.csv", bad])
    assert snapshot(lake) == before


def test_values_keep_full_precision_and_missing_stays_missing(lake: Lake) -> None:
    ingest_files(lake, [DATA / "formats" / "petr4.sa.csv", DATA / "formats" / "wide_gaps.csv"])
    frame = lake.read_prices()
    petr = frame[frame["ticker"] == "PETR4"]  # .SA stripped
    assert petr["close"].tolist() == [37.77, 38.66, 38.05]
    assert petr["volume"].tolist() == [29437400, 53089200, 42500100]
    wide = frame[frame["ticker"] == "BF-B"]
    assert len(wide) == 1
    assert np.isnan(wide[list(VALUE_COLUMNS[:-2])].to_numpy()).all()
