"""Split conformal per volatility regime (Mondrian CQR): each bucket of sigma_t / long-run vol
gets the width that covers it on the calibration window.

Pooled CQR widens every interval by the same score quantile, so rows whose volatility regime
the boosters' scale gets wrong (calm origins before a surprise, issue 15 §5) share a width
with all the others. Mondrian conformal prediction (Vovk et al. 2005) calibrates each category
on its own rows and covers each at the nominal level, if the rows within it are exchangeable.

The buckets here are defined by :math:`r = \\sigma_t / \\sigma_{LR}` (the ticker's EWMA vol over
its long-run vol) cut at fixed edges. Each bucket's conformal score quantile is expressed as a
level of the *pooled* sorted scores, and stored as an offset from the pooled CQR level: served
levels are ``nominal + offset`` with plain CQR, and ``ACI state + offset`` with ACI, so the
per-ticker ACI state adapts on top of the regime's width, not instead of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.conformal import MIN_CALIBRATION_ROWS, IntervalCalibrator, conformal_level


def vol_buckets(ratio: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket of each row: 0 below ``edges[0]``, ..., ``len(edges)`` from the last edge on."""
    return np.searchsorted(np.asarray(edges, dtype=float), np.asarray(ratio, float), side="right")


def bucket_offsets(
    calibrator: IntervalCalibrator,
    predictions: np.ndarray,
    outcomes: np.ndarray,
    buckets: np.ndarray,
    n_buckets: int,
) -> np.ndarray:
    """Level offsets ``(n_buckets, intervals)`` that give each bucket its own CQR width.

    Args:
        calibrator: The pooled calibrator fitted on the same window.
        predictions: Raw quantile forecasts of the window ``(n, Q)``.
        outcomes: Realized values ``(n,)`` (NaN: unknown, ignored).
        buckets: Bucket of each row ``(n,)``.
        n_buckets: Number of buckets.

    Returns:
        Offsets from the pooled CQR level; a bucket with fewer than ``MIN_CALIBRATION_ROWS``
        known outcomes keeps the pooled width (offset 0).
    """
    nominal = calibrator.nominal_levels()
    offsets = np.zeros((n_buckets, len(nominal)))
    known = np.isfinite(outcomes) & np.isfinite(predictions).all(axis=1)
    pooled = calibrator.sorted_scores
    positions = np.linspace(0.0, 1.0, len(pooled))
    for b in range(n_buckets):
        rows = known & (buckets == b)
        if rows.sum() < MIN_CALIBRATION_ROWS:
            continue
        own = np.sort(calibrator.scores(predictions[rows], outcomes[rows]), axis=0)
        for j, coverage in enumerate(calibrator.coverages):
            position = conformal_level(coverage, len(own)) * (len(own) - 1)
            below = int(np.floor(position))
            above = min(below + 1, len(own) - 1)
            width = own[below, j] + (position - below) * (own[above, j] - own[below, j])
            # the level of the pooled scores at which the lookup returns that width
            offsets[b, j] = np.interp(width, pooled[:, j], positions) - nominal[j]
    return offsets
