"""The forecaster as an MLflow pyfunc model: what the registry stores and `mlflow models serve`
can serve. FinSimples' own services load the native forecaster out of it (no pyfunc overhead).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from training.forecaster import QuantileForecaster

ARTIFACT_KEY = "forecaster"


def save_forecaster(forecaster: QuantileForecaster, path: Path) -> Path:
    """Pickle a fitted forecaster (XGBoost boosters pickle with their trees)."""
    path.write_bytes(pickle.dumps(forecaster, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load_forecaster(path: Path) -> QuantileForecaster:
    """Unpickle a forecaster written by :func:`save_forecaster` (trusted: our registry only)."""
    forecaster = pickle.loads(path.read_bytes())  # noqa: S301 - our registry's own artifact
    if not isinstance(forecaster, QuantileForecaster):
        raise TypeError(f"{path} holds a {type(forecaster).__name__}, not a QuantileForecaster")
    return forecaster


class ForecasterModel(mlflow.pyfunc.PythonModel):
    """Input: feature rows (``date``, ``ticker`` and the feature columns, as built by
    ``training.features.build_features``). Output: one row per (date, ticker, horizon) with the
    calibrated quantiles of the log return as columns ``q0.05``, ``q0.5``, ...
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load the pickled forecaster from the model's artifacts."""
        self.forecaster = load_forecaster(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Quantile forecasts for every feature row and horizon."""
        features = model_input.assign(date=pd.to_datetime(model_input["date"]))
        frame = self.forecaster.predict(features.set_index(["date", "ticker"]))
        return to_flat_quantiles(frame)


def to_flat_quantiles(frame: pd.DataFrame) -> pd.DataFrame:
    """A quantile frame with plain string columns (``q0.05``), as JSON and MLflow want."""
    flat = frame.copy()
    flat.columns = [f"q{level:g}" for level in frame.columns]
    return flat.reset_index()
