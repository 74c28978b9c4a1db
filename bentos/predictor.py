"""The in-process predictor: the served forecaster plus each ticker's latest features.

At start-up (and whenever the lake commits a new version) it reads every ticker's recent window
from the lake and runs the very functions training used (``training.features.build_features``
then ``latest_features``, in ``bentos.lake_view``), so serving cannot drift from training; a
forecast is then one ``forecaster.predict`` on that row and
``finsimples.forecast.make_forecast``, as in ``jobs.predict``. No BentoML here: the service,
the deploy hook and the tests share it.

The request path touches no pandas: a ticker's as-of date and volatility are read off its row
once per lake version, and its whole path (every horizon) is computed on its first request and
then cut per horizon (``Forecast.up_to``), which gives the numbers ``make_forecast`` would.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from bentos.lake_view import LakeView, TickerWindow, read_view
from finsimples.adjustment import Jump, JumpRule
from finsimples.forecast import Forecast, make_forecast, suggest_tickers
from finsimples.freshness import DEFAULT_STALE_AFTER_SESSIONS, StaleTickerError
from finsimples.lake import Lake
from finsimples.records import TrackRecordSummary
from training.features import (
    FEATURE_VERSION,
    MIN_HISTORY_DAYS,
)
from training.forecaster import QuantileForecaster
from training.median import describe_median

log = logging.getLogger(__name__)

TRADING_DAYS_PER_YEAR = 252


class UnknownTickerError(LookupError):
    """The lake has no such ticker; carries the closest known ones.

    Attributes:
        ticker: The ticker asked for.
        suggestions: Up to three known tickers that look like it.
    """

    def __init__(self, ticker: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown ticker {ticker!r}{hint}")
        self.ticker = ticker
        self.suggestions = suggestions


class NotForecastableError(LookupError):
    """The ticker is in the lake but has too little recent history for the features."""


class UnexplainedJumpError(LookupError):
    """The ticker's recent prices jump like a split no event explains (the API's 409)."""

    def __init__(self, jump: Jump) -> None:
        self.jump = jump
        super().__init__(
            f"{jump}: not forecast until its event is ingested (ticker,ex_date,kind,value)"
        )


class HorizonError(ValueError):
    """A horizon outside what the served model forecasts."""


@dataclass(frozen=True)
class ModelInfo:
    """Who made the numbers: the registry version of the served model and its record.

    Attributes:
        model_name: Registered model name.
        version: Registry version, as a string.
        alias: The alias it was served under (``champion``).
        run_id: The MLflow run that trained it.
        watermark: Last price date it was trained on (ISO), the data watermark.
        feature_version: ``training.features.FEATURE_VERSION`` it was trained with.
        metrics: The run's metrics (walk-forward coverage, pinball, ... per horizon).
        tags: The version's tags (training mode, lake version, gate, ...).
        description: The model card (markdown).
        source: Where it was loaded from (``bentoml:<tag>`` or ``mlflow:<uri>``).
    """

    model_name: str
    version: str
    alias: str
    run_id: str
    watermark: str
    feature_version: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = ""


class Predictor:
    """Forecasts from the served model and the lake's latest windows.

    Args:
        forecaster: The fitted forecaster of the served model version.
        info: That version's provenance.
        lake: The price lake to read windows from.
        stale_after_sessions: Tickers whose last price is more than this many sessions of
            their exchange behind the lake's newest are not forecast
            (:class:`~finsimples.freshness.StaleTickerError`).
        jump_rule: What counts as a split no event explains
            (:class:`UnexplainedJumpError`; default: ``JumpRule()``).

    Call :meth:`refresh` once before forecasting (``Predictor.load`` does both).

    Raises:
        ValueError: The model was trained on another feature version than this code builds.
    """

    def __init__(
        self,
        forecaster: QuantileForecaster,
        info: ModelInfo,
        lake: Lake,
        stale_after_sessions: int = DEFAULT_STALE_AFTER_SESSIONS,
        jump_rule: JumpRule | None = None,
    ) -> None:
        if forecaster.feature_version_ != FEATURE_VERSION:
            raise ValueError(
                f"model version {info.version} was trained on features "
                f"{forecaster.feature_version_!r}; this code builds {FEATURE_VERSION!r}"
            )
        self.forecaster = forecaster
        self.info = info
        self.lake = lake
        self.stale_after_sessions = stale_after_sessions
        self.jump_rule = jump_rule or JumpRule()
        self._view = LakeView(0, (0, -1), {}, {}, {})
        self._refresh_lock = threading.Lock()
        # XGBoost boosters are shared by every request thread; one predict at a time keeps
        # that safe, and results are memoized per ticker, so the lock is rarely contended.
        self._predict_lock = threading.Lock()
        self._track_record: TrackRecordSummary | None = None
        self._min_outcomes = 1

    @classmethod
    def load(
        cls,
        forecaster: QuantileForecaster,
        info: ModelInfo,
        lake: Lake,
        stale_after_sessions: int = DEFAULT_STALE_AFTER_SESSIONS,
        jump_rule: JumpRule | None = None,
    ) -> Predictor:
        """A predictor with the lake's current windows already read."""
        predictor = cls(forecaster, info, lake, stale_after_sessions, jump_rule)
        predictor.refresh(force=True)
        return predictor

    @property
    def median_policy(self) -> str:
        """The served path's median policy in one phrase (from the model, not a tag).

        A version trained under the per-horizon policy carries a tag that no longer describes
        what is served (``training.median`` reads its split decision as zero's median).
        """
        return describe_median(getattr(self.forecaster, "median_sources_", {}))

    @property
    def max_horizon(self) -> int:
        """The longest horizon the model forecasts."""
        return int(self.forecaster.config.max_horizon)

    @property
    def interval(self) -> float:
        """Nominal coverage of the headline interval the model was calibrated for."""
        return float(self.forecaster.config.interval_coverage)

    @property
    def interval_keys(self) -> tuple[str, str]:
        """Path-point keys of the interval bounds, e.g. ``("q0.05", "q0.95")``."""
        low, high = self.forecaster.config.interval_levels
        return f"q{low:g}", f"q{high:g}"

    @property
    def lake_version(self) -> int:
        """The lake version the current windows were read from."""
        return self._view.lake_version

    def refresh(self, force: bool = False) -> bool:
        """Re-read the windows when the lake committed a new version since the last read.

        Args:
            force: Read even if the version did not change.

        Returns:
            Whether new windows were loaded.
        """
        with self._refresh_lock:  # two refreshes at once would read the lake twice
            snapshot = self.lake.snapshot()
            if not force and snapshot.key == self._view.key:
                return False
            self._view = read_view(self.lake, snapshot, self.stale_after_sessions, self.jump_rule)
        log.info(
            "predictor: lake version %s, %d tickers forecastable",
            snapshot.version,
            len(self._view.rows),
        )
        stale = sorted(self._view.stale)
        # Once per lake version; a warning, so a served replica's log shows it (root: WARNING).
        if stale:
            log.warning(
                "predictor: %d stale tickers (more than %d sessions behind the lake) are not "
                "forecast: %s",
                len(stale),
                self.stale_after_sessions,
                ", ".join(stale[:10]) + (" ..." if len(stale) > 10 else ""),
            )
        return True

    def tickers(self) -> list[TickerWindow]:
        """Every ticker of the lake, sorted, with its first and last dates."""
        return sorted(self._view.windows.values(), key=lambda w: w.ticker)

    def _row(self, ticker: str, view: LakeView) -> pd.DataFrame:
        row = view.rows.get(ticker)
        if row is None:
            raise self._not_served(ticker, view)
        return row

    def _not_served(self, ticker: str, view: LakeView) -> LookupError:
        """Why ``ticker`` cannot be forecast: stale, too little history, or not in the lake."""
        lag = view.stale.get(ticker)
        if lag is not None:
            return StaleTickerError(lag, self.stale_after_sessions)
        jump = view.jumps.get(ticker)
        if jump is not None:
            return UnexplainedJumpError(jump)
        if ticker in view.windows:
            return NotForecastableError(
                f"{ticker} has too little recent history: forecasts need {MIN_HISTORY_DAYS} "
                "consecutive trading days"
            )
        return UnknownTickerError(ticker, suggest_tickers(ticker, sorted(view.windows)))

    def check_horizon(self, horizon: int) -> None:
        """Raise :class:`HorizonError` unless ``1 <= horizon <= max_horizon``."""
        if not 1 <= horizon <= self.max_horizon:
            raise HorizonError(f"horizon {horizon} is outside 1..{self.max_horizon} trading days")

    def as_of(self, ticker: str) -> date:
        """The date of the last price a forecast of ``ticker`` uses (part of cache keys).

        Its own last date, which may be a few sessions before the lake's newest (within
        ``stale_after_sessions``).

        Raises:
            UnknownTickerError: The lake has no such ticker.
            StaleTickerError: Its prices stop more than ``stale_after_sessions`` sessions
                before the lake's newest.
            NotForecastableError: Too little recent history.
        """
        view = self._view
        found = view.as_of.get(ticker)
        if found is None:
            raise self._not_served(ticker, view)
        return found

    def forecast(self, ticker: str, horizon: int) -> Forecast:
        """The forecast of ``ticker`` over ``horizon`` trading days.

        Raises:
            UnknownTickerError, StaleTickerError, NotForecastableError, HorizonError: As their
                names say.
        """
        self.check_horizon(horizon)
        view = self._view
        whole = view.forecasts.get(ticker)
        if whole is None:
            row = self._row(ticker, view)
            with self._predict_lock:
                quantiles = self.forecaster.predict(row)
            whole = make_forecast(
                quantiles,
                ticker=ticker,
                last_price=view.last_prices[ticker],
                horizon=self.max_horizon,
                interval=self.interval,
                listing=view.listings.get(ticker),
            )
            view.forecasts[ticker] = whole  # every horizon: later requests skip the model
        return whole.up_to(horizon)

    def annual_volatility(self, ticker: str) -> float:
        """Recent annualized volatility: the feature row's daily EWMA vol times sqrt(252)."""
        view = self._view
        daily = view.daily_vol.get(ticker)
        if daily is None:
            raise self._not_served(ticker, view)
        return daily * math.sqrt(TRADING_DAYS_PER_YEAR)

    @property
    def track_record(self) -> TrackRecordSummary | None:
        """The realized track record last read from the lake (None: none yet)."""
        return self._track_record

    def set_track_record(self, record: TrackRecordSummary | None, min_outcomes: int) -> None:
        """Use ``record`` for :meth:`recent_coverage`, quoted only with ``min_outcomes``."""
        self._track_record, self._min_outcomes = record, min_outcomes

    def recent_coverage(self, horizon: int) -> float | None:
        """The realized coverage of what investors were served, at ``horizon``.

        The track record's pooled coverage (every ticker and model version over its window) at
        the logged horizon nearest ``horizon``; None without a record or with fewer than the
        minimum scored forecasts there (the narrative then says so).
        """
        record = self._track_record
        found = record.at(horizon) if record is not None else None
        if found is None or found.n < self._min_outcomes:
            return None
        return found.coverage
