"""The forecast API as ops runs it: `bentoml serve` processes, a redis-server, a fake LLM.

One session stack, started once (~30 s):

- a lake of six sample tickers and a registry with two versions: v1, then v2 as @champion;
- replica A: `python -m bentos.package --prepare --version 1` imported v1 into its own
  BENTOML_HOME and wrote a fallback snapshot; client and admin API keys on, Redis, the narrator
  against the fake OpenAI server, fault injection on (a request header makes the predictor slow);
- replica B: v2 (@champion) in its own BENTOML_HOME; no keys, template narrator, the same Redis:
  a rolling deploy's new replica; it checks the lake for new data every half second.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest

from bentos.auth import hash_api_key
from finsimples.lake import Lake
from finsimples.records import (
    DRIFT_STATUS,
    RETRAIN_STATUS,
    DriftStatus,
    RetrainStatus,
    write_record,
)
from finsimples.settings import Settings
from jobs.track_record import replay_track_record
from tests.champion import fit_small, register_champion, write_lake
from tests.fakes.openai_server import FakeOpenAIServer
from tests.integration.serving.conftest import RedisServer
from tests.servers import free_port, server_process, wait_until
from training.forecaster import QuantileForecaster

ROOT = Path(__file__).resolve().parents[3]
BUDGET = 1.5
FAKE_MODEL = "fake-gpt"
# One key per test module, so one module's requests never eat another's rate budget.
KEYS = {
    name: f"fs_api-tests-{name}"
    for name in (
        "contract",
        "cache",
        "narrator",
        "fallback",
        "metrics",
        "limited",
        "admin",
        "schemathesis",
        "tickers",
    )
}
ADMIN_KEY = "fs_admin_api-tests"  # replica A's one admin key (FINSIMPLES_ADMIN_KEY_HASHES)
BURST = 100


@dataclass
class ApiServer:
    """A running `bentoml serve` replica."""

    url: str
    replica: str
    log: Path

    def http(self, key: str | None = None) -> httpx.Client:
        """A raw HTTP client, sending ``key`` as X-API-Key when given."""
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log_tail(self) -> str:
        """The end of the server's log, for assertion messages."""
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class ApiStack:
    """Everything the API tests talk to."""

    settings: Settings
    v1: str
    v2: str
    a: ApiServer
    b: ApiServer
    redis: RedisServer
    llm: FakeOpenAIServer
    started_at: datetime


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without FINSIMPLES_/BENTOML_ variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FINSIMPLES_", "BENTOML_", "PROMETHEUS_"))
    }
    env |= {"BENTOML_DO_NOT_TRACK": "true", "PYTHONPATH": str(ROOT)}
    return env | extra


