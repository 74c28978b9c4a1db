"""The alert rules, as data built from the settings: replicas, serving, the model.

Pure: functions of :class:`~config.monitoring.AlertConfig` returning :class:`RuleGroup` values;
``monitoring.rules`` writes them as Prometheus rule files and ``monitoring.slo`` adds the SLO
burn-rate group. Every alert carries a ``severity`` (``page``: someone acts now; ``ticket``:
within a working day), a summary, a description and a runbook hint; monitoring/README.md
explains each one.

Series come from the replicas' ``/metrics`` (BentoML's ``bentoml_service_*`` and FinSimples'
``finsimples_*``, see ``bentos.metrics``), the Redis exporter (``redis_up``) and, for the model
group, gauges a later step exports (named and described in monitoring/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from config.monitoring import API_JOB, REDIS_JOB, AlertConfig

Severity = Literal["page", "ticket"]

API = f'job="{API_JOB}"'
"""Every series of the replicas."""
REQUESTS = f'{API}, endpoint=~"/v1/.*", endpoint!~"/v1/admin/.*"'
"""The API's requests: the /v1/ routes, without the deploy's admin routes (a warm-up is slow on
purpose) and without probes and /metrics (not under /v1/)."""


@dataclass(frozen=True)
class Alert:
    """One alerting rule."""

    name: str
    expr: str
    severity: Severity
    summary: str
    description: str
    runbook: str
    duration: str | None = None
    """The rule's ``for``: how long the condition holds before the alert fires."""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recording:
    """One recording rule."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    """A Prometheus rule group, written to ``monitoring/rules/<file>``."""

    name: str
    file: str
    rules: tuple[Alert | Recording, ...]

    @property
    def alerts(self) -> tuple[Alert, ...]:
        """The group's alerting rules."""
        return tuple(rule for rule in self.rules if isinstance(rule, Alert))


def _rate(metric: str, selector: str, window: str, by: str = "") -> str:
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({metric}{{{selector}}}[{window}]))"


def _ratio_alert_expr(
    numerator: str, denominator: str, op: str, threshold: float, floor: float
) -> str:
    """``numerator / denominator <op> threshold``, judged only with enough traffic."""
    return f"{numerator}\n  / {denominator}\n  {op} {threshold:g}\nand {denominator} > {floor:g}"


def replica_group(config: AlertConfig) -> RuleGroup:
    """Per-replica alerts: down, CPU, latency; and the balance between replicas."""
    count = _rate("bentoml_service_request_duration_seconds_count", REQUESTS, "5m", "replica")
    seconds = _rate("bentoml_service_request_duration_seconds_sum", REQUESTS, "5m", "replica")
    buckets = _rate(
        "bentoml_service_request_duration_seconds_bucket", REQUESTS, "5m", "replica, le"
    )
    requests = _rate("bentoml_service_request_total", REQUESTS, "10m", "replica")
    total = _rate("bentoml_service_request_total", REQUESTS, "10m")
    floor, limit = config.min_events_per_second, config.latency_seconds
    return RuleGroup(
        "finsimples-replicas",
        "replicas.yml",
        (
            Alert(
                "ReplicaDown",
                f"up{{{API}}} == 0",
                "page",
                "Replica {{ $labels.replica }} is down",
                "Prometheus has not scraped {{ $labels.replica }} ({{ $labels.instance }}) for "
                f"{config.replica_down_for}. NGINX sends its requests to the other replicas, "
                "which now have less headroom.",
                "`finsimples stack status` (or `kubectl get pods`), then the replica's log "
                "(`finsimples stack logs {{ $labels.replica }}`): the supervisor or Kubernetes "
                "restarts it; a restart loop shows its cause at the end of the log.",
                config.replica_down_for,
            ),
            Alert(
                "ReplicaHighCpu",
                f"{_rate('finsimples_process_cpu_seconds_total', API, '5m', 'replica')} * 100"
                f"\n  > {config.cpu_percent:g}",
                "ticket",
                'Replica {{ $labels.replica }} uses {{ printf "%.0f" $value }}% CPU',
                f"The replica's workers used more than {config.cpu_percent:g}% of one core (its "
                "CPU request) for 5 minutes, above the autoscaler's target: the replicas are "
                "near saturation and the p99 latency climbs next.",
                "Is the HPA adding replicas (`kubectl get hpa`)? On the local stack raise "
                "FINSIMPLES_STACK__REPLICAS. More CPU for the same traffic: check the cache hit "
                "rate and the narrator's retries.",
                "5m",
            ),
            Alert(
                "ReplicaHighMeanLatency",
                _ratio_alert_expr(seconds, count, ">", limit, floor),
                "ticket",
                'Replica {{ $labels.replica }}\'s mean latency is {{ printf "%.2f" $value }} s',
                f"The mean answer time of the API on {{{{ $labels.replica }}}} over 5 minutes has "
                f"been above {limit:g} s for 5 minutes.",
                "Compare the replicas (one slow: its host, its CPU, a long GC; all slow: "
                "Redis, the lake or the LLM endpoint); the fallback share says whether answers "
                "hit the latency budget.",
                "5m",
            ),
            Alert(
                "ReplicaHighP95Latency",
                f"histogram_quantile(0.95, {buckets})\n  > {limit:g}\nand {count} > {floor:g}",
                "ticket",
                'Replica {{ $labels.replica }}\'s p95 latency is {{ printf "%.2f" $value }} s',
                f"95% of the API's answers on {{{{ $labels.replica }}}} took up to "
                f'{{{{ printf "%.2f" $value }}}} s over 5 minutes, above {limit:g} s, for '
                "5 minutes.",
                "As for ReplicaHighMeanLatency; a p95 above the mean's alert points at a slow "
                "minority: cache misses, LLM calls, batch requests.",
                "5m",
            ),
            Alert(
                "LoadBalanceSkew",
                f"abs(\n  {requests}\n  / scalar({total} / count(up{{{API}}} == 1))\n  - 1\n)"
                f"\n  > {config.balance_tolerance:g}\nand on () {total} > {floor:g}",
                "ticket",
                "Replica {{ $labels.replica }}'s share of requests is off the mean",
                "Over 10 minutes {{ $labels.replica }} served a share of the API's requests "
                "{{ $value | humanizePercentage }} off the mean share of the live replicas "
                f"(tolerance {config.balance_tolerance:.0%}), for 15 minutes.",
                "Check NGINX's upstream list (`finsimples stack status`, the generated "
                "nginx.conf) and each replica's /readyz; a replica that answers errors fast "
                "can attract or shed traffic.",
                "15m",
            ),
        ),
    )


