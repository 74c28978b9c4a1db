"""The S3 API server process killed during the ingest and the retrain flows, and restarted.

moto's server (the S3 API the tests use) is killed with SIGKILL at a chosen step of a flow,
then started again on the same port. moto keeps its objects in memory, where a real S3
service keeps them on disk: :class:`S3Process` copies the bucket out just before the kill and
back after the restart, so the restarted server holds exactly what the dead one held.

Each case prints one ``fault report | ...`` line: what was attempted, the error, the retries
and whether the lake version and the registry's versions changed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import deltalake.table
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogWorker

from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.lake_versions import Snapshot
from flows.ingest import ingest_flow
from flows.retrain import retrain_flow
from tests.champion import fit_small, register_champion
from tests.conftest import S3_KEY
from tests.integration.flows.conftest import World, make_world
from tests.servers import free_port, port_open, wait_until

pytestmark = pytest.mark.integration


class S3Process:
    """moto's S3 API server on a fixed port: killed and started again like a real service."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self._saved: dict[str, dict[str, bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_KEY,
            region_name="us-east-1",
        )

    def start(self) -> None:
        """Start the server (again, holding what it held when it was killed)."""
        command = [str(Path(sys.executable).with_name("moto_server"))]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*command, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: port_open(self.port), 30, "moto_server")
        client = self.client()
        for bucket, objects in self._saved.items():
            client.create_bucket(Bucket=bucket)
            for key, body in objects.items():
                client.put_object(Bucket=bucket, Key=key, Body=body)

    def kill(self) -> None:
        """SIGKILL the server; what it holds is kept for :meth:`start`."""
        assert self.process is not None
        client = self.client()
        self._saved = {
            bucket["Name"]: {
                item["Key"]: client.get_object(Bucket=bucket["Name"], Key=item["Key"])[
                    "Body"
                ].read()
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"])
                for item in page.get("Contents", [])
            }
            for bucket in client.list_buckets()["Buckets"]
        }
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Process]:
    """A moto S3 server process of this test's own, which the test may kill and restart."""
    server = S3Process(tmp_path / "moto.log")
    server.start()
    yield server
    server.stop()
    assert not port_open(server.port), "the S3 server's port is still open"


def _s3_world(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, s3: S3Process
) -> World:
    """The flows' world with its lake in a bucket of ``s3`` (the drop location stays local)."""
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=bucket)
    return make_world(
        monkeypatch,
        tmp_path,
        sample_wide,
        lake_uri=f"s3://{bucket}/lake",
        s3_endpoint_url=s3.url,
        s3_access_key_id=S3_KEY,
        s3_secret_access_key=S3_KEY,
        drop_uri=tmp_path / "incoming",
    )


def _run_counts(state: Any) -> dict[str, int]:
    """How many times each task of a finished flow run ran (first try plus retries)."""
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name.rsplit("-", 1)[0]: run.run_count for run in runs}


def _logs(state: Any) -> list[str]:
    """The messages a flow run (and its tasks) sent to the Prefect server, oldest first."""
    APILogWorker.drain_all(timeout=10)
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in sorted(logs, key=lambda log: log.timestamp)]


def _failure(state: Any) -> BaseException:
    error = state.result(raise_on_failure=False)
    assert isinstance(error, BaseException), error
    return error


def _unreferenced(lake: Lake, snapshot: Snapshot) -> list[str]:
    """Data files under the lake's prices/ that ``snapshot``'s version does not list."""
    table = lake.prices.open(snapshot.version)
    listed = {uri.removeprefix("s3://") for uri in table.file_uris()} if table else set()
    return [
        p
        for p in lake.location.list_files("prices")
        if p not in listed and "/_delta_log/" not in p and "/_change_data/" not in p
    ]


