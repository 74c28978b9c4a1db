"""`finsimples deploy --verify` whose load test fails: it rolls back by itself, @champion too.

``test_stack_deploy`` verifies a deploy that passes, and leaves the version that is not
@champion serving (this test deploys it first when run alone), so deploying @champion here is
a real change. This test moves @champion for good (to the version served before): it is the
e2e tier's last module (pytest runs them in name order), and no later test reads @champion.
"""

from __future__ import annotations

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
    new = champion(running_stack)
    if served(running_stack) == {new}:  # run alone: first serve the other version
        other = running_stack.v1 if new == running_stack.v2 else running_stack.v2
        assert running_stack.cli("deploy", "--version", other).returncode == 0
    (old,) = served(running_stack)
    assert new != old
    # A p95 no server meets: the verdict fails, whatever the machine.
    impossible = SHORT | {"FINSIMPLES_LOADTEST__P95_SECONDS": "0.00001"}
    deploy = running_stack.cli("deploy", "--verify", env=impossible)
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
