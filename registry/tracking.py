"""Log a training run to MLflow and register its model version.

Everything a data scientist needs to judge a candidate is in its run: params (the whole
training config), metrics (model and baselines), plots, a model card, the exact dataset (lake
version, digest, watermark) and the registered version with its signature and tags.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import mlflow
import mlflow.data
import pandas as pd
from matplotlib.figure import Figure
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.models import infer_signature

from registry.pyfunc import ARTIFACT_KEY, ForecasterModel, save_forecaster, to_flat_quantiles
from training.forecaster import QuantileForecaster

MODEL_ARTIFACT = "model"
MEDIAN_TAG = "median"  # where the served median comes from (training.median), set at training


@dataclass(frozen=True)
class TrainingRecord:
    """What a training run produced, ready to log."""

    forecaster: QuantileForecaster
    mode: str  # "full" | "incremental"
    prices: pd.DataFrame
    features_example: pd.DataFrame
    lake_uri: str
    lake_version: int  # the prices table's Delta version the run read
    metrics: Mapping[str, float]
    metrics_source: str
    model_card: str
    figures: Mapping[str, Figure]
    parent_version: str | None = None
    prices_table_uri: str | None = None  # the Delta table itself (default: <lake_uri>/prices)
    median: str = "model"  # training.median.describe_median of the forecaster's policy

    @property
    def watermark(self) -> date:
        """Last price date the model saw."""
        return pd.Timestamp(self.prices["date"].max()).date()


@dataclass(frozen=True)
class LoggedCandidate:
    """A registered model version and its run."""

    version: str
    run_id: str


def flatten_params(config: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    """Nested config -> flat ``a.b`` params (MLflow params are flat strings)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def log_candidate(record: TrainingRecord, *, experiment: str, model_name: str) -> LoggedCandidate:
    """Log a run with params, metrics, plots, model card and dataset; register the model.

    Returns:
        The new model version and the run id.
    """
    mlflow.set_experiment(experiment)
    forecaster = record.forecaster
    tags = {
        "training_mode": record.mode,
        "watermark": record.watermark.isoformat(),
        "feature_version": forecaster.feature_version_,
        "lake_uri": record.lake_uri,
        "lake_version": str(record.lake_version),
        "metrics_source": record.metrics_source,
        "calibration": forecaster.config.calibration,
        MEDIAN_TAG: record.median,
    }
    if record.parent_version:
        tags["parent_version"] = record.parent_version
    with mlflow.start_run(run_name=f"{record.mode} {record.watermark}", tags=tags) as run:
        mlflow.log_params(flatten_params(forecaster.config.model_dump()))
        mlflow.log_params({"mode": record.mode, "tickers": record.prices["ticker"].nunique()})
        mlflow.log_metrics(dict(record.metrics))
        # The Delta table and version: a run says exactly which data it saw, and
        # `DeltaTable(path, version=...)` (or Spark's `versionAsOf`) reads that data back.
        source = DeltaDatasetSource(
            path=record.prices_table_uri or f"{record.lake_uri.rstrip('/')}/prices",
            delta_table_version=record.lake_version,
        )
        dataset = mlflow.data.from_pandas(
            record.prices, source=source, name=f"prices@lake-v{record.lake_version}"
        )
        mlflow.log_input(
            dataset,
            context="training",
            tags={
                "watermark": record.watermark.isoformat(),
                "lake_version": str(record.lake_version),
            },
        )
        for name, figure in record.figures.items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        mlflow.log_text(record.model_card, "model_card.md")
        info = _log_model(record, model_name)
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    for key, value in {**tags, "run_id": run.info.run_id}.items():
        client.set_model_version_tag(model_name, version, key, value)
    for key in ("h1_pinball_ewma_normal", "h5_pinball_ewma_normal", "h1_pinball_zero"):
        if key in record.metrics:
            client.set_model_version_tag(
                model_name, version, f"baseline.{key}", record.metrics[key]
            )
    client.update_model_version(model_name, version, description=record.model_card)
    return LoggedCandidate(version=version, run_id=run.info.run_id)


def _log_model(record: TrainingRecord, model_name: str) -> mlflow.models.model.ModelInfo:
    example = record.features_example.reset_index()
    output = to_flat_quantiles(record.forecaster.predict(record.features_example))
    with tempfile.TemporaryDirectory() as tmp:
        pickled = save_forecaster(record.forecaster, Path(tmp) / "forecaster.pkl")
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=ForecasterModel(),
            artifacts={ARTIFACT_KEY: str(pickled)},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=_requirements(),
            registered_model_name=model_name,
        )


def _requirements() -> list[str]:
    """Pinned to what trained the model, so a served copy unpickles the same classes.

    The model also needs this project's ``training`` package importable (it is in the bento and
    in the project's venv): shipping a copy with ``code_paths`` would make MLflow swap the
    imported module for the copy and break unpickling beside the serving code.
    """
    from importlib.metadata import version

    packages = ("mlflow", "xgboost-cpu", "pandas", "numpy", "scikit-learn", "scipy", "pydantic")
    return [f"{name}=={version(name)}" for name in packages]
