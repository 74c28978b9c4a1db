"""The figures a backtest is judged by, named as they are logged and written to reports."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from finsimples.schemas import check_ticker
from training.config import TrainingConfig
from training.evaluation import Backtest
from training.plots import plot_calibration, plot_coverage_over_time, plot_fan_chart


def backtest_figures(
    backtest: Backtest, prices: pd.DataFrame, config: TrainingConfig, *, horizon: int = 5
) -> dict[str, Figure]:
    """Calibration and coverage-over-time of every method, and one ticker's fan chart."""
    model = f"model_{config.calibration}"
    shown = {k: v for k, v in backtest.forecasts.items() if k in (model, "ewma_normal", "zero")}
    tickers = backtest.forecasts[model].index.get_level_values("ticker")
    ticker = check_ticker(str(tickers.value_counts().idxmax()))  # it names a file
    return {
        f"calibration_h{horizon}": plot_calibration(shown, backtest.outcomes, horizon),
        f"coverage_over_time_h{horizon}": plot_coverage_over_time(
            shown, backtest.outcomes, horizon, config
        ),
        f"fan_{ticker}_h{horizon}": plot_fan_chart(
            backtest.forecasts[model], prices, ticker, horizon
        ),
    }
