"""The daily loop on real data: replayed days through ingest -> retrain -> gate, then the deploy
hook the deploy controller runs after each promotion (no stack here: the cache step)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import redis

from bentos.cache import POPULAR_KEY
from flows.daily import daily_flow
from flows.deploy_hook import deploy_hook_flow
from flows.retrain import retrain_flow
from jobs.plan import UPDATES_TAG
from tests.champion import break_updates, fit_small, register_champion
from tests.integration.flows.conftest import make_world

pytestmark = pytest.mark.integration


def _keys_of(client: redis.Redis, version: str) -> list[bytes]:
    """Cached answers of ``version`` (keys are ``forecast:{version}:{as_of}:...``)."""
    return [k for k in client.scan_iter(match="*") if k.split(b":")[1] == version.encode()]


def test_five_replayed_days_run_ingest_retrain_gate_and_the_deploy_hook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame, redis_url: str
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide, redis_url=redis_url, full_refit_every=3)
    cache = redis.Redis.from_url(redis_url)

    first = retrain_flow()  # no champion yet: a full fit, gated on its walk-forward
    assert first.plan.mode == "full"
    assert first.outcome is not None
    assert first.outcome.promoted
    assert first.outcome.version is not None
    assert not hasattr(first, "deploy")  # serving follows @champion: the controller's job
    # What the controller runs for it (a stack would roll its replicas first).
    first_deploy = deploy_hook_flow(new_version=first.outcome.version)
    assert first_deploy.old_version is None
    assert first_deploy.warmed == 3 * 2  # warm_tickers x locales at the default horizon

    cache.zincrby(POPULAR_KEY, 5, "XOM")  # as the replicas count requests: XOM is asked most
    expected_modes = ["incremental", "incremental", "full", "incremental", "incremental"]
    for day, mode in enumerate(expected_modes, start=1):
        before = world.registry.champion()
        assert before is not None
        dropped = world.drop_next_day()

        summary = daily_flow()

        assert summary.ingest.processed == [dropped.name], day
        assert world.last_date() == dropped.day
        assert world.drop.pending() == []
        outcome = summary.retrain.outcome
        assert outcome is not None
        assert outcome.mode == mode, (day, summary.retrain.message)
        champion = world.registry.champion()
        assert champion is not None
        version = world.registry.get(str(outcome.version))
        assert version.tags["watermark"] == dropped.day.isoformat()
        if not outcome.promoted:  # the gate said no: the champion stays
            assert champion.version == before.version
            continue
        assert str(champion.version) == outcome.version
        expected_updates = 0 if mode == "full" else int(before.tags[UPDATES_TAG]) + 1
        assert champion.tags[UPDATES_TAG] == str(expected_updates)
        deploy = deploy_hook_flow(new_version=str(outcome.version), old_version=str(before.version))
        assert deploy.old_version == str(before.version)
        assert (deploy.removed, deploy.warmed) == (6, 6), deploy.message
        assert _keys_of(cache, str(before.version)) == []
        warmed = {key.split(b":")[3] for key in _keys_of(cache, outcome.version)}
        assert warmed == {b"XOM", b"AAPL", b"JNJ"}  # the most requested, then the lake's first
        deployed = world.registry.champion()  # the deploy hook's drift check tagged it
        assert deployed is not None
        assert deployed.tags["drift_detected"] in ("true", "false")
        record = json.loads(world.lake.location.read_bytes(deploy.record_path))
        assert record["new_version"] == outcome.version
        assert record["warmed"] == 6
        assert b"<!DOCTYPE html>" in world.lake.location.read_bytes(deploy.drift_report)

    monitoring = world.registry.client.get_experiment_by_name("finsimples-monitoring")
    assert monitoring is not None
    runs = world.registry.client.search_runs([monitoring.experiment_id])
    assert len(runs) == 1 + sum(1 for _ in expected_modes)  # one drift check per deploy
    assert {"drifted_share", "drift_detected"} <= set(runs[0].data.metrics)


def test_a_day_without_new_data_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide)
    version = register_champion(world.settings, world.lake, fit_small(world.lake))
    lake_version = world.lake.snapshot().version

    summary = daily_flow()

    assert summary.ingest.message == "no new files"
    assert summary.retrain.outcome is None
    assert "nothing new since 2022-11-21" in summary.retrain.message
    assert world.lake.snapshot().version == lake_version
    assert [str(v.version) for v in world.registry.versions()] == [version]


def test_a_day_whose_candidate_fails_the_gate_deploys_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide)
    version = register_champion(world.settings, world.lake, fit_small(world.lake))
    break_updates(monkeypatch)
    world.drop_next_day()

    summary = daily_flow()

    outcome = summary.retrain.outcome
    assert outcome is not None
    assert outcome.mode == "incremental"
    assert not outcome.promoted
    assert outcome.verdict is not None
    assert any(
        r.startswith("h=1: ") and "on the latest days" in r for r in outcome.verdict.reasons
    ), outcome.message
    assert str(world.registry.champion().version) == version  # type: ignore[union-attr]
    challenger = world.registry.version_by_alias("challenger")
    assert str(challenger.version) == outcome.version  # type: ignore[union-attr]
