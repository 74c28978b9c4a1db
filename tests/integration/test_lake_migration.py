"""`finsimples lake migrate`: a lake the manifest code wrote becomes Delta tables, in place.

The old lake is built with the old code itself (``ManifestLake``): ingests, corrections, a
tickers-only write and a compaction, on a local folder and on the S3 API server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

import finsimples.migration as migration_module
from finsimples.ingest import place_tickers, read_price_file
from finsimples.lake import Lake
from finsimples.lake_format import MIGRATED_MARKER, UnmigratedLakeError
from finsimples.legacy.lake import ManifestLake
from finsimples.migration import MigrationError, migrate
from finsimples.settings import Settings
from finsimples.storage import Location
from finsimples.tickers import make_listing
from tests.conftest import s3_settings
from tests.integration.test_cli import env_of, run

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data"
FIRST_YEAR = 2020  # three years of the sample: enough files and versions, and fast


@pytest.fixture(scope="module")
def sample_rows(sample_path: Path) -> pd.DataFrame:
    rows = read_price_file(sample_path)
    return rows[rows["date"].dt.year >= FIRST_YEAR].reset_index(drop=True)


def build_manifest_lake(settings: Settings, rows: pd.DataFrame) -> ManifestLake:
    """Seven versions the way the old code wrote them: every kind of file and commit."""
    legacy = ManifestLake.from_settings(settings)
    day = rows["date"]
    legacy.write_prices(  # v1: data files and the tickers table
        rows[day.dt.year == FIRST_YEAR], source="up to 2020", listings=place_tickers([rows], {})
    )
    legacy.write_prices(rows[day.dt.year == FIRST_YEAR + 1], source="2021")  # v2
    march = (day.dt.year == FIRST_YEAR + 1) & (day.dt.month == 3)
    fix = rows[march & rows["ticker"].isin(["AAPL", "KO"])]  # v3: replaced rows, a correction
    fix = fix.assign(adj_close=fix["adj_close"] * 1.01, source="fix.csv")
    legacy.write_prices(fix, source="fix.csv")
    brk = make_listing("BRK.B", "XNYS", name="Berkshire Hathaway Inc. Class B")  # v4: listings only
    legacy.write_prices(rows.iloc[0:0], source="tickers.csv", listings={"BRK.B": brk})
    assert legacy.compact([FIRST_YEAR + 1]) is not None  # v5: 2021's two files merged
    legacy.write_prices(rows[day.dt.year == FIRST_YEAR + 2], source="2022")  # v6
    # v7: OHLCV replacing AAPL's adjusted-close-only rows, and a row corrected a second time
    again = fix.iloc[:1].assign(adj_close=fix["adj_close"].iloc[0] * 1.01, source="fix2.csv")
    aapl = read_price_file(DATA / "formats" / "AAPL.csv")
    legacy.write_prices(pd.concat([aapl, again], ignore_index=True), source="AAPL.csv, fix2.csv")
    assert legacy.manifest().version == 7
    return legacy


def files_of(location: Location) -> dict[str, bytes]:
    root = location.path("")
    return {p[len(root) :]: location.read_bytes(p) for p in location.list_files("")}


def old_format(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files that are not Delta's: its logs, change data and ``part-*`` data files."""
    return {
        p: b
        for p, b in files.items()
        if "_delta_log/" not in p and "_change_data/" not in p and "/part-" not in p
    }


def as_migrated(corrections: pd.DataFrame, version: int) -> pd.DataFrame:
    """The manifest lake's corrections as ``Lake.corrections`` should show them."""
    frame = corrections.assign(legacy_version=corrections["version"], version=version)
    frame["date"] = pd.to_datetime(frame["date"])
    return comparable(frame)


def comparable(corrections: pd.DataFrame) -> pd.DataFrame:
    frame = corrections.assign(date=pd.to_datetime(corrections["date"]).astype("datetime64[ns]"))
    frame = frame.sort_values(["legacy_version", "ticker", "date"], kind="stable")
    return frame[sorted(frame.columns)].reset_index(drop=True)


