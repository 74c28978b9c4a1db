"""MLflow down during a deploy: the deploy stops with a clear error before anything moves, and
every replica keeps serving the old version under load (issue 12, storage and registry faults).

The deploy reaches the registry through the stack's MLflow server, as a deploy run from another
machine, or a stack whose registry is an MLflow server, does. (With the session stack's own
environment the deploy reads the registry's sqlite store directly and never needs the server.)
"""

from __future__ import annotations

import time

import httpx
import pytest

from deploy.programs import MLFLOW
from jobs.common import open_registry
from tests.e2e.conftest import LOAD_KEYS, TICKERS, RunningStack, mlflow_answers
from tests.e2e.load import steady_load
from tests.servers import port_open, wait_until

pytestmark = pytest.mark.e2e


def served_versions(running: RunningStack) -> dict[str, str]:
    """Each replica's model version, asked of the replica itself (behind NGINX's back)."""
    headers = {"X-API-Key": LOAD_KEYS[0]}
    with httpx.Client(timeout=10, headers=headers) as client:
        return {
            slot.name: client.get(f"{running.stack.replica_url(slot)}/v1/model").json()["version"]
            for slot in running.slots()
        }


def test_mlflow_down_stops_the_deploy_and_the_old_version_keeps_serving(
    running_stack: RunningStack,
) -> None:
    stack = running_stack.stack
    slots_before = running_stack.slots()
    (old,) = {slot.model_version for slot in slots_before}  # v2 at start; others may move it
    new = running_stack.v1 if old == running_stack.v2 else running_stack.v2
    mlflow = stack.urls.mlflow
    # `stack up` waits for MLflow's process, not for its answers: it takes seconds to start.
    wait_until(lambda: mlflow_answers(mlflow), 120, "the stack's MLflow server")
    registry = open_registry(running_stack.settings)  # the sqlite store behind the server
    champion_before = str(registry.champion().version)  # type: ignore[union-attr]
    tags_before = dict(registry.get(new).tags)
    records = running_stack.settings.state_dir / "lake" / "reports" / "deploys"
    records_before = sorted(records.glob("*.json"))

    with steady_load(running_stack.api, LOAD_KEYS, TICKERS, threads=3) as load:
        time.sleep(1)
        stack.supervisor.stop(MLFLOW)
        stopped_at = time.monotonic()
        try:
            assert not port_open(running_stack.settings.stack.mlflow_port)
            deploy = running_stack.cli(
                "deploy",
                "--version",
                new,
                timeout=180,
                env={
                    "FINSIMPLES_MLFLOW_TRACKING_URI": mlflow,
                    # MLflow's client retries 7 times over minutes by default; one retry here.
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
                },
            )
            deploy_seconds = time.monotonic() - stopped_at
            during = served_versions(running_stack)
        finally:
            stack.supervisor.start(MLFLOW)
            wait_until(lambda: mlflow_answers(mlflow), 120, "the stack's MLflow server")
        restarted_at = time.monotonic()
        time.sleep(1)

    report = load.report(
        f"MLflow stopped during a deploy of v{new}, down {restarted_at - stopped_at:.0f} s"
    )
    error = " ".join(deploy.stderr.split())
    print(report.line())
    print(
        f"fault report | MLflow down during a deploy | attempted: finsimples deploy --version "
        f"{new} (serving v{old}) | exit code {deploy.returncode} after {deploy_seconds:.1f} s "
        f"| error: {error[:300]} | replicas: {during} | champion v{champion_before} -> "
        f"v{registry.champion().version} | deploy records: {len(records_before)} -> "  # type: ignore[union-attr]
        f"{len(sorted(records.glob('*.json')))}"
    )

    # A clear error naming the registry, its MLflow server and what went wrong.
    assert deploy.returncode == 1, (deploy.stdout, deploy.stderr)
    assert "MLflow model registry" in error, error
    assert mlflow in error, error
    assert "Connection refused" in error or "Max retries exceeded" in error, error
    assert "has no version" not in error  # an outage is not a missing version

    # Nothing half-done: the same programs serve the old version, nothing was recorded.
    assert during == {slot.name: old for slot in slots_before}
    assert [s.program for s in running_stack.slots()] == [s.program for s in slots_before]
    assert served_versions(running_stack) == {slot.name: old for slot in slots_before}
    assert sorted(records.glob("*.json")) == records_before
    assert str(registry.champion().version) == champion_before  # type: ignore[union-attr]
    assert dict(registry.get(new).tags) == tags_before

    # The clients saw nothing: every answer came from the old version, on every replica.
    assert report.failed == 0, (load.summary(), load.failed[:3])
    answers = load.snapshot()
    assert {a.model_version for a in answers} == {old}
    assert {a.replica for a in answers} == {slot.name for slot in slots_before}

    # The stack as it was found: MLflow back under its supervisor.
    assert stack.processes()[MLFLOW].state == "RUNNING"
