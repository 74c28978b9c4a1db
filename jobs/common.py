"""What every job needs: the registry, the champion's forecaster, prices from the lake."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from finsimples.lake import Lake, Snapshot
from finsimples.settings import Settings
from registry.promotion import ModelRegistry
from training.forecaster import QuantileForecaster


class JobError(RuntimeError):
    """A job that cannot run as asked; the message says what to do instead."""


@dataclass(frozen=True)
class Champion:
    """The serving model: its registry version and the native forecaster."""

    version: ModelVersion
    forecaster: QuantileForecaster
    metrics: dict[str, float]


def open_registry(settings: Settings) -> ModelRegistry:
    """Point MLflow at the configured store (creating the local state folder) and wrap it."""
    if settings.mlflow_tracking_uri is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    return ModelRegistry(client, settings.model_name, settings.audit_experiment_name)


def load_version(registry: ModelRegistry, version: ModelVersion) -> Champion:
    """Load a registered version's forecaster and its run's metrics."""
    model = mlflow.pyfunc.load_model(f"models:/{registry.model_name}/{version.version}")
    forecaster = model.unwrap_python_model().forecaster
    metrics = registry.client.get_run(version.run_id).data.metrics if version.run_id else {}
    return Champion(version=version, forecaster=forecaster, metrics=dict(metrics))


def load_champion(registry: ModelRegistry) -> Champion:
    """The champion, loaded.

    Raises:
        JobError: no version holds the champion alias yet.
    """
    version = registry.champion()
    if version is None:
        raise JobError(
            f"model {registry.model_name!r} has no champion yet: run `finsimples train --full`"
        )
    return load_version(registry, version)


def read_training_prices(lake: Lake, snapshot: Snapshot | None = None) -> pd.DataFrame:
    """Every price in the lake (at ``snapshot``'s version: default the latest), as the training
    core wants them.

    Raises:
        JobError: the lake is empty.
    """
    prices = lake.read_prices(snapshot=snapshot)
    if prices.empty:
        raise JobError(f"the lake at {lake.uri} is empty: run `finsimples ingest PATH` first")
    return prices
