"""The forecasts' track record: what the champion served each day, scored once prices are known.

Pure: DataFrames in, DataFrames and plain dicts out (``jobs.track_record`` reads and
writes the lake). Three steps:

1. :func:`forecast_log`: the champion's forecasts of one day, one row per (ticker, horizon),
   with the price quantiles the API serves (``last_price * exp(q)``, rounded as the API rounds);
2. :func:`score_forecasts`: each logged forecast whose target date has a price. The target date
   is the h-th trading day after the forecast's as-of date **in the ticker's own price history**
   (a holiday of that exchange is simply not a row). Exchange calendars come in a later issue;
   until then a ticker missing a day it traded (a vendor gap) pushes its target one row later.
   Scores are scale-free, relative to the forecast's last price:

   - ``covered``: the realized price inside the headline interval (``low <= y <= high``);
   - ``pinball``: the pinball loss of every served quantile on ``y / last_price`` against
     ``q / last_price``, averaged over the quantiles (so 0.01 means 1% of the price);
   - ``width``: ``(high - low) / last_price``.

3. :func:`summarize`: over the last ``window_days`` trading days of target dates, per model
   version, horizon and ticker, and pooled per horizon over tickers and versions: what
   investors were served, whichever version served it (daily retrains make new versions, so a
   per-version record alone would never fill up).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from finsimples.forecast import trading_days_after
from finsimples.tickers import infer_listing

KEYS = ("as_of", "ticker", "horizon")
"""A logged forecast's identity (with the day it was logged on, one per file)."""
LOG_COLUMNS = (
    "as_of",
    "ticker",
    "horizon",
    "model_version",
    "due_date",
    "last_price",
    "low",
    "median",
    "high",
)
"""Columns every log has, before the ``q<level>`` price columns (one per served quantile)."""
SCORE_COLUMNS = (
    *LOG_COLUMNS[:4],
    "target_date",
    "last_price",
    "realized_price",
    "low",
    "median",
    "high",
    "covered",
    "pinball",
    "width",
)
SUMMARY_GROUPS = ("model_version", "horizon", "ticker")


def quantile_key(level: float) -> str:
    """The served path point's key of a quantile level: ``q0.05``."""
    return f"q{level:g}"


def forecast_log(
    quantiles: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    model_version: str,
    horizons: Iterable[int],
    interval_levels: tuple[float, float],
) -> pd.DataFrame:
    """The log rows of one day's forecasts.

    Args:
        quantiles: ``QuantileForecaster.predict`` output: log-return quantiles indexed by
            (date, ticker, horizon), one origin date per ticker (its as-of date).
        prices: Prices (``ticker``, ``date``, ``adj_close``) holding each forecast's as-of
            close, its last price.
        model_version: The registry version that made them.
        horizons: The horizons to log (the evaluated ones, ``training.eval_horizons``).
        interval_levels: The headline interval's quantile levels, e.g. ``(0.05, 0.95)``.

    Returns:
        One row per (ticker, horizon): :data:`LOG_COLUMNS`, then one ``q<level>`` column per
        quantile level; ``due_date`` is the API's target date (the ticker's exchange
        sessions when its exchange is known, else weekdays).
    """
    wanted = sorted(set(horizons))
    levels = [float(c) for c in quantiles.columns]
    rows = quantiles[quantiles.index.get_level_values("horizon").isin(wanted)]
    index = rows.index.to_frame(index=False)
    closes = prices.assign(date=pd.to_datetime(prices["date"])).set_index(["date", "ticker"])
    wanted_keys = pd.MultiIndex.from_arrays([pd.to_datetime(index["date"]), index["ticker"]])
    last = closes["adj_close"].reindex(wanted_keys).to_numpy(dtype=float)
    prices = np.round(last[:, None] * np.exp(rows.to_numpy(dtype=float)), 4)
    as_of = pd.to_datetime(index["date"]).dt.date
    frame = pd.DataFrame(
        {
            "as_of": as_of,
            "ticker": index["ticker"].astype(str),
            "horizon": index["horizon"].astype("int64"),
            "model_version": str(model_version),
            "due_date": [
                _due_date(day, int(h), str(ticker))
                for day, h, ticker in zip(as_of, index["horizon"], index["ticker"], strict=True)
            ],
            "last_price": last,
        }
    )
    by_level = {level: prices[:, i] for i, level in enumerate(levels)}
    low, high = interval_levels
    frame["low"], frame["median"], frame["high"] = by_level[low], by_level[0.5], by_level[high]
    for level in levels:
        frame[quantile_key(level)] = by_level[level]
    return frame.sort_values(["ticker", "horizon"]).reset_index(drop=True)


def _due_date(day: date, horizon: int, ticker: str) -> date:
    """The session ``horizon`` sessions after ``day`` on the ticker's inferred exchange."""
    listing = infer_listing(ticker)
    try:
        return trading_days_after(day, horizon, listing.exchange if listing else None)[-1]
    except ValueError:  # a day outside the calendar's years
        return trading_days_after(day, horizon)[-1]


def _levels(frame: pd.DataFrame) -> list[tuple[float, str]]:
    found = []
    for column in frame.columns:
        if str(column).startswith("q"):
            try:
                found.append((float(str(column)[1:]), str(column)))
            except ValueError:
                continue
    return sorted(found)


