"""The per-replica CPU and memory series: what the updater adds, sets, and survives."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY, generate_latest

from bentos.metrics import ProcessUsage, service_metrics
from bentos.wiring import Runtime


class FakeProcess:
    """A process whose CPU seconds and RSS the test sets; ``fail`` makes the next read raise."""

    def __init__(self) -> None:
        self.user, self.system, self.rss = 0.0, 0.0, 0
        self.fail = False

    def cpu_times(self) -> SimpleNamespace:
        if self.fail:
            self.fail = False
            raise ProcessLookupError("gone for a moment")
        return SimpleNamespace(user=self.user, system=self.system)

    def memory_info(self) -> SimpleNamespace:
        return SimpleNamespace(rss=self.rss)


class FakeCounter:
    def __init__(self) -> None:
        self.increments: list[float] = []

    def inc(self, amount: float) -> None:
        self.increments.append(amount)


class FakeGauge:
    def __init__(self) -> None:
        self.value: float | None = None

    def set(self, value: float) -> None:
        self.value = value


class FakeStop:
    """A stop event whose ``wait`` answers from a script (no sleeping)."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.waits: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return self.answers.pop(0)


@pytest.fixture
def parts() -> tuple[FakeProcess, FakeCounter, FakeGauge, ProcessUsage]:
    process, counter, gauge = FakeProcess(), FakeCounter(), FakeGauge()
    return process, counter, gauge, ProcessUsage(counter, gauge, process)


def test_the_first_update_reports_the_cpu_used_since_start(parts) -> None:
    process, counter, gauge, usage = parts
    process.user, process.system, process.rss = 2.5, 0.5, 400_000_000
    usage.update()
    assert counter.increments == [3.0]
    assert gauge.value == 400_000_000


def test_later_updates_add_only_what_was_used_since(parts) -> None:
    process, counter, gauge, usage = parts
    process.user, process.system = 2.0, 1.0
    usage.update()
    process.user, process.system, process.rss = 2.75, 1.25, 410_000_000
    usage.update()
    assert counter.increments == [3.0, 1.0]
    assert sum(counter.increments) == 4.0  # the counter equals the process's CPU time
    assert gauge.value == 410_000_000


def test_an_idle_process_adds_nothing(parts) -> None:
    process, counter, _gauge, usage = parts
    process.user = 1.0
    usage.update()
    usage.update()
    process.user = 0.99  # a coarser clock reading: never a negative increment
    usage.update()
    assert counter.increments == [1.0]


def test_concurrent_updates_count_each_cpu_second_once(parts) -> None:
    process, counter, _gauge, usage = parts
    process.user = 5.0
    threads = [threading.Thread(target=usage.update) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.increments == [5.0]


def test_run_updates_until_stopped_and_survives_a_failed_reading(parts) -> None:
    process, counter, _gauge, usage = parts
    process.user, process.fail = 1.0, True
    stop = FakeStop(False, False, True)  # three rounds: failed, read, read
    usage.run(stop, 5.0)
    assert stop.waits == [5.0, 5.0, 5.0]
    assert counter.increments == [1.0]


def test_run_returns_at_once_when_already_stopped(parts) -> None:
    process, counter, _gauge, usage = parts
    process.user = 0.5
    stop = threading.Event()
    stop.set()
    usage.run(stop, 3600.0)  # would block for an hour if it ignored the event
    assert counter.increments == [0.5]


def test_the_service_exports_both_series_under_their_names() -> None:
    service_metrics().process_usage.update()  # the real process, through psutil
    text = generate_latest(REGISTRY).decode()
    cpu = [line for line in text.splitlines() if line.startswith("finsimples_process_cpu_seconds")]
    rss = [line for line in text.splitlines() if line.startswith("finsimples_process_resident")]
    assert cpu[0].startswith("finsimples_process_cpu_seconds_total ")
    assert float(cpu[0].split()[1]) > 0
    assert float(rss[0].split()[1]) > 10_000_000  # a Python process holds tens of MB at least


class Closable:
    def close(self) -> None:
        pass


def test_the_runtime_starts_the_updater_and_stops_it_on_close(parts) -> None:
    process, counter, _gauge, usage = parts
    process.user = 2.0
    metrics = SimpleNamespace(process_usage=usage)
    # settings, predictor, engine, narrator, caches, policy, metrics: only what close() uses
    runtime = Runtime(None, None, Closable(), Closable(), (Closable(), Closable()), None, metrics)
    thread = runtime.start_process_usage(3600.0)
    assert thread is not None
    runtime.close()  # sets the stop event the thread waits on: it ends now, not in an hour
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert counter.increments == [2.0]  # the first reading happens at start


def test_no_metrics_no_updater() -> None:
    runtime = Runtime(None, None, None, None, None, None)
    assert runtime.start_process_usage(1.0) is None
