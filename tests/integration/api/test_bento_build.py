"""`bentoml build` from a clean checkout: the bento holds the code, the model and the snapshot."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.api.conftest import ROOT, ApiServer, Registry, environment, wait_ready
from tests.servers import free_port, server_process

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
# What a clone does not hold: the environment, local state, caches, generated files.
NOT_IN_A_CHECKOUT = (
    ".git",
    ".venv",
    ".finsimples",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".hypothesis",
    "__pycache__",
    "mlruns",
    "snapshot",
    "*.egg-info",
    ".env",
)


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@dataclass(frozen=True)
class Built:
    """A bento built from a clean checkout, in its own BENTOML_HOME."""

    home: Path
    bento: Path
    tag_output: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, model_registry: Registry) -> Built:
    """Copy the repository as a clone would hold it, prepare, and run `bentoml build`."""
    root = tmp_path_factory.mktemp("build")
    checkout = root / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(*NOT_IN_A_CHECKOUT))
    home = root / "bentoml"
    env = environment(BENTOML_HOME=str(home), PYTHONPATH=str(checkout), **model_registry.env)
    prepared = run([sys.executable, "-m", "bentos.package", "--prepare"], checkout, env)
    assert f"registry version {model_registry.v2}" in prepared
    tag = run([str(BIN / "bentoml"), "build", "--output", "tag"], checkout, env)
    bentos = home / "bentos" / "finsimples-forecast"
    return Built(home, bentos / (bentos / "latest").read_text().strip(), tag)


def test_bentoml_build_from_a_clean_checkout(built: Built, model_registry: Registry) -> None:
    bento = built.bento
    assert bento.name in built.tag_output
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert info["service"] == "bentos.service:ForecastService"
    assert {"name": "OMP_WAIT_POLICY", "value": "PASSIVE"}.items() <= next(
        env for env in info["envs"] if env["name"] == "OMP_WAIT_POLICY"
    ).items()
    (model,) = info["services"][0]["models"]  # pinned: the store's latest at build time
    assert model["tag"].startswith(f"finsimples-forecaster:v{model_registry.v2}-")
    src = bento / "src"
    for packaged in (
        "bentos/service.py",
        "bentos/snapshot/fallback.json.gz",
        "training/features.py",
    ):
        assert (src / packaged).is_file(), packaged
    assert not (src / "tests").exists()
    assert not (src / "data").exists()
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "xgboost-cpu==" in requirements
    assert "mlflow" not in requirements
    assert (bento / "env" / "docker" / "Dockerfile").is_file()
    assert "/v1/forecast/batch" in (bento / "apis" / "openapi.yaml").read_text()
    # The model travels with `bentoml export`, not in the bento folder: it is in the store.
    version = model["tag"].split(":")[1]
    record = built.home / "models" / "finsimples-forecaster" / version / "model.yaml"
    labels = yaml.safe_load(record.read_text())["labels"]
    assert (labels["version"], labels["watermark"]) == (model_registry.v2, "2022-11-30")


@pytest.mark.slow
def test_the_built_bento_serves(built: Built, model_registry: Registry, tmp_path: Path) -> None:
    # Code from the bento's src/, the model from the store, the packaged snapshot.
    port = free_port()
    serve = [str(BIN / "bentoml"), "serve", f"finsimples-forecast:{built.bento.name}"]
    serve += ["--host", "127.0.0.1", "--port", str(port)]
    serve_env = environment(
        BENTOML_HOME=str(built.home),
        FINSIMPLES_REPLICA_ID="from-bento",
        FINSIMPLES_FAULT_INJECTION="true",
        **model_registry.env,
    )
    with server_process(serve, port, tmp_path / "serve.log", timeout=60, env=serve_env):
        server = ApiServer(f"http://127.0.0.1:{port}", "from-bento", tmp_path / "serve.log")
        wait_ready(server)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            fresh = http.post("/v1/forecast", json={"ticker": "KO"}).json()
            stale = http.post(
                "/v1/forecast",
                json={"ticker": "KO", "horizon_days": 29},
                headers={"X-FinSimples-Fault-Delay": "5"},
            ).json()
    assert fresh["provenance"]["model_version"] == model_registry.v2
    assert (stale["provenance"]["source"], stale["horizon_days"]) == ("fallback", 29)
