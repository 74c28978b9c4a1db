"""Lake benchmark: the Delta lake against the old manifest lake, in the same run, same store.

Runs against a local folder and against moto's S3 API server started here on 127.0.0.1. Both
lakes get the same work, interleaved step by step (Delta, then old, then Delta again...), so a
busy moment of the machine falls on both:

* ingest of the bundled sample up to ``UNTIL`` (``ingest_files``, the file parsed each time),
  median of ``INGEST_REPEATS``, each into a new, empty lake;
* ``DAYS`` appends of the next trading day: what ``ingest --next-day`` does after reading the
  file (the file is read and validated once, outside the timing: that part is the same for
  both lakes, and is printed on its own line); the objects each append adds are counted by
  listing the store before and after it, beside the count the write reports;
* of each ingest and append, the share spent in the lake's own methods (``listings``,
  ``watermarks``, ``write_prices``, ``compact``, timed through a proxy): the rest (the
  closed-day check of every row, the selection of the day) is the same code for both;
* the full read (``read_prices()``) after the appends, then ``compact`` of the years the
  appends wrote to, then the full read again, each read the median of ``REPEATS``.

The peer is ``finsimples.legacy.lake.ManifestLake``, the lake before Delta Lake, which
``ingest_files`` drives unchanged: typed for ``Lake``, the ingest only calls the
``write_prices``, ``watermarks``, ``listings`` and ``compact`` both lakes have. A floor is
printed too: the same rows as one Parquet object in the same store, read with pyarrow (the
least work any layout can do).

Run with ``make bench``.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import cast

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from benchmarks.machine import cpu_mark, others_cores
from finsimples.ingest import (
    IngestReport,
    ingest_files,
    ingest_frames,
    place_tickers,
    read_price_file,
)
from finsimples.lake import Lake
from finsimples.legacy.lake import ManifestLake
from finsimples.schemas import KEY_COLUMNS, VALUE_COLUMNS
from finsimples.settings import Settings
from finsimples.storage import Location, open_location
from tests.servers import free_port, server_process

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sp500_prices.csv.gz"
UNTIL = date(2022, 11, 9)  # the first ingest stops here; the sample runs to 2022-12-28
DAYS = 30  # trading days appended one at a time after UNTIL
REPEATS = 5  # full reads
INGEST_REPEATS = 3  # each ingest into a new, empty lake
S3_KEY = "testing"
KINDS = ("delta", "old")
NAMES = {"delta": "Delta lake", "old": "old lake"}
AnyLake = Lake | ManifestLake


@dataclass
class Figures:
    """One lake's figures in one store; times in seconds."""

    ingest_seconds: list[float] = field(default_factory=list)
    ingest_lake_seconds: list[float] = field(default_factory=list)  # in the lake's methods
    ingest_rows: int = 0
    ingest_objects: int = 0  # objects in the store after the ingest (listing)
    ingest_reported: int = 0  # objects the write says it wrote
    day_seconds: list[float] = field(default_factory=list)
    day_lake_seconds: list[float] = field(default_factory=list)  # in the lake's methods
    day_objects: list[int] = field(default_factory=list)  # new objects per append (listing)
    day_reported: list[int] = field(default_factory=list)
    rows: int = 0
    files_before: int = 0
    read_before: list[float] = field(default_factory=list)
    compact_seconds: float = 0.0
    files_after: int = 0
    read_after: list[float] = field(default_factory=list)


def open_lake(kind: str, settings: Settings, name: str) -> AnyLake:
    """A new lake of ``kind`` under the store's root, in its own folder ``name``."""
    uri = f"{settings.resolved_lake_uri}/{name}"
    lake_settings = settings.model_copy(update={"lake_uri": uri})
    return (
        Lake.from_settings(lake_settings)
        if kind == "delta"
        else ManifestLake.from_settings(lake_settings)
    )


def count_objects(location: Location) -> int:
    """Objects under the lake's root, as a listing of the store sees them."""
    selector = pafs.FileSelector(location.root, recursive=True, allow_not_found=True)
    infos = location.filesystem.get_file_info(selector)
    return sum(1 for info in infos if info.type == pafs.FileType.File)


def data_files(lake: AnyLake) -> int:
    """Data files the latest version of the prices table reads."""
    if isinstance(lake, Lake):
        return lake.snapshot().files
    return len(lake.manifest().files)


