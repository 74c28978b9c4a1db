"""A real MLflow store for registry tests: sqlite under tmp, or an `mlflow server` process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from registry.promotion import ModelRegistry
from tests.servers import free_port, server_process


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    """A fresh sqlite tracking + registry store."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def mlflow_server_command(root: Path, port: int) -> list[str]:
    """`mlflow server` on 127.0.0.1:``port`` with one worker and its sqlite store in ``root``."""
    return [
        str(Path(sys.executable).with_name("mlflow")),
        *("server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"),
        *("--artifacts-destination", str(root / "artifacts")),
    ]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1, a separate process with its own sqlite store."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = mlflow_server_command(root, port)
    # The job runner would spawn ~2.5 GB of workers; the registry does not need it.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    with server_process(command, port, root / "server.log", timeout=90):
        yield f"http://127.0.0.1:{port}"


def make_registry(uri: str, name: str = "forecaster") -> ModelRegistry:
    """A registry wrapper on ``uri`` with an empty registered model."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(name)
    return ModelRegistry(client, name, audit_experiment=f"{name}-promotions")


def add_version(registry: ModelRegistry) -> str:
    """Register a version from an empty run (the alias logic needs no real model behind it)."""
    run = registry.client.create_run("0")
    registry.client.set_terminated(run.info.run_id)
    source = f"{run.info.artifact_uri}/model"
    version = registry.client.create_model_version(
        registry.model_name, source, run_id=run.info.run_id
    ).version
    return str(version)
