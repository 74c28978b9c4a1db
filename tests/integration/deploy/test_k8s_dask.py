"""The Dask cluster for training (deploy/k8s/components/dask), in both overlays: the flow jobs'
settings point at the scheduler's Service, the workers at the scheduler, and the commands the
manifests give the pods start a cluster that trains (run here as local processes, ports moved).
(Strict schema validation of every object: test_k8s.py.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import xgboost as xgb
from distributed import Client

from finsimples.engines import DaskBoosterFit
from finsimples.settings import Settings
from tests.integration.deploy.test_k8s import Doc, Rendered, groups, one, rendered
from tests.servers import free_port, server_process, wait_until

pytestmark = pytest.mark.integration
__all__ = ["rendered"]  # fixture, used by name

SCHEDULER = "finsimples-dask-scheduler"
WORKERS = "finsimples-dask-workers"
FLOWS_CONFIG = "finsimples-flows-config"


def pod(docs: list[Doc], name: str) -> Doc:
    [container] = one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    return container


def flow_settings(docs: list[Doc], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a flow job builds from the ConfigMap its job template reads."""
    for key in [k for k in os.environ if k.startswith("FINSIMPLES_")]:
        monkeypatch.delenv(key)
    for key, value in one(docs, "ConfigMap", FLOWS_CONFIG)["data"].items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_the_flow_jobs_train_on_the_schedulers_service(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, docs = rendered
    settings = flow_settings(docs, monkeypatch)
    assert settings.training_engine == "dask"
    assert settings.dask_scheduler is not None
    host, port = groups(r"tcp://([^:/]+):(\d+)", settings.dask_scheduler)
    service = one(docs, "Service", host)["spec"]
    [comm] = [p for p in service["ports"] if p["port"] == int(port)]
    scheduler = one(docs, "Deployment", SCHEDULER)["spec"]
    assert service["selector"] == scheduler["selector"]["matchLabels"]
    container = pod(docs, SCHEDULER)
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named[comm["targetPort"]] == int(option(container["command"], "--port"))
    assert scheduler["replicas"] == 1
    assert scheduler["strategy"] == {"type": "Recreate"}  # never two schedulers
    # The workers join that scheduler, with the threads their CPU limit pays for.
    worker = pod(docs, WORKERS)
    assert worker["command"][:3] == ["dask", "worker", settings.dask_scheduler]
    cpus = worker["resources"]["limits"]["cpu"]
    assert option(worker["command"], "--nthreads") == str(int(cpus))
    # The project's image on both, as the flow jobs and the other FinSimples pods run it: the
    # client pickles the training for the workers' xgboost.
    controller = pod(docs, "finsimples-deploy-controller")
    assert container["image"] == worker["image"] == controller["image"]
    # The NetworkPolicy lets the flow jobs (part-of=finsimples) reach both.
    policy = one(docs, "NetworkPolicy", "finsimples-dask")["spec"]
    selected = policy["podSelector"]["matchLabels"]
    for name in (SCHEDULER, WORKERS):
        labels = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert selected.items() <= labels.items()
        assert labels["app.kubernetes.io/part-of"] == "finsimples"


def local_command(command: list[str], moves: dict[str, str]) -> list[str]:
    """The manifest's command for this machine: the venv's dask, its addresses moved."""
    dask = str(Path(sys.executable).with_name("dask"))
    return [dask, *(moves.get(arg, arg) for arg in command[1:])]


def test_the_manifests_commands_start_a_cluster_that_trains(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overlay, _, docs = rendered
    if overlay != "local":
        pytest.skip("the same component in both overlays: run its commands once")
    settings = flow_settings(docs, monkeypatch)
    assert settings.dask_scheduler is not None
    scheduler, worker = pod(docs, SCHEDULER)["command"], pod(docs, WORKERS)["command"]
    port, dashboard, worker_dashboard = free_port(), free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"
    moves = {
        option(scheduler, "--port"): str(port),
        option(scheduler, "--dashboard-address"): f"127.0.0.1:{dashboard}",
        settings.dask_scheduler: address,
        "$(POD_NAME)": "worker-0",  # Kubernetes expands it from the downward API
        option(worker, "--local-directory"): str(tmp_path / "dask"),
        option(worker, "--dashboard-address"): f"127.0.0.1:{worker_dashboard}",
    }
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with (
        server_process(local_command(scheduler, moves), port, tmp_path / "s.log", env=env),
        server_process(local_command(worker, moves), worker_dashboard, tmp_path / "w.log", env=env),
        Client(address, set_as_default=False, timeout=30) as client,
    ):
        for health in (dashboard, worker_dashboard):  # what the probes ask
            assert httpx.get(f"http://127.0.0.1:{health}/health", timeout=5).text == "ok"
        wait_until(lambda: len(client.scheduler_info()["workers"]) == 1, 30, "the worker")
        [info] = client.scheduler_info()["workers"].values()
        assert info["name"] == "worker-0"
        assert info["nthreads"] == int(option(worker, "--nthreads"))
        rng = np.random.default_rng(0)
        design = rng.normal(size=(500, 3)).astype(np.float32)
        labels = design[:, 0] + rng.normal(scale=0.1, size=500)
        params = {"objective": "reg:squarederror", "max_bin": 16, "tree_method": "hist"}
        booster = DaskBoosterFit(client)(params, design, labels, 5, None)
    assert type(booster) is xgb.Booster
    assert booster.num_boosted_rounds() == 5
