"""Monitoring settings, frozen: the drift check, the SLOs and the alerts' thresholds.

Kept apart from ``monitoring.drift`` so the app settings can embed these without importing
Evidently (slow to import, and never needed by the serving process). The alert rules under
``monitoring/rules/`` are generated from :class:`SloConfig` and :class:`AlertConfig`
(``python -m monitoring.rules``).

Label conventions every scrape config must follow (the rules select on them):

- the replicas' ``/metrics`` are scraped by job :data:`API_JOB`, each target labelled
  :data:`REPLICA_LABEL` with the replica's stable name (its ``FINSIMPLES_REPLICA_ID``,
  ``replica-1`` .. ``replica-N``), which a rolling deploy keeps while the port changes;
- Redis through ``prometheus-redis-exporter`` by job :data:`REDIS_JOB`;
- the deploy controller by job :data:`CONTROLLER_JOB`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

API_JOB = "finsimples-api"
"""Scrape job of the replicas' ``/metrics``."""
REPLICA_LABEL = "replica"
"""Target label naming the replica (``replica-1``), set by the scrape config."""
REDIS_JOB = "redis"
"""Scrape job of the Redis exporter."""
CONTROLLER_JOB = "deploy-controller"
"""Scrape job of the deploy controller's ``/metrics`` (``deploy.controller``)."""
_DURATION = re.compile(r"^[1-9][0-9]*[smhd]$")


class DriftConfig(BaseModel):
    """Windows and thresholds of the drift check.

    Evidently's default method switches from a KS p-value to Wasserstein at 0.1 past 1000
    reference rows; on autocorrelated rolling-window features either flags over 70% of the
    columns in every quarter of the bundled sample, calm or not. Half a reference std of
    Wasserstein distance flags over half of them in 2008-09, August 2015 and March 2020, and
    under a fifth in calm quarters (2012-14, 2017, 2019). A coverage tolerance of 0.075 alerted
    in 3.6% of 60-day windows over 2010-2022 (about 1% outside the 2011 and 2020 stress), 0.05 in
    12%: each alert can start a full retrain.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    current_days: int = Field(60, ge=5, description="trading days of the current window")
    reference_days: int = Field(
        504, ge=20, description="trading days of the reference window, just before the current"
    )
    drift_share: float = Field(
        0.5, gt=0, le=1, description="dataset drift when this share of feature columns drifted"
    )
    horizons: tuple[int, ...] = Field((1, 5), description="horizons whose coverage is checked")
    method: str = Field(
        "wasserstein",
        description="Evidently drift method of every column (see `threshold`)",
    )
    threshold: float = Field(
        0.5,
        gt=0,
        description="a column drifts at this score or beyond: for Wasserstein, reference stds",
    )
    coverage_tolerance: float = Field(
        0.075, ge=0, lt=1, description="alert when realized coverage is off nominal by more"
    )
    min_outcomes: int = Field(
        100, ge=1, description="fewer realized outcomes in a window: its coverage is not judged"
    )


class SloConfig(BaseModel):
    """The API's service level objectives, over a rolling window.

    Availability: the share of API requests (``/v1/``, admin routes excluded) a replica answers
    without a 5xx. Latency: the share answered within ``latency_seconds``, i.e. p95 <= 3 s at
    the default 0.95. ``latency_seconds`` must be a bucket of the replicas' latency histogram
    (``config.buckets.LATENCY_BUCKETS``, which holds 3.0 for this): the rules refuse another.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_days: int = Field(
        30, ge=1, description="the SLOs' rolling window; burn rates are relative to its budget"
    )
    availability_target: float = Field(
        0.999, gt=0, lt=1, description="share of API requests answered without a 5xx"
    )
    latency_target: float = Field(
        0.95, gt=0, lt=1, description="share of API requests answered within latency_seconds"
    )
    latency_seconds: float = Field(
        3.0, gt=0, description="the latency SLO's threshold: a latency histogram bucket"
    )


