"""Drift check of the serving champion: features, predictions and realized coverage.

Two windows of trading days are compared: *current*, the most recent ``current_days`` dates with
features, and *reference*, the ``reference_days`` dates just before it. Three checks:

1. **Features** (Evidently ``DataDriftPreset``): the share of model inputs whose distribution
   moved; dataset drift when that share reaches ``drift_share``.
2. **Predictions** (Evidently ``ValueDrift``): the median and the headline interval's width per
   checked horizon. Reported, not flagged: a wider interval after a vol shock is the model
   doing its job.
3. **Realized coverage and residuals**: forecasts are replayed day by day with
   :meth:`~training.forecaster.QuantileForecaster.predict_online` (each uses only outcomes
   known at its date) and scored, as training scores them, on the outcomes the lake holds.
   Coverage alert when the current window's coverage is off nominal by more than
   ``coverage_tolerance``.

Caveats: the champion was probably fitted on the reference window, so reference coverage is
partly in-sample (its calibration scores came from those rows); the current window is
out-of-sample only after the champion's watermark (``summary["model"]["as_of"]``, and a note
says so). Rows older than the champion's calibration window have no adaptive state to replay:
they get the plain conformal (CQR) levels.

Evidently is imported inside :func:`check_drift` (it takes seconds to import).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from config.monitoring import DriftConfig
from training.features import build_features
from training.metrics import score_forecasts
from training.targets import build_targets

if TYPE_CHECKING:
    from training.forecaster import QuantileForecaster

__all__ = ["CoverageCheck", "DriftConfig", "DriftResult", "WindowScore", "check_drift"]


@dataclass(frozen=True)
class WindowScore:
    """The headline interval scored on one window's realized outcomes (``None`` when n == 0)."""

    n: int
    coverage: float | None = None
    width: float | None = None
    residual: float | None = None  # mean realized - median: the point forecast's bias
    pinball: float | None = None  # mean over the quantile grid; scales with volatility


@dataclass(frozen=True)
class CoverageCheck:
    """Realized coverage of one horizon's headline interval in both windows."""

    horizon: int
    nominal: float
    reference: WindowScore
    current: WindowScore
    judged: bool  # the current window had at least ``min_outcomes`` outcomes
    alert: bool


@dataclass(frozen=True)
class DriftResult:
    """What :func:`check_drift` found, Evidently's HTML report and a JSON-able summary."""

    reference: tuple[date, date]
    current: tuple[date, date]
    feature_scores: dict[str, float]  # Evidently drift score of each model input
    drifted_columns: tuple[str, ...]
    drifted_share: float
    dataset_drift: bool
    prediction_scores: dict[str, float]  # "h1_median", "h1_width", ... -> drift score
    drifted_predictions: tuple[str, ...]
    coverage: dict[int, CoverageCheck]
    drift_detected: bool  # dataset drift or any coverage alert
    reasons: tuple[str, ...]  # one line per cause of the flag
    notes: tuple[str, ...]  # what was not judged, what is in-sample
    html: str
    summary: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics for MLflow and Prometheus (unknown values left out)."""
        out = {
            "drift_detected": float(self.drift_detected),
            "dataset_drift": float(self.dataset_drift),
            "drifted_share": self.drifted_share,
            "drifted_count": float(len(self.drifted_columns)),
        }
        out.update({f"prediction_drift_{k}": v for k, v in self.prediction_scores.items()})
        for h, check in self.coverage.items():
            out[f"h{h}_coverage_alert"] = float(check.alert)
            for window, score in (("reference", check.reference), ("current", check.current)):
                out[f"h{h}_n_{window}"] = float(score.n)
                for name in ("coverage", "width", "residual", "pinball"):
                    value = getattr(score, name)
                    if value is not None:
                        out[f"h{h}_{name}_{window}"] = value
        return out


def _windows(features: pd.DataFrame, config: DriftConfig) -> tuple[pd.DatetimeIndex, ...]:
    """Reference and current trading dates: the most recent ones, back to back."""
    dates = pd.DatetimeIndex(features.index.get_level_values("date").unique()).sort_values()
    needed = config.reference_days + config.current_days
    if len(dates) < needed:
        raise ValueError(
            f"too few trading days with features: the drift windows need reference_days="
            f"{config.reference_days} + current_days={config.current_days} = {needed}, the "
            f"prices give {len(dates)} (from {dates[0].date()} to {dates[-1].date()})"
        )
    return dates[-needed : -config.current_days], dates[-config.current_days :]


def _forecast(
    forecaster: QuantileForecaster,
    features: pd.DataFrame,
    prices: pd.DataFrame,
    start: pd.Timestamp,
    horizons: tuple[int, ...],
) -> pd.DataFrame:
    """Quantile frame from ``start`` on, as the model served day by day would have issued it."""
    cal_start = forecaster.calibration_start_
    if cal_start is None:
        raise ValueError("the forecaster is not fitted: call fit first")
    dates = features.index.get_level_values("date")
    parts = []
    if start < cal_start:  # no adaptive state before the calibration window
        early = features.loc[(dates >= start) & (dates < cal_start)]
        parts.append(forecaster.predict(early, adaptive=False))
    if dates.max() >= cal_start:
        parts.append(forecaster.predict_online(features, prices, start=max(start, cal_start)))
    out = pd.concat(parts).sort_index()
    return out.loc[out.index.get_level_values("horizon").isin(horizons)]


def _prediction_columns(
    forecasts: pd.DataFrame, horizons: tuple[int, ...], levels: tuple[float, float]
) -> pd.DataFrame:
    """Per (date, ticker): the median and the headline interval's width of each horizon."""
    columns = {}
    for h in horizons:
        rows = forecasts.xs(h, level="horizon")
        columns[f"h{h}_median"] = rows[0.5]
        columns[f"h{h}_width"] = rows[levels[1]] - rows[levels[0]]
    return pd.DataFrame(columns)


