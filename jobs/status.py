"""The flows' status records in the lake: the retrain flow's last run, the drift flow's last check.

The replicas read them (``finsimples.records``) into the model gauges
``finsimples_retrain_last_run_success``, ``finsimples_trading_days_since_retrain`` and
``finsimples_drift_detected``.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from finsimples.lake import Lake
from finsimples.records import (
    DRIFT_STATUS,
    RETRAIN_STATUS,
    DailyStatus,
    DriftStatus,
    RetrainStatus,
    daily_status_path,
    read_record,
    write_record,
)
from finsimples.settings import Settings

log = logging.getLogger(__name__)


def record_retrain(
    settings: Settings,
    *,
    success: bool,
    outcome: str,
    trained_version: str | None = None,
    now: datetime | None = None,
) -> RetrainStatus:
    """Record a retrain run's end: ``success`` False only when the run failed.

    ``trained_version``: the candidate this run trained without error (promoted or not); it
    sets ``last_trained_on`` to today in the schedule's time zone. Without it (nothing to do, or
    a failure) the previous run's training date is kept.
    """
    location = Lake.from_settings(settings).location
    try:
        previous = read_record(location, RETRAIN_STATUS, RetrainStatus)
    except ValidationError:
        log.warning("the previous retrain status at %s is invalid: replacing it", RETRAIN_STATUS)
        previous = None
    finished = now or datetime.now(UTC)
    trained_on: date | None
    if trained_version is not None:
        trained_on = finished.astimezone(ZoneInfo(settings.schedule_timezone)).date()
        version: str | None = trained_version
    else:
        trained_on = previous.last_trained_on if previous else None
        version = previous.last_trained_version if previous else None
    status = RetrainStatus(
        finished_at=finished,
        success=success,
        outcome=outcome,
        last_trained_on=trained_on,
        last_trained_version=version,
    )
    write_record(location, RETRAIN_STATUS, status)
    return status


def record_drift(
    settings: Settings, *, version: str, drift_detected: bool, report: str, now: datetime
) -> DriftStatus:
    """Record the drift check's result (the report itself is kept by ``jobs.drift``)."""
    status = DriftStatus(
        checked_at=now, model_version=version, drift_detected=drift_detected, report=report
    )
    write_record(Lake.from_settings(settings).location, DRIFT_STATUS, status)
    return status


def record_daily(settings: Settings, mic: str, *, success: bool, now: datetime) -> DailyStatus:
    """Record a daily run of exchange ``mic`` that ended at ``now``.

    A success makes the next scheduled run (the exchange's next session close after ``now``
    plus ``daily_delay_minutes``, on its own calendar) the one due; a failure keeps the due
    time of the last success, so ``DailyFlowMissed`` fires once it is past by the grace.
    """
    from finsimples.schedules import next_run

    location = Lake.from_settings(settings).location
    path = daily_status_path(mic)
    try:
        previous = read_record(location, path, DailyStatus)
    except ValidationError:
        log.warning("the previous daily status at %s is invalid: replacing it", path)
        previous = None
    if success:
        last_success: datetime | None = now
        due = next_run(mic, now, settings.daily_delay_minutes, settings.schedule_timezone)
    else:
        last_success = previous.last_success_at if previous else None
        due = previous.due_at if previous else now
    status = DailyStatus(
        exchange=mic, finished_at=now, success=success, last_success_at=last_success, due_at=due
    )
    write_record(location, path, status)
    return status
