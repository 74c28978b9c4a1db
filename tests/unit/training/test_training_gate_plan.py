"""The gate's walk-forward scaled to the history a lake holds; long lakes keep today's gate."""

from __future__ import annotations

import pandas as pd
import pytest

from training.config import TrainingConfig
from training.gate_plan import SHORT_CALIBRATION_DAYS, plan_gate

CONFIG = TrainingConfig()  # calibration 504 + min_train 252 before each fold
WARM_UP = 253  # features start a year after the first price (training.features)


def feature_dates(first_price: str, last_price: str = "2022-11-30") -> pd.DatetimeIndex:
    return pd.bdate_range(first_price, last_price)[WARM_UP:]


def test_a_long_lake_keeps_todays_gate() -> None:
    plan = plan_gate(feature_dates("2014-12-01"), CONFIG, 2)
    assert (plan.config, plan.test_years, plan.note) == (CONFIG, 2, "")
    assert plan.start == pd.Timestamp("2021-01-01")


def test_five_years_are_judged_on_one_test_year() -> None:
    plan = plan_gate(feature_dates("2017-12-01"), CONFIG, 2)
    assert plan.config == CONFIG
    assert plan.test_years == 1
    assert plan.start == pd.Timestamp("2022-01-01")
    assert plan.note == "judged on 1 test year (gate_test_years=2: too little history)"


def test_four_years_get_one_test_year_and_a_one_year_calibration_window() -> None:
    plan = plan_gate(feature_dates("2018-12-01"), CONFIG, 2)
    assert plan.test_years == 1
    assert plan.config.calibration_days == SHORT_CALIBRATION_DAYS
    assert plan.config.model_copy(update={"calibration_days": 504}) == CONFIG
    assert plan.note == (
        "judged on 1 test year (gate_test_years=2: too little history), calibration window "
        "252 days instead of 504"
    )


def test_too_little_even_for_the_smallest_gate_is_left_to_the_walk_forward() -> None:
    plan = plan_gate(feature_dates("2019-12-01"), CONFIG, 2)
    assert (plan.config, plan.test_years, plan.note) == (CONFIG, 2, "")


@pytest.mark.parametrize("years", [1, 2, 3])
def test_the_configured_years_are_never_exceeded(years: int) -> None:
    assert plan_gate(feature_dates("2005-01-03"), CONFIG, years).test_years == years
