"""Forecast scores per horizon, coverage breakdowns and the leakage tripwire.

Inputs are a quantile frame (see :mod:`training.quantiles`) and the realized log returns as a
Series on the same (date, ticker, horizon) index; rows without an outcome are ignored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config import TrainingConfig

SCORE_COLUMNS: tuple[str, ...] = (
    "n",
    "mae_ratio",
    "r2_oos",
    "pinball",
    "winkler",
    "coverage",
    "width",
    "directional_accuracy",
    "up_rate",
    "rank_ic",
)


class LeakageError(ValueError):
    """Scores too good to be true for daily returns: almost surely a look-ahead bug."""


def _aligned(forecasts: pd.DataFrame, outcomes: pd.Series) -> tuple[pd.DataFrame, np.ndarray]:
    """Forecast rows that have a finite outcome, and those outcomes."""
    y = outcomes.reindex(forecasts.index).to_numpy(dtype=float)
    keep = np.isfinite(y)
    if not keep.any():
        raise ValueError("no forecast row has a known outcome to score against")
    return forecasts.loc[keep], y[keep]


def _origins(index: pd.Index) -> pd.MultiIndex:
    """The (date, ticker) origin of each forecast row of a (date, ticker, horizon) index."""
    return pd.MultiIndex.from_arrays(
        [index.get_level_values("date"), index.get_level_values("ticker")],
        names=["date", "ticker"],
    )


def _dates(origin: pd.Index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(origin.get_level_values("date"))


def pinball_losses(forecasts: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    """Pinball (quantile) loss of each row, averaged over the quantile columns.

    Args:
        forecasts: Quantile frame (columns are the levels).
        y: Outcome per row.

    Returns:
        Array of per-row mean pinball losses.
    """
    levels = np.asarray(forecasts.columns, dtype=float)
    diff = y[:, None] - forecasts.to_numpy(dtype=float)
    return np.mean(np.maximum(levels * diff, (levels - 1) * diff), axis=1)


def winkler_scores(lower: np.ndarray, upper: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Winkler interval score: width plus ``2/alpha`` times the distance outside the interval."""
    below = np.maximum(lower - y, 0.0)
    above = np.maximum(y - upper, 0.0)
    return (upper - lower) + (2.0 / alpha) * (below + above)


def rank_ic(point: pd.Series, y: pd.Series) -> float:
    """Mean over dates of the cross-sectional Spearman correlation of forecast and outcome.

    Dates with fewer than three tickers or a constant forecast or outcome are skipped.

    Args:
        point: Point forecasts indexed by (date, ticker).
        y: Outcomes on the same index.

    Returns:
        The average IC, NaN when no date qualifies (e.g. a single ticker).
    """
    dates = point.index.get_level_values("date").to_numpy()
    frame = pd.DataFrame({"date": dates, "f": point.to_numpy(float), "y": y.to_numpy(float)})
    ranks = frame.groupby("date")[["f", "y"]].rank()
    ranks["date"] = dates
    ranks["fy"], ranks["ff"], ranks["yy"] = ranks.f * ranks.y, ranks.f**2, ranks.y**2
    g = ranks.groupby("date")
    n = g["f"].count()
    mean_f, mean_y = g["f"].mean(), g["y"].mean()
    cov = g["fy"].mean() - mean_f * mean_y
    var_f, var_y = g["ff"].mean() - mean_f**2, g["yy"].mean() - mean_y**2
    valid = (n >= 3) & (var_f > 1e-12) & (var_y > 1e-12)
    if not valid.any():
        return float("nan")
    return float((cov[valid] / np.sqrt(var_f[valid] * var_y[valid])).mean())


def score_forecasts(
    forecasts: pd.DataFrame, outcomes: pd.Series, config: TrainingConfig
) -> pd.DataFrame:
    """Scores of one method per horizon.

    Point forecast = the median; errors compare with the zero-return forecast (MAE ratio,
    R2oos = 1 - SSE / sum y^2). The interval is ``config.interval_levels``. Directional
    accuracy counts a median >= 0 as a call for "up" (so zero scores the always-up rate).

    Args:
        forecasts: Quantile frame.
        outcomes: Realized log returns on the (date, ticker, horizon) index.
        config: Gives the headline interval.

    Returns:
        Frame indexed by horizon with columns :data:`SCORE_COLUMNS`.
    """
    kept, y = _aligned(forecasts, outcomes)
    lo_level, hi_level = config.interval_levels
    lower, upper = kept[lo_level].to_numpy(float), kept[hi_level].to_numpy(float)
    median = kept[0.5].to_numpy(float)
    rows = pd.DataFrame(
        {
            "horizon": kept.index.get_level_values("horizon"),
            "abs_err": np.abs(y - median),
            "abs_y": np.abs(y),
            "sq_err": (y - median) ** 2,
            "sq_y": y**2,
            "pinball": pinball_losses(kept, y),
            "winkler": winkler_scores(lower, upper, y, 1 - config.interval_coverage),
            "covered": ((y >= lower) & (y <= upper)).astype(float),
            "width": upper - lower,
            "hit": ((median >= 0) == (y > 0)).astype(float),
            "up": (y > 0).astype(float),
        }
    )
    g = rows.groupby("horizon")
    out = pd.DataFrame(
        {
            "n": g.size(),
            "mae_ratio": g.abs_err.sum() / g.abs_y.sum(),
            "r2_oos": 1 - g.sq_err.sum() / g.sq_y.sum(),
            "pinball": g.pinball.mean(),
            "winkler": g.winkler.mean(),
            "coverage": g.covered.mean(),
            "width": g.width.mean(),
            "directional_accuracy": g.hit.mean(),
            "up_rate": g.up.mean(),
        }
    )
    origin = _origins(kept.index)
    point = pd.Series(median, index=origin)
    realized = pd.Series(y, index=origin)
    horizons = kept.index.get_level_values("horizon").to_numpy()
    out["rank_ic"] = [rank_ic(point[horizons == h], realized[horizons == h]) for h in out.index]
    return out.loc[:, list(SCORE_COLUMNS)]


