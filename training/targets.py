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


def long_run_vol(prices: pd.DataFrame) -> dict[str, float]:
    """Each ticker's long-run daily volatility: the RMS of its daily log returns.

    The mean-reversion level of :func:`horizon_scale`, estimated once per fit on every price
    the fit may use (like the squared returns of the EWMA, not demeaned).

    Args:
        prices: Long daily price frame.

    Returns:
        Ticker -> RMS daily log return (tickers with fewer than two prices are left out).
    """
    clean = validate_prices(prices)
    daily = np.log(clean["adj_close"]).groupby(clean["ticker"], sort=False).diff()
    rms = np.sqrt((daily**2).groupby(clean["ticker"], sort=False).mean()).dropna()
    return {str(ticker): float(vol) for ticker, vol in rms.items()}


def horizon_scale(
    sigma: np.ndarray, long_run: np.ndarray, horizons: np.ndarray, decay: float | None
) -> np.ndarray:
    """Spread of an h-day log return: ``sigma_h * sqrt(h)`` for each row and horizon.

    With ``decay`` None this is RiskMetrics' flat ``sigma * sqrt(h)``. With a persistence
    ``phi = decay`` the daily variance mean-reverts as in GARCH(1,1), so the average variance
    over the next h days is ``LR^2 + (sigma^2 - LR^2) (1 - phi^h) / (h (1 - phi))``: wider than
    the flat rule after a calm spell, narrower after a storm, the same at h = 1 (Diebold et
    al. 1998, "scaling by sqrt(h) is worse than you think"; Engle & Patton 2001).

    Args:
        sigma: Daily vol at the origin ``(rows,)``.
        long_run: Long-run daily vol of each row's ticker ``(rows,)`` (unused without decay).
        horizons: Horizons in trading days ``(H,)``.
        decay: Daily persistence phi in (0, 1), or None.

    Returns:
        Array ``(rows, H)``.
    """
    h = np.asarray(horizons, dtype=float)
    if decay is None:
        return sigma[:, None] * np.sqrt(h)[None, :]
    weight = (1 - decay**h) / (h * (1 - decay))
    lr2 = (np.asarray(long_run, dtype=float) ** 2)[:, None]
    variance = lr2 + (sigma[:, None] ** 2 - lr2) * weight[None, :]
    return np.sqrt(variance * h[None, :])
