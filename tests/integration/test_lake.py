"""The lake against a local folder and against a real S3 API server process (moto)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from finsimples.ingest import IngestError, ingest_files
from finsimples.lake import Lake
from finsimples.schemas import VALUE_COLUMNS
from finsimples.settings import Settings
from finsimples.tables import LakeConflictError

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data"
BAD_FILES = sorted((DATA / "bad").iterdir())


def lake_settings_of(lake: Lake) -> Settings:
    """Settings for another handle on ``lake`` (local folder or the S3 API server)."""
    if lake.location.is_local:
        return Settings(lake_uri=lake.uri)
    options = lake.prices.options or {}
    return Settings(
        lake_uri=lake.uri,
        s3_endpoint_url=options["AWS_ENDPOINT_URL"],
        s3_access_key_id=options["AWS_ACCESS_KEY_ID"],
        s3_secret_access_key=options["AWS_SECRET_ACCESS_KEY"],
    )


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
    assert lake.snapshot().tickers["AAPL"].rows == 5
    corrections = lake.corrections()
    assert len(corrections) == 1
    record = corrections.iloc[0]
    assert (record["ticker"], str(record["date"])) == ("AAPL", "2022-12-27")
    assert (record["adj_close_old"], record["adj_close_new"]) == (129.652, 129.7)
    assert record["close_old"] == record["close_new"] == 130.03
    assert [c.operation for c in lake.history()] == ["create table", "write", "write"]


def test_replaying_day_by_day_writes_three_objects_per_day(lake: Lake, sample_path: Path) -> None:
    ingest_files(lake, [sample_path], until=date(2022, 12, 20))
    for expected_day in (date(2022, 12, 21), date(2022, 12, 22), date(2022, 12, 23)):
        before = set(snapshot(lake))
        report = ingest_files(lake, [sample_path], next_day=True)
        added = set(snapshot(lake)) - before
        assert report.write.new == 20
        assert report.last_date == expected_day
        # One data file, its change-data file and the commit's log entry.
        assert len(added) == report.write.objects_written == 3, sorted(added)
        assert set(lake.watermarks().values()) == {expected_day}
    new = lake.read_new_since(date(2022, 12, 21))
    assert sorted(new["date"].dt.date.unique()) == [date(2022, 12, 22), date(2022, 12, 23)]
    assert [c.operation for c in lake.history()][-3:] == ["write"] * 3


def test_compaction_bounds_the_files_a_full_read_opens(
    lake_settings,
    sample_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    lake = Lake.from_settings(lake_settings)
    ingest_files(lake, [sample_path], until=date(2022, 12, 20))
    full = lake.read_prices()
    per_year = lake.files_per_year()
    assert sorted(per_year) == list(range(1990, 2023))
    # Ingest compacts a year once it holds lake_compact_min_files files: one day more here.
    settings = lake_settings.model_copy(update={"lake_compact_min_files": per_year[2022] + 1})
    lake = Lake.from_settings(settings)
    report = ingest_files(lake, [sample_path], next_day=True)
    assert report.compacted_version == report.write.version + 1  # type: ignore[operator]
    assert lake.files_per_year()[2022] == 1
    assert lake.history()[-1].operation == "compact"
    others = {year: n for year, n in per_year.items() if year != 2022}
    compacted = lake.compact(others)  # by hand, the other years
    merged = sum(n for n in others.values() if n > 1)
    assert (compacted.files_removed if compacted else 0) == merged
    assert lake.snapshot().files == 33  # one file per year, 1990-2022
    after = lake.read_prices()
    old = after[after["date"] <= "2022-12-20"].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, full)
    assert after["date"].max() == pd.Timestamp("2022-12-21")
    assert lake.compact() is None  # nothing left to merge


def test_a_failed_commit_leaves_the_previous_version_whole(
    lake: Lake, sample_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_files(lake, [sample_path], until=date(2021, 12, 31))
    version, before = lake.snapshot().version, lake.read_prices()
    # Another writer commits first every time: this write reads version N, decides, writes
    # its data files, and finds N+1 taken when it commits (a metadata change always conflicts).
    attempts = []
    real_merge = DeltaTable.merge

    def merge_and_lose(self: DeltaTable, *args: object, **kwargs: object) -> object:
        attempts.append(self.version())
        other = DeltaTable(lake.prices.uri, storage_options=lake.prices.options)
        other.alter.set_table_description(f"a competing commit ({len(attempts)})")
        return real_merge(self, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "merge", merge_and_lose)
    with pytest.raises(LakeConflictError, match=f"lake {lake.uri}: .* lost the commit"):
        Lake.from_settings(
            lake_settings_of(lake).model_copy(update={"lake_commit_attempts": 2})
        ).write_prices(lake.read_prices(end=date(1990, 1, 31)).assign(adj_close=1.0), source="test")
    monkeypatch.undo()
    assert len(attempts) == 2
    assert lake.read_prices().equals(before)  # the competing commits changed no row
    assert lake.corrections().empty
    # The lost attempts' data files are in no version: reads never see them, vacuum removes them.
    assert any(p.startswith("prices/year=1990/") for p in lake.vacuum(retention_hours=0))
    pd.testing.assert_frame_equal(lake.read_prices(), before)
    report = ingest_files(lake, [sample_path])
    assert report.write.version is not None
    assert report.write.version > version
    assert lake.read_prices()["date"].max() == pd.Timestamp("2022-12-28")


def test_a_stray_file_is_never_read(lake: Lake, sample_path: Path) -> None:
    ingest_files(lake, [sample_path], until=date(1995, 12, 29))
    before = lake.read_prices()
    stray = lake.location.path("prices", "year=1995", "part-99999-deadbeef-c000.zstd.parquet")
    lake.location.write_bytes(stray, b"PAR1 truncated")
    pd.testing.assert_frame_equal(lake.read_prices(), before)
    assert lake.snapshot().version == 1
    removed = lake.vacuum(retention_hours=0)
    assert "prices/year=1995/part-99999-deadbeef-c000.zstd.parquet" in removed
    pd.testing.assert_frame_equal(lake.read_prices(), before)


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
