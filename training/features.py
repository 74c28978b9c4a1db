"""Features known at the close of day t: one function shared by training and serving.

Every per-ticker feature is a backward-looking window on that ticker's own trading days, and
every cross-sectional feature compares tickers on the same date, so a feature at t never sees a
price after t. Serving calls :func:`build_features` on the latest ``MIN_HISTORY_DAYS`` rows of
each ticker (plus the rest of the universe for the cross-sectional columns) and gets the same
numbers the model was trained on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.prices import validate_prices

FEATURE_VERSION = "2025.1"
"""Bump whenever a definition below changes: models record it and serving checks it."""

RETURN_WINDOWS: tuple[int, ...] = (1, 5, 21, 63, 126, 252)
SCALED_RETURN_WINDOWS: tuple[int, ...] = (1, 5, 21, 63)
VOL_WINDOWS: tuple[int, ...] = (21, 63, 252)
EXTREME_WINDOWS: tuple[int, ...] = (63, 252)
MA_WINDOWS: tuple[int, ...] = (21, 50, 200)
RELATIVE_WINDOWS: tuple[int, ...] = (1, 5, 21, 63)
RANKED_COLUMNS: tuple[str, ...] = ("ret_5", "ret_21", "mom_12_1", "ewma_vol")

EWMA_LAMBDA = 0.94  # RiskMetrics daily decay
EWMA_SLOW_LAMBDA = 0.99
EWMA_WINDOW = 252  # weights truncated here so a fixed window reproduces training exactly
VOL_FLOOR = 1e-6  # keeps ratios finite for a price that did not move

MIN_HISTORY_DAYS = max(*RETURN_WINDOWS, *VOL_WINDOWS, EWMA_WINDOW, *MA_WINDOWS) + 1
"""Price rows per ticker (day t included) needed before the first feature row at t."""

SIGMA_COLUMN = "ewma_vol"
"""Daily RiskMetrics volatility at t: the scale of targets and of the EWMA-normal baseline."""

VOLATILITY_COLUMNS: tuple[str, ...] = (
    *(f"rvol_{w}" for w in VOL_WINDOWS),
    "ewma_vol",
    "ewma_vol_slow",
    "vol_ratio_fast_slow",
    "vol_ratio_21_252",
    "mkt_vol",
    "rel_vol",
    "rank_ewma_vol",
)
"""The columns that measure volatility: the target's scale (:data:`SIGMA_COLUMN`) and its kin."""

_TICKER_COLUMNS: tuple[str, ...] = (
    *(f"ret_{w}" for w in RETURN_WINDOWS),
    *(f"ret_z_{w}" for w in SCALED_RETURN_WINDOWS),
    "mom_12_1",
    *(f"rvol_{w}" for w in VOL_WINDOWS),
    "ewma_vol",
    "ewma_vol_slow",
    "vol_ratio_fast_slow",
    "vol_ratio_21_252",
    *(f"dist_high_{w}" for w in EXTREME_WINDOWS),
    *(f"dist_low_{w}" for w in EXTREME_WINDOWS),
    *(f"dist_ma_{w}" for w in MA_WINDOWS),
)
_CROSS_COLUMNS: tuple[str, ...] = (
    *(f"mkt_ret_{w}" for w in RELATIVE_WINDOWS),
    *(f"rel_ret_{w}" for w in RELATIVE_WINDOWS),
    "mkt_vol",
    "rel_vol",
    *(f"rank_{c}" for c in RANKED_COLUMNS),
)
FEATURE_COLUMNS: tuple[str, ...] = (*_TICKER_COLUMNS, *_CROSS_COLUMNS)


def ewma_volatility(log_returns: np.ndarray, decay: float, window: int) -> np.ndarray:
    """Daily EWMA volatility with weights ``decay**k`` truncated to ``window`` returns.

    Truncation (weights renormalized) makes the value at t a function of a fixed window only,
    so serving on the latest window reproduces training bit for bit (up to float rounding).

    Args:
        log_returns: One ticker's consecutive daily log returns (no NaN).
        decay: RiskMetrics lambda in (0, 1).
        window: Number of most recent returns that carry weight.

    Returns:
        Array of the same length; NaN until ``window`` returns are available.
    """
    out = np.full(log_returns.shape, np.nan)
    if len(log_returns) < window:
        return out
    weights = decay ** np.arange(window)[::-1]  # oldest first, newest gets weight 1
    weights /= weights.sum()
    windows = np.lib.stride_tricks.sliding_window_view(log_returns**2, window)
    out[window - 1 :] = np.sqrt(windows @ weights)
    return out


