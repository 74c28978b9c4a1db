"""``finsimples monitor status``: the stack's health on one terminal screen, from Prometheus.

For ops where Grafana isn't available. :func:`collect` asks Prometheus (the queries are
:func:`status_queries`, on the label conventions of ``config.monitoring``) and returns a
:class:`Snapshot`; :func:`render` turns a snapshot into rich tables, marking what crosses the
alert thresholds of the settings. Collecting is the only I/O; rendering is pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from config.monitoring import CONTROLLER_JOB, REDIS_JOB, REPLICA_LABEL, AlertConfig
from monitoring.alerts import API, REQUESTS
from monitoring.prometheus_api import ActiveAlert, PrometheusApi, Sample

BY = REPLICA_LABEL


def _rate(metric: str, selector: str, window: str, by: str = BY) -> str:
    return f"sum by ({by}) (rate({metric}{{{selector}}}[{window}]))"


def status_queries(window: str = "1m") -> dict[str, str]:
    """The PromQL of each figure, per replica (``replica`` label) over ``window``."""
    requests = _rate("bentoml_service_request_total", REQUESTS, window)
    errors = _rate(
        "bentoml_service_request_total", f'{REQUESTS}, http_response_code=~"5.."', window
    )
    lookups = _rate(
        "finsimples_cache_events_total", f'{API}, cache="forecast", event=~"hits|misses"', window
    )
    hits = _rate("finsimples_cache_events_total", f'{API}, cache="forecast", event="hits"', window)
    buckets = _rate(
        "bentoml_service_request_duration_seconds_bucket", REQUESTS, window, f"{BY}, le"
    )
    return {
        "up": f"up{{{API}}}",
        "rps": requests,
        "p95": f"histogram_quantile(0.95, {buckets})",
        "errors": f"{errors} / {requests}",
        "cache_hits": f"{hits} / {lookups}",
        "cpu": f"100 * {_rate('finsimples_process_cpu_seconds_total', API, window)}",
        "model": f"finsimples_model_info{{{API}}}",
        "redis": f'redis_up{{job="{REDIS_JOB}"}}',
        "drift": "max(finsimples_drift_detected)",
        "coverage": "min by (horizon) (finsimples_realized_coverage)",
        "retrain_ok": "min(finsimples_retrain_last_run_success)",
        "since_retrain": "max(finsimples_trading_days_since_retrain)",
        "controller_up": f'up{{job="{CONTROLLER_JOB}"}}',
        "in_sync": "min(finsimples_controller_in_sync)",
        "champion": "finsimples_registry_champion_info",
    }


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica's figures (NaN: no data, e.g. no traffic in the window)."""

    name: str
    up: bool
    rps: float = math.nan
    p95: float = math.nan
    error_ratio: float = math.nan
    cache_hit_ratio: float = math.nan
    cpu_percent: float = math.nan
    model_version: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """What :func:`collect` read, at ``taken_at``."""

    taken_at: datetime
    prometheus: str
    window: str
    replicas: tuple[ReplicaStatus, ...]
    alerts: tuple[ActiveAlert, ...]
    redis_up: bool | None = None
    drift_detected: bool | None = None
    coverage: Mapping[int, float] = field(default_factory=dict)
    retrain_ok: bool | None = None
    trading_days_since_retrain: float | None = None
    controller_up: bool | None = None  # None: Prometheus scrapes no deploy controller
    in_sync: bool | None = None
    champion: str | None = None  # @champion as the controller read it
    scheduler: str | None = None  # the Prefect server's URL (None: not asked)
    scheduler_up: bool | None = None

    @property
    def replicas_up(self) -> int:
        """How many replicas Prometheus reaches."""
        return sum(r.up for r in self.replicas)

    @property
    def total_rps(self) -> float:
        """API requests per second over every replica."""
        return sum(r.rps for r in self.replicas if not math.isnan(r.rps))

    @property
    def firing(self) -> tuple[ActiveAlert, ...]:
        """The alerts that fire (not just pending)."""
        return tuple(a for a in self.alerts if a.state == "firing")


