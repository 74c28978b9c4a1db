"""How much walk-forward the gate can afford on the history a lake holds.

Today's gate walks a candidate forward over the last ``gate_test_years`` (2) calendar years, and
each fold needs ``min_train_days + calibration_days`` (252 + 504) feature dates before it; with
the features' one-year warm-up that is about six years of prices, so a lake of five years (say
B3's last five COTAHIST files) got no model at all.

The plan scales the walk-forward to the history there is, in this order, and says so:

1. enough history: today's gate, unchanged;
2. fewer test years (down to 1) with the configured calibration window;
3. one test year with a one-year calibration window (:data:`SHORT_CALIBRATION_DAYS`), for the
   folds and for the model that is served, so what is judged is what is served.

With one test year and a one-year calibration window a lake needs about four years of prices
(one year of feature warm-up, one to train the boosters, one to calibrate, the last to test).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from training.config import TrainingConfig

SHORT_CALIBRATION_DAYS = 252
"""The calibration window when the lake is too short for the configured one: one year."""


@dataclass(frozen=True)
class GatePlan:
    """The walk-forward the gate runs.

    Attributes:
        config: The training config of the folds and of the served fit.
        test_years: Calendar years walked forward (the last ones).
        start: First test date.
        note: What was scaled down and why, for the verdict and the model card; empty when
            the gate is today's.
    """

    config: TrainingConfig
    test_years: int
    start: pd.Timestamp
    note: str = ""


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
        The plan; when even one test year with a one-year calibration window does not fit,
        today's plan (the walk-forward then names the dates it is missing).
    """
    dates = pd.DatetimeIndex(feature_dates).unique()
    last = dates.max()

    def fits(cfg: TrainingConfig, y: int) -> bool:
        before = int((dates < first_test_date(last, y)).sum())
        return before >= cfg.calibration_days + cfg.min_train_days

    for y in range(years, 0, -1):
        if fits(config, y):
            note = "" if y == years else _note(y, years, config, config)
            return GatePlan(config, y, first_test_date(last, y), note)
    short = config.model_copy(
        update={"calibration_days": min(config.calibration_days, SHORT_CALIBRATION_DAYS)}
    )
    if short != config and fits(short, 1):
        return GatePlan(short, 1, first_test_date(last, 1), _note(1, years, config, short))
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