def _score(
    forecasts: pd.DataFrame, outcomes: pd.Series, forecaster: QuantileForecaster
) -> dict[int, WindowScore]:
    """WindowScore per horizon, with training's own scoring of the headline interval."""
    y = outcomes.reindex(forecasts.index)
    if y.isna().all():
        return {}
    table = score_forecasts(forecasts, outcomes, forecaster.config)
    table["residual"] = (y - forecasts[0.5]).groupby(level="horizon").mean()
    return {
        h: WindowScore(
            n=int(row["n"]),
            coverage=float(row["coverage"]),
            width=float(row["width"]),
            residual=float(row["residual"]),
            pinball=float(row["pinball"]),
        )
        for h, row in zip(table.index.astype(int).tolist(), table.to_dict("records"), strict=True)
    }


def _coverage(
    forecasts: pd.DataFrame,
    prices: pd.DataFrame,
    windows: tuple[pd.DatetimeIndex, ...],
    forecaster: QuantileForecaster,
    config: DriftConfig,
) -> dict[int, CoverageCheck]:
    """Score both windows on the realized outcomes; alert on the current one's coverage."""
    targets = build_targets(prices, max(config.horizons))[list(config.horizons)]
    long = targets.melt(ignore_index=False, var_name="horizon", value_name="y")
    outcomes = long.set_index("horizon", append=True)["y"]
    dates = forecasts.index.get_level_values("date")
    ref, cur = (_score(forecasts.loc[dates.isin(w)], outcomes, forecaster) for w in windows)
    nominal, checks = forecaster.config.interval_coverage, {}
    for h in config.horizons:
        now = cur.get(h, WindowScore(0))
        judged = now.n >= config.min_outcomes  # min_outcomes >= 1, so coverage is known
        alert = (
            judged
            and now.coverage is not None
            and abs(now.coverage - nominal) > config.coverage_tolerance
        )
        checks[h] = CoverageCheck(h, nominal, ref.get(h, WindowScore(0)), now, judged, alert)
    return checks


def _evidently(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], config: DriftConfig
) -> tuple[dict[str, Any], str]:
    """Run the Evidently report: its JSON-able ``dict()`` and its standalone HTML."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    others = [c for c in current.columns if c not in features]
    report = Report(
        [
            DataDriftPreset(
                columns=features,
                method=config.method,
                threshold=config.threshold,
                drift_share=config.drift_share,
            ),
            *(
                ValueDrift(column=c, method=config.method, threshold=config.threshold)
                for c in others
            ),
        ],
        include_tests=True,  # a pass/fail per column, whichever way the method's score points
    )
    definition = DataDefinition(numerical_columns=list(current.columns))
    snapshot = report.run(
        Dataset.from_pandas(current.reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(reference.reset_index(drop=True), data_definition=definition),
    )
    return json.loads(snapshot.json()), snapshot.get_html_str(as_iframe=False)


def _column_results(snapshot: dict[str, Any]) -> tuple[dict[str, float], set[str]]:
    """Each column's ValueDrift score, and the columns whose drift test failed."""
    scores = {
        m["config"]["column"]: float(m["value"])
        for m in snapshot["metrics"]
        if m["config"]["type"].endswith(":ValueDrift")
    }
    drifted = {
        t["metric_config"]["params"]["column"]
        for t in snapshot["tests"]
        if t["metric_config"]["params"]["type"].endswith(":ValueDrift") and t["status"] == "FAIL"
    }
    return scores, drifted


