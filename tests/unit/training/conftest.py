"""Fixtures for the pure ML core: the bundled S&P sample in long format and synthetic panels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SAMPLE_CSV = Path("/work/shared/data/sp500_prices.csv.gz")


def melt_wide_prices(wide: pd.DataFrame) -> pd.DataFrame:
    """Wide ``Date, AAPL, AMD, ...`` adjusted closes -> long ``date, ticker, adj_close``."""
    long = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close").dropna()
    long = long.rename(columns={"Date": "date"})
    long["date"] = pd.to_datetime(long["date"]).dt.normalize()
    return long[["date", "ticker", "adj_close"]].reset_index(drop=True)


@pytest.fixture(scope="session")
def sample_prices() -> pd.DataFrame:
    """The whole bundled sample (20 tickers, 1990-2022) as a long frame."""
    if not SAMPLE_CSV.exists():
        pytest.skip(f"bundled sample {SAMPLE_CSV} not present")
    return melt_wide_prices(pd.read_csv(SAMPLE_CSV, parse_dates=["Date"]))


@pytest.fixture(scope="session")
def small_prices(sample_prices: pd.DataFrame) -> pd.DataFrame:
    """Four tickers, 2009-2016: enough for a quick fit with a one-year calibration window."""
    keep = sample_prices["ticker"].isin(["AAPL", "JNJ", "XOM", "AMD"])
    span = (sample_prices["date"] >= "2009-01-01") & (sample_prices["date"] < "2017-01-01")
    return sample_prices.loc[keep & span].reset_index(drop=True)


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
