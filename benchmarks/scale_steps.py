"""The steps ``benchmarks.bench_scale`` measures, each in a process of its own.

A step is a command (``finsimples ...`` or a small ``python -c`` script) run on one state folder
(lake, MLflow store, drop location) with the environment of :func:`state_env`. Its wall time and
its peak resident memory come from the kernel: ``os.wait4`` gives the child's ``ru_maxrss``, the
largest of the process and of every descendant it waited for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.api_processes import ROOT, environment

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Measured:
    """One step at one size."""

    step: str
    tickers: int
    seconds: float
    peak_rss: int | None  # bytes; None: not a process of its own (an HTTP figure)
    note: str = ""


def state_env(state: Path, **extra: str) -> dict[str, str]:
    """The environment of every step: the state folder's lake, MLflow store and drop location."""
    return environment(
        FINSIMPLES_STATE_DIR=str(state),
        PREFECT_HOME=str(state / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # Each flow run starts Prefect's temporary server: on a loaded box it takes over the
        # 20 s Prefect waits by default.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        PREFECT_LOGGING_LEVEL="WARNING",
        OMP_WAIT_POLICY="PASSIVE",
        **extra,
    )


def run(
    step: str, tickers: int, command: list[str], env: dict[str, str], log: Path, note: str = ""
) -> Measured:
    """Run ``command`` to its end; its time and peak RSS. A failure raises with the log's tail."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{step} at {tickers} tickers exited with {process.returncode}:\n{tail}")
    return Measured(step, tickers, seconds, usage.ru_maxrss * 1024, note)


def cli(*args: str) -> list[str]:
    """A ``finsimples`` command line."""
    return [str(BIN / "finsimples"), *args]


def python(code: str) -> list[str]:
    """A ``python -c`` command line."""
    return [sys.executable, "-c", code]


def latest_version(state: Path) -> tuple[str, str | None]:
    """The newest registered version of the state's model and the champion's version."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from finsimples.settings import Settings

    settings = Settings(state_dir=state)
    client = MlflowClient(settings.resolved_mlflow_tracking_uri)
    versions = client.search_model_versions(f"name = '{settings.model_name}'")
    newest = max(versions, key=lambda v: int(v.version))
    try:
        champion: str | None = str(
            client.get_model_version_by_alias(settings.model_name, "champion").version
        )
    except MlflowException:  # no version holds the alias yet
        champion = None
    return str(newest.version), champion


STAND_IN = """
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.champion import fit_small, register_champion
settings = Settings()
lake = Lake.from_settings(settings)
print("registered", register_champion(settings, lake, fit_small(lake)))
"""
"""A stand-in champion where the full train is not run: the serving tests' SMALL config (20
trees of depth 2 per anchor and quantile) fitted on the whole lake, registered and promoted."""

WARM = """
import json, sys
from bentos.deploy_hook import invalidate_and_warm
from finsimples.settings import Settings
report = invalidate_and_warm(Settings(), None, sys.argv[1])
print(json.dumps({"warmed": report.warmed}))
"""
"""The deploy's cache step on a fresh Redis: ``warm_tickers`` tickers x the warm horizons x
both locales, each computed with the new version and written to the shared cache."""


def forecast_body(ticker: str, horizon: int, locale: str) -> bytes:
    return json.dumps({"ticker": ticker, "horizon_days": horizon, "locale": locale}).encode()


def timed_post(client: httpx.Client, url: str, body: bytes) -> float:
    """Milliseconds of one forecast POST that must answer 200."""
    began = time.perf_counter()
    answer = client.post(url, content=body, headers={"Content-Type": "application/json"})
    elapsed = (time.perf_counter() - began) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"POST {url} {body!r}: {answer.status_code} {answer.text[:300]}")
    return elapsed


def timed_get(client: httpx.Client, url: str) -> tuple[float, int]:
    """Milliseconds and body bytes of one GET that must answer 200."""
    began = time.perf_counter()
    answer = client.get(url)
    elapsed = (time.perf_counter() - began) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"GET {url}: {answer.status_code} {answer.text[:300]}")
    return elapsed, len(answer.content)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
