"""Forecast API benchmark: one `bentoml serve` replica against `mlflow models serve`, same model.

Everything runs here on 127.0.0.1, under a temporary folder, in one run:

1. a lake of the bundled sample and a champion fitted on it with the default training config
   (``--small``: the serving tests' config on recent years), registered and promoted in a
   sqlite MLflow store, then imported into a BentoML model store
   (``python -m bentos.package --prepare``);
2. the API (``bentoml serve bentos.service:ForecastService``, in-process cache, template
   narrator): cache hits (one request repeated) and cache misses (each request a
   (ticker, horizon, locale) never asked before in this replica), at 1 and 8 clients;
3. the peer: ``mlflow models serve`` of the same registered version, POSTing one feature row
   (the predictor's own input) to ``/invocations`` as ``dataframe_split``;
4. the API again with a real ``redis-server`` as its cache, when one is installed.

Clients are threads with one keep-alive ``httpx.Client`` each, a fixed number of requests per
level after a warm-up, each level capped in time. Each answer's ``provenance.source`` is counted,
so a "hit" level that missed (or a "miss" level that hit) shows in the table. The predictor
memoizes a ticker's whole path (every horizon), so only a ticker's first miss runs the model and
builds the path: those first requests are timed apart; later misses cut the path, write the
narrative and cache the answer. RSS is the sum over a server's process tree (PSS and USS beside
it, and each process apart: the `bentoml serve` supervisor and its worker).
Run with ``make bench`` (or ``python -m benchmarks.bench_api [--pin] [--small]``).

Modules: ``api_servers`` (the champion, the servers), ``api_load`` (client threads, one level),
``api_processes`` (process trees, memory sampling, CPU pinning), ``api_report`` (the tables and
the goals' verdict).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import httpx

from benchmarks.api_load import (
    JSON,
    LEVELS,
    REQUESTS,
    WARMUP_PER_CLIENT,
    api_outcome,
    drawn_from,
    encode,
    fixed,
    mlflow_outcome,
    run_level,
)
from benchmarks.api_processes import TreeMemory, load_average, pin
from benchmarks.api_report import ServerReport, print_report, print_verdict
from benchmarks.api_servers import (
    Champion,
    bentoml_replica,
    make_champion,
    mlflow_server,
    prepare_bentoml_home,
    redis_server,
)

HIT_QUERY = {"ticker": "AAPL", "horizon_days": 5, "locale": "en"}


def miss_queries(tickers: Sequence[str], max_horizon: int) -> list[bytes]:
    """Every (ticker, horizon, locale) but the hit query, once: first one per ticker, then
    the rest shuffled (seed 0), so each level mixes tickers, horizons and locales alike."""
    everything = [
        {"ticker": ticker, "horizon_days": horizon, "locale": locale}
        for horizon in range(1, max_horizon + 1)
        for locale in ("en", "pt-BR")
        for ticker in tickers
    ]
    everything = [query for query in everything if query != HIT_QUERY]
    firsts = [next(q for q in everything if q["ticker"] == ticker) for ticker in tickers]
    rest = [query for query in everything if query not in firsts]
    random.Random(0).shuffle(rest)
    return [encode(query) for query in [*firsts, *rest]]


def bench_api(
    champion: Champion, home: Path, snapshot: Path, name: str, **extra: str
) -> ServerReport:
    """Cache hits, then cache misses, at each level, on one fresh replica."""
    with bentoml_replica(champion, home, snapshot, name, **extra) as (url, process):
        memory = TreeMemory(process.pid)
        with memory.sampling():
            listed = httpx.get(f"{url}/v1/tickers", timeout=10, trust_env=False).json()
            tickers = [t["ticker"] for t in listed["tickers"] if t["forecastable"]]
            keys = miss_queries(tickers, champion.max_horizon)
            needed = len(tickers) + 2 * REQUESTS + WARMUP_PER_CLIENT * sum(LEVELS)
            if needed > len(keys):
                raise RuntimeError(f"{len(keys)} distinct cache keys, {needed} needed")
            queries = iter(keys)
            # The predictor memoizes each ticker's whole path (all horizons) per lake version:
            # only a ticker's first miss runs the model. Timed apart, one client, in a row.
            first_ms = []
            with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
                for _ in tickers:
                    start = time.perf_counter()
                    response = client.post("/v1/forecast", content=next(queries), headers=JSON)
                    first_ms.append((time.perf_counter() - start) * 1000)
                    response.raise_for_status()
            hit = fixed(encode(HIT_QUERY))
            levels = [
                run_level(
                    url,
                    "/v1/forecast",
                    hit,
                    api_outcome,
                    clients,
                    server_name=name,
                    mode="cache hit",
                )
                for clients in LEVELS
            ]
            miss = drawn_from(queries)  # shared by the levels: no key is ever asked twice
            levels += [
                run_level(
                    url,
                    "/v1/forecast",
                    miss,
                    api_outcome,
                    clients,
                    server_name=name,
                    mode="cache miss",
                )
                for clients in LEVELS
            ]
        return ServerReport(name, levels, memory, first_ms)


def bench_mlflow(champion: Champion) -> ServerReport:
    """One feature row per request (tickers in turn) at each level."""
    name = "mlflow models serve"
    with mlflow_server(champion) as (url, process):
        memory = TreeMemory(process.pid)
        with memory.sampling():
            rows = itertools.cycle([champion.feature_rows[t] for t in champion.tickers])
            bodies = drawn_from(rows)
            levels = [
                run_level(
                    url,
                    "/invocations",
                    bodies,
                    mlflow_outcome,
                    clients,
                    server_name=name,
                    mode="1 feature row",
                )
                for clients in LEVELS
            ]
        return ServerReport(name, levels, memory)


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_api", description=__doc__)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="servers on CPU 0, the load generator on the others (default: no pinning)",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="the serving tests' small model on 20 tickers since 2017 (quick check)",
    )
    args = parser.parse_args(argv)
    # As `make bench` exports it: XGBoost's OpenMP threads sleep instead of spinning when idle
    # (the fit takes ~6x longer without it on 2 busy cores). The servers inherit it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    placement = pin({0}) if args.pin else "no CPU pinning"
    for name in [name for name in os.environ if name.startswith("FINSIMPLES_")]:
        del os.environ[name]  # this process's settings must match the servers' (see environment)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")
    print(
        f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; load average {load_average()}; "
        f"{REQUESTS} requests per level after {WARMUP_PER_CLIENT} per client; {placement}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        root = Path(tmp)
        with contextlib.chdir(root):  # MLflow writes its artifacts under the working directory
            start = time.perf_counter()
            champion = make_champion(root, small=args.small)
            home, snapshot = prepare_bentoml_home(champion)
        print(
            f"champion: {champion.settings.model_name} v{champion.version}, "
            f"{len(champion.tickers)} tickers, {champion.description}; fitted, registered and "
            f"imported in {time.perf_counter() - start:.0f} s"
        )
        api = bench_api(champion, home, snapshot, "api (in-process cache)")
        print(f"measured {api.name}; load average {load_average()}")
        peer = bench_mlflow(champion)
        print(f"measured {peer.name}; load average {load_average()}")
        others = []
        if shutil.which("redis-server"):
            with redis_server(root) as url:
                others.append(
                    bench_api(
                        champion, home, snapshot, "api (redis cache)", FINSIMPLES_REDIS_URL=url
                    )
                )
            print(f"measured {others[-1].name}; load average {load_average()}")
        else:
            print("redis-server not installed: the Redis-cache replica is skipped")
        print_report([api, peer, *others])
        print_verdict(api, peer, others)
    print(f"\nload average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
