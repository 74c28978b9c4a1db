"""Conformal calibration of quantile forecasts: split CQR and adaptive conformal inference.

The quantile grid is read as central intervals: each level tau < 0.5 pairs with 1 - tau into
an interval of nominal coverage ``1 - 2 tau``; the median is left as the model made it.

* CQR (Romano et al. 2019): on a held-out window, the score of an interval is
  ``max(lower - y, y - upper)``; widening both ends by the conformal quantile of the scores
  (the ``ceil((n + 1)(1 - a))``-th smallest) covers at least ``1 - a`` of exchangeable data.
  Both ends move by the same amount, so the centre (the median) is never dragged towards the
  calibration window's drift.
* ACI (Gibbs & Candes 2021) then moves the score level online, per series:
  ``level <- level + gamma * (miss - a)`` each time an outcome is revealed, so long-run
  coverage holds even when the data shift. An h-step outcome is only revealed h trading days
  after its forecast, and the update waits for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_CALIBRATION_ROWS = 20


def interval_pairs(taus: Sequence[float]) -> list[tuple[int, int]]:
    """Column indices ``(lower, upper)`` of each central interval in a quantile grid.

    Raises:
        ValueError: If some level below 0.5 has no mirror level ``1 - tau``.
    """
    pairs = []
    for i, tau in enumerate(taus):
        if tau < 0.5:
            mirror = [j for j, other in enumerate(taus) if abs(other - (1 - tau)) < 1e-9]
            if not mirror:
                raise ValueError(f"quantile {tau} has no mirror level {1 - tau:g} in {list(taus)}")
            pairs.append((i, mirror[0]))
    return pairs


def conformal_level(coverage: float, n: int) -> float:
    """Level of the score distribution that gives ``coverage`` with ``n`` scores.

    Picks the ``k = ceil((n + 1) * coverage)``-th smallest score, expressed as a level in
    [0, 1] for linear-interpolation lookup (clipped to the largest score when k > n).
    """
    if n < 2:
        raise ValueError(f"need at least two calibration scores, got {n}")
    k = min(max(math.ceil((n + 1) * coverage), 1), n)
    return (k - 1) / (n - 1)


def lookup_scores(sorted_scores: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Empirical quantiles of each column of ``sorted_scores`` at ``levels``.

    Args:
        sorted_scores: Array ``(n, P)``, each column sorted ascending.
        levels: Array ``(..., P)`` of levels in [0, 1] (clipped).

    Returns:
        Array shaped like ``levels`` (linear interpolation between order statistics).
    """
    n = sorted_scores.shape[0]
    position = np.clip(levels, 0.0, 1.0) * (n - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    columns = np.broadcast_to(np.arange(sorted_scores.shape[1]), np.shape(levels))
    low = sorted_scores[below, columns]
    return low + (position - below) * (sorted_scores[above, columns] - low)


@dataclass(frozen=True)
class IntervalCalibrator:
    """Sorted CQR scores of each central interval of one quantile model."""

    pairs: tuple[tuple[int, int], ...]
    coverages: tuple[float, ...]
    sorted_scores: np.ndarray

    @classmethod
    def fit(
        cls, predictions: np.ndarray, outcomes: np.ndarray, taus: Sequence[float]
    ) -> IntervalCalibrator:
        """Store the interval scores of a held-out calibration window.

        Args:
            predictions: Array ``(n, Q)`` of raw quantile forecasts.
            outcomes: Array ``(n,)`` of realized values; rows with NaN are ignored.
            taus: Quantile level of each column.

        Returns:
            The fitted calibrator.

        Raises:
            ValueError: If shapes disagree, the grid has no interval, or fewer than
                ``MIN_CALIBRATION_ROWS`` rows have an outcome.
        """
        predictions = np.asarray(predictions, dtype=float)
        outcomes = np.asarray(outcomes, dtype=float)
        if predictions.ndim != 2 or predictions.shape != (len(outcomes), len(taus)):
            raise ValueError(
                f"predictions shape {predictions.shape} must be (len(outcomes)={len(outcomes)},"
                f" len(taus)={len(taus)})"
            )
        pairs = interval_pairs(taus)
        if not pairs:
            raise ValueError(f"quantiles {list(taus)} hold no central interval to calibrate")
        keep = np.isfinite(outcomes) & np.isfinite(predictions).all(axis=1)
        if keep.sum() < MIN_CALIBRATION_ROWS:
            raise ValueError(
                f"calibration needs at least {MIN_CALIBRATION_ROWS} rows with known outcomes, "
                f"got {int(keep.sum())}"
            )
        calibrator = cls(tuple(pairs), tuple(1 - 2 * taus[lo] for lo, _ in pairs), np.empty(0))
        scores = calibrator.scores(predictions[keep], outcomes[keep])
        return cls(calibrator.pairs, calibrator.coverages, np.sort(scores, axis=0))

    @property
    def n(self) -> int:
        """Number of calibration scores."""
        return int(self.sorted_scores.shape[0])

    def scores(self, predictions: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
        """CQR score ``max(lower - y, y - upper)`` of each interval: ``(m, P)``."""
        y = np.asarray(outcomes, dtype=float)[:, None]
        lower = predictions[:, [lo for lo, _ in self.pairs]]
        upper = predictions[:, [hi for _, hi in self.pairs]]
        return np.maximum(lower - y, y - upper)

    def nominal_levels(self) -> np.ndarray:
        """The split-conformal (CQR) level of each interval: ``(P,)``."""
        return np.array([conformal_level(c, self.n) for c in self.coverages])

    def apply(self, predictions: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray:
        """Widen (or narrow) each interval by its score quantile at ``levels``.

        Args:
            predictions: Array ``(m, Q)``.
            levels: Array ``(m, P)`` or ``(P,)``; defaults to :meth:`nominal_levels` (CQR).

        Returns:
            Calibrated forecasts ``(m, Q)``; the median column is unchanged.
        """
        chosen = self.nominal_levels() if levels is None else np.asarray(levels, dtype=float)
        chosen = np.broadcast_to(chosen, (len(predictions), len(self.pairs)))
        shift = lookup_scores(self.sorted_scores, chosen)
        out = np.array(predictions, dtype=float, copy=True)
        for j, (lo, hi) in enumerate(self.pairs):
            out[:, lo] -= shift[:, j]
            out[:, hi] += shift[:, j]
        return out


def run_aci(
    calibrator: IntervalCalibrator,
    predictions: np.ndarray,
    outcomes: np.ndarray,
    reveal_step: np.ndarray,
    gamma: float,
    start_levels: np.ndarray | None = None,
    floor: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive conformal inference along one series with delayed outcomes.

    At step ``i`` the outcomes of earlier forecasts whose ``reveal_step`` is ``<= i`` move
    each interval's level by ``gamma * (miss - (1 - coverage))`` (the miss judged with the
    level that forecast was issued with); then forecast ``i`` is issued at the current levels.

    Args:
        calibrator: Scores that turn a level into a widening.
        predictions: Raw quantile forecasts ``(T, Q)`` in issue order.
        outcomes: Realized values ``(T,)`` (NaN if never known).
        reveal_step: Step at which each outcome is known (``> i`` for forecast ``i``; any
            value ``>= T`` means not yet). Must be non-decreasing.
        gamma: Step size.
        start_levels: Levels before step 0; defaults to the CQR levels.
        floor: Optional ``(T,)`` flags: before forecast ``i`` with ``floor[i]`` set, the state
            is raised to at least the CQR levels, so a calm spell with few misses cannot
            narrow the interval below split conformal just before a volatility surprise
            (whose misses ACI would hear of only h steps later).
        offsets: Optional ``(T, P)`` level offsets added to the state when forecast ``i`` is
            issued (a volatility bucket's own width, :mod:`training.mondrian`); the state itself
            adapts without them.

    Returns:
        ``(levels_used, final_levels)``: the levels each forecast was issued with ``(T, P)``
        and the levels after the last step ``(P,)`` (the state a new forecast at the last
        date uses), all clipped to [0, 1].
    """
    target = 1 - np.asarray(calibrator.coverages)
    state = calibrator.nominal_levels() if start_levels is None else np.array(start_levels)
    steps = len(predictions)
    used = np.empty((steps, len(target)))
    scores = calibrator.scores(predictions, outcomes)  # NaN where the outcome is unknown
    nominal = calibrator.nominal_levels()
    pending = 0  # first forecast whose outcome is not yet applied
    for i in range(steps):
        while pending < i and reveal_step[pending] <= i:
            if np.isfinite(outcomes[pending]):
                width = lookup_scores(calibrator.sorted_scores, used[pending])
                miss = (scores[pending] > width).astype(float)
                state = np.clip(state + gamma * (miss - target), 0.0, 1.0)
            pending += 1
        if floor is not None and floor[i]:
            state = np.maximum(state, nominal)
        used[i] = state if offsets is None else np.clip(state + offsets[i], 0.0, 1.0)
    return used, state
