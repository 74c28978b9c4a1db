"""The stack benchmark's Python load: closed-loop clients, an open-loop stream, their figures.

One keep-alive ``httpx.Client`` per thread (as ``benchmarks.api_load``). Every request follows
the e2e tier's rule (``tests/e2e/load.py``, ``send_forecast``): a kept-alive connection that
NGINX closed or reset (a graceful reload) before any byte of an answer came back raises one of
``UNANSWERED``; the request was never processed, so it is sent again, once, and
that resend is counted. Latencies include a resend, and for the open loop they run from the
scheduled send time (a late client does not hide the wait it caused).
"""

from __future__ import annotations

import itertools
import queue
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from tests.e2e.load import UNANSWERED

REPLICA_HEADER = "x-finsimples-replica"
FAULT_DELAY_HEADER = "X-FinSimples-Fault-Delay"  # bentos.service, with FINSIMPLES_FAULT_INJECTION
JSON = {"content-type": "application/json"}
FAST, SLOW = "fast", "slow"


@dataclass(frozen=True)
class Request:
    """One request to send: its body, extra headers and kind (fast or slow)."""

    body: bytes
    kind: str = FAST
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Result:
    """One request's outcome as the client saw it."""

    kind: str
    status: int  # 0: no HTTP answer
    seconds: float
    sent_at: float  # time.time() of the (scheduled) send
    replica: str = ""
    source: str = ""  # provenance.source: cache, fresh, fallback
    model_version: str = ""
    resent: bool = False
    error: str = ""


def send(client: httpx.Client, request: Request, scheduled: float | None = None) -> Result:
    """POST one forecast (resent once on a connection closed before any answer)."""
    started = time.perf_counter() if scheduled is None else scheduled
    wall = time.time() - (time.perf_counter() - started)
    headers = JSON | dict(request.headers or {})
    resent = False
    try:
        try:
            reply = client.post("/v1/forecast", content=request.body, headers=headers)
        except UNANSWERED:  # closed or reset before an answer: not processed
            resent = True
            reply = client.post("/v1/forecast", content=request.body, headers=headers)
    except httpx.HTTPError as exc:
        seconds = time.perf_counter() - started
        return Result(request.kind, 0, seconds, wall, resent=resent, error=type(exc).__name__)
    seconds = time.perf_counter() - started
    replica = reply.headers.get(REPLICA_HEADER, "")
    if reply.status_code != 200:
        text = reply.text[:120]
        return Result(request.kind, reply.status_code, seconds, wall, replica, "", "", resent, text)
    provenance = reply.json()["provenance"]
    return Result(
        request.kind,
        200,
        seconds,
        wall,
        replica,
        str(provenance["source"]),
        str(provenance["model_version"]),
        resent,
    )


def cycling(requests: Sequence[Request]) -> Callable[[], Request]:
    """The requests in turn, forever (thread-safe)."""
    lock, items = threading.Lock(), itertools.cycle(requests)

    def take() -> Request:
        with lock:
            return next(items)

    return take


def closed_loop(
    url: str, take: Callable[[], Request], clients: int, seconds: float, out: list[Result]
) -> None:
    """``clients`` threads sending back to back for ``seconds``; results appended to ``out``."""
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            while time.perf_counter() < deadline:
                result = send(client, take())
                with lock:
                    out.append(result)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def open_loop(
    url: str,
    take: Callable[[], Request],
    rate: float,
    seconds: float,
    out: list[Result],
    *,
    workers: int = 48,
    seed: int = 0,
    stop: threading.Event | None = None,
) -> None:
    """Poisson arrivals at ``rate`` per second for ``seconds`` (or until ``stop`` is set).

    Senders are a pool of ``workers`` threads; a request whose time comes while all are busy
    waits, and that wait counts in its latency.
    """
    jobs: queue.Queue[tuple[float, Request] | None] = queue.Queue()
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            while (job := jobs.get()) is not None:
                due, request = job
                time.sleep(max(0.0, due - time.perf_counter()))
                result = send(client, request, scheduled=due)
                with lock:
                    out.append(result)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    arrivals = random.Random(seed)
    start = due = time.perf_counter()
    while due - start < seconds and not (stop is not None and stop.is_set()):
        jobs.put((due, take()))
        due += arrivals.expovariate(rate)
        time.sleep(max(0.0, due - time.perf_counter() - 0.05))  # queue ~50 ms ahead
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank on the sorted values, as api_load)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Figures:
    """Latency and error figures of a set of results."""

    sent: int
    ok: int
    errors: int
    resent: int
    rate: float  # answered (200) per second of the window
    p50_ms: float
    p99_ms: float
    max_ms: float
    share: dict[str, float]  # replica -> fraction of the answers
    sources: dict[str, int]
    statuses: dict[str, int]
    failures: dict[str, int]  # what failed requests got: the exception, or the status and text

    @classmethod
    def of(cls, results: Iterable[Result], seconds: float) -> Figures:
        results = list(results)
        ok = [r for r in results if r.status == 200]
        latencies = [r.seconds * 1000 for r in ok] or [float("nan")]
        replicas = Counter(r.replica for r in ok)
        return cls(
            sent=len(results),
            ok=len(ok),
            errors=len(results) - len(ok),
            resent=sum(r.resent for r in results),
            rate=len(ok) / seconds if seconds else 0.0,
            p50_ms=statistics.median(latencies),
            p99_ms=percentile(latencies, 99),
            max_ms=max(latencies),
            share={k: round(n / len(ok), 3) for k, n in sorted(replicas.items())},
            sources=dict(Counter(r.source for r in ok)),
            statuses={str(k): n for k, n in Counter(r.status for r in results).items()},
            failures=dict(Counter(f"{r.status} {r.error}" for r in results if r.status != 200)),
        )
