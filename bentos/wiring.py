"""Build the serving objects from the settings: caches, limits, narrator, predictor, engine, edge.

The service's ``__init__`` and the deploy hook both call these, so a warmed cache entry is
exactly what a replica would have written.

With ``redis_url`` set, everything the replicas must agree on goes through that Redis: the
forecast and narrative caches, the most requested tickers (``bentos.cache``), each API key's
rate and the LLM quota (``bentos.shared_limits``). While Redis is down, each replica holds
``1 / settings.stack.replicas`` of each limit, the topology's replica count that the stack
gives every replica (``FINSIMPLES_STACK__REPLICAS``), so one number says how many there are.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bentos.auth import ApiKeyAuth
from bentos.cache import PredictionCache, make_cache
from bentos.edge import EdgePolicy
from bentos.engine import ForecastEngine
from bentos.fallback import FallbackStore
from bentos.metrics import Hook, ModelGauges, ServiceMetrics
from bentos.narrator import LLMNarrator
from bentos.predictor import ModelInfo, Predictor
from bentos.ratelimit import KeyedLimiter, KeyedRateLimiter, RateLimiter, TokenBucket
from bentos.shared_limits import SharedRateLimiter
from finsimples.adjustment import JumpRule
from finsimples.lake import Lake
from finsimples.records import read_model_status
from finsimples.settings import Settings
from training.forecaster import QuantileForecaster

log = logging.getLogger(__name__)


def make_settings_cache(settings: Settings, on_increment: Hook | None = None) -> PredictionCache:
    """The prediction cache the settings ask for: Redis (with its timeouts) or in-process."""
    options: dict[str, Any] = {"on_increment": on_increment}
    if settings.redis_url:
        options |= {
            "socket_timeout": settings.redis_socket_timeout,
            "connect_timeout": settings.redis_connect_timeout,
            "error_cooldown": settings.redis_error_cooldown_seconds,
        }
    else:
        options["max_entries"] = settings.cache_max_entries
    return make_cache(settings.redis_url, settings.cache_ttl_seconds, **options)


@dataclass(frozen=True)
class RateLimits:
    """A replica's rate limits: each API key's requests and the LLM quota."""

    api_keys: KeyedLimiter
    llm: RateLimiter

    def close(self) -> None:
        """Close the Redis connections of the shared limits."""
        for limiter in (self.api_keys, self.llm):
            if isinstance(limiter, SharedRateLimiter):
                limiter.close()


def make_rate_limits(settings: Settings) -> RateLimits:
    """The limits of the settings: shared by every replica through Redis, or this replica's own.

    With ``redis_url``, each limit is a :class:`~bentos.shared_limits.SharedRateLimiter` with its
    own small Redis client (the cache's short timeouts and error cooldown), falling back to
    ``1 / stack.replicas`` of the limit while Redis is down. Without, in-process buckets.
    """
    if not settings.redis_url:
        return RateLimits(
            KeyedRateLimiter(settings.api_key_rpm, settings.api_key_burst),
            TokenBucket(settings.llm_requests_per_minute),
        )
    options: dict[str, Any] = {
        "replicas": settings.stack.replicas,
        "socket_timeout": settings.redis_socket_timeout,
        "connect_timeout": settings.redis_connect_timeout,
        "error_cooldown": settings.redis_error_cooldown_seconds,
    }
    url = settings.redis_url
    return RateLimits(
        SharedRateLimiter(url, "apikey", settings.api_key_rpm, settings.api_key_burst, **options),
        SharedRateLimiter(url, "llm", settings.llm_requests_per_minute, **options),
    )


def make_narrator(
    settings: Settings,
    cache: PredictionCache | None,
    on_increment: Hook | None = None,
    limiter: RateLimiter | None = None,
) -> LLMNarrator:
    """The LLM narrator of the settings; with no API key it always uses the template.

    Args:
        settings: The one settings object.
        cache: Where LLM narratives are kept (None: nowhere).
        on_increment: The narrator's counter hook (metrics).
        limiter: The LLM quota (e.g. :attr:`RateLimits.llm`); None: an in-process bucket of
            ``llm_requests_per_minute``.
    """
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return LLMNarrator(
        api_key=key,
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        requests_per_minute=settings.llm_requests_per_minute,
        request_timeout=settings.llm_request_timeout,
        max_attempts=settings.llm_max_attempts,
        backoff_base=settings.llm_backoff_base_seconds,
        backoff_cap=settings.llm_backoff_cap_seconds,
        min_attempt_seconds=settings.llm_min_attempt_seconds,
        cache=cache,
        cache_ttl=settings.narrative_cache_ttl_seconds,
        max_concurrency=settings.llm_max_concurrency,
        on_increment=on_increment,
        limiter=limiter,
    )


@dataclass
class Runtime:
    """Everything one replica serves with; :meth:`close` releases it."""

    settings: Settings
    predictor: Predictor
    engine: ForecastEngine
    narrator: LLMNarrator
    caches: tuple[PredictionCache, PredictionCache]
    policy: EdgePolicy
    metrics: ServiceMetrics | None = None
    limits: RateLimits | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _gauges: ModelGauges | None = None

    def start_refresher(self, interval: float) -> threading.Thread:
        """Re-read the lake every ``interval`` seconds when it has a new version."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    if self.predictor.refresh() and self.metrics is not None:
                        self.metrics.lake_version.set(self.predictor.lake_version)
                except Exception:  # a lake hiccup: keep serving the windows already read
                    log.exception("lake refresh failed; serving the previous windows")

        thread = threading.Thread(target=loop, name="lake-refresh", daemon=True)
        thread.start()
        return thread

    def start_process_usage(self, interval: float) -> threading.Thread | None:
        """Copy this process's CPU and memory into the metrics every ``interval`` seconds.

        None without metrics. The thread stops with :meth:`close`.
        """
        if self.metrics is None:
            return None
        usage = self.metrics.process_usage
        thread = threading.Thread(
            target=usage.run, args=(self._stop, interval), name="process-usage", daemon=True
        )
        thread.start()
        return thread

    def refresh_model_status(self) -> None:
        """Read the lake's track-record, retrain, drift and daily-flow records once: the track
        record goes to the predictor (``/v1/model``, narratives), the rest to the model gauges.

        A failure is logged; the previous record stays in use.
        """
        try:
            status = read_model_status(self.predictor.lake.location, self.settings.daily_exchanges)
        except Exception:
            log.exception("reading the model's status records failed; keeping the previous ones")
            return
        if status.track_record is not None:
            self.predictor.set_track_record(
                status.track_record, self.settings.track_record_min_outcomes
            )
        if self.metrics is not None:
            if self._gauges is None:
                self._gauges = ModelGauges()
            today = datetime.now(ZoneInfo(self.settings.schedule_timezone)).date()
            self._gauges.publish(status, today)

    def start_model_status(self, interval: float) -> threading.Thread:
        """Re-read the model's status records every ``interval`` seconds (see
        :meth:`refresh_model_status`); the thread stops with :meth:`close`."""

        def loop() -> None:
            while not self._stop.wait(interval):
                self.refresh_model_status()

        thread = threading.Thread(target=loop, name="model-status", daemon=True)
        thread.start()
        return thread

    def invalidate(self, model_version: str) -> int:
        """Remove every cached forecast and narrative of ``model_version``; how many."""
        return sum(cache.invalidate(model_version) for cache in self.caches)

    def close(self) -> None:
        """Stop the refresher, the process-usage updater and the worker threads; close the
        connections."""
        self._stop.set()
        self.engine.close()
        self.narrator.close()
        for cache in self.caches:
            cache.close()
        if self.limits is not None:
            self.limits.close()


def build_runtime(
    settings: Settings,
    model: tuple[QuantileForecaster, ModelInfo],
    *,
    replica_id: str,
    snapshot: Path | None,
    metrics: ServiceMetrics | None = None,
    budget_seconds: float | None = None,
    validated_paths: frozenset[str] = frozenset(),
) -> Runtime:
    """Wire a replica (or the deploy hook's stand-in) from the settings and a loaded model.

    Args:
        settings: The one settings object.
        model: The forecaster and its record (see ``bentos.model_store``).
        replica_id: Sent in every response header.
        snapshot: Fallback snapshot to load (None: start empty).
        metrics: Prometheus metrics to feed (None: counters only).
        budget_seconds: Latency budget (default: ``settings.latency_budget_seconds``).
        validated_paths: Routes whose 400s the edge rewrites to 422.
    """
    forecaster, info = model
    predictor = Predictor.load(
        forecaster,
        info,
        Lake.from_settings(settings),
        settings.stale_after_sessions,
        JumpRule.from_settings(settings),
    )
    hook = metrics.cache_hook if metrics else (lambda _name: None)
    forecast_cache = make_settings_cache(settings, hook("forecast"))
    narrative_cache = make_settings_cache(settings, hook("narrative"))
    limits = make_rate_limits(settings)
    narrator = make_narrator(
        settings, narrative_cache, metrics.narrator_hook() if metrics else None, limits.llm
    )
    engine = ForecastEngine(
        predictor,
        narrator,
        forecast_cache,
        FallbackStore.load(snapshot),
        budget_seconds=budget_seconds or settings.latency_budget_seconds,
        batch_workers=settings.batch_max_tickers,
        on_increment=metrics.engine_hook() if metrics else None,
        template_fallback_ttl=settings.template_fallback_ttl_seconds,
    )
    auth = None
    if settings.api_key_hashes or settings.admin_key_hashes:
        auth = ApiKeyAuth(
            settings.api_key_hashes, admin_hashes=settings.admin_key_hashes, limiter=limits.api_keys
        )
    policy = EdgePolicy(auth, replica_id, validated_paths, settings.max_request_body_bytes)
    if metrics is not None:
        metrics.set_model(info)
        metrics.lake_version.set(predictor.lake_version)
    runtime = Runtime(
        settings,
        predictor,
        engine,
        narrator,
        (forecast_cache, narrative_cache),
        policy,
        metrics,
        limits,
    )
    runtime.refresh_model_status()  # before the first answer: narratives quote the record
    return runtime