def _reasons(
    scores: dict[str, float],
    drifted: tuple[str, ...],
    dataset_drift: bool,
    coverage: dict[int, CoverageCheck],
    config: DriftConfig,
) -> tuple[str, ...]:
    """One line per cause of the drift flag."""
    reasons = []
    if dataset_drift:
        top = sorted(drifted, key=lambda c: -scores[c])[:5]
        reasons.append(
            f"feature drift: {len(drifted)} of {len(scores)} features moved (share >= "
            f"{config.drift_share:g}); most: " + ", ".join(f"{c} {scores[c]:.2f}" for c in top)
        )
    for h, check in coverage.items():
        if check.alert:
            ref = check.reference.coverage
            reasons.append(
                f"h{h} coverage {check.current.coverage:.3f} over {check.current.n} outcomes, "
                f"outside {check.nominal:g} +/- {config.coverage_tolerance:g} (reference "
                + ("n/a" if ref is None else f"{ref:.3f}")
                + ")"
            )
    return tuple(reasons)


def _notes(
    coverage: dict[int, CoverageCheck],
    forecaster: QuantileForecaster,
    current_start: pd.Timestamp,
    config: DriftConfig,
) -> tuple[str, ...]:
    """What was not judged, and what is in-sample."""
    notes = [
        f"h{h} coverage not judged: {check.current.n} realized outcomes in the current window,"
        f" fewer than min_outcomes={config.min_outcomes}"
        for h, check in coverage.items()
        if not check.judged
    ]
    if forecaster.as_of_ is not None and forecaster.as_of_ >= current_start:
        notes.append(
            f"the champion saw data through {forecaster.as_of_.date()}: current-window "
            "forecasts up to that date are in-sample"
        )
    return tuple(notes)


def check_drift(
    prices: pd.DataFrame, forecaster: QuantileForecaster, config: DriftConfig
) -> DriftResult:
    """Compare the most recent trading days with the ones before: features, forecasts, coverage.

    Args:
        prices: The lake's price panel (``date``, ``ticker``, ``adj_close``; other columns are
            ignored) covering both windows plus the feature warm-up.
        forecaster: The fitted serving champion.
        config: Windows and thresholds.

    Returns:
        The :class:`DriftResult`; ``drift_detected`` is dataset drift or a coverage alert.

    Raises:
        ValueError: If the prices are invalid or too short for the two windows, the forecaster
            is not fitted, or a checked horizon is not one the forecaster predicts.
    """
    horizons = config.horizons
    if not horizons or any(h not in forecaster.horizons for h in horizons):
        raise ValueError(
            f"drift horizons {list(horizons)} must be a non-empty subset of the forecaster's "
            f"horizons 1..{forecaster.config.max_horizon}"
        )
    features = build_features(prices)
    windows = _windows(features, config)
    forecasts = _forecast(forecaster, features, prices, windows[0][0], horizons)
    columns = list(forecaster.feature_columns_)
    predictions = _prediction_columns(forecasts, horizons, forecaster.config.interval_levels)
    table = features[columns].join(predictions)
    dates = table.index.get_level_values("date")
    reference, current = (table.loc[dates.isin(w)] for w in windows)
    snapshot, html = _evidently(reference, current, columns, config)
    scores, failed = _column_results(snapshot)

    feature_scores = {c: scores[c] for c in columns}
    drifted = tuple(c for c in columns if c in failed)
    coverage = _coverage(forecasts, prices, windows, forecaster, config)
    share = len(drifted) / len(columns)
    reasons = _reasons(feature_scores, drifted, share >= config.drift_share, coverage, config)
    span = [(w[0].date(), w[-1].date()) for w in windows]
    result = DriftResult(
        reference=span[0],
        current=span[1],
        feature_scores=feature_scores,
        drifted_columns=drifted,
        drifted_share=share,
        dataset_drift=share >= config.drift_share,
        prediction_scores={c: scores[c] for c in predictions.columns},
        drifted_predictions=tuple(c for c in predictions.columns if c in failed),
        coverage=coverage,
        drift_detected=bool(reasons),
        reasons=reasons,
        notes=_notes(coverage, forecaster, windows[1][0], config),
        html=html,
    )
    return replace(result, summary=_summary(result, forecaster, config, snapshot))


def _summary(
    result: DriftResult,
    forecaster: QuantileForecaster,
    config: DriftConfig,
    snapshot: dict[str, Any],
) -> dict[str, Any]:
    """Every field but the HTML, the settings and Evidently's own results, as JSON types."""
    fields = {k: v for k, v in asdict(result).items() if k not in ("html", "summary")}
    summary = {
        **fields,
        "model": {
            "calibration_start": forecaster.calibration_start_,
            "as_of": forecaster.as_of_,
            "calibration": forecaster.config.calibration,
            "interval_coverage": forecaster.config.interval_coverage,
        },
        "config": config.model_dump(),
        "metrics": result.metrics(),
        "evidently": snapshot,
    }
    return json.loads(json.dumps(summary, default=str))
