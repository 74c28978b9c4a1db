"""The deploy controller in Kubernetes: the API Deployment's pods follow ``@champion``.

The served version is a pod-template annotation, ``finsimples.io/model-version``, on the
``finsimples-forecast`` Deployment. Each pod's ``model-fetch`` init container imports that
registry version into the pod's BentoML model store (``python -m bentos.model_fetch``, reading
the annotation through the downward API), and the API serves it instead of the model packaged in
the image; without the annotation the packaged model serves, as before. So a deploy is one
PATCH of the annotation: Kubernetes rolls the pods (``maxSurge: 1, maxUnavailable: 0``), the
HPA keeps owning the replica count and the PodDisruptionBudget keeps owning evictions.

The same :class:`deploy.controller.DeployController` loop runs here as in the stack, with:

- **observe**: ``@champion`` from the registry; the annotation and the rollout's status;
- **deploy**: patch the annotation, wait for the rollout (kubectl's ``rollout status`` rules,
  failing on ``ProgressDeadlineExceeded``), then the load test's ``ci`` profile against the
  API's Service; a rollout that fails is undone and the deploy raised (retried with backoff),
  a verification that fails moves ``@champion`` back and undoes the rollout;
- **memory**: held versions in an annotation of the Deployment (it survives the pod);
- **one controller at a time**: the Lease ``finsimples-deploy-controller``
  (:class:`deploy.kube.LeaseLock`), renewed in the background; a controller that cannot renew
  it stops acting and exits, and its pod restarts as a follower.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from deploy.controller import ControllerState, DeployController, DeployResult, serve_http
from deploy.kube import KubeApi, KubeApiError, LeaseKeeper, LeaseLock, Rollout, rollout_of
from deploy.reconcile import Memory, Observation
from finsimples.settings import Settings

log = logging.getLogger("finsimples.controller")

# The objects of deploy/k8s/base this controller acts on (tests/integration/deploy/test_k8s.py
# checks the manifests against these names), and client-go's leader-election timings.
DEPLOYMENT = "finsimples-forecast"
SERVICE_URL = "http://finsimples-forecast"  # the API's ClusterIP Service, port 80
CONTROLLER_SERVICE = "finsimples-deploy-controller"  # its own Service, for MLflow's webhook
LEASE = "finsimples-deploy-controller"
LEASE_SECONDS = 15  # client-go's defaults: 15 s lease, renewed every 2 s, given up after 10 s
RENEW_SECONDS = 2.0
RENEW_DEADLINE_SECONDS = 10.0
ROLLOUT_TIMEOUT_SECONDS = 900.0  # past the Deployment's progressDeadlineSeconds (300 s)
BIND_HOST = "0.0.0.0"  # noqa: S104 - the pod's own network namespace; the Service selects it

ANNOTATION = "finsimples.io/model-version"
PREVIOUS_ANNOTATION = "finsimples.io/previous-model-version"
MEMORY_ANNOTATION = "finsimples.io/controller-memory"
PACKAGED = "packaged"  # no annotation: the pods serve the model packaged in the bento image
ROLLING = "rolling"  # a pod of an unknown earlier template, while a rollout replaces it


class RolloutFailedError(RuntimeError):
    """The Deployment did not roll out (its pods did not become available in time)."""


class LeadershipLostError(RuntimeError):
    """This controller no longer holds the Lease: it must not write."""


def pinned(deployment: Mapping[str, Any]) -> str:
    """The version the pod template names (``packaged`` without the annotation)."""
    template = deployment["spec"]["template"].get("metadata", {})
    return str((template.get("annotations") or {}).get(ANNOTATION) or PACKAGED)


class DeploymentState(ControllerState):
    """The controller's memory in an annotation of the Deployment (a pod's disk is gone with
    the pod); its decision record stays a file in the pod, and goes to the log too."""

    def __init__(self, folder: Path, api: KubeApi, deployment: str) -> None:
        super().__init__(folder)
        self.api, self.deployment = api, deployment

    def load(self) -> Memory:
        """The memory the last controller left on the Deployment (empty at first)."""
        meta = self.api.get_deployment(self.deployment)["metadata"]
        raw = (meta.get("annotations") or {}).get(MEMORY_ANNOTATION)
        if not raw:
            return Memory()
        try:
            data = json.loads(raw)
            return Memory(last_good=data.get("last_good"), failed=dict(data.get("failed", {})))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"annotation {MEMORY_ANNOTATION} of deployment/{self.deployment} is not the "
                f"controller's memory ({exc}): fix or remove it to forget the held versions"
            ) from exc

    def save(self, memory: Memory) -> None:
        """Write the memory to the Deployment (a metadata patch: it rolls no pod)."""
        value = json.dumps({"last_good": memory.last_good, "failed": dict(memory.failed)})
        self.api.patch_deployment(
            self.deployment, {"metadata": {"annotations": {MEMORY_ANNOTATION: value}}}
        )


@dataclass
class KubernetesTarget:
    """Observe and deploy steps over the API Deployment, for :class:`DeployController`.

    Args:
        api: The API server.
        deployment: The API Deployment's name.
        champion: Reads ``@champion``'s version from the registry (None: none yet).
        verifier: Judges the rolled-out version: (passed, why).
        restore_champion: Moves ``@champion`` from the failed version back: (old, new, why).
        is_leader: Whether this controller still holds the Lease (checked before each write).
        precheck: Before anything moves in a verified deploy: raises when the verification
            could not run (the API unreachable, no API key), so nothing is rolled for nothing.
        rollout_timeout: The longest wait for one rollout.
        poll_seconds: Between two reads of the rollout.
        sleep: Waits (an input: tests pass a fast one).
        clock: Monotonic seconds.
    """

    api: KubeApi
    deployment: str
    champion: Callable[[], str | None]
    verifier: Callable[[], tuple[bool, str]]
    restore_champion: Callable[[str, str, str], None]
    is_leader: Callable[[], bool] = lambda: True
    precheck: Callable[[], None] = lambda: None
    rollout_timeout: float = ROLLOUT_TIMEOUT_SECONDS
    poll_seconds: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def observe(self) -> Observation:
        """``@champion``, and one entry per desired pod: the template's version for pods of
        the current template, the previous version for those a rollout has not replaced yet."""
        champion = self.champion()
        deployment = self.api.get_deployment(self.deployment)
        rollout = rollout_of(deployment)
        version = pinned(deployment)
        if rollout.done:
            return Observation(champion, [version] * rollout.replicas)
        notes = deployment["metadata"].get("annotations") or {}
        before = notes.get(PREVIOUS_ANNOTATION) or ROLLING
        old = max(rollout.replicas - rollout.updated, 1)
        return Observation(champion, [version] * rollout.updated + [before] * old)

    def _patch(self, version: str, previous: str | None) -> None:
        if not self.is_leader():
            raise LeadershipLostError(f"lost the Lease before setting {ANNOTATION}={version}")
        # merge-patch null removes the annotation: back to the packaged model.
        value = None if version == PACKAGED else version
        patch: dict[str, Any] = {"spec": {"template": {"metadata": {"annotations": {}}}}}
        patch["spec"]["template"]["metadata"]["annotations"][ANNOTATION] = value
        if previous is not None:
            patch["metadata"] = {"annotations": {PREVIOUS_ANNOTATION: previous}}
        self.api.patch_deployment(self.deployment, patch)

    def wait_rollout(self) -> Rollout:
        """Wait until the rollout is done.

        Raises:
            RolloutFailedError: it failed (progress deadline) or outlasted ``rollout_timeout``.
        """
        deadline = self.clock() + self.rollout_timeout
        while True:
            rollout = rollout_of(self.api.get_deployment(self.deployment))
            if rollout.done:
                return rollout
            if rollout.failed:
                raise RolloutFailedError(f"deployment/{self.deployment}: {rollout.detail}")
            if self.clock() >= deadline:
                raise RolloutFailedError(
                    f"deployment/{self.deployment} not rolled out after "
                    f"{self.rollout_timeout:.0f} s: {rollout.detail}"
                )
            self.sleep(self.poll_seconds)

    def _recorded_previous(self, version: str) -> str | None:
        """The version the Deployment records as replaced (None: none, or ``version`` itself)."""
        notes = self.api.get_deployment(self.deployment)["metadata"].get("annotations") or {}
        recorded = notes.get(PREVIOUS_ANNOTATION)
        return str(recorded) if recorded and recorded != version else None

    def _roll_back(self, previous: str, failed: str) -> str | None:
        """Set the annotation back and wait; what failed (None: the rollback landed)."""
        try:
            self._patch(previous, None)
            self.wait_rollout()
        except Exception as exc:  # reported with the deploy's own failure
            log.error("rollback of deployment/%s to v%s failed: %s", self.deployment, previous, exc)
            return f"rollback to {previous} failed: {exc}"
        log.info("deployment/%s rolled back from v%s to v%s", self.deployment, failed, previous)
        return None

    def deploy(self, version: str, previous: str | None, verify: bool) -> DeployResult:
        """Roll ``version`` onto the Deployment's pods; with ``verify``, judge it and undo it
        when it fails.

        Raises:
            RolloutFailedError: the pods did not roll out (undone when ``previous`` is known).
            LeadershipLostError: another controller took the Lease.
        """
        if previous == ROLLING:
            previous = None  # an interrupted rollout: nothing known to roll back to
        if verify:
            self.precheck()
        self._patch(version, previous)
        try:
            rollout = self.wait_rollout()
        except RolloutFailedError as exc:
            # Pods of several versions (e.g. a rollout a restarted controller found stuck):
            # back to the version the last rollout replaced, as recorded on the Deployment.
            back = previous or self._recorded_previous(version)
            undone = self._roll_back(back, version) if back else "nothing to roll back to"
            raise RolloutFailedError(f"{exc}; {undone or f'back on {back}'}") from exc
        landed = f"v{version} on {rollout.updated} pods of deployment/{self.deployment}"
        if not verify:
            return DeployResult(True, None, landed)
        passed, why = self.verifier()
        if passed:
            return DeployResult(True, True, f"{landed}, verified: {why}")
        assert previous is not None  # noqa: S101 - the controller verifies only with one
        errors = []
        if previous != PACKAGED:  # a packaged model has no registry version to give it back to
            try:
                self.restore_champion(previous, version, why)
            except Exception as exc:  # the rollback of the pods goes ahead regardless
                errors.append(f"@champion not restored: {exc}")
        undone = self._roll_back(previous, version)
        message = "; ".join([f"verification of v{version} failed: {why}", *errors])
        return DeployResult(False, False, message + (f"; {undone}" if undone else ""), previous)


def champion_reader(settings: Settings) -> Callable[[], str | None]:
    """Reads ``@champion``'s version from the registry."""

    def champion() -> str | None:
        from jobs.common import open_registry

        found = open_registry(settings).champion()
        return str(found.version) if found is not None else None

    return champion


