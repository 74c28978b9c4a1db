"""The booster fit: the one step of training that an engine other than this process may run.

:class:`training.forecaster.QuantileForecaster` builds the design matrix and the vol-normalized
labels (scaled by :mod:`training.vol_scale`), takes the XGBoost parameters from
:func:`booster_params`, then hands them to a :data:`BoosterFit`. Whatever runs the
fit (this process, or a Dask cluster through ``finsimples.dask_training``) returns a plain
``xgboost.Booster``: prediction, conformal calibration, pickling and serving never know which.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import xgboost as xgb

from training.config import TrainingConfig


class BoosterFit(Protocol):
    """Fit ``rounds`` trees of ``params`` on ``design``/``labels`` (continuing ``previous``)."""

    def __call__(
        self,
        params: dict[str, Any],
        design: np.ndarray,
        labels: np.ndarray,
        rounds: int,
        previous: xgb.Booster | None,
    ) -> xgb.Booster:
        """The fitted booster: ``previous``'s trees (when given) plus ``rounds`` new ones."""
        ...


def fit_in_process(
    params: dict[str, Any],
    design: np.ndarray,
    labels: np.ndarray,
    rounds: int,
    previous: xgb.Booster | None,
) -> xgb.Booster:
    """The default engine: ``xgboost.train`` on a QuantileDMatrix in this process.

    Args:
        params: XGBoost parameters (``max_bin`` also bins the QuantileDMatrix).
        design: Feature matrix ``(rows, features)``, float32.
        labels: Targets ``(rows,)``, all finite.
        rounds: Boosting rounds to add.
        previous: A booster to continue (continued boosting keeps its trees), or None.

    Returns:
        The trained booster.
    """
    data = xgb.QuantileDMatrix(design, labels, max_bin=params["max_bin"])
    return xgb.train(params, data, num_boost_round=rounds, xgb_model=previous)


def booster_params(config: TrainingConfig, learning_rate: float) -> dict[str, Any]:
    """The XGBoost parameters of one multi-quantile booster, at ``learning_rate``."""
    b = config.booster
    return {
        "objective": "reg:quantileerror",
        "quantile_alpha": np.asarray(config.quantiles),
        "tree_method": "hist",
        "max_depth": b.max_depth,
        "eta": learning_rate,
        "subsample": b.subsample,
        "colsample_bytree": b.colsample_bytree,
        "min_child_weight": b.min_child_weight,
        "lambda": b.reg_lambda,
        "max_bin": b.max_bin,
        "nthread": b.n_jobs,
        "seed": b.seed,
    }
