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


def plan_retrain(
    lake_last_date: date | None,
    champion: str | None,
    champion_tags: Mapping[str, str],
    *,
    full_refit_every: int,
    force_full: bool = False,
) -> RetrainPlan:
    """Decide the retrain flow's mode.

    Args:
        lake_last_date: the latest date in the lake (None: the lake is empty).
        champion: the champion's version (None: no champion yet).
        champion_tags: the champion's model version tags (``watermark``, ``training_mode``,
            ``feature_version``, :data:`UPDATES_TAG`).
        full_refit_every: a full refit once the champion is this many updates from a full fit.
        force_full: refit from scratch whatever the rest says.
    """
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
