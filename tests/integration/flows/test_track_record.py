"""The track record on replayed days of the sample: logged, scored, summarized, in the lake."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from finsimples.records import (
    RETRAIN_STATUS,
    TRACK_RECORD_SUMMARY,
    RetrainStatus,
    TrackRecordSummary,
    read_record,
)
from flows.daily import daily_flow
from flows.ingest import ingest_flow
from flows.retrain import retrain_flow
from flows.track_record import track_record_flow
from jobs.track_record import (
    FORECASTS_DIR,
    SCORES_DIR,
    read_logs,
    read_scores,
    replay_track_record,
)
from tests.champion import TICKERS, fit_small, register_champion
from tests.integration.flows.conftest import World, make_world

pytestmark = pytest.mark.integration


def direct_coverage(world: World) -> dict[int, tuple[float, int]]:
    """Coverage per horizon computed the plain way: walk each ticker's rows by hand."""
    logs = read_logs(world.lake.location, datetime(2000, 1, 1).date())
    prices = world.lake.read_prices()
    rows = {
        ticker: list(zip(own["date"].dt.date, own["adj_close"], strict=True))
        for ticker, own in prices.groupby("ticker")
    }
    hits: dict[int, list[bool]] = {}
    for log in logs.itertuples():
        days = [d for d, _ in rows[log.ticker]]
        at = days.index(log.as_of) + log.horizon
        if at < len(days):
            realized = rows[log.ticker][at][1]
            hits.setdefault(log.horizon, []).append(log.low <= realized <= log.high)
    return {h: (sum(v) / len(v), len(v)) for h, v in hits.items()}


def files(world: World, directory: str) -> list[str]:
    return [p.rsplit("/", 1)[-1] for p in world.lake.location.list_files(directory)]


def test_six_replayed_days_log_score_and_summarize(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide)
    version = register_champion(world.settings, world.lake, fit_small(world.lake))
    days = []
    for _ in range(6):
        days.append(world.drop_next_day().day)
        ingest_flow()
        run = track_record_flow()
        assert run.logged == len(TICKERS) * 2  # SMALL's evaluated horizons: 1 and 5
        assert run.version == version

    assert files(world, FORECASTS_DIR) == [f"as_of={d}.parquet" for d in days]
    summary = read_record(world.lake.location, TRACK_RECORD_SUMMARY, TrackRecordSummary)
    assert summary is not None
    assert summary.as_of == days[-1]
    expected = direct_coverage(world)
    # h=1: days 1-5 matured (6 tickers each); h=5: day 1's, on day 6.
    assert {h: n for h, (_, n) in expected.items()} == {1: 30, 5: 6}
    assert {r.horizon: r.n for r in summary.horizons} == {1: 30, 5: 6}
    assert {r.horizon: r.coverage for r in summary.horizons} == pytest.approx(
        {h: c for h, (c, _) in expected.items()}
    )
    assert files(world, SCORES_DIR) == [f"target={d}.parquet" for d in days[1:]]
    scores = read_scores(world.lake.location)
    assert len(scores) == 36
    assert set(scores["model_version"]) == {version}
    assert ((scores["width"] > 0) & (scores["pinball"] > 0)).all()
    detail = pd.read_parquet(tmp_path / "state" / "lake" / "track_record" / "summary.parquet")
    assert set(detail.columns) >= {"model_version", "horizon", "ticker", "coverage", "n"}
    assert detail["n"].sum() == 36

    # Re-running the day overwrites its files: nothing is logged or scored twice.
    before = (tmp_path / "state" / "lake" / TRACK_RECORD_SUMMARY).read_text()
    track_record_flow()
    assert len(read_logs(world.lake.location, days[0])) == 6 * len(TICKERS) * 2
    assert len(read_scores(world.lake.location)) == 36
    after = json.loads((tmp_path / "state" / "lake" / TRACK_RECORD_SUMMARY).read_text())
    assert after == json.loads(before)


def test_the_replay_helper_builds_a_record_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide)
    forecaster = fit_small(world.lake)
    summary = replay_track_record(world.settings, forecaster, "1", days=30)
    assert summary.as_of == world.last_date()
    by_h = {r.horizon: r for r in summary.horizons}
    # The last 30 days' forecasts, minus those whose target is past the lake's end.
    assert (by_h[1].n, by_h[5].n) == (29 * len(TICKERS), 25 * len(TICKERS))
    direct = direct_coverage(world)
    assert {h: r.n for h, r in by_h.items()} == {h: n for h, (_, n) in direct.items()}
    assert {h: r.coverage for h, r in by_h.items()} == pytest.approx(
        {h: c for h, (c, _) in direct.items()}
    )
    assert 0.5 < by_h[1].coverage <= 1.0


def test_a_failed_track_record_does_not_hide_the_day(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide)
    register_champion(world.settings, world.lake, fit_small(world.lake))
    dropped = world.drop_next_day()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("lake exploded")

    monkeypatch.setattr("flows.track_record.build_log", broken)
    summary = daily_flow()

    assert summary.ingest.processed == [dropped.name]
    assert summary.retrain.outcome is not None
    assert summary.track_record is None
    assert "lake exploded" in (summary.track_record_error or "")
    assert "track record: FAILED" in summary.message
    status = read_record(world.lake.location, RETRAIN_STATUS, RetrainStatus)
    assert status is not None
    assert status.success  # trained a candidate (promoted or not): a success
    today = datetime.now(ZoneInfo(world.settings.schedule_timezone)).date()
    assert status.last_trained_on == today
    assert status.last_trained_version == summary.retrain.outcome.version


def test_a_failed_retrain_is_recorded_and_keeps_the_last_training_date(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide)
    register_champion(world.settings, world.lake, fit_small(world.lake))
    nothing = retrain_flow()  # nothing new since the champion: a success, no training
    assert nothing.outcome is None
    status = read_record(world.lake.location, RETRAIN_STATUS, RetrainStatus)
    assert status is not None
    assert (status.success, status.last_trained_on) == (True, None)

    world.drop_next_day()
    ingest_flow()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("MLflow is down")

    monkeypatch.setattr("flows.retrain.train", broken)
    with pytest.raises(RuntimeError, match="MLflow is down"):
        retrain_flow()
    status = read_record(world.lake.location, RETRAIN_STATUS, RetrainStatus)
    assert status is not None
    assert not status.success
    assert "MLflow is down" in status.outcome
    assert status.last_trained_on is None