def serving_group(config: AlertConfig) -> RuleGroup:
    """Service-wide alerts: errors, cache, fallbacks, narrator, LLM quota, Redis."""
    floor = config.min_events_per_second
    requests = _rate("bentoml_service_request_total", REQUESTS, "5m")
    errors = _rate("bentoml_service_request_total", f'{REQUESTS}, http_response_code=~"5.."', "5m")
    lookups = _rate(
        "finsimples_cache_events_total", f'{API}, cache="forecast", event=~"hits|misses"', "15m"
    )
    hits = _rate("finsimples_cache_events_total", f'{API}, cache="forecast", event="hits"', "15m")
    answers = _rate("finsimples_answers_total", API, "10m")
    fallbacks = _rate("finsimples_fallbacks_total", API, "10m")

    def narrator(event: str) -> str:
        return _rate("finsimples_narrator_events_total", f'{API}, event="{event}"', "15m")

    return RuleGroup(
        "finsimples-serving",
        "serving.yml",
        (
            Alert(
                "ApiHighErrorRate",
                _ratio_alert_expr(errors, requests, ">", config.error_ratio, floor),
                "ticket",
                "{{ $value | humanizePercentage }} of API requests fail",
                f"Over 5 minutes more than {config.error_ratio:.0%} of the API's requests were "
                "answered with a 5xx, for 5 minutes.",
                "Which replica and route: `sum by (replica, endpoint, http_response_code) "
                "(rate(bentoml_service_request_total[5m]))`; a 503 is the engine with no answer "
                "at all (model or lake unreadable); after a deploy, `finsimples rollback`.",
                "5m",
            ),
            Alert(
                "CacheHitRateLow",
                # No hit yet means no hits series: count it as zero hits.
                _ratio_alert_expr(
                    f"({hits} or vector(0))", lookups, "<", config.cache_hit_ratio, floor
                ),
                "ticket",
                "Forecast cache hit rate is {{ $value | humanizePercentage }}",
                "Over 15 minutes fewer than "
                f"{config.cache_hit_ratio:.0%} of the forecast cache's lookups were hits, for "
                "15 minutes.",
                "Redis reachable (RedisDown)? A deploy invalidates the cache: the warm-up "
                "refills it (`finsimples deploy` logs). Traffic over many more tickers than "
                "usual lowers the rate on its own.",
                "15m",
            ),
            Alert(
                "FallbackAnswersHigh",
                _ratio_alert_expr(fallbacks, answers, ">", config.fallback_ratio, floor),
                "ticket",
                "{{ $value | humanizePercentage }} of forecasts are stale fallbacks",
                f"Over 10 minutes more than {config.fallback_ratio:.0%} of the forecast answers "
                "came from the read-only fallback store (latency budget exceeded, or an error), "
                "for 10 minutes.",
                "`sum by (reason) (rate(finsimples_fallbacks_total[10m]))`: deadline points at "
                "slow replicas (CPU, ReplicaHighP95Latency), error at the model or the lake.",
                "10m",
            ),
            Alert(
                "NarratorFailing",
                _ratio_alert_expr(
                    narrator("failures"),
                    narrator("calls"),
                    ">",
                    config.narrator_failure_ratio,
                    floor,
                ),
                "ticket",
                "{{ $value | humanizePercentage }} of LLM requests fail",
                f"Over 15 minutes more than {config.narrator_failure_ratio:.0%} of the "
                "narrator's requests to the LLM endpoint failed (status, timeout, connection), "
                "for 10 minutes. Answers carry the template's text meanwhile.",
                "Check the endpoint's status page and the replicas' logs for the LLM's errors; "
                "a 429 from the provider means its quota, not ours, is spent.",
                "10m",
            ),
            Alert(
                "LlmQuotaExhausted",
                _ratio_alert_expr(
                    narrator("rate_limited"),
                    narrator("narrations"),
                    ">",
                    config.llm_rate_limited_ratio,
                    floor,
                ),
                "ticket",
                "The LLM quota sends {{ $value | humanizePercentage }} of narrations to the "
                "template",
                f"Over 15 minutes more than {config.llm_rate_limited_ratio:.0%} of the "
                "narrations found the LLM quota (FINSIMPLES_LLM_REQUESTS_PER_MINUTE, shared "
                "through Redis) spent and used the template, for 10 minutes.",
                "Raise FINSIMPLES_LLM_REQUESTS_PER_MINUTE if the provider's plan allows it; "
                "a low narrative cache hit rate spends the quota faster.",
                "10m",
            ),
            Alert(
                "RedisDown",
                f'redis_up{{job="{REDIS_JOB}"}} == 0',
                "page",
                "Redis is down",
                f"The Redis exporter has not reached Redis for {config.redis_down_for}. The "
                "replicas fall back to their own in-process caches and to 1/N of each rate "
                "limit: answers go on, slower and less consistent.",
                "`finsimples stack status` (or the Redis pod's events and log); Redis's own "
                "log for OOM or persistence errors.",
                config.redis_down_for,
            ),
        ),
    )