def test_a_manifest_lake_migrates_in_place(
    lake_settings: Settings, sample_rows: pd.DataFrame
) -> None:
    legacy = build_manifest_lake(lake_settings, sample_rows)
    prices, listings, corrections = legacy.read_prices(), legacy.listings(), legacy.corrections()
    old_files = files_of(legacy.location)
    env = env_of(lake_settings)

    with pytest.raises(UnmigratedLakeError, match="run `finsimples lake migrate`"):
        Lake.from_settings(lake_settings).read_prices()
    refused = run("lake", "info", env=env)
    assert refused.returncode == 1
    assert f"lake {lake_settings.resolved_lake_uri} is in the manifest format" in refused.stderr
    assert "`finsimples lake migrate`" in refused.stderr

    done = run("lake", "migrate", env=env)
    assert done.returncode == 0, done.stderr
    summary = " ".join(done.stdout.split())  # rich wraps long lines
    assert f"{len(prices):,} rows, 20 tickers, 21 listings" in summary
    assert f"{len(corrections)} corrections" in summary
    assert "manifest version 7 -> Delta version 1" in summary
    assert "until `finsimples lake vacuum`" in summary
    migrated_files = files_of(legacy.location)
    marker = json.loads(migrated_files[MIGRATED_MARKER])
    assert {k: marker[k] for k in ("manifest_version", "delta_version", "rows", "listings")} == {
        "manifest_version": 7,
        "delta_version": 1,
        "rows": len(prices),
        "listings": 21,
    }
    assert old_format(migrated_files) == {
        **old_files,
        MIGRATED_MARKER: migrated_files[MIGRATED_MARKER],
    }
    again = migrate(lake_settings)
    assert again.status == "already migrated"
    assert "is already migrated (manifest version 7 -> Delta version 1" in again.summary()
    assert files_of(legacy.location) == migrated_files

    lake = Lake.from_settings(lake_settings)
    pd.testing.assert_frame_equal(lake.read_prices(), prices)
    assert lake.listings() == listings
    migrated = comparable(lake.corrections())
    pd.testing.assert_frame_equal(migrated, as_migrated(corrections, 1), check_dtype=False)
    assert (
        migrated["legacy_version"].tolist() == [3] * 46 + [7] * 6
    )  # 23 March days x 2; AAPL.csv + 1
    aapl = lake.read_prices(["AAPL"], start=date(2022, 12, 27), end=date(2022, 12, 27))
    assert aapl[["open", "adj_close", "volume"]].values.tolist() == [[131.38, 129.652, 69007800.0]]
    [commit] = [c for c in lake.history() if c.operation == "migrate"]
    assert (commit.version, commit.source, commit.new) == (1, "manifest version 7", len(prices))

    # The migrated lake is the lake: a new write, then a vacuum that removes the old format.
    last = prices[prices["date"] == prices["date"].max()]
    nextday = last.assign(date=pd.Timestamp("2022-12-29"), source="next")
    fixed = last.iloc[:1].assign(adj_close=last["adj_close"].iloc[0] + 1, source="next")
    result = lake.write_prices(pd.concat([nextday, fixed]), source="next")
    assert (result.new, result.replaced, result.version) == (20, 1, 2)
    after = lake.read_prices()
    assert len(after) == len(prices) + 20
    newest = lake.corrections().query("version == 2")
    assert len(newest) == 1
    assert newest["legacy_version"].isna().all()

    deleted = lake.vacuum(retention_hours=0)
    assert set(old_files) <= set(deleted)
    assert not set(old_files) & set(files_of(lake.location))
    fresh = Lake.from_settings(lake_settings)
    pd.testing.assert_frame_equal(fresh.read_prices(), after)
    assert fresh.listings() == listings
    assert len(fresh.corrections()) == len(corrections) + 1


def inject_write_failure(monkeypatch: pytest.MonkeyPatch) -> str:
    """The tickers table's append lands, then the process 'fails': prices and tickers left."""
    real = migration_module.write_deltalake

    def write_then_fail(table: DeltaTable, data: pa.Table, **kwargs: Any) -> None:
        real(table, data, **kwargs)
        if table.table_uri.rstrip("/").endswith("tickers"):
            raise OSError("connection reset by peer (injected)")

    monkeypatch.setattr(migration_module, "write_deltalake", write_then_fail)
    return "failed while writing the Delta tables of manifest version 7: connection reset"


