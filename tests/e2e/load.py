"""A steady load on the stack from client threads, recording every answer.

Each result keeps the status, the replica header, the served model version and the latency,
so the tests read the balance, the errors and the versions from what clients really saw.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

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
    version = source = ""
    if reply.status_code == 200:
        provenance = reply.json()["provenance"]
        version, source = str(provenance["model_version"]), str(provenance["source"])
    error = "" if reply.status_code == 200 else reply.text[:200]
    replica = reply.headers.get(REPLICA_HEADER, "")
    return Answer(
        reply.status_code, replica, version, source, seconds, started, wall, error, retried
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


@contextmanager
def steady_load(
    url: str,
    keys: Sequence[str],
    tickers: Sequence[str],
    *,
    threads: int = 3,
    pause: float = 0.02,
    horizons: Sequence[int] = (5,),
) -> Iterator[LoadRecord]:
    """Send forecasts from ``threads`` clients until the block ends; yield the record.

    Each client waits ``pause`` seconds between its requests and cycles through tickers,
    horizons and keys (each key has its own rate budget, as each investor has).
    """
    record = LoadRecord()
    stop = threading.Event()

    def client_loop(offset: int) -> None:
        queries = itertools.cycle(itertools.product(tickers, horizons))
        key_cycle = itertools.cycle(keys[offset % len(keys) :] + keys[: offset % len(keys)])
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                ticker, horizon = next(queries)
                record.add(send_forecast(client, url, next(key_cycle), ticker, horizon))
                stop.wait(pause)

    workers = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield record
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
