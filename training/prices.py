"""The price panel every training function takes: validation at the boundary of the core."""

from __future__ import annotations

import numpy as np
import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("date", "ticker", "adj_close")


def validate_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """Check a long daily price frame and return a clean copy sorted by (ticker, date).

    Only ``date``, ``ticker`` and ``adj_close`` are kept: open/high/low/close/volume may be
    missing in the lake and nothing here relies on them.

    Args:
        prices: Long frame with columns ``date`` (datetime-like, one row per trading day),
            ``ticker`` (str) and ``adj_close`` (float > 0), unique per (ticker, date).

    Returns:
        A new frame with exactly those three columns, ``date`` as normalized datetime64[ns],
        sorted by ticker then date, with a fresh RangeIndex.

    Raises:
        ValueError: If the frame is empty, a column is missing, a date cannot be parsed, a
            price is missing, non-finite or not positive, or a (ticker, date) pair repeats.
            The message names the column, the offending value and what was expected.
    """
    if not isinstance(prices, pd.DataFrame):
        raise ValueError(f"prices must be a pandas DataFrame, got {type(prices).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(
            f"prices is missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)}, "
            f"got {list(prices.columns)}"
        )
    if prices.empty:
        raise ValueError("prices is empty: expected at least one (date, ticker, adj_close) row")

    frame = prices.loc[:, list(REQUIRED_COLUMNS)].copy()
    try:
        frame["date"] = pd.to_datetime(frame["date"]).dt.normalize().astype("datetime64[ns]")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"prices.date must be datetime-like: {exc}") from exc
    if frame["date"].isna().any():
        raise ValueError("prices.date has missing values; expected one date per row")
    if frame["ticker"].isna().any():
        raise ValueError("prices.ticker has missing values; expected a ticker string per row")
    frame["ticker"] = frame["ticker"].astype(str)

    price = pd.to_numeric(frame["adj_close"], errors="coerce").astype("float64")
    bad = ~np.isfinite(price.to_numpy()) | (price.to_numpy() <= 0)
    if bad.any():
        row = frame.loc[bad].iloc[0]
        value = prices.loc[row.name, "adj_close"]
        raise ValueError(
            f"prices.adj_close must be a finite number > 0; got {value!r} for ticker "
            f"{row['ticker']!r} on {row['date'].date()} ({int(bad.sum())} bad rows)"
        )
    frame["adj_close"] = price

    duplicated = frame.duplicated(subset=["ticker", "date"])
    if duplicated.any():
        row = frame.loc[duplicated].iloc[0]
        raise ValueError(
            f"prices has repeated (ticker, date) rows, e.g. ({row['ticker']!r}, "
            f"{row['date'].date()}); expected one row per ticker and trading day"
        )
    return frame.sort_values(["ticker", "date"], kind="mergesort").reset_index(drop=True)
