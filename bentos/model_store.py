"""The served model in the BentoML model store: imported from the registry's ``@champion``.

``import_champion`` copies the champion's pickled forecaster and its record (version, run id,
watermark, metrics, model card) out of MLflow into a BentoML model, so ``bentoml build``
packages it and a replica starts without reaching MLflow. Serving then reads the pickle directly
(no MLflow import, no pyfunc wrapper: less memory, faster start).

The service module imports :data:`BENTO_MODEL_NAME` from here in BentoML's supervisor process
too, so everything beyond ``bentoml`` is imported inside the functions (pandas and XGBoost come
with ``bentos.predictor`` and ``training``).

``bentoml serve`` resolves the service's declared model before it starts, so the model must be
in the store even for local development: run ``python -m bentos.package --prepare`` first.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bentoml
from bentoml.exceptions import NotFound

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from bentos.predictor import ModelInfo
    from finsimples.settings import Settings
    from registry.promotion import ModelRegistry
    from training.forecaster import QuantileForecaster

log = logging.getLogger(__name__)

BENTO_MODEL_NAME = "finsimples-forecaster"
"""Name of the model in the BentoML store (the registry's name is a setting)."""
FORECASTER_FILE = "forecaster.pkl"
INFO_FILE = "model_info.json"
CHAMPION = "champion"


def bento_version(info: ModelInfo) -> str:
    """The store version of a registry version: ``v<version>-<run id prefix>``.

    The run id keeps versions of two registries (or a re-created one) from colliding.
    """
    return f"v{info.version}-{info.run_id[:12]}".lower()


def model_info(
    version: ModelVersion, metrics: dict[str, float], model_name: str, alias: str, source: str
) -> ModelInfo:
    """A :class:`ModelInfo` from an MLflow model version and its run's metrics."""
    from bentos.predictor import ModelInfo

    tags = {str(k): str(v) for k, v in (version.tags or {}).items()}
    return ModelInfo(
        model_name=model_name,
        version=str(version.version),
        alias=alias,
        run_id=str(version.run_id or tags.get("run_id", "")),
        watermark=tags.get("watermark", ""),
        feature_version=tags.get("feature_version", ""),
        metrics={k: float(v) for k, v in metrics.items()},
        tags=tags,
        description=version.description or "",
        source=source,
    )


def _registered(
    settings: Settings, alias: str, version: str | None
) -> tuple[ModelRegistry, ModelVersion]:
    from jobs.common import JobError, open_registry  # MLflow: import on demand

    registry = open_registry(settings)
    found = registry.get(version) if version else registry.version_by_alias(alias)
    if found is None:
        raise JobError(
            f"model {settings.model_name!r} has no @{alias}: run `finsimples train --full`"
        )
    return registry, found


def _alias_of(found: ModelVersion, default: str) -> str:
    aliases = list(found.aliases or [])
    return CHAMPION if CHAMPION in aliases else (aliases[0] if aliases else default)


def _download_forecaster(registry: ModelRegistry, version: ModelVersion, into: Path) -> Path:
    """Download a version's MLflow model and return the path of its pickled forecaster."""
    import mlflow
    from mlflow.models import Model

    from registry.pyfunc import ARTIFACT_KEY

    uri = f"models:/{registry.model_name}/{version.version}"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(into)))
    artifacts = Model.load(str(local)).flavors["python_function"].get("artifacts", {})
    relative = artifacts.get(ARTIFACT_KEY, {}).get("path", f"artifacts/{ARTIFACT_KEY}.pkl")
    return local / relative


