"""The deploy controller: serving follows the registry, level-triggered.

A loop, one per stack (an flock on ``<stack>/controller/controller.lock``), run by supervisord
(``finsimples deploy controller``). Every ``controller_poll_seconds``, or at once when woken by
an MLflow webhook or ``POST /reconcile``, it:

1. observes: ``@champion`` in the registry, and the version each replica serves;
2. decides (``deploy.reconcile.decide``): nothing, deploy, hold or wait;
3. acts: a deploy is the rolling deploy with its ``--verify`` load-test gate and its rollback
   (``flows.deploy_hook``, under the deploy and model locks). A version whose verification
   fails is rolled back there (``@champion`` returns to the version that served) and
   remembered as failed: it is not deployed again while it holds ``@champion``. A deploy that
   fails for another reason (the registry or a replica unreachable; it undoes itself) is
   retried with a growing delay, since its cause may pass.

Every decision that changes something, and every action's result, goes to the log, to
``<stack>/controller/decisions.jsonl`` (``finsimples deploy status`` reads it), and to the
controller's ``/metrics``; deploys also leave their deploy record in the lake.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from deploy.reconcile import Decision, Memory, Observation, decide, remember
from deploy.webhook import ALIAS_EVENT, WebhookRejectedError, verify

log = logging.getLogger("finsimples.controller")

RETRY_CAP_SECONDS = 300.0


class ControllerBusyError(RuntimeError):
    """Another controller holds this stack's lock."""


@dataclass(frozen=True)
class DeployResult:
    """What a deploy attempt ended as.

    Attributes:
        landed: The version serves every replica and stands (verified when asked).
        verified: A load test judged it (None: not run).
        message: One line: the deploy hook's summary, or the error.
        rolled_back_to: The version restored after a failed verification, if any.
    """

    landed: bool
    verified: bool | None
    message: str
    rolled_back_to: str | None = None


Deployer = Callable[[str, str | None, bool], DeployResult]
Observer = Callable[[], Observation]


