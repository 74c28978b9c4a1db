"""The deploy controller woken by a real `mlflow server`'s registry webhook.

The server runs as the stack runs it (sqlite backend, a Fernet key for webhook secrets, plain
http to 127.0.0.1 allowed); the controller registers its webhook there with a fresh secret.
Its poll is an hour long, so only the webhook can wake it: an alias moved through the server
(what MLflow's UI does) reaches the controller's deploy step within seconds, the delivery's
HMAC signature verified. A restarted controller replaces its webhook rather than adding one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from deploy.controller import ControllerState, DeployController, DeployResult, serve_http
from deploy.reconcile import Observation
from deploy.webhook import WEBHOOK_NAME, fernet_key, new_secret, register
from registry.promotion import ModelRegistry
from tests.integration.registry.conftest import add_version, make_registry, mlflow_server_command
from tests.servers import free_port, server_process, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def webhook_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` with webhooks enabled as ``deploy.programs`` starts the stack's."""
    root = tmp_path_factory.mktemp("mlflow-webhooks")
    port = free_port()
    command = mlflow_server_command(root, port)
    env = os.environ | {
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": fernet_key(),
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",  # a new webhook is used at once
    }
    with server_process(command, port, root / "server.log", timeout=120, env=env):
        yield f"http://127.0.0.1:{port}"


def test_an_alias_moved_on_the_server_wakes_the_controller_at_once(
    webhook_mlflow: str, tmp_path: Path
) -> None:
    registry: ModelRegistry = make_registry(webhook_mlflow, name="hooked")
    v1, v2 = add_version(registry), add_version(registry)
    registry.promote(v1, reason="first")
    served = [v1, v1]
    deployed: list[tuple[str, str | None, bool]] = []

    def observe() -> Observation:
        champion = registry.champion()
        return Observation(str(champion.version) if champion else None, list(served))

    def deploy(version: str, previous: str | None, verify: bool) -> DeployResult:
        deployed.append((version, previous, verify))
        served[:] = [version] * len(served)
        return DeployResult(True, True, f"v{previous} -> v{version}")

    controller = DeployController(observe, deploy, ControllerState(tmp_path), poll_seconds=3600)
    port = free_port()
    server = serve_http(controller, "127.0.0.1", port)
    client = MlflowClient(tracking_uri=webhook_mlflow, registry_uri=webhook_mlflow)
    url = f"http://127.0.0.1:{port}/webhook"
    register(client, url, new_secret())  # an earlier controller's, replaced below
    controller.webhook_secret = new_secret()
    register(client, url, controller.webhook_secret)
    assert [h.name for h in client.list_webhooks()] == [WEBHOOK_NAME]
    loop = threading.Thread(target=controller.run)
    loop.start()
    try:
        wait_until(lambda: bool(ControllerState(tmp_path).recent()), 30, "the first pass")
        assert deployed == []
        time.sleep(1.5)  # the server's webhook list is cached for MLFLOW_WEBHOOK_CACHE_TTL

        # As MLflow's UI does it: the alias set through the server's REST API.
        moved = time.monotonic()
        client.set_registered_model_alias("hooked", "champion", v2)
        wait_until(lambda: served == [v2, v2], 60, "the webhook's wake-up and the deploy")
        seconds = time.monotonic() - moved
        print(f"alias moved -> controller deployed: {seconds:.2f} s (poll: 3600 s)")
        assert deployed == [(v2, v1, True)]
        metrics = controller.metrics.registry
        accepted = metrics.get_sample_value(
            "finsimples_controller_webhooks_total", {"result": "accepted"}
        )
        assert accepted is not None
        assert accepted >= 1
        assert (
            metrics.get_sample_value(
                "finsimples_controller_reconciles_total", {"trigger": "webhook", "result": "deploy"}
            )
            == 1
        )
    finally:
        controller.stop.set()
        controller.wake.set()
        loop.join(timeout=30)
        server.shutdown()
