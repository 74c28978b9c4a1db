"""The train job: lake -> candidate -> MLflow run and version -> gate -> champion or challenger."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd
from matplotlib.figure import Figure

from finsimples.adjustment import JumpRule, unexplained_jumps
from finsimples.engines import training_engine
from finsimples.lake import Lake
from finsimples.readjust import renames
from finsimples.settings import Settings
from jobs.common import (
    JobError,
    load_version,
    open_registry,
    read_training_prices,
)
from jobs.evidence import (
    feature_evidence,
    same_config,
    versus_champion_recent,
    walk_forward,
)
from jobs.plan import UPDATES_TAG, Mode, updates_since_full
from registry.gate import GateVerdict, evaluate_gate, gate_evidence_tags
from registry.model_card import render_model_card
from registry.tracking import TrainingRecord, log_candidate
from training.boosting import BoosterFit
from training.features import build_features, latest_features
from training.forecaster import QuantileForecaster
from training.gate_plan import plan_gate
from training.median import describe_median

Step = Callable[[str], None]
LEFT_OUT_TAG = "left_out"
"""The version tag naming the tickers training left out (unexplained jumps) and why."""


@dataclass(frozen=True)
class TrainOutcome:
    """What a train job did."""

    mode: Mode
    version: str | None  # None: nothing new to learn from
    verdict: GateVerdict | None
    promoted: bool
    metrics: dict[str, float]
    message: str


def train(
    settings: Settings,
    mode: Mode = "full",
    *,
    step: Step | None = None,
    lake_prices: tuple[int, pd.DataFrame] | None = None,
) -> TrainOutcome:
    """Train a candidate, log and register it, and promote it if it passes the gate.

    Args:
        settings: the one settings object.
        mode: ``full`` refits from scratch and is gated on a fresh walk-forward backtest of the
            last ``gate_test_years``; ``incremental`` updates the champion with the lake's rows
            after its watermark (continued boosting, sliding recalibration).
        step: called with a short description before each long step (progress display).
        lake_prices: the lake's version and every price in it, already read (the retrain flow
            reads them in a retried I/O task); default: read here.

    Raises:
        JobError: empty lake, or an incremental run without a champion.
        LeakageError: the backtest was too good to be true; nothing was registered.

    A full run with a champion compares the two on identical rows: both fitted models on the
    latest days with known outcomes when the configuration is the champion's (a refit), both
    configurations walked forward over the same folds when it changed.

    The boosters are fitted by the engine ``settings.training_engine`` selects (this process
    or a Dask cluster); the candidate, its registration and its gate are the same either way.
    """
    with training_engine(settings) as engine:
        return _train(settings, mode, step, lake_prices, engine)


def _train(
    settings: Settings,
    mode: Mode,
    step: Step | None,
    lake_prices: tuple[int, pd.DataFrame] | None,
    engine: BoosterFit,
) -> TrainOutcome:
    report = step or (lambda _: None)
    lake = Lake.from_settings(settings)
    registry = open_registry(settings)
    if lake_prices is None:  # the version recorded is the one read, whatever lands meanwhile
        snapshot = lake.snapshot()
        lake_prices = snapshot.version, read_training_prices(lake, snapshot)
    lake_version, prices = lake_prices
    prices, left_out = leave_out_jumps(prices, JumpRule.from_settings(settings))
    if left_out:
        report(f"leaving out {left_out}")
    prices, old_codes = leave_out_renamed(prices, lake.events())
    if old_codes:
        report(
            f"leaving out renamed codes {', '.join(old_codes)} (their history is the new codes')"
        )
    current = registry.champion()
    champion = load_version(registry, current) if current is not None else None
    config = settings.training

    figures: dict[str, Figure] = {}
    notes: tuple[str, ...] = ()  # what the gate scaled down, said in the verdict and the card
    report("building features")
    try:
        features = build_features(prices)
    except ValueError as exc:  # e.g. too little history: the core names what is missing
        raise JobError(f"cannot train on the lake at {lake.uri}: {exc}") from exc
    median = "model"
    if mode == "incremental":
        if champion is None:
            raise JobError("no champion to update: run `finsimples train --full` first")
        watermark = pd.Timestamp(champion.version.tags.get("watermark", "1900-01-01"))
        if prices["date"].max() <= watermark:
            return TrainOutcome(
                mode, None, None, False, {}, f"nothing new since {watermark.date()}"
            )
        report("updating the champion incrementally")
        forecaster = copy.deepcopy(champion.forecaster).update(features, prices, engine=engine)
        report(f"scoring candidate and champion on the last {settings.gate_recent_days} days")
        metrics = _inherited(champion.metrics) | versus_champion_recent(
            forecaster, champion.forecaster, features, prices, settings
        )
        metrics_source = (
            f"walk-forward inherited from v{champion.version.version} (same method, newer "
            f"data); h*_recent_* and h*_dm_*_vs_champion: candidate vs champion on the last "
            f"{settings.gate_recent_days} days"
        )
        median = describe_median(getattr(forecaster, "median_sources_", {}))
        summary = None
    else:
        plan = plan_gate(features.index.get_level_values("date"), config, settings.gate_test_years)
        config = plan.config  # a lake too short for the configured window: a one-year one
        refit = champion is not None and same_config(config, champion.forecaster)
        other = champion.forecaster if champion is not None and not refit else None
        years = f"{plan.test_years} year{'s' if plan.test_years > 1 else ''}"
        report(f"walk-forward backtest of the last {years}")
        evidence = walk_forward(
            prices, features, settings, champion=other, plan=plan, engine=engine
        )
        summary, figures, metrics = evidence.summary, evidence.figures, evidence.metrics
        metrics_source = f"walk-forward, last {years}"
        if plan.note:
            metrics_source += f" ({plan.note})"
            notes = (plan.note,)
        if other is not None:
            metrics_source += "; h*_dm_*_vs_champion: both configurations on the same folds"
        report("fitting on all data")
        try:
            forecaster = QuantileForecaster(config).fit(features, prices, engine=engine)
        except ValueError as exc:
            raise JobError(f"cannot train on the lake at {lake.uri}: {exc}") from exc
        forecaster.median_sources_ = dict(evidence.median_sources)
        median = describe_median(forecaster.median_sources_)
        if refit and champion is not None:
            report(f"scoring candidate and champion on the last {settings.gate_recent_days} days")
            metrics |= versus_champion_recent(
                forecaster, champion.forecaster, features, prices, settings
            )
            metrics_source += (
                f"; h*_dm_*_vs_champion: both fitted models on the last "
                f"{settings.gate_recent_days} days"
            )

    report("testing the candidate's features against permuted ones")
    metrics |= feature_evidence(forecaster, features, prices, settings)
    metrics_source += (
        f"; h*_features_dm: the candidate against itself with permuted features on its last "
        f"{forecaster.config.calibration_days} days"
    )
    verdict = evaluate_gate(metrics, champion.metrics if champion else None, settings.gate)
    verdict = replace(verdict, notes=notes + verdict.notes)
    record = TrainingRecord(
        forecaster=forecaster,
        mode=mode,
        prices=prices[["date", "ticker", "adj_close"]],
        features_example=latest_features(features).head(3),
        lake_uri=lake.uri,
        prices_table_uri=lake.prices.uri,
        lake_version=lake_version,
        metrics=metrics,
        metrics_source=metrics_source,
        model_card=render_model_card(
            model_name=settings.model_name,
            mode=mode,
            forecaster=forecaster,
            summary=summary,
            metrics=metrics,
            metrics_source=metrics_source,
            verdict=verdict,
            tickers=sorted(prices["ticker"].unique()),
            median=median,
        ),
        figures=figures,
        median=median,
        parent_version=(
            str(champion.version.version) if champion and mode == "incremental" else None
        ),
    )
    report("logging the run and registering the model")
    logged = log_candidate(
        record, experiment=settings.experiment_name, model_name=settings.model_name
    )
    updates = 0
    if mode == "incremental" and champion is not None:
        updates = updates_since_full(champion.version.tags) + 1
    tags = {"gate": verdict.summary(), UPDATES_TAG: str(updates)}
    if left_out:
        tags[LEFT_OUT_TAG] = left_out[:5000]  # MLflow's tag value limit
    tags |= gate_evidence_tags(metrics, settings.gate.horizons)
    for key, value in tags.items():
        registry.client.set_model_version_tag(settings.model_name, logged.version, key, value)
    if verdict.passed:
        registry.promote(logged.version, reason=f"gate passed ({mode} training)")
        message = f"version {logged.version} is the new champion (gate passed)"
    else:
        registry.set_challenger(logged.version)
        message = f"version {logged.version} registered as challenger, {verdict.summary()}"
    if left_out:
        message += f"; {left_out}"
    return TrainOutcome(mode, logged.version, verdict, verdict.passed, metrics, message)


def leave_out_renamed(prices: pd.DataFrame, events: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The prices without the old codes of renames, and those codes.

    A renamed code's history lives on under its new code (``finsimples.readjust``): trained
    twice, the same days would weigh double.
    """
    old_codes = sorted(set(renames(events)["ticker"]) & set(prices["ticker"]))
    if not old_codes:
        return prices, []
    return prices[~prices["ticker"].isin(old_codes)].reset_index(drop=True), old_codes


