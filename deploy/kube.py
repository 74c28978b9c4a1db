"""The few Kubernetes API calls the deploy controller makes, over plain HTTPS, and its Lease.

No Kubernetes client library: the controller reads and patches one Deployment and keeps one
``coordination.k8s.io/v1`` Lease, five endpoints in all, so ``httpx`` (already a dependency)
against the in-cluster API server is enough. In a pod the API server's address comes from
``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``, the bearer token and the CA from the
service account's projected volume. The token file is read again for every request: the kubelet
rotates bound service-account tokens (about hourly), so a token read once would expire.

The Lease follows client-go's leader election: a candidate takes the Lease when nobody holds it,
or when the holder's record has not changed for ``leaseDurationSeconds`` *as measured by the
candidate's own monotonic clock* (never by comparing its wall clock with the holder's
``renewTime``, so clock skew between nodes cannot hand the Lease to two pods). Every write is a
PUT carrying the ``resourceVersion`` that was read: two candidates racing for it get one 200 and
one 409, and the loser stays a follower.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
Object = dict[str, Any]


class KubeApiError(RuntimeError):
    """The API server refused or failed a request; the message names the call and its answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConflictError(KubeApiError):
    """409: the object changed since it was read (or already exists): someone else wrote first."""


class KubeApi:
    """A namespaced client for Deployments and Leases.

    Args:
        base_url: The API server, e.g. ``https://10.96.0.1:443``.
        namespace: Where the Deployment and the Lease live.
        token_file: The bearer token's file, read per request (None: no token, for tests).
        ca_file: The CA bundle checking the server's certificate (None: the system's).
        timeout: Seconds per request.
    """

    def __init__(
        self,
        base_url: str,
        namespace: str,
        token_file: Path | None = None,
        ca_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.namespace = namespace
        self.token_file = token_file
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self.client = httpx.Client(base_url=base_url, verify=verify, timeout=timeout)

    @classmethod
    def in_cluster(cls, environ: Mapping[str, str], account: Path = SERVICE_ACCOUNT) -> KubeApi:
        """The client of a pod: the API server from its environment, its service account's
        token, CA and namespace.

        Raises:
            KubeApiError: not in a pod (the variables or the service account files are missing).
        """
        host = environ.get("KUBERNETES_SERVICE_HOST")
        port = environ.get("KUBERNETES_SERVICE_PORT", "443")
        token, ca, namespace = (account / n for n in ("token", "ca.crt", "namespace"))
        missing = [str(p) for p in (token, ca, namespace) if not p.is_file()]
        if not host or missing:
            raise KubeApiError(
                f"not in a Kubernetes pod: KUBERNETES_SERVICE_HOST={host!r}, missing "
                f"{missing or 'nothing'} (expected a service account mounted at {account})"
            )
        server = f"[{host}]" if ":" in host else host  # an IPv6 service address
        return cls(f"https://{server}:{port}", namespace.read_text().strip(), token, ca)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def _call(self, method: str, path: str, body: Object | None = None, kind: str = "") -> Object:
        headers = {"Accept": "application/json"}
        if self.token_file is not None:
            headers["Authorization"] = f"Bearer {self.token_file.read_text().strip()}"
        if body is not None:
            headers["Content-Type"] = kind or "application/json"
        try:
            reply = self.client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise KubeApiError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if reply.status_code < 300:
            result: Object = reply.json()
            return result
        try:
            message = reply.json().get("message", reply.text)
        except ValueError:
            message = reply.text
        error = ConflictError if reply.status_code == 409 else KubeApiError
        raise error(f"{method} {path}: {reply.status_code} {message}", reply.status_code)

    def _deployment(self, name: str) -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}"

    def _leases(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    def get_deployment(self, name: str) -> Object:
        """The Deployment ``name`` (spec and status)."""
        return self._call("GET", self._deployment(name))

    def patch_deployment(self, name: str, patch: Object) -> Object:
        """Apply a JSON merge patch (RFC 7386: ``None`` removes a key) to the Deployment."""
        return self._call("PATCH", self._deployment(name), patch, "application/merge-patch+json")

    def get_lease(self, name: str) -> Object | None:
        """The Lease ``name``, or None when it does not exist yet."""
        try:
            return self._call("GET", f"{self._leases()}/{name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_lease(self, lease: Object) -> Object:
        """Create a Lease. Raises ConflictError when another candidate created it first."""
        return self._call("POST", self._leases(), lease)

    def replace_lease(self, lease: Object) -> Object:
        """Replace a Lease; its ``metadata.resourceVersion`` must be the stored one (else 409)."""
        return self._call("PUT", f"{self._leases()}/{lease['metadata']['name']}", lease)


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaseLock:
    """Leader election on one Lease: at most one holder at a time, taken over only after the
    holder has stopped renewing for its lease duration.

    Args:
        api: The API client.
        name: The Lease's name.
        identity: This candidate (the pod's name: unique, and readable in ``kubectl get lease``).
        duration_seconds: How long a holder that stopped renewing keeps the Lease.
        clock: Monotonic seconds (an input: tests drive the expiry).
        now: Wall-clock time, only written into the Lease for people to read.
    """

    api: KubeApi
    name: str
    identity: str
    duration_seconds: int
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self.held = False

    def _note(self, lease: Object) -> None:
        """Remember when the Lease's record last changed, by this candidate's clock."""
        spec = lease.get("spec", {})
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, self.clock()

    def _spec(self, previous: Object, holder: str | None) -> Object:
        stamp = micro_time(self.now())
        ours = previous.get("holderIdentity") == self.identity and holder == self.identity
        transitions = int(previous.get("leaseTransitions") or 0)
        return {
            "holderIdentity": holder,
            "leaseDurationSeconds": self.duration_seconds,
            "acquireTime": previous.get("acquireTime") if ours else stamp,
            "renewTime": stamp,
            "leaseTransitions": transitions if ours or holder is None else transitions + 1,
        }

    def try_acquire(self) -> bool:
        """Take or renew the Lease; whether this candidate holds it now.

        Raises:
            KubeApiError: the API server is unreachable or refused (not a lost race).
        """
        lease = self.api.get_lease(self.name)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.api.namespace},
                "spec": {**self._spec({}, self.identity), "leaseTransitions": 0},
            }
            try:
                created = self.api.create_lease(body)
            except ConflictError:
                self.held = False
                return False
            self._note(created)
            self.held = True
            return True
        self._note(lease)
        spec = lease.get("spec", {})
        holder = spec.get("holderIdentity")
        duration = float(spec.get("leaseDurationSeconds") or self.duration_seconds)
        if holder and holder != self.identity and self.clock() < self._observed_at + duration:
            self.held = False
            return False  # another pod holds it and renewed it within its duration
        return self._write(lease, self.identity)

    def _write(self, lease: Object, holder: str | None) -> bool:
        body = {**lease, "spec": self._spec(lease.get("spec", {}), holder)}
        try:
            written = self.api.replace_lease(body)
        except ConflictError:  # another candidate wrote between our read and our write
            self.held = False
            return False
        self._note(written)
        self.held = holder == self.identity
        return self.held

    def release(self) -> None:
        """Give the Lease up at once (a clean stop), so the next candidate need not wait out
        the duration. A no-op when another candidate holds it."""
        lease = self.api.get_lease(self.name)
        if lease is not None and lease.get("spec", {}).get("holderIdentity") == self.identity:
            self._write(lease, None)
        self.held = False


