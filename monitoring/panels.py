"""The dashboard's panels as data (pure): titles, PromQL queries, units and threshold lines.

Built from the settings, so a threshold changes in one place (``FINSIMPLES_ALERTS__*``,
``FINSIMPLES_STACK__AUTOSCALE_CPU_PERCENT``) and the dashboard's lines follow the alerts'.
``monitoring.dashboard`` renders them as Grafana JSON.

Queries follow monitoring/README.md's label conventions (job ``finsimples-api``, label
``replica``) and select the API requests as the alert rules do (``monitoring.alerts.REQUESTS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from finsimples.settings import Settings
from monitoring.alerts import API, REQUESTS

RATE = "$__rate_interval"
"""Grafana's rate window: at least four scrape intervals, so a rate always has two samples."""


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and its legend (``{{label}}`` templates)."""

    expr: str
    legend: str
    instant: bool = False


@dataclass(frozen=True)
class Line:
    """A threshold drawn on a panel: from ``value`` on, the colour says good or bad."""

    value: float
    color: str


@dataclass(frozen=True)
class PanelSpec:
    """A panel as data; ``low_is_bad`` colours values under the lines, not over them."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str
    kind: Literal["timeseries", "stat", "table"] = "timeseries"
    lines: tuple[Line, ...] = ()
    low_is_bad: bool = False
    width: int = 12
    mappings: tuple[tuple[str, str, str], ...] = ()
    """Stat panels: (value, text, colour) shown instead of the value."""


Row = tuple[str, tuple[PanelSpec, ...]]


def _rate(metric: str, selector: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{{{selector}}}[{RATE}]))"


def _event(name: str) -> str:
    return f'{API}, event="{name}"'


def _share(part: str, whole: str) -> str:
    """``part / whole``, 0 (not "no data") while ``part`` has no series yet.

    A labelled counter appears only at its first increment: a replica that never fell back has
    no fallback series, and its share is 0, which Grafana should draw as 0.
    """
    return f"({part} or {whole} * 0)\n/ {whole}"


