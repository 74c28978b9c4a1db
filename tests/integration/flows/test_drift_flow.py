"""The scheduled drift check: report in the lake and MLflow, the flag, the retrain it starts."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from finsimples.ingest import ingest_files
from flows.drift import drift_flow
from tests.champion import fit_small, register_champion
from tests.integration.flows.conftest import make_world

pytestmark = pytest.mark.integration


def test_drift_in_march_2020_is_flagged_reported_and_starts_a_full_retrain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    world = make_world(monkeypatch, tmp_path, sample_wide, until=date(2019, 12, 31))
    calm = register_champion(world.settings, world.lake, fit_small(world.lake))
    ingest_files(world.lake, [world.sample], until=date(2020, 4, 30))

    summary = drift_flow(trigger_retrain=True)

    assert summary.version == calm
    assert summary.drift_detected
    assert any("feature" in reason for reason in summary.reasons), summary.reasons
    assert summary.metrics["drift_detected"] == 1.0
    report = json.loads(world.lake.location.read_bytes(summary.report.json_path))
    assert report["current"][1] == "2020-04-30"
    assert "ewma_vol" in report["drifted_columns"]
    run = world.registry.client.get_run(summary.report.run_id)
    assert run.data.metrics["drift_detected"] == 1.0
    assert run.data.tags["model_version"] == calm
    artifacts = {a.path for a in world.registry.client.list_artifacts(run.info.run_id, "drift")}
    assert artifacts == {"drift/report.html", "drift/summary.json"}
    assert world.registry.get(calm).tags["drift_detected"] == "true"
    assert summary.retrain is not None
    assert summary.retrain.startswith("full retrain (a full refit was asked for)")
    newest = max(world.registry.versions(), key=lambda v: int(v.version))
    assert str(newest.version) != calm
    assert newest.tags["training_mode"] == "full"  # promoted or not: the gate decides
    assert newest.tags["watermark"] == "2020-04-30"
