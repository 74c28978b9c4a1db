"""Do the model's features carry information? The model against itself with its features permuted.

A model trained on misaligned features (a join on the wrong key, rows shuffled by a bug) can
still produce calibrated ranges: the conformal steps widen whatever the boosters output, and the
target's EWMA scale does the rest. Comparing its loss with a baseline's cannot tell it from an
honest model with a small edge. Permutation importance (Breiman 2001; Fisher, Rudin & Dominici
2019, "model reliance") can: the same fitted model forecasts the same rows twice, once on the
real features and once with the feature vectors permuted across the rows (each row gets another
row's features, all of them together, so every input stays realistic), and a Diebold-Mariano
test on the pinball losses asks whether the real features make the forecasts better. For a
model that learned nothing from its features the two are the same in expectation; for an honest
one the permuted forecasts are worse.

The volatility columns (:data:`~training.features.VOLATILITY_COLUMNS`) are never permuted. The
EWMA volatility scales the target, and a model trained on shuffled rows learns to undo that
scale with the other volatility columns: permuting them measures a scale mismatch, not
information (measured: a shuffled-features candidate lost 0.2-0.6% pinball at h = 1 when they
were permuted, nothing when they were kept). So the test asks whether the features beyond
volatility, the ones the EWMA-normal baseline does not have, make the forecasts better.
The forecasts are the model's own, ACI replayed as when served
(``QuantileForecaster.predict_online``), but with the model's median at every horizon: where the
median policy serves the zero-return median, that median would hide what the features say.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from training.config import TrainingConfig
from training.dm_test import DMResult, dm_test, pinball_by_row, result_metrics
from training.evaluation import recent_forecasts
from training.features import VOLATILITY_COLUMNS
from training.forecaster import QuantileForecaster


def permute_features(
    features: pd.DataFrame,
    start: pd.Timestamp,
    rng: np.random.Generator,
    keep: tuple[str, ...] = VOLATILITY_COLUMNS,
) -> pd.DataFrame:
    """``features`` with the rows dated ``start`` or later given each other's feature vectors.

    Args:
        features: Feature frame indexed by (date, ticker).
        start: First date whose rows are permuted (earlier rows are left as they are).
        rng: Source of the permutation.

    Returns:
        A copy; the ``keep`` columns are not permuted.
    """
    out = features.copy()
    rows = np.flatnonzero(out.index.get_level_values("date") >= start)
    columns = [i for i, name in enumerate(out.columns) if name not in keep]
    block = out.iloc[rows, columns].to_numpy()
    out.iloc[rows, columns] = block[rng.permutation(len(rows))]
    return out


def feature_permutation_test(
    model: QuantileForecaster,
    features: pd.DataFrame,
    prices: pd.DataFrame,
    config: TrainingConfig,
    days: int,
    horizons: tuple[int, ...],
    *,
    permutations: int = 5,
    tolerance: float = 0.0,
    seed: int = 0,
    keep: tuple[str, ...] = VOLATILITY_COLUMNS,
) -> dict[int, DMResult]:
    """One-sided DM test per horizon: are the forecasts worse with the features permuted?

    The model forecasts the latest ``days`` feature dates with known outcomes (their labels
    were never in its boosters) on the real features and on ``permutations`` permutations of
    the rows from its calibration window on (ACI replays through the window); the permuted
    losses are averaged per row, so the test's noise is the outcomes', not one permutation's.

    Args:
        model: A fitted forecaster.
        features: ``build_features(prices)`` through the last date.
        prices: The price panel the features come from.
        config: Gives the horizons of the outcomes.
        days: How many of the latest feature dates to score.
        horizons: Horizons to test.
        permutations: Permutations averaged.
        tolerance: A gain up to this share of the model's mean pinball loss counts as none
            (the gate uses none: any information counts).
        seed: Seed of the permutations (the verdict is reproducible).
        keep: Columns left in place (default: the volatility columns).

    Returns:
        Horizon -> :class:`~training.dm_test.DMResult` of ``d = L_permuted - L_real``: a small
        p-value means the real features make the forecasts significantly better; ``relative``
        is the permuted forecasts' extra pinball loss as a share of the model's.

    Raises:
        ValueError: fewer than ``days`` feature dates, or ``permutations`` < 1.
    """
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    if model.calibration_start_ is None:
        raise ValueError("the forecaster is not fitted: call fit first")
    model = copy.copy(model)
    model.median_sources_ = {}  # the model's own median: see the module's docstring
    real, outcomes = recent_forecasts({"real": model}, features, prices, config, days)
    start = model.calibration_start_
    rng = np.random.default_rng(seed)
    permuted = [
        recent_forecasts(
            {"permuted": model}, permute_features(features, start, rng, keep), prices, config, days
        )[0]["permuted"]
        for _ in range(permutations)
    ]
    known = np.isfinite(outcomes.to_numpy(dtype=float))
    horizon = real["real"].index.get_level_values("horizon")
    results = {}
    for h in horizons:
        rows = real["real"].index[known & (horizon == h)]
        if len(rows) == 0:
            continue
        y = outcomes.loc[rows]
        own = pinball_by_row(real["real"].loc[rows], y)
        other = sum(pinball_by_row(frame.loc[rows], y) for frame in permuted) / permutations
        by_date = (other - own).groupby(level="date").mean().sort_index()
        results[h] = dm_test(
            by_date.to_numpy(), h, reference_loss=float(own.mean()), tolerance=tolerance
        )
    return results


def flatten_feature_test(results: dict[int, DMResult]) -> dict[str, float]:
    """Flat metrics ``h{h}_features_dm`` (statistic), ``..._p``, ``..._rel`` and ``..._n``."""
    metrics: dict[str, float] = {}
    for h, r in results.items():
        metrics |= result_metrics(f"h{h}_features_dm", r)
    return metrics
