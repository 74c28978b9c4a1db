"""A small real model for the serving tests: a lake of six sample tickers and a quick fit.

The train job's walk-forward gate takes minutes on two cores, so serving tests fit the same
``QuantileForecaster`` directly (about a second with :data:`SMALL`) and register it through the
registry's own ``log_candidate`` and ``promote``: the registry holds a real version with its
run, tags and metrics, as after ``finsimples train``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from config.gate import GatePolicy
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from training.config import BoosterParams, TrainingConfig
from training.features import build_features, latest_features
from training.forecaster import QuantileForecaster

TICKERS = ["AAPL", "JNJ", "KO", "XOM", "JPM", "WMT"]
WATERMARK = date(2022, 11, 30)
SMALL = TrainingConfig(
    anchor_horizons=(1, 5, 30),
    calibration_days=252,
    booster=BoosterParams(n_estimators=20, max_depth=2, n_jobs=1),
    eval_horizons=(1, 5),
)
# A lenient gate so the small model passes: tests of the training loop are about the mechanism
# (loss comparisons still block a candidate that is worse beyond doubt).
LENIENT = GatePolicy(
    coverage_tolerance=0.1,
    min_worst_year_coverage=0.5,
    min_worst_ticker_coverage=0.5,
    significance=0.001,
)
# What a walk-forward would have logged (names as registry.metrics writes them).
METRICS = {
    "h1_coverage": 0.89,
    "h1_coverage_worst_year": 0.86,
    "h1_coverage_worst_ticker": 0.85,
    "h1_width": 0.05,
    "h1_pinball_gain": 0.01,
    "h1_coverage_ewma_normal": 0.9,
    "h1_dm_pinball_vs_ewma_normal": -1.2,  # better than EWMA-normal: no evidence it is worse
    "h1_dm_pinball_vs_ewma_normal_p": 0.88,
    "h5_coverage": 0.9,
    "h5_coverage_worst_year": 0.87,
    "h5_coverage_worst_ticker": 0.86,
    "h5_width": 0.11,
    "h5_pinball_gain": 0.004,
    "h5_coverage_ewma_normal": 0.89,
    "h5_dm_pinball_vs_ewma_normal": -0.6,
    "h5_dm_pinball_vs_ewma_normal_p": 0.72,
}


def write_lake(settings: Settings, sample_wide: pd.DataFrame, workdir: Path) -> Lake:
    """Ingest :data:`TICKERS` from 2017 to :data:`WATERMARK` into the settings' lake."""
    subset = sample_wide.loc[sample_wide["Date"] >= "2017-01-01", ["Date", *TICKERS]]
    path = workdir / "prices.csv"
    subset.to_csv(path, index=False)
    lake = Lake.from_settings(settings)
    ingest_files(lake, [path], until=WATERMARK)
    return lake


def fit_small(lake: Lake, seed: int = 0) -> QuantileForecaster:
    """A :data:`SMALL` forecaster fitted on the whole lake."""
    config = SMALL.model_copy(update={"booster": SMALL.booster.model_copy(update={"seed": seed})})
    prices = lake.read_prices()
    return QuantileForecaster(config).fit(build_features(prices), prices)


def register_champion(settings: Settings, lake: Lake, forecaster: QuantileForecaster) -> str:
    """Log and register ``forecaster`` as a new version, promote it to @champion; its version."""
    from jobs.common import open_registry
    from registry.tracking import TrainingRecord, log_candidate

    registry = open_registry(settings)
    prices = lake.read_prices()
    record = TrainingRecord(
        forecaster=forecaster,
        mode="full",
        prices=prices[["date", "ticker", "adj_close"]],
        features_example=latest_features(build_features(prices)).head(3),
        lake_uri=lake.uri,
        lake_version=lake.snapshot().version,
        metrics=METRICS,
        metrics_source="serving tests (no backtest)",
        model_card="# finsimples-forecaster (test)",
        figures={},
    )
    logged = log_candidate(
        record, experiment=settings.experiment_name, model_name=settings.model_name
    )
    registry.promote(logged.version, reason="serving tests", actor="tests")
    return str(logged.version)


class BiasedForecaster(QuantileForecaster):
    """A broken model: every raw quantile pushed up by one volatility unit."""

    def _raw(self, features: pd.DataFrame):  # type: ignore[no-untyped-def]
        return super()._raw(features) + 1.0


def break_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``QuantileForecaster.update`` return a :class:`BiasedForecaster` (a broken update)."""
    real_update = QuantileForecaster.update

    def broken_update(self, features, prices, **engine):  # type: ignore[no-untyped-def]
        updated = real_update(self, features, prices, **engine)
        updated.__class__ = BiasedForecaster
        return updated

    monkeypatch.setattr(QuantileForecaster, "update", broken_update)