def champion_restorer(settings: Settings) -> Callable[[str, str, str], None]:
    """Gives ``@champion`` back to ``old`` when the failed ``new`` still holds it (audited)."""

    def restore(old: str, new: str, why: str) -> None:
        from jobs.common import open_registry

        registry = open_registry(settings)
        found = registry.champion()
        if found is not None and str(found.version) == new:
            registry.promote(old, reason=f"deploy verification of v{new} failed: {why}")

    return restore


def _webhook_secret(settings: Settings, namespace: str) -> str | None:
    """Register the controller's MLflow webhook (its Service's URL); its secret, or None when
    the registry is not an MLflow server or refused (the poll keeps serving in line)."""
    uri = settings.mlflow_tracking_uri or ""
    if not uri.startswith(("http://", "https://")):
        return None
    from mlflow import MlflowClient

    from deploy.webhook import new_secret, register

    port = settings.stack.controller_port
    url = f"http://{CONTROLLER_SERVICE}.{namespace}.svc:{port}/webhook"
    secret = new_secret()
    try:
        register(MlflowClient(tracking_uri=uri, registry_uri=uri), url, secret)
    except Exception as exc:  # webhooks off or unsupported on that server: poll only
        log.warning(
            "no MLflow webhook (polling every %s s): %s",
            settings.stack.controller_poll_seconds,
            exc,
        )
        return None
    log.info("MLflow webhook registered -> %s", url)
    return secret


