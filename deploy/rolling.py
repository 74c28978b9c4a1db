"""The zero-downtime rolling deploy of a registry version onto the running stack.

1. Resolve ``@champion`` (or the version asked for) and import it into the stack's shared model
   store with its fallback snapshot. A failure here (registry or lake unreachable) stops the
   deploy before anything changes.
2. For each replica in turn: start a new program on a fresh port, pinned to the new model; wait
   until it is ready; warm its cache (the most requested tickers, through its admin route);
   point NGINX's upstream at it with a graceful reload (and wait until NGINX's workers run the
   new config); let the old program's requests drain; stop it.
3. Remove the old versions' answers from Redis (through a new replica's admin route).

When a new replica fails to start, it is removed; replicas already moved are moved back to the
version they served, so the stack ends on one version. NGINX's JSON access log tells how many
requests were served during the deploy and how many failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.layout import Slot
from deploy.preflight import PreparedModel, StackError, port_owner, prepare_model, require_champion
from deploy.stack import Stack

WARM_ROUTE = "/v1/admin/cache/warm"  # bentos.service, whose module BentoML imports at will
INVALIDATE_ROUTE = "/v1/admin/cache/invalidate"


@dataclass(frozen=True)
class ReplicaRollout:
    """How one replica was replaced, in seconds per step."""

    replica: str
    old_program: str
    new_program: str
    start_seconds: float  # from program start to /readyz
    warm_seconds: float
    warmed: int
    switch_seconds: float  # NGINX reload until its workers use the new upstream
    drain_seconds: float  # drain wait + the old program's stop


@dataclass
class DeployReport:
    """What a rolling deploy did; ``requests``/``errors`` come from NGINX's access log."""

    new_version: str
    old_versions: list[str]
    replicas: list[ReplicaRollout] = field(default_factory=list)
    removed: int = 0
    seconds: float = 0.0
    requests: int = 0
    errors: int = 0  # answers with status >= 500 during the deploy
    statuses: dict[str, int] = field(default_factory=dict)
    window: tuple[float, float] = (0.0, 0.0)  # UNIX times the request counts cover

    @property
    def warmed(self) -> int:
        """Answers warmed over every new replica."""
        return sum(r.warmed for r in self.replicas)

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {
            "new_version": self.new_version,
            "old_versions": self.old_versions,
            "replicas": [vars(r) for r in self.replicas],
            "removed": self.removed,
            "warmed": self.warmed,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "errors": self.errors,
            "statuses": self.statuses,
            "window": list(self.window),
        }


ADMIN_KEY_HINT = (
    "set FINSIMPLES_DEPLOY_API_KEY to an admin key whose hash is in FINSIMPLES_ADMIN_KEY_HASHES "
    "(`finsimples api-key new --admin`)"
)


def _admin_headers(stack: Stack) -> dict[str, str]:
    """The deploy's admin key, when the replicas have keys (the settings check it is one)."""
    key = stack.settings.deploy_api_key
    return {"X-API-Key": key.get_secret_value()} if key else {}


def require_admin_key(stack: Stack) -> None:
    """Refuse to start a deploy whose admin calls would be refused.

    With keys configured, the admin routes take only admin keys; without a deploy key the
    first replica's warm-up would fail after it was started. Without keys, the deploy's calls
    are direct requests on this host, which the replicas accept.

    Raises:
        StackError: keys are on and ``deploy_api_key`` is unset.
    """
    settings = stack.settings
    keys_on = settings.api_key_hashes or settings.admin_key_hashes
    if keys_on and settings.deploy_api_key is None:
        raise StackError(f"the replicas have API keys but the deploy has none: {ADMIN_KEY_HINT}")


def _admin_post(
    stack: Stack, slot: Slot, route: str, body: Mapping[str, object]
) -> dict[str, object]:
    """POST to a replica's admin route directly (not through NGINX)."""
    answer = httpx.post(
        stack.replica_url(slot) + route,
        json=body,
        headers=_admin_headers(stack),
        timeout=stack.settings.stack.admin_timeout_seconds,
    )
    if answer.status_code != 200:
        hint = f" ({ADMIN_KEY_HINT})" if answer.status_code in (401, 403) else ""
        raise StackError(f"{slot.program} {route}: HTTP {answer.status_code}{hint}: {answer.text}")
    return dict(answer.json())


def _fresh_port(stack: Stack, slots: list[Slot]) -> int:
    used = {slot.port for slot in slots}
    for port in stack.settings.stack.replica_ports:
        if port not in used and port_owner(port) is None:
            return port
    ports = stack.settings.stack.replica_ports
    raise StackError(f"no free replica port in {ports.start}-{ports.stop - 1}")