def _ticker_features(adj_close: np.ndarray) -> dict[str, np.ndarray]:
    """Backward-looking features of one ticker's price series (oldest first)."""
    price = pd.Series(adj_close)
    log_price = np.log(price)
    daily = log_price.diff()
    feats: dict[str, np.ndarray] = {}
    for w in RETURN_WINDOWS:
        feats[f"ret_{w}"] = (log_price - log_price.shift(w)).to_numpy()

    ewma = np.full(len(price), np.nan)
    ewma[1:] = ewma_volatility(daily.to_numpy()[1:], EWMA_LAMBDA, EWMA_WINDOW)
    ewma_slow = np.full(len(price), np.nan)
    ewma_slow[1:] = ewma_volatility(daily.to_numpy()[1:], EWMA_SLOW_LAMBDA, EWMA_WINDOW)
    scale = np.maximum(ewma, VOL_FLOOR)
    for w in SCALED_RETURN_WINDOWS:
        # Returns in units of their own expected spread: comparable across tickers and regimes.
        feats[f"ret_z_{w}"] = feats[f"ret_{w}"] / (scale * np.sqrt(w))
    feats["mom_12_1"] = feats["ret_252"] - feats["ret_21"]

    for w in VOL_WINDOWS:
        feats[f"rvol_{w}"] = daily.rolling(w, min_periods=w).std().to_numpy()
    feats["ewma_vol"] = ewma
    feats["ewma_vol_slow"] = ewma_slow
    # Vol mean-reverts: a fast vol far above the slow one predicts a narrower future spread.
    feats["vol_ratio_fast_slow"] = np.log(scale / np.maximum(ewma_slow, VOL_FLOOR))
    feats["vol_ratio_21_252"] = np.log(
        np.maximum(feats["rvol_21"], VOL_FLOOR) / np.maximum(feats["rvol_252"], VOL_FLOOR)
    )

    for w in EXTREME_WINDOWS:
        feats[f"dist_high_{w}"] = (log_price - np.log(price.rolling(w).max())).to_numpy()
        feats[f"dist_low_{w}"] = (log_price - np.log(price.rolling(w).min())).to_numpy()
    for w in MA_WINDOWS:
        feats[f"dist_ma_{w}"] = (log_price - np.log(price.rolling(w).mean())).to_numpy()
    return feats


def _add_cross_sectional(frame: pd.DataFrame) -> pd.DataFrame:
    """Compare each ticker with the equal-weighted universe present on the same date.

    With a single ticker on a date the market equals the ticker, so relative features are 0
    and ranks are 0.5: the model sees a neutral value instead of NaN.
    """
    by_date = frame.groupby("date", sort=False)
    for w in RELATIVE_WINDOWS:
        market = by_date[f"ret_{w}"].transform("mean")
        frame[f"mkt_ret_{w}"] = market
        frame[f"rel_ret_{w}"] = frame[f"ret_{w}"] - market
    frame["mkt_vol"] = by_date["ewma_vol"].transform("mean")
    frame["rel_vol"] = np.log(
        np.maximum(frame["ewma_vol"], VOL_FLOOR) / np.maximum(frame["mkt_vol"], VOL_FLOOR)
    )
    count = by_date["ewma_vol"].transform("count").to_numpy()
    for column in RANKED_COLUMNS:
        rank = by_date[column].rank(method="average").to_numpy()
        spread = np.where(count > 1, count - 1, 1)
        frame[f"rank_{column}"] = np.where(count > 1, (rank - 1) / spread, 0.5)
    return frame


def build_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Build the model features from a long daily price panel.

    Args:
        prices: Long frame with ``date``, ``ticker``, ``adj_close`` (see
            :func:`training.prices.validate_prices`); other columns are ignored.

    Returns:
        Frame indexed by (``date``, ``ticker``), sorted, with columns :data:`FEATURE_COLUMNS`
        (float64, no NaN). A ticker's first ``MIN_HISTORY_DAYS - 1`` rows are warm-up and are
        left out, so the first row of a ticker is its ``MIN_HISTORY_DAYS``-th trading day.

    Raises:
        ValueError: If the prices are invalid or no ticker has ``MIN_HISTORY_DAYS`` rows.
    """
    clean = validate_prices(prices)
    parts = []
    for ticker, rows in clean.groupby("ticker", sort=True):
        if len(rows) < MIN_HISTORY_DAYS:
            continue
        part = pd.DataFrame(_ticker_features(rows["adj_close"].to_numpy()))
        part.insert(0, "ticker", ticker)
        part.insert(0, "date", rows["date"].to_numpy())
        parts.append(part.iloc[MIN_HISTORY_DAYS - 1 :])
    if not parts:
        longest = int(clean.groupby("ticker").size().max())
        raise ValueError(
            f"too little price history: features need at least MIN_HISTORY_DAYS="
            f"{MIN_HISTORY_DAYS} rows of one ticker, the longest ticker has {longest}"
        )
    frame = _add_cross_sectional(pd.concat(parts, ignore_index=True))
    frame = frame.set_index(["date", "ticker"]).sort_index()
    return frame.loc[:, list(FEATURE_COLUMNS)].astype("float64")


def validate_features(features: pd.DataFrame, columns: tuple[str, ...] | None = None) -> None:
    """Check that ``features`` looks like :func:`build_features` output.

    Args:
        features: Frame to check.
        columns: Columns that must be present (a model's inputs); defaults to none extra.

    Raises:
        ValueError: If it is empty, not indexed by (date, ticker), lacks a column, or has a
            missing / infinite ``ewma_vol``.
    """
    if not isinstance(features, pd.DataFrame) or features.empty:
        raise ValueError("features is empty: expected rows from build_features")
    if list(features.index.names) != ["date", "ticker"]:
        raise ValueError(f"features index must be (date, ticker), got {features.index.names}")
    if SIGMA_COLUMN not in features.columns:
        raise ValueError(f"features lacks the {SIGMA_COLUMN!r} column that scales the target")
    missing = [c for c in columns or () if c not in features.columns]
    if missing:
        raise ValueError(f"features lacks column(s) {missing} the model was trained on")
    if not np.isfinite(features[SIGMA_COLUMN].to_numpy(dtype=float)).all():
        raise ValueError(f"features.{SIGMA_COLUMN} has missing or infinite values")


def latest_features(features: pd.DataFrame) -> pd.DataFrame:
    """Keep each ticker's most recent feature row: what serving forecasts from.

    Args:
        features: Output of :func:`build_features`.

    Returns:
        One row per ticker, same index levels and columns.
    """
    if features.empty:
        raise ValueError("features is empty: expected output of build_features")
    last = features.reset_index().groupby("ticker", sort=True)["date"].transform("max")
    keep = features.index.get_level_values("date") == last.to_numpy()
    return features.loc[keep]