def leave_out_jumps(prices: pd.DataFrame, rule: JumpRule) -> tuple[pd.DataFrame, str]:
    """The prices without the tickers whose history jumps like an unrecorded split, and what
    was left out and why ("" when nothing was).

    A fake -50% day would teach the model a crash and blow up the ticker's volatility
    features; the ticker comes back once an event explains the jump (``finsimples ingest``).

    Raises:
        JobError: every ticker was left out.
    """
    jumps = unexplained_jumps(prices, rule)
    if not jumps:
        return prices, ""
    first = {j.ticker: j for j in reversed(jumps)}  # each ticker's first jump
    named = "; ".join(str(first[t]) for t in sorted(first))
    kept = prices[~prices["ticker"].isin(list(first))].reset_index(drop=True)
    why = f"{len(first)} ticker(s) left out of training, unexplained jumps: {named}"
    if kept.empty:
        raise JobError(f"nothing to train on: {why}; ingest the events that explain them")
    return kept, why


def _inherited(metrics: dict[str, float]) -> dict[str, float]:
    """The champion's walk-forward metrics, without its own comparisons with its champion."""
    own = ("_recent_", "_vs_champion", "champion_compared_on_folds", "_features_dm")
    return {name: value for name, value in metrics.items() if not any(o in name for o in own)}
