"""The median policy: one decision per path, and a median that cannot climb then fall back.

Daily and weekly returns are close to unpredictable, so the model's median is mostly noise
around zero. The policy decides **once for the whole path**, at training time, on the
walk-forward's out-of-sample forecasts: a one-sided Diebold-Mariano test asks whether the
model's median has a smaller absolute error than the zero-return forecast, on the loss
differential averaged over every horizon (each horizon's differential divided by zero's mean
absolute error there, so that h = 30 does not drown h = 1; HAC lags up to the longest horizon,
whose outcomes overlap that long).

- ``"zero"`` (the model is not significantly better): every day's median is 0 and the calibrated
  quantiles are shifted by minus the model's median (widths and shape kept).
- ``"model"``: the model's median, made monotone in the day by isotonic regression (increasing
  or decreasing, whichever fits it better), the quantiles shifted by the same amount; a path
  can then drift one way, never up and back down.

The previous policy decided per horizon, which served the model's median on days 2-4 and zero
around them: a hump, and a probability of gain that went 50%, 52%, 52%, 52%, 50%.
:func:`per_horizon_sources` keeps it for the regression test and the study that compare the two
(``docs/model.md``). The decision is stored on the forecaster (``median_sources_``, one value
for every horizon) and applied by its ``predict``. A model pickled under the previous policy
with a split decision is served zero's median on its whole path: the rule that cannot hump, and
the one the split decision chose at most horizons.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.isotonic import isotonic_regression

from training.dm_test import absolute_error_by_row, dm_test
from training.paths import path_values

MODEL = "model"
ZERO = "zero"


def _relative_ae_gain(model: pd.DataFrame, outcomes: pd.Series, h: int) -> pd.Series:
    """Per date, zero's minus the model's absolute error at ``h`` over zero's mean error."""
    level = model.index.get_level_values("horizon")
    frame = model.loc[level == h]
    y = outcomes.reindex(frame.index)
    known = np.isfinite(y.to_numpy(dtype=float))
    frame, y = frame.loc[known], y.loc[known]
    zero_ae = y.abs()
    scale = float(zero_ae.mean()) if len(zero_ae) else 0.0
    if not scale > 0:
        return pd.Series(dtype=float)
    d = (zero_ae - absolute_error_by_row(frame, y)) / scale
    return d.groupby(level="date").mean()


def decide_median_source(
    model: pd.DataFrame, outcomes: pd.Series, horizons: list[int], significance: float
) -> tuple[str, float]:
    """``"model"`` for the whole path if its median beats zero's, else ``"zero"``.

    Args:
        model: The model's out-of-sample quantile frame, indexed by (date, ticker, horizon).
        outcomes: Realized log returns on that index.
        horizons: The path's horizons (those without scored rows are left out of the average).
        significance: One-sided level of the DM test "zero's absolute error is larger".

    Returns:
        ``(source, p_value)``; no scored row at all gives ``("zero", nan)``.
    """
    gains = [_relative_ae_gain(model, outcomes, h) for h in horizons]
    gains = [g for g in gains if len(g)]
    if not gains:
        return ZERO, float("nan")
    d = pd.concat(gains, axis=1).mean(axis=1).sort_index().to_numpy()
    result = dm_test(d, max(horizons))
    if result.identical:  # the model's median is zero's: nothing to choose
        return ZERO, float("nan")
    return (MODEL if result.p_value < significance else ZERO), result.p_value


def per_horizon_sources(
    model: pd.DataFrame, outcomes: pd.Series, horizons: list[int], significance: float
) -> dict[int, str]:
    """The previous policy, per horizon: ``"model"`` where its median alone beats zero's.

    Kept to measure the path policy against it; it can split a path (see the module docstring).
    """
    sources = {}
    for h in horizons:
        d = _relative_ae_gain(model, outcomes, h).sort_index().to_numpy()
        ok = len(d) and dm_test(d, h).p_value < significance
        sources[h] = MODEL if ok else ZERO
    return sources


def path_source(sources: Mapping[int, str]) -> str:
    """The one source of a path: ``"model"`` (also when undecided), or ``"zero"``.

    A split decision (models pickled under the per-horizon policy) is read as ``"zero"``.
    """
    values = set(sources.values())
    return MODEL if not values or values == {MODEL} else ZERO


def monotone_medians(medians: np.ndarray) -> np.ndarray:
    """Each row's closest (least squares) monotone sequence: isotonic, up or down.

    Args:
        medians: ``(paths, horizons)``, horizons increasing.

    Returns:
        An array like ``medians``; rows already monotone are returned as they are.
    """
    out = np.array(medians, dtype=float, copy=True)
    steps = np.diff(out, axis=1)
    bumpy = np.flatnonzero((steps > 0).any(axis=1) & (steps < 0).any(axis=1))
    for row in bumpy:
        y = out[row]
        up = isotonic_regression(y, increasing=True)
        down = isotonic_regression(y, increasing=False)
        out[row] = up if np.sum((up - y) ** 2) <= np.sum((down - y) ** 2) else down
    return out


def recentre(frame: pd.DataFrame, sources: Mapping[int, str]) -> pd.DataFrame:
    """Apply the path's median policy to a quantile frame (shifting whole rows of quantiles).

    Args:
        frame: A quantile frame whose paths all hold the same horizons, sorted by origin and
            horizon (as ``make_quantile_frame`` lays them out).
        sources: The forecaster's ``median_sources_`` (see :func:`path_source`).

    Returns:
        The frame with each day's quantiles shifted so its median is the policy's.
    """
    if frame.empty:
        return frame
    values, levels = path_values(frame)
    mid = int(np.argmin(np.abs(levels - 0.5)))
    medians = values[:, :, mid]
    target = np.zeros_like(medians) if path_source(sources) == ZERO else monotone_medians(medians)
    if np.array_equal(target, medians):
        return frame
    shifted = values + (target - medians)[:, :, None]
    return pd.DataFrame(shifted.reshape(len(frame), -1), index=frame.index, columns=frame.columns)


def describe_median(sources: Mapping[int, str]) -> str:
    """One phrase for the whole path: the model card, the tag and every answer's provenance."""
    if path_source(sources) == MODEL:
        return "model's median on the whole path (beat zero on the walk-forward), made monotone"
    if set(sources.values()) == {ZERO}:
        return "zero-return baseline on the whole path (model's median not better than zero)"
    return "zero-return baseline on the whole path (older per-horizon decision, read as zero)"
