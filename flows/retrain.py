"""The retrain flow: new data in the lake -> candidate -> gate -> champion or not.

It reads the champion's watermark first: with nothing newer in the lake it ends as "nothing to
do". Otherwise it updates the champion incrementally, or refits from scratch on the configured
cadence (``jobs.plan``). The train job logs and registers the candidate and runs the
gate; only a promotion moves ``@champion``, and it is the job's last registry write, so a failure
anywhere before it (MLflow unreachable, a bad lake) leaves the champion as it was. The prices
to train on are read in an I/O task of their own, so an S3 outage there is retried like every
other lake read rather than failing the (never retried) training. The run's outcome is recorded
in the lake (``status/retrain.json``) for the replicas' model gauges.

What serves is not this flow's business: a promotion moves ``@champion``, and the stack's deploy
controller (``deploy.controller``), which compares ``@champion`` with the replicas, rolls the
new version out. The flow's last step only wakes it (``POST /reconcile``), so the deploy starts
at once rather than at the controller's next poll; a controller that is down or unreachable
costs that delay, never the deploy.

A run holds the model lock (``flows.locks``) from reading the champion to recording its
outcome: two retrains that start together (the daily flows of B3 and
NYSE fire in the same minute in the southern summer) run one after the other, and the second
plans against the champion the first left.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pandas as pd
from prefect import flow, get_run_logger

from finsimples.lake import Lake
from finsimples.records import RetrainStatus
from finsimples.settings import Settings
from flows.io import compute_task, io_task, with_retries
from flows.locks import model_lock
from jobs.common import open_registry, read_training_prices
from jobs.plan import LastCandidate, RetrainPlan, plan_retrain
from jobs.status import record_retrain
from jobs.train import TrainOutcome, train


@dataclass(frozen=True)
class RetrainSummary:
    """What one run of the retrain flow did."""

    plan: RetrainPlan
    outcome: TrainOutcome | None = None

    @property
    def message(self) -> str:
        """One line for logs and the CLI."""
        if self.outcome is None:
            return f"nothing to do: {self.plan.reason}"
        return f"{self.outcome.mode} retrain ({self.plan.reason}): {self.outcome.message}"


@io_task
def read_plan(settings: Settings, force_full: bool) -> RetrainPlan:
    """The lake's last date and the champion's tags -> what to train (lake and MLflow reads)."""
    lake = Lake.from_settings(settings)
    marks = lake.watermarks()
    registry = open_registry(settings)
    champion = registry.champion()
    versions = registry.versions() if champion is not None else []
    newest = versions[0] if versions else None
    last = None
    if newest is not None and champion is not None and newest.version != champion.version:
        last = LastCandidate(str(newest.version), dict(newest.tags), lake.snapshot().version)
    return plan_retrain(
        max(marks.values()) if marks else None,
        str(champion.version) if champion else None,
        dict(champion.tags) if champion else {},
        full_refit_every=settings.full_refit_every,
        force_full=force_full,
        last_candidate=last,
    )


@io_task
def read_prices(settings: Settings) -> tuple[int, pd.DataFrame]:
    """The lake's version and every price in it, for the training (S3 reads)."""
    lake = Lake.from_settings(settings)
    snapshot = lake.snapshot()  # the version recorded is the one read
    return snapshot.version, read_training_prices(lake, snapshot)


@compute_task
def train_candidate(
    settings: Settings, plan: RetrainPlan, lake_prices: tuple[int, pd.DataFrame]
) -> TrainOutcome:
    """Train, log, register and gate a candidate (minutes of compute: never retried)."""
    if plan.mode is None:
        raise ValueError(f"nothing to train: {plan.reason}")
    return train(settings, plan.mode, step=get_run_logger().info, lake_prices=lake_prices)


@io_task
def record_status(
    settings: Settings, success: bool, outcome: str, trained_version: str | None
) -> RetrainStatus:
    """Keep this run's outcome in the lake (``status/retrain.json``) for the replicas' gauges."""
    return record_retrain(
        settings, success=success, outcome=outcome, trained_version=trained_version
    )


def _record(settings: Settings, success: bool, outcome: str, trained: str | None) -> None:
    """Record the status; a failure to do so is logged, never raised over the run's own result
    (the replicas' ChampionStale gauge then ages: the alert still notices)."""
    try:
        with_retries(record_status, settings)(settings, success, outcome, trained)
    except Exception:
        get_run_logger().exception("could not record the retrain status in the lake")


def _retrain(settings: Settings, full: bool) -> RetrainSummary:
    log = get_run_logger()
    plan = with_retries(read_plan, settings)(settings, full)
    if plan.mode is None:
        log.info("nothing to do: %s", plan.reason)
        return RetrainSummary(plan)
    log.info("%s retrain: %s", plan.mode, plan.reason)
    lake_prices = with_retries(read_prices, settings)(settings)
    outcome = train_candidate(settings, plan, lake_prices)
    log.info(outcome.message)
    if outcome.promoted:
        wake_controller(settings)
    return RetrainSummary(plan, outcome)


def wake_controller(settings: Settings) -> None:
    """Ask the stack's deploy controller to reconcile now; quietly skipped when none answers
    (no stack here, or it is restarting: its poll notices the new champion anyway)."""
    stack = settings.stack
    if not stack.controller:
        return
    url = f"http://{stack.host}:{stack.controller_port}/reconcile"
    try:
        httpx.post(url, timeout=2.0)
    except httpx.HTTPError as exc:
        get_run_logger().info("deploy controller not reached at %s (%s): it polls", url, exc)


@flow(name="retrain")
def retrain_flow(full: bool = False) -> RetrainSummary:
    """Retrain on the lake's new data; promote through the gate; on promotion, wake the deploy
    controller.

    It holds the model lock throughout (waiting while another retrain or deploy runs). Every
    run ends by recording its outcome in the lake (``status/retrain.json``): success
    unless it raised (a gate rejection and "nothing to do" are successes), and, when it trained
    a candidate, today's date as the last training date.

    Args:
        full: refit from scratch even if an incremental update would do.
    """
    settings = Settings()
    with model_lock("retrain"):
        try:
            summary = _retrain(settings, full)
        except Exception as exc:
            _record(settings, False, f"failed: {exc!r}", None)
            raise
        trained = summary.outcome.version if summary.outcome is not None else None
        _record(settings, True, summary.message, trained)
    return summary
