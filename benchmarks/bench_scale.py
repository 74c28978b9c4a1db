"""Costs along the ticker axis (issue 26): every step of a day's work at 20, 200 and 2,000 tickers.

For each size a seeded synthetic universe (``benchmarks.universe``: XNYS and BVMF tickers, 10
years to 2025-12-31, staggered listings, delistings and halts) is written as the files
``finsimples ingest`` reads, and a fresh state folder (Delta lake, sqlite MLflow, drop location)
goes through the platform's own commands, each in a process of its own
(:mod:`benchmarks.scale_steps`: wall time and peak RSS from the kernel):

- **ingest history** (all but the last three sessions), **append one day** (a file of the next
  session's rows, as a vendor delivers it);
- a **stand-in champion**: the serving tests' SMALL config (``scale_steps.STAND_IN``: 20 trees of
  depth 2 per anchor and quantile) fitted on the whole lake, registered and promoted. Synthetic
  returns carry no signal, so a production candidate would be blocked by the gate and leave no
  champion to serve; the stand-in costs the same to serve as the production model;
- **incremental retrain** (``train`` after a new day: update, recent-days gate, feature test);
- **daily flow** (``flows run daily`` after ``feed next-day``: ingest, retrain, track record;
  it includes starting Prefect's temporary local server, about 10 s);
- **track record** and **drift check** (``flows run track-record``, ``flows run drift``);
- **model import** (``bentos.package --prepare``: the registry version into a BentoML store and
  the fallback snapshot), **replica cold start** (``bentoml serve`` to ``/readyz`` answering 200)
  and **replica RSS** (the process tree, at ready and after the requests);
- **first request** for a ticker, **cache-miss and cache-hit p99** (in-process cache; every
  (ticker, horizon, locale) key once, then again), ``GET /v1/tickers`` without parameters,
  ``?q=PET&limit=20`` and the page's ticker search (``?q=A&limit=8&forecastable=true``);
- **warm-up after a deploy** (the deploy's cache step into a fresh ``redis-server``);
- **full train** for sizes in ``--train-sizes`` (``train --full`` with the production config:
  the walk-forward gate, the fit on all data, the feature test, MLflow logging), last, on a copy
  of the lake with an empty registry.

Each size's figures are written to ``<root>/scale-<N>.json`` as soon as they are measured, so
sizes can run one at a time; ``--report`` prints the table of every size found, with the growth
exponent k of time ∝ N^k between the two largest sizes measured.

Run with ``python -m benchmarks.bench_scale`` (sizes 20, 200 and 2,000, the full train at 20 and
200: at 2,000 it is projected, see docs/benchmarks.md) and ``... --report``; the figures go to
docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from benchmarks.api_processes import ROOT, TreeMemory, server, wait_http_ok
from benchmarks.api_servers import redis_server
from benchmarks.scale_steps import (
    BIN,
    STAND_IN,
    WARM,
    Measured,
    cli,
    forecast_body,
    latest_version,
    p99,
    python,
    run,
    state_env,
    timed_get,
    timed_post,
)
from benchmarks.universe import UniverseSpec, generate_universe
from benchmarks.universe_files import write_universe_files
from tests.servers import free_port

DEFAULT_ROOT = Path(".finsimples/bench/scale")
TICKER_QUERIES = {
    "/v1/tickers (no parameters)": "/v1/tickers",
    "/v1/tickers?q=PET&limit=20": "/v1/tickers?q=PET&limit=20",
    "page search (q=A&limit=8&forecastable=true)": "/v1/tickers?q=A&limit=8&forecastable=true",
}
REQUESTS = 200  # misses, then as many hits


def measure_size(
    tickers: int,
    years: int,
    root: Path,
    full_train: bool,
    data_only: bool = False,
    resume: bool = False,
) -> list[Measured]:
    """Every step at ``tickers`` tickers; figures appended to ``<root>/scale-<N>.json``.

    ``resume``: the state folder exists from an earlier run; keep its figures and measure the
    steps from the track record on (the retrain steps are not run again).
    """
    state = root / f"n{tickers}"
    if state.exists() != resume:
        need = "an earlier run's state" if resume else "a fresh state (remove it)"
        raise SystemExit(
            f"{state}: --resume-operations {'needs' if resume else 'not given:'} {need}"
        )
    files, log = state / "files", state / "steps.log"
    universe = generate_universe(UniverseSpec(tickers=tickers, years=years, seed=0))
    sessions = sorted(universe.prices["date"].unique())
    until = str(sessions[-4])[:10]
    env = state_env(state)
    out = root / f"scale-{tickers}.json"
    found: list[Measured] = []
    if resume:
        fields = set(Measured.__dataclass_fields__)
        rows = json.loads(out.read_text())
        found = [Measured(**{k: v for k, v in row.items() if k in fields}) for row in rows]

    def keep(measured: Measured) -> Measured:
        found.append(measured)
        rows = [asdict(m) | {"rows": len(universe.prices)} for m in found]
        out.write_text(json.dumps(rows, indent=1))
        peak = f", peak {measured.peak_rss / 2**20:,.0f} MiB" if measured.peak_rss else ""
        print(f"  [{tickers}] {measured.step}: {measured.seconds:,.2f}{peak} {measured.note}")
        sys.stdout.flush()
        return measured

    def step(name: str, command: list[str], note: str = "", **extra: str) -> Measured:
        return keep(run(name, tickers, command, env | extra, log, note))

    print(f"{tickers:,} tickers x {years} years: {len(universe.prices):,} rows, until {until}")
    if not resume:
        files.mkdir(parents=True)
        reference, prices = write_universe_files(universe, files)
        step("ingest history", cli("ingest", str(reference), str(prices), "--until", until))
        day = files / "day.parquet"
        universe.prices.loc[universe.prices["date"] == sessions[-3]].to_parquet(day, index=False)
        step("append one day", cli("ingest", str(day)))
        if data_only:
            return found
        step("stand-in champion (SMALL fit)", python(STAND_IN))
        run("ingest", tickers, cli("ingest", "--next-day", str(prices)), env, log)
        step("incremental retrain", cli("train"))
        run("feed", tickers, cli("feed", "next-day", str(prices)), env, log)
        step("daily flow", cli("flows", "run", "daily"))
    step("track record", cli("flows", "run", "track-record"))
    step("drift check", cli("flows", "run", "drift", "--no-retrain"))
    _, champion = latest_version(state)
    if champion is None:
        raise RuntimeError(f"no champion in {state}: see {log}")
    home, snapshot = state / "bentoml", state / "fallback.json.gz"
    prepare = [sys.executable, "-m", "bentos.package", "--prepare", "--version", champion]
    step("model import", [*prepare, "--snapshot", str(snapshot)], BENTOML_HOME=str(home))
    serving_env = env | {
        "BENTOML_HOME": str(home),
        "FINSIMPLES_FALLBACK_SNAPSHOT_PATH": str(snapshot),
        "FINSIMPLES_REPLICA_ID": "scale",
    }
    last = universe.prices.groupby("ticker")["date"].max()
    names = sorted(last.index[last >= last.max() - pd.Timedelta(days=7)])  # not delisted
    for measured in serve(tickers, names, serving_env, state):
        keep(measured)
    with redis_server(state) as redis_url:
        step("warm-up after a deploy", [*python(WARM), champion], FINSIMPLES_REDIS_URL=redis_url)
    if full_train:  # on a copy of the lake and no registry: the gate compares with no champion
        fresh = state / "full"
        shutil.copytree(state / "lake", fresh / "lake")
        step("full train", cli("train", "--full"), FINSIMPLES_STATE_DIR=str(fresh))
    return found


def serve(tickers: int, names: list[str], env: dict[str, str], state: Path) -> list[Measured]:
    """Start one replica cold, then its request figures."""
    port = free_port()
    command = [str(BIN / "bentoml"), "serve", "bentos.service:ForecastService"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    log = state / "replica.log"
    began = time.perf_counter()
    with server(command, port, log, env, ROOT) as process:
        wait_http_ok(f"{url}/readyz", log)
        ready = time.perf_counter() - began
        memory = TreeMemory(process.pid)
        at_ready = memory.sample()
        found = [Measured("replica cold start to ready", tickers, ready, None)]
        with httpx.Client(timeout=30, trust_env=False) as client:
            found += requests(client, url, tickers, names)
        found.append(Measured("replica RSS at ready (MiB)", tickers, at_ready / 2**20, None))
        end = memory.sample()
        found.append(Measured("replica RSS after requests (MiB)", tickers, end / 2**20, None))
    return found


def requests(client: httpx.Client, url: str, tickers: int, names: list[str]) -> list[Measured]:
    """First request, misses, hits and ``/v1/tickers``, in milliseconds (or bytes)."""
    forecast = f"{url}/v1/forecast"
    keys = list(itertools.product(names, range(1, 31), ("en", "pt-BR")))
    keys = random.Random(0).sample(keys, min(REQUESTS, len(keys)))  # distinct: every one a miss
    first = timed_post(client, forecast, forecast_body(*keys[0]))
    misses = [timed_post(client, forecast, forecast_body(*key)) for key in keys[1:]]
    hits = [timed_post(client, forecast, forecast_body(*key)) for key in keys[1:]]
    found = [
        Measured("first request (ms)", tickers, first, None),
        Measured("cache-miss p99 (ms)", tickers, p99(misses), None, f"{len(misses)} keys"),
        Measured("cache-hit p99 (ms)", tickers, p99(hits), None, f"{len(hits)} keys"),
    ]
    for label, path in TICKER_QUERIES.items():
        times, size = [], 0
        for _ in range(50):
            elapsed, size = timed_get(client, url + path)
            times.append(elapsed)
        found.append(Measured(f"{label} median (ms)", tickers, float(np.median(times)), None))
        found.append(Measured(f"{label} bytes", tickers, float(size), None))
    return found


def report(root: Path) -> None:
    """Print every size's figures found under ``root``, with growth exponents."""
    files = sorted(root.glob("scale-*.json"))
    rows = [row for path in files for row in json.loads(path.read_text())]
    if not rows:
        raise SystemExit(f"no scale-*.json under {root}: measure a size first")
    sizes = sorted({row["tickers"] for row in rows})
    steps = list(dict.fromkeys(row["step"] for row in rows))
    print("| step | " + " | ".join(f"{n:,} tickers" for n in sizes) + " | k (time ∝ N^k) |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for name in steps:
        by_size = {row["tickers"]: row for row in rows if row["step"] == name}
        cells = []
        for n in sizes:
            row = by_size.get(n)
            if row is None:
                cells.append("")
                continue
            peak = f" ({row['peak_rss'] / 2**20:,.0f} MiB)" if row["peak_rss"] else ""
            cells.append(f"{row['seconds']:,.2f}{peak}")
        print(f"| {name} | " + " | ".join(cells) + f" | {exponent(by_size)} |")


def exponent(by_size: dict[int, dict]) -> str:
    """k of time ∝ N^k between the two largest sizes measured: at the smaller ones a step is
    mostly a process starting and fixed work, which vary with the box's load more than with N."""
    points = [(n, row["seconds"]) for n, row in sorted(by_size.items()) if row["seconds"] > 0]
    if len(points) < 2:
        return ""
    (n0, t0), (n1, t1) = points[-2:]
    return f"{math.log(t1 / t0) / math.log(n1 / n0):.2f} ({n0:,} → {n1:,})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20, 200, 2000])
    parser.add_argument("--train-sizes", type=int, nargs="*", default=[20, 200])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--report", action="store_true", help="only print the figures found")
    parser.add_argument("--data-only", action="store_true", help="only ingest and append")
    parser.add_argument(
        "--resume-operations",
        action="store_true",
        help="on an earlier run's state: the steps from the track record on",
    )
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for tickers in args.sizes:
            full = tickers in args.train_sizes
            measure_size(
                tickers,
                args.years,
                args.root.resolve(),
                full,
                args.data_only,
                args.resume_operations,
            )
    report(args.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
