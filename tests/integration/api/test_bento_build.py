"""`bentoml build` from a clean checkout: the bento holds the code, the model and the snapshot.

And the image `bentoml containerize` would build from it (no container runtime here: the checks
read the generated Dockerfile and the build context): it runs as a non-root user, holds no
secret, and gets the model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
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
# Secrets a developer's checkout and shell may hold while building: none may reach the bento.
DOTENV_CANARY = "canary-dotenv-5e0c1b"
ENVIRON_CANARY = "canary-environ-9a7d42"
SECRET_VARIABLE = re.compile(r"FINSIMPLES_\w*(KEY|SECRET|PASSWORD|TOKEN)\w*")


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
    # A working copy usually has a .env beside bentofile.yaml, and secrets in the shell. The
    # lake here is a local folder, so these S3 credentials are read but never used.
    (checkout / ".env").write_text(f"FINSIMPLES_S3_SECRET_ACCESS_KEY={DOTENV_CANARY}\n")
    home = root / "bentoml"
    env = environment(
        BENTOML_HOME=str(home),
        PYTHONPATH=str(checkout),
        FINSIMPLES_S3_ACCESS_KEY_ID=ENVIRON_CANARY,
        **model_registry.env,
    )
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
        "bentos/webpage/index.html",  # the investor page (bentos.page)
        "bentos/webpage/app.js",
        "training/features.py",
    ):
        assert (src / packaged).is_file(), packaged
    assert not (src / "tests").exists()
    # The service imports from the bento's own sources: nothing from the checkout it was built
    # in (the venv's editable install puts the checkout on sys.path: it is taken off first).
    probe = (
        "import sys; src, *roots = sys.argv[1:]; "
        "sys.path[:] = [src] + [p for p in sys.path if p and p.rstrip('/') not in roots]; "
        "import bentos.service, bentos.wiring, bentos.engine, finsimples.settings; "
        "print(finsimples.settings.__file__)"
    )
    checkout = built.home.parent / "checkout"
    imported = subprocess.run(
        [sys.executable, "-c", probe, str(src), str(ROOT), str(checkout)],
        cwd=src,
        capture_output=True,
        text=True,
        env=environment(PYTHONPATH=""),
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert imported.stdout.strip().startswith(str(src)), imported.stdout
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


def test_the_image_runs_as_a_non_root_user(built: Built) -> None:
    dockerfile = (built.bento / "env" / "docker" / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)\s*$", dockerfile, flags=re.MULTILINE)
    assert users, "the Dockerfile never sets USER: the image would run as root"
    final = users[-1]
    assert final.split(":")[0] not in {"root", "0"}
    # BentoML's template creates that user with a non-zero uid, then starts the server as it.
    assert final == re.findall(r"^ARG BENTO_USER=(\S+)$", dockerfile, flags=re.MULTILINE)[-1]
    (uid,) = re.findall(r"^ARG BENTO_USER_UID=(\d+)$", dockerfile, flags=re.MULTILINE)
    assert int(uid) != 0
    assert "useradd -m -u $BENTO_USER_UID" in dockerfile
    assert dockerfile.rindex(f"USER {final}") < dockerfile.rindex("ENTRYPOINT")
    # The whole bento folder goes in, owned by that user: src/ (with the snapshot) included.
    assert f"COPY --chown={final}:{final} . ./" in dockerfile
    assert (built.bento / "src" / "bentos" / "snapshot" / "fallback.json.gz").is_file()


def test_no_secret_reaches_the_bento(built: Built) -> None:
    files = [path for path in built.bento.rglob("*") if path.is_file()]
    assert not [path for path in files if path.name.startswith(".env")]
    for path in files:
        data = path.read_bytes()
        assert DOTENV_CANARY.encode() not in data, path
        assert ENVIRON_CANARY.encode() not in data, path
    # Nothing the image's environment gets is a credential: no ENV/ARG of one, no declared env.
    dockerfile = (built.bento / "env" / "docker" / "Dockerfile").read_text()
    assert not SECRET_VARIABLE.search(dockerfile)
    info = yaml.safe_load((built.bento / "bento.yaml").read_text())
    assert not [env["name"] for env in info["envs"] if SECRET_VARIABLE.search(env["name"])]


def test_the_model_travels_with_export_and_containerize(
    built: Built, model_registry: Registry, tmp_path: Path
) -> None:
    # bento.yaml names the model (per service; its top-level `models:` list stays empty in a
    # v2 bento); the folder holds no model files, the export and the image's build context do.
    info = yaml.safe_load((built.bento / "bento.yaml").read_text())
    (model,) = info["services"][0]["models"]
    name, version = model["tag"].split(":")
    assert name == "finsimples-forecaster"
    assert not (built.bento / "models").exists()
    env = environment(BENTOML_HOME=str(built.home))
    tag = f"finsimples-forecast:{built.bento.name}"
    archive = tmp_path / "forecast.bento"
    run([str(BIN / "bentoml"), "export", tag, str(archive)], tmp_path, env)
    with tarfile.open(archive) as exported:
        names = exported.getnames()
    model_yaml = f"models/{name}/{version}/model.yaml"
    assert f"./{model_yaml}" in names
    assert not [n for n in names if n.rsplit("/", 1)[-1].startswith(".env")]
    # What `bentoml containerize` builds from: BentoML's own construct_containerfile (a private
    # API of the pinned 1.4.40) copies the store's models into the build context it hands to
    # the builder, next to the Dockerfile it regenerates.
    script = (
        "import json, os, sys, bentoml\n"
        "from bentoml._internal.container import construct_containerfile\n"
        "with construct_containerfile(bentoml.get(sys.argv[1])) as (context, dockerfile):\n"
        "    files = [os.path.relpath(os.path.join(d, f), context)\n"
        "             for d, _, names in os.walk(context) for f in names]\n"
        "    print(json.dumps({'files': files, 'dockerfile': open(dockerfile).read()}))\n"
    )
    context = json.loads(run([sys.executable, "-c", script, tag], tmp_path, env))
    assert model_yaml in context["files"]
    assert not [f for f in context["files"] if f.rsplit("/", 1)[-1].startswith(".env")]
    users = re.findall(r"^USER\s+(\S+)\s*$", context["dockerfile"], flags=re.MULTILINE)
    assert users[-1] == "bentoml"
    assert "COPY --chown=bentoml:bentoml . ./" in context["dockerfile"]
    labels = yaml.safe_load((built.home / "models" / name / version / "model.yaml").read_text())
    assert labels["labels"]["version"] == model_registry.v2


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