class ControllerState:
    """The controller's memory and decision record, in ``<stack>/controller/``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.memory_file = folder / "memory.json"
        self.decisions_file = folder / "decisions.jsonl"

    def load(self) -> Memory:
        """The memory a previous run left (empty on a first run)."""
        if not self.memory_file.exists():
            return Memory()
        try:
            raw = json.loads(self.memory_file.read_text())
            return Memory(last_good=raw.get("last_good"), failed=dict(raw.get("failed", {})))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{self.memory_file} is not the controller's memory ({exc}): fix it, or remove "
                "it to forget the held versions"
            ) from exc

    def save(self, memory: Memory) -> None:
        """Keep the memory (atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        staged = self.memory_file.with_suffix(".tmp")
        staged.write_text(json.dumps({"last_good": memory.last_good, "failed": memory.failed}))
        staged.replace(self.memory_file)

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one decision or result to the record; the entry."""
        self.folder.mkdir(parents=True, exist_ok=True)
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        entry = {"at": at, "event": event, **fields}
        with self.decisions_file.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        return entry

    def recent(self, count: int = 20) -> list[dict[str, Any]]:
        """The last ``count`` entries, oldest first."""
        if not self.decisions_file.exists():
            return []
        lines = self.decisions_file.read_text().splitlines()[-count:]
        return [json.loads(line) for line in lines if line.strip()]


class ControllerMetrics:
    """The controller's Prometheus series (its own registry, served on ``/metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.champion = Gauge(
            "finsimples_registry_champion_info",
            "The version behind @champion, as the controller last read it",
            ["model_version"],
            registry=self.registry,
        )
        self.in_sync = Gauge(
            "finsimples_controller_in_sync",
            "1 when every replica serves @champion",
            registry=self.registry,
        )
        self.held = Gauge(
            "finsimples_controller_held",
            "1 while @champion is a version held after a failed verification",
            registry=self.registry,
        )
        self.last_reconcile = Gauge(
            "finsimples_controller_last_reconcile_timestamp_seconds",
            "When the controller last compared the registry with the replicas",
            registry=self.registry,
        )
        self.reconciles = Counter(
            "finsimples_controller_reconciles",
            "Reconcile passes, by what woke them and how they ended",
            ["trigger", "result"],
            registry=self.registry,
        )
        self.deploys = Counter(
            "finsimples_controller_deploys",
            "Deploys the controller ran, by result (landed, rolled_back, failed)",
            ["result"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "finsimples_controller_webhooks",
            "Webhook deliveries, accepted or rejected",
            ["result"],
            registry=self.registry,
        )
        self.deploy_seconds = Gauge(
            "finsimples_controller_last_deploy_seconds",
            "How long the last deploy took, verification included",
            registry=self.registry,
        )

    def observe(self, observation: Observation, decision: Decision) -> None:
        """Set the gauges from one reconcile."""
        self.champion.clear()
        if observation.champion is not None:
            self.champion.labels(model_version=observation.champion).set(1)
        self.in_sync.set(1 if observation.in_sync else 0)
        self.held.set(1 if decision.action == "hold" else 0)
        self.last_reconcile.set(time.time())


class DeployController:
    """The reconcile loop over injected observe and deploy steps.

    Args:
        observe: Reads the registry and the replicas.
        deploy: Runs a deploy: (version, version to roll back to, verify) -> result.
        state: Memory and decision record.
        poll_seconds: The longest time between two reconciles.
        verify: Judge every deploy with the load test (needs one version to roll back to).
        busy: Exceptions of ``deploy`` that mean another process is deploying right now: the
            controller waits for it (no retry delay), then looks again.
        clock: Monotonic seconds (an input, so tests drive the retry delays).

    Attributes:
        webhook_secret: The MLflow webhook's secret (None: no webhook; deliveries refused).
    """

    def __init__(
        self,
        observe: Observer,
        deploy: Deployer,
        state: ControllerState,
        poll_seconds: float,
        verify: bool = True,
        busy: tuple[type[Exception], ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.observe = observe
        self.deploy = deploy
        self.state = state
        self.poll_seconds = poll_seconds
        self.verify = verify
        self.busy = busy
        self.clock = clock
        self.webhook_secret: str | None = None
        self.memory = state.load()
        self.metrics = ControllerMetrics()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self._last_reason: str | None = None
        self._errors = 0  # consecutive failed deploys (a success resets it)
        self._not_before = 0.0  # no deploy attempt before this clock time (backoff)

    def reconcile(self, trigger: str = "poll") -> Decision:
        """One pass: observe, decide, act. Never raises: failures are recorded and retried."""
        try:
            observation = self.observe()
        except Exception as exc:  # registry or stack unreadable: try again next pass
            self.metrics.reconciles.labels(trigger, "observe_failed").inc()
            self._note("observe_failed", None, f"{type(exc).__name__}: {exc}")
            return Decision("wait", None, f"could not observe: {exc}")
        decision = decide(observation, self.memory)
        self.metrics.observe(observation, decision)
        self._note(
            "decision", decision.version, decision.reason, action=decision.action, trigger=trigger
        )
        if decision.action != "deploy":
            self.metrics.reconciles.labels(trigger, decision.action).inc()
            return decision
        if self.clock() < self._not_before:
            self.metrics.reconciles.labels(trigger, "backoff").inc()
            return decision
        self._run(decision, observation)
        self.metrics.reconciles.labels(trigger, "deploy").inc()
        return decision

    def _run(self, decision: Decision, observation: Observation) -> None:
        version = decision.version
        assert version is not None  # noqa: S101 - a deploy decision names its version
        verify = self.verify and decision.previous is not None
        self.state.record(
            "deploying", version=version, previous=decision.previous, verify=verify,
            served=list(observation.served), reason=decision.reason,
        )  # fmt: skip
        log.info("deploying v%s (%s); verify=%s", version, decision.reason, verify)
        started = time.monotonic()
        try:
            result = self.deploy(version, decision.previous, verify)
        except self.busy as exc:  # someone else's deploy: look again once it is done
            log.info("waiting: %s", exc)
            self.state.record("waiting", version=version, reason=str(exc))
            self._last_reason = None
            return
        except Exception as exc:  # undone by the deploy itself; its cause may pass: retry later
            self._errors += 1
            delay = min(self.poll_seconds * 2**self._errors, RETRY_CAP_SECONDS)
            self._not_before = self.clock() + delay
            self.metrics.deploys.labels("failed").inc()
            message = f"{type(exc).__name__}: {exc}".strip()
            log.error("deploy of v%s failed, retrying in %.0f s: %s", version, delay, message)
            self.state.record("failed", version=version, error=message, retry_in_seconds=delay)
            self._last_reason = None
            return
        self._errors, self._not_before = 0, 0.0
        self.metrics.deploy_seconds.set(time.monotonic() - started)
        if result.landed:
            self.memory = remember(self.memory, version, landed=True)
            self.metrics.deploys.labels("landed").inc()
            event = "verified" if result.verified else "deployed"
            log.info("v%s %s: %s", version, event, result.message)
            self.state.record(event, version=version, message=result.message)
        else:
            self.memory = remember(self.memory, version, landed=False, why=result.message)
            self.metrics.deploys.labels("rolled_back").inc()
            log.error("v%s rolled back to v%s: %s", version, result.rolled_back_to, result.message)
            self.state.record(
                "rolled_back", version=version, to=result.rolled_back_to, why=result.message
            )
        self.state.save(self.memory)
        self._last_reason = None

    def _note(self, event: str, version: str | None, reason: str, **fields: Any) -> None:
        """Record a decision when it differs from the last one (no line per quiet poll)."""
        if reason == self._last_reason:
            return
        self._last_reason = reason
        log.info("%s", reason)
        self.state.record(event, version=version, reason=reason, **fields)

    def run(self) -> None:
        """Reconcile until :attr:`stop` is set: every poll, or when :attr:`wake` is set."""
        trigger = "start"
        while not self.stop.is_set():
            self.reconcile(trigger)
            woken = self.wake.wait(self.poll_seconds)
            self.wake.clear()
            trigger = "webhook" if woken else "poll"


@contextlib.contextmanager
def controller_lock(path: Path) -> Iterator[None]:
    """One controller per stack: an flock, released when the process ends however it ends.

    Raises:
        ControllerBusyError: another process holds it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ControllerBusyError(f"another deploy controller holds {path} ({holder})") from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_handler(controller: DeployController) -> type[BaseHTTPRequestHandler]:
    """The controller's HTTP routes: ``/metrics``, ``/healthz``, ``POST /webhook`` (MLflow's,
    signed with the controller's ``webhook_secret``) and ``POST /reconcile`` (a local wake-up,
    e.g. after a flow promoted a version)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

        def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, generate_latest(controller.metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                memory = asdict(controller.memory)
                body = {"memory": memory, "poll_seconds": controller.poll_seconds}
                self._answer(200, json.dumps(body).encode())
            else:
                self._answer(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 16))
            if self.path == "/reconcile":
                controller.wake.set()
                self._answer(202, b'{"woken": true}')
                return
            if self.path != "/webhook":
                self._answer(404, b'{"error": "not found"}')
                return
            secret = controller.webhook_secret
            if secret is None:
                self._answer(404, b'{"error": "no webhook is registered"}')
                return
            try:
                payload = verify(secret, dict(self.headers.items()), body, time.time())
            except WebhookRejectedError as exc:
                controller.metrics.webhooks.labels("rejected").inc()
                log.warning("webhook rejected: %s", exc)
                self._answer(401, json.dumps({"error": str(exc)}).encode())
                return
            controller.metrics.webhooks.labels("accepted").inc()
            event = f"{payload.get('entity')}.{payload.get('action')}"
            log.info("webhook %s: %s", event, payload.get("data"))
            if event == ALIAS_EVENT:
                controller.wake.set()
            self._answer(200, b'{"ok": true}')

    return Handler


def serve_http(controller: DeployController, host: str, port: int) -> ThreadingHTTPServer:
    """Start the controller's HTTP server in a daemon thread; the server (``shutdown()`` ends
    it)."""
    server = ThreadingHTTPServer((host, port), make_handler(controller))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="controller-http", daemon=True).start()
    return server
