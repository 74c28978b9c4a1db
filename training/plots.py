"""Backtest plots. Each function returns a new ``matplotlib.figure.Figure``.

Figures are built without pyplot, so no global state or GUI backend is touched; callers save
them (``fig.savefig(path)``) or log them wherever they like.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from training.config import TrainingConfig
from training.quantiles import to_price_quantiles
from training.targets import build_target_dates


def _at_horizon(frame: pd.DataFrame, outcomes: pd.Series, horizon: int):
    """Rows of one horizon with a known outcome: (forecast rows, outcomes)."""
    rows = frame.xs(horizon, level="horizon")
    y = outcomes.xs(horizon, level="horizon").reindex(rows.index)
    keep = y.notna().to_numpy()
    if not keep.any():
        raise ValueError(f"no forecast at horizon {horizon} has a known outcome")
    return rows.loc[keep], y.loc[keep]


def plot_calibration(
    forecasts: Mapping[str, pd.DataFrame], outcomes: pd.Series, horizon: int
) -> Figure:
    """Nominal quantile level vs the empirical share of outcomes at or below the quantile.

    Args:
        forecasts: Method name -> quantile frame.
        outcomes: Realized log returns on the (date, ticker, horizon) index.
        horizon: Horizon to show.

    Returns:
        Figure with one line per method and the diagonal of perfect calibration.
    """
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, frame in forecasts.items():
        rows, y = _at_horizon(frame, outcomes, horizon)
        levels = np.asarray(rows.columns, dtype=float)
        empirical = (y.to_numpy()[:, None] <= rows.to_numpy()).mean(axis=0)
        ax.plot(levels, empirical, marker="o", label=name)
    ax.set(
        xlabel="nominal quantile level",
        ylabel="share of outcomes at or below the quantile",
        title=f"Calibration, h = {horizon} trading days",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left")
    return fig


def plot_coverage_over_time(
    forecasts: Mapping[str, pd.DataFrame],
    outcomes: pd.Series,
    horizon: int,
    config: TrainingConfig,
    freq: str = "QS",
) -> Figure:
    """Coverage of the headline interval per period (all tickers pooled) for each method.

    Args:
        forecasts: Method name -> quantile frame.
        outcomes: Realized log returns.
        horizon: Horizon to show.
        config: Gives the interval levels and nominal coverage.
        freq: Pandas period alias of the buckets (default quarterly).

    Returns:
        Figure with one line per method and the nominal level.
    """
    lo, hi = config.interval_levels
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    for name, frame in forecasts.items():
        rows, y = _at_horizon(frame, outcomes, horizon)
        covered = (y >= rows[lo]) & (y <= rows[hi])
        dates = covered.index.get_level_values("date")
        series = covered.astype(float).groupby(dates).mean().resample(freq).mean()
        ax.plot(series.index, series.to_numpy(), marker=".", label=name)
    ax.axhline(config.interval_coverage, color="grey", linestyle="--", label="nominal")
    ax.set(
        ylabel=f"{config.interval_coverage:.0%} interval coverage",
        title=f"Coverage over time, h = {horizon} trading days",
        ylim=(0, 1.02),
    )
    ax.legend(loc="lower left")
    return fig


def plot_fan_chart(
    forecast: pd.DataFrame, prices: pd.DataFrame, ticker: str, horizon: int
) -> Figure:
    """Backtest fan chart: each forecast's price quantiles drawn at its target date.

    Args:
        forecast: Quantile frame of one method.
        prices: Long price panel (gives the realized path and the target dates).
        ticker: Ticker to draw.
        horizon: Horizon of the bands.

    Returns:
        Figure with the realized price and the outer / inner quantile bands.
    """
    rows = forecast.xs(horizon, level="horizon")
    rows = rows[rows.index.get_level_values("ticker") == ticker]
    if rows.empty:
        raise ValueError(f"no forecast for ticker {ticker!r} at horizon {horizon}")
    own = prices.loc[prices["ticker"] == ticker].copy()
    own["date"] = pd.to_datetime(own["date"])
    last = own.set_index(["date", "ticker"])["adj_close"]
    indexed = pd.concat({horizon: rows}, names=["horizon"]).reorder_levels([1, 2, 0])
    bands = to_price_quantiles(indexed, last).droplevel("horizon")
    ends = build_target_dates(own, horizon)[horizon].reindex(bands.index)
    bands = bands.loc[ends.notna().to_numpy()]
    x = ends.dropna().to_numpy()
    levels = list(bands.columns)
    fig = Figure(figsize=(10, 4.5))
    ax = fig.add_subplot()
    span = own[
        (own["date"] >= rows.index.get_level_values("date").min()) & (own["date"] <= x.max())
    ]
    ax.plot(span["date"], span["adj_close"], color="black", linewidth=1, label="adj close")
    for k in range(len(levels) // 2):
        low, high = levels[k], levels[-1 - k]
        ax.fill_between(
            x,
            bands[low],
            bands[high],
            alpha=0.2 + 0.15 * k,
            color="tab:blue",
            linewidth=0,
            label=f"{low:g}-{high:g}",
        )
    if 0.5 in levels:
        ax.plot(x, bands[0.5], color="tab:blue", linewidth=0.8, label="median")
    ax.set(ylabel="price", title=f"{ticker}: {horizon}-day-ahead forecast bands (backtest)")
    ax.legend(loc="upper left")
    return fig
