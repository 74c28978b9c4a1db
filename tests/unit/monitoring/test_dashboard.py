"""The Grafana dashboard's catalog: queries on every panel, thresholds from the settings, the
label conventions, documented series, and the committed JSON files up to date (``--check``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import bentos.metrics
from config.monitoring import API_JOB, REDIS_JOB, REPLICA_LABEL, AlertConfig
from config.stack import StackConfig
from finsimples.generated import stale_files
from finsimples.settings import Settings
from monitoring.alerts import REQUESTS
from monitoring.dashboard import (
    OUTPUTS,
    main,
    panel_queries,
    render_dashboard,
    rendered_files,
    substitute,
)

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "monitoring" / "grafana" / "finsimples.json"


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The default settings, whatever FINSIMPLES_* variables this shell has."""
    for key in [k for k in os.environ if k.startswith("FINSIMPLES_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(ROOT / "monitoring")  # no .env here
    return Settings(_env_file=None)  # type: ignore[call-arg]


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def by_title(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in panels(board)}


def lines(panel: dict[str, Any]) -> list[float]:
    """The threshold lines of a panel (the first step is the base colour, no value)."""
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0]["value"] is None
    return [step["value"] for step in steps[1:]]


def test_every_panel_has_a_query_on_the_datasource_variable(defaults: Settings) -> None:
    board = json.loads(render_dashboard(defaults))
    [variable] = board["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    assert len(panels(board)) >= 15
    for panel in panels(board):
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"] == panel["datasource"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids)


def test_issue_11_panels_are_all_there(defaults: Settings) -> None:
    titles = set(by_title(json.loads(render_dashboard(defaults))))
    assert {
        "CPU per replica",
        "API requests per replica",
        "Latency p50 / p95 / p99",
        "Error rate (5xx share)",
        "Cache hit ratio",
        "Fallback answers",
        "Narrator: retries and failures",
        "Narrator: template share",
        "Model version per replica",
        "Drift",
        "Realized coverage per horizon",
    } <= titles


def test_threshold_lines_are_the_settings(defaults: Settings) -> None:
    board = by_title(json.loads(render_dashboard(defaults)))
    alerts, stack = defaults.alerts, defaults.stack
    assert lines(board["CPU per replica"]) == [stack.autoscale_cpu_percent, alerts.cpu_percent]
    assert lines(board["Latency p50 / p95 / p99"]) == [alerts.latency_seconds]
    assert lines(board["Error rate (5xx share)"]) == [alerts.error_ratio]
    assert lines(board["Cache hit ratio"]) == [alerts.cache_hit_ratio]
    assert lines(board["Fallback answers"]) == [alerts.fallback_ratio]
    assert lines(board["Realized coverage per horizon"]) == [alerts.coverage_min]
    # The plan's numbers, so a changed default shows here by name.
    assert lines(board["CPU per replica"]) == [70, 80]
    assert lines(board["Latency p50 / p95 / p99"]) == [3]
    assert lines(board["Error rate (5xx share)"]) == [0.01]
    assert lines(board["Cache hit ratio"]) == [0.6]
    assert lines(board["Realized coverage per horizon"]) == [0.8]
    # Under the line is bad for ratios that should stay high: red base, green from the line.
    steps = board["Cache hit ratio"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["color"] for s in steps] == ["red", "green"]
    for title in ("CPU per replica", "Latency p50 / p95 / p99", "Cache hit ratio"):
        custom = board[title]["fieldConfig"]["defaults"]["custom"]
        assert custom["thresholdsStyle"] == {"mode": "line"}, title


def test_other_settings_move_the_lines(defaults: Settings) -> None:
    changed = defaults.model_copy(
        update={
            "alerts": AlertConfig(cpu_percent=85, latency_seconds=2.5, coverage_min=0.75),
            "stack": StackConfig(autoscale_cpu_percent=60),
        }
    )
    board = by_title(json.loads(render_dashboard(changed)))
    assert lines(board["CPU per replica"]) == [60, 85]
    assert lines(board["Latency p50 / p95 / p99"]) == [2.5]
    assert lines(board["Realized coverage per horizon"]) == [0.75]
    assert render_dashboard(changed) != render_dashboard(defaults)


def test_queries_follow_the_label_conventions(defaults: Settings) -> None:
    queries = panel_queries(json.loads(render_dashboard(defaults)))
    for title, expr in queries:
        # Every rate over Grafana's window, never a fixed one.
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert window == "$__rate_interval", (title, expr)
        for selector in re.findall(r"bentoml_service_request\w*\{([^}]*)\}", expr):
            assert selector.startswith(REQUESTS), (title, expr)  # API routes, admin excluded
        for selector in re.findall(r"(?:finsimples_(?!drift|realized)\w+|\bup)\{([^}]*)\}", expr):
            assert f'job="{API_JOB}"' in selector, (title, expr)
        for selector in re.findall(r"\bredis_\w+\{([^}]*)\}", expr):
            assert selector == f'job="{REDIS_JOB}"', (title, expr)
        assert "instance" not in expr or "node_cpu" in expr, (title, expr)  # replicas by name
        assert "$" not in substitute(expr), (title, expr)
    # Per-replica panels split by the replica's stable name, which a deploy keeps.
    board = json.loads(render_dashboard(defaults))
    per_replica = [p for p in panels(board) if p["title"].endswith("per replica")]
    assert len(per_replica) == 4
    for panel in per_replica:
        assert f"by ({REPLICA_LABEL}" in panel["targets"][0]["expr"], panel["title"]


def test_every_series_is_documented() -> None:
    """A series the replicas or exporters never export would make a decorative panel."""
    board = json.loads(COMMITTED.read_text())
    used = {
        name
        for _, expr in panel_queries(board)
        for name in re.findall(r"\b((?:finsimples|bentoml|nginx|redis|node)_\w+)", expr)
    }
    documented = (ROOT / "monitoring" / "README.md").read_text() + str(bentos.metrics.__doc__)
    for name in used:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name.startswith(("finsimples_", "bentoml_")):
            assert base in documented, name
    assert {"nginx_connections_active", "redis_up", "node_cpu_seconds_total"} <= used


def test_check_reports_stale_files_and_writing_fixes_them(
    defaults: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().out.count("stale:") == len(OUTPUTS)
    assert main(["--root", str(tmp_path)]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 0
    edited = tmp_path / OUTPUTS[1]
    edited.write_text(edited.read_text().replace("CPU per replica", "CPU"))
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert str(edited) in capsys.readouterr().out


def test_committed_files_are_up_to_date(defaults: Settings) -> None:
    assert stale_files(rendered_files(defaults), ROOT) == [], "run `python -m monitoring.dashboard`"
    assert main(["--check"]) == 0
