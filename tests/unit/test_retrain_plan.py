"""When the retrain flow trains, and how."""

from __future__ import annotations

from datetime import date

import pytest

from finsimples.jobs.plan import UPDATES_TAG, plan_retrain
from training.features import FEATURE_VERSION

FULL = {"watermark": "2022-11-21", "training_mode": "full", "feature_version": FEATURE_VERSION}


def incremental(updates: int) -> dict[str, str]:
    return {**FULL, "training_mode": "incremental", UPDATES_TAG: str(updates)}


@pytest.mark.parametrize(
    ("lake_last", "champion", "tags", "force", "mode", "reason"),
    [
        (None, None, {}, False, None, "the lake is empty"),
        (date(2022, 11, 22), None, {}, False, "full", "no champion yet"),
        (date(2022, 11, 21), "3", FULL, False, None, "nothing new since 2022-11-21 (v3)"),
        (date(2022, 11, 21), "3", FULL, True, "full", "a full refit was asked for"),
        (date(2022, 11, 22), "3", FULL, False, "incremental", "new data after 2022-11-21"),
        (date(2022, 11, 22), "3", incremental(3), False, "incremental", "new data"),
        (date(2022, 11, 22), "3", incremental(4), False, "full", "4 update(s) from its last"),
        (date(2022, 11, 22), "3", {**FULL, "feature_version": "0"}, False, "full", "features"),
    ],
)
def test_plan(lake_last, champion, tags, force, mode, reason) -> None:  # type: ignore[no-untyped-def]
    plan = plan_retrain(lake_last, champion, tags, full_refit_every=5, force_full=force)
    assert plan.mode == mode
    assert reason in plan.reason
    assert plan.champion == champion
