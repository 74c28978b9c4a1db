"""Lake benchmark: ingest of the full sample, append of one day, full-history read.

Runs against a local folder and against moto's S3 API server started here on 127.0.0.1. Each
figure has a peer measured in the same run, in the same store:

* ingest: plain pandas. ``read_csv`` of the same file, the same rows reshaped to long
  (date, ticker, adj_close) and written with ``to_parquet`` as one object: no validation, no
  merge with what the lake holds, no per-year files, no manifest. The least work that turns
  the file into Parquet in the store.
* full read: the same table as one Parquet object, read with pyarrow (the least work any
  layout can do).

Run with ``make bench``.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.machine import cpu_mark, others_cores
from finsimples.ingest import ingest_files, read_price_file
from finsimples.lake import Lake
from finsimples.settings import Settings
from finsimples.storage import Location, open_location
from tests.servers import free_port, server_process

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sp500_prices.csv.gz"
UNTIL = date(2022, 12, 20)  # the sample's last day: the first ingest takes all of it
REPEATS = 7  # reads
INGEST_REPEATS = 3  # each ingest into a new, empty lake
DAYS = 5  # replayed days appended


@dataclass(frozen=True)
class IngestFigures:
    """The full-sample ingest and its peer, medians in seconds."""

    rows: int
    objects: int
    lake_seconds: float
    validate_seconds: float  # reading and validating the file, part of lake_seconds
    peer_rows: int
    peer_seconds: float


@dataclass(frozen=True)
class ReadFigures:
    """Appending days, then the full-history read and its peer, medians in seconds."""

    day_seconds: float
    objects_per_day: int
    rows: int
    files: int
    lake_seconds: float
    peer_seconds: float


def timed(action: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of ``action`` in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pandas_ingest(location: Location, path: str) -> int:
    """The ingest peer: the sample as long rows in one ``to_parquet`` object; the row count."""
    wide = pd.read_csv(SAMPLE, parse_dates=["Date"])
    wide = wide[wide["Date"] <= pd.Timestamp(UNTIL)]
    long = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close").dropna()
    buffer = io.BytesIO()
    long.to_parquet(buffer, compression="zstd", index=False)
    location.write_bytes(path, buffer.getvalue())
    return len(long)


def measure_ingest(settings: Settings) -> tuple[IngestFigures, Lake]:
    """Ingest the sample into ``INGEST_REPEATS`` new lakes and run the peer as many times.

    Returns the figures and the last lake, which the rest of the benchmark uses.
    """
    base = settings.resolved_lake_uri
    lake_times = []
    for i in range(INGEST_REPEATS):
        lake = Lake.from_settings(settings.model_copy(update={"lake_uri": f"{base}/lake-{i}"}))
        start = time.perf_counter()
        report = ingest_files(lake, [SAMPLE], until=UNTIL)
        lake_times.append(time.perf_counter() - start)
    validate_seconds = timed(lambda: read_price_file(SAMPLE), INGEST_REPEATS)
    peer = open_location(f"{base}/peer", settings)
    peer_times, peer_rows = [], 0
    for i in range(INGEST_REPEATS):
        start = time.perf_counter()
        peer_rows = pandas_ingest(peer, peer.path(f"sample-{i}.parquet"))
        peer_times.append(time.perf_counter() - start)
    figures = IngestFigures(
        rows=report.rows,
        objects=report.write.objects_written,
        lake_seconds=statistics.median(lake_times),
        validate_seconds=validate_seconds,
        peer_rows=peer_rows,
        peer_seconds=statistics.median(peer_times),
    )
    return figures, lake


def measure_reads(lake: Lake) -> ReadFigures:
    """Append ``DAYS`` replayed days, then time the full read against one Parquet object."""
    day_times, objects = [], []
    for _ in range(DAYS):
        start = time.perf_counter()
        report = ingest_files(lake, [SAMPLE], next_day=True)
        day_times.append(time.perf_counter() - start)
        objects.append(report.write.objects_written)

    prices = lake.read_prices()
    table_bytes = io.BytesIO()
    pq.write_table(
        pa.Table.from_pandas(prices, preserve_index=False), table_bytes, compression="zstd"
    )
    single = lake.location.path("bench-single.parquet")
    lake.location.write_bytes(single, table_bytes.getvalue())
    return ReadFigures(
        day_seconds=statistics.median(day_times),
        objects_per_day=max(objects),
        rows=len(prices),
        files=len(lake.manifest().files),
        lake_seconds=timed(lake.read_prices),
        peer_seconds=timed(lambda: pq.read_table(single, filesystem=lake.location.filesystem)),
    )


def show(label: str, text: str) -> None:
    """One figure, its label padded so the values line up."""
    print(f"  {label:<54}{text}")


def bench(name: str, settings: Settings) -> None:
    """Measure one store and print its figures and ratios."""
    since = cpu_mark()
    ingest, lake = measure_ingest(settings)
    reads = measure_reads(lake)
    others = others_cores(since)
    print(f"\n[{name}] {settings.resolved_lake_uri}")
    print(f"  cores taken by processes outside the benchmark meanwhile: {others:.2f}")
    print(f"  ingest full sample, median of {INGEST_REPEATS}, each into a new lake:")
    show(
        f"  finsimples ingest_files ({ingest.rows:,} rows):",
        f"{ingest.lake_seconds:7.3f} s, {ingest.objects} objects written",
    )
    show("    of which reading and validating the file:", f"{ingest.validate_seconds:7.3f} s")
    show(
        f"  peer: pandas read_csv + to_parquet ({ingest.peer_rows:,} rows):",
        f"{ingest.peer_seconds:7.3f} s, 1 object written",
    )
    show("  ratio ingest / peer:", f"{ingest.lake_seconds / ingest.peer_seconds:7.2f}x")
    show(
        f"append one day (20 rows), median of {DAYS}:",
        f"{reads.day_seconds:7.3f} s, {reads.objects_per_day} objects written per day",
    )
    print(f"  full read, median of {REPEATS}:")
    show(
        f"  finsimples read_prices ({reads.rows:,} rows, {reads.files} files):",
        f"{reads.lake_seconds:7.3f} s",
    )
    show("  peer: one Parquet object, same store:", f"{reads.peer_seconds:7.3f} s")
    show("  ratio read / peer:", f"{reads.lake_seconds / reads.peer_seconds:7.2f}x")


def bench_s3(tmp: Path) -> None:
    """Start moto's S3 API server on a free port, make a bucket, measure the lake there."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1"]
    with server_process([*command, "-p", str(port)], port, tmp / "moto.log"):
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        ).create_bucket(Bucket="bench")
        settings = Settings(
            lake_uri="s3://bench/lakes",
            s3_endpoint_url=endpoint,
            s3_access_key_id="bench",
            s3_secret_access_key="bench",
        )
        bench("s3 (moto server on 127.0.0.1)", settings)


def main() -> int:
    """Both stores, one after the other, in a temporary folder."""
    print(f"python {sys.version.split()[0]}; sample {SAMPLE.name}")
    with tempfile.TemporaryDirectory() as tmp:
        bench("local", Settings(lake_uri=f"{tmp}/lakes"))
        bench_s3(Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
