"""Serving follows the registry: @champion moved in MLflow reaches every replica by itself.

As a data scientist does it in MLflow's UI: the alias is set through the stack's MLflow server
(``MlflowClient`` on its URL), under steady load. Nobody runs a deploy: the stack's deploy
controller, woken by the server's webhook, rolls the replicas one by one, verifies the new
version with the load test and records it. No request fails meanwhile.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import httpx
import pytest
from mlflow import MlflowClient

from deploy.controller import ControllerState
from tests.e2e.conftest import (
    KEYS,
    TICKERS,
    VERIFY_KEYS,
    VERIFY_SECONDS,
    RunningStack,
    mlflow_answers,
)
from tests.e2e.load import steady_load
from tests.servers import wait_until

pytestmark = pytest.mark.e2e
CAPACITY_LINES = ("balance ", "peak CPU ", "p95 latency", "mean latency")
"""Verdict lines a busy 2-core box can fail with a healthy version (loadtest/verdict.py)."""


def verdict(decisions: list[dict]) -> dict | None:
    """The result of the controller's last deploy attempt, once it has one."""
    starts = [i for i, e in enumerate(decisions) if e["event"] == "deploying"]
    if not starts:
        return None
    ends = ("verified", "deployed", "rolled_back", "failed")
    return next((e for e in decisions[starts[-1] :] if e["event"] in ends), None)


def test_a_promotion_in_mlflow_reaches_every_replica_under_load(
    running_stack: RunningStack,
) -> None:
    stack = running_stack.stack
    urls = stack.urls
    assert urls.controller is not None
    served = {slot.model_version for slot in running_stack.slots()}
    assert len(served) == 1, served
    (old,) = served
    new = running_stack.v1 if old == running_stack.v2 else running_stack.v2
    wait_until(lambda: mlflow_answers(urls.mlflow), 120, "the stack's MLflow server")
    # The controller is in sync before anything moves.
    wait_until(
        lambda: "finsimples_controller_in_sync 1.0" in httpx.get(urls.controller + "/metrics").text,
        60,
        "the controller's first reconcile",
    )
    mlflow = MlflowClient(tracking_uri=urls.mlflow, registry_uri=urls.mlflow)
    name = running_stack.settings.model_name
    state = ControllerState(stack.layout.controller)
    decisions_before = len(state.recent(10_000))

    # Not LOAD_KEYS: the controller's verification sends those (the session's load-test keys),
    # and each key has its own rate budget.
    keys = [KEYS["controller"], *VERIFY_KEYS]
    with steady_load(running_stack.api, keys, TICKERS, threads=3) as load:
        time.sleep(2)
        moved = time.monotonic()
        mlflow.set_registered_model_alias(name, "champion", new)
        wait_until(
            lambda: {slot.model_version for slot in running_stack.slots()} == {new},
            300,
            f"every replica on v{new}",
        )
        landed, landed_wall = time.monotonic(), time.time()
        # The verification ends after the last replica moved: wait for its verdict.
        wait_until(
            lambda: verdict(state.recent(10_000)[decisions_before:]) is not None,
            180,
            "the controller's verdict",
        )
        time.sleep(2)

    decisions = state.recent(10_000)[decisions_before:]
    last = verdict(decisions)
    print(
        f"alias moved in MLflow -> last replica on v{new}: {landed - moved:.1f} s "
        f"(webhook); {load.summary()}; verdict: {last}"
    )
    assert not load.failed, (load.summary(), load.failed[:3])
    assert last is not None
    deploying = [e for e in decisions if e["event"] == "deploying"][-1]
    assert (deploying["version"], deploying["previous"], deploying["verify"]) == (new, old, True)

    # Once the last replica moved, every answer came from the new version, on every replica,
    # while the verification's load test ran (it starts then and takes VERIFY_SECONDS; a
    # rollback comes only after it, and its event only once the replicas are back).
    verdict_wall = datetime.fromisoformat(last["at"]).timestamp()
    window_end = min(verdict_wall, landed_wall + VERIFY_SECONDS) - 1
    window = [a for a in load.snapshot() if landed_wall + 1 < a.sent_wall < window_end]
    assert window
    assert {a.model_version for a in window} == {new}
    assert {a.replica for a in window} == {slot.name for slot in running_stack.slots()}

    record = running_stack.deploy_record(new)
    assert record["old_version"] == old
    if last["event"] == "rolled_back":
        # The verification is a load test on 2 shared cores: on a busy box a capacity line
        # (a replica's share or CPU, p95) can fail it. Then the controller's other half is
        # what is checked: the replicas and @champion back on the old version, the new one
        # held, and serving in line with the registry again.
        failures = record["verification"]["failures"]
        assert all(f.startswith(CAPACITY_LINES) for f in failures), failures
        assert record["rolled_back_to"] == old
        assert str(mlflow.get_model_version_by_alias(name, "champion").version) == old
        wait_until(
            lambda: {slot.model_version for slot in running_stack.slots()} == {old},
            60,
            f"every replica back on v{old}",
        )
        assert new in ControllerState(stack.layout.controller).load().failed
        expected, held = old, f"held: v{new}"
    else:
        assert last["event"] == "verified", decisions
        assert record["verification"]["passed"], record["verification"]
        assert json.loads((stack.layout.controller / "memory.json").read_text())["last_good"] == new
        expected, held = new, ""

    # The controller's gauges and `finsimples deploy status` say the same.
    wait_until(
        lambda: "finsimples_controller_in_sync 1.0" in httpx.get(urls.controller + "/metrics").text,
        30,
        "the controller's next reconcile",
    )
    metrics = httpx.get(urls.controller + "/metrics").text
    assert f'finsimples_registry_champion_info{{model_version="{expected}"}} 1.0' in metrics
    status = running_stack.cli("deploy", "status")
    assert status.returncode == 0, status.stderr
    print(status.stdout)
    assert f"@champion: v{expected}" in status.stdout
    assert "state: in sync" in status.stdout
    assert "controller: RUNNING" in status.stdout
    assert held in status.stdout
