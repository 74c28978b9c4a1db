"""Two daily flows at once (B3 and NYSE fire in the same minute from November to March).

The drop zone's moves are idempotent on a folder and on S3; the two runs are real processes
against the session's Prefect server, over one drop location, lake and registry: both finish,
every row of both files lands, and the model lock leaves one consistent champion.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import exchange_calendars as xcals
import pandas as pd
import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterStartTime
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings

from finsimples.drop import PROCESSED_DIR, QUARANTINE_DIR, DropZone
from finsimples.ingest import ingest_files
from finsimples.settings import Settings
from flows.deploy_hook import DEPLOYS_DIR
from flows.ingest import ingest_flow
from flows.locks import LIMITS, MODEL_LOCK, ensure_limits, model_lock
from jobs.plan import UPDATES_TAG, updates_since_full
from tests.champion import fit_small, register_champion
from tests.integration.flows.conftest import World, make_world

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DAY = date(2022, 11, 22)
"""The replayed day: the first trading day after the world's lake, on B3 and on NYSE."""
B3_TICKERS = ("PETR4", "VALE3")
RUN_TIMEOUT_SECONDS = 900

# One daily run in its own process, as a deployment runs it: the two wait for each other after
# their imports, so their flows start within milliseconds of each other.
DAILY_RUN = """
import json, sys, time
from datetime import datetime
from pathlib import Path

from flows.daily import daily_flow

barrier, me, exchange, now = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
(barrier / me).touch()
deadline = time.monotonic() + 120
while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
summary = daily_flow(exchange=exchange, now=datetime.fromisoformat(now))
retrain = summary.retrain
outcome = retrain.outcome if retrain is not None else None
print("SUMMARY " + json.dumps({
    "processed": summary.ingest.processed,
    "taken": summary.ingest.taken,
    "retrain": retrain.message if retrain is not None else None,
    "version": outcome.version if outcome is not None else None,
    "promoted": bool(outcome is not None and outcome.promoted),
    "track_record_error": summary.track_record_error,
}))
"""


def _drop_beside(settings: Settings) -> DropZone:
    """A drop location beside the lake: a folder, or a prefix of the lake's bucket."""
    uri = settings.resolved_lake_uri.rsplit("/", 1)[0] + "/incoming"
    return DropZone.from_settings(settings.model_copy(update={"drop_uri": uri}))


def _unstamped(names: list[str]) -> list[str]:
    """Handled names without their ``<UTC stamp>-`` prefix."""
    return sorted(name.split("-", 1)[1] for name in names)


def test_a_file_another_run_moved_is_skipped_not_an_error(
    lake_settings: Settings, tmp_path: Path
) -> None:
    ours, theirs = _drop_beside(lake_settings), _drop_beside(lake_settings)
    ours.put("prices.csv", b"Date,KO\n2022-11-22,60\n")
    ours.put("bad.csv", b"oops")

    assert theirs.mark_processed("prices.csv") is not None
    assert theirs.quarantine("bad.csv", "bad.csv: missing column 'Date'") is not None

    assert ours.fetch("prices.csv", tmp_path) is None
    assert ours.mark_processed("prices.csv") is None
    assert ours.quarantine("bad.csv", "bad.csv: missing column 'Date'") is None
    assert ours.pending() == []
    assert _unstamped(ours.handled(PROCESSED_DIR)) == ["prices.csv"]
    assert _unstamped(ours.handled(QUARANTINE_DIR)) == ["bad.csv"]  # one error note, theirs
    errors = [p for p in ours.location.list_files(QUARANTINE_DIR) if p.endswith(".error.txt")]
    assert len(errors) == 1


def test_two_runs_moving_the_same_files_at_once_both_succeed(lake_settings: Settings) -> None:
    names = [f"prices-{i:02d}.csv" for i in range(12)]
    setup = _drop_beside(lake_settings)
    for name in names:
        setup.put(name, name.encode())
    start = threading.Barrier(2)
    errors: list[BaseException] = []
    moved: dict[int, list[str | None]] = {}

    def run(i: int) -> None:
        drop = _drop_beside(lake_settings)  # each run opens its own filesystem
        start.wait()
        try:
            moved[i] = [drop.mark_processed(name) for name in names]
        except BaseException as exc:  # reported below, with the other thread joined
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert setup.pending() == []
    archived = _unstamped(setup.handled(PROCESSED_DIR))
    assert set(archived) == set(names)
    for a, b in zip(moved[0], moved[1], strict=True):
        assert a is not None or b is not None  # one run moved each file
    if setup.location.is_local:  # a rename: exactly one copy; S3 may keep two (drop.py says)
        assert archived == sorted(names)


