"""Plots return matplotlib Figures built without pyplot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from training.baselines import EwmaNormalBaseline
from training.config import TrainingConfig
from training.features import MIN_HISTORY_DAYS, build_features
from training.plots import plot_calibration, plot_coverage_over_time, plot_fan_chart
from training.targets import build_targets


@pytest.fixture(scope="module")
def backtest_like():
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=MIN_HISTORY_DAYS + 120)
    prices = pd.concat(
        pd.DataFrame(
            {
                "date": dates,
                "ticker": t,
                "adj_close": 20 * np.exp(np.cumsum(rng.normal(0, 0.02, len(dates)))),
            }
        )
        for t in ("A", "B")
    )
    features = build_features(prices)
    forecast = EwmaNormalBaseline().predict(features)
    outcomes = build_targets(prices, 30).stack()
    outcomes.index = outcomes.index.set_names(["date", "ticker", "horizon"])
    return prices, {"ewma_normal": forecast}, outcomes


def test_each_plot_is_a_figure_with_data(backtest_like, tmp_path):
    prices, forecasts, outcomes = backtest_like
    figures = [
        plot_calibration(forecasts, outcomes, 5),
        plot_coverage_over_time(forecasts, outcomes, 1, TrainingConfig(), freq="MS"),
        plot_fan_chart(forecasts["ewma_normal"], prices, "A", 10),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert fig.axes
        assert fig.axes[0].has_data()
        fig.savefig(tmp_path / "plot.png")


def test_fan_chart_rejects_an_unknown_ticker(backtest_like):
    prices, forecasts, _ = backtest_like
    with pytest.raises(ValueError, match="no forecast for ticker 'ZZZ'"):
        plot_fan_chart(forecasts["ewma_normal"], prices, "ZZZ", 5)
