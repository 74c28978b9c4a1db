"""The drop location on a local folder and on the S3 API server; the replay feed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from finsimples.drop import PROCESSED_DIR, QUARANTINE_DIR, DropZone
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.replay import next_day_file
from finsimples.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def drop(lake_settings: Settings) -> DropZone:
    """A drop location beside the lake: a folder, or a prefix of the lake's bucket."""
    uri = lake_settings.resolved_lake_uri.rsplit("/", 1)[0] + "/incoming"
    return DropZone.from_settings(lake_settings.model_copy(update={"drop_uri": uri}))


def test_pending_lists_price_files_at_the_top_level_only(drop: DropZone) -> None:
    assert drop.pending() == []
    names = ("b.csv", "a.parquet", "c.csv.gz", "notes.txt", ".hidden.csv")
    b3 = ("COTAHIST_D02012023.ZIP", "COTAHIST_A2022.TXT", "COTAHIST_M012023.zip")
    for name in (*names, *b3):
        drop.put(name, b"x")
    drop.put("processed/old.csv", b"x")
    assert drop.pending() == [
        "COTAHIST_A2022.TXT",
        "COTAHIST_D02012023.ZIP",
        "COTAHIST_M012023.zip",
        "a.parquet",
        "b.csv",
        "c.csv.gz",
    ]


def test_processed_and_quarantined_files_leave_the_pending_list(
    drop: DropZone, tmp_path: Path
) -> None:
    drop.put("GOOG.csv", b"Date,Close\n")
    drop.put("bad.csv", b"oops")
    assert drop.fetch("GOOG.csv", tmp_path).read_bytes() == b"Date,Close\n"
    now = datetime(2026, 1, 2, 18, 30, tzinfo=UTC)

    drop.mark_processed("GOOG.csv", now=now)
    drop.quarantine("bad.csv", "bad.csv: missing column 'Date'", now=now)
    drop.put("GOOG.csv", b"the next day")  # a feed reusing a name keeps both days
    drop.mark_processed("GOOG.csv")

    assert drop.pending() == []
    processed = drop.handled(PROCESSED_DIR)
    assert processed[0] == "20260102T183000000000Z-GOOG.csv"
    assert len(processed) == 2
    assert drop.handled(QUARANTINE_DIR) == ["20260102T183000000000Z-bad.csv"]
    error = drop.location.path(QUARANTINE_DIR, "20260102T183000000000Z-bad.csv.error.txt")
    assert drop.location.read_bytes(error) == b"bad.csv: missing column 'Date'\n"


def test_the_replay_feed_sends_the_next_trading_day(tmp_path: Path, sample_path: Path) -> None:
    lake = Lake.from_settings(Settings(state_dir=tmp_path / "state"))
    ingest_files(lake, [sample_path], until=date(2022, 11, 23))

    day = next_day_file(sample_path, lake)  # Thanksgiving: the market was closed on the 24th

    assert day is not None
    assert (day.name, day.day, day.rows) == ("prices-2022-11-25.csv", date(2022, 11, 25), 20)
    path = tmp_path / day.name
    path.write_bytes(day.data)
    report = ingest_files(lake, [path])
    assert (report.write.new, report.write.replaced) == (20, 0)
    again = ingest_files(lake, [sample_path], until=date(2022, 11, 25))
    assert again.write.new == 0
    assert again.write.replaced == 0  # the feed's values equal the sample's


def test_the_replay_feed_ends_with_its_file(tmp_path: Path, sample_path: Path) -> None:
    lake = Lake.from_settings(Settings(state_dir=tmp_path / "state"))
    ingest_files(lake, [sample_path])
    assert next_day_file(sample_path, lake) is None
