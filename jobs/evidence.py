"""The evidence a train job gates on: a walk-forward, the median policy, same-row comparisons.

Every loss comparison is made on identical rows and judged with a Diebold-Mariano test
(``training.dm_test``): the model against the EWMA-normal baseline on the walk-forward's rows;
the candidate against the champion either on the latest days with known outcomes (a refit of
the same configuration, or an incremental update: the boosters of neither model trained on those
labels) or, when the configuration changed, walked forward over the same folds; and the
candidate against itself with its features permuted (``training.permutation``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from finsimples.settings import Settings
from jobs.common import JobError
from registry.figures import backtest_figures
from registry.metrics import flatten_recent, flatten_summary
from training.boosting import BoosterFit, fit_in_process
from training.comparison import rescore
from training.config import TrainingConfig
from training.dm_test import compare_forecasts, flatten_dm
from training.evaluation import (
    default_methods,
    recent_forecasts,
    run_backtest,
    summarize_backtest,
)
from training.features import FEATURE_VERSION
from training.forecaster import QuantileForecaster
from training.gate_plan import GatePlan, plan_gate
from training.median import MODEL, decide_median_source, recentre
from training.metrics import LeakageError, score_forecasts
from training.paths import repair_frame, repaired_shares
from training.permutation import feature_permutation_test, flatten_feature_test

CHAMPION_METHOD = "champion"


@dataclass(frozen=True)
class WalkForward:
    """A full candidate's walk-forward evidence."""

    summary: pd.DataFrame
    metrics: dict[str, float]
    median_sources: dict[int, str]
    figures: dict[str, Figure]
    plan: GatePlan


def same_config(config: TrainingConfig, champion: QuantileForecaster) -> bool:
    """Whether a candidate with ``config`` is a refit of the champion's configuration."""
    return champion.config == config and champion.feature_version_ == FEATURE_VERSION


def walk_forward(
    prices: pd.DataFrame,
    features: pd.DataFrame,
    settings: Settings,
    champion: QuantileForecaster | None = None,
    plan: GatePlan | None = None,
    engine: BoosterFit = fit_in_process,
) -> WalkForward:
    """Walk-forward over the last ``gate_test_years``: metrics, median policy, DM evidence.

    Args:
        prices: The lake's prices.
        features: ``build_features(prices)``.
        settings: Gives the training config, the gate policy and the test years.
        champion: A champion with another configuration: walked forward on the same folds
            and compared with the candidate there (``h{h}_dm_*_vs_champion``).
        plan: The walk-forward scaled to the lake's history (``training.gate_plan``); default:
            planned here from the features.
        engine: Runs the booster fits of every fold (``Settings.training_engine``).

    Raises:
        JobError: too little history before the test years.
        LeakageError: the candidate's backtest tripped the leakage tripwire.
    """
    if plan is None:
        dates = features.index.get_level_values("date")
        plan = plan_gate(dates, settings.training, settings.gate_test_years)
    config, policy, start = plan.config, settings.gate, plan.start
    methods = {k: v for k, v in default_methods().items() if k in ("model", "ewma_normal", "zero")}
    if champion is not None:
        methods[CHAMPION_METHOD] = lambda _: QuantileForecaster(champion.config)
    try:
        backtest = run_backtest(
            prices, config, start, plan.end, methods=methods, features=features, engine=engine
        )
    except ValueError as exc:  # too little history before the gate's test years
        raise JobError(
            f"too little history for the gate: a walk-forward from {start.date()} "
            f"(gate_test_years={plan.test_years}, calibration_days={config.calibration_days}) "
            f"needs earlier data: {exc}"
        ) from exc
    name = f"model_{config.calibration}"
    tripped = backtest.leakage.get(name, [])
    if tripped:
        raise LeakageError("leakage tripwire: " + "; ".join(tripped))
    source, p_value = decide_median_source(
        backtest.forecasts[name],
        backtest.outcomes,
        list(range(1, config.max_horizon + 1)),
        policy.median_significance,
    )
    sources = dict.fromkeys(range(1, config.max_horizon + 1), source)
    recentred = recentre(backtest.forecasts[name], sources)
    served = repair_frame(recentred)
    backtest = rescore(backtest, name, served, config)
    horizons = tuple(config.eval_horizons)
    summary = summarize_backtest(backtest, horizons, "ewma_normal")
    metrics = flatten_summary(summary, name)
    shares = repaired_shares(recentred, served)  # how often the served paths needed the repair
    metrics |= {f"h{h}_repaired_share": float(shares[h]) for h in horizons}
    metrics["median_model"] = float(source == MODEL)  # one decision for the whole path
    if math.isfinite(p_value):  # none when the model's median is zero's: nothing was tested
        metrics["median_vs_zero_p"] = p_value
    ewma = compare_forecasts(
        served,
        backtest.forecasts["ewma_normal"],
        backtest.outcomes,
        horizons,
        tolerance=policy.practical_tolerance,
        losses=("pinball",),
    )
    metrics |= flatten_dm(ewma, "ewma_normal")
    if champion is not None:
        theirs = repair_frame(
            recentre(
                backtest.forecasts[f"{CHAMPION_METHOD}_{champion.config.calibration}"],
                getattr(champion, "median_sources_", {}),
            )
        )
        metrics |= _versus_champion(served, theirs, backtest.outcomes, horizons, settings)
        metrics["champion_compared_on_folds"] = 1.0
    figures = backtest_figures(backtest, prices, config)
    summary = summary.drop(index=_champion_rows(summary))
    return WalkForward(summary, metrics, sources, figures, plan)