def inject_wrong_row(monkeypatch: pytest.MonkeyPatch) -> str:
    """One value written wrong: the row-for-row check must catch it."""
    real = migration_module.stored_table

    def off_by_a_cent(frame: pd.DataFrame) -> pa.Table:
        frame = frame.copy()
        frame.loc[frame.index[5], "adj_close"] += 0.01
        return real(frame)

    monkeypatch.setattr(migration_module, "stored_table", off_by_a_cent)
    return "failed while checking the Delta tables against manifest version 7: prices table: row"


def inject_marker_failure(monkeypatch: pytest.MonkeyPatch) -> str:
    def refuse(self: Location, path: str, data: bytes) -> None:
        raise OSError(f"{path}: no space left on device (injected)")

    monkeypatch.setattr(Location, "write_bytes", refuse)
    return "failed while writing _manifests/MIGRATED.json of manifest version 7"


@pytest.mark.parametrize("inject", [inject_write_failure, inject_wrong_row, inject_marker_failure])
def test_a_failed_migration_leaves_the_old_lake_whole_and_can_be_rerun(
    tmp_path: Path,
    sample_rows: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    inject: Callable[[pytest.MonkeyPatch], str],
) -> None:
    settings = Settings(lake_uri=str(tmp_path / "lake"))
    legacy = build_manifest_lake(settings, sample_rows)
    prices, listings, corrections = legacy.read_prices(), legacy.listings(), legacy.corrections()
    old_files = files_of(legacy.location)

    expected = inject(monkeypatch)
    with pytest.raises(MigrationError) as failure:
        migrate(settings)
    message = str(failure.value)
    assert message.startswith(f"lake {settings.resolved_lake_uri}: the migration")
    assert expected in message
    assert "the manifest lake is unchanged" in message
    assert "run `finsimples lake migrate` again" in message
    monkeypatch.undo()

    left = files_of(legacy.location)
    assert old_format(left) == old_files  # byte for byte, and no marker
    assert len(left) > len(old_files)  # the failed attempt's Delta files are there
    reread = ManifestLake.from_settings(settings)
    pd.testing.assert_frame_equal(reread.read_prices(), prices)
    assert reread.listings() == listings
    pd.testing.assert_frame_equal(reread.corrections(), corrections)
    with pytest.raises(UnmigratedLakeError):
        Lake.from_settings(settings).read_prices()

    report = migrate(settings)
    assert report.status == "migrated"
    assert report.leftovers_removed > 0
    lake = Lake.from_settings(settings)
    pd.testing.assert_frame_equal(lake.read_prices(), prices)
    assert lake.listings() == listings
    assert len(lake.corrections()) == len(corrections)
    assert [c.operation for c in lake.history()] == ["create table", "migrate"]


def test_a_failed_migration_on_s3_can_be_rerun(
    s3_endpoint: str, sample_rows: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = s3_settings(s3_endpoint)
    legacy = build_manifest_lake(settings, sample_rows)
    prices, old_files = legacy.read_prices(), files_of(legacy.location)
    inject_write_failure(monkeypatch)
    with pytest.raises(MigrationError, match=f"lake {settings.resolved_lake_uri}: "):
        migrate(settings)
    monkeypatch.undo()
    assert old_format(files_of(legacy.location)) == old_files
    pd.testing.assert_frame_equal(ManifestLake.from_settings(settings).read_prices(), prices)

    assert migrate(settings).leftovers_removed > 0
    pd.testing.assert_frame_equal(Lake.from_settings(settings).read_prices(), prices)


def test_nothing_to_migrate_changes_nothing(tmp_path: Path, sample_rows: pd.DataFrame) -> None:
    empty = Settings(lake_uri=str(tmp_path / "empty"))
    assert migrate(empty).summary() == f"lake {tmp_path / 'empty'} holds no manifest lake: " + (
        "nothing to migrate"
    )
    assert not (tmp_path / "empty").exists()

    delta = Settings(lake_uri=str(tmp_path / "delta"))
    Lake.from_settings(delta).write_prices(sample_rows.head(40), source="a")
    before = files_of(Lake.from_settings(delta).location)
    assert migrate(delta).status == "nothing to migrate"
    assert files_of(Lake.from_settings(delta).location) == before
