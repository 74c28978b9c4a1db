"""Lake benchmark: ingest of the full sample, append of one day, full-history read.

Runs against a local folder and against moto's S3 API server started here on 127.0.0.1, and
measures a peer in the same run: the same table as one Parquet object, read with pyarrow from
the same store (the least work any layout can do). Run with ``make bench``.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.servers import free_port, server_process

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sp500_prices.csv.gz"
REPEATS = 7


def timed(action: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of ``action`` in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(name: str, settings: Settings) -> None:
    lake = Lake.from_settings(settings)
    start = time.perf_counter()
    ingest_files(lake, [SAMPLE], until=date(2022, 12, 20))
    ingest_seconds = time.perf_counter() - start

    day_times, objects = [], []
    for _ in range(5):
        start = time.perf_counter()
        report = ingest_files(lake, [SAMPLE], next_day=True)
        day_times.append(time.perf_counter() - start)
        objects.append(report.write.objects_written)

    files = len(lake.manifest().files)
    read_seconds = timed(lake.read_prices)
    rows = len(lake.read_prices())

    # Peer: the same rows as a single Parquet object in the same store.
    table_bytes = io.BytesIO()
    pq.write_table(
        pa.Table.from_pandas(lake.read_prices(), preserve_index=False),
        table_bytes,
        compression="zstd",
    )
    single = lake.location.path("bench-single.parquet")
    lake.location.write_bytes(single, table_bytes.getvalue())
    peer_seconds = timed(lambda: pq.read_table(single, filesystem=lake.location.filesystem))

    print(f"\n[{name}] {lake.uri}")
    print(f"  ingest full sample (166,160 rows, 1 file):   {ingest_seconds:7.3f} s")
    print(
        f"  append one day (20 rows), median of 5:        {statistics.median(day_times):7.3f} s, "
        f"objects written per day: {max(objects)}"
    )
    print(f"  full read, {rows:,} rows from {files} files:  {read_seconds:7.3f} s (median)")
    print(f"  peer: one Parquet object, same store:        {peer_seconds:7.3f} s")
    print(f"  ratio lake / peer:                            {read_seconds / peer_seconds:7.2f}x")


def main() -> int:
    print(f"python {sys.version.split()[0]}; sample {SAMPLE.name}")
    with tempfile.TemporaryDirectory() as tmp:
        bench("local", Settings(lake_uri=f"{tmp}/lake"))
        port = free_port()
        command = [
            str(Path(sys.executable).with_name("moto_server")),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        with server_process(command, port, Path(tmp) / "moto.log"):
            endpoint = f"http://127.0.0.1:{port}"
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                region_name="us-east-1",
            ).create_bucket(Bucket="bench")
            bench(
                "s3 (moto server on 127.0.0.1)",
                Settings(
                    lake_uri="s3://bench/lake",
                    s3_endpoint_url=endpoint,
                    s3_access_key_id="bench",
                    s3_secret_access_key="bench",
                ),
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
