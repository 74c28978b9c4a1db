"""Each row's volatility scale: what normalizes the forecaster's targets, and the calm and
volatile regimes that its calibration (ACI floors, Mondrian CQR buckets) tells apart.

``sigma`` is the row's RiskMetrics EWMA daily vol; the long-run vol is the ticker's RMS daily
return over the fit (a ticker the fit never saw: its own past year). Both are floored at
``min_daily_vol``. The options read with ``getattr`` are absent from old pickled configs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from training.config import TrainingConfig
from training.features import SIGMA_COLUMN
from training.mondrian import vol_buckets
from training.targets import horizon_scale

LONG_RUN_FALLBACK = "rvol_252"
"""Feature giving the long-run vol of a ticker the fit never saw (its own past year)."""


def daily_vol(features: pd.DataFrame, config: TrainingConfig) -> np.ndarray:
    """Each row's EWMA daily vol, floored."""
    return np.maximum(features[SIGMA_COLUMN].to_numpy(dtype=float), config.min_daily_vol)


def long_run_daily_vol(
    features: pd.DataFrame, config: TrainingConfig, fitted: Mapping[str, float]
) -> np.ndarray:
    """Long-run daily vol of each row's ticker; a ticker the fit never saw: its past year."""
    sigma = daily_vol(features, config)
    tickers = features.index.get_level_values("ticker")
    known = np.array([fitted.get(str(t), np.nan) for t in tickers], dtype=float)
    if LONG_RUN_FALLBACK in features.columns:
        fallback = features[LONG_RUN_FALLBACK].to_numpy(dtype=float)
        known = np.where(np.isfinite(known), known, fallback)
    return np.maximum(np.where(np.isfinite(known), known, sigma), config.min_daily_vol)


def return_scale(
    features: pd.DataFrame,
    horizons: list[int],
    config: TrainingConfig,
    fitted: Mapping[str, float],
) -> np.ndarray:
    """Spread of the h-day return ``(rows, horizons)`` that normalizes the target."""
    decay = getattr(config, "vol_term_decay", None)
    long_run = long_run_daily_vol(features, config, fitted) if decay is not None else np.empty(0)
    return horizon_scale(daily_vol(features, config), long_run, np.asarray(horizons), decay)


def calm_floors(
    features: pd.DataFrame,
    anchors: list[int],
    config: TrainingConfig,
    fitted: Mapping[str, float],
) -> np.ndarray | None:
    """Where ACI levels may not fall below CQR ``(rows, anchors)``: long h, calm vol."""
    first = getattr(config, "aci_calm_floor_horizon", None)
    if first is None:
        return None
    long_run = long_run_daily_vol(features, config, fitted)
    calm = daily_vol(features, config) < config.aci_calm_ratio * long_run
    return calm[:, None] & (np.asarray(anchors) >= first)[None, :]


def row_vol_buckets(
    features: pd.DataFrame, config: TrainingConfig, fitted: Mapping[str, float]
) -> np.ndarray | None:
    """Volatility bucket of each row (Mondrian CQR), None when off."""
    edges = getattr(config, "cqr_vol_edges", None)
    if edges is None:
        return None
    ratio = daily_vol(features, config) / long_run_daily_vol(features, config, fitted)
    return vol_buckets(ratio, edges)
