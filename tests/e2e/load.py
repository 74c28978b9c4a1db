"""A steady load on the stack from client threads, recording every answer.

Each result keeps the status, the replica header, the served model version, the answer's source
(fresh, cache or the stale fallback), its narrator and the latency, so the tests read the
balance, the errors, the versions and the degradations from what clients really saw. A fault
test prints its figures as one :meth:`FaultReport.line` (``pytest -rP`` collects them), and
reads what the stack logged meanwhile with a :class:`LogWatch`.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from bentos.cache import KEY_PREFIXES
from loadtest.traffic import HORIZONS as LOAD_TEST_HORIZONS
from loadtest.traffic import LOCALES as LOAD_TEST_LOCALES

REPLICA_HEADER = "x-finsimples-replica"
UNANSWERED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""A kept-alive connection closed or reset before any byte of an answer: NGINX's reload race;
the request was not processed, and a client sends it again (once)."""


@dataclass(frozen=True)
class Answer:
    """One request's outcome as the client saw it."""

    status: int  # 0: no HTTP answer (connection error, timeout)
    replica: str
    model_version: str
    source: str
    seconds: float
    sent_at: float  # time.monotonic() when sent
    sent_wall: float  # time.time() when sent
    error: str = ""
    retried: bool = False  # sent again on a connection closed before any answer
    stale: bool = False  # provenance.stale: the fallback store's last good answer
    narrator: str = ""  # provenance.narrator: '<LLM model>/<prompt version>' or 'template'


