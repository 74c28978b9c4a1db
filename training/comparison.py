"""Forecasts of several fitted models on the same rows, and a backtest's summary re-scored.

The gate compares a candidate with its champion only on identical rows: for a refit of the same
configuration (or an incremental update) both fitted models forecast the latest dates with known
outcomes (:func:`recent_forecasts`); for a changed configuration both walk forward over the same
folds (``run_backtest`` with both as methods).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from training.config import TrainingConfig
from training.evaluation import Backtest
from training.forecaster import QuantileForecaster
from training.metrics import coverage_breakdown, score_forecasts
from training.targets import build_targets


def recent_forecasts(
    models: Mapping[str, QuantileForecaster],
    features: pd.DataFrame,
    prices: pd.DataFrame,
    config: TrainingConfig,
    days: int,
) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Each model's served forecasts (``predict_online``) for the last ``days`` feature dates.

    Args:
        models: Name -> fitted forecaster.
        features: ``build_features(prices)`` through the last date.
        prices: The price panel the features come from.
        config: Gives ``max_horizon`` for the outcomes.
        days: How many of the latest feature dates to forecast.

    Returns:
        ``(frames, outcomes)``: name -> quantile frame, and the realized log returns on the
        frames' index (NaN where the outcome is not known yet).

    Raises:
        ValueError: fewer than ``days`` feature dates.
    """
    features = features.sort_index()
    dates = features.index.get_level_values("date").unique().sort_values()
    if len(dates) < days:
        raise ValueError(f"recent scoring needs {days} feature dates, got {len(dates)}")
    start = dates[-days]
    recent = prices.loc[pd.to_datetime(prices["date"]) >= start]
    outcomes = build_targets(recent, config.max_horizon).stack().rename("outcome")
    outcomes.index = outcomes.index.set_names(["date", "ticker", "horizon"])
    frames = {name: m.predict_online(features, prices, start) for name, m in models.items()}
    index = next(iter(frames.values())).index
    return frames, outcomes.reindex(index)


def rescore(backtest: Backtest, name: str, frame: pd.DataFrame, config: TrainingConfig) -> Backtest:
    """The backtest with method ``name``'s forecasts replaced by ``frame`` and re-scored."""
    scores = score_forecasts(frame, backtest.outcomes, config).assign(method=name).reset_index()
    coverage = coverage_breakdown(frame, backtest.outcomes, backtest.sigma, config)
    others = backtest.scores.drop(index=name, level="method").reset_index()
    return replace(
        backtest,
        forecasts={**backtest.forecasts, name: frame},
        scores=pd.concat([others, scores], ignore_index=True).set_index(["method", "horizon"]),
        coverage=pd.concat(
            [backtest.coverage[backtest.coverage.method != name], coverage.assign(method=name)],
            ignore_index=True,
        ),
    )