def import_champion(
    settings: Settings, alias: str = CHAMPION, version: str | None = None
) -> bentoml.Model:
    """Copy the registry's ``@alias`` version into the BentoML model store (idempotent).

    Args:
        settings: Where the registry is (``mlflow_tracking_uri``) and the model's name.
        alias: The registry alias to import.
        version: Import this registry version instead (a pinned deploy or a rollback).

    Returns:
        The BentoML model ``finsimples-forecaster:v<version>-<run>``, labelled with the
        registry version, run id and data watermark; the newest in the store, so the
        service's ``finsimples-forecaster:latest`` is this model.

    Raises:
        JobError: The alias points at no version.
        PromotionError: No such version.
    """
    registry, found = _registered(settings, alias, version)
    metrics = registry.client.get_run(found.run_id).data.metrics if found.run_id else {}
    alias = _alias_of(found, alias) if version else alias
    info = model_info(found, dict(metrics), settings.model_name, alias, source="")
    tag = f"{BENTO_MODEL_NAME}:{bento_version(info)}"
    try:
        existing = bentoml.models.get(tag)
        log.info("%s is already in the model store", existing.tag)
        return existing
    except NotFound:
        pass
    labels = {
        "registered_model": info.model_name,
        "version": info.version,
        "alias": alias,
        "run_id": info.run_id,
        "watermark": info.watermark,
        "feature_version": info.feature_version,
    }
    with tempfile.TemporaryDirectory() as tmp:
        pickled = _download_forecaster(registry, found, Path(tmp))
        with bentoml.models.create(tag, labels=labels, metadata={"source": "mlflow"}) as model:
            shutil.copyfile(pickled, Path(model.path) / FORECASTER_FILE)
            (Path(model.path) / INFO_FILE).write_text(json.dumps(asdict(info), indent=1))
    log.info("imported %s v%s as %s", info.model_name, info.version, model.tag)
    return model


def _unpickle(path: Path) -> QuantileForecaster:
    from training.forecaster import QuantileForecaster

    # The same check as registry.pyfunc.load_forecaster, which this module does not import:
    # it would pull MLflow into every replica. Trusted input: our own registry's artifact.
    forecaster = pickle.loads(path.read_bytes())  # noqa: S301 - our registry's own artifact
    if not isinstance(forecaster, QuantileForecaster):
        raise TypeError(f"{path} holds a {type(forecaster).__name__}, not a QuantileForecaster")
    return forecaster


def load_from_store(model: bentoml.Model) -> tuple[QuantileForecaster, ModelInfo]:
    """The forecaster and record of a model imported by :func:`import_champion`."""
    from bentos.predictor import ModelInfo

    path = Path(model.path)
    record: dict[str, Any] = json.loads((path / INFO_FILE).read_text())
    record["source"] = f"bentoml:{model.tag}"
    return _unpickle(path / FORECASTER_FILE), ModelInfo(**record)


def home_model_store() -> Any:
    """The model store under ``BENTOML_HOME``: where ``import_champion`` (and so the pod's
    ``bentos.model_fetch``) writes. Not the one ``bentoml serve`` of a bento resolves the
    service's model from, which is the bento's own ``models/`` folder."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models.model import ModelStore

    return ModelStore(BentoMLContainer.model_store_dir.get())


def served_model(packaged: bentoml.Model, version: str | None) -> bentoml.Model:
    """The model a replica serves: ``packaged``, unless ``version`` (``Settings.model_version``)
    pins a registry version, which must be in :func:`home_model_store` already.

    Raises:
        LookupError: the pinned version was not imported (the pod's init container failed, or
            none ran).
    """
    if not version:
        return packaged
    store = home_model_store()
    for model in store.list(BENTO_MODEL_NAME):
        if model.info.labels.get("version") == version:
            found: bentoml.Model = model
            return found
    raise LookupError(
        f"model_version={version!r}: no {BENTO_MODEL_NAME} of registry version {version} in "
        f"the model store under BENTOML_HOME; expected `python -m bentos.model_fetch` (the pod's "
        "model-fetch init container) to import it first"
    )


def load_registry_version(settings: Settings, version: str) -> tuple[QuantileForecaster, ModelInfo]:
    """A registry version loaded straight from MLflow (the deploy hook's warm-up)."""
    registry, found = _registered(settings, CHAMPION, version)
    metrics = registry.client.get_run(found.run_id).data.metrics if found.run_id else {}
    uri = f"models:/{settings.model_name}/{version}"
    info = model_info(
        found, dict(metrics), settings.model_name, _alias_of(found, ""), source=f"mlflow:{uri}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        forecaster = _unpickle(_download_forecaster(registry, found, Path(tmp)))
    return forecaster, info