def versus_champion_recent(
    candidate: QuantileForecaster,
    champion: QuantileForecaster,
    features: pd.DataFrame,
    prices: pd.DataFrame,
    settings: Settings,
) -> dict[str, float]:
    """Candidate and champion on the same latest days: scores (``h{h}_recent_*``) and DM tests.

    Raises:
        JobError: fewer feature dates than ``gate_recent_days``.
    """
    config = settings.training
    models = {"candidate": candidate, "champion": champion}
    try:
        frames, outcomes = recent_forecasts(
            models, features, prices, config, settings.gate_recent_days
        )
    except ValueError as exc:
        raise JobError(f"cannot score the candidate against the champion: {exc}") from exc
    scores = pd.concat(
        [
            score_forecasts(frame, outcomes, config).assign(method=name).reset_index()
            for name, frame in frames.items()
        ],
        ignore_index=True,
    ).set_index(["method", "horizon"])
    horizons = tuple(config.eval_horizons)
    metrics = flatten_recent(scores, horizons)
    metrics |= _versus_champion(
        frames["candidate"], frames["champion"], outcomes, horizons, settings
    )
    metrics["champion_compared_on_folds"] = 0.0
    return metrics


def feature_evidence(
    forecaster: QuantileForecaster,
    features: pd.DataFrame,
    prices: pd.DataFrame,
    settings: Settings,
) -> dict[str, float]:
    """The feature test (``h{h}_features_dm*``) on the candidate's calibration window.

    The window's labels never reached the candidate's boosters, and it is the longest such
    stretch, so the test has the most rows it can have.

    Raises:
        JobError: the lake holds fewer feature dates than the calibration window.
    """
    policy = settings.gate
    config = forecaster.config  # its own window: a short lake's model calibrates on one year
    try:
        results = feature_permutation_test(
            forecaster,
            features,
            prices,
            config,
            config.calibration_days,
            policy.horizons,
            permutations=policy.feature_permutations,
        )
    except ValueError as exc:
        raise JobError(f"cannot test the candidate's features: {exc}") from exc
    return flatten_feature_test(results)


def _versus_champion(
    candidate: pd.DataFrame,
    champion: pd.DataFrame,
    outcomes: pd.Series,
    horizons: tuple[int, ...],
    settings: Settings,
) -> dict[str, float]:
    results = compare_forecasts(
        candidate, champion, outcomes, horizons, tolerance=settings.gate.practical_tolerance
    )
    return flatten_dm(results, "champion")


def _champion_rows(summary: pd.DataFrame) -> list:
    methods = summary.index.get_level_values("method")
    return [i for i, m in zip(summary.index, methods, strict=True) if m.startswith(CHAMPION_METHOD)]