def _kill_at_first_call(
    monkeypatch: pytest.MonkeyPatch,
    owner: object,
    name: str,
    s3: S3Process,
    *,
    restart_after: bool,
) -> None:
    """Kill the S3 server when ``owner.name`` is first called; with ``restart_after``, start it
    again once that call has failed (the server is back before the task's retry)."""
    real: Callable[..., Any] = getattr(owner, name)
    fired: list[bool] = []

    def hooked(*args: Any, **kwargs: Any) -> Any:
        if fired:
            return real(*args, **kwargs)
        fired.append(True)
        s3.kill()
        try:
            return real(*args, **kwargs)
        finally:
            if restart_after:
                s3.start()

    monkeypatch.setattr(owner, name, hooked)


def _report(fault: str, **figures: object) -> None:
    print(" | ".join(["fault report", fault, *(f"{k}: {v}" for k, v in figures.items())]))


def test_s3_killed_during_the_ingest_merge_keeps_the_lake_then_commits_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, s3: S3Process
) -> None:
    world = _s3_world(monkeypatch, tmp_path, sample_wide, s3)
    before, rows_before = world.lake.snapshot(), world.lake.read_prices()
    dropped = world.drop_next_day()
    # The server dies as the day's MERGE starts: after the rows to write were decided, before
    # delta-rs reads the year's files, writes the new ones and commits.
    _kill_at_first_call(
        monkeypatch, deltalake.table.TableMerger, "execute", s3, restart_after=False
    )

    state = ingest_flow(return_state=True)

    assert state.is_failed()
    runs = _run_counts(state)
    assert runs["write_lake"] == 3  # the first try and flow_io_retries=2
    assert "mark_processed" not in runs  # the file is not moved out of the drop location
    error = str(_failure(state))
    assert f"127.0.0.1:{s3.port}" in error  # the endpoint ...
    assert world.lake.uri.split("/")[2] in error  # ... the bucket ...
    assert "failed" in error  # ... and what failed
    logs = "\n".join(_logs(state))
    assert logs.count("Retry ") == 2, logs
    assert "Retries are exhausted" in logs
    assert f"(S3 API at {s3.url}) failed after 2 retries" in logs
    assert f"{dropped.name} stay(s) in {world.drop.uri} for the next run" in logs

    s3.start()
    lake = world.lake
    assert lake.snapshot() == before
    pd.testing.assert_frame_equal(lake.read_prices(), rows_before)
    stray = _unreferenced(lake, before)
    assert stray == []  # the server died before the MERGE wrote a file
    assert world.drop.pending() == [dropped.name]  # kept for the next run
    _report(
        "S3 server killed as the ingest MERGE starts",
        attempted=f"write_lake: lake v{before.version} -> v{before.version + 1}",
        error=error.splitlines()[0][:200],
        retries=f"{runs['write_lake'] - 1} (write_lake ran {runs['write_lake']} times)",
        lake=f"v{before.version} -> v{lake.snapshot().version} (unchanged)",
        uncommitted_files=f"{len(stray)} (listed by no version)",
        drop=f"{dropped.name} still pending",
    )

    # The next run: the server dies at the MERGE again and is back before the retry.
    _kill_at_first_call(monkeypatch, deltalake.table.TableMerger, "execute", s3, restart_after=True)
    state = ingest_flow(return_state=True)

    assert state.is_completed()
    runs = _run_counts(state)
    assert runs["write_lake"] == 2  # failed once, then committed on the retry
    after = lake.snapshot()
    assert after.version == before.version + 1  # one commit, not two
    day = lake.read_prices(start=dropped.day)
    assert len(day) == len(day.drop_duplicates(["ticker", "date"])) == 6
    assert world.drop.pending() == []
    [processed] = world.drop.handled("processed")
    assert processed.endswith(dropped.name)
    assert ingest_flow().processed == []  # nothing left: a third run changes nothing
    assert lake.snapshot() == after
    _report(
        "S3 server killed as the ingest MERGE starts, back before the retry",
        attempted=f"write_lake: lake v{before.version} -> v{before.version + 1}",
        retries=f"{runs['write_lake'] - 1} (write_lake ran {runs['write_lake']} times)",
        lake=f"v{before.version} -> v{after.version} (one commit)",
        rows_of_the_day=len(day),
        uncommitted_files=f"{len(_unreferenced(lake, after))} (lake vacuum removes them)",
    )


