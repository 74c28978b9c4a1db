"""Flows when things go wrong: a bad file, S3 down during ingest, MLflow down during retrain."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun

from finsimples.drop import QUARANTINE_DIR
from finsimples.ingest import ingest_files
from flows.deploy_hook import deploy_hook_flow
from flows.ingest import ingest_flow
from flows.retrain import retrain_flow
from jobs import train as train_job
from tests.champion import fit_small, register_champion
from tests.conftest import S3_KEY
from tests.fakes.tcp_proxy import TcpProxy
from tests.integration.flows.conftest import SMALL_DRIFT, World, make_world

pytestmark = pytest.mark.integration


def _task_runs(state: object) -> dict[str, TaskRun]:
    """The task runs of a finished flow run, by task name."""
    flow_run_id = state.state_details.flow_run_id  # type: ignore[attr-defined]
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name.rsplit("-", 1)[0]: run for run in runs}


@pytest.fixture
def proxy(request: pytest.FixtureRequest) -> Iterator[TcpProxy]:
    """A cuttable link to the server whose URL the test's ``server_url`` parameter names."""
    url = request.getfixturevalue(request.param)
    link = TcpProxy(int(urlparse(url).port or 0)).start()
    yield link
    link.cut()


def test_a_bad_file_is_quarantined_and_the_rest_proceeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide)
    good = world.drop_next_day()
    world.drop.put("BAD.csv", b"Date,Open,High,Low,Close,Volume\n2022-11-22,10,11,9,-5,100\n")

    summary = ingest_flow()

    assert summary.processed == [good.name]
    assert list(summary.quarantined) == ["BAD.csv"]
    assert "BAD.csv" in summary.quarantined["BAD.csv"]
    assert "-5" in summary.quarantined["BAD.csv"]
    assert world.last_date() == good.day
    assert world.drop.pending() == []
    [quarantined] = world.drop.handled(QUARANTINE_DIR)
    assert quarantined.endswith("-BAD.csv")
    note = world.drop.location.read_bytes(world.drop.location.path(QUARANTINE_DIR, quarantined))
    assert note.startswith(b"Date,")
    error = world.drop.location.path(QUARANTINE_DIR, f"{quarantined}.error.txt")
    assert world.drop.location.read_bytes(error).decode().strip() == summary.quarantined["BAD.csv"]


@pytest.mark.parametrize("proxy", ["s3_endpoint"], indirect=True)
def test_s3_down_during_ingest_fails_after_retries_and_leaves_the_lake_unchanged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, proxy: TcpProxy
) -> None:
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    import boto3

    boto3.client(
        "s3",
        endpoint_url=proxy.url,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_KEY,
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    world = make_world(
        monkeypatch,
        tmp_path,
        sample_wide,
        lake_uri=f"s3://{bucket}/lake",
        s3_endpoint_url=proxy.url,
        s3_access_key_id=S3_KEY,
        s3_secret_access_key=S3_KEY,
        drop_uri=tmp_path / "incoming",
    )
    before = world.lake.snapshot()
    dropped = world.drop_next_day()

    proxy.cut()
    state = ingest_flow(return_state=True)

    assert state.is_failed()
    runs = _task_runs(state)
    # The flow's first lake read (the tickers table) is retried, then fails: nothing written.
    assert runs["read_listings"].run_count == 3  # the first try and flow_io_retries=2
    proxy.start()
    assert world.lake.snapshot() == before
    assert world.drop.pending() == [dropped.name]  # still there for the next run
    assert ingest_flow().processed == [dropped.name]
    assert world.last_date() == dropped.day


def _champion_behind(
    proxy: TcpProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> tuple[World, str]:
    """A world whose MLflow server is reached through ``proxy``, a champion, and a new day."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    world = make_world(
        monkeypatch,
        tmp_path,
        sample_wide,
        mlflow_tracking_uri=proxy.url,
        model_name=f"flows-{uuid.uuid4().hex[:8]}",
    )
    champion = register_champion(world.settings, world.lake, fit_small(world.lake))
    ingest_files(world.lake, [world.sample], next_day=True)
    return world, champion


@pytest.mark.parametrize("proxy", ["mlflow_server"], indirect=True)
def test_mlflow_down_during_retrain_promotes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, proxy: TcpProxy
) -> None:
    world, champion = _champion_behind(proxy, monkeypatch, tmp_path, sample_wide)

    proxy.cut()
    state = retrain_flow(return_state=True)

    assert state.is_failed()
    assert _task_runs(state)["read_plan"].run_count == 3
    proxy.start()
    assert str(world.registry.champion().version) == champion  # type: ignore[union-attr]
    assert [str(v.version) for v in world.registry.versions()] == [champion]


@pytest.mark.parametrize("proxy", ["mlflow_server"], indirect=True)
def test_mlflow_lost_after_the_fit_promotes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, proxy: TcpProxy
) -> None:
    world, champion = _champion_behind(proxy, monkeypatch, tmp_path, sample_wide)
    real_log = train_job.log_candidate

    def cut_then_log(*args, **kwargs):  # the candidate is fitted: MLflow goes away now
        proxy.cut()
        return real_log(*args, **kwargs)

    monkeypatch.setattr(train_job, "log_candidate", cut_then_log)
    state = retrain_flow(return_state=True)

    assert state.is_failed()
    assert _task_runs(state)["train_candidate"].run_count == 1  # compute: not retried
    proxy.start()
    assert str(world.registry.champion().version) == champion  # type: ignore[union-attr]
    assert [str(v.version) for v in world.registry.versions()] == [champion]


def test_a_failed_drift_check_is_recorded_and_the_deploy_hook_completes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    too_long = SMALL_DRIFT.model_copy(update={"reference_days": 10_000})
    world = make_world(monkeypatch, tmp_path, sample_wide, drift=too_long)
    version = register_champion(world.settings, world.lake, fit_small(world.lake))

    deploy = deploy_hook_flow(new_version=version)

    assert deploy.drift_detected is None
    assert deploy.drift_report.startswith("drift check failed: ")
    assert "drift check failed" in deploy.message
    tags = world.registry.get(version).tags
    assert tags["deploy_record"] == deploy.record_path
    assert "drift_detected" not in tags
