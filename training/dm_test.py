"""Diebold-Mariano test: is one forecast's loss larger than another's beyond noise?

Pure numpy/scipy. For a panel (many tickers per date) the loss differential is averaged across
tickers per forecast date, giving one time series ``d_t``; h-step outcomes overlap, so ``d_t``
is autocorrelated up to lag h-1 and its long-run variance is estimated with Newey-West (Bartlett
weights, h-1 lags). The statistic gets the Harvey-Leybourne-Newbold (1997) small-sample
correction and is compared with Student's t with n-1 degrees of freedom.

The test is one-sided: H1 "the candidate's loss is larger" (``d = L_candidate - L_reference``).
A practical tolerance shifts the null: "larger by more than ``tolerance`` times the reference's
mean loss", so a difference too small to matter is never significant.

Identical losses (every differential exactly zero, e.g. an incremental candidate that changed
nothing) are not a test at all: the result says so (``identical``) and carries no statistic or
p-value, so no clipped or invented number reaches a metric, a tag or the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class DMResult:
    """Outcome of a one-sided Diebold-Mariano test (H1: the candidate's loss is larger).

    Attributes:
        statistic: HLN-corrected DM statistic (positive: candidate worse).
        p_value: One-sided p-value; small means significantly worse.
        mean_differential: Mean of ``d`` after the tolerance shift.
        relative: Mean loss difference over the reference's mean loss (before the shift).
        n: Number of dates in the series.
        identical: Every loss differential was exactly zero: there is nothing to test, and
            ``statistic`` and ``p_value`` are NaN.
    """

    statistic: float
    p_value: float
    mean_differential: float
    relative: float
    n: int
    identical: bool = False


def newey_west_variance(d: np.ndarray, lags: int) -> float:
    """Long-run variance of ``d`` (Bartlett kernel, ``lags`` autocovariances).

    Args:
        d: The series.
        lags: Number of autocovariance lags (h-1 for h-step forecasts).

    Returns:
        ``gamma_0 + 2 * sum_k (1 - k/(lags+1)) gamma_k``, autocovariances divided by n.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    e = d - d.mean()
    variance = float(e @ e) / n
    for k in range(1, min(lags, n - 1) + 1):
        variance += 2.0 * (1.0 - k / (lags + 1)) * float(e[k:] @ e[:-k]) / n
    return variance


def dm_test(
    d: np.ndarray, horizon: int, *, reference_loss: float | None = None, tolerance: float = 0.0
) -> DMResult:
    """One-sided DM test on a loss differential series ``d = L_candidate - L_reference``.

    Args:
        d: Loss differential per date, in time order.
        horizon: Forecast horizon h (h-1 HAC lags, HLN correction).
        reference_loss: Mean loss of the reference (for ``relative`` and the tolerance).
        tolerance: Practical tolerance: H0 is "worse by at most ``tolerance * reference_loss``".

    Returns:
        A :class:`DMResult`. Identical losses give ``identical=True`` (no statistic, no
        p-value); with fewer than 3 dates, or a zero variance and zero mean after the tolerance
        shift, there is no evidence: statistic 0, p-value 0.5.
    """
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n and not np.any(d):
        nan = float("nan")
        return DMResult(nan, nan, 0.0, 0.0, n, identical=True)
    ref = float(reference_loss) if reference_loss else float("nan")
    relative = float(d.mean() / ref) if n and np.isfinite(ref) else float("nan")
    shift = tolerance * ref if np.isfinite(ref) else 0.0
    d = d - shift
    mean = float(d.mean()) if n else 0.0
    if n < 3:
        return DMResult(0.0, 0.5, mean, relative, n)
    variance = newey_west_variance(d, horizon - 1)
    if not variance > 1e-300 or np.all(d == d[0]):
        # Constant series: no noise to weigh, the sign decides (zero mean: no evidence).
        stat = 0.0 if abs(mean) < 1e-15 else float(np.sign(mean) * np.inf)
    else:
        stat = mean / np.sqrt(variance / n)
        h = horizon
        stat *= np.sqrt(max(n + 1 - 2 * h + h * (h - 1) / n, 1.0) / n)
    p = float(stats.t.sf(stat, df=n - 1)) if np.isfinite(stat) else float(stat < 0)
    return DMResult(float(stat), p, mean, relative, n)


def pinball_by_row(frame: pd.DataFrame, outcomes: pd.Series) -> pd.Series:
    """Mean pinball loss over the quantile columns of each row (NaN without an outcome)."""
    levels = np.asarray(frame.columns, dtype=float)
    y = outcomes.reindex(frame.index).to_numpy(dtype=float)
    diff = y[:, None] - frame.to_numpy(dtype=float)
    loss = np.mean(np.maximum(levels * diff, (levels - 1) * diff), axis=1)
    return pd.Series(loss, index=frame.index)


def absolute_error_by_row(frame: pd.DataFrame, outcomes: pd.Series) -> pd.Series:
    """Absolute error of the median column (0.5) of each row."""
    median = frame[_median_column(frame)].to_numpy(dtype=float)
    y = outcomes.reindex(frame.index).to_numpy(dtype=float)
    return pd.Series(np.abs(y - median), index=frame.index)


def _median_column(frame: pd.DataFrame) -> float:
    for column in frame.columns:
        if abs(float(column) - 0.5) < 1e-9:
            return column
    raise ValueError(f"no median column 0.5 in {list(frame.columns)}")


LOSSES = {"pinball": pinball_by_row, "ae": absolute_error_by_row}


def compare_forecasts(
    candidate: pd.DataFrame,
    reference: pd.DataFrame,
    outcomes: pd.Series,
    horizons: tuple[int, ...],
    *,
    tolerance: float = 0.0,
    losses: tuple[str, ...] = ("pinball", "ae"),
) -> dict[tuple[int, str], DMResult]:
    """DM tests of ``candidate`` against ``reference`` on the rows both have, per horizon.

    Args:
        candidate: Quantile frame indexed by (date, ticker, horizon).
        reference: Quantile frame on an overlapping index (only shared rows count).
        outcomes: Realized log returns on that index (rows without one are dropped).
        horizons: Horizons to test.
        tolerance: Practical tolerance (relative to the reference's mean loss).
        losses: Names from :data:`LOSSES`.

    Returns:
        ``(horizon, loss) -> DMResult``; horizons with no shared scored row are left out.
    """
    shared = candidate.index.intersection(reference.index)
    y = outcomes.reindex(shared)
    shared = shared[np.isfinite(y.to_numpy(dtype=float))]
    results: dict[tuple[int, str], DMResult] = {}
    horizon_level = shared.get_level_values("horizon")
    for h in horizons:
        rows = shared[horizon_level == h]
        if len(rows) == 0:
            continue
        for loss in losses:
            cand = LOSSES[loss](candidate.loc[rows], y)
            ref = LOSSES[loss](reference.loc[rows], y)
            by_date = (cand - ref).groupby(level="date").mean().sort_index()
            results[(h, loss)] = dm_test(
                by_date.to_numpy(), h, reference_loss=float(ref.mean()), tolerance=tolerance
            )
    return results


def flatten_dm(results: dict[tuple[int, str], DMResult], against: str) -> dict[str, float]:
    """Flat metrics ``h{h}_dm_{loss}_vs_{against}`` (statistic), ``..._p``, ``..._rel``."""
    metrics: dict[str, float] = {}
    for (h, loss), r in results.items():
        metrics |= result_metrics(f"h{h}_dm_{loss}_vs_{against}", r)
    return metrics


def result_metrics(name: str, result: DMResult) -> dict[str, float]:
    """Run metrics of a test: only the numbers that mean something.

    ``name`` (the statistic) when it is finite, ``name_p`` when there was a test, ``name_rel``
    and ``name_n``; identical losses give ``name_identical`` = 1 instead of a statistic and a
    p-value (a constant non-zero differential keeps its p-value, 0 or 1, and no statistic).
    """
    metrics = {f"{name}_rel": result.relative, f"{name}_n": float(result.n)}
    if result.identical:
        return metrics | {f"{name}_identical": 1.0}
    if np.isfinite(result.statistic):
        metrics[name] = float(result.statistic)
    if np.isfinite(result.p_value):
        metrics[f"{name}_p"] = float(result.p_value)
    return {k: v for k, v in metrics.items() if np.isfinite(v)}


def evidence_p_value(metrics: Mapping[str, float], name: str) -> float | None:
    """The one-sided p-value of the test ``name`` as read from run metrics.

    Identical losses are no evidence either way: 1.0, like a candidate that is not worse.

    Returns:
        The p-value, or None when the test was not run (neither ``_p`` nor ``_identical``).
    """
    if metrics.get(f"{name}_identical") == 1.0:
        return 1.0
    value = metrics.get(f"{name}_p")
    return None if value is None else float(value)
