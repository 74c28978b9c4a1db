"""`finsimples deploy --verify`: the load test decides; a failed verdict rolls back by itself."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

SHORT = {"FINSIMPLES_LOADTEST__VERIFY_SECONDS": "20"}


def last_record(stack: RunningStack, version: str) -> dict:
    folder = stack.settings.state_dir / "lake" / "reports" / "deploys"
    records = sorted(folder.glob(f"*-v{version}.json"))
    assert records, f"no deploy record of v{version} in {folder}"
    return json.loads(records[-1].read_text())


def champion(stack: RunningStack) -> str:
    """The version holding @champion (a client of its own: no global MLflow state here)."""
    uri = stack.settings.resolved_mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return str(client.get_model_version_by_alias(stack.settings.model_name, "champion").version)


def served(stack: RunningStack) -> set[str]:
    return {slot.model_version for slot in stack.slots()}


def test_a_deploy_that_passes_its_load_test_lands(running_stack: RunningStack) -> None:
    (old,) = served(running_stack)
    new = running_stack.v1 if old == running_stack.v2 else running_stack.v2
    deploy = running_stack.cli("deploy", "--version", new, "--verify", env=SHORT)
    print(deploy.stdout)
    assert deploy.returncode == 0, f"{deploy.stdout}\n{deploy.stderr}"
    assert "load test verdict: PASS" in deploy.stdout
    assert served(running_stack) == {new}
    record = last_record(running_stack, new)
    assert record["verification"]["passed"]
    assert record["verification"]["requests"] > 500
    assert record["rolled_back_to"] is None
    assert record["drift_report"]  # the drift check ran on the landed version


def test_a_deploy_that_fails_its_load_test_rolls_back_with_the_champion(
    running_stack: RunningStack,
) -> None:
    (old,) = served(running_stack)
    new = champion(running_stack)
    assert new != old  # the previous test deployed the non-champion
    # A p95 no server meets: the verdict fails, whatever the machine.
    impossible = SHORT | {"FINSIMPLES_LOADTEST__P95_SECONDS": "0.00001"}
    deploy = running_stack.cli("deploy", "--verify", env=impossible)
    print(deploy.stdout, deploy.stderr)
    assert deploy.returncode == 1, f"{deploy.stdout}\n{deploy.stderr}"
    assert f"v{new} failed its load test and was rolled back to v{old}" in deploy.stderr
    assert served(running_stack) == {old}  # every replica serves the previous version again
    assert champion(running_stack) == old  # a restart will not bring the failed version back
    record = last_record(running_stack, new)
    assert record["rolled_back_to"] == old
    assert not record["verification"]["passed"]
    assert any(f.startswith("p95 latency:") for f in record["verification"]["failures"])
    assert record["drift_report"] == "not run: the new version was rolled back"
