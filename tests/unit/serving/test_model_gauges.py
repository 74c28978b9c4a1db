"""The model gauges: published from the lake's records, absent without them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bentos.metrics import ModelGauges, trading_days_between
from finsimples.records import (
    DRIFT_STATUS,
    RETRAIN_STATUS,
    TRACK_RECORD_SUMMARY,
    DailyStatus,
    DriftStatus,
    HorizonRecord,
    ModelStatus,
    RetrainStatus,
    TrackRecordSummary,
    daily_status_path,
    read_model_status,
    write_record,
)
from finsimples.settings import Settings
from finsimples.storage import open_location

NOW = datetime(2024, 3, 8, 21, 0, tzinfo=UTC)  # a Friday
RECORD = TrackRecordSummary(
    as_of=date(2024, 3, 8),
    window_days=63,
    window_start=date(2023, 12, 6),
    interval=0.9,
    horizons=(
        HorizonRecord(horizon=1, coverage=0.88, pinball=0.004, width=0.05, n=120),
        HorizonRecord(horizon=5, coverage=0.0, pinball=0.0, width=0.0, n=0),
    ),
)


class FakeGauge:
    """A Prometheus gauge's ``set`` and ``labels``, remembering the values."""

    def __init__(self) -> None:
        self.values: dict[tuple[tuple[str, str], ...], float] = {}
        self._labels: tuple[tuple[str, str], ...] = ()

    def labels(self, **labels: str) -> FakeGauge:
        child = FakeGauge()
        child.values = self.values
        child._labels = tuple(sorted(labels.items()))
        return child

    def set(self, value: float) -> None:
        self.values[self._labels] = value


@pytest.fixture
def gauges() -> dict[str, FakeGauge]:
    return {}


def publish(gauges: dict[str, FakeGauge], status: ModelStatus, today: date) -> None:
    ModelGauges(lambda name: gauges.setdefault(name, FakeGauge())).publish(status, today)


def test_no_record_means_no_series(gauges: dict[str, FakeGauge]) -> None:
    publish(gauges, ModelStatus(), date(2024, 3, 8))
    assert gauges == {}


def test_every_record_sets_its_gauge(gauges: dict[str, FakeGauge]) -> None:
    status = ModelStatus(
        track_record=RECORD,
        retrain=RetrainStatus(
            finished_at=NOW, success=False, outcome="failed", last_trained_on=date(2024, 3, 6)
        ),
        drift=DriftStatus(checked_at=NOW, model_version="7", drift_detected=True, report="r"),
    )
    publish(gauges, status, date(2024, 3, 11))  # the Monday after
    assert gauges["finsimples_drift_detected"].values == {(): 1.0}
    assert gauges["finsimples_retrain_last_run_success"].values == {(): 0.0}
    # Wednesday (counted), Thursday, Friday: 3 weekdays before Monday.
    assert gauges["finsimples_trading_days_since_retrain"].values == {(): 3.0}
    # A horizon with nothing scored yet has no series.
    assert gauges["finsimples_realized_coverage"].values == {(("horizon", "1"),): 0.88}


def test_a_retrain_status_without_a_training_date_leaves_the_age_absent(
    gauges: dict[str, FakeGauge],
) -> None:
    never = RetrainStatus(finished_at=NOW, success=True, outcome="nothing to do")
    publish(gauges, ModelStatus(retrain=never), date(2024, 3, 8))
    assert set(gauges) == {"finsimples_retrain_last_run_success"}


def test_trading_days_count_weekdays() -> None:
    assert trading_days_between(date(2024, 3, 8), date(2024, 3, 8)) == 0
    assert trading_days_between(date(2024, 3, 8), date(2024, 3, 11)) == 1  # Fri -> Mon
    assert trading_days_between(date(2024, 3, 11), date(2024, 3, 8)) == 0  # clock skew


def test_records_round_trip_through_the_lake_location(tmp_path: Path) -> None:
    location = open_location(str(tmp_path / "lake"), Settings())
    assert read_model_status(location) == ModelStatus()
    write_record(location, TRACK_RECORD_SUMMARY, RECORD)
    retrain = RetrainStatus(finished_at=NOW, success=True, outcome="ok")
    write_record(location, RETRAIN_STATUS, retrain)
    (tmp_path / "lake" / DRIFT_STATUS).write_text('{"drift_detected": "maybe"}')
    status = read_model_status(location)  # a bad record is logged and left out
    assert status == ModelStatus(track_record=RECORD, retrain=retrain, drift=None)
    assert RECORD.at(3) == RECORD.horizons[0]  # ties go to the shorter horizon


def test_each_exchanges_daily_due_time_is_a_series(gauges: dict[str, FakeGauge]) -> None:
    due = datetime(2024, 3, 11, 21, 30, tzinfo=UTC)
    daily = (
        DailyStatus(
            exchange="BVMF", finished_at=NOW, success=True, last_success_at=NOW, due_at=due
        ),
        DailyStatus(exchange="XNYS", finished_at=NOW, success=False, due_at=NOW),
    )
    publish(gauges, ModelStatus(daily=daily), date(2024, 3, 8))
    assert gauges["finsimples_daily_flow_due_timestamp_seconds"].values == {
        (("exchange", "BVMF"),): due.timestamp(),
        (("exchange", "XNYS"),): NOW.timestamp(),
    }


def test_daily_records_are_read_for_the_configured_exchanges(tmp_path: Path) -> None:
    location = open_location(str(tmp_path / "lake"), Settings())
    record = DailyStatus(exchange="BVMF", finished_at=NOW, success=True, due_at=NOW)
    write_record(location, daily_status_path("BVMF"), record)
    location.write_bytes(location.path(daily_status_path("XNYS")), b"{not json")
    status = read_model_status(location, ["BVMF", "XNYS", "XLON"])  # broken, absent: left out
    assert status.daily == (record,)
    assert read_model_status(location).daily == ()
