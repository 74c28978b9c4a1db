"""The Kubernetes deploy controller against a fake API server process on 127.0.0.1: what it
reads and patches, how it waits for and undoes rollouts, where it keeps its memory, and the
Lease that lets one controller act at a time (candidates in one process with driven clocks, and
racing processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from deploy import controller_k8s
from deploy.controller import DeployController
from deploy.controller_k8s import (
    ANNOTATION,
    MEMORY_ANNOTATION,
    PACKAGED,
    PREVIOUS_ANNOTATION,
    DeploymentState,
    KubernetesTarget,
    LeadershipLostError,
    RolloutFailedError,
)
from deploy.kube import KubeApi, KubeApiError, LeaseLock
from tests.servers import free_port, server_process, wait_until
from tests.unit.deploy.fake_kube_api import NAMESPACE, TOKEN, new_deployment

FAKE = Path(__file__).with_name("fake_kube_api.py")
NAME = "finsimples-forecast"


@dataclass
class Fake:
    url: str
    token: Path

    def api(self) -> KubeApi:
        return KubeApi(self.url, NAMESPACE, token_file=self.token)

    def log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = httpx.get(f"{self.url}/fake/log").json()
        return entries

    def writes(self) -> list[dict[str, Any]]:
        return [e for e in self.log() if e["method"] != "GET"]

    def bad(self, *versions: str) -> None:
        httpx.post(f"{self.url}/fake/bad", json={"versions": list(versions)})


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    port = free_port()
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    command = [sys.executable, str(FAKE), str(port)]
    with server_process(command, port, tmp_path / "fake.log", timeout=10):
        yield Fake(f"http://127.0.0.1:{port}", token)


@dataclass
class Registry:
    """@champion and the restorations the controller asks for."""

    champion: str | None = "7"
    restored: list[tuple[str, str, str]] = field(default_factory=list)
    verdicts: list[tuple[bool, str]] = field(default_factory=list)
    verified: int = 0

    def restore(self, old: str, new: str, why: str) -> None:
        self.restored.append((old, new, why))
        self.champion = old

    def verify(self) -> tuple[bool, str]:
        self.verified += 1
        return self.verdicts.pop(0) if self.verdicts else (True, "p95 0.2 s")


def target(fake: Fake, registry: Registry, **options: Any) -> KubernetesTarget:
    return KubernetesTarget(
        fake.api(),
        NAME,
        champion=lambda: registry.champion,
        verifier=registry.verify,
        restore_champion=registry.restore,
        poll_seconds=0.0,
        sleep=lambda _: None,
        **options,
    )


def annotations(fake: Fake) -> tuple[str | None, dict[str, str]]:
    deployment = fake.api().get_deployment(NAME)
    template = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return template.get(ANNOTATION), deployment["metadata"].get("annotations") or {}


def test_unpinned_pods_serve_the_packaged_model_and_the_first_deploy_pins_champion(
    fake: Fake, tmp_path: Path
) -> None:
    registry = Registry(champion="7")
    k8s = target(fake, registry)
    seen = k8s.observe()
    assert (seen.champion, list(seen.served)) == ("7", [PACKAGED] * 3)
    state = DeploymentState(tmp_path, fake.api(), NAME)
    loop = DeployController(k8s.observe, k8s.deploy, state, poll_seconds=1.0, verify=True)
    decision = loop.reconcile()
    assert (decision.action, decision.previous) == ("deploy", PACKAGED)
    pinned, notes = annotations(fake)
    assert pinned == "7"
    assert notes[PREVIOUS_ANNOTATION] == PACKAGED
    assert registry.verified == 1
    assert k8s.observe().in_sync
    # The memory lives on the Deployment: a new controller (a new pod) reads it back.
    assert json.loads(notes[MEMORY_ANNOTATION]) == {"last_good": "7", "failed": {}}
    assert DeploymentState(tmp_path / "other", fake.api(), NAME).load().last_good == "7"
    # Patches are merge patches with the service account's token, read from its file.
    patches = [e for e in fake.writes() if e["method"] == "PATCH"]
    assert {e["content_type"] for e in patches} == {"application/merge-patch+json"}
    assert {e["authorization"] for e in fake.log()} == {f"Bearer {TOKEN}"}
    assert loop.reconcile().action == "none"


def test_a_failed_verification_restores_champion_and_rolls_the_pods_back(
    fake: Fake, tmp_path: Path
) -> None:
    registry = Registry(champion="5")
    k8s = target(fake, registry)
    loop = DeployController(
        k8s.observe, k8s.deploy, DeploymentState(tmp_path, fake.api(), NAME), 1.0
    )
    loop.reconcile()  # packaged -> v5, verified
    registry.champion = "6"
    registry.verdicts = [(False, "p95 latency: 4.0 s > 3.0 s")]
    decision = loop.reconcile()
    assert (decision.action, decision.version, decision.previous) == ("deploy", "6", "5")
    assert registry.restored == [("5", "6", "p95 latency: 4.0 s > 3.0 s")]
    assert annotations(fake)[0] == "5"
    assert k8s.observe().in_sync
    assert "6" in loop.memory.failed
    # Held, not retried, once someone promotes it again.
    registry.champion = "6"
    writes = len(fake.writes())
    assert loop.reconcile().action == "hold"
    assert len(fake.writes()) == writes


def test_a_failed_rollout_is_undone_and_raised(fake: Fake) -> None:
    registry = Registry()
    k8s = target(fake, registry)
    k8s.deploy("4", PACKAGED, verify=False)
    fake.bad("9")
    with pytest.raises(RolloutFailedError, match=r"timed out progressing.*back on 4"):
        k8s.deploy("9", "4", verify=False)
    assert annotations(fake)[0] == "4"
    assert list(k8s.observe().served) == ["4"] * 3
    assert registry.verified == 0


def test_a_stuck_rollout_found_after_a_restart_goes_back_to_the_recorded_version(
    fake: Fake,
) -> None:
    k8s = target(fake, Registry(champion="9"))
    k8s.deploy("4", PACKAGED, verify=False)
    fake.bad("9")
    with pytest.raises(RolloutFailedError):  # the controller "dies" here: no undo happened
        k8s.deploy("9", "4", verify=False)
    k8s._patch("9", None)  # as if the undo never ran: v9's rollout stuck, v4 recorded
    k8s.observe()  # the fake's Deployment controller sees the new template
    seen = k8s.observe()
    assert set(seen.served) == {"4", "9"}
    # The new controller's decision names no single previous version; the record does.
    with pytest.raises(RolloutFailedError, match="back on 4"):
        k8s.deploy("9", None, verify=False)
    assert annotations(fake)[0] == "4"


def test_rolling_back_to_the_packaged_model_removes_the_annotation(fake: Fake) -> None:
    registry = Registry(verdicts=[(False, "error rate 5% > 1%")])
    k8s = target(fake, registry)
    result = k8s.deploy("3", PACKAGED, verify=True)
    assert (result.landed, result.verified, result.rolled_back_to) == (False, False, PACKAGED)
    assert annotations(fake)[0] is None
    assert registry.restored == []  # a packaged model has no registry version to go back to
    assert list(k8s.observe().served) == [PACKAGED] * 3


def test_mid_rollout_the_old_pods_count_as_the_previous_version(fake: Fake) -> None:
    deployment = new_deployment()
    deployment["metadata"]["generation"] = 2
    deployment["metadata"]["annotations"] = {PREVIOUS_ANNOTATION: "4"}
    deployment["spec"]["template"]["metadata"]["annotations"] = {ANNOTATION: "5"}
    httpx.post(f"{fake.url}/fake/deployment", json=deployment)
    seen = target(fake, Registry(champion="5")).observe()
    assert sorted(seen.served) == ["4", "4", "4"]  # observed: none updated yet
    seen = target(fake, Registry(champion="5")).observe()
    assert sorted(seen.served) == ["4", "4", "5"]
    assert not seen.in_sync


def test_nothing_moves_when_the_verification_cannot_run_or_the_lease_is_lost(fake: Fake) -> None:
    def unreachable() -> None:
        raise RuntimeError("nothing answers at http://finsimples-forecast")

    with pytest.raises(RuntimeError, match="nothing answers"):
        target(fake, Registry(), precheck=unreachable).deploy("7", PACKAGED, verify=True)
    with pytest.raises(LeadershipLostError, match=ANNOTATION):
        target(fake, Registry(), is_leader=lambda: False).deploy("7", PACKAGED, verify=False)
    assert fake.writes() == []


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_lease_holder_and_takeover_only_after_the_holder_stops_renewing(fake: Fake) -> None:
    a_clock, b_clock = Clock(), Clock()
    a = LeaseLock(fake.api(), "ctl", "pod-a", 15, clock=a_clock)
    b = LeaseLock(fake.api(), "ctl", "pod-b", 15, clock=b_clock)
    assert a.try_acquire()
    assert not b.try_acquire()
    for _ in range(3):  # A renews every 5 s: B never sees the record stand still for 15 s
        a_clock.now += 5
        b_clock.now += 5
        assert a.try_acquire()
        assert not b.try_acquire()
    b_clock.now += 14.9  # A stopped renewing, but not for long enough
    assert not b.try_acquire()
    b_clock.now += 0.2
    assert b.try_acquire()
    assert not a.try_acquire()  # A learns it lost
    lease = fake.api().get_lease("ctl")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "pod-b"
    assert lease["spec"]["leaseTransitions"] == 1
    b.release()  # a clean stop: A need not wait out the duration
    assert a.try_acquire()


def test_racing_processes_get_one_leader(fake: Fake) -> None:
    code = (
        "import sys; from pathlib import Path; from deploy.kube import KubeApi, LeaseLock; "
        f"api = KubeApi('{fake.url}', '{NAMESPACE}', token_file=Path('{fake.token}')); "
        "print(LeaseLock(api, 'race', sys.argv[1], 15).try_acquire())"
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"pod-{n}"], stdout=subprocess.PIPE, text=True
        )
        for n in range(6)
    ]
    results = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    assert sorted(results) == ["False"] * 5 + ["True"]
    lease = fake.api().get_lease("race")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == f"pod-{results.index('True')}"


def test_api_errors_name_the_call_and_a_pod_without_a_service_account_is_named(
    fake: Fake, tmp_path: Path
) -> None:
    with pytest.raises(KubeApiError, match=r"GET .*/deployments/nope: 404"):
        fake.api().get_deployment("nope")
    fake.token.write_text("expired")  # the token is read per request: a rotated one is used
    with pytest.raises(KubeApiError, match="401"):
        fake.api().get_deployment(NAME)
    with pytest.raises(KubeApiError, match=r"KUBERNETES_SERVICE_HOST=None.*token"):
        KubeApi.in_cluster({}, account=tmp_path / "none")
    account = tmp_path / "sa"
    account.mkdir()
    ca = Path(certifi.where()).read_text()  # any valid bundle: the client loads it at once
    for name, text in (("token", "t"), ("ca.crt", ca), ("namespace", "finsimples\n")):
        (account / name).write_text(text)
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    api = KubeApi.in_cluster(environ, account=account)
    assert (str(api.client.base_url), api.namespace) == ("https://[fd00::1]:6443", "finsimples")


RUN = (
    "import os, sys; from pathlib import Path; from deploy.kube import KubeApi; "
    "from deploy.controller_k8s import run_kubernetes_controller; "
    "from finsimples.settings import Settings; "
    "from loadtest.runner import check_reachable, loadtest_verifier; "
    f"api = KubeApi(sys.argv[1], '{NAMESPACE}', token_file=Path(sys.argv[2])); "
    "run_kubernetes_controller(Settings(), os.environ, loadtest_verifier, check_reachable, api=api)"
)


def holder(fake: Fake) -> str | None:
    lease = fake.api().get_lease(controller_k8s.LEASE)
    return None if lease is None else lease["spec"].get("holderIdentity")


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").is_success
    except httpx.HTTPError:
        return False


def start_controller(fake: Fake, tmp_path: Path, pod: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSIMPLES_")}
    env |= {
        "POD_NAME": pod,
        "FINSIMPLES_STATE_DIR": str(tmp_path / pod),  # an empty local registry: no @champion
        "FINSIMPLES_STACK__CONTROLLER_PORT": str(port),
        "FINSIMPLES_STACK__CONTROLLER_POLL_SECONDS": "0.5",
    }
    log = (tmp_path / f"{pod}.log").open("wb")
    command = [sys.executable, "-c", RUN, fake.url, str(fake.token)]
    return subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=tmp_path), port


@pytest.mark.slow
def test_controller_processes_lead_one_at_a_time_and_hand_over_on_sigterm(
    fake: Fake, tmp_path: Path
) -> None:
    a, a_port = start_controller(fake, tmp_path, "pod-a")
    b = None
    try:
        wait_until(lambda: holder(fake) == "pod-a", 60, "pod-a leading")
        wait_until(lambda: answers(a_port), 30, "pod-a's /healthz")
        b, b_port = start_controller(fake, tmp_path, "pod-b")
        wait_until(lambda: answers(b_port), 60, "pod-b's /healthz")
        renewed = fake.api().get_lease(controller_k8s.LEASE)
        time.sleep(2 * controller_k8s.RENEW_SECONDS + 0.5)  # a renews; b stays a follower
        lease = fake.api().get_lease(controller_k8s.LEASE)
        assert renewed is not None
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "pod-a"
        assert lease["spec"]["renewTime"] > renewed["spec"]["renewTime"]
        a.send_signal(signal.SIGTERM)
        assert a.wait(timeout=30) == 0
        # a released the Lease: b takes it at its next try, without waiting out 15 s.
        wait_until(lambda: holder(fake) == "pod-b", 3 * controller_k8s.RENEW_SECONDS, "handover")
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 0
        assert holder(fake) is None
        # With no @champion in the registry, nobody patched the Deployment.
        assert not [e for e in fake.writes() if e["method"] == "PATCH"]
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
