"""Per-ticker adaptive conformal levels replayed over a window of forecasts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.conformal import IntervalCalibrator, run_aci
from training.targets import build_target_dates


def replay_levels(
    index: pd.MultiIndex,
    raw: np.ndarray,
    outcomes: np.ndarray,
    prices: pd.DataFrame,
    anchors: Sequence[int],
    calibrators: Mapping[int, IntervalCalibrator],
    gammas: np.ndarray,
    floors: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run ACI along each ticker's forecasts, revealing each outcome on its own end date.

    Args:
        index: (date, ticker) index of the forecasts, sorted.
        raw: Uncalibrated quantiles ``(rows, anchors, quantiles)``.
        outcomes: Realized targets in the same units ``(rows, anchors)`` (NaN if unknown).
        prices: Price panel that dates every outcome (its h-th next trading day).
        anchors: Horizon of each anchor slice.
        calibrators: Residual calibrator of each anchor.
        gammas: ACI step of each anchor.
        floors: Optional ``(rows, anchors)`` flags: where set, the forecast's levels are not
            allowed below the CQR levels (see :func:`training.conformal.run_aci`).
        offsets: Optional ``(rows, anchors, intervals)`` level offsets of each forecast's
            volatility bucket (:mod:`training.mondrian`), added to the ACI state it is issued
            with; the returned final state is without them.

    Returns:
        ``(levels, final)``: the levels each forecast was issued with ``(rows, anchors,
        intervals)``, and per ticker the levels after its last row ``(anchors, intervals)``.
    """
    end_dates = build_target_dates(prices, max(anchors)).reindex(index)
    dates = index.get_level_values("date").to_numpy()
    tickers = index.get_level_values("ticker").to_numpy()
    levels = np.empty((*raw.shape[:2], len(calibrators[anchors[0]].pairs)), dtype=float)
    final: dict[str, np.ndarray] = {}
    for ticker in pd.unique(tickers):
        rows = np.flatnonzero(tickers == ticker)
        own_dates = dates[rows]
        state = np.empty((len(anchors), len(calibrators[anchors[0]].pairs)))
        for a, h in enumerate(anchors):
            ends = end_dates[h].to_numpy()[rows]
            known = ~pd.isna(ends)
            reveal = np.full(len(rows), len(rows), dtype=np.int64)
            reveal[known] = np.searchsorted(own_dates, ends[known], side="left")
            used, state[a] = run_aci(
                calibrators[h],
                raw[rows, a, :],
                outcomes[rows, a],
                reveal,
                float(gammas[a]),
                floor=None if floors is None else floors[rows, a],
                offsets=None if offsets is None else offsets[rows, a],
            )
            levels[rows, a, :] = used
        final[str(ticker)] = state
    return levels, final
