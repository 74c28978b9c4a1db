"""The deploy controller wired to a real stack: the registry and the stack's record.

``finsimples deploy controller`` runs :func:`run_controller` (supervisord does, in the stack),
handing it how a version reaches the replicas: the deploy hook flow
(``flows.deploy_hook.deploy_with_hook``), which sits above this package.
It takes the stack's controller lock, registers an MLflow webhook when the registry is an MLflow
server, serves its HTTP routes on ``stack.controller_port`` and reconciles until SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx

from deploy.controller import (
    ControllerState,
    DeployController,
    DeployResult,
    controller_lock,
    serve_http,
)
from deploy.layout import StackLayout
from deploy.programs import runs_mlflow, stack_mlflow_uri
from deploy.reconcile import Observation
from deploy.rolling import DeployInProgressError
from finsimples.settings import Settings

log = logging.getLogger("finsimples.controller")


def observe_stack(settings: Settings) -> Observation:
    """``@champion`` in the registry, and the version each replica of the stack serves."""
    from jobs.common import open_registry

    champion = open_registry(settings).champion()
    served = [slot.model_version for slot in StackLayout.of(settings).read_slots()]
    return Observation(str(champion.version) if champion else None, served)


def _register_webhook(settings: Settings, controller: DeployController) -> None:
    """Register the controller's webhook on the stack's MLflow server once it answers (it starts
    beside the controller; a refusal is retried every poll), then arm the HTTP route.

    Only for the stack's own server: a registry of another server belongs to its admins, and
    the poll alone keeps serving in line there.
    """
    if not runs_mlflow(settings):
        return
    from mlflow import MlflowClient

    from deploy.webhook import new_secret, register

    stack = settings.stack
    uri = stack_mlflow_uri(settings)
    url = f"http://{stack.host}:{stack.controller_port}/webhook"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    while not controller.stop.is_set():
        if not _answers(uri):  # asked first: MLflow's client retries for minutes on its own
            controller.stop.wait(1.0)
            continue
        secret = new_secret()
        try:
            register(client, url, secret)
        except Exception as exc:  # the server is starting, or refuses webhooks: poll meanwhile
            log.info("MLflow webhook not registered yet (%s): polling meanwhile", exc)
            controller.stop.wait(stack.controller_poll_seconds)
            continue
        controller.webhook_secret = secret
        log.info("MLflow webhook registered on %s -> %s", uri, url)
        controller.state.record("webhook", reason=f"registered on {uri}")
        return


def _answers(uri: str) -> bool:
    """Whether the MLflow server at ``uri`` answers its health check."""
    try:
        return httpx.get(f"{uri}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def run_controller(
    settings: Settings, workdir: Path, deploy: Callable[[str, str | None, bool], DeployResult]
) -> None:
    """Reconcile the stack with the registry until SIGTERM or SIGINT.

    Args:
        settings: The registry, the stack and the controller's numbers.
        workdir: The stack's folder (replica programs are built relative to it).
        deploy: Rolls ``(version, previous, verify)`` onto the stack under its deploy lock
            (the CLI passes the deploy hook flow's ``deploy_with_hook``).

    Raises:
        ControllerBusyError: another controller runs on this stack.
    """
    os.chdir(workdir)  # the deploy hook builds replica programs relative to the stack's folder
    layout = StackLayout.of(settings)
    stack = settings.stack
    with controller_lock(layout.controller / "controller.lock"):
        controller = DeployController(
            observe=lambda: observe_stack(settings),
            deploy=deploy,
            state=ControllerState(layout.controller),
            poll_seconds=stack.controller_poll_seconds,
            verify=stack.controller_verify,
            busy=(DeployInProgressError,),
        )

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping after the current pass", signum)
            controller.stop.set()
            controller.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server = serve_http(controller, stack.host, stack.controller_port)
        controller.state.record(
            "started", pid=os.getpid(), poll_seconds=stack.controller_poll_seconds
        )
        # The MLflow server may still be starting: register from a thread, poll meanwhile.
        threading.Thread(
            target=_register_webhook, args=(settings, controller), name="webhook", daemon=True
        ).start()
        try:
            controller.run()
        finally:
            server.shutdown()
            controller.state.record("stopped", pid=os.getpid())