def dashboard_rows(settings: Settings) -> list[Row]:
    """Every panel by row, with the thresholds of ``settings``."""
    alerts, stack = settings.alerts, settings.stack
    requests = _rate("bentoml_service_request_total", REQUESTS)
    errors = _rate("bentoml_service_request_total", f'{REQUESTS}, http_response_code=~"5.."')
    by_replica = _rate("bentoml_service_request_total", REQUESTS, "replica")
    cache = f'{API}, event=~"hits|misses"'
    narrator = "finsimples_narrator_events_total"
    narrations = _rate(narrator, f'{API}, event="narrations"')
    bucket = _rate("bentoml_service_request_duration_seconds_bucket", REQUESTS, "le")
    replicas = (
        PanelSpec(
            "CPU per replica",
            f"Worker CPU of each replica, 100% = one core (its Kubernetes request). Lines: the "
            f"HPA's {stack.autoscale_cpu_percent}% target, the {alerts.cpu_percent:g}% alert.",
            (
                Query(
                    f"{_rate('finsimples_process_cpu_seconds_total', API, 'replica')} * 100",
                    "{{replica}}",
                ),
            ),
            "percent",
            lines=(Line(stack.autoscale_cpu_percent, "orange"), Line(alerts.cpu_percent, "red")),
        ),
        PanelSpec(
            "API requests per replica",
            "API requests per second (/v1/ routes, admin excluded) by replica, against the mean "
            f"per live replica. LoadBalanceSkew fires past ±{alerts.balance_tolerance:.0%} of it.",
            (
                Query(by_replica, "{{replica}}"),
                Query(f"{requests}\n/ count(up{{{API}}} == 1)", "mean per live replica"),
            ),
            "reqps",
        ),
        PanelSpec(
            "Memory per replica",
            "Resident memory of each replica's workers (the bentoml supervisor not counted).",
            (
                Query(
                    f"sum by (replica) (finsimples_process_resident_memory_bytes{{{API}}})",
                    "{{replica}}",
                ),
            ),
            "bytes",
        ),
        PanelSpec(
            "Replicas up",
            "Replica targets Prometheus scrapes successfully.",
            (Query(f"sum(up{{{API}}})", "up", instant=True),),
            "none",
            kind="stat",
            width=4,
        ),
        PanelSpec(
            "Model version per replica",
            "The served model (finsimples_model_info) of each replica: a rolling deploy shows "
            "two versions for a while.",
            (
                Query(
                    "max by (replica, model_name, model_version, alias) "
                    f"(finsimples_model_info{{{API}}})",
                    "",
                    instant=True,
                ),
            ),
            "none",
            kind="table",
            width=8,
        ),
    )
    serving = (
        PanelSpec(
            "Latency p50 / p95 / p99",
            f"API answer time, all replicas; the line is the {alerts.latency_seconds:g} s alert "
            f"(and the latency SLO's {settings.slo.latency_seconds:g} s).",
            tuple(
                Query(f"histogram_quantile({q}, {bucket})", f"p{round(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ),
            "s",
            lines=(Line(alerts.latency_seconds, "red"),),
        ),
        PanelSpec(
            "Error rate (5xx share)",
            f"Share of API requests answered with a 5xx (4xx are the client's); the line is the "
            f"{alerts.error_ratio:.0%} alert.",
            (
                Query(_share(errors, requests), "all replicas"),
                Query(
                    _share(
                        _rate(
                            "bentoml_service_request_total",
                            f'{REQUESTS}, http_response_code=~"5.."',
                            "replica",
                        ),
                        by_replica,
                    ),
                    "{{replica}}",
                ),
            ),
            "percentunit",
            lines=(Line(alerts.error_ratio, "red"),),
        ),
        PanelSpec(
            "Cache hit ratio",
            f"hits / (hits + misses) per cache; the line is the forecast cache's "
            f"{alerts.cache_hit_ratio:.0%} alert.",
            (
                Query(
                    _share(
                        _rate("finsimples_cache_events_total", f'{API}, event="hits"', "cache"),
                        _rate("finsimples_cache_events_total", cache, "cache"),
                    ),
                    "{{cache}}",
                ),
            ),
            "percentunit",
            lines=(Line(alerts.cache_hit_ratio, "green"),),
            low_is_bad=True,
        ),
        PanelSpec(
            "Fallback answers",
            f"Share of forecast answers served stale from the fallback store; the line is the "
            f"{alerts.fallback_ratio:.0%} alert.",
            (
                Query(
                    _share(
                        _rate("finsimples_fallbacks_total", API, "replica"),
                        _rate("finsimples_answers_total", API, "replica"),
                    ),
                    "{{replica}}",
                ),
            ),
            "percentunit",
            lines=(Line(alerts.fallback_ratio, "red"),),
        ),
        PanelSpec(
            "Narrator: retries and failures",
            "LLM requests sent again after a failure, and failed LLM requests, per second.",
            tuple(
                Query(f"{_rate(narrator, _event(event))} or {narrations} * 0", event)
                for event in ("retries", "failures")
            ),
            "reqps",
        ),
        PanelSpec(
            "Narrator: template share",
            "Narratives the template wrote instead of the LLM, and those our LLM quota sent to "
            f"it (line: the {alerts.llm_rate_limited_ratio:.0%} quota alert), per narration.",
            tuple(
                Query(_share(_rate(narrator, _event(event)), narrations), legend)
                for event, legend in (
                    ("template_fallbacks", "template"),
                    ("rate_limited", "rate limited"),
                )
            ),
            "percentunit",
            lines=(Line(alerts.llm_rate_limited_ratio, "red"),),
        ),
    )
    model = (
        PanelSpec(
            "Drift",
            "The last drift check: drift when its drifted columns' share reached drift_share.",
            (Query("max(finsimples_drift_detected)", "drift", instant=True),),
            "none",
            kind="stat",
            width=6,
            mappings=(("0", "no drift", "green"), ("1", "drift", "red")),
        ),
        PanelSpec(
            "Realized coverage per horizon",
            f"Share of realized prices inside the served 90% interval over "
            f"{alerts.coverage_window_days} trading days; the line is the "
            f"{alerts.coverage_min:.0%} alert.",
            (Query("min by (horizon) (finsimples_realized_coverage)", "h={{horizon}}"),),
            "percentunit",
            lines=(Line(alerts.coverage_min, "green"),),
            low_is_bad=True,
            width=18,
        ),
    )
    exporters = (
        PanelSpec(
            "NGINX connections",
            "Client connections NGINX holds (prometheus-nginx-exporter's stub_status).",
            (Query("sum(nginx_connections_active)", "active"),),
            "none",
            width=6,
        ),
        PanelSpec(
            "Redis memory",
            "Memory Redis uses (Redis exporter): the shared cache and rate limits.",
            (Query('sum(redis_memory_used_bytes{job="redis"})', "used"),),
            "bytes",
            width=6,
        ),
        PanelSpec(
            "Redis up",
            "Whether the exporter reaches Redis (redis_up); RedisDown pages after a minute of 0.",
            (Query('min(redis_up{job="redis"})', "up", instant=True),),
            "none",
            kind="stat",
            width=4,
            mappings=(("0", "down", "red"), ("1", "up", "green")),
        ),
        PanelSpec(
            "Host CPU",
            "Busy share of the host's cores (node exporter), per host.",
            (
                Query(
                    "100 * (1 - avg by (instance) "
                    f'(rate(node_cpu_seconds_total{{mode="idle"}}[{RATE}])))',
                    "{{instance}}",
                ),
            ),
            "percent",
            width=8,
        ),
    )
    return [
        ("Replicas", replicas),
        ("Serving", serving),
        ("Model", model),
        ("Exporters", exporters),
    ]
