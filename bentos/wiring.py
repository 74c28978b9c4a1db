"""Build the serving objects from the settings: caches, narrator, predictor, engine, edge.

The service's ``__init__`` and the deploy hook both call these, so a warmed cache entry is
exactly what a replica would have written.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bentos.auth import ApiKeyAuth
from bentos.cache import PredictionCache, make_cache
from bentos.edge import EdgePolicy
from bentos.engine import ForecastEngine
from bentos.fallback import FallbackStore
from bentos.metrics import Hook, ServiceMetrics
from bentos.narrator import LLMNarrator
from bentos.predictor import ModelInfo, Predictor
from finsimples.lake import Lake
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


def make_narrator(
    settings: Settings, cache: PredictionCache | None, on_increment: Hook | None = None
) -> LLMNarrator:
    """The LLM narrator of the settings; with no API key it always uses the template."""
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
    _stop: threading.Event = field(default_factory=threading.Event)

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

    def invalidate(self, model_version: str) -> int:
        """Remove every cached forecast and narrative of ``model_version``; how many."""
        return sum(cache.invalidate(model_version) for cache in self.caches)

    def close(self) -> None:
        """Stop the refresher and the worker threads, close the connections."""
        self._stop.set()
        self.engine.close()
        self.narrator.close()
        for cache in self.caches:
            cache.close()


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
    predictor = Predictor.load(forecaster, info, Lake.from_settings(settings))
    hook = metrics.cache_hook if metrics else (lambda _name: None)
    forecast_cache = make_settings_cache(settings, hook("forecast"))
    narrative_cache = make_settings_cache(settings, hook("narrative"))
    narrator = make_narrator(
        settings, narrative_cache, metrics.narrator_hook() if metrics else None
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
    if settings.api_key_hashes:
        auth = ApiKeyAuth(
            settings.api_key_hashes, settings.api_key_rpm, burst=settings.api_key_burst
        )
    policy = EdgePolicy(auth, replica_id, validated_paths)
    if metrics is not None:
        metrics.set_model(info)
        metrics.lake_version.set(predictor.lake_version)
    return Runtime(
        settings, predictor, engine, narrator, (forecast_cache, narrative_cache), policy, metrics
    )
