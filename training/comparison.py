"""Forecasts of several fitted models on the same rows, and a backtest's summary re-scored.

The gate compares a candidate with its champion only on identical rows: for a refit of the same
configuration (or an incremental update) both fitted models forecast the latest dates with known
outcomes (``training.evaluation.recent_forecasts``); for a changed configuration both walk
forward over the same folds (``run_backtest`` with both as methods).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from training.config import TrainingConfig
from training.evaluation import Backtest
from training.metrics import coverage_breakdown, score_forecasts


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
