"""Targets: log returns from the close of t to the close h trading days later (h = 1..H)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.prices import validate_prices


def build_targets(prices: pd.DataFrame, max_horizon: int) -> pd.DataFrame:
    """Log returns ``log(P[t+h] / P[t])`` on each ticker's own trading calendar.

    A target exists only when the price h rows later is in ``prices``, so cutting the prices
    at a date also purges every target that would reach past it.

    Args:
        prices: Long daily price frame (``date``, ``ticker``, ``adj_close``).
        max_horizon: Largest horizon h, in trading days.

    Returns:
        Frame indexed by (``date``, ``ticker``), sorted, with integer columns 1..max_horizon;
        NaN where the price at t+h is not available.
    """
    if max_horizon < 1:
        raise ValueError(f"max_horizon must be >= 1, got {max_horizon}")
    clean = validate_prices(prices)
    log_price = np.log(clean["adj_close"])
    grouped = log_price.groupby(clean["ticker"], sort=False)
    data = {h: grouped.shift(-h) - log_price for h in range(1, max_horizon + 1)}
    out = pd.DataFrame(data)
    out.index = pd.MultiIndex.from_frame(clean[["date", "ticker"]])
    return out.sort_index()


def build_target_dates(prices: pd.DataFrame, max_horizon: int) -> pd.DataFrame:
    """The date on which each target of :func:`build_targets` becomes known.

    Args:
        prices: Long daily price frame.
        max_horizon: Largest horizon h.

    Returns:
        Frame shaped like :func:`build_targets` holding the date of t+h (NaT when unknown).
    """
    if max_horizon < 1:
        raise ValueError(f"max_horizon must be >= 1, got {max_horizon}")
    clean = validate_prices(prices)
    grouped = clean["date"].groupby(clean["ticker"], sort=False)
    out = pd.DataFrame({h: grouped.shift(-h) for h in range(1, max_horizon + 1)})
    out.index = pd.MultiIndex.from_frame(clean[["date", "ticker"]])
    return out.sort_index()
