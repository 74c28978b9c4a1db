"""Small status records kept in the lake's location, read by every replica (and pod).

JSON files, written whole (``Location.write_bytes`` is atomic: a reader sees the old record or
the new one), validated on read and write:

- ``track_record/summary.json`` (:class:`TrackRecordSummary`): the realized track record pooled
  per horizon, written by the track-record step of the daily flow;
- ``status/retrain.json`` (:class:`RetrainStatus`): the retrain flow's last run;
- ``status/drift.json`` (:class:`DriftStatus`): the drift flow's last result (its full report
  stays under ``reports/drift/``);
- ``status/daily-<mic>.json`` (:class:`DailyStatus`): an exchange's daily flow, its last run
  and when its next success is due (one file per exchange: the two daily runs write at once).

Light on purpose (json, pydantic, the Location): the serving process imports it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, Field

from finsimples.storage import Location

TRACK_RECORD_DIR = "track_record"
TRACK_RECORD_SUMMARY = f"{TRACK_RECORD_DIR}/summary.json"
RETRAIN_STATUS = "status/retrain.json"
DRIFT_STATUS = "status/drift.json"


def daily_status_path(mic: str) -> str:
    """Where the daily flow of exchange ``mic`` records its runs."""
    return f"status/daily-{mic.lower()}.json"


log = logging.getLogger(__name__)
Record = TypeVar("Record", bound=BaseModel)


class HorizonRecord(BaseModel):
    """The realized record at one horizon, pooled over tickers and model versions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon: int = Field(ge=1)
    coverage: float = Field(ge=0, le=1)
    pinball: float = Field(ge=0)
    width: float = Field(ge=0)
    n: int = Field(ge=0)


class TrackRecordSummary(BaseModel):
    """What ``track_record/summary.json`` holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: dt.date = Field(description="the last target date scored")
    window_days: int = Field(ge=1)
    window_start: dt.date | None
    interval: float = Field(gt=0, lt=1)
    horizons: tuple[HorizonRecord, ...]

    def at(self, horizon: int) -> HorizonRecord | None:
        """The record of the logged horizon nearest ``horizon`` (ties: the shorter)."""
        if not self.horizons:
            return None
        return min(self.horizons, key=lambda r: (abs(r.horizon - horizon), r.horizon))


class RetrainStatus(BaseModel):
    """The retrain flow's last run and the last run that trained a candidate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    finished_at: dt.datetime
    success: bool = Field(description="false only when the run failed (not a gate rejection)")
    outcome: str = Field(description="the run's message, or the error")
    last_trained_on: dt.date | None = Field(
        default=None,
        description="date (schedule time zone) of the last run that trained a candidate "
        "without error, promoted or not",
    )
    last_trained_version: str | None = None


class DriftStatus(BaseModel):
    """The drift flow's last check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checked_at: dt.datetime
    model_version: str
    drift_detected: bool
    report: str = Field(description="the HTML report's path in the lake")


class DailyStatus(BaseModel):
    """An exchange's daily flow: its last run, its last success, and when the next is due."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange: str
    finished_at: dt.datetime = Field(description="the last run's end")
    success: bool = Field(description="false when the last run failed")
    last_success_at: dt.datetime | None = None
    due_at: dt.datetime = Field(
        description="the scheduled run after the last success (the exchange's next session "
        "close plus the delay): a success is missing once this passes by more than the grace"
    )


def write_record(location: Location, path: str, record: BaseModel) -> None:
    """Write ``record`` as JSON at ``path`` under the location's root (atomically)."""
    data = json.dumps(record.model_dump(mode="json"), indent=2).encode()
    location.write_bytes(location.path(path), data)


def read_record(location: Location, path: str, model: type[Record]) -> Record | None:
    """The record at ``path``, or None when there is none yet.

    Raises:
        pydantic.ValidationError: the file is not a valid record (names the field).
    """
    full = location.path(path)
    if location.filesystem.get_file_info(full).type != pafs.FileType.File:
        return None
    return model.model_validate_json(location.read_bytes(full))


@dataclass(frozen=True)
class ModelStatus:
    """The records the replicas read (None or absent: not written yet, or unreadable)."""

    track_record: TrackRecordSummary | None = None
    retrain: RetrainStatus | None = None
    drift: DriftStatus | None = None
    daily: tuple[DailyStatus, ...] = ()


def read_model_status(location: Location, exchanges: Sequence[str] = ()) -> ModelStatus:
    """Read the records (the daily flow's of each of ``exchanges``); one that fails to read or
    validate is logged and left out."""
    found: dict[str, Any] = {}
    wanted = {
        "track_record": (TRACK_RECORD_SUMMARY, TrackRecordSummary),
        "retrain": (RETRAIN_STATUS, RetrainStatus),
        "drift": (DRIFT_STATUS, DriftStatus),
    }
    for field_name, (path, model) in wanted.items():
        try:
            found[field_name] = read_record(location, path, model)
        except Exception:
            log.exception("reading %s from the lake failed", path)
    daily = []
    for mic in exchanges:
        try:
            record = read_record(location, daily_status_path(mic), DailyStatus)
        except Exception:
            log.exception("reading %s from the lake failed", daily_status_path(mic))
            continue
        if record is not None:
            daily.append(record)
    return ModelStatus(**found, daily=tuple(daily))
