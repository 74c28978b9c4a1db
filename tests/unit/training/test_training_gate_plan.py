"""The gate's walk-forward scaled to the history a lake holds; long lakes keep today's gate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from finsimples.calendars import calendar
from training.config import TrainingConfig
from training.gate_plan import (
    MIN_CALIBRATION_DAYS,
    MIN_TEST_DATES,
    SHORT_CALIBRATION_DAYS,
    plan_gate,
)

CONFIG = TrainingConfig()  # calibration 504 + min_train 252 before each fold
WARM_UP = 253  # features start a year after the first price (training.features)
SAMPLE = Path(__file__).parents[3] / "data" / "sp500_prices.csv.gz"


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


def four_year_lake(sessions: pd.DatetimeIndex, end: str) -> pd.DatetimeIndex:
    """The feature dates of a lake holding the four calendar years up to ``end``."""
    last = pd.Timestamp(end)
    held = sessions[(sessions > last - pd.DateOffset(years=4)) & (sessions <= last)]
    return held[WARM_UP - 1 :]


@pytest.fixture(scope="module")
def sample_sessions() -> pd.DatetimeIndex:
    """The trading days of the bundled S&P sample (1990-2022)."""
    return pd.DatetimeIndex(pd.read_csv(SAMPLE, usecols=["Date"], parse_dates=["Date"])["Date"])


def test_four_sample_years_to_31_december_2013_are_one_test_year_after_502_dates(
    sample_sessions: pd.DatetimeIndex,
) -> None:
    """2010-2012 held 754 sessions (Sandy closed the NYSE two days): 502 feature dates
    before 2013, two short of a one-year window and a year of training. The window shrinks
    to what there is instead of leaving the lake without a model."""
    dates = four_year_lake(sample_sessions, "2013-12-31")
    plan = plan_gate(dates, CONFIG, 2)
    assert (dates < "2013-01-01").sum() == 502
    assert plan.test_years == 1
    assert plan.start == pd.Timestamp("2013-01-01")
    assert plan.config.calibration_days == 502 - CONFIG.min_train_days
    assert plan.note == (
        "judged on 1 test year (gate_test_years=2: too little history), calibration window "
        "250 days instead of 504"
    )


def test_every_four_sample_years_get_a_gate_with_room_to_spare(
    sample_sessions: pd.DatetimeIndex,
) -> None:
    """Every end date of the sample, weekly: a plan on a quarter or more, not a missing date."""
    for end in pd.date_range("1995-01-01", "2022-12-28", freq="W"):
        dates = four_year_lake(sample_sessions, str(end.date()))
        plan = plan_gate(dates, CONFIG, 2)
        assert plan.note.startswith("judged on 1 test year"), end
        spare = (dates < plan.start).sum() - CONFIG.min_train_days - MIN_CALIBRATION_DAYS
        assert spare >= 40, end
        assert MIN_CALIBRATION_DAYS <= plan.config.calibration_days <= SHORT_CALIBRATION_DAYS
        tested = (dates >= plan.start) & (dates < (plan.end or end + pd.Timedelta(days=1)))
        assert tested.sum() >= MIN_TEST_DATES, end


def test_a_lake_ending_in_the_first_weeks_of_a_year_is_judged_on_the_year_before(
    sample_sessions: pd.DatetimeIndex,
) -> None:
    """Two dates of 2021 would be a test year of twelve rows: the leakage tripwire and the
    worst-year coverage would trip on chance. 2020 is the test year; the two are untested."""
    dates = four_year_lake(sample_sessions, "2021-01-05")
    plan = plan_gate(dates, CONFIG, 2)
    assert (plan.test_years, plan.start, plan.end) == (
        1,
        pd.Timestamp("2020-01-01"),
        pd.Timestamp("2021-01-01"),
    )
    assert plan.config.calibration_days == (dates < "2020-01-01").sum() - CONFIG.min_train_days
    assert plan.note.endswith("; the 2 dates after 2020 untested")
    # a quarter of the new year is enough to be judged on
    dates = four_year_lake(sample_sessions, "2021-04-05")
    assert (dates >= "2021-01-01").sum() == MIN_TEST_DATES
    plan = plan_gate(dates, CONFIG, 2)
    assert (plan.start, plan.end) == (pd.Timestamp("2021-01-01"), None)
    assert "untested" not in plan.note


def test_a_long_lake_ending_in_the_first_days_of_a_year_keeps_todays_gate(
    sample_sessions: pd.DatetimeIndex,
) -> None:
    held = sample_sessions[sample_sessions <= "2021-01-05"][WARM_UP - 1 :]
    plan = plan_gate(held, CONFIG, 2)
    assert (plan.config, plan.start, plan.end, plan.note) == (
        CONFIG,
        pd.Timestamp("2020-01-01"),
        None,
        "",
    )


@pytest.mark.parametrize("mic", ["XNYS", "BVMF"])
@pytest.mark.parametrize("year", range(2008, 2027))
def test_four_years_to_31_december_on_either_exchange_get_a_gate(mic: str, year: int) -> None:
    """B3 trades ~248 days a year, so its four years hold fewer dates than NYSE's."""
    sessions = calendar(mic).sessions_in_range("2003-01-01", "2026-12-31")
    dates = four_year_lake(sessions, f"{year}-12-31")
    plan = plan_gate(dates, CONFIG, 2)
    assert plan.test_years == 1
    assert plan.start == pd.Timestamp(f"{year}-01-01")
    room = (dates < plan.start).sum() - CONFIG.min_train_days
    assert plan.config.calibration_days == min(room, SHORT_CALIBRATION_DAYS)
    assert room - MIN_CALIBRATION_DAYS >= 40


def test_too_little_even_for_the_smallest_gate_is_left_to_the_walk_forward() -> None:
    plan = plan_gate(feature_dates("2019-12-01"), CONFIG, 2)
    assert (plan.config, plan.test_years, plan.note) == (CONFIG, 2, "")
    # three years and a quarter: 126 dates to calibrate would be there, a year to train is not
    plan = plan_gate(feature_dates("2019-09-01", "2022-11-30"), CONFIG, 2)
    assert (plan.config, plan.test_years, plan.note) == (CONFIG, 2, "")


def test_a_configured_window_shorter_than_the_floor_is_not_shrunk() -> None:
    config = TrainingConfig(calibration_days=100, min_train_days=600)
    plan = plan_gate(feature_dates("2018-12-01"), config, 2)
    assert (plan.config, plan.test_years, plan.note) == (config, 2, "")


@pytest.mark.parametrize("years", [1, 2, 3])
def test_the_configured_years_are_never_exceeded(years: int) -> None:
    assert plan_gate(feature_dates("2005-01-03"), CONFIG, years).test_years == years
