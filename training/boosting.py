"""The booster fit: the one step of training that an engine other than this process may run.

:class:`training.forecaster.QuantileForecaster` builds the design matrix, the vol-normalized
labels and the XGBoost parameters, then hands them to a :data:`BoosterFit`. Whatever runs the
fit (this process, or a Dask cluster through ``finsimples.dask_training``) returns a plain
``xgboost.Booster``: prediction, conformal calibration, pickling and serving never know which.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import xgboost as xgb


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
