"""What one lake version gives the predictor: every ticker's window (first and last dates,
listing, staleness) and the latest feature row of each ticker it can forecast.

Read with the very functions training used (``training.features.build_features`` then
``latest_features``), so serving cannot drift from training. ``bentos.predictor`` swaps one
:class:`LakeView` for the next whole when the lake commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from finsimples.adjustment import Jump, JumpRule, unexplained_jumps
from finsimples.forecast import LOOKBACK_DAYS, Forecast
from finsimples.freshness import Lag, lag_of
from finsimples.lake import Lake, Snapshot
from finsimples.tickers import Listing, infer_listing
from training.features import SIGMA_COLUMN, build_features, latest_features


@dataclass(frozen=True)
class TickerWindow:
    """One ticker of the lake: its first and last dates, and whether it can be forecast.

    ``sessions_behind``: sessions of its exchange from its last date to the lake's newest;
    ``stale``: more than the predictor's ``stale_after_sessions`` (not forecast).
    """

    ticker: str
    first_date: date
    last_date: date
    forecastable: bool
    exchange: str | None = None  # the lake's tickers table (None: not listed)
    currency: str | None = None
    name: str | None = None
    timezone: str | None = None
    sessions_behind: int = 0
    stale: bool = False


@dataclass
class LakeView:
    """Everything read from one lake version; replaced whole, so readers never see a mix."""

    lake_version: int
    key: tuple[int, int]  # the snapshot's (prices, tickers) versions
    windows: dict[str, TickerWindow]
    rows: dict[str, pd.DataFrame]  # each ticker's latest feature row, indexed (date, ticker)
    last_prices: dict[str, float]
    as_of: dict[str, date] = field(default_factory=dict)  # each row's date
    daily_vol: dict[str, float] = field(default_factory=dict)  # each row's SIGMA_COLUMN
    forecasts: dict[str, Forecast] = field(default_factory=dict)  # whole paths, on first use
    listings: dict[str, Listing] = field(default_factory=dict)  # exchange and currency
    stale: dict[str, Lag] = field(default_factory=dict)  # tickers refused as stale
    jumps: dict[str, Jump] = field(default_factory=dict)  # refused: a split no event explains


def ticker_window(
    ticker: str, first: date, forecastable: bool, listing: Listing | None, lag: Lag, stale: bool
) -> TickerWindow:
    """A ticker's window, with its listing when the lake has one."""
    if listing is None:
        return TickerWindow(
            ticker, first, lag.last_date, forecastable, sessions_behind=lag.sessions, stale=stale
        )
    return TickerWindow(
        ticker,
        first,
        lag.last_date,
        forecastable,
        listing.exchange,
        listing.currency,
        listing.name or None,
        listing.timezone,
        lag.sessions,
        stale,
    )


def read_view(
    lake: Lake, snapshot: Snapshot, stale_after_sessions: int, jump_rule: JumpRule
) -> LakeView:
    """What the predictor serves from ``snapshot``: each ticker's window, and the latest feature
    row of each one it can forecast (not stale, no unexplained jump, no recent gap)."""
    stats = snapshot.tickers
    if not stats:
        return LakeView(snapshot.version, snapshot.key, {}, {}, {})
    as_of = max(s.last for s in stats.values())
    window = lake.read_prices(start=as_of - timedelta(days=LOOKBACK_DAYS), snapshot=snapshot)
    try:
        latest = latest_features(build_features(window))
    except ValueError:  # not one ticker has MIN_HISTORY_DAYS rows in the window
        latest = pd.DataFrame()
    last_rows = window.groupby("ticker", sort=True).tail(1).set_index("ticker")
    listings = lake.listings(snapshot)
    lags: dict[str, Lag] = {}
    for ticker, s in stats.items():
        listing = listings.get(ticker) or infer_listing(ticker)
        lags[ticker] = lag_of(ticker, s.last, as_of, listing.exchange if listing else None)
    stale = {t: lag for t, lag in lags.items() if lag.is_stale(stale_after_sessions)}
    # The latest jump of each ticker: its window would read a fake crash or rally.
    jumps = {j.ticker: j for j in unexplained_jumps(window, jump_rule)}
    rows: dict[str, pd.DataFrame] = {}
    for key, row in latest.groupby(level="ticker", sort=False):  # one row per ticker
        ticker = str(key)
        if ticker in stale or ticker in jumps:
            continue
        # A feature row dated before the ticker's own last price means a gap in its recent
        # history: forecasting from it would ignore the newest prices (the predict job's rule).
        if row.index.get_level_values("date")[0] == last_rows.loc[ticker, "date"]:
            rows[ticker] = row
    windows = {
        ticker: ticker_window(
            ticker, s.first, ticker in rows, listings.get(ticker), lags[ticker], ticker in stale
        )
        for ticker, s in stats.items()
    }
    # Forecast prices start from the close as traded (what investors see); the returns were
    # learnt on adj_close, so the adjusted path maps onto it. adj_close when no close.
    closes = last_rows["close"].fillna(last_rows["adj_close"]).astype(float).to_dict()
    prices = {t: float(closes[t]) for t in rows}
    dates = {
        t: pd.Timestamp(row.index.get_level_values("date")[0]).date() for t, row in rows.items()
    }
    vols = {t: float(row[SIGMA_COLUMN].iloc[0]) for t, row in rows.items()}
    return LakeView(
        snapshot.version,
        snapshot.key,
        windows,
        rows,
        prices,
        dates,
        vols,
        listings=listings,
        stale=stale,
        jumps=jumps,
    )
