"""How much walk-forward the gate can afford on the history a lake holds.

Today's gate walks a candidate forward over the last ``gate_test_years`` (2) calendar years, and
each fold needs ``min_train_days + calibration_days`` (252 + 504) feature dates before it; with
the features' one-year warm-up that is about six years of prices, so a lake of five years (say
B3's last five COTAHIST files) got no model at all.

The plan scales the walk-forward to the history there is, in this order, and says so:

1. enough history: today's gate, unchanged;
2. fewer test years (down to 1) with the configured calibration window;
3. one test year with a shorter calibration window: the longest that fits, at most one year
   (:data:`SHORT_CALIBRATION_DAYS`) and at least half a year (:data:`MIN_CALIBRATION_DAYS`),
   for the folds and for the model that is served, so what is judged is what is served.

When the plan comes down to one test year, that year holds a quarter at least
(:data:`MIN_TEST_DATES`): a lake ending in the first weeks of a year is judged on the year
before, and its last few dates go untested (a handful of rows trips the leakage tripwire and
the worst-year coverage by chance alone).

Four calendar years of prices hold one year of feature warm-up, one to train the boosters, one
to calibrate and the last to test, but only just: three years of NYSE sessions are 754-757
dates, so a lake ending on 31 December holds 502-505 feature dates before its test year, and
B3's ~248 sessions a year leave about 490, both short of 252 + 252. A lake ending just before
its new year's 63rd date is judged on the year before and holds about 60 dates fewer still. The
floor of 126 dates needs 378: over every four-year lake ending on any day of 2010-2026, the
room above it is 60 dates or more on the NYSE calendar and 44 or more on B3's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from training.config import TrainingConfig

SHORT_CALIBRATION_DAYS = 252
"""The longest calibration window when the lake is too short for the configured one: one year."""

MIN_CALIBRATION_DAYS = 126
"""The shortest calibration window a short lake gets: half a year."""

MIN_TEST_DATES = 63
"""The fewest feature dates a lone test year holds: a quarter."""


@dataclass(frozen=True)
class GatePlan:
    """The walk-forward the gate runs.

    Attributes:
        config: The training config of the folds and of the served fit.
        test_years: Calendar years walked forward (the last ones).
        start: First test date.
        note: What was scaled down and why, for the verdict and the model card; empty when
            the gate is today's.
        end: End of testing (exclusive); None: through the last price.
    """

    config: TrainingConfig
    test_years: int
    start: pd.Timestamp
    note: str = ""
    end: pd.Timestamp | None = None


def first_test_date(last: pd.Timestamp, years: int) -> pd.Timestamp:
    """January 1st of the first of the last ``years`` calendar years."""
    return pd.Timestamp(year=last.year - years + 1, month=1, day=1)


def plan_gate(feature_dates: pd.Index, config: TrainingConfig, years: int) -> GatePlan:
    """The largest walk-forward the feature dates allow, down to one test year.

    Args:
        feature_dates: The dates with features (any order, duplicates allowed).
        config: The configured training settings.
        years: The configured number of test years (``gate_test_years``).

    Returns:
        The plan; when even one test year with a :data:`MIN_CALIBRATION_DAYS` calibration window
        does not fit, today's plan (the walk-forward then names the dates it is missing).
    """
    dates = pd.DatetimeIndex(feature_dates).unique()
    last = dates.max()
    lone = first_test_date(last, 1)
    end = lone if int((dates >= lone).sum()) < MIN_TEST_DATES else None
    if end is not None:  # the last year is too short to be judged on alone: the one before
        lone = first_test_date(last, 2)

    def room(start: pd.Timestamp) -> int:  # calibration dates a fold starting there allows
        return int((dates < start).sum()) - config.min_train_days

    if room(first_test_date(last, years)) >= config.calibration_days:
        return GatePlan(config, years, first_test_date(last, years))
    for y in range(years - 1, 1, -1):
        if room(first_test_date(last, y)) >= config.calibration_days:
            return GatePlan(config, y, first_test_date(last, y), _note(y, years, config, config))
    # One test year: the longest window the dates before it allow, up to the configured one,
    # and down to the floor (a shortened window is at most one year).
    days = min(config.calibration_days, room(lone))
    if days < config.calibration_days:
        days = min(days, SHORT_CALIBRATION_DAYS)
    if days >= min(config.calibration_days, MIN_CALIBRATION_DAYS):
        used = config.model_copy(update={"calibration_days": days})
        note = _note(1, years, config, used)
        if end is not None:
            after = int((dates >= end).sum())
            note += f"; the {after} date{'s' if after > 1 else ''} after {lone.year} untested"
        return GatePlan(used, 1, lone, note, end)
    return GatePlan(config, years, first_test_date(last, years))


def _note(y: int, years: int, config: TrainingConfig, used: TrainingConfig) -> str:
    """``judged on 1 test year (gate_test_years=2: too little history), ...``."""
    unit = "year" if y == 1 else "years"
    note = f"judged on {y} test {unit} (gate_test_years={years}: too little history)"
    if used.calibration_days != config.calibration_days:
        note += (
            f", calibration window {used.calibration_days} days instead of "
            f"{config.calibration_days}"
        )
    return note