def test_ingest_skips_a_file_another_run_took_after_the_listing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide)
    us = _put_us_file(world)
    b3 = _put_b3_file(world)
    real_pending = DropZone.pending

    def listed_then_taken(self: DropZone) -> list[str]:
        names = real_pending(self)
        # The other run, right after this one listed: ingests the B3 file and moves it.
        other = tmp_path / "other"
        other.mkdir(exist_ok=True)
        path = world.drop.fetch(b3.name, other)
        assert path is not None
        ingest_files(world.lake, [path])
        world.drop.mark_processed(b3.name)
        return names

    monkeypatch.setattr(DropZone, "pending", listed_then_taken)

    summary = ingest_flow()

    assert summary.processed == [us.name]
    assert summary.taken == [b3.name]
    assert "1 taken by another run: prices-b3-2022-11-22.csv" in summary.message
    monkeypatch.setattr(DropZone, "pending", real_pending)
    assert world.drop.pending() == []
    _assert_rows_landed(world, [us, b3])


def test_the_model_lock_is_created_once_and_reentrant() -> None:
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_global_concurrency_limit_by_name(MODEL_LOCK)
    assert ensure_limits() == [MODEL_LOCK]
    assert ensure_limits() == []
    with model_lock("outer"), model_lock("inner"):  # the inner one does not wait for itself
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(MODEL_LOCK)
        assert (limit.limit, limit.active_slots) == (LIMITS[MODEL_LOCK], 1)
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(MODEL_LOCK).active_slots == 0


@dataclass(frozen=True)
class DroppedFile:
    """A file put into the drop location, and the rows it holds."""

    name: str
    rows: pd.DataFrame  # date, ticker, adj_close


def _put_b3_file(world: World) -> DroppedFile:
    """B3 closes of two B3 tickers for November 2022 to :data:`DAY` (B3's sessions only:
    the 2nd and the 15th were B3 holidays)."""
    sessions = xcals.get_calendar("BVMF").sessions_in_range("2022-11-01", DAY.isoformat())
    wide = pd.DataFrame(
        {
            "Date": sessions.strftime("%Y-%m-%d"),
            "PETR4": [27.0 + 0.1 * i for i in range(len(sessions))],
            "VALE3": [80.0 - 0.2 * i for i in range(len(sessions))],
        }
    )
    name = f"prices-b3-{DAY.isoformat()}.csv"
    world.drop.put(name, wide.to_csv(index=False).encode())
    rows = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close")
    rows["date"] = pd.to_datetime(rows.pop("Date"))
    return DroppedFile(name, rows)


def _put_us_file(world: World) -> DroppedFile:
    day = world.drop_next_day()
    assert day.day == DAY
    wide = pd.read_csv(io.BytesIO(day.data))
    rows = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close")
    rows["date"] = pd.to_datetime(rows.pop("Date"))
    return DroppedFile(day.name, rows)


def _assert_rows_landed(world: World, files: list[DroppedFile]) -> None:
    prices = world.lake.read_prices().set_index(["date", "ticker"])["adj_close"]
    for dropped in files:
        rows = dropped.rows
        for day, ticker, close in zip(rows["date"], rows["ticker"], rows["adj_close"], strict=True):
            key = (pd.Timestamp(day), str(ticker))
            assert key in prices.index, (dropped.name, key)
            assert prices[key] == pytest.approx(close), (dropped.name, key)