def send_forecast(
    client: httpx.Client, url: str, key: str, ticker: str, horizon: int, locale: str = "en"
) -> Answer:
    """POST one forecast and record what came back.

    Like browsers and urllib3, the client sends the request again, once, when a kept-alive
    connection was closed or reset before any byte of an answer came back: NGINX closes its
    idle connections when it reloads (a deploy), and a request that crossed that close in
    flight was never processed (a forecast is safe to repeat anyway). Such a retry is recorded.
    """
    started, wall = time.monotonic(), time.time()
    body = {"ticker": ticker, "horizon_days": horizon, "locale": locale}
    retried = False
    try:
        try:
            reply = client.post(f"{url}/v1/forecast", json=body, headers={"X-API-Key": key})
        except UNANSWERED:
            retried = True
            reply = client.post(f"{url}/v1/forecast", json=body, headers={"X-API-Key": key})
    except httpx.HTTPError as exc:
        seconds = time.monotonic() - started
        return Answer(0, "", "", "", seconds, started, wall, repr(exc), retried)
    seconds = time.monotonic() - started
    version = source = narrator = ""
    stale = False
    if reply.status_code == 200:
        provenance = reply.json()["provenance"]
        version, source = str(provenance["model_version"]), str(provenance["source"])
        stale, narrator = bool(provenance["stale"]), str(provenance["narrator"])
    error = "" if reply.status_code == 200 else reply.text[:200]
    replica = reply.headers.get(REPLICA_HEADER, "")
    return Answer(
        reply.status_code,
        replica,
        version,
        source,
        seconds,
        started,
        wall,
        error,
        retried,
        stale,
        narrator,
    )


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (``share`` in 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(len(ordered) * share)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class FaultReport:
    """The figures of a load run under a fault, as issue 12 asks for them.

    Attributes:
        fault: What was broken, in a few words.
        sent: Requests sent (a request resent once on a closed keep-alive connection: one).
        failed: Requests without a 200 (an error status, or no HTTP answer at all).
        server_errors: Answers with a 5xx status.
        stale: 200 answers from the fallback store (``provenance.stale``).
        longest: The longest answer time, in seconds.
        p95: The 95th percentile answer time, in seconds.
        resent: Requests sent again because a kept-alive connection closed before any answer.
    """

    fault: str
    sent: int
    failed: int
    server_errors: int
    stale: int
    longest: float
    p95: float
    resent: int

    def line(self) -> str:
        """``fault report | <fault> | sent N | failed F | 5xx X | stale S | longest T s | ...``."""
        return (
            f"fault report | {self.fault} | sent {self.sent} | failed {self.failed} "
            f"| 5xx {self.server_errors} | stale {self.stale} | longest {self.longest:.3f} s "
            f"| p95 {self.p95:.3f} s | resent {self.resent}"
        )


@dataclass
class LoadRecord:
    """Every answer of a load run."""

    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        """Record one answer (thread-safe)."""
        with self.lock:
            self.answers.append(answer)

    def snapshot(self) -> list[Answer]:
        """The answers so far."""
        with self.lock:
            return list(self.answers)

    @property
    def failed(self) -> list[Answer]:
        """Answers that are not 200."""
        return [a for a in self.snapshot() if a.status != 200]

    def by_replica(self) -> Counter[str]:
        """Successful answers per replica."""
        return Counter(a.replica for a in self.snapshot() if a.status == 200)

    def report(self, fault: str, answers: Sequence[Answer] | None = None) -> FaultReport:
        """The issue's figures of ``answers`` (default: every answer) under ``fault``."""
        answers = self.snapshot() if answers is None else list(answers)
        seconds = [a.seconds for a in answers]
        return FaultReport(
            fault=fault,
            sent=len(answers),
            failed=sum(a.status != 200 for a in answers),
            server_errors=sum(500 <= a.status < 600 for a in answers),
            stale=sum(a.status == 200 and a.stale for a in answers),
            longest=max(seconds, default=0.0),
            p95=percentile(seconds, 0.95),
            resent=sum(a.retried for a in answers),
        )

    def summary(self) -> str:
        """One line of figures for assertion messages and the test log."""
        answers = self.snapshot()
        latencies = sorted(a.seconds for a in answers) or [0.0]
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        statuses = Counter(a.status for a in answers)
        retried = sum(a.retried for a in answers)
        return (
            f"{len(answers)} sent, {len(self.failed)} failed {dict(statuses)}, "
            f"{retried} resent on a closed keep-alive connection, "
            f"max {max(latencies):.3f} s, p99 {p99:.3f} s, per replica {dict(self.by_replica())}"
        )


def load_test_queries(tickers: Sequence[str]) -> list[tuple[str, int, str]]:
    """Every (ticker, horizon, locale) the load test's investors ask (``loadtest.traffic``)."""
    return list(itertools.product(tickers, LOAD_TEST_HORIZONS, LOAD_TEST_LOCALES))


@contextmanager
def steady_load(
    url: str,
    keys: Sequence[str],
    tickers: Sequence[str],
    *,
    threads: int = 3,
    pause: float = 0.02,
    horizons: Sequence[int] = (5,),
    locales: Sequence[str] = ("en",),
    pacing: float | None = None,
    queries: Sequence[tuple[str, int, str]] | None = None,
) -> Iterator[LoadRecord]:
    """Send forecasts from ``threads`` clients until the block ends; yield the record.

    Each client cycles through the queries (default: every ticker, horizon and locale given),
    each from its own place in the list, and through the keys (each key has its own rate
    budget, as each investor has). Between its requests it waits ``pause`` seconds or, with
    ``pacing``, starts one request every ``pacing`` seconds (Locust's ``constant_pacing``:
    ``threads / pacing`` requests per second while answers are quicker than that).
    """
    record = LoadRecord()
    stop = threading.Event()
    asked = list(queries or itertools.product(tickers, horizons, locales))

    def client_loop(offset: int) -> None:
        start = offset * len(asked) // threads
        cycle = itertools.cycle(asked[start:] + asked[:start])
        turn = offset % len(keys)
        key_cycle = itertools.cycle([*keys[turn:], *keys[:turn]])
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                began = time.monotonic()
                ticker, horizon, locale = next(cycle)
                answer = send_forecast(client, url, next(key_cycle), ticker, horizon, locale)
                record.add(answer)
                wait = pause if pacing is None else pacing - (time.monotonic() - began)
                stop.wait(max(0.0, wait))

    workers = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield record
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)


class LogWatch:
    """What the stack's programs wrote to their logs after a point: a fault's explanation."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.marks = {path: path.stat().st_size for path in folder.glob("*.log")}

    def since(self, pattern: str = "*.log") -> dict[str, str]:
        """The text each log matching ``pattern`` gained since the watch began, by program."""
        grown = {}
        for path in sorted(self.folder.glob(pattern)):
            with path.open("rb") as log:
                log.seek(self.marks.get(path, 0))
                grown[path.stem] = log.read().decode(errors="replace")
        return grown


def clear_cached_answers(redis_url: str) -> int:
    """Remove every cached forecast and narrative from the stack's Redis; the number removed.

    Only the answers: the rate limits' budgets stay, so a quota measured across the call holds.
    """
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        removed = 0
        for prefix in KEY_PREFIXES:
            found = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if found:
                removed += int(client.unlink(*found))
        return removed
    finally:
        client.close()