def _by_replica(samples: list[Sample]) -> dict[str, float]:
    return {s.labels[BY]: s.value for s in samples if BY in s.labels}


def _one(samples: list[Sample]) -> float | None:
    values = [s.value for s in samples if not math.isnan(s.value)]
    return values[0] if values else None


def collect(
    api: PrometheusApi,
    window: str = "1m",
    *,
    now: datetime | None = None,
    scheduler: str | None = None,
) -> Snapshot:
    """Ask Prometheus for every figure of the screen, and the scheduler (the Prefect server at
    ``scheduler``, which Prometheus does not scrape) for its health.

    Raises:
        PrometheusError: Prometheus is unreachable or refused a query.
    """
    queries = status_queries(window)
    answers = {name: api.query(expr) for name, expr in queries.items()}
    up = _by_replica(answers["up"])
    figures = {name: _by_replica(answers[name]) for name in ("rps", "p95", "errors", "cache_hits")}
    cpu = _by_replica(answers["cpu"])
    versions = {
        s.labels[BY]: s.labels.get("model_version", "?")
        for s in answers["model"]
        if BY in s.labels and s.value == 1
    }
    names = sorted(set(up) | set(versions))
    replicas = tuple(
        ReplicaStatus(
            name=name,
            up=up.get(name) == 1,
            rps=figures["rps"].get(name, math.nan),
            p95=figures["p95"].get(name, math.nan),
            error_ratio=figures["errors"].get(name, math.nan),
            cache_hit_ratio=figures["cache_hits"].get(name, math.nan),
            cpu_percent=cpu.get(name, math.nan),
            model_version=versions.get(name),
        )
        for name in names
    )
    redis = _one(answers["redis"])
    drift = _one(answers["drift"])
    retrain_ok = _one(answers["retrain_ok"])
    controller_up = _one(answers["controller_up"])
    in_sync = _one(answers["in_sync"])
    champions = [s.labels.get("model_version") for s in answers["champion"] if s.value == 1]
    return Snapshot(
        taken_at=now or datetime.now(UTC),
        prometheus=api.base_url,
        window=window,
        replicas=replicas,
        alerts=tuple(api.alerts()),
        redis_up=None if redis is None else redis == 1,
        drift_detected=None if drift is None else drift == 1,
        coverage={
            int(s.labels["horizon"]): s.value
            for s in answers["coverage"]
            if s.labels.get("horizon", "").isdigit()
        },
        retrain_ok=None if retrain_ok is None else retrain_ok == 1,
        trading_days_since_retrain=_one(answers["since_retrain"]),
        controller_up=None if controller_up is None else controller_up == 1,
        in_sync=None if in_sync is None else in_sync == 1,
        champion=champions[0] if champions else None,
        scheduler=scheduler,
        scheduler_up=None if scheduler is None else _healthy(f"{scheduler}/api/health"),
    )


def _healthy(url: str) -> bool:
    """Whether ``url`` answers 200 within 2 s."""
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


# --- rendering (pure) ----------------------------------------------------------------------
NO_DATA = "—"


def _figure(value: float, fmt: str, limit: float | None = None, above_is_bad: bool = True) -> Text:
    """``value`` formatted; red when it crosses ``limit``; a dash when there is no data."""
    if math.isnan(value):
        return Text(NO_DATA, style="dim")
    bad = limit is not None and (value > limit if above_is_bad else value < limit)
    return Text(format(value, fmt), style="bold red" if bad else "")


def _flag(value: bool | None, good: str, bad: str) -> Text:
    if value is None:
        return Text("no data", style="dim")
    return Text(good, style="green") if value else Text(bad, style="bold red")


