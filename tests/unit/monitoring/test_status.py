"""The status screen from a known snapshot: figures, threshold marks, alerts, missing data."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from rich.console import Console

from config.monitoring import AlertConfig
from monitoring.prometheus_api import ActiveAlert
from monitoring.status import ReplicaStatus, Snapshot, render, status_queries

CONFIG = AlertConfig()
TAKEN = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def screen(snapshot: Snapshot) -> str:
    console = Console(file=io.StringIO(), width=140, record=True, color_system="truecolor")
    console.print(render(snapshot, CONFIG))
    return console.export_text()


def drawn(snapshot: Snapshot, style: str) -> set[str]:
    """The words of the screen drawn in ``style`` (an SGR code: "1;31" is bold red)."""
    console = Console(file=io.StringIO(), width=140, record=True, color_system="standard")
    console.print(render(snapshot, CONFIG))
    ansi = console.export_text(styles=True)
    return {m.strip() for m in re.findall(rf"\x1b\[{re.escape(style)}m([^\x1b]*)\x1b\[0m", ansi)}


def healthy(**changes: object) -> Snapshot:
    replicas = tuple(
        ReplicaStatus(f"replica-{i}", True, 2.5, 0.012, 0.0, 0.84, 12.5, "7") for i in (1, 2, 3)
    )
    fields = dict(
        taken_at=TAKEN,
        prometheus="http://127.0.0.1:9090",
        window="1m",
        replicas=replicas,
        alerts=(),
        redis_up=True,
        drift_detected=False,
        coverage={1: 0.9, 5: 0.88},
        retrain_ok=True,
        trading_days_since_retrain=1.0,
    )
    fields.update(changes)
    return Snapshot(**fields)  # type: ignore[arg-type]


def test_a_healthy_stack_shows_every_figure() -> None:
    text = screen(healthy())
    assert "7.50 req/s · 0 alert(s) firing" in text
    assert "replicas: 3/3 up (rates over 1m)" in text
    for figure in ("replica-1", "replica-3", "2.50", "0.012", "0.00%", "84.0%", "12.5", "v7"):
        assert figure in text
    assert "redis: up" in text
    assert "drift: none" in text
    assert "retrain: ok (1 trading days ago)" in text
    assert "h1 90%" in text
    assert "h5 88%" in text
    assert "alerts: none firing or pending" in text


def test_what_crosses_a_threshold_is_marked_red() -> None:
    bad = ReplicaStatus("replica-2", True, 1.0, 3.4, 0.05, 0.3, 95.0, "7")
    red = drawn(healthy(replicas=(bad,), coverage={5: 0.7}, redis_up=False), "1;31")
    assert {"3.400", "5.00%", "30.0%", "95.0", "70%", "DOWN"} <= red
    assert drawn(healthy(), "1;31") == set()


def test_down_replicas_missing_data_and_a_deploy_in_progress() -> None:
    replicas = (
        ReplicaStatus("replica-1", True, 1.0, 0.01, 0.0, 0.8, 5.0, "8"),
        ReplicaStatus("replica-2", False),
        ReplicaStatus("replica-3", True, 1.0, 0.01, 0.0, 0.8, 5.0, "7"),
    )
    snapshot = healthy(
        replicas=replicas,
        redis_up=None,
        drift_detected=None,
        coverage={},
        retrain_ok=None,
        trading_days_since_retrain=None,
    )
    text = screen(snapshot)
    assert "replicas: 2/3 up" in text
    assert "DOWN" in text
    assert "—" in text  # replica-2 has no figures
    assert "redis: no data" in text
    assert "drift: no data" in text
    assert "no track record yet" in text
    assert {"v8", "v7"} <= drawn(snapshot, "33")  # two versions served: yellow


def test_alerts_firing_first_with_where_and_since() -> None:
    alerts = (
        ActiveAlert(
            "CacheHitRateLow", "pending", {"severity": "ticket"}, "2026-11-30T11:58:00Z", 0.4
        ),
        ActiveAlert(
            "ReplicaDown",
            "firing",
            {"severity": "page", "replica": "replica-2"},
            "2026-11-30T11:50:00.123Z",
            0.0,
        ),
    )
    text = screen(healthy(alerts=alerts))
    assert "1 alert(s) firing" in text
    assert text.index("ReplicaDown") < text.index("CacheHitRateLow")
    assert "replica=replica-2" in text
    assert "2026-11-30 11:50:00" in text


def test_queries_follow_the_label_conventions() -> None:
    queries = status_queries("2m")
    assert 'job="finsimples-api"' in queries["up"]
    assert "[2m]" in queries["rps"]
    assert 'endpoint!~"/v1/admin/.*"' in queries["rps"]
    assert queries["p95"].startswith("histogram_quantile(0.95, sum by (replica, le)")
    assert all("replica" in queries[k] for k in ("rps", "errors", "cache_hits", "cpu"))


def test_the_deploy_controller_and_the_scheduler_have_a_line() -> None:
    text = screen(
        healthy(
            controller_up=True,
            in_sync=True,
            champion="7",
            scheduler="http://127.0.0.1:4200",
            scheduler_up=True,
        )
    )
    assert "deploy controller: up (@champion v7, replicas in sync)" in text
    assert "scheduler: up (http://127.0.0.1:4200)" in text
    behind = healthy(controller_up=True, in_sync=False, champion="8", scheduler_up=False,
                     scheduler="http://127.0.0.1:4200")  # fmt: skip
    assert "replicas NOT on it" in screen(behind)
    assert {"replicas NOT on it", "DOWN"} <= drawn(behind, "1;31")
    assert "deploy controller: no data" in screen(healthy())  # nothing scrapes one
    assert "scheduler" not in screen(healthy())  # not asked
