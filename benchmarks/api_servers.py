"""The API benchmark's subjects: a champion fitted on the sample, and the servers under test."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.api_processes import ROOT, environment, server, wait_http_ok
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.servers import free_port
from training.features import build_features, latest_features

SAMPLE = ROOT / "data" / "sp500_prices.csv.gz"
SINCE = "2017-01-01"


@dataclass(frozen=True)
class Champion:
    """A registered, promoted version and the state it lives in."""

    root: Path
    settings: Settings
    version: str
    description: str
    max_horizon: int
    tickers: list[str]
    feature_rows: dict[str, bytes]  # ticker -> MLflow request body of its latest feature row


def make_champion(root: Path, small: bool = False) -> Champion:
    """Ingest the sample, fit, register and promote a champion.

    Default: the whole sample and the default training config (the production model, less
    the gate's walk-forward). ``small``: the serving tests' config on 20 tickers since
    :data:`SINCE` (seconds instead of about a minute).
    """
    # Imported here: xgboost's OpenMP runtime reads OMP_WAIT_POLICY when it loads (set by main).
    from tests.champion import fit_small, register_champion
    from training.forecaster import QuantileForecaster

    state = root / "state"
    state.mkdir()
    settings = Settings(
        state_dir=state,
        lake_uri=str(state / "lake"),
        mlflow_tracking_uri=f"sqlite:///{state / 'mlflow.db'}",
    )
    lake = Lake.from_settings(settings)
    if small:
        wide = pd.read_csv(SAMPLE, parse_dates=["Date"])
        recent = root / "prices.csv"
        wide.loc[wide["Date"] >= SINCE].to_csv(recent, index=False)
        ingest_files(lake, [recent])
        forecaster = fit_small(lake)
        description = f"tests.champion.SMALL config, the sample's tickers since {SINCE}"
    else:
        ingest_files(lake, [SAMPLE])
        prices = lake.read_prices()
        forecaster = QuantileForecaster(settings.training).fit(build_features(prices), prices)
        description = "default training config, the whole sample (1990-2022)"
    config = forecaster.config
    description += (
        f": anchors {list(config.anchor_horizons)} x {len(config.quantiles)} quantiles, "
        f"{config.booster.n_estimators} rounds of depth {config.booster.max_depth}"
    )
    version = register_champion(settings, lake, forecaster)
    latest = latest_features(build_features(lake.read_prices())).reset_index()
    rows = {}
    for ticker, row in latest.groupby("ticker", sort=True):
        frame = row.to_json(orient="split", date_format="iso", index=False)
        rows[str(ticker)] = b'{"dataframe_split": ' + frame.encode() + b"}"
    return Champion(root, settings, version, description, config.max_horizon, sorted(rows), rows)


def prepare_bentoml_home(champion: Champion) -> tuple[Path, Path]:
    """Import the champion into a BentoML store of its own; the store and the snapshot path."""
    home, snapshot = champion.root / "bentoml", champion.root / "fallback.json.gz"
    command = [sys.executable, "-m", "bentos.package", "--prepare"]
    command += ["--version", champion.version, "--snapshot", str(snapshot)]
    env = environment(BENTOML_HOME=str(home), FINSIMPLES_STATE_DIR=str(champion.settings.state_dir))
    done = subprocess.run(
        command, env=env, cwd=champion.root, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"bentos.package --prepare failed:\n{done.stdout}\n{done.stderr}")
    return home, snapshot


@contextlib.contextmanager
def bentoml_replica(
    champion: Champion, home: Path, snapshot: Path, name: str, **extra: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """One `bentoml serve` replica (template narrator, no API keys); its URL and process."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("bentoml")), "serve"]
    command += ["bentos.service:ForecastService", "--working-dir", str(ROOT)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = environment(
        BENTOML_HOME=str(home),
        FINSIMPLES_STATE_DIR=str(champion.settings.state_dir),
        FINSIMPLES_FALLBACK_SNAPSHOT_PATH=str(snapshot),
        FINSIMPLES_REPLICA_ID=name,
        **extra,
    )
    log = champion.root / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    with server(command, port, log, env, champion.root) as process:
        wait_http_ok(f"{url}/readyz", log)
        yield url, process


@contextlib.contextmanager
def mlflow_server(champion: Champion) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`mlflow models serve` of the champion's registered version; its URL and process."""
    port = free_port()
    model = f"models:/{champion.settings.model_name}/{champion.version}"
    command = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", model]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    env = environment(MLFLOW_TRACKING_URI=champion.settings.resolved_mlflow_tracking_uri)
    log = champion.root / "mlflow.log"
    url = f"http://127.0.0.1:{port}"
    with server(command, port, log, env, champion.root) as process:
        wait_http_ok(f"{url}/ping", log)
        yield url, process


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[str]:
    """A redis-server without persistence; its URL."""
    port = free_port()
    command = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1"]
    command += ["--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(root)]
    with server(command, port, root / "redis.log", environment(), root):
        yield f"redis://127.0.0.1:{port}/0"