class LakeClock:
    """A lake whose method calls add their wall time to ``seconds``: the lake's own share of
    an ingest, apart from the validation and selection the ingest does for both lakes alike.

    Calls the lake makes to itself are not seen here, so nothing is counted twice.
    """

    def __init__(self, lake: AnyLake) -> None:
        self.lake = lake
        self.seconds = 0.0

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self.lake, name)
        if not callable(attribute):
            return attribute

        def call(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return call


def append_day(lake: AnyLake, frame: pd.DataFrame) -> tuple[IngestReport, float]:
    """``ingest --next-day`` after the file is read (listings, closed-day check, select,
    write, compact); the report and the seconds spent in the lake's own methods."""
    clock = LakeClock(lake)
    target = cast(Lake, clock)  # the ingest functions only call the lake's methods
    listings = place_tickers([frame], target.listings())
    report = ingest_frames(target, [frame], source=SAMPLE.name, next_day=True, listings=listings)
    return report, clock.seconds


def timed(action: Callable[[], object]) -> float:
    """Wall time of one call of ``action`` in seconds."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(settings: Settings) -> tuple[dict[str, Figures], float, float]:
    """Both lakes through the same steps, interleaved; plus the floor read and the time to
    read and validate the sample."""
    figures = {kind: Figures() for kind in KINDS}
    lakes: dict[str, AnyLake] = {}
    for i in range(INGEST_REPEATS):
        for kind in KINDS:
            lake = open_lake(kind, settings, f"{kind}-{i}")
            clock = LakeClock(lake)
            start = time.perf_counter()
            report = ingest_files(cast(Lake, clock), [SAMPLE], until=UNTIL)
            figures[kind].ingest_seconds.append(time.perf_counter() - start)
            figures[kind].ingest_lake_seconds.append(clock.seconds)
            figures[kind].ingest_rows = report.rows
            figures[kind].ingest_reported = report.write.objects_written
            lakes[kind] = lake
    for kind in KINDS:
        figures[kind].ingest_objects = count_objects(lakes[kind].location)

    validate_seconds = statistics.median(timed(lambda: read_price_file(SAMPLE)) for _ in range(3))
    frame = read_price_file(SAMPLE)
    years: set[int] = set()
    for day in range(DAYS):
        days = set()
        for kind in KINDS:
            lake, fig = lakes[kind], figures[kind]
            before = count_objects(lake.location)
            start = time.perf_counter()
            report, in_lake = append_day(lake, frame)
            fig.day_seconds.append(time.perf_counter() - start)
            fig.day_lake_seconds.append(in_lake)
            fig.day_objects.append(count_objects(lake.location) - before)
            fig.day_reported.append(report.write.objects_written)
            days.add(report.last_date)
        if len(days) != 1 or None in days:
            raise RuntimeError(f"append {day + 1}: the lakes appended different days: {days}")
        years |= {d.year for d in days if d is not None}

    frames = {kind: lakes[kind].read_prices() for kind in KINDS}
    check_same_rows(frames["delta"], frames["old"])
    for kind in KINDS:
        figures[kind].rows = len(frames[kind])
        figures[kind].files_before = data_files(lakes[kind])
    for _ in range(REPEATS):
        for kind in KINDS:
            figures[kind].read_before.append(timed(lakes[kind].read_prices))
    for kind in KINDS:
        figures[kind].compact_seconds = timed(partial(lakes[kind].compact, sorted(years)))
        figures[kind].files_after = data_files(lakes[kind])
    for _ in range(REPEATS):
        for kind in KINDS:
            figures[kind].read_after.append(timed(lakes[kind].read_prices))
    check_same_rows(lakes["delta"].read_prices(), frames["old"])

    floor = open_location(f"{settings.resolved_lake_uri}/floor", settings)
    single = floor.path("prices.parquet")
    buffer = io.BytesIO()
    table = pa.Table.from_pandas(frames["delta"], preserve_index=False)
    pq.write_table(table, buffer, compression="zstd")
    floor.write_bytes(single, buffer.getvalue())
    floor_seconds = statistics.median(
        timed(lambda: pq.read_table(single, filesystem=floor.filesystem)) for _ in range(REPEATS)
    )
    return figures, floor_seconds, validate_seconds


def check_same_rows(delta: pd.DataFrame, old: pd.DataFrame) -> None:
    """Both lakes must hold the same prices, or the comparison means nothing."""
    columns = [*KEY_COLUMNS, *VALUE_COLUMNS]
    pd.testing.assert_frame_equal(
        delta[columns].reset_index(drop=True), old[columns].reset_index(drop=True)
    )


def show(label: str, delta: str, old: str, ratio: str = "") -> None:
    """One figure of both lakes and their ratio, padded so the values line up."""
    print(f"  {label:<50}{delta:>14}{old:>14}{ratio:>11}")


def seconds_row(label: str, delta: float, old: float) -> None:
    """A time of both lakes, in seconds, and Delta / old."""
    show(label, f"{delta:.3f} s", f"{old:.3f} s", f"{delta / old:.2f}x")


def bench(name: str, settings: Settings) -> None:
    """Measure one store and print its figures and ratios."""
    since = cpu_mark()
    figures, floor_seconds, validate_seconds = measure(settings)
    others = others_cores(since)
    d, o = figures["delta"], figures["old"]
    median = statistics.median
    print(f"\n[{name}] {settings.resolved_lake_uri}")
    print(f"  cores taken by processes outside the benchmark meanwhile: {others:.2f}")
    show("", NAMES["delta"], NAMES["old"], "delta/old")
    seconds_row(
        f"ingest to {UNTIL} ({d.ingest_rows:,} rows), median of {INGEST_REPEATS}:",
        median(d.ingest_seconds),
        median(o.ingest_seconds),
    )
    seconds_row(
        "  of which in the lake (listings, write, compact):",
        median(d.ingest_lake_seconds),
        median(o.ingest_lake_seconds),
    )
    show(
        "  objects in the store after it (reported):",
        f"{d.ingest_objects} ({d.ingest_reported})",
        f"{o.ingest_objects} ({o.ingest_reported})",
        f"{d.ingest_objects / o.ingest_objects:.2f}x",
    )
    seconds_row(f"append one day, median of {DAYS}:", median(d.day_seconds), median(o.day_seconds))
    seconds_row(
        "  of which in the lake (listings ... compact):",
        median(d.day_lake_seconds),
        median(o.day_lake_seconds),
    )
    seconds_row("  slowest append, in the lake:", max(d.day_lake_seconds), max(o.day_lake_seconds))
    show(
        "  new objects per day, median / max (reported):",
        f"{median(d.day_objects):g}/{max(d.day_objects)} ({median(d.day_reported):g})",
        f"{median(o.day_objects):g}/{max(o.day_objects)} ({median(o.day_reported):g})",
        f"{median(d.day_objects) / median(o.day_objects):.2f}x",
    )
    show("  reading and validating the file, not in it:", f"{validate_seconds:.3f} s", "same")
    show(f"full read after {DAYS} appends ({d.rows:,} rows):", "", "")
    show("  data files:", str(d.files_before), str(o.files_before))
    seconds_row(
        f"  read_prices, median of {REPEATS}:", median(d.read_before), median(o.read_before)
    )
    seconds_row("compact of the appended year:", d.compact_seconds, o.compact_seconds)
    show("  data files after it:", str(d.files_after), str(o.files_after))
    seconds_row(f"  read_prices, median of {REPEATS}:", median(d.read_after), median(o.read_after))
    show("floor: the same rows as one Parquet object:", f"{floor_seconds:.3f} s", "")
    show(
        "  ratio full read after compact / floor:",
        f"{median(d.read_after) / floor_seconds:.2f}x",
        f"{median(o.read_after) / floor_seconds:.2f}x",
    )


def bench_s3(tmp: Path) -> None:
    """Start moto's S3 API server on a free port, make a bucket, measure the lakes there."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1"]
    with server_process([*command, "-p", str(port)], port, tmp / "moto.log"):
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_KEY,
            region_name="us-east-1",
        ).create_bucket(Bucket="bench")
        settings = Settings(
            lake_uri="s3://bench/lakes",
            s3_endpoint_url=endpoint,
            s3_access_key_id=S3_KEY,
            s3_secret_access_key=S3_KEY,
        )
        bench("s3 (moto server on 127.0.0.1)", settings)


def main() -> int:
    """Both stores, one after the other, in a temporary folder."""
    print(f"python {sys.version.split()[0]}; sample {SAMPLE.name}; ingest to {UNTIL}, {DAYS} days")
    with tempfile.TemporaryDirectory() as tmp:
        bench("local", Settings(lake_uri=f"{tmp}/lakes"))
        bench_s3(Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
