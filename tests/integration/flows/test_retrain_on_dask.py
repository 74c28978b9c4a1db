"""The retrain flow, unchanged, on a Dask cluster: only FINSIMPLES_TRAINING_ENGINE and
FINSIMPLES_DASK_SCHEDULER differ from every other flow test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import xgboost as xgb
from distributed import Client, get_task_stream

from flows.retrain import retrain_flow
from jobs.common import load_version
from tests.dask_cluster import WORKERS, dask_client, dask_cluster
from tests.integration.flows.conftest import make_world
from tests.integration.training.test_dask_training import trained_on
from training.forecaster import QuantileForecaster

pytestmark = pytest.mark.integration
__all__ = ["dask_client", "dask_cluster"]  # fixtures, used by name


def test_the_retrain_flow_fits_on_the_cluster_the_setting_names(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sample_wide: pd.DataFrame,
    dask_client: Client,
) -> None:
    world = make_world(
        monkeypatch,
        tmp_path,
        sample_wide,
        training_engine="dask",
        dask_scheduler=dask_client.scheduler.address,
    )

    with get_task_stream(dask_client) as stream:
        summary = retrain_flow()  # no champion: walk-forward gate and full fit, both on Dask

    assert summary.plan.mode == "full"
    assert summary.outcome is not None
    assert summary.outcome.promoted, summary.message
    assert len(trained_on(stream.data)) == WORKERS
    # One fit per anchor for the gate's fold and one for the candidate, each on every worker.
    anchors = len(world.settings.training.anchor_horizons)
    fits = [t for t in stream.data if str(t["key"]).startswith("fn-")]
    assert len(fits) >= 2 * anchors * WORKERS
    champion = world.registry.champion()
    assert champion is not None
    loaded = load_version(world.registry, champion).forecaster  # as serving loads it
    assert type(loaded) is QuantileForecaster
    assert all(type(b) is xgb.Booster for b in loaded.boosters_.values())
