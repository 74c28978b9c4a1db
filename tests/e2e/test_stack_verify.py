"""`finsimples deploy --version N --verify` whose load test fails: it rolls back by itself,
@champion too, and the deploy controller leaves it there.

``deploy --version N`` makes N @champion first, then deploys it; when its load test fails,
the replicas and @champion go back to the version that served, so the controller (which makes
the replicas follow @champion) sees nothing to do.
"""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

SHORT = {"FINSIMPLES_LOADTEST__VERIFY_SECONDS": "20"}


def champion(stack: RunningStack) -> str:
    """The version holding @champion (a client of its own: no global MLflow state here)."""
    uri = stack.settings.resolved_mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return str(client.get_model_version_by_alias(stack.settings.model_name, "champion").version)


def served(stack: RunningStack) -> set[str]:
    return {slot.model_version for slot in stack.slots()}


@pytest.mark.slow  # two rolling deploys, ~140 s on 2 cores; the gate's decision: test_deploy_gate
def test_a_deploy_that_fails_its_load_test_rolls_back_with_the_champion(
    running_stack: RunningStack,
) -> None:
    (old,) = served(running_stack)
    assert champion(running_stack) == old
    new = running_stack.v1 if old == running_stack.v2 else running_stack.v2
    # A p95 no server meets: the verdict fails, whatever the machine.
    impossible = SHORT | {"FINSIMPLES_LOADTEST__P95_SECONDS": "0.00001"}
    deploy = running_stack.cli("deploy", "--version", new, "--verify", env=impossible)
    print(deploy.stdout, deploy.stderr)
    assert deploy.returncode == 1, f"{deploy.stdout}\n{deploy.stderr}"
    assert f"v{new} failed its load test and was rolled back to v{old}" in deploy.stderr
    assert served(running_stack) == {old}  # every replica serves the previous version again
    assert champion(running_stack) == old  # a restart will not bring the failed version back
    record = running_stack.deploy_record(new)
    assert record["rolled_back_to"] == old
    assert not record["verification"]["passed"]
    assert any(f.startswith("p95 latency:") for f in record["verification"]["failures"])
    assert record["drift_report"] == "not run: the new version was rolled back"
    time.sleep(3 * running_stack.settings.stack.controller_poll_seconds)
    assert served(running_stack) == {old}  # the controller agrees: in sync, nothing to do
