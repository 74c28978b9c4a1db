"""Training on Dask (``finsimples.engines``) against the single-process fit, on the sample.

The same walk-forward (SMALL config, six sample tickers, a year of forecasts) runs twice: boosters
fitted in process, then on a two-worker LocalCluster through ``xgboost.dask``. Distributed
``hist`` merges the workers' quantile sketches, so the trees differ slightly; the calibrated
forecasts must not: coverage within :data:`COVERAGE_TOLERANCE` and pinball loss within
:data:`PINBALL_TOLERANCE` at every scored horizon.
"""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from distributed import Client, LocalCluster, get_task_stream

from finsimples.engines import DaskBoosterFit, training_engine
from finsimples.settings import Settings
from tests.champion import SMALL, TICKERS
from tests.dask_cluster import WORKERS, dask_client, dask_cluster
from tests.servers import free_port
from training.evaluation import Backtest, run_backtest
from training.features import build_features
from training.forecaster import QuantileForecaster

pytestmark = pytest.mark.integration
__all__ = ["dask_client", "dask_cluster"]  # fixtures, used by name

COVERAGE_TOLERANCE = 0.01
"""Absolute, on 1,512 forecasts per horizon. Measured: Dask vs in process <= 0.004, two seeds of
the in-process fit <= 0.0033 (docs/benchmarks.md, "Training on Dask")."""
PINBALL_TOLERANCE = 0.01
"""Relative to the single-process pinball loss. Measured: Dask vs in process <= 0.25%, two seeds
of the in-process fit <= 0.2%."""
HORIZONS = (1, 5, 10, 30)
TEST_START, TEST_END = "2021-01-01", "2022-01-01"


@pytest.fixture(scope="module")
def prices(sample_wide: pd.DataFrame) -> pd.DataFrame:
    """Six sample tickers from 2012, long format."""
    subset = sample_wide.loc[sample_wide["Date"] >= "2012-01-01", ["Date", *TICKERS]]
    long = subset.melt(id_vars="Date", var_name="ticker", value_name="adj_close").dropna()
    return long.rename(columns={"Date": "date"}).reset_index(drop=True)


@pytest.fixture(scope="module")
def features(prices: pd.DataFrame) -> pd.DataFrame:
    return build_features(prices)


def walk(prices: pd.DataFrame, features: pd.DataFrame, **engine: object) -> Backtest:
    return run_backtest(
        prices, SMALL, TEST_START, TEST_END, {"model": QuantileForecaster}, features, **engine
    )


def trained_on(stream: list[dict]) -> set[str]:
    """The workers that ran xgboost.dask's per-worker tasks (``map_worker_partitions``' ``fn-*``:
    the QuantileDMatrix and the training on each worker's rows)."""
    return {task["worker"] for task in stream if str(task["key"]).startswith("fn-")}


def test_walk_forward_on_dask_matches_the_single_process_fit(
    prices: pd.DataFrame, features: pd.DataFrame, dask_client: Client
) -> None:
    local = walk(prices, features)
    with get_task_stream(dask_client) as stream:
        dask = walk(prices, features, engine=DaskBoosterFit(dask_client))

    assert len(trained_on(stream.data)) == WORKERS  # every worker trained on its rows
    for method in ("model_cqr", "model_aci"):
        for h in HORIZONS:
            ours, theirs = dask.scores.loc[(method, h)], local.scores.loc[(method, h)]
            assert ours["n"] == theirs["n"] > 1000, (method, h)
            assert abs(ours["coverage"] - theirs["coverage"]) <= COVERAGE_TOLERANCE, (method, h)
            gap = abs(ours["pinball"] / theirs["pinball"] - 1)
            assert gap <= PINBALL_TOLERANCE, (method, h, gap)
    # Not the same trees (a silent fallback to the local fit would give identical forecasts).
    assert not np.allclose(dask.forecasts["model_cqr"], local.forecasts["model_cqr"])


def test_a_dask_fit_is_the_forecaster_the_registry_and_serving_know(
    prices: pd.DataFrame, features: pd.DataFrame, dask_client: Client
) -> None:
    engine = DaskBoosterFit(dask_client)
    cut = pd.Timestamp("2021-06-01")
    early_f = features.loc[features.index.get_level_values("date") < cut]
    early_p = prices.loc[prices["date"] < cut]
    fitted = QuantileForecaster(SMALL).fit(early_f, early_p, engine=engine)
    local = QuantileForecaster(SMALL).fit(early_f, early_p)

    assert vars(fitted).keys() == vars(local).keys()  # nothing engine-specific is kept
    for h in SMALL.anchor_horizons:
        assert type(fitted.boosters_[h]) is xgb.Booster
        assert fitted.boosters_[h].num_boosted_rounds() == SMALL.booster.n_estimators
    copy = pickle.loads(pickle.dumps(fitted))  # as MLflow stores it
    latest = features.loc[features.index.get_level_values("date") == cut - pd.Timedelta(days=1)]
    latest = latest if len(latest) else early_f.tail(len(TICKERS))
    pd.testing.assert_frame_equal(copy.predict(latest), fitted.predict(latest))

    # An incremental update continues the same boosters on the cluster.
    fitted.update(features, prices, engine=engine)
    rounds = SMALL.booster.n_estimators + SMALL.update_rounds
    assert fitted.boosters_[1].num_boosted_rounds() == rounds
    assert fitted.calibration_start_ > local.calibration_start_


def test_the_settings_connect_the_engine_to_the_scheduler(dask_cluster: LocalCluster) -> None:
    settings = Settings(training_engine="dask", dask_scheduler=dask_cluster.scheduler_address)
    with training_engine(settings) as engine:
        assert isinstance(engine, DaskBoosterFit)
        assert len(engine.workers()) == WORKERS
    assert engine.client.status == "closed"  # the job's client does not outlive it


def test_an_unreachable_scheduler_fails_the_training_naming_its_address() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    settings = Settings(training_engine="dask", dask_scheduler=address)
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(OSError, match=address.removeprefix("tcp://")),
        training_engine(settings),
    ):
        pytest.fail("no engine without a scheduler")


def test_a_cluster_without_workers_fails_the_fit_naming_the_scheduler() -> None:
    with (
        LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=":0") as empty,
        Client(empty, set_as_default=False) as client,
        pytest.raises(RuntimeError, match=f"{empty.scheduler_address} has no workers"),
    ):
        DaskBoosterFit(client)({}, np.ones((4, 2), np.float32), np.ones(4), 1, None)
