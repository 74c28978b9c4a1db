"""When the retrain flow trains, and how."""

from __future__ import annotations

from datetime import date

import pytest

from jobs.plan import UPDATES_TAG, LastCandidate, plan_retrain
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


BLOCKED = {**incremental(1), "watermark": "2022-11-22", "lake_version": "7", "parent_version": "3"}


@pytest.mark.parametrize(
    ("candidate", "lake_version", "mode"),
    [
        (LastCandidate("4", BLOCKED, 7), 7, None),  # the same training again: skipped
        (LastCandidate("4", BLOCKED, 8), 8, "incremental"),  # the lake changed (a correction)
        (LastCandidate("4", {**BLOCKED, "parent_version": "2"}, 7), 7, "incremental"),
        (LastCandidate("4", {**BLOCKED, "training_mode": "full"}, 7), 7, "incremental"),
        (
            LastCandidate("4", {k: v for k, v in BLOCKED.items() if k != "lake_version"}, 7),
            7,
            "incremental",
        ),
    ],
)
def test_a_blocked_candidate_is_not_trained_again_on_the_same_data(
    candidate: LastCandidate, lake_version: int, mode: str | None
) -> None:
    plan = plan_retrain(
        date(2022, 11, 22), "3", incremental(1), full_refit_every=5, last_candidate=candidate
    )
    assert plan.mode == mode
    if mode is None:
        assert plan.reason == (
            "v4 was trained on this data (lake version 7, incremental) and not promoted: "
            "nothing new since"
        )


def test_a_blocked_full_refit_is_not_repeated_but_a_forced_one_is() -> None:
    full = {**FULL, "watermark": "2022-11-22", "lake_version": "7", "training_mode": "full"}
    due = incremental(4)  # the cadence asks for a full refit
    args = (date(2022, 11, 22), "3", due)
    repeat = plan_retrain(*args, full_refit_every=5, last_candidate=LastCandidate("4", full, 7))
    assert repeat.mode is None
    older = LastCandidate("2", full, 7)  # registered before the champion: not gated against it
    assert plan_retrain(*args, full_refit_every=5, last_candidate=older).mode == "full"
    forced = plan_retrain(
        *args, full_refit_every=5, force_full=True, last_candidate=LastCandidate("4", full, 7)
    )
    assert forced.mode == "full"
