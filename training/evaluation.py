"""Walk-forward backtest of the forecaster and the baselines.

Expanding window with a full refit every ``refit_months``. For a test block starting at
``s``, every method is fitted on features and prices dated before ``s`` only, so each
training label ends before ``s`` (a purge of at least h trading days at horizon h); the
forecaster's calibration window is the end of that training data, never the test block.
With ``update_months``, the forecaster is also updated incrementally (``QuantileForecaster.update``,
what ``train --incremental`` does) at the start of every ``update_months`` inside a block, on
the data known then. Nothing is tuned on the test blocks.

:func:`score_recent` scores fitted forecasters side by side on the latest dates whose outcomes
are known: the check an incremental candidate gets against its champion.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from training.baselines import EwmaNormalBaseline, HistoricalBaseline
from training.boosting import BoosterFit, fit_in_process
from training.config import TrainingConfig
from training.features import SIGMA_COLUMN, build_features
from training.forecaster import QuantileForecaster
from training.metrics import check_leakage, coverage_breakdown, score_forecasts
from training.prices import validate_prices
from training.targets import build_targets

Factory = Callable[[TrainingConfig], object]
SUMMARY_COLUMNS: tuple[str, ...] = (
    "coverage", "worst_year", "worst_ticker", "width", "pinball", "pinball_gain",
    "mae_ratio", "r2_oos", "directional_accuracy", "up_rate", "rank_ic",
)  # fmt: skip


def default_methods() -> dict[str, Factory]:
    """The forecaster (scored with CQR and with ACI) and the three baselines."""
    return {
        "model": QuantileForecaster,
        "ewma_normal": EwmaNormalBaseline,
        "zero": HistoricalBaseline,
        "drift": lambda config: HistoricalBaseline(config, drift=True),
    }


@dataclass
class Backtest:
    """Everything a walk-forward run produced (plain frames, ready to log or plot).

    Attributes:
        forecasts: Method name -> quantile frame of every test forecast (all horizons).
        outcomes: Realized log return per (date, ticker, horizon) of the test forecasts.
        sigma: Ex-ante EWMA daily vol per (date, ticker) of the test origins.
        scores: Long frame: method, horizon and :data:`training.metrics.SCORE_COLUMNS`.
        coverage: Long frame: method, horizon, group, key, coverage, n.
        blocks: One row per refit: test_start, test_end, calibration_start, fit_seconds,
            updates (incremental updates inside the block).
        leakage: Method name -> tripwire messages (empty lists when nothing tripped).
    """

    forecasts: dict[str, pd.DataFrame]
    outcomes: pd.Series
    sigma: pd.Series
    scores: pd.DataFrame
    coverage: pd.DataFrame
    blocks: pd.DataFrame
    leakage: dict[str, list[str]] = field(default_factory=dict)


def make_blocks(
    dates: pd.DatetimeIndex, test_start: pd.Timestamp, test_end: pd.Timestamp, months: int
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Consecutive ``[start, end)`` test blocks of ``months`` calendar months.

    Args:
        dates: Available trading dates.
        test_start: First test date (inclusive).
        test_end: End of testing (exclusive).
        months: Block length.

    Returns:
        Blocks that contain at least one trading date.
    """
    blocks = []
    start = pd.Timestamp(test_start)
    while start < test_end:
        end = min(start + pd.DateOffset(months=months), pd.Timestamp(test_end))
        if ((dates >= start) & (dates < end)).any():
            blocks.append((start, end))
        start = end
    return blocks


def _online_forecasts(model, name, features, prices, start) -> dict[str, pd.DataFrame]:
    """Test forecasts of one fitted method; the forecaster is scored both ways."""
    if isinstance(model, QuantileForecaster):
        return {
            f"{name}_cqr": model.predict_online(features, prices, start, adaptive=False),
            f"{name}_aci": model.predict_online(features, prices, start, adaptive=True),
        }
    return {name: model.predict_online(features, prices, start)}


