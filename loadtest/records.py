"""What the Locust process writes, one JSON line per request (and per stress step), and reads back.

Locust's own statistics have no replica or cache source; the verdict needs both, so each
request is recorded as the client saw it: when it was sent, what it was, the status, the time
it took, the ``X-FinSimples-Replica`` header and the answer's ``provenance.source``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from loadtest.profiles import StepResult

REPLICA_HEADER = "X-FinSimples-Replica"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the client saw it.

    Attributes:
        t: UNIX time it was sent.
        kind: forecast, model, tickers or invalid (a bad request sent on purpose).
        status: HTTP status; 0 when no answer came (connection refused, reset, timeout).
        seconds: Time to the full answer.
        ok: An answer the investor wanted: a 2xx, or a 4xx for a bad request.
        replica: The replica header ("" when absent).
        source: The forecast's ``provenance.source`` (fresh, cache, fallback); "" otherwise.
        error: Why it failed ("" when ok).
    """

    t: float
    kind: str
    status: int
    seconds: float
    ok: bool
    replica: str = ""
    source: str = ""
    error: str = ""


class RecordWriter:
    """Writes records to a new JSON-lines file, flushed every ``flush_every`` lines."""

    def __init__(self, path: Path, flush_every: int = 200) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._flush_every = flush_every
        self._pending = 0

    def request(self, record: RequestRecord) -> None:
        """Record one request."""
        self._write({"type": "request", **asdict(record)})

    def step(self, result: StepResult) -> None:
        """Record one judged stress step."""
        self._write({"type": "step", **result.as_dict()})

    def _write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, separators=(",", ":")) + "\n")
        self._pending += 1
        if self._pending >= self._flush_every:
            self._file.flush()
            self._pending = 0

    def close(self) -> None:
        """Flush and close."""
        self._file.close()


def read_records(path: Path) -> tuple[list[RequestRecord], list[StepResult]]:
    """The requests and stress steps of a run, in file order; a torn last line is skipped."""
    requests: list[RequestRecord] = []
    steps: list[StepResult] = []
    for row in _rows(path):
        kind = row.pop("type", None)
        if kind == "request":
            requests.append(RequestRecord(**row))
        elif kind == "step":
            steps.append(StepResult(**row))
    return requests, steps


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:  # the process was killed mid-write
                continue
