"""The train job: lake -> candidate -> MLflow run and version -> gate -> champion or challenger."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from finsimples.jobs.common import (
    JobError,
    load_version,
    open_registry,
    read_training_prices,
)
from finsimples.jobs.plan import UPDATES_TAG, Mode, updates_since_full
from finsimples.lake import Lake
from finsimples.settings import Settings
from registry.figures import backtest_figures
from registry.gate import GateVerdict, evaluate_gate
from registry.metrics import flatten_recent, flatten_summary
from registry.model_card import render_model_card
from registry.tracking import TrainingRecord, log_candidate
from training.evaluation import (
    default_methods,
    run_backtest,
    score_recent,
    summarize_backtest,
)
from training.features import build_features, latest_features
from training.forecaster import QuantileForecaster
from training.metrics import LeakageError

Step = Callable[[str], None]


@dataclass(frozen=True)
class TrainOutcome:
    """What a train job did."""

    mode: Mode
    version: str | None  # None: nothing new to learn from
    verdict: GateVerdict | None
    promoted: bool
    metrics: dict[str, float]
    message: str


def train(settings: Settings, mode: Mode = "full", *, step: Step | None = None) -> TrainOutcome:
    """Train a candidate, log and register it, and promote it if it passes the gate.

    Args:
        settings: the one settings object.
        mode: ``full`` refits from scratch and is gated on a fresh walk-forward backtest of the
            last ``gate_test_years``; ``incremental`` updates the champion with the lake's rows
            after its watermark (continued boosting, sliding recalibration).
        step: called with a short description before each long step (progress display).

    Raises:
        JobError: empty lake, or an incremental run without a champion.
        LeakageError: the backtest was too good to be true; nothing was registered.
    """
    report = step or (lambda _: None)
    lake = Lake.from_settings(settings)
    registry = open_registry(settings)
    manifest = lake.manifest()
    prices = read_training_prices(lake)
    current = registry.champion()
    champion = load_version(registry, current) if current is not None else None
    config = settings.training

    figures: dict[str, Figure] = {}
    report("building features")
    try:
        features = build_features(prices)
    except ValueError as exc:  # e.g. too little history: the core names what is missing
        raise JobError(f"cannot train on the lake at {lake.uri}: {exc}") from exc
    if mode == "incremental":
        if champion is None:
            raise JobError("no champion to update: run `finsimples train --full` first")
        watermark = pd.Timestamp(champion.version.tags.get("watermark", "1900-01-01"))
        if prices["date"].max() <= watermark:
            return TrainOutcome(
                mode, None, None, False, {}, f"nothing new since {watermark.date()}"
            )
        report("updating the champion incrementally")
        forecaster = copy.deepcopy(champion.forecaster).update(features, prices)
        report(f"scoring candidate and champion on the last {settings.gate_recent_days} days")
        metrics = _inherited(champion.metrics) | _recent_metrics(
            forecaster, champion.forecaster, features, prices, settings
        )
        metrics_source = (
            f"walk-forward inherited from v{champion.version.version} (same method, newer "
            f"data); h*_recent_*: candidate vs champion on the last {settings.gate_recent_days}"
            " days"
        )
        summary = None
    else:
        report(f"walk-forward backtest of the last {settings.gate_test_years} years")
        summary, figures = _gate_backtest(prices, features, settings)
        metrics = flatten_summary(summary, f"model_{config.calibration}")
        metrics_source = f"walk-forward, last {settings.gate_test_years} years"
        report("fitting on all data")
        try:
            forecaster = QuantileForecaster(config).fit(features, prices)
        except ValueError as exc:
            raise JobError(f"cannot train on the lake at {lake.uri}: {exc}") from exc

    verdict = evaluate_gate(metrics, champion.metrics if champion else None, settings.gate)
    record = TrainingRecord(
        forecaster=forecaster,
        mode=mode,
        prices=prices[["date", "ticker", "adj_close"]],
        features_example=latest_features(features).head(3),
        lake_uri=lake.uri,
        lake_version=manifest.version,
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
        ),
        figures=figures,
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
    for key, value in {"gate": verdict.summary(), UPDATES_TAG: str(updates)}.items():
        registry.client.set_model_version_tag(settings.model_name, logged.version, key, value)
    if verdict.passed:
        registry.promote(logged.version, reason=f"gate passed ({mode} training)")
        message = f"version {logged.version} is the new champion (gate passed)"
    else:
        registry.set_challenger(logged.version)
        message = f"version {logged.version} registered as challenger, {verdict.summary()}"
    return TrainOutcome(mode, logged.version, verdict, verdict.passed, metrics, message)


def _inherited(metrics: dict[str, float]) -> dict[str, float]:
    """The champion's walk-forward metrics, without its own recent-window scores."""
    return {name: value for name, value in metrics.items() if "_recent_" not in name}


def _recent_metrics(
    candidate: QuantileForecaster,
    champion: QuantileForecaster,
    features: pd.DataFrame,
    prices: pd.DataFrame,
    settings: Settings,
) -> dict[str, float]:
    """Candidate and champion scored on the same latest days (``h{h}_recent_*`` metrics)."""
    models = {"candidate": candidate, "champion": champion}
    try:
        scores = score_recent(
            models, features, prices, settings.training, settings.gate_recent_days
        )
    except ValueError as exc:
        raise JobError(f"cannot score the incremental candidate: {exc}") from exc
    return flatten_recent(scores, tuple(settings.training.eval_horizons))


def _gate_backtest(
    prices: pd.DataFrame, features: pd.DataFrame, settings: Settings
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """Walk-forward over the last years, the model and the baselines the gate compares."""
    config = settings.training
    last = prices["date"].max()
    start = pd.Timestamp(year=last.year - settings.gate_test_years + 1, month=1, day=1)
    methods = {k: v for k, v in default_methods().items() if k in ("model", "ewma_normal", "zero")}
    try:
        backtest = run_backtest(prices, config, start, methods=methods, features=features)
    except ValueError as exc:  # too little history before the gate's test years
        raise JobError(f"cannot run the gate backtest from {start.date()}: {exc}") from exc
    tripped = backtest.leakage.get(f"model_{config.calibration}", [])
    if tripped:
        raise LeakageError("leakage tripwire: " + "; ".join(tripped))
    summary = summarize_backtest(backtest, tuple(config.eval_horizons), "ewma_normal")
    return summary, backtest_figures(backtest, prices, config)
