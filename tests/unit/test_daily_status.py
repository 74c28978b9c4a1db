"""The daily flow's status per exchange: when its next success is due, on the exchange's own
calendar (holidays skipped, early closes kept)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from finsimples.lake import Lake
from finsimples.records import DailyStatus, daily_status_path, read_record
from finsimples.settings import Settings
from jobs.status import record_daily

NY = ZoneInfo("America/New_York")
SP = ZoneInfo("America/Sao_Paulo")


def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, state_dir=tmp_path, daily_delay_minutes=30)  # type: ignore[call-arg]


def stored(settings: Settings, mic: str) -> DailyStatus | None:
    location = Lake.from_settings(settings).location
    return read_record(location, daily_status_path(mic), DailyStatus)


def test_a_success_the_day_before_thanksgiving_is_due_again_after_fridays_early_close(
    tmp_path: Path,
) -> None:
    config = settings(tmp_path)
    ran = datetime(2025, 11, 26, 16, 31, tzinfo=NY)
    status = record_daily(config, "XNYS", success=True, now=ran)
    # Thursday 27 is Thanksgiving; Friday 28 closes at 13:00 New York: 15:30 in São Paulo.
    assert status.due_at == datetime(2025, 11, 28, 15, 30, tzinfo=SP)
    assert status.last_success_at == ran
    assert stored(config, "XNYS") == status


def test_a_failure_keeps_the_due_time_of_the_last_success(tmp_path: Path) -> None:
    config = settings(tmp_path)
    record_daily(config, "BVMF", success=True, now=datetime(2025, 3, 6, 18, 31, tzinfo=SP))
    failed = record_daily(
        config, "BVMF", success=False, now=datetime(2025, 3, 7, 18, 35, tzinfo=SP)
    )
    assert failed.success is False
    assert failed.due_at == datetime(2025, 3, 7, 18, 30, tzinfo=SP)  # still Friday's run
    assert failed.last_success_at == datetime(2025, 3, 6, 18, 31, tzinfo=SP)


def test_a_first_run_that_fails_is_due_at_once(tmp_path: Path) -> None:
    ran = datetime(2025, 3, 7, 18, 35, tzinfo=SP)
    status = record_daily(settings(tmp_path), "BVMF", success=False, now=ran)
    assert (status.due_at, status.last_success_at) == (ran, None)


def test_each_exchange_keeps_its_own_record(tmp_path: Path) -> None:
    config = settings(tmp_path)
    record_daily(config, "BVMF", success=True, now=datetime(2025, 3, 6, 18, 31, tzinfo=SP))
    record_daily(config, "XNYS", success=False, now=datetime(2025, 3, 6, 16, 40, tzinfo=NY))
    bvmf, xnys = stored(config, "BVMF"), stored(config, "XNYS")
    assert bvmf is not None
    assert xnys is not None
    assert (bvmf.exchange, bvmf.success, xnys.exchange, xnys.success) == (
        "BVMF",
        True,
        "XNYS",
        False,
    )
