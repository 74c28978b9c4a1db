"""The API pods' start-up path for a pinned version (Kubernetes' model-fetch init container and
``Settings.model_version``), against a real MLflow registry under ``tmp_path``: the pinned
version is imported into BENTOML_HOME's store and is the one served; unpinned, nothing is
imported and the packaged model serves; a version that cannot be imported fails the start."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bentos.model_store import served_model
from finsimples.settings import Settings
from tests.champion import fit_small, register_champion, write_lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~2 min: MLflow in 5 processes
ROOT = Path(__file__).resolve().parents[3]
# In the served process: the model the service would load, as `served_model` picks it.
SERVED = (
    "import sys; from bentos.model_store import load_from_store, served_model; "
    "print(load_from_store(served_model(None, sys.argv[1]))[1].version)"
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, sample_wide: pd.DataFrame) -> Path:
    """A lake and a registry with v1 and v2 (@champion); its state folder."""
    root = tmp_path_factory.mktemp("fetch")
    settings = Settings(state_dir=root / "state")
    settings.state_dir.mkdir()
    with contextlib.chdir(root):  # MLflow writes its artifacts under the working directory
        lake = write_lake(settings, sample_wide, root)
        for seed in (0, 1):
            register_champion(settings, lake, fit_small(lake, seed=seed))
    return settings.state_dir


def run(
    module_or_code: list[str], state: Path, home: Path, version: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSIMPLES_", "BENTOML_"))}
    env |= {
        "FINSIMPLES_STATE_DIR": str(state),
        "FINSIMPLES_MODEL_VERSION": version,  # what the downward API gives: "" when unset
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, *module_or_code],
        env=env,
        cwd=state.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_pinned_version_is_imported_and_served(registry: Path, tmp_path: Path) -> None:
    home = tmp_path / "bentoml"
    fetched = run(["-m", "bentos.model_fetch"], registry, home, "1")
    assert fetched.returncode == 0, fetched.stderr
    assert "registry version 1 imported as finsimples-forecaster:v1-" in fetched.stdout
    served = run(["-c", SERVED, "1"], registry, home, "1")
    assert served.returncode == 0, served.stderr
    assert served.stdout.strip() == "1"  # v1, though v2 holds @champion
    # Only what was imported: v2 is not in this pod's store.
    missing = run(["-c", SERVED, "2"], registry, home, "1")
    assert missing.returncode != 0
    assert "model_version='2'" in missing.stderr
    assert "bentos.model_fetch" in missing.stderr


def test_unpinned_nothing_is_imported_and_the_packaged_model_serves(
    registry: Path, tmp_path: Path
) -> None:
    home = tmp_path / "bentoml"
    fetched = run(["-m", "bentos.model_fetch"], registry, home, "")
    assert fetched.returncode == 0, fetched.stderr
    assert "no version pinned" in fetched.stdout
    assert not list(home.glob("models/*/*"))
    packaged = object()
    assert served_model(packaged, "") is packaged  # type: ignore[arg-type]
    assert served_model(packaged, None) is packaged  # type: ignore[arg-type]


def test_a_version_that_cannot_be_imported_fails_the_start(registry: Path, tmp_path: Path) -> None:
    fetched = run(["-m", "bentos.model_fetch"], registry, tmp_path / "bentoml", "9")
    assert fetched.returncode == 1
    assert "cannot import registry version 9 of 'finsimples-forecaster'" in fetched.stderr