def _retrain_world(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, s3: S3Process
) -> tuple[World, str]:
    """An S3 lake with a champion behind by one day: the retrain has something to do."""
    world = _s3_world(monkeypatch, tmp_path, sample_wide, s3)
    monkeypatch.setenv("FINSIMPLES_FLOW_IO_RETRIES", "1")  # each failed S3 call takes ~2 s
    champion = register_champion(world.settings, world.lake, fit_small(world.lake))
    ingest_files(world.lake, [world.sample], next_day=True)
    return world, champion


def _registry_state(world: World) -> tuple[str | None, list[str]]:
    champion = world.registry.champion()
    versions = sorted(str(v.version) for v in world.registry.versions())
    return (str(champion.version) if champion else None), versions


@pytest.mark.parametrize(
    ("step", "hooked", "task"),
    [
        pytest.param("the prices to train on", "read_prices", "read_prices", id="prices"),
        pytest.param("its plan", "watermarks", "read_plan", id="plan", marks=pytest.mark.slow),
    ],
)
def test_s3_down_during_the_retrain_fails_after_retries_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sample_wide: pd.DataFrame,
    s3: S3Process,
    step: str,
    hooked: str,
    task: str,
) -> None:
    world, champion = _retrain_world(monkeypatch, tmp_path, sample_wide, s3)
    lake_before, registry_before = world.lake.snapshot(), _registry_state(world)
    assert registry_before == (champion, [champion])
    # The server dies as the flow reads the lake: its plan (the watermarks), or after the plan,
    # the prices to train on.
    _kill_at_first_call(monkeypatch, Lake, hooked, s3, restart_after=False)

    state = retrain_flow(return_state=True)

    assert state.is_failed()
    runs = _run_counts(state)
    assert runs[task] == 2  # the first try and flow_io_retries=1
    assert "train_candidate" not in runs  # no training on a lake it could not read
    error = str(_failure(state))
    assert f"127.0.0.1:{s3.port}" in error or f"127.0.0.1 port {s3.port}" in error  # endpoint
    assert "failed" in error or "operation" in error  # delta-rs' words, or pyarrow's
    logs = "\n".join(_logs(state))
    assert "Retries are exhausted" in logs
    assert "could not record the retrain status in the lake" in logs
    s3.start()
    assert world.lake.snapshot() == lake_before
    assert _registry_state(world) == registry_before
    _report(
        f"S3 server down as the retrain reads {step}",
        attempted=f"{task} (lake reads, before any fit)",
        error=error[:200],
        retries=f"{runs[task] - 1} ({task} ran {runs[task]} times)",
        lake=f"v{lake_before.version} -> v{world.lake.snapshot().version} (unchanged)",
        registry=f"champion v{champion}, versions {registry_before[1]} (unchanged)",
    )


@pytest.mark.slow
def test_s3_back_during_the_retrain_retries_registers_one_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, s3: S3Process
) -> None:
    world, champion = _retrain_world(monkeypatch, tmp_path, sample_wide, s3)
    lake_before = world.lake.snapshot()
    _kill_at_first_call(monkeypatch, Lake, "read_prices", s3, restart_after=True)

    state = retrain_flow(return_state=True)

    assert state.is_completed()
    runs = _run_counts(state)
    assert runs["read_prices"] == 2
    assert runs["train_candidate"] == 1
    summary = state.result()
    assert summary.outcome is not None
    assert summary.outcome.version is not None
    new = summary.outcome.version
    champion_after, versions = _registry_state(world)
    assert versions == sorted([champion, new])  # exactly one new version
    assert champion_after == (new if summary.outcome.promoted else champion)
    assert world.lake.snapshot().version == lake_before.version  # retrain only reads prices
    _report(
        "S3 server down as the retrain reads its prices, back before the retry",
        attempted="read_prices (the lake's prices, before any fit)",
        retries=f"{runs['read_prices'] - 1} (read_prices ran {runs['read_prices']} times)",
        registry=f"versions {versions}, champion v{champion} -> v{champion_after}",
        lake=f"v{lake_before.version} (unchanged)",
    )