def run_kubernetes_controller(
    settings: Settings,
    environ: Mapping[str, str],
    verifier: Callable[[Settings, str], Callable[[], tuple[bool, str]]],
    precheck: Callable[[Settings, str], None],
    api: KubeApi | None = None,
) -> None:
    """Reconcile the API Deployment with ``@champion`` while holding the Lease; until SIGTERM.

    Args:
        settings: The registry, the load test and the controller's numbers.
        environ: The pod's environment (the API server's address; ``POD_NAME``, the Lease
            identity, from the downward API).
        verifier: Builds the verification of a rollout against the API's URL: (passed, why).
            The CLI passes the load test's (``loadtest.runner.loadtest_verifier``), a layer
            above this package.
        precheck: Raises, before anything moves in a verified deploy, when the verification
            cannot reach the API's URL (``loadtest.runner.check_reachable``).
        api: The API client (default: the pod's, :meth:`KubeApi.in_cluster`).

    Raises:
        KubeApiError: not in a pod, or the API server refused the first reads.
        LeadershipLostError: the Lease was lost while leading (the pod restarts as a follower).
    """
    import socket

    api = api or KubeApi.in_cluster(environ)
    identity = environ.get("POD_NAME") or socket.gethostname()
    lock = LeaseLock(api, LEASE, identity, LEASE_SECONDS)
    lost: list[str] = []
    host = environ.get("FINSIMPLES_CONTROLLER_API_URL", SERVICE_URL)
    target = KubernetesTarget(
        api,
        DEPLOYMENT,
        champion=champion_reader(settings),
        verifier=verifier(settings, host),
        restore_champion=champion_restorer(settings),
        is_leader=lambda: lock.held and not lost,
        precheck=lambda: precheck(settings, host),
    )
    stack = settings.stack
    controller = DeployController(
        observe=target.observe,
        deploy=target.deploy,
        state=DeploymentState(settings.state_dir / "controller", api, DEPLOYMENT),
        poll_seconds=stack.controller_poll_seconds,
        verify=stack.controller_verify,
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current pass", signum)
        controller.stop.set()
        controller.wake.set()

    def on_lost(why: str) -> None:
        log.error("leadership lost: %s; stopping", why)
        lost.append(why)
        stop(0, None)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = serve_http(controller, BIND_HOST, stack.controller_port)
    keeper = LeaseKeeper(lock, on_lost, RENEW_SECONDS, RENEW_DEADLINE_SECONDS)
    try:
        log.info("%s waiting for lease/%s in %s", identity, LEASE, api.namespace)
        while not controller.stop.is_set():
            try:
                if lock.try_acquire():
                    break
            except KubeApiError as exc:
                log.warning("lease/%s: %s", LEASE, exc)
            controller.stop.wait(RENEW_SECONDS)
        if controller.stop.is_set():
            return
        log.info("%s leads (lease/%s)", identity, LEASE)
        controller.state.record("started", identity=identity, lease=LEASE)
        keeper.start()
        controller.webhook_secret = _webhook_secret(settings, api.namespace)
        controller.run()
    finally:
        keeper.stopped.set()
        server.shutdown()
        if lock.held and not lost:
            try:
                lock.release()  # the next controller need not wait out the lease
            except KubeApiError as exc:
                log.warning("lease/%s not released: %s", LEASE, exc)
        api.close()
    if lost:
        raise LeadershipLostError(lost[0])
