"""Other engines read the lake's Delta tables: Polars and DuckDB row for row, Spark by protocol.

The lake promises that its tables are plain Delta tables (README, "Querying the lake from
DuckDB, Polars and Spark"). Polars and DuckDB read them in a separate process
(``lake_engines.py``): a process that read through delta-rs' pyarrow filesystem handler may
abort at exit (delta-rs issue 2184), and that must not be the pytest process. The process is
judged by its exit code and its JSON answer, compared here with ``Lake.read_prices()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from finsimples.ingest import ingest_files
from finsimples.lake import CORRECTIONS, PRICES, TICKERS, Lake, Snapshot
from finsimples.settings import Settings
from tests.conftest import s3_settings

pytestmark = pytest.mark.integration
ENGINES = Path(__file__).with_name("lake_engines.py")
AAPL = Path(__file__).resolve().parents[1] / "data" / "formats" / "AAPL.csv"
BEFORE, AFTER = 129.652, 129.7  # AAPL's adjusted close on 2022-12-27, before and after its fix
# Table features delta-spark 3.0 (the oldest 3.x) reads and writes (docs.delta.io/3.0.0/versioning).
SPARK_3_WRITER_FEATURES = {
    "appendOnly",
    "invariants",
    "checkConstraints",
    "changeDataFeed",
    "generatedColumns",
    "columnMapping",
    "deletionVectors",
    "timestampNtz",
    "domainMetadata",
    "v2Checkpoint",
    "icebergCompatV1",
}
SPARK_3_READER_FEATURES = {"columnMapping", "deletionVectors", "timestampNtz", "v2Checkpoint"}
SPARK_TYPES = {"string", "long", "integer", "double", "date", "timestamp", "boolean"}


@dataclass(frozen=True)
class Written:
    """A lake holding part of the sample and one corrected value, and its versions."""

    lake: Lake
    settings: Settings
    before_fix: int  # the prices version that still holds the old value
    after_fix: int  # the version that replaced it


def write_sample_and_fix(lake: Lake, settings: Settings, sample: Path, scratch: Path) -> Written:
    """Two years of the sample in two writes, AAPL's OHLCV file, then a fix of one of its rows."""
    ingest_files(lake, [sample], until=date(1991, 6, 28))
    ingest_files(lake, [sample], until=date(1991, 12, 31))  # 1991's second file
    before = ingest_files(lake, [AAPL]).write.version
    fixed = scratch / "AAPL.csv"
    fixed.write_text(AAPL.read_text().replace(f"{BEFORE},69007800", f"{AFTER},69007800"))
    after = ingest_files(lake, [fixed]).write
    assert after.replaced == 1
    assert before is not None
    assert after.version is not None
    return Written(lake, settings, before, after.version)


@pytest.fixture(scope="module", params=["local", "s3"])
def written(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_path: Path
) -> Written:
    """One written lake per backend, shared by the tests that only read it."""
    scratch = tmp_path_factory.mktemp("readers")
    with pytest.MonkeyPatch.context() as patch:  # as tests/conftest.py isolates each test
        for name in [n for n in os.environ if n.startswith("FINSIMPLES_")]:
            patch.delenv(name)
        patch.chdir(scratch)
        if request.param == "local":
            settings = Settings(lake_uri=str(scratch / "lake"))
        else:
            settings = s3_settings(request.getfixturevalue("s3_endpoint"))
        return write_sample_and_fix(Lake.from_settings(settings), settings, sample_path, scratch)


@pytest.fixture(scope="module")
def engines_read(written: Written) -> dict:
    """Both versions as Polars and DuckDB read them, in one run of their process."""
    return read_with_engines(written, [written.before_fix, written.after_fix])


def engine_options(settings: Settings) -> dict[str, str] | None:
    """The storage options the README gives other engines for S3 (None for a local folder)."""
    if not settings.resolved_lake_uri.startswith("s3://"):
        return None
    assert settings.s3_endpoint_url
    assert settings.s3_access_key_id
    assert settings.s3_secret_access_key
    return {
        "AWS_ENDPOINT_URL": settings.s3_endpoint_url,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": settings.s3_region,
        "AWS_ACCESS_KEY_ID": settings.s3_access_key_id.get_secret_value(),
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),
    }


def table_uri(settings: Settings, name: str) -> str:
    """Where another engine opens one of the lake's tables."""
    return f"{settings.resolved_lake_uri.rstrip('/')}/{name}"