def _start_daily(
    tmp_path: Path, barrier: Path, me: str, exchange: str, now: datetime
) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / f"daily-{me}.log"
    env = {
        **os.environ,
        "PREFECT_API_URL": str(get_current_settings().api.url),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", DAILY_RUN, str(barrier), me, exchange, now.isoformat()],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


def _summary(log: Path) -> dict[str, Any]:
    lines = [line for line in log.read_text().splitlines() if line.startswith("SUMMARY ")]
    assert lines, log.read_text()[-4000:]
    return dict(json.loads(lines[-1].removeprefix("SUMMARY ")))


def _model_sections(since: datetime) -> list[tuple[str, str, datetime, datetime]]:
    """(daily run id, flow name, first task start, last task end) of every model-lock flow run
    since ``since``: when each held the lock doing work (a run waiting for it has no task yet)."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since))
        )
        names = {run.flow_id: client.read_flow(run.flow_id).name for run in runs}
        by_id = {run.id: run for run in runs}

        def daily_of(run_id: Any) -> str:
            run = by_id[run_id]
            while names[run.flow_id] != "daily":
                assert run.parent_task_run_id is not None
                parent = client.read_task_run(run.parent_task_run_id).flow_run_id
                assert parent is not None
                run = by_id[parent]
            return str(run.id)

        sections: list[tuple[str, str, datetime, datetime]] = []
        for run in runs:
            name = names[run.flow_id]
            if name not in ("retrain", "deploy-hook", "track-record"):
                continue
            assert run.state is not None, name
            assert run.state.is_completed(), (name, run.state)
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
            )
            tasks = [t for t in tasks if t.flow_run_id == run.id and t.start_time]
            assert tasks, name
            start = min(t.start_time for t in tasks if t.start_time)
            end = max(t.end_time for t in tasks if t.end_time)
            sections.append((daily_of(run.id), name, start, end))
        return sections


def test_the_bvmf_and_xnys_daily_runs_fired_together_leave_one_consistent_champion(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, redis_url: str
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide, redis_url=redis_url)
    first = register_champion(world.settings, world.lake, fit_small(world.lake))
    updates_before = updates_since_full(world.registry.get(first).tags)
    files = [_put_b3_file(world), _put_us_file(world)]
    ensure_limits()
    since = datetime.now(UTC)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # 18:30 in São Paulo is 16:30 in New York in the southern summer: both schedules fire.
    now = datetime(2022, 11, 22, 21, 30, tzinfo=UTC)
    runs = [
        _start_daily(tmp_path, barrier, "bvmf", "BVMF", now),
        _start_daily(tmp_path, barrier, "xnys", "XNYS", now),
    ]
    try:
        for process, log in runs:
            code = process.wait(timeout=RUN_TIMEOUT_SECONDS)
            assert code == 0, log.read_text()[-6000:]
    finally:
        for process, _ in runs:
            if process.poll() is None:
                process.kill()
                process.wait()
    summaries = [_summary(log) for _, log in runs]

    # Both landed every row, each file was archived once, nothing is left pending.
    names = sorted(f.name for f in files)
    assert sorted({n for s in summaries for n in s["processed"] + s["taken"]}) == names
    _assert_rows_landed(world, files)
    assert world.drop.pending() == []
    assert _unstamped(world.drop.handled(PROCESSED_DIR)) == names

    # One retrain trained and promoted; the other, after it, found nothing new.
    trained = [s for s in summaries if s["version"] is not None]
    assert len(trained) == 1, summaries
    assert trained[0]["promoted"], trained[0]
    [idle] = [s for s in summaries if s["version"] is None]
    assert f"nothing new since {DAY.isoformat()}" in idle["retrain"], idle
    assert all(s["track_record_error"] is None for s in summaries), summaries

    # The champion is that version, with complete tags (deploying it is the controller's job).
    version = trained[0]["version"]
    champion = world.registry.champion()
    assert champion is not None
    assert str(champion.version) == version
    assert [str(v.version) for v in world.registry.versions()] == [version, first]
    tags = champion.tags
    assert tags["watermark"] == DAY.isoformat()
    assert tags[UPDATES_TAG] == str(updates_before + 1)
    assert "last_promote" in tags
    assert world.lake.location.list_files(DEPLOYS_DIR) == []  # the flows deploy nothing

    # The promotion history is one chain: each move starts where the previous one ended.
    history = world.registry.history()
    assert [(e.from_version, e.to_version) for e in history] == [(None, first), (first, version)]

    # The model sections of the two runs never overlapped, and the lock was released.
    sections = _model_sections(since)
    assert sorted(name for _, name, _, _ in sections) == [
        "retrain",
        "retrain",
        "track-record",
        "track-record",
    ]
    assert len({daily for daily, *_ in sections}) == 2
    for run_a, name_a, start_a, end_a in sections:
        for run_b, name_b, start_b, end_b in sections:
            if run_a != run_b:  # one held the lock until the other took it
                assert end_a <= start_b or end_b <= start_a, (name_a, name_b, sections)
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(MODEL_LOCK).active_slots == 0
