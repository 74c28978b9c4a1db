"""The model card: a markdown page logged with each run and set as the version's description."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from registry.gate import GateVerdict, feature_figure, gate_evidence_tags
from training.forecaster import QuantileForecaster


def render_model_card(
    *,
    model_name: str,
    mode: str,
    forecaster: QuantileForecaster,
    summary: pd.DataFrame | None,
    metrics: Mapping[str, float],
    metrics_source: str,
    verdict: GateVerdict,
    tickers: Sequence[str],
    median: str = "model",
) -> str:
    """Markdown describing what the model is, what it was trained on and how well it did."""
    config = forecaster.config
    lo, hi = config.interval_levels
    lines = [
        f"# {model_name}",
        "",
        "Calibrated quantile forecasts of the log return over 1 to "
        f"{config.max_horizon} trading days: XGBoost quantile regression on a volatility-"
        f"normalized target, {config.calibration.upper()} conformal calibration. It sells "
        "ranges, not tips: no model beats the random walk on point accuracy here.",
        "",
        f"- training: {mode}; data up to {pd.Timestamp(forecaster.as_of_).date()}; "
        f"{len(tickers)} tickers ({', '.join(tickers[:12])}{', ...' if len(tickers) > 12 else ''})",
        f"- features: version {forecaster.feature_version_}, {len(forecaster.feature_columns_)} "
        "columns",
        f"- quantiles: {', '.join(f'{q:g}' for q in config.quantiles)}; headline interval "
        f"{lo:g}-{hi:g} ({config.interval_coverage:.0%})",
        f"- anchor horizons: {', '.join(map(str, config.anchor_horizons))} (others interpolated)",
        f"- median: {median} (one decision for the whole path, Diebold-Mariano on the "
        "absolute error against the zero-return forecast; the calibrated quantiles move with "
        "the median, and each path's ranges never narrow from one day to the next)",
        *_repairs(metrics),
        *_feature_test(metrics),
        *_comparisons(metrics),
        f"- gate: {verdict.summary()}",
        f"- metrics: {metrics_source}",
        "",
    ]
    if summary is not None and not summary.empty:
        lines += ["## Walk-forward results", "", _table(summary), ""]
    else:
        # DM figures are in the lines above, in words: identical losses have no statistic.
        gated = {
            k: v
            for k, v in sorted(metrics.items())
            if k.startswith(("h1_", "h5_")) and "_dm" not in k
        }
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in gated.items()]
        lines.append("")
    lines += [
        "## Limits",
        "",
        "- Daily and weekly returns are close to unpredictable: the median forecast is about the",
        "  zero-return forecast; the value is in calibrated ranges.",
        "- Coverage holds on average; single tickers and single years can fall below it.",
        "- Trading dates ahead are weekdays: exchange holidays are not known to the model.",
    ]
    return "\n".join(lines) + "\n"


def _table(summary: pd.DataFrame) -> str:
    columns = ["coverage", "worst_year", "worst_ticker", "pinball_gain", "mae_ratio", "width"]
    header = "| method | h | " + " | ".join(columns) + " |"
    rule = "|---|---|" + "---|" * len(columns)
    rows = [
        f"| {method} | {horizon} | "
        + " | ".join(f"{summary.loc[(method, horizon), c]:.4f}" for c in columns)
        + " |"
        for method, horizon in summary.index
    ]
    return "\n".join([header, rule, *rows])


def _tested_horizons(metrics: Mapping[str, float], family: str) -> tuple[int, ...]:
    """Horizons with a ``h{h}_{family}_p`` or ``..._identical`` metric, in order."""
    found = set()
    for name in metrics:
        for suffix in ("_p", "_identical"):
            if name.startswith("h") and name.endswith(f"_{family}{suffix}"):
                head = name[1 : -len(f"_{family}{suffix}")]
                if head.isdigit():
                    found.add(int(head))
    return tuple(sorted(found))


def _repairs(metrics: Mapping[str, float]) -> list[str]:
    """How often the walk-forward's paths needed the repair (``h{h}_repaired_share``)."""
    shares = {
        int(name[1 : -len("_repaired_share")]): value
        for name, value in metrics.items()
        if name.endswith("_repaired_share") and name[1 : -len("_repaired_share")].isdigit()
    }
    if not shares:
        return []
    figures = ", ".join(f"h={h} {shares[h]:.1%}" for h in sorted(shares))
    return [
        "- path repair (quantiles sorted, ranges widened so they never narrow): changed "
        f"{figures} of the walk-forward's forecasts"
    ]


def _feature_test(metrics: Mapping[str, float]) -> list[str]:
    """The feature test's line (``training.permutation``), when the candidate was tested."""
    tested = _tested_horizons(metrics, "features_dm")
    if not tested:
        return []
    figures = ", ".join(f"h={h} {feature_figure(metrics, f'h{h}_features_dm')}" for h in tested)
    return [f"- feature test (pinball with the non-volatility features permuted): {figures}"]


def _comparisons(metrics: Mapping[str, float]) -> list[str]:
    """The Diebold-Mariano lines against the champion and EWMA-normal, in words."""
    horizons = tuple(
        sorted(
            set(_tested_horizons(metrics, "dm_pinball_vs_champion"))
            | set(_tested_horizons(metrics, "dm_pinball_vs_ewma_normal"))
        )
    )
    tags = gate_evidence_tags(metrics, horizons) if horizons else {}
    labels = {"gate.dm_vs_champion": "champion", "gate.dm_vs_ewma_normal": "EWMA-normal"}
    return [
        f"- vs {label} (DM, same rows): {tags[key]}" for key, label in labels.items() if key in tags
    ]
