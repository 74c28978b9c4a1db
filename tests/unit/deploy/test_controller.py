"""The deploy controller's loop with injected observe and deploy steps: what it runs, records,
holds, retries and exposes; its HTTP routes with MLflow's signed webhook."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from deploy.controller import ControllerState, DeployController, DeployResult, serve_http
from deploy.reconcile import Observation
from deploy.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.servers import free_port


class BusyError(Exception):
    """Stands for ``DeployInProgressError``."""


@dataclass
class World:
    """A registry and replicas the fake deploy moves, with a clock the test drives."""

    champion: str | None = "2"
    served: list[str] = field(default_factory=lambda: ["2", "2", "2"])
    now: float = 0.0
    calls: list[tuple[str, str | None, bool]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # "ok", "fail_verify", "error", "busy"

    def observe(self) -> Observation:
        return Observation(self.champion, list(self.served))

    def deploy(self, version: str, previous: str | None, verify: bool) -> DeployResult:
        self.calls.append((version, previous, verify))
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if outcome == "busy":
            raise BusyError("another deploy is running on this stack")
        if outcome == "error":
            raise RuntimeError("the MLflow model registry: Connection refused")
        if outcome == "fail_verify":  # the deploy hook rolls replicas and @champion back
            assert previous is not None
            self.champion = previous
            return DeployResult(False, False, "p95 latency: 4.0 s > 3.0 s", previous)
        self.served = [version] * len(self.served)
        return DeployResult(True, verify, f"v{previous} -> v{version}")


def controller(world: World, folder: Path, **options: object) -> DeployController:
    return DeployController(
        observe=world.observe,
        deploy=world.deploy,
        state=ControllerState(folder),
        poll_seconds=10.0,
        busy=(BusyError,),
        clock=lambda: world.now,
        **options,  # type: ignore[arg-type]
    )


def events(folder: Path) -> list[str]:
    return [entry["event"] for entry in ControllerState(folder).recent(100)]


def test_a_promotion_is_deployed_with_verification_then_left_alone(tmp_path: Path) -> None:
    world = World()
    loop = controller(world, tmp_path)
    assert loop.reconcile().action == "none"
    world.champion = "3"  # moved in MLflow's UI

    assert loop.reconcile("webhook").action == "deploy"
    assert world.calls == [("3", "2", True)]
    assert world.served == ["3", "3", "3"]
    assert loop.reconcile().action == "none"
    assert len(world.calls) == 1  # level-triggered: in sync, nothing more to do
    assert events(tmp_path) == ["decision", "decision", "deploying", "verified", "decision"]
    assert ControllerState(tmp_path).load().last_good == "3"


def test_without_verify_setting_or_a_single_previous_version_the_deploy_is_not_verified(
    tmp_path: Path,
) -> None:
    world = World(champion="3")
    controller(world, tmp_path, verify=False).reconcile()
    world.champion, world.served = "4", ["3", "4", "3"]  # a deploy cut short, then a new one
    controller(world, tmp_path / "b").reconcile()
    assert world.calls == [("3", "2", False), ("4", None, False)]
    assert events(tmp_path)[-1] == "deployed"


def test_a_version_that_fails_its_verification_is_rolled_back_and_held(tmp_path: Path) -> None:
    world = World(champion="3", outcomes=["fail_verify"])
    loop = controller(world, tmp_path)

    loop.reconcile()
    assert world.champion == "2"  # the deploy hook gave @champion back
    assert loop.memory.failed == {"3": "p95 latency: 4.0 s > 3.0 s"}
    assert events(tmp_path)[-1] == "rolled_back"

    world.champion = "3"  # someone promotes it again
    for _ in range(3):
        assert loop.reconcile().action == "hold"
    assert world.calls == [("3", "2", True)]  # never retried: no flapping
    assert loop.metrics.held._value.get() == 1

    # A restarted controller remembers it.
    again = controller(world, tmp_path)
    assert again.reconcile().action == "hold"

    world.champion = "4"  # a new version is promoted: deployed
    assert again.reconcile().action == "deploy"
    assert world.calls[-1] == ("4", "2", True)


def test_a_deploy_that_errors_is_retried_after_a_growing_delay(tmp_path: Path) -> None:
    world = World(champion="3", outcomes=["error", "error", "ok"])
    loop = controller(world, tmp_path)

    loop.reconcile()  # fails: retry after 20 s
    loop.reconcile()
    assert len(world.calls) == 1
    world.now = 21
    loop.reconcile()  # fails again: retry after 40 s
    world.now = 60
    loop.reconcile()
    assert len(world.calls) == 2
    world.now = 62
    loop.reconcile()
    assert len(world.calls) == 3
    assert world.served == ["3", "3", "3"]
    failures = [e for e in ControllerState(tmp_path).recent(100) if e["event"] == "failed"]
    assert [f["retry_in_seconds"] for f in failures] == [20.0, 40.0]
    assert "Connection refused" in failures[0]["error"]
    assert loop.memory.failed == {}  # an outage is not a verdict on the version


def test_another_deploy_in_progress_is_waited_for_without_delay(tmp_path: Path) -> None:
    world = World(champion="3", outcomes=["busy"])
    loop = controller(world, tmp_path)
    loop.reconcile()
    loop.reconcile()
    assert len(world.calls) == 2
    assert world.served == ["3", "3", "3"]
    assert "waiting" in events(tmp_path)


def test_quiet_polls_add_no_lines_and_an_unreadable_registry_is_recorded(tmp_path: Path) -> None:
    world = World()
    loop = controller(world, tmp_path)
    for _ in range(5):
        loop.reconcile()
    assert events(tmp_path) == ["decision"]

    def broken() -> Observation:
        raise ConnectionError("MLflow down")

    loop.observe = broken
    assert loop.reconcile().action == "wait"
    assert ControllerState(tmp_path).recent(1)[0]["reason"] == "ConnectionError: MLflow down"


def test_the_http_routes_wake_it_on_a_signed_webhook_only(tmp_path: Path) -> None:
    world = World()
    loop = controller(world, tmp_path)
    loop.webhook_secret = "hook-secret"
    port = free_port()
    server = serve_http(loop, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"entity": "model_version_alias", "action": "created", "data": {}})
    stamp = str(int(time.time()))
    signed = {
        SIGNATURE_HEADER: sign("hook-secret", "d-1", stamp, body),
        DELIVERY_HEADER: "d-1",
        TIMESTAMP_HEADER: stamp,
        "Content-Type": "application/json",
    }
    try:
        forged = {**signed, SIGNATURE_HEADER: sign("guess", "d-1", stamp, body)}
        answer = httpx.post(f"{base}/webhook", content=body, headers=forged)
        assert answer.status_code == 401
        assert "does not match" in answer.json()["error"]
        assert not loop.wake.is_set()

        assert httpx.post(f"{base}/webhook", content=body, headers=signed).status_code == 200
        assert loop.wake.is_set()
        loop.wake.clear()
        assert httpx.post(f"{base}/reconcile").status_code == 202
        assert loop.wake.is_set()

        loop.reconcile()
        metrics = httpx.get(f"{base}/metrics").text
        assert 'finsimples_registry_champion_info{model_version="2"} 1.0' in metrics
        assert "finsimples_controller_in_sync 1.0" in metrics
        assert 'finsimples_controller_webhooks_total{result="rejected"} 1.0' in metrics
        assert 'finsimples_controller_webhooks_total{result="accepted"} 1.0' in metrics
        assert httpx.get(f"{base}/healthz").json()["poll_seconds"] == 10.0
        assert httpx.get(f"{base}/nowhere").status_code == 404
    finally:
        server.shutdown()


def test_without_a_registered_webhook_deliveries_are_refused(tmp_path: Path) -> None:
    loop = controller(World(), tmp_path)
    port = free_port()
    server = serve_http(loop, "127.0.0.1", port)
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/webhook", content=b"{}")
        assert answer.status_code == 404
        assert not loop.wake.is_set()
    finally:
        server.shutdown()


def test_run_polls_until_stopped(tmp_path: Path) -> None:
    world = World(champion="3")
    loop = controller(world, tmp_path)
    loop.poll_seconds = 0.01
    import threading

    runner = threading.Thread(target=loop.run)
    runner.start()
    deadline = time.monotonic() + 10
    while world.served != ["3", "3", "3"] and time.monotonic() < deadline:
        time.sleep(0.01)
    loop.stop.set()
    loop.wake.set()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert world.calls == [("3", "2", True)]


@pytest.mark.parametrize("content", ["", "not json"])
def test_a_damaged_memory_file_is_named(tmp_path: Path, content: str) -> None:
    (tmp_path / "memory.json").write_text(content)
    with pytest.raises(ValueError, match=r"memory\.json"):
        ControllerState(tmp_path).load()
