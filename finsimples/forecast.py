"""The forecast answer: a price path with calibrated quantiles, shared by the CLI and the API."""

from __future__ import annotations

import datetime as dt
import difflib

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import norm

from training.features import MIN_HISTORY_DAYS
from training.quantiles import prob_gain

# Calendar days that surely hold MIN_HISTORY_DAYS trading days (weekends, holidays, gaps).
LOOKBACK_DAYS = int(MIN_HISTORY_DAYS * 1.6) + 30


class PathPoint(BaseModel):
    """The forecast for one trading day ahead."""

    model_config = ConfigDict(frozen=True)

    day: int = Field(description="trading days after as_of (1..horizon)")
    # `dt.date`, not `date`: the field is named `date` and would shadow the type.
    date: dt.date = Field(description="the trading day (weekdays; exchange holidays not known)")
    prices: dict[str, float] = Field(description="price quantiles, keys like 'q0.05'")
    returns: dict[str, float] = Field(description="simple-return quantiles, keys like 'q0.05'")
    expected_return: float = Field(description="mean simple return of the forecast distribution")
    prob_gain: float = Field(ge=0, le=1, description="probability the price is above last_price")


class Forecast(BaseModel):
    """A forecast of one ticker over ``horizon_days`` trading days."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    as_of: dt.date = Field(description="last price date used")
    last_price: float
    horizon_days: int
    interval: float = Field(description="nominal coverage of the q-low..q-high interval, e.g. 0.9")
    path: list[PathPoint]


def trading_days_after(day: dt.date, count: int) -> list[dt.date]:
    """The next ``count`` weekdays after ``day``."""
    return [d.date() for d in pd.bdate_range(pd.Timestamp(day) + pd.offsets.BDay(1), periods=count)]


def make_forecast(
    quantiles: pd.DataFrame, *, ticker: str, last_price: float, horizon: int, interval: float
) -> Forecast:
    """Build the answer from one origin's quantile frame (log returns, horizons 1..H).

    Args:
        quantiles: quantile frame rows of a single (date, ticker), indexed by
            (date, ticker, horizon) with quantile levels as columns.
        ticker: the ticker.
        last_price: the adjusted close at the origin.
        horizon: how many days of the path to return.
        interval: nominal coverage of the outer quantile pair.
    """
    rows = quantiles[quantiles.index.get_level_values("horizon") <= horizon]
    as_of = pd.Timestamp(rows.index.get_level_values("date")[0]).date()
    levels = [float(c) for c in rows.columns]
    gains = prob_gain(rows).to_numpy()
    log_q = rows.to_numpy(dtype=float)
    dates = trading_days_after(as_of, horizon)
    path = []
    for i, h in enumerate(rows.index.get_level_values("horizon")):
        keys = [f"q{level:g}" for level in levels]
        path.append(
            PathPoint(
                day=int(h),
                date=dates[i],
                prices={
                    k: round(last_price * float(np.exp(v)), 4)
                    for k, v in zip(keys, log_q[i], strict=True)
                },
                returns={
                    k: round(float(np.expm1(v)), 6) for k, v in zip(keys, log_q[i], strict=True)
                },
                expected_return=round(_expected_simple_return(log_q[i], levels), 6),
                prob_gain=round(float(gains[i]), 4),
            )
        )
    return Forecast(
        ticker=ticker,
        as_of=as_of,
        last_price=last_price,
        horizon_days=horizon,
        interval=interval,
        path=path,
    )


def _expected_simple_return(log_quantiles: np.ndarray, levels: list[float]) -> float:
    """E[exp(r)] - 1 for the distribution the quantiles describe.

    Averages exp(r) over a fine grid of levels, interpolating the quantile function in normal
    scores between the given levels and extrapolating linearly in them beyond the outermost.
    """
    scores = norm.ppf(levels)
    grid = np.linspace(0.0005, 0.9995, 1000)
    grid_scores = norm.ppf(grid)
    slope_lo = (log_quantiles[1] - log_quantiles[0]) / (scores[1] - scores[0])
    slope_hi = (log_quantiles[-1] - log_quantiles[-2]) / (scores[-1] - scores[-2])
    inside = np.interp(grid_scores, scores, log_quantiles)
    below = log_quantiles[0] + (grid_scores - scores[0]) * slope_lo
    above = log_quantiles[-1] + (grid_scores - scores[-1]) * slope_hi
    values = np.where(
        grid_scores < scores[0], below, np.where(grid_scores > scores[-1], above, inside)
    )
    return float(np.mean(np.exp(values)) - 1.0)


def suggest_tickers(ticker: str, known: list[str]) -> list[str]:
    """Up to three known tickers close to ``ticker``, for "unknown ticker" answers."""
    return difflib.get_close_matches(ticker, known, n=3, cutoff=0.5)
