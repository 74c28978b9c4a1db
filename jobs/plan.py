"""Whether the daily retrain trains, and how: pure, from the lake's last date and the champion.

Incremental updates keep the champion's method and add the new days; every
``full_refit_every`` updates (or when the feature code changed, or when asked) the model is
refitted from scratch and gated on a fresh walk-forward backtest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from training.features import FEATURE_VERSION

Mode = Literal["full", "incremental"]

UPDATES_TAG = "updates_since_full"
"""Model version tag: incremental updates between this version and its last full fit."""


@dataclass(frozen=True)
class RetrainPlan:
    """The retrain flow's decision."""

    mode: Mode | None  # None: nothing to do
    champion: str | None  # the version the candidate would replace
    reason: str


@dataclass(frozen=True)
class LastCandidate:
    """The newest registered version, when it is not the champion: a candidate the gate
    blocked (or one not promoted yet), and the lake version it was trained on."""

    version: str
    tags: Mapping[str, str]
    lake_version: int | None  # the lake's version now


def plan_retrain(
    lake_last_date: date | None,
    champion: str | None,
    champion_tags: Mapping[str, str],
    *,
    full_refit_every: int,
    force_full: bool = False,
    last_candidate: LastCandidate | None = None,
) -> RetrainPlan:
    """Decide the retrain flow's mode.

    Args:
        lake_last_date: the latest date in the lake (None: the lake is empty).
        champion: the champion's version (None: no champion yet).
        champion_tags: the champion's model version tags (``watermark``, ``training_mode``,
            ``feature_version``, :data:`UPDATES_TAG`).
        full_refit_every: a full refit once the champion is this many updates from a full fit.
        force_full: refit from scratch whatever the rest says.
        last_candidate: the newest version when it is not the champion. When it was trained
            the way this plan would train, on the lake as it is now (same lake version) and
            against this champion, training again would repeat it (training is seeded):
            nothing to do until new data arrive, the champion changes, or a full refit is asked.
    """
    plan = _plan(lake_last_date, champion, champion_tags, full_refit_every, force_full)
    if plan.mode is None or force_full or last_candidate is None:
        return plan
    if repeats(plan, last_candidate):
        tags = last_candidate.tags
        return RetrainPlan(
            None,
            champion,
            f"v{last_candidate.version} was trained on this data (lake version "
            f"{tags.get('lake_version')}, {plan.mode}) and not promoted: nothing new since",
        )
    return plan


def repeats(plan: RetrainPlan, last: LastCandidate) -> bool:
    """Whether ``plan`` would train what ``last`` already is: the same mode on the same lake
    version, from the same champion (an incremental candidate names its parent; a full one is
    newer than the champion)."""
    tags = last.tags
    if last.lake_version is None or tags.get("lake_version") != str(last.lake_version):
        return False
    if tags.get("training_mode") != plan.mode or plan.champion is None:
        return False
    if plan.mode == "incremental":
        return tags.get("parent_version") == plan.champion
    return int(last.version) > int(plan.champion)


def _plan(
    lake_last_date: date | None,
    champion: str | None,
    champion_tags: Mapping[str, str],
    full_refit_every: int,
    force_full: bool,
) -> RetrainPlan:
    if lake_last_date is None:
        return RetrainPlan(None, champion, "the lake is empty: nothing to train on")
    if champion is None:
        return RetrainPlan("full", None, "no champion yet")
    if force_full:
        return RetrainPlan("full", champion, "a full refit was asked for")
    watermark = date.fromisoformat(champion_tags.get("watermark", "1900-01-01"))
    if lake_last_date <= watermark:
        return RetrainPlan(None, champion, f"nothing new since {watermark} (v{champion})")
    features = champion_tags.get("feature_version")
    if features != FEATURE_VERSION:
        return RetrainPlan("full", champion, f"features changed ({features} -> {FEATURE_VERSION})")
    updates = updates_since_full(champion_tags)
    if updates + 1 >= full_refit_every:
        return RetrainPlan(
            "full", champion, f"v{champion} is {updates} update(s) from its last full fit"
        )
    return RetrainPlan("incremental", champion, f"new data after {watermark}")


def updates_since_full(tags: Mapping[str, str]) -> int:
    """Incremental updates since the last full fit, from a version's tags."""
    if tags.get("training_mode") == "full":
        return 0
    value = tags.get(UPDATES_TAG, "")
    return int(value) if value.isdigit() else 0
