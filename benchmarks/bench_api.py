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
memoizes a ticker's quantiles, so only a ticker's first miss runs the model: those first
requests are timed apart. RSS is the sum over a server's process tree (PSS and USS beside it).
Run with ``make bench`` (or ``python -m benchmarks.bench_api [--pin] [--small]``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import psutil

from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.servers import free_port, port_open, wait_until
from training.features import build_features, latest_features

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sp500_prices.csv.gz"
SINCE = "2017-01-01"
LEVELS = (1, 8)
REQUESTS = 400  # timed requests per level
WARMUP_PER_CLIENT = 5  # untimed requests per client thread before each level
LEVEL_CAP_SECONDS = 180.0  # a level stops here even if its requests are not all sent
START_TIMEOUT = 180.0
HIT_QUERY = {"ticker": "AAPL", "horizon_days": 5, "locale": "en"}
GOAL_HIT_P99_MS = 10.0
GOAL_THROUGHPUT_RATIO = 2.0
GOAL_RSS_MB = 600.0
MB = 1024 * 1024
JSON = {"content-type": "application/json"}
SERVER_CPUS: set[int] | None = None  # --pin: the servers' CPUs (the load generator gets the rest)


# --- processes ---------------------------------------------------------------------------------


def environment(**extra: str) -> dict[str, str]:
    """This environment without FINSIMPLES_/BENTOML_/MLFLOW_ variables, plus ``extra``."""
    prefixes = ("FINSIMPLES_", "BENTOML_", "PROMETHEUS_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env |= {
        "BENTOML_DO_NOT_TRACK": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONPATH": str(ROOT),
        # The venv's scripts first: `mlflow models serve` runs `uvicorn` from PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    }
    return env | extra


def _stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` and every process it started; kill what is left after 10 s."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(family, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


@contextlib.contextmanager
def server(
    command: Sequence[str], port: int, log: Path, env: Mapping[str, str], cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; yields once ``port`` accepts connections."""
    if SERVER_CPUS is not None:  # taskset execs the command: same pid, same process tree
        command = ["taskset", "-c", ",".join(map(str, sorted(SERVER_CPUS))), *command]
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd
        )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with status {process.returncode}")
            return port_open(port)

        try:
            wait_until(ready, START_TIMEOUT, " ".join(command))
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}; log:\n{log.read_text(errors='replace')[-3000:]}") from exc
        yield process
    finally:
        _stop_tree(process)


def wait_http_ok(url: str, log: Path) -> None:
    """Wait until ``url`` answers 200 (the app is up, not only the port)."""

    def ok() -> bool:
        try:
            return httpx.get(url, timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ok, START_TIMEOUT, url)
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}; log:\n{log.read_text(errors='replace')[-3000:]}") from exc


@dataclass(frozen=True)
class ProcessMemory:
    """One process of a server's tree: what it runs and its memory."""

    what: str
    rss: int
    pss: int  # shared pages split between the processes sharing them
    uss: int  # pages no other process shares


@dataclass
class TreeMemory:
    """Summed RSS of a process tree: once ready, the peak (sampled in a thread), the end."""

    pid: int
    ready_rss: int = 0
    peak_rss: int = 0
    end: list[ProcessMemory] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _family(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def sample(self) -> int:
        """The tree's summed RSS now (and update the peak)."""
        total = 0
        for process in self._family():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        return total

    def detail(self) -> list[ProcessMemory]:
        """Each process's RSS, PSS and USS now."""
        found = []
        for process in self._family():
            with contextlib.suppress(psutil.NoSuchProcess):
                info = process.memory_full_info()
                args = process.cmdline()
                what = " ".join(Path(args[0]).name if i == 0 else a for i, a in enumerate(args))
                found.append(ProcessMemory(what[:60], info.rss, info.pss, info.uss))
        return found

    @contextlib.contextmanager
    def sampling(self, every: float = 0.25) -> Iterator[TreeMemory]:
        """Sample every ``every`` seconds until the block ends, then take :meth:`detail`."""

        def loop() -> None:
            while not self._stop.wait(every):
                self.sample()

        self.ready_rss = self.sample()
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.sample()
            self.end = self.detail()


# --- load --------------------------------------------------------------------------------------


@dataclass
class Level:
    """The outcome of one load level."""

    server: str
    mode: str
    clients: int
    latencies: list[float]  # seconds, successful requests only
    wall: float
    errors: int
    outcomes: Counter[str]
    capped: bool
    busy_cores: float  # CPU used meanwhile by the whole machine, in cores
    others_cores: float  # ... of which by processes outside this benchmark

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000

    @property
    def max_ms(self) -> float:
        return max(self.latencies) * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall


def run_level(
    url: str,
    path: str,
    bodies: Callable[[], bytes],
    inspect: Callable[[httpx.Response], str],
    clients: int,
    *,
    server_name: str,
    mode: str,
    requests: int | None = None,
) -> Level:
    """``requests`` POSTs of ``bodies()`` to ``url + path`` from ``clients`` threads at once."""
    requests = REQUESTS if requests is None else requests
    lock = threading.Lock()
    sent = itertools.count()
    barrier = threading.Barrier(clients + 1)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    errors = [0]
    deadline = [0.0]
    failures: list[BaseException] = []

    def post(client: httpx.Client) -> tuple[float, httpx.Response]:
        body = bodies()
        start = time.perf_counter()
        response = client.post(path, content=body, headers=JSON)
        return time.perf_counter() - start, response

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            try:
                for _ in range(WARMUP_PER_CLIENT):
                    post(client)[1].raise_for_status()
            except BaseException as exc:
                failures.append(exc)
                barrier.abort()
                return
            barrier.wait()
            while next(sent) < requests and time.perf_counter() < deadline[0]:
                try:
                    elapsed, response = post(client)
                    ok = response.status_code == 200
                    outcome = inspect(response) if ok else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    elapsed, ok, outcome = 0.0, False, f"error {type(exc).__name__}"
                except (ValueError, KeyError, TypeError) as exc:  # a 200 that is not an answer
                    ok, outcome = False, f"bad answer {type(exc).__name__}"
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors[0] += 1
                    outcomes[outcome] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        deadline[0] = time.perf_counter() + LEVEL_CAP_SECONDS + 120  # warm-up bound
        barrier.wait()
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join()
        raise RuntimeError(f"{server_name} {mode}: warm-up failed: {failures!r}") from None
    start, cpu = time.perf_counter(), cpu_seconds()
    deadline[0] = start + LEVEL_CAP_SECONDS
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    busy, ours = (end - begin for end, begin in zip(cpu_seconds(), cpu, strict=True))
    capped = len(latencies) + errors[0] < requests
    others = max(0.0, busy - ours) / wall
    return Level(
        server_name,
        mode,
        clients,
        latencies,
        wall,
        errors[0],
        outcomes,
        capped,
        busy / wall,
        others,
    )


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far: by the whole machine, and by this process and its descendants
    (the servers under test). Their difference over a level is what others took (other
    processes, and the hypervisor's steal time)."""
    times = psutil.cpu_times()._asdict()
    # guest time is already in user time; idle and iowait are not work.
    busy = sum(v for k, v in times.items() if k not in ("idle", "iowait", "guest", "guest_nice"))
    ours = 0.0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            used = process.cpu_times()
            ours += used.user + used.system
    return busy, ours


def api_outcome(response: httpx.Response) -> str:
    """``source/narrator`` of an API answer, e.g. ``cache/template``."""
    provenance = response.json()["provenance"]
    return f"{provenance['source']}/{provenance['narrator']}"


def mlflow_outcome(response: httpx.Response) -> str:
    """``rows=N`` of an MLflow answer (one row per horizon)."""
    return f"rows={len(response.json()['predictions'])}"


def fixed(body: bytes) -> Callable[[], bytes]:
    """Always the same request body."""
    return lambda: body


def drawn_from(items: Iterator[bytes]) -> Callable[[], bytes]:
    """Request bodies taken one at a time from ``items`` (thread-safe; raises when empty)."""
    lock = threading.Lock()

    def take() -> bytes:
        with lock:
            return next(items)

    return take


def encode(query: Mapping[str, object]) -> bytes:
    return json.dumps(query).encode()


# --- the model and the servers -----------------------------------------------------------------


@dataclass(frozen=True)
class Champion:
    """A registered, promoted version and the state it lives in."""

    root: Path
    settings: Settings
    version: str
    description: str
    max_horizon: int
    tickers: list[str]
    feature_rows: dict[str, bytes]  # ticker -> MLflow request body of its latest feature row


def make_champion(root: Path, small: bool = False) -> Champion:
    """Ingest the sample, fit, register and promote a champion.

    Default: the whole sample and the default training config (the production model, less
    the gate's walk-forward). ``small``: the serving tests' config on 20 tickers since
    :data:`SINCE` (seconds instead of about a minute).
    """
    # Imported here: xgboost's OpenMP runtime reads OMP_WAIT_POLICY when it loads (see main).
    from tests.champion import fit_small, register_champion
    from training.forecaster import QuantileForecaster

    state = root / "state"
    state.mkdir()
    settings = Settings(
        state_dir=state,
        lake_uri=str(state / "lake"),
        mlflow_tracking_uri=f"sqlite:///{state / 'mlflow.db'}",
    )
    lake = Lake.from_settings(settings)
    if small:
        wide = pd.read_csv(SAMPLE, parse_dates=["Date"])
        recent = root / "prices.csv"
        wide.loc[wide["Date"] >= SINCE].to_csv(recent, index=False)
        ingest_files(lake, [recent])
        forecaster = fit_small(lake)
        description = f"tests.champion.SMALL config, the sample's tickers since {SINCE}"
    else:
        ingest_files(lake, [SAMPLE])
        prices = lake.read_prices()
        forecaster = QuantileForecaster(settings.training).fit(build_features(prices), prices)
        description = "default training config, the whole sample (1990-2022)"
    config = forecaster.config
    description += (
        f": anchors {list(config.anchor_horizons)} x {len(config.quantiles)} quantiles, "
        f"{config.booster.n_estimators} rounds of depth {config.booster.max_depth}"
    )
    version = register_champion(settings, lake, forecaster)
    latest = latest_features(build_features(lake.read_prices())).reset_index()
    rows = {}
    for ticker, row in latest.groupby("ticker", sort=True):
        frame = row.to_json(orient="split", date_format="iso", index=False)
        rows[str(ticker)] = b'{"dataframe_split": ' + frame.encode() + b"}"
    return Champion(root, settings, version, description, config.max_horizon, sorted(rows), rows)


def prepare_bentoml_home(champion: Champion) -> tuple[Path, Path]:
    """Import the champion into a BentoML store of its own; the store and the snapshot path."""
    home, snapshot = champion.root / "bentoml", champion.root / "fallback.json.gz"
    command = [sys.executable, "-m", "bentos.package", "--prepare"]
    command += ["--version", champion.version, "--snapshot", str(snapshot)]
    env = environment(BENTOML_HOME=str(home), FINSIMPLES_STATE_DIR=str(champion.settings.state_dir))
    done = subprocess.run(
        command, env=env, cwd=champion.root, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"bentos.package --prepare failed:\n{done.stdout}\n{done.stderr}")
    return home, snapshot


@contextlib.contextmanager
def bentoml_replica(
    champion: Champion, home: Path, snapshot: Path, name: str, **extra: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One `bentoml serve` replica (template narrator, no API keys); its URL and process."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("bentoml")), "serve"]
    command += ["bentos.service:ForecastService", "--working-dir", str(ROOT)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = environment(
        BENTOML_HOME=str(home),
        FINSIMPLES_STATE_DIR=str(champion.settings.state_dir),
        FINSIMPLES_FALLBACK_SNAPSHOT_PATH=str(snapshot),
        FINSIMPLES_REPLICA_ID=name,
        **extra,
    )
    log = champion.root / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    with server(command, port, log, env, champion.root) as process:
        wait_http_ok(f"{url}/readyz", log)
        yield url, process


@contextlib.contextmanager
def mlflow_server(champion: Champion) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`mlflow models serve` of the champion's registered version; its URL and process."""
    port = free_port()
    model = f"models:/{champion.settings.model_name}/{champion.version}"
    command = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", model]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    env = environment(MLFLOW_TRACKING_URI=champion.settings.resolved_mlflow_tracking_uri)
    log = champion.root / "mlflow.log"
    url = f"http://127.0.0.1:{port}"
    with server(command, port, log, env, champion.root) as process:
        wait_http_ok(f"{url}/ping", log)
        yield url, process


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[str]:
    """A redis-server without persistence; its URL."""
    port = free_port()
    command = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1"]
    command += ["--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(root)]
    with server(command, port, root / "redis.log", environment(), root):
        yield f"redis://127.0.0.1:{port}/0"


# --- the measurements --------------------------------------------------------------------------


@dataclass
class ServerReport:
    """Everything measured on one server."""

    name: str
    levels: list[Level]
    memory: TreeMemory
    first_requests_ms: list[float] = field(default_factory=list)


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
            # The predictor memoizes each ticker's quantiles (all horizons) per lake version:
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


# --- the report --------------------------------------------------------------------------------


def print_report(reports: Sequence[ServerReport]) -> None:
    header = (
        f"{'server':<28} {'mode':<14} {'clients':>7} {'ok':>5} {'err':>4} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>8} {'cpu':>5} {'others':>6}  answers"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for report in reports:
        for level in report.levels:
            answers = ", ".join(f"{k} x{n}" for k, n in sorted(level.outcomes.items()))
            capped = " (time cap hit)" if level.capped else ""
            print(
                f"{level.server:<28} {level.mode:<14} {level.clients:>7} "
                f"{len(level.latencies):>5} {level.errors:>4} {level.p50_ms:>8.2f} "
                f"{level.p99_ms:>8.2f} {level.max_ms:>8.1f} {level.throughput:>8.1f} "
                f"{level.busy_cores:>5.2f} {level.others_cores:>6.2f}  "
                f"{answers}{capped}"
            )
    print(
        f"cpu: cores busy during the level (of {os.cpu_count()}), clients and servers included; "
        "others: of which taken by processes outside this benchmark\n"
    )
    for report in reports:
        memory = report.memory
        print(
            f"{report.name:<28} process tree RSS: ready {memory.ready_rss / MB:.0f} MB, peak "
            f"{memory.peak_rss / MB:.0f} MB; at the end RSS "
            f"{sum(p.rss for p in memory.end) / MB:.0f} MB, PSS "
            f"{sum(p.pss for p in memory.end) / MB:.0f} MB, USS "
            f"{sum(p.uss for p in memory.end) / MB:.0f} MB"
        )
        for process in memory.end:
            print(
                f"{'':<30}{process.rss / MB:5.0f} / {process.pss / MB:4.0f} / "
                f"{process.uss / MB:4.0f} MB (RSS/PSS/USS)  {process.what}"
            )
        if report.first_requests_ms:
            first = report.first_requests_ms
            print(
                f"{'':<28} first request per ticker (model runs), n={len(first)}: "
                f"median {statistics.median(first):.1f} ms, max {max(first):.1f} ms"
            )


def level(report: ServerReport, mode: str, clients: int) -> Level:
    return next(x for x in report.levels if x.mode == mode and x.clients == clients)


def print_verdict(api: ServerReport, peer: ServerReport, others: Sequence[ServerReport]) -> None:
    most = max(LEVELS)
    peer_rate = level(peer, "1 feature row", most).throughput
    print(f"\nratios at {most} clients (throughput / {peer.name}'s {peer_rate:.1f} req/s):")
    for report in (api, *others):
        for mode in ("cache hit", "cache miss"):
            rate = level(report, mode, most).throughput
            print(f"  {report.name:<28} {mode:<11} {rate / peer_rate:6.2f}x")
    hit_p99 = level(api, "cache hit", 1).p99_ms
    hit_ratio = level(api, "cache hit", most).throughput / peer_rate
    miss_ratio = level(api, "cache miss", most).throughput / peer_rate
    rss = api.memory.peak_rss / MB

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print("\ngoals (in-process cache replica):")
    print(
        f"  cache-hit p99 at 1 client <= {GOAL_HIT_P99_MS:g} ms: {hit_p99:.2f} ms "
        f"-> {verdict(hit_p99 <= GOAL_HIT_P99_MS)}"
    )
    print(
        f"  throughput >= {GOAL_THROUGHPUT_RATIO:g}x mlflow at {most} clients: hit "
        f"{hit_ratio:.2f}x -> {verdict(hit_ratio >= GOAL_THROUGHPUT_RATIO)}, miss "
        f"{miss_ratio:.2f}x -> {verdict(miss_ratio >= GOAL_THROUGHPUT_RATIO)}"
    )
    print(f"  per-replica RSS <= {GOAL_RSS_MB:g} MB: {rss:.0f} MB -> {verdict(rss <= GOAL_RSS_MB)}")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def pin(server_cpus: set[int]) -> str:
    """Servers on ``server_cpus`` from now on, this process (every thread) on the other CPUs."""
    global SERVER_CPUS
    mine = set(range(os.cpu_count() or 1)) - server_cpus
    if not mine or not shutil.which("taskset"):
        raise SystemExit("--pin needs 2 CPUs or more and taskset")
    SERVER_CPUS = server_cpus
    for thread in psutil.Process().threads():
        os.sched_setaffinity(thread.id, mine)
    return f"servers pinned to CPU {sorted(server_cpus)}, load generator to CPU {sorted(mine)}"


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
