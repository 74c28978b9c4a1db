"""The API benchmark's load: client threads, one level of requests, its latencies and CPU."""

from __future__ import annotations

import contextlib
import itertools
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import httpx
import psutil

LEVELS = (1, 8)  # concurrent clients
REQUESTS = 400  # timed requests per level
WARMUP_PER_CLIENT = 5  # untimed requests per client thread before each level
LEVEL_CAP_SECONDS = 180.0  # a level stops here even if its requests are not all sent
JSON = {"content-type": "application/json"}


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
