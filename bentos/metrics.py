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
- ``finsimples_lake_version``: the lake version the predictor reads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bentos.predictor import ModelInfo

Hook = Callable[[str, int], None]


@dataclass(frozen=True)
class ServiceMetrics:
    """The metric objects, and hooks that feed them from :class:`~bentos.counters.Counters`."""

    cache_events: Any
    answers: Any
    fallbacks: Any
    narrator_events: Any
    model_info: Any
    lake_version: Any

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

    # Gauges aggregate over a replica's worker processes: "max" keeps one series, not one per pid.
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
    )