class AlertConfig(BaseModel):
    """Thresholds of the alerts that are not burn rates (the SLOs' are in :class:`SloConfig`).

    Defaults are the scalability plan's and issue 11's numbers; monitoring/README.md says where
    each comes from. Ratio alerts stay quiet under ``min_events_per_second`` of their
    denominator, so a handful of requests at night cannot page anyone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_percent: float = Field(
        80.0, gt=0, description="replica CPU over 5 minutes, 100 = one core (its k8s request)"
    )
    latency_seconds: float = Field(
        3.0, gt=0, description="a replica's mean and its p95 answer time over 5 minutes, above"
    )
    error_ratio: float = Field(0.01, gt=0, lt=1, description="API 5xx share over 5 min, above")
    cache_hit_ratio: float = Field(
        0.60, gt=0, lt=1, description="forecast cache hits / lookups over 15 minutes, below"
    )
    fallback_ratio: float = Field(
        0.05, gt=0, lt=1, description="stale fallback answers / answers over 10 minutes, above"
    )
    narrator_failure_ratio: float = Field(
        0.20, gt=0, lt=1, description="failed LLM requests / LLM requests over 15 minutes, above"
    )
    llm_rate_limited_ratio: float = Field(
        0.10,
        gt=0,
        lt=1,
        description="narrations the LLM quota sent to the template / narrations, 15 min, above",
    )
    balance_tolerance: float = Field(
        0.25, gt=0, description="a replica's request share off the mean share by more (relative)"
    )
    min_events_per_second: float = Field(
        0.1, ge=0, description="ratio alerts judge only this much traffic in the denominator"
    )
    coverage_min: float = Field(
        0.80, gt=0, lt=1, description="realized 90%-interval coverage of any horizon, below"
    )
    coverage_window_days: int = Field(
        63, ge=5, description="trading days of the realized coverage's rolling window"
    )
    champion_stale_trading_days: int = Field(
        3, ge=1, description="no successful retrain in more trading days than this: stale"
    )
    served_mismatch_for: str = Field(
        "10m",
        description="replicas serving another version than @champion this long (longer than "
        "a deploy with its load-test verification takes): ServedVersionMismatch",
    )
    controller_down_for: str = Field(
        "2m", description="the deploy controller unreachable this long: DeployControllerDown"
    )
    controller_stuck_minutes: int = Field(
        30,
        ge=1,
        description="no reconcile for this long (the longest deploy with its verification, "
        "and a margin): the controller is stuck, DeployControllerDown",
    )
    daily_flow_grace_minutes: int = Field(
        120,
        ge=1,
        description="an exchange's daily run due after its close and not succeeded this long "
        "after: DailyFlowMissed",
    )
    replica_down_for: str = Field("1m", description="a replica unreachable this long: down")
    redis_down_for: str = Field("1m", description="Redis unreachable this long: down")
    page_group_wait: str = Field(
        "30s", description="Alertmanager: first notification of a page this long after it fires"
    )
    page_group_interval: str = Field(
        "5m", description="Alertmanager: a page's group notified of changes (and resolution)"
    )
    page_repeat_interval: str = Field(
        "1h", description="Alertmanager: an unresolved page notified again after this"
    )
    ticket_group_wait: str = Field("2m", description="as page_group_wait, for tickets")
    ticket_group_interval: str = Field("30m", description="as page_group_interval, for tickets")
    ticket_repeat_interval: str = Field("24h", description="as page_repeat_interval, for tickets")
    runbook_url: str = Field(
        "monitoring/README.md",
        description="where the runbooks are (the repository's file, or where ops host it); "
        "each alert links <runbook_url>#<alert name in lower case>",
    )

    @field_validator(
        "served_mismatch_for",
        "controller_down_for",
        "replica_down_for",
        "redis_down_for",
        "page_group_wait",
        "page_group_interval",
        "page_repeat_interval",
        "ticket_group_wait",
        "ticket_group_interval",
        "ticket_repeat_interval",
    )
    @classmethod
    def _prometheus_duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"{value!r}: expected a Prometheus duration such as 30s, 1m or 2h")
        return value