def _update_steps(
    model: object,
    dates: pd.DatetimeIndex,
    start: pd.Timestamp,
    end: pd.Timestamp,
    config: TrainingConfig,
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The ``[start, end)`` spans a block's model serves between incremental updates."""
    if config.update_months is None or not isinstance(model, QuantileForecaster):
        return [(start, end)]
    return make_blocks(dates, start, end, config.update_months)


def run_backtest(
    prices: pd.DataFrame,
    config: TrainingConfig,
    test_start: str | pd.Timestamp,
    test_end: str | pd.Timestamp | None = None,
    methods: Mapping[str, Factory] | None = None,
    features: pd.DataFrame | None = None,
    engine: BoosterFit = fit_in_process,
) -> Backtest:
    """Walk forward through ``[test_start, test_end)`` and score every method.

    Args:
        prices: Long daily price panel (``date``, ``ticker``, ``adj_close``).
        config: Training settings (refit and update periods, horizons, interval, tripwire).
        test_start: First test date.
        test_end: End of testing (exclusive); defaults to after the last price.
        methods: Name -> factory taking the config; defaults to :func:`default_methods`.
        features: Precomputed ``build_features(prices)`` (e.g. with an extra column to
            test the tripwire); computed here when omitted.
        engine: Runs the forecasters' booster fits (:mod:`training.boosting`).

    Returns:
        A :class:`Backtest`.
    """
    prices = validate_prices(prices)
    features = build_features(prices) if features is None else features.sort_index()
    methods = default_methods() if methods is None else methods
    start = pd.Timestamp(test_start)
    end = (
        prices["date"].max() + pd.Timedelta(days=1) if test_end is None else pd.Timestamp(test_end)
    )
    feature_dates = features.index.get_level_values("date")
    blocks = make_blocks(feature_dates.unique(), start, end, config.refit_months)
    if not blocks:
        raise ValueError(f"no feature dates in the test span [{start.date()}, {end.date()})")

    pieces: dict[str, list[pd.DataFrame]] = {}
    block_rows = []
    for block_start, block_end in blocks:
        train_f = features.loc[feature_dates < block_start]
        train_p = prices.loc[prices["date"] < block_start]
        row: dict[str, object] = {"test_start": block_start, "test_end": block_end}
        for name, factory in methods.items():
            began = time.perf_counter()
            model = factory(config)
            if isinstance(model, QuantileForecaster):
                model.fit(train_f, train_p, engine=engine)
            else:
                model = model.fit(train_f, train_p)  # type: ignore[attr-defined]
            row[f"{name}_fit_seconds"] = time.perf_counter() - began
            steps = _update_steps(model, feature_dates.unique(), block_start, block_end, config)
            if isinstance(model, QuantileForecaster):
                row["calibration_start"] = model.calibration_start_
                row["updates"] = len(steps) - 1
            for i, (step_start, step_end) in enumerate(steps):
                if i > 0:  # an incremental update on what is known at the step's start
                    assert isinstance(model, QuantileForecaster)  # noqa: S101 - type narrowing: _update_steps
                    model.update(
                        features.loc[feature_dates < step_start],
                        prices.loc[prices["date"] < step_start],
                        engine=engine,
                    )
                # Outcomes are revealed to ACI only on their own dates; nothing past the step.
                seen_f = features.loc[feature_dates < step_end]
                seen_p = prices.loc[prices["date"] < step_end]
                for key, frame in _online_forecasts(
                    model, name, seen_f, seen_p, step_start
                ).items():
                    pieces.setdefault(key, []).append(frame)
        block_rows.append(row)

    forecasts = {name: pd.concat(parts).sort_index() for name, parts in pieces.items()}
    targets = build_targets(prices, config.max_horizon)
    outcomes = targets.stack().rename("outcome")
    outcomes.index = outcomes.index.set_names(["date", "ticker", "horizon"])
    any_frame = next(iter(forecasts.values()))
    outcomes = outcomes.reindex(any_frame.index)
    sigma = features[SIGMA_COLUMN].reindex(any_frame.index.droplevel("horizon").unique())

    scores, coverage, leakage = [], [], {}
    for name, frame in forecasts.items():
        s = score_forecasts(frame, outcomes, config)
        leakage[name] = check_leakage(s, config) if config.tripwire_horizon in s.index else []
        scores.append(s.assign(method=name).reset_index())
        c = coverage_breakdown(frame, outcomes, sigma, config)
        coverage.append(c.assign(method=name))
    return Backtest(
        forecasts=forecasts,
        outcomes=outcomes,
        sigma=sigma,
        scores=pd.concat(scores, ignore_index=True).set_index(["method", "horizon"]),
        coverage=pd.concat(coverage, ignore_index=True),
        blocks=pd.DataFrame(block_rows),
        leakage=leakage,
    )


def summarize_backtest(
    backtest: Backtest, horizons: tuple[int, ...], reference: str
) -> pd.DataFrame:
    """The headline table: coverage pooled / worst year / worst ticker, pinball vs a reference.

    Args:
        backtest: Output of :func:`run_backtest`.
        horizons: Horizons to report.
        reference: Method whose pinball loss the others are compared with (e.g.
            ``"ewma_normal"``); ``pinball_gain`` > 0 means better than it.

    Returns:
        Frame indexed by (method, horizon) with coverage, worst_year, worst_ticker, width,
        pinball, pinball_gain, mae_ratio, r2_oos, directional_accuracy, up_rate, rank_ic.
    """
    cov = backtest.coverage
    worst = cov[cov.group.isin(["year", "ticker"])].groupby(["method", "horizon", "group"])
    worst = (
        worst["coverage"]
        .min()
        .unstack("group")
        .rename(columns={"year": "worst_year", "ticker": "worst_ticker"})
    )
    table = backtest.scores.join(worst)
    ref = table.xs(reference, level="method")["pinball"]
    table["pinball_gain"] = (
        1 - table["pinball"] / ref.reindex(table.index.get_level_values("horizon")).to_numpy()
    )
    table = table[table.index.get_level_values("horizon").isin(horizons)]
    return table.loc[:, list(SUMMARY_COLUMNS)]


def recent_forecasts(
    models: Mapping[str, QuantileForecaster],
    features: pd.DataFrame,
    prices: pd.DataFrame,
    config: TrainingConfig,
    days: int,
) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Each model's served forecasts (``predict_online``) for the last ``days`` feature dates.

    Args:
        models: Name -> fitted forecaster.
        features: ``build_features(prices)`` through the last date.
        prices: The price panel the features come from.
        config: Gives ``max_horizon`` for the outcomes.
        days: How many of the latest feature dates to forecast.

    Returns:
        ``(frames, outcomes)``: name -> quantile frame, and the realized log returns on the
        frames' index (NaN where the outcome is not known yet).

    Raises:
        ValueError: fewer than ``days`` feature dates.
    """
    features = features.sort_index()
    dates = features.index.get_level_values("date").unique().sort_values()
    if len(dates) < days:
        raise ValueError(f"recent scoring needs {days} feature dates, got {len(dates)}")
    start = dates[-days]
    recent = prices.loc[pd.to_datetime(prices["date"]) >= start]
    outcomes = build_targets(recent, config.max_horizon).stack().rename("outcome")
    outcomes.index = outcomes.index.set_names(["date", "ticker", "horizon"])
    frames = {name: m.predict_online(features, prices, start) for name, m in models.items()}
    index = next(iter(frames.values())).index
    return frames, outcomes.reindex(index)


def score_recent(
    models: Mapping[str, QuantileForecaster],
    features: pd.DataFrame,
    prices: pd.DataFrame,
    config: TrainingConfig,
    days: int,
) -> pd.DataFrame:
    """Score fitted forecasters on the same rows: the last ``days`` feature dates with outcomes.

    Each model forecasts as it would have been served (``predict_online``: ACI replayed with
    outcomes revealed on their own dates). At horizon h only origins whose h-day outcome is
    known count, so long horizons have fewer rows. The boosters of an updated model were fitted
    on labels ending before its calibration window, so on these rows only the calibration (a
    few numbers per level) has seen the outcomes.

    Args:
        models: Name -> fitted forecaster (e.g. ``candidate`` and ``champion``).
        features: ``build_features(prices)`` through the last date.
        prices: The price panel the features come from.
        config: Gives the headline interval and the horizons.
        days: How many of the latest feature dates to score.

    Returns:
        Frame indexed by (method, horizon) with :data:`training.metrics.SCORE_COLUMNS`.

    Raises:
        ValueError: fewer than ``days`` feature dates.
    """
    frames, outcomes = recent_forecasts(models, features, prices, config, days)
    scores = [
        score_forecasts(frame, outcomes.reindex(frame.index), config)
        .assign(method=name)
        .reset_index()
        for name, frame in frames.items()
    ]
    return pd.concat(scores, ignore_index=True).set_index(["method", "horizon"])
