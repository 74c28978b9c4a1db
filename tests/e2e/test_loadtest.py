"""`finsimples loadtest` against the session stack: the plan's verdict, and one that fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from config.loadtest import LoadTestConfig
from tests.e2e.conftest import KEYS, RunningStack
from tests.servers import free_port, wait_until

pytestmark = pytest.mark.e2e

CHARTS = ("latency.png", "rps_per_replica.png", "cache_hit_rate.png", "cpu_per_replica.png")


# The plan's capacity lines: the session stack relaxes them for its deploys' verifications.
PLAN = {
    "FINSIMPLES_LOADTEST__MAX_CPU_PERCENT": str(LoadTestConfig().max_cpu_percent),
    "FINSIMPLES_LOADTEST__BALANCE_TOLERANCE": str(LoadTestConfig().balance_tolerance),
}


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def line(summary: dict, name: str) -> dict:
    return next(row for row in summary["verdict"] if row["name"] == name)


def test_the_ci_profile_passes_the_plans_verdict(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    report = tmp_path / "ci"
    run = running_stack.cli("loadtest", "--profile", "ci", "--report-dir", str(report), env=PLAN)
    print(run.stdout)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "verdict: PASS" in run.stdout
    summary = summary_of(report)
    assert summary["passed"]
    assert summary["profile"]["duration_seconds"] == 120
    assert summary["requests"] > 5000  # 100 users, one request each 1.2 s, for most of 2 min
    assert summary["by_kind"]["invalid"] > 0  # the bad requests got their 4xx: no failure
    assert {row["name"] for row in summary["verdict"]} >= {
        "p95 latency",
        "error rate",
        "balance replica-1",
        "cache hit rate (/metrics)",
        "peak CPU replica-3",
    }
    # The two cache hit measurements were both made, and agree.
    answers = line(summary, "cache hit rate (answers)")["measured"]
    metrics = line(summary, "cache hit rate (/metrics)")["measured"]
    assert answers is not None
    assert metrics is not None
    assert abs(answers - metrics) <= 0.02
    assert line(summary, "cache measurements agree")["passed"]
    for name in ("report.html", "summary.json", "events.jsonl", "samples.jsonl", *CHARTS):
        assert (report / name).stat().st_size > 0, name
    assert (report / "latency.png").read_bytes().startswith(b"\x89PNG")
    assert summary["cpu_ms_per_request"] > 0  # the replicas' CPU, read while they served


@contextmanager
def broken(stack: RunningStack, replica: str, status: int) -> Iterator[None]:
    """``replica`` answers every forecast with ``status`` until the block ends."""
    plan = stack.settings.resolved_fault_plan_path
    slot = next(s for s in stack.slots() if s.name == replica)
    url = f"{stack.stack.replica_url(slot)}/v1/forecast"
    body = {"ticker": "AAPL", "horizon_days": 5}
    headers = {"X-API-Key": KEYS["balance"]}

    def answers(code: int) -> bool:
        return httpx.post(url, json=body, headers=headers, timeout=5).status_code == code

    plan.write_text(json.dumps({replica: {"status": status}}))
    try:
        wait_until(lambda: answers(status), 10, f"{replica} to answer {status}")
        yield
    finally:
        plan.unlink()
        wait_until(lambda: answers(200), 10, f"{replica} to answer 200 again")


def test_a_replica_answering_500s_fails_the_error_and_balance_lines(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    report = tmp_path / "broken"
    with broken(running_stack, "replica-2", 500):
        run = running_stack.cli(
            "loadtest", "--profile", "ci", "--duration", "20", "--report-dir", str(report), env=PLAN
        )
    print(run.stdout)
    assert run.returncode == 1, f"{run.stdout}\n{run.stderr}"
    assert "verdict: FAIL" in run.stdout
    assert "error rate:" in run.stdout  # the failed line, explained with its gap
    # Its share: only the calls a fault does not touch (ticker lists, model cards, 422s).
    assert "balance replica-2: " in run.stdout
    share = line(summary_of(report), "balance replica-2")["measured"]
    assert share > 0.5  # off the mean share by more than half
    summary = summary_of(report)
    assert not line(summary, "error rate")["passed"]
    assert not line(summary, "balance replica-2")["passed"]
    assert summary["by_status"]["500"] > 0


def test_a_host_that_is_not_there_fails_at_once(
    running_stack: RunningStack, tmp_path: Path
) -> None:
    report = tmp_path / "nowhere"
    host = f"http://127.0.0.1:{free_port()}"
    run = running_stack.cli("loadtest", "--host", host, "--report-dir", str(report), timeout=60)
    assert run.returncode == 2, f"{run.stdout}\n{run.stderr}"
    assert f"nothing answers at {host}" in run.stderr
    assert "finsimples stack up" in run.stderr
    assert not report.exists()  # nothing was started