def target_dates(logs: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Each log row with its ``target_date`` and ``realized_price``; NaT/NaN where not known.

    The target is the ``horizon``-th row after ``as_of`` in the ticker's own prices; a log whose
    as-of date is not one of the ticker's rows never matures.
    """
    rows = prices[["ticker", "date", "adj_close"]].assign(date=pd.to_datetime(prices["date"]))
    rows = rows.sort_values(["ticker", "date"]).reset_index(drop=True)
    rows["position"] = rows.groupby("ticker").cumcount()
    keyed = logs.assign(_date=pd.to_datetime(logs["as_of"]), _row=np.arange(len(logs)))
    origin = keyed.merge(
        rows[["ticker", "date", "position"]].rename(columns={"date": "_date"}),
        on=["ticker", "_date"],
        how="left",
    )
    origin["position"] = origin["position"] + origin["horizon"]
    target = origin.merge(
        rows.rename(columns={"date": "target_date", "adj_close": "realized_price"}),
        on=["ticker", "position"],
        how="left",
    )
    target = target.sort_values("_row").set_index(logs.index)
    out = logs.copy()
    out["target_date"] = pd.to_datetime(target["target_date"])
    out["realized_price"] = target["realized_price"].astype(float)
    return out


def score_forecasts(logs: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Score every logged forecast whose target date has a price.

    Args:
        logs: Rows of :func:`forecast_log` (any number of days).
        prices: The lake's prices (``ticker``, ``date``, ``adj_close``), covering each log's
            as-of date up to its targets.

    Returns:
        :data:`SCORE_COLUMNS`, one row per matured forecast; ``target_date`` as a date.
    """
    resolved = target_dates(logs, prices)
    matured = resolved[resolved["target_date"].notna()].reset_index(drop=True)
    if matured.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in SCORE_COLUMNS})
    last = matured["last_price"].to_numpy(dtype=float)
    realized = matured["realized_price"].to_numpy(dtype=float)
    y = realized / last
    losses = []
    for level, column in _levels(matured):
        diff = y - matured[column].to_numpy(dtype=float) / last
        losses.append(np.maximum(level * diff, (level - 1) * diff))
    out = matured[list(LOG_COLUMNS[:4])].copy()
    out["target_date"] = matured["target_date"].dt.date
    out["last_price"] = last
    out["realized_price"] = realized
    for column in ("low", "median", "high"):
        out[column] = matured[column].to_numpy(dtype=float)
    out["covered"] = (realized >= out["low"]) & (realized <= out["high"])
    out["pinball"] = np.nanmean(np.stack(losses), axis=0)
    out["width"] = (out["high"] - out["low"]) / last
    return out[list(SCORE_COLUMNS)]


def _dtype(column: str) -> str:
    if column in ("horizon",):
        return "int64"
    if column == "covered":
        return "bool"
    if column in ("as_of", "ticker", "model_version", "target_date"):
        return "object"
    return "float64"


def window_start(trading_dates: Sequence[date], end: date, window_days: int) -> date | None:
    """The first of the last ``window_days`` trading dates up to ``end`` (None: no date)."""
    upto = sorted(d for d in set(trading_dates) if d <= end)
    return upto[-window_days] if len(upto) >= window_days else (upto[0] if upto else None)


def _aggregate(scores: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    grouped = scores.groupby(by, sort=True)
    return pd.DataFrame(
        {
            "coverage": grouped["covered"].mean(),
            "pinball": grouped["pinball"].mean(),
            "width": grouped["width"].mean(),
            "n": grouped["covered"].size().astype("int64"),
        }
    ).reset_index()


def summarize(
    scores: pd.DataFrame, start: date | None, end: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The record over scores whose target date is in ``[start, end]``.

    Returns:
        Per (model_version, horizon, ticker), and pooled per horizon: coverage (share
        covered), pinball and width (means), n.
    """
    inside = scores[(scores["target_date"] <= end)]
    if start is not None:
        inside = inside[inside["target_date"] >= start]
    if inside.empty:
        empty: dict[str, list[float]] = {"coverage": [], "pinball": [], "width": [], "n": []}
        return (
            pd.DataFrame({**{g: [] for g in SUMMARY_GROUPS}, **empty}),
            pd.DataFrame({"horizon": [], **empty}),
        )
    return _aggregate(inside, list(SUMMARY_GROUPS)), _aggregate(inside, ["horizon"])


def summary_record(
    pooled: pd.DataFrame,
    *,
    as_of: date,
    window_start: date | None,
    window_days: int,
    interval: float,
) -> dict[str, Any]:
    """The JSON record the replicas read: pooled per horizon, with the window it covers."""
    return {
        "as_of": as_of.isoformat(),
        "window_days": window_days,
        "window_start": window_start.isoformat() if window_start else None,
        "interval": interval,
        "horizons": [
            {
                "horizon": int(horizon),
                "coverage": float(coverage),
                "pinball": float(pinball),
                "width": float(width),
                "n": int(n),
            }
            for horizon, coverage, pinball, width, n in pooled.sort_values("horizon")[
                ["horizon", "coverage", "pinball", "width", "n"]
            ].to_numpy(dtype=float)
        ],
    }
