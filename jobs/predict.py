"""The predict job: the champion's forecast of one ticker, from the lake, with no server."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from finsimples.adjustment import JumpRule, unexplained_jumps
from finsimples.forecast import LOOKBACK_DAYS, Forecast, make_forecast, suggest_tickers
from finsimples.freshness import StaleTickerError, check_fresh, lag_of
from finsimples.lake import Lake
from finsimples.schemas import is_valid_ticker
from finsimples.settings import Settings
from finsimples.tickers import infer_listing
from jobs.common import JobError, load_champion, open_registry
from training.features import MIN_HISTORY_DAYS, build_features, latest_features


def unknown_ticker_message(ticker: str, known: list[str]) -> str:
    """'unknown ticker X' with the closest known tickers, for the CLI and the API."""
    close = suggest_tickers(ticker, known)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown ticker {ticker!r}{hint}"


def as_traded(rows: pd.DataFrame) -> float:
    """The last price as traded: the forecast's returns (learnt on ``adj_close``) start from
    the close an investor sees; files with adjusted closes only give ``adj_close``."""
    last = rows.iloc[-1]
    return float(last["adj_close"] if pd.isna(last["close"]) else last["close"])


def predict(settings: Settings, ticker: str, horizon: int) -> tuple[Forecast, str]:
    """Forecast ``ticker`` over ``horizon`` trading days with the champion.

    Returns:
        The forecast and the champion's version.

    Raises:
        JobError: invalid ticker or horizon, unknown ticker, stale ticker (its prices stop more
            than ``settings.stale_after_sessions`` sessions before the lake's newest), a recent
            jump like a split no event explains (naming its date), too little history, no
            champion.
    """
    ticker = ticker.strip()
    ticker = ticker.upper() if ticker.isascii() else ticker  # a long-s 'spy' is not SPY
    max_h = settings.training.max_horizon
    if not is_valid_ticker(ticker):
        raise JobError(f"ticker {ticker!r} does not look like a ticker (e.g. PETR4, BRK.B)")
    if not 1 <= horizon <= max_h:
        raise JobError(f"horizon {horizon} is outside 1..{max_h} trading days")
    lake = Lake.from_settings(settings)
    watermarks = lake.watermarks()
    if not watermarks:
        raise JobError(f"the lake at {lake.uri} is empty: run `finsimples ingest PATH` first")
    if ticker not in watermarks:
        raise JobError(unknown_ticker_message(ticker, sorted(watermarks)))
    as_of = max(watermarks.values())
    listing = lake.listings().get(ticker) or infer_listing(ticker)
    lag = lag_of(ticker, watermarks[ticker], as_of, listing.exchange if listing else None)
    try:
        check_fresh(lag, settings.stale_after_sessions)
    except StaleTickerError as exc:
        raise JobError(str(exc)) from exc
    champion = load_champion(open_registry(settings))
    # Every ticker's recent window: cross-sectional features rank the ticker among the others.
    window = lake.read_prices(start=as_of - timedelta(days=LOOKBACK_DAYS))
    own = window[window["ticker"] == ticker]
    try:
        latest = latest_features(build_features(window))
    except ValueError as exc:  # not one ticker has enough history
        raise JobError(f"{ticker}: {exc}") from exc
    row = latest[latest.index.get_level_values("ticker") == ticker]
    if row.empty or row.index.get_level_values("date")[0] != own["date"].max():
        raise JobError(
            f"{ticker} has {len(own)} recent prices; forecasts need {MIN_HISTORY_DAYS} "
            "consecutive trading days of history"
        )
    jumps = unexplained_jumps(own, JumpRule.from_settings(settings))
    if jumps:
        raise JobError(
            f"{jumps[-1]}: not forecast; ingest its event (ticker,ex_date,kind,value) first"
        )
    quantiles = champion.forecaster.predict(row)
    forecast = make_forecast(
        quantiles,
        ticker=ticker,
        last_price=as_traded(own),
        horizon=horizon,
        interval=settings.training.interval_coverage,
        listing=listing,
    )
    return forecast, str(champion.version.version)
