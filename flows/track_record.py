"""The track-record flow: log today's champion forecasts, score the matured ones, summarize.

The daily flow runs it after the retrain, so it logs the forecasts of the champion that serves
the new data. Wiring only: the work is ``jobs.track_record`` and
``finsimples.track_record``; the replicas read the summary it writes
(``track_record/summary.json``) into ``GET /v1/model``, narratives and their gauges.

A run holds the model lock (``flows.locks``), so the champion it reads cannot move under it and
two runs of one day (the daily flows of two exchanges) write their log and summaries one after
the other: the later, from the later champion, stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import flow, get_run_logger

from finsimples.lake import Lake
from finsimples.records import TrackRecordSummary
from finsimples.settings import Settings
from flows.io import compute_task, io_task, with_retries
from flows.locks import model_lock
from jobs.common import load_champion, open_registry
from jobs.track_record import (
    TrackRecordInputs,
    TrackRecordResult,
    build_log,
    load_inputs,
    score_window,
    store_log,
    store_result,
)


@dataclass(frozen=True)
class TrackRecordRun:
    """What one run logged and scored, and the summary it wrote."""

    version: str
    logged: int
    scored_days: int
    summary: TrackRecordSummary

    @property
    def message(self) -> str:
        """One line for logs and the CLI."""
        record = self.summary
        pooled = (
            ", ".join(f"h{r.horizon} {r.coverage:.1%} (n={r.n})" for r in record.horizons)
            or "nothing scored yet"
        )
        return (
            f"v{self.version}: logged {self.logged} forecasts; {self.scored_days} day(s) scored; "
            f"{record.interval:.0%} coverage over {record.window_days} trading days to "
            f"{record.as_of}: {pooled}"
        )


@io_task
def read_inputs(settings: Settings) -> TrackRecordInputs:
    """The champion (MLflow), the lake's recent prices and the logged forecasts (lake)."""
    champion = load_champion(open_registry(settings))
    return load_inputs(settings, str(champion.version.version), champion.forecaster)


@compute_task
def log_forecasts(inputs: TrackRecordInputs, settings: Settings) -> pd.DataFrame:
    """Today's forecasts of every served ticker at the evaluated horizons."""
    return build_log(
        inputs.forecaster, inputs.version, inputs.prices, settings.training.eval_horizons
    )


@io_task
def write_log(settings: Settings, log: pd.DataFrame) -> str | None:
    """Keep today's log in the lake (replacing a previous run's of the same day)."""
    return store_log(Lake.from_settings(settings).location, log)


@compute_task
def score(inputs: TrackRecordInputs, log: pd.DataFrame, settings: Settings) -> TrackRecordResult:
    """Score the matured forecasts (today's log included) and summarize the window."""
    logs = pd.concat([inputs.logs, log], ignore_index=True) if not log.empty else inputs.logs
    if not logs.empty:
        logs = logs.drop_duplicates(["as_of", "ticker", "horizon"], keep="last")
    return score_window(
        logs,
        inputs.prices,
        inputs.scored_dates,
        window_days=settings.alerts.coverage_window_days,
        interval=float(inputs.forecaster.config.interval_coverage),
    )


@io_task
def write_result(settings: Settings, result: TrackRecordResult) -> list[str]:
    """Keep the score files and the summaries in the lake (the summaries last)."""
    return store_result(Lake.from_settings(settings).location, result)


@flow(name="track-record")
def track_record_flow() -> TrackRecordRun:
    """Log the champion's forecasts of the lake's latest day; score and summarize the record."""
    settings = Settings()
    with model_lock("track-record"):
        inputs = with_retries(read_inputs, settings)(settings)
        log = log_forecasts(inputs, settings)
        with_retries(write_log, settings)(settings, log)
        result = score(inputs, log, settings)
        with_retries(write_result, settings)(settings, result)
    run = TrackRecordRun(inputs.version, len(log), len(result.scores), result.summary)
    get_run_logger().info("track record: %s", run.message)
    return run
