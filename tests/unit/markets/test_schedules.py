"""The daily flow's schedule: after each exchange's close, across a US daylight-saving change."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from prefect.schedules import Cron

from finsimples.schedules import daily_schedule, market_closed_reason, next_run

SP = ZoneInfo("America/Sao_Paulo")
NY = ZoneInfo("America/New_York")


def test_regular_closes_give_crons_in_each_exchange_zone() -> None:
    assert daily_schedule("BVMF", 30).cron == "30 18 * * 1-5"
    assert daily_schedule("BVMF", 30).timezone == "America/Sao_Paulo"
    assert daily_schedule("XNYS", 45).cron == "45 16 * * 1-5"
    assert daily_schedule("XNYS", 45).timezone == "America/New_York"


def test_the_nyse_run_moves_an_hour_in_brasilia_time_when_the_us_changes_clocks() -> None:
    # US daylight saving began on Sunday 2025-03-09; Brazil keeps UTC-3 all year.
    friday, monday = datetime(2025, 3, 7, 9, tzinfo=SP), datetime(2025, 3, 10, 9, tzinfo=SP)
    assert next_run("XNYS", friday, 30, "America/Sao_Paulo") == datetime(
        2025, 3, 7, 18, 30, tzinfo=SP
    )
    assert next_run("XNYS", monday, 30, "America/Sao_Paulo") == datetime(
        2025, 3, 10, 17, 30, tzinfo=SP
    )
    assert next_run("BVMF", friday, 30, "America/Sao_Paulo") == datetime(
        2025, 3, 7, 18, 30, tzinfo=SP
    )
    assert next_run("BVMF", monday, 30, "America/Sao_Paulo") == datetime(
        2025, 3, 10, 18, 30, tzinfo=SP
    )
    # And back on 2025-11-02.
    before, after = datetime(2025, 10, 31, 9, tzinfo=SP), datetime(2025, 11, 3, 9, tzinfo=SP)
    assert next_run("XNYS", before, 30, "America/Sao_Paulo").hour == 17
    assert next_run("XNYS", after, 30, "America/Sao_Paulo").hour == 18


def test_prefect_cron_in_the_exchange_zone_fires_at_the_calendar_run() -> None:
    from cronsim import CronSim  # what Prefect's cron schedules use

    for mic in ("XNYS", "BVMF"):
        schedule = daily_schedule(mic, 30)
        Cron(schedule.cron, timezone=schedule.timezone)  # a valid Prefect schedule
        zone = ZoneInfo(schedule.timezone)
        for start in (datetime(2025, 3, 7, 9, tzinfo=SP), datetime(2025, 3, 10, 9, tzinfo=SP)):
            fired = next(CronSim(schedule.cron, start.astimezone(zone)))
            assert fired == next_run(mic, start, 30, "America/Sao_Paulo")


def test_holidays_are_skipped_and_said_so() -> None:
    carnival = datetime(2025, 3, 3, 18, 30, tzinfo=SP)
    assert market_closed_reason("BVMF", carnival) == (
        "market closed: BVMF did not trade on 2025-03-03 (holiday)"
    )
    assert market_closed_reason("XNYS", carnival) is None
    assert next_run("BVMF", datetime(2025, 3, 3, 9, tzinfo=SP), 30, "America/Sao_Paulo") == (
        datetime(2025, 3, 5, 18, 30, tzinfo=SP)
    )
    july_4th = datetime(2025, 7, 4, 17, 0, tzinfo=NY)
    assert market_closed_reason("XNYS", july_4th) == (
        "market closed: XNYS did not trade on 2025-07-04 (holiday)"
    )


def test_an_early_close_moves_the_run_earlier() -> None:
    # NYSE closes at 13:00 New York time the day after Thanksgiving.
    run = next_run("XNYS", datetime(2025, 11, 28, 9, tzinfo=NY), 30, "America/New_York")
    assert run == datetime(2025, 11, 28, 13, 30, tzinfo=NY)