def read_with_engines(written: Written, versions: list[int]) -> dict:
    """What Polars and DuckDB read, from their own process (see ``lake_engines.py``)."""
    request = {
        "prices": table_uri(written.settings, PRICES),
        "tickers": table_uri(written.settings, TICKERS),
        "corrections": table_uri(written.settings, CORRECTIONS),
        "options": engine_options(written.settings),
        "versions": versions,
    }
    done = subprocess.run(
        [sys.executable, str(ENGINES)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, (
        f"the engines' process exited {done.returncode}: {done.stderr[-2000:]}"
    )
    return json.loads(done.stdout)


def lake_rows(lake: Lake, version: int) -> list[list[object]]:
    """``Lake.read_prices()`` at ``version`` as the engines' process reports rows."""
    frame = lake.read_prices(snapshot=Snapshot(version=version))
    frame = frame[["ticker", "date", "adj_close", "close", "volume"]].astype(object)
    frame["date"] = frame["date"].map(lambda d: d.date().isoformat())
    return frame.where(frame.notna(), None).to_numpy().tolist()


def lake_counts(lake: Lake, version: int) -> dict[str, int]:
    """Rows per ticker at ``version``, as the lake reads them."""
    counts = lake.read_prices(snapshot=Snapshot(version=version)).groupby("ticker").size()
    return {str(k): int(v) for k, v in counts.items()}


def test_polars_and_duckdb_read_the_rows_the_lake_reads(
    written: Written, engines_read: dict
) -> None:
    lake, read = written.lake, engines_read
    expected = lake_rows(lake, written.after_fix)
    assert len(expected) == 20 * 506 + 5  # two years of 20 tickers, then AAPL's five days
    counts = lake_counts(lake, written.after_fix)
    for engine in ("duckdb", "polars"):
        seen = read["prices"][str(written.after_fix)][engine]
        assert seen["rows"] == expected, engine
        assert seen["counts"] == counts, engine
        assert seen["probe"] == [AFTER], engine  # a pushed-down string filter works too

    listings = sorted([t, v.exchange, v.currency] for t, v in lake.listings().items())
    assert read["tickers"]["duckdb"] == read["tickers"]["polars"] == listings
    fixes = lake.corrections()
    columns = ["ticker", "date", "adj_close_old", "adj_close_new", "version"]
    audit = sorted(
        [t, str(d), old, new, int(v)]
        for t, d, old, new, v in fixes[columns].itertuples(index=False, name=None)
    )
    assert audit == [["AAPL", "2022-12-27", BEFORE, AFTER, written.after_fix]]
    assert read["corrections"]["duckdb"] == read["corrections"]["polars"] == audit


def test_time_travel_reads_the_value_before_the_correction(
    written: Written, engines_read: dict
) -> None:
    lake, read = written.lake, engines_read
    old, new = read["prices"][str(written.before_fix)], read["prices"][str(written.after_fix)]
    for engine in ("duckdb", "polars"):
        assert old[engine]["probe"] == [BEFORE], engine
        assert new[engine]["probe"] == [AFTER], engine
        assert old[engine]["rows"] == lake_rows(lake, written.before_fix), engine
    changed = [
        (a[:2], a[2], b[2])
        for a, b in zip(old["duckdb"]["rows"], new["duckdb"]["rows"], strict=True)
        if a != b
    ]
    assert changed == [(["AAPL", "2022-12-27"], BEFORE, AFTER)]  # nothing else moved
    at_old = lake.read_prices(["AAPL"], snapshot=Snapshot(version=written.before_fix))
    assert at_old.loc[at_old["date"] == pd.Timestamp("2022-12-27"), "adj_close"].tolist() == [
        BEFORE
    ]


def test_every_table_stays_readable_by_delta_spark(
    lake: Lake, lake_settings: Settings, sample_path: Path, tmp_path: Path
) -> None:
    written = write_sample_and_fix(lake, lake_settings, sample_path, tmp_path)
    compacted = lake.compact([1991])  # OPTIMIZE and a checkpoint
    assert compacted is not None
    assert compacted.files_removed == 2
    lake.vacuum(retention_hours=0)  # corrections copied out, old files deleted
    options = engine_options(written.settings)
    for name in (PRICES, TICKERS, CORRECTIONS):
        table = DeltaTable(table_uri(written.settings, name), storage_options=options)
        protocol = table.protocol()
        writer = set(protocol.writer_features or ())
        reader = set(protocol.reader_features or ())
        assert writer <= SPARK_3_WRITER_FEATURES, (name, protocol)
        assert reader <= SPARK_3_READER_FEATURES, (name, protocol)
        if writer or reader:  # table features: protocol 3 / 7, each feature known to Spark 3
            assert protocol.min_reader_version <= 3
            assert protocol.min_writer_version <= 7
        else:  # legacy protocol: what delta-spark 1.x and later read
            assert protocol.min_reader_version <= 1, (name, protocol)
            assert protocol.min_writer_version <= 4, (name, protocol)
        assert table.metadata().configuration.get("delta.enableChangeDataFeed") == "true", name
        types = {f["type"] for f in json.loads(table.schema().to_json())["fields"]}
        assert types <= SPARK_TYPES, (name, types)