@dataclass(frozen=True)
class Rollout:
    """A Deployment's rollout, read as ``kubectl rollout status`` reads it.

    Attributes:
        done: The pods of the current template are all available, and no older pod is left.
        failed: The Deployment gave up (``ProgressDeadlineExceeded``).
        replicas: The desired count (the HPA's, in production).
        updated: Pods of the current template.
        detail: One line for the logs.
    """

    done: bool
    failed: bool
    replicas: int
    updated: int
    detail: str


def rollout_of(deployment: Mapping[str, Any]) -> Rollout:
    """The rollout state of a Deployment object (kubectl's ``rollout status`` logic)."""
    meta, spec, status = deployment["metadata"], deployment["spec"], deployment.get("status", {})
    wanted = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    total, available = int(status.get("replicas", 0)), int(status.get("availableReplicas", 0))
    for condition in status.get("conditions", []):
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return Rollout(False, True, wanted, updated, condition.get("message", "no progress"))
    if int(meta.get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return Rollout(False, False, wanted, updated, "waiting for the controller to see it")
    if updated < wanted:
        return Rollout(False, False, wanted, updated, f"{updated} of {wanted} pods updated")
    if total > updated:
        return Rollout(False, False, wanted, updated, f"{total - updated} old pods terminating")
    if available < updated:
        return Rollout(False, False, wanted, updated, f"{available} of {updated} available")
    return Rollout(True, False, wanted, updated, f"{updated} pods available")


class LeaseKeeper(threading.Thread):
    """Renews the Lease every ``renew_seconds``; calls ``on_lost`` once it is gone: another pod
    holds it, or no renewal went through for ``deadline_seconds`` (shorter than the lease, so
    this controller stops acting before anyone may take over)."""

    def __init__(
        self,
        lock: LeaseLock,
        on_lost: Callable[[str], None],
        renew_seconds: float,
        deadline_seconds: float,
    ) -> None:
        super().__init__(name="lease-keeper", daemon=True)
        self.lock, self.on_lost = lock, on_lost
        self.renew_seconds, self.deadline_seconds = renew_seconds, deadline_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        """Renew until stopped or lost."""
        renewed = time.monotonic()
        while not self.stopped.wait(self.renew_seconds):
            try:
                if not self.lock.try_acquire():
                    self.on_lost(f"lease/{self.lock.name} is held by another controller")
                    return
                renewed = time.monotonic()
            except KubeApiError as exc:
                if time.monotonic() - renewed > self.deadline_seconds:
                    self.on_lost(
                        f"lease/{self.lock.name} not renewed for {self.deadline_seconds} s: {exc}"
                    )
                    return