def coverage_breakdown(
    forecasts: pd.DataFrame, outcomes: pd.Series, sigma: pd.Series, config: TrainingConfig
) -> pd.DataFrame:
    """Empirical coverage of the headline interval, pooled and per group.

    Groups: calendar year of the forecast origin, ticker, and tercile of the ex-ante daily
    vol ``sigma`` (thresholds from all scored origins, so "high" means high in that sample).

    Args:
        forecasts: Quantile frame.
        outcomes: Realized log returns on the same index.
        sigma: Ex-ante daily vol indexed by (date, ticker).
        config: Gives the headline interval.

    Returns:
        Long frame with columns ``horizon, group, key, coverage, n`` where ``group`` is one
        of ``pooled, year, ticker, vol_tercile``.
    """
    kept, y = _aligned(forecasts, outcomes)
    lo_level, hi_level = config.interval_levels
    covered = (y >= kept[lo_level].to_numpy(float)) & (y <= kept[hi_level].to_numpy(float))
    origin = _origins(kept.index)
    vol = sigma.reindex(origin).to_numpy(float)
    terciles = pd.qcut(vol, 3, labels=["low", "mid", "high"]) if np.isfinite(vol).all() else None
    rows = pd.DataFrame(
        {
            "horizon": kept.index.get_level_values("horizon"),
            "covered": covered.astype(float),
            "pooled": "all",
            "year": _dates(origin).year.astype(str),
            "ticker": origin.get_level_values("ticker"),
        }
    )
    if terciles is not None:
        rows["vol_tercile"] = np.asarray(terciles, dtype=object)
    parts = []
    for group in ("pooled", "year", "ticker", "vol_tercile"):
        if group not in rows:
            continue
        stats = rows.groupby(["horizon", group])["covered"].agg(["mean", "size"]).reset_index()
        stats.columns = ["horizon", "key", "coverage", "n"]
        stats.insert(1, "group", group)
        parts.append(stats)
    return pd.concat(parts, ignore_index=True)


def check_leakage(scores: pd.DataFrame, config: TrainingConfig) -> list[str]:
    """Reasons a method's scores at ``config.tripwire_horizon`` look too good to be true.

    Args:
        scores: Output of :func:`score_forecasts` for one method.
        config: Gives the horizon and thresholds.

    Returns:
        One message per tripped threshold (empty when nothing trips).
    """
    h = config.tripwire_horizon
    if h not in scores.index:
        raise ValueError(f"scores lack the tripwire horizon h={h}")
    row = scores.loc[h].to_dict()
    limits = [
        ("mae_ratio", "<", config.tripwire_max_mae_ratio),
        ("directional_accuracy", ">", config.tripwire_max_directional_accuracy),
        ("r2_oos", ">", config.tripwire_max_r2_oos),
        ("rank_ic", ">", config.tripwire_max_rank_ic),
    ]
    reasons = []
    for name, op, limit in limits:
        value = float(row[name])
        # NaN (e.g. no cross-section for a rank IC) compares False: it never trips.
        if value < limit if op == "<" else value > limit:
            reasons.append(
                f"h={h}: {name}={value:.4f} {op} {limit} (too good to be true: look-ahead?)"
            )
    return reasons


def assert_no_leakage(scores: pd.DataFrame, config: TrainingConfig) -> None:
    """Raise :class:`LeakageError` listing every tripped threshold, if any."""
    reasons = check_leakage(scores, config)
    if reasons:
        raise LeakageError("; ".join(reasons))


def miss_breakdown(
    forecasts: pd.DataFrame, outcomes: pd.Series, sigma: pd.Series, config: TrainingConfig
) -> pd.DataFrame:
    """Where the headline interval misses, per horizon and month of the forecast origin.

    Coverage alone cannot say why a year falls short; the side of the misses and the size of
    the outcomes relative to the ex-ante vol can: a volatility surprise shows as misses on both
    sides and an RMS normalized outcome above 1, a drift as misses mostly on one side.

    Args:
        forecasts: Quantile frame.
        outcomes: Realized log returns on the same index.
        sigma: Ex-ante daily vol indexed by (date, ticker).
        config: Gives the headline interval.

    Returns:
        Frame indexed by ``(horizon, month)`` (``"2018-02"``) with columns ``n``, ``coverage``,
        ``below`` and ``above`` (shares of outcomes under the lower / over the upper bound) and
        ``rms_z`` (root mean square of ``outcome / (sigma * sqrt(h))``; about 1 when the
        ex-ante vol was right).
    """
    kept, y = _aligned(forecasts, outcomes)
    lo_level, hi_level = config.interval_levels
    horizon = kept.index.get_level_values("horizon").to_numpy()
    origin = _origins(kept.index)
    vol = sigma.reindex(origin).to_numpy(float)
    rows = pd.DataFrame(
        {
            "horizon": horizon,
            "month": _dates(origin).strftime("%Y-%m"),
            "below": (y < kept[lo_level].to_numpy(float)).astype(float),
            "above": (y > kept[hi_level].to_numpy(float)).astype(float),
            "z2": (y / (vol * np.sqrt(horizon))) ** 2,
        }
    )
    grouped = rows.groupby(["horizon", "month"])
    table = grouped[["below", "above"]].mean()
    table.insert(0, "n", grouped.size())
    table.insert(1, "coverage", 1.0 - table["below"] - table["above"])
    table["rms_z"] = np.sqrt(grouped["z2"].mean())
    return table
