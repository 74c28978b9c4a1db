"""Flat metric names of a training run, shared by the run log, the gate and `models list`.

The model's metrics at horizon h are ``h{h}_<name>``; a baseline's are ``h{h}_<name>_<method>``
(``h1_pinball_ewma_normal``). Names follow ``training.evaluation.summarize_backtest``'s columns,
with ``worst_year``/``worst_ticker`` spelled ``coverage_worst_year``/``coverage_worst_ticker``.
"""

from __future__ import annotations

import math

import pandas as pd

BASELINES = ("ewma_normal", "zero", "drift")
_RENAMES = {"worst_year": "coverage_worst_year", "worst_ticker": "coverage_worst_ticker"}


def flatten_summary(summary: pd.DataFrame, model_method: str) -> dict[str, float]:
    """Flat metrics from a backtest summary indexed by (method, horizon).

    Args:
        summary: ``summarize_backtest`` output.
        model_method: the row of the model variant being registered (e.g. ``model_aci``).
    """
    metrics: dict[str, float] = {}
    for (method, horizon), row in summary.iterrows():  # type: ignore[misc]
        if method != model_method and method not in BASELINES:
            continue
        suffix = "" if method == model_method else f"_{method}"
        for column, value in row.items():
            if value is None or not math.isfinite(float(value)):
                continue
            name = _RENAMES.get(str(column), str(column))
            metrics[f"h{horizon}_{name}{suffix}"] = float(value)
    return metrics


def flatten_recent(
    scores: pd.DataFrame, horizons: tuple[int, ...], candidate: str = "candidate"
) -> dict[str, float]:
    """Flat ``h{h}_recent_<name>[_<method>]`` metrics from ``training.evaluation.score_recent``.

    Args:
        scores: Scores indexed by (method, horizon).
        horizons: Horizons to keep.
        candidate: The method whose metrics get no suffix; the others are suffixed with their
            name (``h1_recent_pinball_champion``).
    """
    metrics: dict[str, float] = {}
    for (method, horizon), row in scores.iterrows():  # type: ignore[misc]
        if horizon not in horizons:
            continue
        suffix = "" if method == candidate else f"_{method}"
        for column in ("pinball", "coverage", "width", "n"):
            value = float(row[column])
            if math.isfinite(value):
                metrics[f"h{horizon}_recent_{column}{suffix}"] = value
    return metrics


def baseline_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The baselines' pinball and coverage: tagged on each version for a quick comparison."""
    return {
        name: value
        for name, value in metrics.items()
        if name.endswith(tuple(f"_{b}" for b in BASELINES))
        and ("_pinball_" in name or "_coverage_" in name)
    }
