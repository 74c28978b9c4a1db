"""The daily flow, scheduled after the close: ingest the day's files, retrain, track record.

The track-record step runs last, after the retrain, so it logs the forecasts of the champion
that serves the new data. Its failure does not fail the day: ingest and retrain have committed
their work by then, and their summary is logged first; the step's own flow run shows Failed in
Prefect, the daily flow logs the error, and the summary carries it (``track_record_error``).
The realized record then stays at its previous day (its ``as_of`` in ``GET /v1/model`` says
so) until the next run, which scores the missed day too.

The B3 and NYSE runs fire in the same minute from November to March, over one drop location
and one registry. Both ingest what is pending (a MERGE per run, so a file both read lands once,
and a file the other run moved is skipped: ``flows.ingest``); the retrain with its promotion,
and the track record each hold the model lock (``flows.locks``), so the second
run's retrain waits for the first's and plans against the champion it left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import flow, get_run_logger

from finsimples.schedules import market_closed_reason
from finsimples.settings import Settings
from flows.ingest import IngestSummary, ingest_flow
from flows.io import io_task, with_retries
from flows.retrain import RetrainSummary, retrain_flow
from flows.track_record import TrackRecordRun, track_record_flow
from jobs.status import record_daily


@dataclass(frozen=True)
class DailySummary:
    """What one day's run did; ``closed`` says why nothing ran (the exchange's holiday)."""

    ingest: IngestSummary
    retrain: RetrainSummary | None
    track_record: TrackRecordRun | None = None
    track_record_error: str | None = None
    closed: str | None = None

    @property
    def message(self) -> str:
        """Three lines for logs and the CLI."""
        if self.closed is not None or self.retrain is None:
            return str(self.closed)
        if self.track_record is not None:
            track = self.track_record.message
        else:
            track = f"FAILED: {self.track_record_error}"
        return (
            f"ingest: {self.ingest.message}\nretrain: {self.retrain.message}\ntrack record: {track}"
        )


@flow(name="daily")
def daily_flow(
    full: bool = False, exchange: str | None = None, now: datetime | None = None
) -> DailySummary:
    """Ingest new price files, retrain (incremental, or full on cadence or if asked), then log
    and score the champion's forecasts.

    Args:
        full: make the retrain a full refit.
        exchange: the exchange whose close scheduled this run (a MIC); on a day it did not
            trade the run logs "market closed" and does nothing (on a compressed market clock,
            ``daily_every_seconds``, the files pending are the day: no wall-clock check).
        now: the run's time (default: now; tests).
    """
    if not exchange:
        return _daily(full, None, now)
    try:
        summary = _daily(full, exchange, now)
    except Exception:
        _record(exchange, False, now)
        raise
    _record(exchange, True, now)
    return summary


def _record(exchange: str, success: bool, now: datetime | None) -> None:
    """Record the exchange's run for ``DailyFlowMissed``; a failure to do so is logged, never
    raised over the run's own result (the alert then fires: someone looks)."""
    settings = Settings()
    try:
        with_retries(record_run, settings)(settings, exchange, success, now or datetime.now(UTC))
    except Exception:
        get_run_logger().exception("could not record the daily run of %s in the lake", exchange)


@io_task
def record_run(settings: Settings, exchange: str, success: bool, now: datetime) -> None:
    """Keep the run's end in the lake (``status/daily-<mic>.json``)."""
    record_daily(settings, exchange, success=success, now=now)


def _daily(full: bool, exchange: str | None, now: datetime | None) -> DailySummary:
    log = get_run_logger()
    if exchange and Settings().daily_every_seconds is not None:
        log.info("compressed market clock: the files pending set %s's trading day", exchange)
    elif exchange:
        closed = market_closed_reason(exchange, now or datetime.now(UTC))
        if closed is not None:
            log.info("%s; nothing to ingest or retrain", closed)
            return DailySummary(IngestSummary(), None, closed=closed)
    ingest = ingest_flow()
    retrain = retrain_flow(full=full)
    log.info("ingest: %s; retrain: %s", ingest.message, retrain.message)
    try:
        record = track_record_flow()
    except Exception as exc:  # the day's ingest and retrain stand: see the module docstring
        log.error("track record failed (ingest and retrain are done): %r", exc)
        summary = DailySummary(ingest, retrain, track_record_error=repr(exc))
    else:
        summary = DailySummary(ingest, retrain, record)
    log.info(summary.message)
    return summary
