"""Stack benchmark: 3 replicas behind NGINX, as `finsimples stack up` runs them, in one run.

Everything on 127.0.0.1 under a temporary folder, on free ports, never the defaults. The folder
stays: its ``summary.json`` holds every figure; the rest (state, ~150 MB of logs) is removed
after a successful run unless ``--keep``, and kept after a failure. The steps:

1. a lake of six sample tickers and a registry with v1 and v2 (@champion), the e2e tier's
   helpers; `finsimples stack up` (API keys off; fault injection on, so the slow requests can
   carry ``X-FinSimples-Fault-Delay``), timed, with each replica's process start to ready;
2. throughput: cache-hit forecasts (6 tickers x 2 locales, 5 days) at 1..32 closed-loop
   clients through NGINX and straight to replica-1, same Python client, interleaved; then
   ``ab -k`` through NGINX (a C client: less of the two cores goes to the load); then one
   client over replica-1 direct, NGINX with replica-1 alone, NGINX over three (NGINX's hop
   apart from the spreading);
3. balancing: NGINX reloaded with ``least_conn`` or ``round_robin`` (same replicas, nothing
   else changed), order A B B A, at the best level of step 2: hits alone, and hits plus an
   open-loop stream of slow requests (cache misses that sleep 0.5 s in the predictor) at two
   rates;
4. `finsimples deploy --version 1` under an open-loop load (``stack_deploy``);
5. `finsimples stack down`, also on failure, and a check that nothing is left.

Run with ``make bench`` or ``python -m benchmarks.bench_stack`` (about 8 minutes);
``--report summary.json`` prints a run's tables again. Modules: ``stack_run`` (the stack, CPU
by process group, the balancing switch), ``stack_load`` (the Python client), ``stack_ab``
(``ab`` levels), ``stack_deploy`` (the deploy under load), ``stack_report`` (tables, verdict).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import stack_ab
from benchmarks.stack_deploy import rolling_deploy
from benchmarks.stack_load import (
    FAULT_DELAY_HEADER,
    SLOW,
    Figures,
    Request,
    Result,
    closed_loop,
    cycling,
    open_loop,
)
from benchmarks.stack_report import GOAL_P99_MS, best, print_report
from benchmarks.stack_run import (
    CpuMeter,
    build_stack,
    flush_cache,
    point_nginx,
    replica_url,
    stack_up,
)
from tests.champion import TICKERS
from tests.e2e.conftest import RunningStack

LEVELS = (1, 2, 4, 8, 16, 32)
# Slow requests per second added to the hits: the predictor runs a miss on one of 8 threads per
# replica, so 3 replicas take at most 3 x 8 / 0.5 s = 48 slow requests per second: "mixed" uses
# half of that, "heavy" 83% (where a replica's threads can run out).
SLOW_RATES = {"hits": 0.0, "mixed": 24.0, "heavy": 40.0}
SLOW_DELAY = "0.5"
DEPLOY_RATE = 75.0  # requests per second during the rolling deploy


def encode(ticker: str, horizon: int, locale: str) -> bytes:
    return json.dumps({"ticker": ticker, "horizon_days": horizon, "locale": locale}).encode()


HITS = [Request(encode(t, 5, loc)) for t in TICKERS for loc in ("en", "pt-BR")]


def slow_requests(seed: int) -> list[Request]:
    """Every (ticker, horizon != 5, locale), shuffled: misses that sleep in the predictor."""
    keys = [(t, h, loc) for t in TICKERS for h in range(1, 31) if h != 5 for loc in ("en", "pt-BR")]
    random.Random(seed).shuffle(keys)
    headers = {FAULT_DELAY_HEADER: SLOW_DELAY}
    return [Request(encode(*key), SLOW, headers) for key in keys]


def warm(url: str, rounds: int = 1) -> None:
    """Every hit query answered (and so cached), then a short untimed load."""
    closed_loop(url, cycling(HITS), 1, 0.5 * rounds, [])
    closed_loop(url, cycling(HITS), 4, 1.5 * rounds, [])


def measured(meter: CpuMeter, run: Any, *args: Any) -> tuple[Any, dict[str, float], float]:
    """``run(*args)``'s result, the cores each group used meanwhile, and its wall time."""
    before, started = meter.sample(), time.perf_counter()
    result = run(*args)
    seconds = time.perf_counter() - started
    return result, CpuMeter.cores(before, meter.sample(), seconds), seconds


def throughput(running: RunningStack, meter: CpuMeter, seconds: float) -> dict[str, Any]:
    """Closed-loop levels: NGINX and replica-1 direct (Python client), then ab via NGINX."""
    direct = replica_url(running, running.slots()[0])
    warm(running.api, 2)
    warm(direct, 2)
    rows: dict[str, list[dict[str, Any]]] = {"nginx": [], "direct": [], "ab_nginx": []}
    for clients in LEVELS:
        for target, url in (("nginx", running.api), ("direct", direct)):
            out: list[Result] = []
            _, cores, wall = measured(meter, closed_loop, url, cycling(HITS), clients, seconds, out)
            figures = Figures.of(out, wall)
            rows[target].append({"clients": clients, **asdict(figures), "cores": cores})
        if stack_ab.available():
            bodies = [r.body for r in HITS]
            level, cores, _ = measured(
                meter, stack_ab.run_level, running.api, bodies, clients, seconds
            )
            rows["ab_nginx"].append({**asdict(level), "rate": level.rate, "cores": cores})
        print(f"  throughput: {clients} clients measured; load {load()}", flush=True)
    return rows


