"""The median policy: serve the model's median only where it beats the zero-return forecast.

Daily and weekly returns are close to unpredictable, so at most horizons the model's median is
noise around zero. At training time, on the walk-forward's out-of-sample forecasts, a one-sided
Diebold-Mariano test on absolute errors asks whether the model's median is significantly better
than zero; where it is not, the served median is the zero-return baseline's and the calibrated
quantiles are re-centred around it (every quantile shifted by minus the model's median, so the
calibrated widths and shape are kept). The decision is stored on the forecaster
(``median_sources_``) and applied by its ``predict``: serving only reads it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from training.dm_test import absolute_error_by_row, dm_test

MODEL = "model"
ZERO = "zero"


def decide_median_sources(
    model: pd.DataFrame, outcomes: pd.Series, horizons: list[int], significance: float
) -> tuple[dict[int, str], dict[int, float]]:
    """Per horizon, ``"model"`` if its median is significantly better than zero, else ``"zero"``.

    Args:
        model: The model's out-of-sample quantile frame, indexed by (date, ticker, horizon).
        outcomes: Realized log returns on that index.
        horizons: Horizons to decide (a horizon without scored rows gets ``"zero"``).
        significance: One-sided level of the DM test "zero's absolute error is larger".

    Returns:
        ``(sources, p_values)``: horizon -> ``"model"``/``"zero"``, horizon -> DM p-value.
    """
    y = outcomes.reindex(model.index)
    known = np.isfinite(y.to_numpy(dtype=float))
    frame, y = model.loc[known], y.loc[known]
    level = frame.index.get_level_values("horizon")
    sources: dict[int, str] = {}
    p_values: dict[int, float] = {}
    for h in horizons:
        rows = level == h
        if not rows.any():
            sources[h], p_values[h] = ZERO, 1.0
            continue
        model_ae = absolute_error_by_row(frame.loc[rows], y)
        zero_ae = y.loc[rows].abs()
        # d > 0 when zero's error is larger: "zero is worse" = "the model is better"
        d = (zero_ae - model_ae).groupby(level="date").mean().sort_index().to_numpy()
        result = dm_test(d, h)
        p_values[h] = result.p_value
        sources[h] = MODEL if result.p_value < significance else ZERO
    return sources, p_values


def recentre(frame: pd.DataFrame, sources: Mapping[int, str]) -> pd.DataFrame:
    """Shift every quantile of the horizons whose source is ``"zero"`` so the median is 0."""
    zero = [h for h, source in sources.items() if source == ZERO]
    if not zero or frame.empty:
        return frame
    median = next(c for c in frame.columns if abs(float(c) - 0.5) < 1e-9)
    rows = frame.index.get_level_values("horizon").isin(zero)
    out = frame.copy()
    values = out.to_numpy(dtype=float)
    values[rows] -= values[rows][:, [list(out.columns).index(median)]]
    out.loc[:, :] = values
    return out


def describe_median(sources: Mapping[int, str]) -> str:
    """One line for the model card and the provenance, e.g. ``zero-return baseline (...)``."""
    zero = sorted(h for h, s in sources.items() if s == ZERO)
    model = sorted(h for h, s in sources.items() if s == MODEL)
    if not sources or not zero:
        return "model"
    where = _spans(zero)
    if not model:
        return f"zero-return baseline (model not better at h={where})"
    return f"zero-return baseline at h={where} (model not better there); model at h={_spans(model)}"


def _spans(horizons: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3,5"``."""
    parts, start = [], horizons[0]
    for prev, cur in zip(horizons, [*horizons[1:], None], strict=True):
        if cur != prev + 1:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur  # type: ignore[assignment]
    return ",".join(parts)