def _serve(stack: contextlib.ExitStack, workdir: Path, replica: str, env: dict[str, str]):
    port = free_port()
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [
        str(bentoml),
        *("serve", "bentos.service:ForecastService", "--working-dir", str(ROOT)),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    log = workdir / f"{replica}.log"
    process_env = environment(FINSIMPLES_REPLICA_ID=replica, **env)
    with contextlib.chdir(workdir):  # the server's cwd: no stray .env or mlruns in the repo
        stack.enter_context(server_process(command, port, log, timeout=60, env=process_env))
    return ApiServer(f"http://127.0.0.1:{port}", replica, log)


def _prepare(
    root: Path, home: str, version: str, snapshot: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start `python -m bentos.package --prepare` for one replica's BENTOML_HOME."""
    command = [sys.executable, "-m", "bentos.package", "--prepare"]
    command += ["--version", version, "--snapshot", str(snapshot)]
    log = root / f"prepare-{home}.log"
    process_env = environment(BENTOML_HOME=str(root / home), **env)
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=process_env, cwd=root, stdout=out, stderr=out)
    return process, log


def wait_ready(server: ApiServer) -> None:
    """Wait until the replica's /readyz answers 200 (its service instance is up)."""

    def ready() -> bool:
        try:
            return httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:  # still starting: the port is bound before the app answers
            return False

    try:
        wait_until(ready, 120, f"bentoml serve ({server.replica})")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; log:\n{server.log_tail()}") from exc


@dataclass(frozen=True)
class Registry:
    """A lake and a registry holding v1 and v2 (@champion), under ``root``."""

    root: Path
    settings: Settings
    v1: str
    v2: str

    @property
    def env(self) -> dict[str, str]:
        """The FINSIMPLES_* variables pointing a process at this state."""
        return {"FINSIMPLES_STATE_DIR": str(self.settings.state_dir)}


@pytest.fixture(scope="session")
def model_registry(tmp_path_factory: pytest.TempPathFactory, sample_wide: pd.DataFrame) -> Registry:
    """Two registered versions of a small real model (v2 is @champion)."""
    root = tmp_path_factory.mktemp("api")
    settings = Settings(state_dir=root / "state")
    settings.state_dir.mkdir()
    with contextlib.chdir(root):  # MLflow writes its artifacts under the working directory
        lake = write_lake(settings, sample_wide, root)
        v1 = register_champion(settings, lake, fit_small(lake, seed=0))
        second = fit_small(lake, seed=1)
        v2 = register_champion(settings, lake, second)
    seed_model_status(settings, second, v2)
    return Registry(root, settings, v1, v2)


TRACK_RECORD_DAYS = 70
"""Replayed days of the seeded track record: more than the 63-day window at h=1."""
RETRAINED_ON = date(2022, 11, 30)
"""The seeded retrain status's training date."""


def seed_model_status(settings: Settings, forecaster: QuantileForecaster, version: str) -> None:
    """The lake's records the replicas export: a replayed track record, retrain and drift."""
    replay_track_record(settings, forecaster, version, TRACK_RECORD_DAYS)
    location = Lake.from_settings(settings).location
    at = datetime(2022, 11, 30, 22, tzinfo=UTC)
    retrain = RetrainStatus(
        finished_at=at,
        success=True,
        outcome="incremental retrain: promoted",
        last_trained_on=RETRAINED_ON,
        last_trained_version=version,
    )
    write_record(location, RETRAIN_STATUS, retrain)
    drift = DriftStatus(checked_at=at, model_version=version, drift_detected=True, report="r")
    write_record(location, DRIFT_STATUS, drift)


@pytest.fixture(scope="session")
def api_stack(model_registry: Registry) -> Iterator[ApiStack]:
    """The two replicas and their dependencies, for the whole session."""
    root, v1, v2, common = (
        model_registry.root,
        model_registry.v1,
        model_registry.v2,
        model_registry.env,
    )
    snapshot = root / "fallback-v1.json.gz"
    # Both imports at once: each is mostly Python start-up and imports.
    preparing = [
        _prepare(root, "bentoml-a", v1, snapshot, common),
        _prepare(root, "bentoml-b", v2, root / "snapshot-b.json.gz", common),
    ]
    for process, log in preparing:
        assert process.wait(timeout=300) == 0, log.read_text(errors="replace")[-3000:]

    started_at = datetime.now(UTC)
    with contextlib.ExitStack() as stack:
        redis = RedisServer(root).start()
        stack.callback(redis.close)
        llm = stack.enter_context(FakeOpenAIServer())
        shared = common | {
            "FINSIMPLES_REDIS_URL": redis.url,
            "FINSIMPLES_LATENCY_BUDGET_SECONDS": str(BUDGET),
            "FINSIMPLES_REDIS_ERROR_COOLDOWN_SECONDS": "0.5",
            "FINSIMPLES_BATCH_MAX_TICKERS": "3",
        }
        a = _serve(
            stack,
            root,
            "replica-a",
            shared
            | {
                "BENTOML_HOME": str(root / "bentoml-a"),
                "FINSIMPLES_API_KEY_HASHES": json.dumps([hash_api_key(k) for k in KEYS.values()]),
                "FINSIMPLES_ADMIN_KEY_HASHES": json.dumps([hash_api_key(ADMIN_KEY)]),
                "FINSIMPLES_API_KEY_RPM": "60",
                "FINSIMPLES_API_KEY_BURST": str(BURST),
                "FINSIMPLES_OPENAI_BASE_URL": llm.base_url,
                "FINSIMPLES_OPENAI_API_KEY": "test-key",
                "FINSIMPLES_OPENAI_MODEL": FAKE_MODEL,
                # Longer than the budget: the deadline, not the timeout, cuts a slow LLM short.
                "FINSIMPLES_LLM_REQUEST_TIMEOUT": "5.0",
                "FINSIMPLES_LLM_BACKOFF_BASE_SECONDS": "0.05",
                "FINSIMPLES_LLM_BACKOFF_CAP_SECONDS": "0.2",
                "FINSIMPLES_LLM_MIN_ATTEMPT_SECONDS": "0.2",
                "FINSIMPLES_FALLBACK_SNAPSHOT_PATH": str(snapshot),
                "FINSIMPLES_FAULT_INJECTION": "true",
            },
        )
        b = _serve(
            stack,
            root,
            "replica-b",
            shared
            | {
                "BENTOML_HOME": str(root / "bentoml-b"),
                "FINSIMPLES_FALLBACK_SNAPSHOT_PATH": str(root / "no-snapshot.json.gz"),
                "FINSIMPLES_LAKE_REFRESH_SECONDS": "0.5",
            },
        )
        wait_ready(a)
        wait_ready(b)
        yield ApiStack(model_registry.settings, v1, v2, a, b, redis, llm, started_at)


@pytest.fixture(scope="session")
def replica_a(api_stack: ApiStack) -> ApiServer:
    """Replica A (v1, keys on, LLM narrator, fault injection)."""
    return api_stack.a


@pytest.fixture(scope="session")
def replica_b(api_stack: ApiStack) -> ApiServer:
    """Replica B (v2, auth off, template narrator, lake refresh every half second)."""
    return api_stack.b
