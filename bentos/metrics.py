"""The service's own Prometheus metrics, beside BentoML's request latency histograms.

``prometheus_client`` is imported when the metrics are first created (in the service's
``__init__``), never at module import: BentoML sets ``PROMETHEUS_MULTIPROC_DIR`` in its worker
processes and the client must see it to write the files ``/metrics`` aggregates. Creating the
metrics once per process (``service_metrics`` is cached) avoids duplicate registrations when a
test builds the service twice in one process.

Exported (all counters are ``_total``):

- ``finsimples_cache_events_total{cache, event}``: cache ``forecast`` or ``narrative``; event
  hits, misses, errors, skipped, sets, invalidated (hit rate = hits / (hits + misses));
- ``finsimples_answers_total{source}``: fresh, cache, fallback, unavailable;
- ``finsimples_fallbacks_total{reason}``: deadline, error;
- ``finsimples_narrator_events_total{event}``: narrations, calls, retries, failures,
  rate_limited, deadline_fallbacks, template_fallbacks, cache_hits;
- ``finsimples_model_info{model_name, model_version, alias, run_id, feature_version}`` = 1;
- ``finsimples_lake_version``: the lake version the predictor reads;
- ``finsimples_process_cpu_seconds_total``: CPU seconds (user + system) the replica's worker
  processes used since they started, summed over the workers;
- ``finsimples_process_resident_memory_bytes``: their resident memory, summed over the live ones.

Model gauges (monitoring/README.md, "Model gauges"), read from the lake's records
(``finsimples.records``) every ``model_gauges_seconds`` by :class:`ModelGauges`:

- ``finsimples_realized_coverage{horizon}``: the track record's pooled coverage per horizon;
- ``finsimples_drift_detected``: 1/0, the drift flow's last check;
- ``finsimples_retrain_last_run_success``: 1/0, the retrain flow's last run;
- ``finsimples_trading_days_since_retrain``: weekdays (``numpy.busday_count``, B3 holidays not
  known until exchange calendars come) from the last training date to today, both in the
  schedule's time zone.

A gauge is created on its first value, so a record that does not exist yet means no series (not
a fake 0). Once exported, a series keeps its last value if its record later disappears (a
multiprocess gauge cannot be removed); the worker logs it.

The two process series stand in for ``prometheus_client``'s own ``process_*`` metrics, which a
multiprocess ``/metrics`` never exports (it only reads the workers' files): a
:class:`ProcessUsage` copies the worker's readings in every few seconds, from a thread the
runtime starts (``bentos.wiring.Runtime.start_process_usage``). The ``bentoml serve`` supervisor
process, idle after start-up, is not counted.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

from bentos.predictor import ModelInfo
from finsimples.records import ModelStatus

log = logging.getLogger(__name__)

Hook = Callable[[str, int], None]


class ProcessReader(Protocol):
    """What :class:`ProcessUsage` reads of a process (``psutil.Process`` has it)."""

    def cpu_times(self) -> Any:
        """CPU seconds with ``user`` and ``system`` attributes."""
        ...

    def memory_info(self) -> Any:
        """Memory figures with an ``rss`` attribute (bytes)."""
        ...


class ProcessUsage:
    """Copies a process's CPU time and resident memory into a counter and a gauge.

    The counter always holds the CPU seconds the process had used at the last :meth:`update`
    (since it started, so the start-up's CPU is in it): each update adds what was used since
    the previous one. Updates are serialized, so two runtimes built in one process (tests) can
    share one instance without counting anything twice.

    Args:
        cpu_seconds: A Prometheus counter (``inc``).
        resident_bytes: A Prometheus gauge (``set``).
        process: The process to read; default: this one.
    """

    def __init__(
        self, cpu_seconds: Any, resident_bytes: Any, process: ProcessReader | None = None
    ) -> None:
        self._cpu_seconds = cpu_seconds
        self._resident_bytes = resident_bytes
        self._process = process if process is not None else psutil.Process()
        self._reported = 0.0
        self._lock = threading.Lock()

    def update(self) -> None:
        """Read the process once; add the new CPU seconds, set the resident memory."""
        with self._lock:
            times = self._process.cpu_times()
            used = times.user + times.system
            if used > self._reported:
                self._cpu_seconds.inc(used - self._reported)
                self._reported = used
            self._resident_bytes.set(self._process.memory_info().rss)

    def run(self, stop: threading.Event, interval: float) -> None:
        """Update now, then every ``interval`` seconds until ``stop`` is set.

        A failed reading is logged and the loop goes on: the metrics thread never dies.
        """
        while True:
            try:
                self.update()
            except Exception:
                log.exception("reading the process's CPU and memory failed")
            if stop.wait(interval):
                return


@dataclass(frozen=True)
class ServiceMetrics:
    """The metric objects, and hooks that feed them from :class:`~bentos.counters.Counters`."""

    cache_events: Any
    answers: Any
    fallbacks: Any
    narrator_events: Any
    model_info: Any
    lake_version: Any
    process_usage: ProcessUsage

    def cache_hook(self, cache: str) -> Hook:
        """``on_increment`` for a cache's counters (``cache``: forecast or narrative)."""
        return lambda event, amount: self.cache_events.labels(cache=cache, event=event).inc(amount)

    def narrator_hook(self) -> Hook:
        """``on_increment`` for the narrator's counters."""
        return lambda event, amount: self.narrator_events.labels(event=event).inc(amount)

    def engine_hook(self) -> Hook:
        """``on_increment`` for the engine's counters (``fallback_<reason>`` split out)."""

        def hook(event: str, amount: int) -> None:
            source, _, reason = event.partition("_")
            self.answers.labels(source=source).inc(amount)
            if reason:
                self.fallbacks.labels(reason=reason).inc(amount)

        return hook

    def set_model(self, info: ModelInfo) -> None:
        """Publish the served model version (value 1, the labels carry the information)."""
        self.model_info.labels(
            model_name=info.model_name,
            model_version=info.version,
            alias=info.alias,
            run_id=info.run_id,
            feature_version=info.feature_version,
        ).set(1)


@functools.cache
def service_metrics() -> ServiceMetrics:
    """The process's metrics, created on first call."""
    import prometheus_client as prom

    # Gauges aggregate over a replica's worker processes: "max" keeps one series, not one per pid;
    # the memory is summed over the live workers ("livesum": a dead worker's file is dropped).
    return ServiceMetrics(
        cache_events=prom.Counter(
            "finsimples_cache_events", "Prediction cache events.", ["cache", "event"]
        ),
        answers=prom.Counter("finsimples_answers", "Forecast answers by source.", ["source"]),
        fallbacks=prom.Counter(
            "finsimples_fallbacks", "Stale answers served from the fallback store.", ["reason"]
        ),
        narrator_events=prom.Counter(
            "finsimples_narrator_events", "Narrator calls, retries and fallbacks.", ["event"]
        ),
        model_info=prom.Gauge(
            "finsimples_model_info",
            "The served model version (always 1).",
            ["model_name", "model_version", "alias", "run_id", "feature_version"],
            multiprocess_mode="max",
        ),
        lake_version=prom.Gauge(
            "finsimples_lake_version", "Lake version of the served prices.", multiprocess_mode="max"
        ),
        process_usage=ProcessUsage(
            prom.Counter(
                "finsimples_process_cpu_seconds",
                "CPU seconds (user + system) used by the replica's worker processes.",
            ),
            prom.Gauge(
                "finsimples_process_resident_memory_bytes",
                "Resident memory of the replica's worker processes.",
                multiprocess_mode="livesum",
            ),
        ),
    )


# name -> (help, labels); created on first use (see the module docstring)
MODEL_GAUGES = {
    "finsimples_realized_coverage": (
        "Share of realized prices inside the served interval over the track record's window.",
        ("horizon",),
    ),
    "finsimples_drift_detected": ("1 when the last drift check found a dataset drift.", ()),
    "finsimples_retrain_last_run_success": (
        "1 when the last retrain flow run ended without error, 0 when it failed.",
        (),
    ),
    "finsimples_trading_days_since_retrain": (
        "Weekdays since the last retrain run that trained a candidate.",
        (),
    ),
    "finsimples_daily_flow_due_timestamp_seconds": (
        "When the exchange's next successful daily flow run is due (its next session close "
        "after the last success, plus the delay), UNIX seconds.",
        ("exchange",),
    ),
}


@functools.cache
def model_gauge(name: str) -> Any:
    """The process's gauge ``name`` of :data:`MODEL_GAUGES`, created on first call.

    "max" over a replica's workers, like ``finsimples_model_info``: every worker reads the same
    records, so they agree.
    """
    import prometheus_client as prom

    description, labels = MODEL_GAUGES[name]
    return prom.Gauge(name, description, list(labels), multiprocess_mode="max")


def trading_days_between(start: dt.date, today: dt.date) -> int:
    """Weekdays from ``start`` (counted) to ``today`` (not counted); 0 when not after it.

    B3 holidays are counted as trading days until exchange calendars are wired in.
    """
    import numpy as np

    return max(int(np.busday_count(start, today)), 0)


class ModelGauges:
    """Publishes the lake's status records as the model gauges.

    Args:
        gauge: Returns the gauge of a name (default :func:`model_gauge`; tests pass fakes).
    """

    def __init__(self, gauge: Callable[[str], Any] = model_gauge) -> None:
        self._gauge = gauge
        self._published: set[str] = set()

    def publish(self, status: ModelStatus, today: dt.date) -> None:
        """Set every gauge whose record exists; leave the others absent."""
        values: dict[str, float] = {}
        if status.drift is not None:
            values["finsimples_drift_detected"] = float(status.drift.drift_detected)
        if status.retrain is not None:
            values["finsimples_retrain_last_run_success"] = float(status.retrain.success)
            trained = status.retrain.last_trained_on
            if trained is not None:
                days = trading_days_between(trained, today)
                values["finsimples_trading_days_since_retrain"] = float(days)
        for name, value in values.items():
            self._gauge(name).set(value)
        if status.daily:
            due = self._gauge("finsimples_daily_flow_due_timestamp_seconds")
            for daily in status.daily:
                due.labels(exchange=daily.exchange).set(daily.due_at.timestamp())
            values["finsimples_daily_flow_due_timestamp_seconds"] = 1.0
        if status.track_record is not None:
            coverage = self._gauge("finsimples_realized_coverage")
            for record in status.track_record.horizons:
                if record.n > 0:
                    coverage.labels(horizon=str(record.horizon)).set(record.coverage)
            values["finsimples_realized_coverage"] = 1.0
        gone = self._published - set(values)
        if gone:
            log.warning("model gauges %s lost their record: they keep their last value", gone)
        self._published |= set(values)
