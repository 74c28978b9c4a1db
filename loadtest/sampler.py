"""Replica-side measurements during a load test: each replica's answers by source and narrator
events (its ``/metrics``), its CPU and its memory (its process tree, with psutil).

CPU is the process tree's user + system time over wall time, in percent of one core (the unit
of a Kubernetes CPU request: 100 = one core). Memory is the tree's resident set (the
``bentoml serve`` supervisor and its worker).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

ANSWERS_METRIC = "finsimples_answers"
NARRATOR_METRIC = "finsimples_narrator_events"


@dataclass(frozen=True)
class ReplicaTarget:
    """A replica the sampler watches: its name (the replica header), ``/metrics`` URL and pid."""

    name: str
    metrics_url: str
    pid: int | None


@dataclass(frozen=True)
class ReplicaSample:
    """One reading of one replica."""

    t: float  # UNIX time
    replica: str
    cpu_percent: float | None  # since the previous reading; None on the first or without a pid
    rss_bytes: int | None
    answers: dict[str, float] | None  # finsimples_answers_total by source; None: not scraped
    narrator: dict[str, float] | None = None  # finsimples_narrator_events_total by event


def counter_by_label(metrics_text: str, metric: str, label: str) -> dict[str, float]:
    """The counter ``metric`` (``<metric>_total``) by ``label``, from a text exposition."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != metric:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                value = sample.labels.get(label, "")
                found[value] = found.get(value, 0.0) + sample.value
    return found


def answers_by_source(metrics_text: str) -> dict[str, float]:
    """``finsimples_answers_total`` by ``source``."""
    return counter_by_label(metrics_text, ANSWERS_METRIC, "source")


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu_and_rss(pid: int) -> tuple[float, int]:
    """Total CPU seconds and resident bytes of ``pid`` and its descendants."""
    cpu, rss = 0.0, 0
    for proc in _tree(pid):
        try:
            times = proc.cpu_times()
            cpu += times.user + times.system
            rss += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return cpu, rss


@dataclass
class Sampler:
    """Reads every replica every ``interval`` seconds in a background thread."""

    targets: list[ReplicaTarget]
    interval: float = 2.0
    samples: list[ReplicaSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _last_cpu: dict[str, tuple[float, float]] = field(default_factory=dict)

    def start(self) -> None:
        """Take a first reading now, then keep reading in the background."""
        self.read()
        self._thread = threading.Thread(target=self._loop, name="loadtest-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and take a last reading."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 10)
        self.read()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.read()

    def read(self) -> None:
        """One reading of every replica."""
        with httpx.Client(timeout=2.0) as client:
            for target in self.targets:
                self.samples.append(self._read_one(client, target))

    def _read_one(self, client: httpx.Client, target: ReplicaTarget) -> ReplicaSample:
        now, tick = time.time(), time.monotonic()  # wall time to plot, monotonic to divide by
        answers = narrator = None
        try:
            reply = client.get(target.metrics_url)
            if reply.status_code == 200:
                answers = answers_by_source(reply.text)
                narrator = counter_by_label(reply.text, NARRATOR_METRIC, "event")
        except httpx.HTTPError:
            pass
        cpu_percent: float | None = None
        rss: int | None = None
        if target.pid is not None:
            try:
                cpu, rss = _cpu_and_rss(target.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                cpu = None
                self._last_cpu.pop(target.name, None)  # a gap: the next reading starts afresh
            if cpu is not None:
                previous = self._last_cpu.get(target.name)
                if previous is not None and tick > previous[0]:
                    cpu_percent = 100.0 * (cpu - previous[1]) / (tick - previous[0])
                self._last_cpu[target.name] = (tick, cpu)
        return ReplicaSample(now, target.name, cpu_percent, rss, answers, narrator)
