"""The quantile forecast format shared by the model, the baselines and the evaluation.

A *quantile frame* is a DataFrame indexed by (``date``, ``ticker``, ``horizon``) whose columns
are the quantile levels as floats (e.g. ``0.05, 0.25, 0.5, 0.75, 0.95``) and whose values are
forecast log returns from the close of ``date`` to the close ``horizon`` trading days later.
Rows are sorted by date, ticker, horizon; values increase along the columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

QUANTILE_INDEX: tuple[str, str, str] = ("date", "ticker", "horizon")


def make_quantile_frame(
    index: pd.MultiIndex,
    values: np.ndarray,
    horizons: Sequence[int],
    levels: Sequence[float],
    *,
    rearrange: bool = True,
) -> pd.DataFrame:
    """Lay out a (rows, horizons, quantiles) array as a quantile frame.

    Args:
        index: (date, ticker) index of the forecast origins, one per row of ``values``.
        values: Array of shape ``(len(index), len(horizons), len(levels))``.
        horizons: Horizon of each middle-axis slice.
        levels: Quantile level of each last-axis slice.
        rearrange: Sort each row's quantiles (off only to count crossings in a study).

    Returns:
        The quantile frame (see the module docstring), quantiles sorted per row.
    """
    n, n_h, n_q = values.shape
    if n != len(index) or n_h != len(horizons) or n_q != len(levels):
        raise ValueError(
            f"values shape {values.shape} does not match index ({len(index)}), "
            f"horizons ({len(horizons)}) and levels ({len(levels)})"
        )
    dates = np.repeat(index.get_level_values("date").to_numpy(), n_h)
    tickers = np.repeat(index.get_level_values("ticker").to_numpy(), n_h)
    steps = np.tile(np.asarray(horizons, dtype=np.int64), n)
    frame_index = pd.MultiIndex.from_arrays([dates, tickers, steps], names=list(QUANTILE_INDEX))
    # Rearrangement (sorting) removes quantile crossing without hurting any pinball loss.
    flat = values.reshape(n * n_h, n_q)
    flat = np.sort(flat, axis=1) if rearrange else flat
    frame = pd.DataFrame(flat, index=frame_index, columns=[float(q) for q in levels])
    return frame.sort_index()


def interpolate_horizons(
    anchor_values: np.ndarray, anchors: Sequence[int], horizons: Sequence[int]
) -> np.ndarray:
    """Linearly interpolate per-anchor values along the horizon axis.

    Used on vol-normalized quantiles (return / (sigma * sqrt(h))): under a random walk they
    are flat in h, so straight lines between anchors are a small, principled correction.

    Args:
        anchor_values: Array ``(rows, len(anchors), quantiles)``.
        anchors: Increasing anchor horizons.
        horizons: Horizons to produce, each within ``[anchors[0], anchors[-1]]``.

    Returns:
        Array ``(rows, len(horizons), quantiles)``.
    """
    anchors_arr = np.asarray(anchors, dtype=float)
    steps = np.asarray(horizons, dtype=float)
    if steps.min() < anchors_arr[0] or steps.max() > anchors_arr[-1]:
        raise ValueError(f"horizons {list(horizons)} must lie within anchors {list(anchors)}")
    upper = np.clip(np.searchsorted(anchors_arr, steps, side="left"), 1, len(anchors_arr) - 1)
    if len(anchors_arr) == 1:
        return np.repeat(anchor_values, len(steps), axis=1)
    lower = upper - 1
    weight = (steps - anchors_arr[lower]) / (anchors_arr[upper] - anchors_arr[lower])
    weight = weight[None, :, None]
    return (1 - weight) * anchor_values[:, lower, :] + weight * anchor_values[:, upper, :]


def prob_gain(quantile_frame: pd.DataFrame) -> pd.Series:
    """Probability that the log return is above zero, read off the quantile grid.

    The grid is mapped to normal scores and interpolated linearly there (extrapolated beyond
    the outermost quantiles), which is exact for a normal forecast and smooth otherwise. When
    quantiles equal zero exactly, zero sits at the middle of their levels' scores: a median of
    exactly 0 gives 0.5, and so does a grid with no spread at all (all zero: nothing says which
    way). The answer is at or above 0.5 exactly when the median is at or above 0: a positive
    median puts zero below level 0.5, a negative one above it.

    Args:
        quantile_frame: A quantile frame (see the module docstring).

    Returns:
        Series with the quantile frame's index, values in [0, 1].
    """
    levels = np.asarray(quantile_frame.columns, dtype=float)
    if len(levels) < 2:
        raise ValueError("prob_gain needs at least two quantile columns")
    values = np.sort(quantile_frame.to_numpy(dtype=float), axis=1)
    scores = norm.ppf(levels)
    below = (values < 0).sum(axis=1)
    at = (values == 0).sum(axis=1)
    lo = np.clip(below, 1, len(levels) - 1) - 1
    rows = np.arange(len(values))
    q_lo, q_hi = values[rows, lo], values[rows, lo + 1]
    s_lo, s_hi = scores[lo], scores[lo + 1]
    gap = q_hi - q_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(gap > 0, s_lo + (0 - q_lo) * (s_hi - s_lo) / gap, (s_lo + s_hi) / 2)
    # Zero on the grid: the middle of the tied levels' scores (the first and last tied level).
    first, last = np.minimum(below, len(levels) - 1), np.minimum(below + at - 1, len(levels) - 1)
    crossing = np.where(at > 0, (scores[first] + scores[last]) / 2, crossing)
    return pd.Series(norm.sf(crossing), index=quantile_frame.index, name="prob_gain")


def to_price_quantiles(quantile_frame: pd.DataFrame, last_price: pd.Series) -> pd.DataFrame:
    """Turn return quantiles into price quantiles: ``P_t * exp(q)``.

    Args:
        quantile_frame: A quantile frame.
        last_price: Close at each forecast origin, indexed by (date, ticker).

    Returns:
        Frame shaped like ``quantile_frame`` holding prices.
    """
    origin = quantile_frame.index.droplevel("horizon")
    base = last_price.reindex(origin).to_numpy(dtype=float)
    if np.isnan(base).any():
        raise ValueError("last_price is missing for some (date, ticker) of the quantile frame")
    return np.exp(quantile_frame) * base[:, None]