class RollingDeploy:
    """One rolling deploy on a running stack.

    Args:
        stack: The running stack.
        workdir: The programs' working directory.
        progress: Called with one line per step (the CLI prints them).
    """

    def __init__(
        self, stack: Stack, workdir: Path, progress: Callable[[str], None] = lambda _line: None
    ) -> None:
        self.stack = stack
        self.workdir = workdir
        self.progress = progress
        self.slots: list[Slot] = []
        self.generation = 0

    def _apply(self, slots: list[Slot]) -> None:
        self.stack.supervisor.apply_config(self.stack.programs(slots, self.workdir))

    def _switch(self, slots: list[Slot]) -> float:
        started = time.monotonic()
        self.generation += 1
        self.stack.reload_nginx(slots, self.generation)
        self.stack.write_prometheus_targets(slots)
        self.stack.layout.write_slots(slots)
        return time.monotonic() - started

    def replace(self, index: int, model: PreparedModel) -> ReplicaRollout:
        """Replace the replica of slot ``index`` by one serving ``model``.

        Raises:
            StackError: the new replica did not start, warm or get NGINX's traffic; it was
                removed again and the old one still serves.
        """
        old = self.slots[index]
        port = _fresh_port(self.stack, self.slots)
        new = Slot(old.name, f"{old.name}-p{port}", port, model.tag, model.version)
        started = time.monotonic()
        self._apply([*self.slots, new])
        try:
            self.stack.wait_ready([new])
            ready = time.monotonic()
            warmed = int(str(_admin_post(self.stack, new, WARM_ROUTE, {}).get("warmed", 0)))
        except StackError:
            self._apply(self.slots)  # the new program goes; the old one never stopped
            raise
        warm = time.monotonic() - ready
        self.slots[index] = new
        try:
            switch = self._switch(self.slots)
        except StackError:  # NGINX refused or did not load the config: back to the old replica
            self.slots[index] = old
            self._switch(self.slots)
            self._apply(self.slots)
            raise
        drain_started = time.monotonic()
        time.sleep(self.stack.settings.stack.drain_seconds)
        self._apply(self.slots)  # stops the old program (SIGTERM: BentoML finishes requests)
        return ReplicaRollout(
            old.name,
            old.program,
            new.program,
            round(ready - started, 3),
            round(warm, 3),
            warmed,
            round(switch, 3),
            round(time.monotonic() - drain_started, 3),
        )

    def run(self, version: str | None = None) -> DeployReport:
        """Deploy ``version`` (default: ``@champion``) to every replica, one at a time.

        Raises:
            StackError: the model could not be imported (nothing changed), or a replica could
                not be replaced (the stack is back on the versions it served).
        """
        with deploy_lock(self.stack.layout.deploy_lock):
            return self._run(version)

    def _run(self, version: str | None) -> DeployReport:
        stack = self.stack
        started = time.monotonic()
        self.slots = stack.layout.read_slots()
        generation = stack.nginx_generation()
        if generation is None:
            raise StackError("NGINX does not answer on its status port: is the stack whole?")
        self.generation = generation
        require_admin_key(stack)
        target = require_champion(stack.settings, version)
        self.progress(f"importing model version {target} into the stack's model store")
        model = prepare_model(stack.settings, stack.layout, target)
        before = list(self.slots)
        report = DeployReport(model.version, sorted({s.model_version for s in before}))
        log_start, window_start = _size(stack.layout.access_log), time.time()
        for index, slot in enumerate(before):
            self.progress(f"{slot.name}: starting v{model.version} beside {slot.program}")
            try:
                rollout = self.replace(index, model)
            except StackError as exc:
                self._restore(before, index)
                raise StackError(
                    f"{slot.name}: {exc}\nthe deploy was undone: every replica serves what it "
                    "served before"
                ) from exc
            report.replicas.append(rollout)
            self.progress(
                f"{slot.name}: {rollout.new_program} ready in {rollout.start_seconds:.1f} s, "
                f"{rollout.warmed} answers warmed, switched, {rollout.old_program} stopped"
            )
        for old_version in report.old_versions:
            if old_version != model.version:
                body = {"model_version": old_version}
                answer = _admin_post(stack, self.slots[0], INVALIDATE_ROUTE, body)
                report.removed += int(str(answer.get("removed", 0)))
        report.seconds = time.monotonic() - started
        count_requests(report, stack.layout.access_log, log_start)
        report.window = (window_start, time.time())
        return report

    def _restore(self, before: list[Slot], failed_index: int) -> None:
        """Put the replicas moved before ``failed_index`` back on their previous model."""
        for index in range(failed_index):
            previous = before[index]
            model = PreparedModel(
                previous.model_tag,
                previous.model_version,
                self.stack.layout.snapshot(previous.model_version),
            )
            self.progress(f"{previous.name}: back to v{previous.model_version}")
            self.replace(index, model)


class DeployInProgressError(StackError):
    """Another process is deploying on this stack right now."""


_held_locks: dict[Path, int] = {}  # deploy locks this process holds, and how many times
_held_guard = threading.Lock()


@contextlib.contextmanager
def deploy_lock(path: Path) -> Iterator[None]:
    """One deploy at a time per stack (an flock, released even when the process dies).

    Reentrant within a process: ``finsimples deploy`` and the deploy controller take it
    before moving ``@champion`` or deciding, and the rolling deploy they then run takes it
    again without waiting for itself.

    Raises:
        DeployInProgressError: another process holds it.
    """
    with _held_guard:
        if _held_locks.get(path):
            _held_locks[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held_locks[path] -= 1
        return
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DeployInProgressError(
                f"another deploy is running on this stack ({path} is locked)"
            ) from exc
        with _held_guard:
            _held_locks[path] = 1
        try:
            yield
        finally:
            with _held_guard:
                _held_locks.pop(path, None)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def count_requests(report: DeployReport, access_log: Path, offset: int) -> None:
    """Count the API requests NGINX logged since ``offset`` into ``report``."""
    if not access_log.exists():
        return
    with access_log.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            status = str(entry.get("status", ""))
            report.requests += 1
            report.statuses[status] = report.statuses.get(status, 0) + 1
            if status.startswith("5"):
                report.errors += 1