def lb_cost(running: RunningStack, seconds: float) -> dict[str, Any]:
    """One client, three paths, twice in turn: replica-1 direct, NGINX with replica-1 as its
    only upstream, NGINX over the three replicas. Splits NGINX's hop from the spreading."""
    first = running.slots()[0]
    paths = {
        "direct": (replica_url(running, first), None),
        "nginx_1_upstream": (running.api, [first]),
        "nginx_3_upstreams": (running.api, None),
    }
    results: dict[str, list[Result]] = {name: [] for name in paths}
    for _ in range(2):
        for name, (url, slots) in paths.items():
            if url == running.api:
                point_nginx(running, slots=slots)
            warm(url)
            closed_loop(url, cycling(HITS), 1, seconds / 2, results[name])
    point_nginx(running)
    return {name: asdict(Figures.of(rs, seconds)) for name, rs in results.items()}


def balancing_run(
    running: RunningStack, clients: int, seconds: float, seed: int
) -> dict[str, tuple[list[Result], float]]:
    """Each load of :data:`SLOW_RATES` on an emptied, re-warmed cache: ``clients`` closed-loop
    clients of hits, plus the slow stream at that rate; its results and seconds."""
    got = {}
    for name, rate in SLOW_RATES.items():
        requests = slow_requests(seed)
        # Every slow request must miss: no more of them than distinct keys.
        length = min(seconds, 0.85 * len(requests) / rate) if rate else seconds
        flush_cache(running)
        warm(running.api)
        results: list[Result] = []
        slow = threading.Thread(
            target=open_loop,
            args=(running.api, cycling(requests), rate, length, results),
            kwargs={"seed": seed},
        )
        if rate:
            slow.start()
        closed_loop(running.api, cycling(HITS), clients, length, results)
        if rate:
            slow.join()
        got[name] = (results, length)
    return got


def balancing(running: RunningStack, clients: int, seconds: float) -> dict[str, Any]:
    """least_conn and round_robin, A B B A, pooled per method; each run's figures kept too."""
    pooled: dict[str, dict[str, list[Result]]] = {}
    lengths: dict[str, float] = {}
    runs = []
    for index, method in enumerate(("least_conn", "round_robin", "round_robin", "least_conn")):
        point_nginx(running, method)  # type: ignore[arg-type]
        for name, (results, length) in balancing_run(running, clients, seconds, index).items():
            pooled.setdefault(method, {}).setdefault(name, []).extend(results)
            lengths[name] = length
            runs.append({"method": method, "load": name, **_split_figures(results, length)})
        print(f"  balancing: {method} run {index + 1}/4 measured; load {load()}", flush=True)
    point_nginx(running)  # the settings' default, as the deploy renders it
    summary = {
        method: {
            name: _split_figures(results, 2 * lengths[name]) for name, results in loads.items()
        }
        for method, loads in pooled.items()
    }
    return {
        "clients": clients,
        "slow_rates": SLOW_RATES,
        "seconds": lengths,
        "pooled": summary,
        "runs": runs,
    }


def _split_figures(results: list[Result], seconds: float) -> dict[str, Any]:
    kinds = {"all": results} | {
        kind: [r for r in results if r.kind == kind] for kind in ("fast", SLOW)
    }
    return {kind: asdict(Figures.of(rs, seconds)) for kind, rs in kinds.items() if rs}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_stack", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="per throughput level")
    parser.add_argument("--balancing-seconds", type=float, default=12.0, help="per balancing run")
    parser.add_argument(
        "--keep", action="store_true", help="keep the state and logs (~150 MB) after a success"
    )
    parser.add_argument("--report", type=Path, help="print the tables of a summary.json and stop")
    args = parser.parse_args(argv)
    if args.report:
        print_report(json.loads(args.report.read_text()), GOAL_P99_MS)
        return 0
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for name in [name for name in os.environ if name.startswith("FINSIMPLES_")]:
        del os.environ[name]  # this process's settings must match the stack's
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")
    root = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    loads = [load()]
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; load average {loads[0]}")
    print(f"folder: {root}", flush=True)
    started = time.perf_counter()
    with contextlib.chdir(root):  # MLflow writes its artifacts under the working directory
        running = build_stack(root)
    summary: dict[str, Any] = {"folder": str(root), "levels": LEVELS, "seconds": args.seconds}
    path = root / "summary.json"
    try:
        with stack_up(running) as cold:
            summary["cold_start"] = asdict(cold)
            print(f"  stack up in {cold.up_seconds:.1f} s; load {load()}", flush=True)
            meter = CpuMeter(running)
            if not stack_ab.available():
                print("  ab not installed (apt-get install apache2-utils): its levels are skipped")
            summary["throughput"] = throughput(running, meter, args.seconds)
            summary["lb_cost"] = lb_cost(running, args.seconds)
            loads.append(load())
            chosen = best(summary["throughput"]["nginx"], GOAL_P99_MS)
            clients = chosen["clients"] if chosen else 8
            summary["balancing"] = balancing(running, clients, args.balancing_seconds)
            loads.append(load())
            summary["deploy"] = rolling_deploy(running, HITS, DEPLOY_RATE, before=15.0, after=5.0)
            loads.append(load())
    finally:  # what was measured is kept, also when a step failed
        summary["load_averages"] = [*loads, load()]
        summary["total_seconds"] = round(time.perf_counter() - started, 1)
        path.write_text(json.dumps(summary, indent=1, default=str))
    print_report(summary, GOAL_P99_MS)
    if not args.keep:  # a failed run keeps everything, for its logs
        for item in root.iterdir():
            if item != path:
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    print(f"\nsummary: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