def model_group(config: AlertConfig) -> RuleGroup:
    """The forecasts' health: drift, realized coverage, the retrain flow, the champion's age.

    These read gauges exported for the flows' results (monitoring/README.md, "Series the model
    alerts read"), not the replicas' request metrics.
    """
    return RuleGroup(
        "finsimples-model",
        "model.yml",
        (
            Alert(
                "DriftDetected",
                "finsimples_drift_detected == 1",
                "ticket",
                "The drift check found the market's features shifted",
                "The last drift check flagged a dataset drift: the share of drifted feature "
                "columns reached FINSIMPLES_DRIFT__DRIFT_SHARE. With drift_triggers_retrain on, "
                "the drift flow started a full retrain.",
                "Read the drift run in MLflow (experiment finsimples-monitoring); follow the "
                "retrain it started (RetrainFailed, `finsimples models history`).",
            ),
            Alert(
                "CoverageLow",
                f"finsimples_realized_coverage < {config.coverage_min:g}",
                "ticket",
                "Horizon {{ $labels.horizon }}: realized coverage is "
                "{{ $value | humanizePercentage }}",
                "The served 90% intervals at horizon {{ $labels.horizon }} held "
                "{{ $value | humanizePercentage }} of the realized prices over the last "
                f"{config.coverage_window_days} trading days, under {config.coverage_min:.0%}: "
                "the ranges users see are too narrow.",
                "Check DriftDetected and the track record (GET /v1/model); a full retrain "
                "recalibrates the intervals (`finsimples flows run retrain --full`).",
            ),
            Alert(
                "RetrainFailed",
                "finsimples_retrain_last_run_success == 0",
                "ticket",
                "The last retrain flow run failed",
                "The retrain flow's last run ended in failure; the champion keeps serving, "
                "unchanged, and ages (ChampionStale next).",
                "The run's logs in Prefect (or `finsimples flows run retrain` by hand); a "
                "failed gate is not a failure (the candidate is kept as challenger).",
            ),
            Alert(
                "ChampionStale",
                f"finsimples_trading_days_since_retrain > {config.champion_stale_trading_days}",
                "ticket",
                "No successful retrain for {{ $value }} trading days",
                f"More than {config.champion_stale_trading_days} trading days (B3 calendar) "
                "have passed since the last successful retrain: the champion does not know "
                "the latest prices' regime.",
                "Is the daily flow scheduled and its worker running (`prefect deployment ls`)? "
                "Did the ingest get new prices (`finsimples lake info`)?",
            ),
        ),
    )
