"""Served paths that hang together: ordered quantiles and spreads that never narrow.

A quantile frame holds, for each forecast origin, a *path*: the return quantiles of every
horizon 1..H. Each day of a path can be right on its own while the path as a whole is not: the
boosters of two anchors, the linear interpolation between them and a re-centred median can make
a later day's range narrower than an earlier one's, which no investor can read (the price of
the upper quartile falling from one day to the next while the median stays put).

What is served is the price ``P * exp(q)`` and the simple return ``exp(q) - 1``, so the repair
works in that *growth* space ``g = exp(q)``, around each day's median ``g50``:

1. the quantiles of each day are sorted (rearrangement: it never makes a pinball loss worse);
2. each quantile's distance from its day's median, ``g50 - g_q`` below and ``g_q - g50`` above,
   is replaced by its running maximum over the days (a monotone envelope: only ever widens);
3. a lower distance may not reach the price 0: what the cap takes off (only after a steep fall
   of the median) is added to the mirror upper quantile's distance, so the interval's width is
   the envelope's all the same.

The widths of every central interval (``q95 - q05``, ``q75 - q25``) are then sums of running
maxima, so non-decreasing in the day, and the order ``q05 <= q25 <= q50 <= q75 <= q95`` holds
every day. The median itself is never moved here (:mod:`training.median` decides it), so the
probability of a gain keeps agreeing with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Below the median the growth distance stays this far inside the median's own growth: the
# lowest served price remains positive.
_POSITIVE = 1e-9


@dataclass(frozen=True)
class PathRepairs:
    """How many paths of a quantile frame the repair changed, and by how much.

    Attributes:
        paths: Paths (forecast origins) in the frame.
        crossed: Paths where some day's quantiles were out of order.
        narrowed: Paths where some central interval's width fell from one day to the next.
        max_widening: Largest widening of an interval by the envelope, relative to its width.
    """

    paths: int
    crossed: int
    narrowed: int
    max_widening: float


def _median_position(levels: np.ndarray) -> int:
    found = np.flatnonzero(np.isclose(levels, 0.5))
    if len(found) != 1:
        raise ValueError(f"a path needs one median column 0.5, got levels {levels.tolist()}")
    return int(found[0])


def repair_paths(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Ordered quantiles and non-narrowing spreads, for an array of paths.

    Args:
        values: Log-return quantiles ``(paths, horizons, quantiles)``, horizons increasing.
        levels: The quantile levels (symmetric around 0.5, including it), increasing.

    Returns:
        The repaired array (a new one); the median column is unchanged.
    """
    levels = np.asarray(levels, dtype=float)
    mid = _median_position(levels)
    q = np.sort(np.asarray(values, dtype=float), axis=2)
    g = np.exp(q)
    centre = g[:, :, mid : mid + 1]
    below = np.maximum.accumulate(centre - g[:, :, :mid], axis=1)
    above = np.maximum.accumulate(g[:, :, mid + 1 :] - centre, axis=1)
    capped = np.minimum(below, centre * (1.0 - _POSITIVE))
    # The cap's excess moves to the mirror quantile above (q05 <-> q95): widths are kept, and
    # the excess shrinks towards the median (q05's >= q25's), so the order holds above too.
    above = above + (below - capped)[:, :, ::-1]
    lower, upper = np.log(centre - capped), np.log(centre + above)
    return np.concatenate([lower, q[:, :, mid : mid + 1], upper], axis=2)


def repair_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`repair_paths` on a quantile frame (one path per (date, ticker), horizons 1..H).

    Args:
        frame: A quantile frame (:mod:`training.quantiles`) whose paths all have the same
            horizons, sorted by date, ticker and horizon.

    Returns:
        A frame like ``frame`` with every path repaired.
    """
    if frame.empty:
        return frame
    values, levels = path_values(frame)
    repaired = repair_paths(values, levels)
    return pd.DataFrame(repaired.reshape(len(frame), -1), index=frame.index, columns=frame.columns)


def count_repairs(frame: pd.DataFrame, tolerance: float = 1e-12) -> PathRepairs:
    """How often :func:`repair_frame` would change the paths of ``frame`` (nothing changed).

    Args:
        frame: A quantile frame, before the repair.
        tolerance: Differences of log returns up to this are rounding, not a repair.
    """
    if frame.empty:
        return PathRepairs(0, 0, 0, 0.0)
    values, levels = path_values(frame)
    crossed = (np.diff(values, axis=2) < -tolerance).any(axis=(1, 2))
    g = np.exp(np.sort(values, axis=2))
    repaired = np.exp(repair_paths(values, levels))
    pairs = [(i, len(levels) - 1 - i) for i in range(len(levels) // 2)]
    width = np.stack([g[:, :, hi] - g[:, :, lo] for lo, hi in pairs], axis=2)
    fixed = np.stack([repaired[:, :, hi] - repaired[:, :, lo] for lo, hi in pairs], axis=2)
    narrowed = (np.diff(width, axis=1) < -tolerance).any(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        widening = np.where(width > 0, fixed / width - 1.0, 0.0)
    return PathRepairs(
        paths=len(values),
        crossed=int(crossed.sum()),
        narrowed=int(narrowed.sum()),
        max_widening=float(np.nanmax(widening, initial=0.0)),
    )


def repaired_shares(
    before: pd.DataFrame, after: pd.DataFrame, tolerance: float = 1e-12
) -> pd.Series:
    """Share of forecasts at each horizon that the repair changed (sorted or widened).

    Args:
        before: A quantile frame as it came (after the median policy).
        after: ``repair_frame(before)``.
        tolerance: Differences of log returns up to this are rounding, not a repair.

    Returns:
        Shares in [0, 1] indexed by horizon: rows of that horizon where some quantile moved.
    """
    moved = (after.reindex(before.index) - before).abs().to_numpy() > tolerance
    changed = pd.Series(moved.any(axis=1), index=before.index)
    return changed.groupby(level="horizon").mean().astype(float)


def path_values(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(paths, horizons, quantiles)`` values and the levels of a sorted quantile frame.

    Raises:
        ValueError: the paths do not all hold the same horizons in order.
    """
    horizons = frame.index.get_level_values("horizon")
    n_h = int(horizons.nunique())
    if len(frame) % n_h or not np.array_equal(
        np.asarray(horizons[:n_h]), np.sort(horizons.unique())
    ):
        raise ValueError("every path must hold the same horizons, sorted by origin and horizon")
    values = frame.to_numpy(dtype=float).reshape(-1, n_h, frame.shape[1])
    return values, np.asarray(frame.columns, dtype=float)
