"""Load test settings: the SLA verdict's thresholds and the deploy gate's run, frozen.

Embedded in the app settings as ``Settings.loadtest`` (``FINSIMPLES_LOADTEST__<FIELD>``). The
defaults are the scalability plan's numbers: 95% of answers within 3 s, under 1% errors, an
even spread over the replicas and a cache hit rate of at least 60%. Kept apart from the runner
so the settings never import Locust, matplotlib or psutil.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class LoadTestConfig(BaseModel):
    """Thresholds of the load test's verdict, and how the deploy gate runs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    p95_seconds: float = Field(3.0, gt=0, description="95th percentile answer time, at most")
    mean_seconds: float = Field(3.0, gt=0, description="mean answer time, at most")
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="failed requests (expected 4xx excluded), below this"
    )
    balance_tolerance: float = Field(
        0.10, gt=0, description="each replica's share of answers within this of the mean share"
    )
    min_cache_hit_rate: float = Field(0.60, ge=0, le=1, description="forecast cache hits, at least")
    cache_agreement: float = Field(
        0.02,
        ge=0,
        description="the two cache hit rates (answers, replicas' /metrics) agree this well",
    )
    max_fallback_rate: float = Field(
        0.05, ge=0, le=1, description="stale fallback answers among forecasts, at most"
    )
    max_cpu_percent: float = Field(
        80.0, gt=0, description="peak CPU of a replica (100 = one core), at most: the plan's alert"
    )
    max_rss_growth: float = Field(
        0.20, ge=0, description="soak: a replica's memory growth, first to last tenth, at most"
    )
    max_p95_drift: float = Field(
        1.5, ge=1, description="soak: p95 of the last quarter over the first quarter, at most"
    )
    stress_max_users: int = Field(600, ge=20, description="stress: the user cap")
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="API keys the simulated investors send (one per user, in turn); "
        "empty: no key (auth off)",
    )
    verify_seconds: float = Field(
        120.0, ge=20, description="`deploy --verify`: length of its `ci` profile run"
    )
