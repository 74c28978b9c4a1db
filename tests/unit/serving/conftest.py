"""Fixtures of the serving unit tests: a small lake and forecaster, a predictor over them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from bentos.predictor import ModelInfo, Predictor
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.champion import METRICS, WATERMARK, fit_small, write_lake
from training.features import FEATURE_VERSION
from training.forecaster import QuantileForecaster

INFO = ModelInfo(
    model_name="finsimples-forecaster",
    version="7",
    alias="champion",
    run_id="0123456789abcdef0123456789abcdef",
    watermark=WATERMARK.isoformat(),
    feature_version=FEATURE_VERSION,
    metrics=METRICS,
    source="tests",
)


@pytest.fixture(scope="session")
def lake_dir(tmp_path_factory: pytest.TempPathFactory, sample_wide: pd.DataFrame) -> Path:
    """A lake of six sample tickers up to the watermark; tests that write copy it first."""
    root = tmp_path_factory.mktemp("served")
    write_lake(Settings(lake_uri=str(root / "lake")), sample_wide, root)
    return root / "lake"


@pytest.fixture(scope="session")
def small_forecaster(lake_dir: Path) -> QuantileForecaster:
    """A quick real fit on the session lake."""
    return fit_small(Lake.from_settings(Settings(lake_uri=str(lake_dir))))


@pytest.fixture
def lake_copy(lake_dir: Path, tmp_path: Path) -> Lake:
    """A private copy of the session lake, for tests that ingest more days."""
    shutil.copytree(lake_dir, tmp_path / "lake")
    return Lake.from_settings(Settings(lake_uri=str(tmp_path / "lake")))


@pytest.fixture
def predictor(small_forecaster: QuantileForecaster, lake_dir: Path) -> Predictor:
    """A predictor over the (read-only) session lake."""
    lake = Lake.from_settings(Settings(lake_uri=str(lake_dir)))
    return Predictor.load(small_forecaster, INFO, lake)