def replicas_table(snapshot: Snapshot, config: AlertConfig) -> Table:
    """One row a replica: up, traffic, latency, errors, cache, CPU, model version."""
    table = Table(
        "replica", "up", "req/s", "p95 s", "errors", "cache hits", "CPU %", "model",
        title=f"replicas: {snapshot.replicas_up}/{len(snapshot.replicas)} up "
        f"(rates over {snapshot.window})",
        title_justify="left",
    )  # fmt: skip
    versions = {r.model_version for r in snapshot.replicas if r.model_version}
    for r in snapshot.replicas:
        table.add_row(
            r.name,
            _flag(r.up, "up", "DOWN"),
            _figure(r.rps, ".2f"),
            _figure(r.p95, ".3f", config.latency_seconds),
            _figure(r.error_ratio, ".2%", config.error_ratio),
            _figure(r.cache_hit_ratio, ".1%", config.cache_hit_ratio, above_is_bad=False),
            _figure(r.cpu_percent, ".1f", config.cpu_percent),
            Text(f"v{r.model_version}" if r.model_version else NO_DATA, style="yellow")
            if len(versions) > 1  # a deploy in progress, or one stuck on an old version
            else Text(f"v{r.model_version}" if r.model_version else NO_DATA),
        )
    return table


def alerts_table(snapshot: Snapshot) -> Table | Text:
    """Firing and pending alerts, firing first; a green line when there are none."""
    if not snapshot.alerts:
        return Text("alerts: none firing or pending", style="green")
    table = Table(
        "alert", "state", "severity", "where", "since", title="alerts", title_justify="left"
    )
    order = sorted(snapshot.alerts, key=lambda a: (a.state != "firing", a.name))
    for alert in order:
        where = ", ".join(
            f"{k}={v}" for k, v in alert.labels.items() if k in (BY, "horizon", "endpoint")
        )
        style = "bold red" if alert.state == "firing" else "yellow"
        table.add_row(
            Text(alert.name, style=style),
            alert.state,
            alert.labels.get("severity", "?"),
            where or NO_DATA,
            alert.active_at[:19].replace("T", " "),
        )
    return table


def model_lines(snapshot: Snapshot, config: AlertConfig) -> Text:
    """Redis, drift, realized coverage per horizon, the retrain's state."""
    line = Text()
    line.append("redis: ").append_text(_flag(snapshot.redis_up, "up", "DOWN"))
    line.append("   drift: ").append_text(_flag(_not(snapshot.drift_detected), "none", "DETECTED"))
    line.append("   retrain: ").append_text(_flag(snapshot.retrain_ok, "ok", "FAILED"))
    if snapshot.trading_days_since_retrain is not None:
        days = snapshot.trading_days_since_retrain
        stale = days > config.champion_stale_trading_days
        line.append(f" ({days:.0f} trading days ago)", style="bold red" if stale else "")
    line.append("\ndeploy controller: ").append_text(_flag(snapshot.controller_up, "up", "DOWN"))
    if snapshot.controller_up:
        champion = f"@champion v{snapshot.champion}" if snapshot.champion else "no @champion"
        line.append(f" ({champion}, ")
        line.append_text(_flag(snapshot.in_sync, "replicas in sync", "replicas NOT on it"))
        line.append(")")
    if snapshot.scheduler is not None:
        line.append("   scheduler: ").append_text(_flag(snapshot.scheduler_up, "up", "DOWN"))
        line.append(f" ({snapshot.scheduler})")
    line.append("\nrealized 90% coverage: ")
    if not snapshot.coverage:
        line.append("no track record yet", style="dim")
    for horizon, value in sorted(snapshot.coverage.items()):
        line.append(f"h{horizon} ")
        line.append_text(_figure(value, ".0%", config.coverage_min, above_is_bad=False))
        line.append("  ")
    return line


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def render(snapshot: Snapshot, config: AlertConfig) -> RenderableType:
    """The whole screen."""
    total_rps = snapshot.total_rps
    header = Text(
        f"FinSimples · {snapshot.prometheus} · {snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC · "
        f"{total_rps:.2f} req/s · {len(snapshot.firing)} alert(s) firing",
        style="bold",
    )
    return Group(
        header,
        replicas_table(snapshot, config),
        model_lines(snapshot, config),
        alerts_table(snapshot),
    )
