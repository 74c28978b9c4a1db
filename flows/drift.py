"""The drift flow: is the world still the one the champion learned? Scheduled, and deploy-run.

Reference = the training window's tail, current = the most recent trading days; features,
predictions, and realized coverage and residuals are compared (``monitoring.drift``). The
report goes to the lake and MLflow and flags the champion. When the scheduled check finds drift,
it may start a full retrain (``drift_triggers_retrain``); the check the deploy hook runs never
does, or a promotion could start an endless loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, get_run_logger

from finsimples.settings import Settings
from flows.io import compute_task, io_task, with_retries
from jobs.drift import (
    DriftInputs,
    StoredDriftReport,
    load_drift_inputs,
    store_drift_report,
)
from monitoring.drift import DriftResult, check_drift


@dataclass(frozen=True)
class DriftSummary:
    """What one drift check found, and where its report is."""

    version: str
    drift_detected: bool
    reasons: tuple[str, ...]
    metrics: dict[str, float]
    report: StoredDriftReport
    retrain: str | None = None  # the retrain flow's message, when drift started one

    @property
    def message(self) -> str:
        """One line for logs and the CLI."""
        found = "drift: " + "; ".join(self.reasons) if self.drift_detected else "no drift"
        tail = f"; {self.retrain}" if self.retrain else ""
        return f"v{self.version}: {found}; report {self.report.html_path}{tail}"


@io_task
def load_inputs(settings: Settings) -> DriftInputs:
    """The lake's prices and the champion (S3 and MLflow reads)."""
    return load_drift_inputs(settings)


@compute_task
def check(inputs: DriftInputs, settings: Settings) -> DriftResult:
    """Run the Evidently and coverage checks."""
    return check_drift(inputs.prices, inputs.forecaster, settings.drift)


@io_task
def store_report(settings: Settings, version: str, result: DriftResult) -> StoredDriftReport:
    """Keep the report in the lake and MLflow; flag the champion's version."""
    return store_drift_report(settings, version, result)


@flow(name="drift")
def drift_flow(trigger_retrain: bool | None = None) -> DriftSummary:
    """Check the champion for drift; record it; maybe start a full retrain.

    Args:
        trigger_retrain: start a full retrain on drift (default: ``drift_triggers_retrain``).
    """
    settings = Settings()
    log = get_run_logger()
    inputs = with_retries(load_inputs, settings)(settings)
    result = check(inputs, settings)
    stored = with_retries(store_report, settings)(settings, inputs.version, result)
    summary = DriftSummary(
        inputs.version, result.drift_detected, result.reasons, result.metrics(), stored
    )
    retrain = settings.drift_triggers_retrain if trigger_retrain is None else trigger_retrain
    if result.drift_detected and retrain:
        from flows.retrain import retrain_flow  # the retrain flow runs this one after deploys

        log.warning("drift detected (%s): starting a full retrain", "; ".join(result.reasons))
        outcome = retrain_flow(full=True)
        summary = DriftSummary(**{**summary.__dict__, "retrain": outcome.message})
    log.info(summary.message)
    return summary
