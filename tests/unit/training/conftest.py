"""Fixtures for the pure ML core: the bundled S&P sample in long format and synthetic panels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SAMPLE_CSV = Path(__file__).parent / "data" / "sp500_4tickers_2009_2016.csv.gz"
"""AAPL, AMD, JNJ, XOM adjusted closes 2009-2016, cut from the bundled S&P sample."""


def melt_wide_prices(wide: pd.DataFrame) -> pd.DataFrame:
    """Wide ``Date, AAPL, AMD, ...`` adjusted closes -> long ``date, ticker, adj_close``."""
    long = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close").dropna()
    long = long.rename(columns={"Date": "date"})
    long["date"] = pd.to_datetime(long["date"]).dt.normalize()
    return long[["date", "ticker", "adj_close"]].reset_index(drop=True)


@pytest.fixture(scope="session")
def small_prices() -> pd.DataFrame:
    """Four real tickers, 2009-2016: enough for a quick fit with a one-year calibration window."""
    return melt_wide_prices(pd.read_csv(SAMPLE_CSV, parse_dates=["Date"]))


def random_prices(
    seed: int, tickers: int = 3, days: int = 320, gap_share: float = 0.0
) -> pd.DataFrame:
    """A random-walk panel with stochastic vol; ``gap_share`` drops days per ticker at random."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=days)
    frames = []
    for i in range(tickers):
        vol = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, days)))
        price = 50 * np.exp(np.cumsum(rng.normal(0, 1, days) * vol))
        keep = rng.random(days) >= gap_share
        frames.append(
            pd.DataFrame({"date": dates[keep], "ticker": f"T{i}", "adj_close": price[keep]})
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def make_prices() -> Callable[..., pd.DataFrame]:
    """Factory fixture for :func:`random_prices`."""
    return random_prices
