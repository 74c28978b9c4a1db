"""The cache step of a deploy: drop the old model's answers, warm the new model's.

``invalidate_and_warm`` needs no running service: a Prefect flow (or the deploy command) calls
it with the settings after the new replicas are up. It loads the new version from the registry,
computes answers for the most requested tickers (counted by the replicas in Redis, see
``PredictionCache.popular``) exactly as a replica would (``bentos.wiring``) and writes them to
the shared Redis cache. Keys carry the model version, so even without the
invalidation no replica would read an old answer: invalidating only frees memory at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from bentos.narrative import LOCALES
from bentos.schemas import CacheReport
from finsimples.settings import Settings

log = logging.getLogger(__name__)

WARM_HORIZONS = (5,)
"""Horizons warmed by default: the API's default horizon, the one most requests use."""


@dataclass(frozen=True)
class DeployCacheReport:
    """What the deploy's cache step did."""

    old_version: str | None
    new_version: str
    removed: int
    warmed: int

    def as_report(self) -> CacheReport:
        """The same figures as the admin API answers them."""
        return CacheReport(model_version=self.new_version, removed=self.removed, warmed=self.warmed)


def invalidate_and_warm(
    settings: Settings,
    old_version: str | None,
    new_version: str,
    tickers: Iterable[str] | None = None,
    *,
    horizons: Iterable[int] = WARM_HORIZONS,
    locales: Iterable[str] = LOCALES,
) -> DeployCacheReport:
    """Invalidate ``old_version``'s cached answers and warm ``new_version``'s.

    Args:
        settings: The settings of the deployed service (Redis, lake, registry, narrator).
        old_version: The registry version being replaced (None on a first deploy).
        new_version: The registry version now served.
        tickers: Tickers to warm; None: the ``settings.warm_tickers`` most requested ones,
            topped up with the lake's tickers when fewer were requested.
        horizons: Horizons to warm.
        locales: Narrative locales to warm.

    Returns:
        Keys removed and answers warmed. Without ``redis_url`` there is no shared cache to
        touch: nothing is done (each replica's in-process cache starts empty anyway).
    """
    if not settings.redis_url:
        log.warning("no FINSIMPLES_REDIS_URL: the replicas' caches are in-process, nothing to warm")
        return DeployCacheReport(old_version, new_version, 0, 0)

    from bentos.model_store import load_registry_version
    from bentos.wiring import build_runtime

    # No request waits on a warm-up, so the narrator may use its whole timeout per answer.
    budget = max(settings.latency_budget_seconds, settings.llm_request_timeout + 1.0)
    runtime = build_runtime(
        settings,
        load_registry_version(settings, new_version),
        replica_id="deploy-hook",
        snapshot=None,
        budget_seconds=budget,
    )
    try:
        removed = 0
        if old_version and old_version != new_version:
            removed = runtime.invalidate(old_version)
        if tickers is None:
            tickers = runtime.engine.popular_tickers(settings.warm_tickers)
            log.info("deploy cache step: warming the most requested tickers %s", tickers)
        warmed = runtime.engine.warm(tickers, horizons, locales)
    finally:
        runtime.close()
    log.info(
        "deploy cache step: removed %d keys of v%s, warmed %d answers of v%s",
        removed,
        old_version,
        warmed,
        new_version,
    )
    return DeployCacheReport(old_version, new_version, removed, warmed)
