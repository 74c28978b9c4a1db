"""The forecast path's arithmetic: fast, and the very numbers of the straightforward version."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import finsimples.forecast as forecast_module
from bentos.predictor import Predictor
from finsimples.forecast import _expected_simple_returns, make_forecast, trading_days_after
from training.features import MIN_HISTORY_DAYS

LEVEL_SETS = [
    [0.05, 0.25, 0.5, 0.75, 0.95],
    [0.1, 0.5, 0.9],
    [0.0005, 0.5, 0.9995],  # knots on the averaging grid's ends
    [0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975],
]


def reference_expected_return(log_quantiles: np.ndarray, levels: list[float]) -> float:
    """One row, as first written: np.interp between knots, linear extrapolation beyond."""
    scores = norm.ppf(levels)
    grid = norm.ppf(np.linspace(0.0005, 0.9995, 1000))
    slope_lo = (log_quantiles[1] - log_quantiles[0]) / (scores[1] - scores[0])
    slope_hi = (log_quantiles[-1] - log_quantiles[-2]) / (scores[-1] - scores[-2])
    inside = np.interp(grid, scores, log_quantiles)
    below = log_quantiles[0] + (grid - scores[0]) * slope_lo
    above = log_quantiles[-1] + (grid - scores[-1]) * slope_hi
    values = np.where(grid < scores[0], below, np.where(grid > scores[-1], above, inside))
    return float(np.mean(np.exp(values)) - 1.0)


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_expected_returns_are_bit_identical_to_the_reference(levels: list[float]) -> None:
    rng = np.random.default_rng(7)
    rows = np.sort(rng.normal(0, 0.08, size=(40, len(levels))), axis=1)
    rows[::5, 1] = rows[::5, 0]  # tied quantiles: a zero slope
    computed = _expected_simple_returns(rows, levels)
    assert computed.tolist() == [reference_expected_return(row, levels) for row in rows]


@pytest.mark.parametrize(
    "day", [date(2022, 11, 30), date(2022, 12, 2), date(2022, 12, 3), date(2022, 12, 4)]
)
def test_trading_days_are_the_weekdays_pandas_counts(day: date) -> None:
    expected = [
        d.date() for d in pd.bdate_range(pd.Timestamp(day) + pd.offsets.BDay(1), periods=30)
    ]
    assert trading_days_after(day, 30) == expected
    assert trading_days_after(datetime(2022, 12, 3, 16, 0), 2) == [
        date(2022, 12, 5),
        date(2022, 12, 6),
    ]


def test_a_cut_path_is_what_make_forecast_returns(predictor: Predictor) -> None:
    row = predictor._view.rows["KO"]
    quantiles = predictor.forecaster.predict(row)
    price = predictor._view.last_prices["KO"]
    for horizon in range(1, predictor.max_horizon + 1):
        direct = make_forecast(
            quantiles, ticker="KO", last_price=price, horizon=horizon, interval=predictor.interval
        )
        assert predictor.forecast("KO", horizon) == direct
    whole = predictor.forecast("KO", predictor.max_horizon)
    with pytest.raises(ValueError, match=r"outside 1\.\.30"):
        whole.up_to(31)


def test_lookback_days_is_computed_on_use() -> None:
    assert int(MIN_HISTORY_DAYS * 1.6) + 30 == forecast_module.LOOKBACK_DAYS
    with pytest.raises(AttributeError):
        _ = forecast_module.NO_SUCH_NAME  # type: ignore[attr-defined]
