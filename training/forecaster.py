"""QuantileForecaster: calibrated return quantiles for every horizon 1..H.

How it forecasts:

1. The target is vol-normalized: ``z = log(P[t+h] / P[t]) / (sigma_t * sqrt(h))`` with
   ``sigma_t`` the RiskMetrics EWMA daily vol. Under a random walk z has the same law for every
   ticker, regime and horizon, so one pooled model per anchor horizon can hold coverage per
   ticker and per vol regime, and a new ticker (a single PETR4) is in-distribution. The
   scale and the vol regimes are :mod:`training.vol_scale`.
2. One XGBoost multi-quantile booster (``reg:quantileerror``) per anchor horizon learns the
   quantiles of z from the features; the other horizons are linear in h between anchors.
3. The last ``calibration_days`` dates are held out (their labels purged from the boosters)
   and calibrate each central interval (CQR); with ``calibration="aci"`` each ticker's
   levels then adapt online to its own misses (ACI, see :mod:`training.conformal`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from training.adaptive import replay_levels
from training.boosting import BoosterFit, booster_params, fit_in_process
from training.config import TrainingConfig
from training.conformal import IntervalCalibrator
from training.features import FEATURE_VERSION, validate_features
from training.median import recentre
from training.mondrian import bucket_offsets
from training.paths import repair_frame
from training.quantiles import interpolate_horizons, make_quantile_frame, prob_gain
from training.targets import build_targets, long_run_vol
from training.vol_scale import calm_floors, return_scale, row_vol_buckets


class QuantileForecaster:
    """Vol-normalized XGBoost quantile regression, conformally calibrated, for h = 1..H.

    Attributes set by :meth:`fit`: ``boosters_`` (anchor -> Booster), ``calibrators_``
    (anchor -> IntervalCalibrator), ``aci_levels_`` (ticker -> levels ``(anchors, intervals)``),
    ``feature_columns_``, ``feature_version_``, ``calibration_start_`` (first calibration
    date), ``boosted_through_`` (anchor -> last date the booster has trained on; every label
    it saw ends before the calibration window) and ``as_of_`` (last date seen).
    ``median_sources_`` (horizon -> ``"model"``/``"zero"``, see :mod:`training.median`) is set
    by the train job after its walk-forward; empty means the model's median everywhere.
    ``long_run_vol_`` (ticker -> RMS daily return of its training prices) anchors the
    volatility term structure (``vol_term_decay``) and the calm regime of the ACI floor
    (``aci_calm_floor_horizon``) and the volatility buckets of Mondrian CQR (``cqr_vol_edges``,
    whose per-bucket level offsets are ``bucket_offsets_``: anchor -> ``(buckets, intervals)``);
    all are off by default.
    """

    rearrange = True
    """Sort each day's quantiles (a study's :class:`UnservedForecaster` turns it off)."""

    def __init__(self, config: TrainingConfig | None = None) -> None:
        self.config = config or TrainingConfig()
        self.boosters_: dict[int, xgb.Booster] = {}
        self.calibrators_: dict[int, IntervalCalibrator] = {}
        self.aci_levels_: dict[str, np.ndarray] = {}
        self.feature_columns_: tuple[str, ...] = ()
        self.feature_version_ = FEATURE_VERSION
        self.calibration_start_: pd.Timestamp | None = None
        self.boosted_through_: dict[int, pd.Timestamp] = {}
        self.as_of_: pd.Timestamp | None = None
        self.median_sources_: dict[int, str] = {}
        self.long_run_vol_: dict[str, float] = {}
        self.bucket_offsets_: dict[int, np.ndarray] = {}

    # --- shapes -------------------------------------------------------------------------------
    @property
    def horizons(self) -> list[int]:
        """Forecast horizons 1..max_horizon."""
        return list(range(1, self.config.max_horizon + 1))

    @property
    def anchors(self) -> list[int]:
        """Horizons with their own booster."""
        return list(self.config.anchor_horizons)

    def _long_run_vol(self) -> dict[str, float]:
        return getattr(self, "long_run_vol_", {})  # models pickled before it have none

    def _scale(self, features: pd.DataFrame, horizons: list[int]) -> np.ndarray:
        """Spread of the h-day return ``(rows, horizons)`` that normalizes the target."""
        return return_scale(features, horizons, self.config, self._long_run_vol())

    def _floors(self, features: pd.DataFrame) -> np.ndarray | None:
        """Where ACI levels may not fall below CQR ``(rows, anchors)``: long h, calm vol."""
        return calm_floors(features, self.anchors, self.config, self._long_run_vol())

    def _buckets(self, features: pd.DataFrame) -> np.ndarray | None:
        """Volatility bucket of each row (Mondrian CQR), None when off."""
        return row_vol_buckets(features, self.config, self._long_run_vol())

    def _offsets(self, features: pd.DataFrame) -> np.ndarray | None:
        """Level offsets of each row's volatility bucket ``(rows, anchors, intervals)``."""
        buckets = self._buckets(features)
        stored = getattr(self, "bucket_offsets_", {})
        if buckets is None or not stored:
            return None
        return np.stack([stored[h][buckets] for h in self.anchors], axis=1)

    def _normalized_targets(self, features: pd.DataFrame, prices: pd.DataFrame) -> np.ndarray:
        """Targets ``(rows, anchors)`` divided by their scale; NaN where not yet known."""
        targets = build_targets(prices, self.config.max_horizon).reindex(features.index)
        raw = targets[self.anchors].to_numpy(dtype=float)
        return raw / self._scale(features, self.anchors)

    def _raw(self, features: pd.DataFrame) -> np.ndarray:
        """Uncalibrated normalized quantiles ``(rows, anchors, quantiles)``."""
        design = features.loc[:, list(self.feature_columns_)].to_numpy(dtype=np.float32)
        return np.stack([self.boosters_[h].inplace_predict(design) for h in self.anchors], axis=1)

    # --- training -----------------------------------------------------------------------------
    def _boost(
        self, h: int, features: pd.DataFrame, z: np.ndarray, rounds: int, engine: BoosterFit
    ) -> None:
        """Train (or, if it exists, continue) the booster of anchor ``h`` on rows with a target.

        Continued boosting (``xgb_model=``) keeps every existing tree and adds ``rounds``
        trees at the smaller update learning rate. ``engine`` runs the fit (this process or a
        cluster); the booster it returns is the same kind either way.
        """
        known = np.isfinite(z)
        if not known.any():
            raise ValueError(f"no training row has a known {h}-day target")
        design = features.loc[:, list(self.feature_columns_)].to_numpy(dtype=np.float32)[known]
        previous = self.boosters_.get(h)
        rate = (
            self.config.booster.learning_rate
            if previous is None
            else self.config.update_learning_rate
        )
        self.boosters_[h] = engine(
            booster_params(self.config, rate), design, z[known], rounds, previous
        )
        self.boosted_through_[h] = features.index.get_level_values("date")[known].max()

    def _calibrate(self, features: pd.DataFrame, prices: pd.DataFrame) -> None:
        """Fit the interval calibrators on ``features`` and replay ACI through them."""
        z = self._normalized_targets(features, prices)
        raw = self._raw(features)
        buckets = self._buckets(features)
        self.bucket_offsets_ = {}
        for a, h in enumerate(self.anchors):
            self.calibrators_[h] = IntervalCalibrator.fit(
                raw[:, a, :], z[:, a], self.config.quantiles
            )
            if buckets is not None:
                self.bucket_offsets_[h] = bucket_offsets(
                    self.calibrators_[h],
                    raw[:, a, :],
                    z[:, a],
                    buckets,
                    len(self.config.cqr_vol_edges or ()) + 1,
                )
        _, self.aci_levels_ = self._replay(features, prices, raw, z)

    def _replay(self, features, prices, raw, z) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-ticker ACI levels for each row of ``features`` and after its last row."""
        return replay_levels(
            features.index,
            raw,
            z,
            prices,
            self.anchors,
            self.calibrators_,
            self._gammas(),
            self._floors(features),
            self._offsets(features),
        )

    def _gammas(self) -> np.ndarray:
        # h-step outcomes overlap, so a long horizon sees ~h correlated misses per shock.
        return (
            self.config.aci_gamma / np.asarray(self.anchors, float) ** self.config.aci_gamma_power
        )

    def _split_dates(self, features: pd.DataFrame) -> pd.Timestamp:
        dates = features.index.get_level_values("date").unique().sort_values()
        needed = self.config.calibration_days + self.config.min_train_days
        if len(dates) < needed:
            raise ValueError(
                f"too little history: fit needs {needed} feature dates (min_train_days="
                f"{self.config.min_train_days} + calibration_days={self.config.calibration_days}),"
                f" got {len(dates)}"
            )
        return dates[-self.config.calibration_days]

    def fit(
        self,
        features: pd.DataFrame,
        prices: pd.DataFrame,
        *,
        engine: BoosterFit = fit_in_process,
    ) -> QuantileForecaster:
        """Full refit: boosters on the early dates, calibration on the last ones.

        Args:
            features: Output of :func:`training.features.build_features` (extra columns are
                used as features too); every column is a model input.
            prices: The price panel the features came from; targets are computed from it,
                so pass only prices known at training time (it bounds every label).
            engine: Runs each booster fit (:mod:`training.boosting`); never stored.

        Returns:
            ``self``.

        Raises:
            ValueError: If the features are malformed or cover fewer than
                ``min_train_days + calibration_days`` dates.
        """
        validate_features(features)
        features = features.sort_index()
        self.feature_columns_ = tuple(features.columns)
        cal_start = self._split_dates(features)
        dates = features.index.get_level_values("date")
        train = features.loc[dates < cal_start]
        # Labels of the boosters must end before the calibration window: cut the prices there.
        cut = prices.loc[pd.to_datetime(prices["date"]) < cal_start]
        self.boosters_, self.boosted_through_ = {}, {}
        self.long_run_vol_ = long_run_vol(prices)
        z = self._normalized_targets(train, cut)
        for a, h in enumerate(self.anchors):
            self._boost(h, train, z[:, a], self.config.booster.n_estimators, engine)
        self.calibration_start_ = cal_start
        self._calibrate(features.loc[dates >= cal_start], prices)
        self.as_of_ = dates.max()
        return self

    def update(
        self,
        features: pd.DataFrame,
        prices: pd.DataFrame,
        *,
        engine: BoosterFit = fit_in_process,
    ) -> QuantileForecaster:
        """Incremental update on newer data, without refitting from scratch.

        The calibration window slides to the last ``calibration_days`` dates. Once at least
        ``update_min_days`` dates left before it have labels an anchor's booster has not seen,
        that booster gets ``update_rounds`` more trees on them (``xgb_model=`` continued
        boosting; labels end before the new window, which stays out-of-sample). Then the
        calibration scores are refreshed on the new window and ACI is replayed through it.

        Args:
            features: Feature rows from ``min(boosted_through_.values())`` (or at least the
                last ``calibration_days`` dates, when no boosting is due) through today.
            prices: Prices known now, covering the same dates.
            engine: Runs each booster fit (:mod:`training.boosting`); never stored.

        Returns:
            ``self``.
        """
        if not self.boosters_:
            raise ValueError("update needs a fitted forecaster: call fit first")
        validate_features(features, self.feature_columns_)
        features = features.sort_index()
        dates = features.index.get_level_values("date")
        unique = dates.unique().sort_values()
        if len(unique) < self.config.calibration_days:
            raise ValueError(
                f"update needs {self.config.calibration_days} feature dates (calibration_days),"
                f" got {len(unique)}"
            )
        new_start = max(unique[-self.config.calibration_days], self.calibration_start_)
        # The scale of the boosters' targets stays fixed; only new tickers get a long-run vol.
        self.long_run_vol_ = {**long_run_vol(prices), **getattr(self, "long_run_vol_", {})}
        # Labels of the new trees must end before the new calibration window.
        cut = prices.loc[pd.to_datetime(prices["date"]) < new_start]
        cut_dates = pd.DatetimeIndex(pd.to_datetime(cut["date"]).unique())
        for a, h in enumerate(self.anchors):
            seen = self.boosted_through_[h]
            if (cut_dates > seen).sum() - h < self.config.update_min_days:
                continue  # not enough newly labelled dates yet: they wait for a later update
            if unique[0] > seen:
                raise ValueError(
                    f"update must boost the {h}-day model on every date after {seen.date()}, "
                    f"but features start on {unique[0].date()}: pass a longer window"
                )
            rows = features.loc[(dates > seen) & (dates < new_start)]
            z = self._normalized_targets(rows, cut)[:, a]
            if np.isfinite(z).any():
                self._boost(h, rows, z, self.config.update_rounds, engine)
        self.calibration_start_ = new_start
        self._calibrate(features.loc[dates >= new_start], prices)
        self.as_of_ = dates.max()
        return self

    # --- forecasting --------------------------------------------------------------------------
    def _to_frame(self, features: pd.DataFrame, normalized: np.ndarray) -> pd.DataFrame:
        """Anchor quantiles of z -> return quantiles for every horizon, as a quantile frame."""
        full = interpolate_horizons(normalized, self.anchors, self.horizons)
        scale = self._scale(features, self.horizons)
        frame = make_quantile_frame(
            features.index,
            full * scale[:, :, None],
            self.horizons,
            self.config.quantiles,
            rearrange=self.rearrange,
        )
        return self._serve(frame)

    def _serve(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The path's median policy, then the repair: ordered quantiles, spreads never narrow."""
        # Models pickled before the median policy have no attribute: the model's median.
        return repair_frame(recentre(frame, getattr(self, "median_sources_", {})))

    def _calibrated(self, raw: np.ndarray, levels: np.ndarray) -> np.ndarray:
        out = np.empty_like(raw, dtype=float)
        for a, h in enumerate(self.anchors):
            out[:, a, :] = self.calibrators_[h].apply(raw[:, a, :], levels[:, a, :])
        return out

    def _nominal_levels(self) -> np.ndarray:
        return np.stack([self.calibrators_[h].nominal_levels() for h in self.anchors])

    def predict(self, features: pd.DataFrame, adaptive: bool | None = None) -> pd.DataFrame:
        """Calibrated return quantiles for every row of ``features`` and every horizon.

        Args:
            features: Feature rows (e.g. :func:`training.features.latest_features`).
            adaptive: Use each ticker's ACI levels as of the last fit/update (tickers never
                seen get the CQR levels). Defaults to ``config.calibration == "aci"``.

        Returns:
            Quantile frame indexed by (date, ticker, horizon), horizons 1..max_horizon,
            columns the quantile levels, values log returns (see :mod:`training.quantiles`).
        """
        self._check_fitted(features)
        features = features.sort_index()
        adaptive = self.config.calibration == "aci" if adaptive is None else adaptive
        nominal = self._nominal_levels()
        tickers = features.index.get_level_values("ticker")
        levels = np.stack(
            [self.aci_levels_.get(t, nominal) if adaptive else nominal for t in tickers]
        )
        floors = self._floors(features) if adaptive else None
        if floors is not None:
            levels = np.where(floors[:, :, None], np.maximum(levels, nominal[None]), levels)
        offsets = self._offsets(features)
        if offsets is not None:  # each volatility bucket's own width, on top of the level
            levels = np.clip(levels + offsets, 0.0, 1.0)
        return self._to_frame(features, self._calibrated(self._raw(features), levels))

    def predict_online(
        self,
        features: pd.DataFrame,
        prices: pd.DataFrame,
        start: pd.Timestamp,
        adaptive: bool | None = None,
    ) -> pd.DataFrame:
        """Backtest forecasts from ``start`` on, as a daily-served model would have issued them.

        With ACI, levels are replayed from the calibration window forward and each forecast
        uses only outcomes known at its own date; with CQR this equals :meth:`predict`.

        Args:
            features: Feature rows from ``calibration_start_`` through the last test date.
            prices: Prices through the last test date (outcomes are revealed from them).
            start: First forecast date to return.
            adaptive: Replay ACI (default: ``config.calibration == "aci"``) or use CQR.

        Returns:
            Quantile frame for the rows of ``features`` dated ``start`` or later.
        """
        self._check_fitted(features)
        features = features.sort_index()
        dates = features.index.get_level_values("date")
        adaptive = self.config.calibration == "aci" if adaptive is None else adaptive
        if not adaptive:
            return self.predict(features.loc[dates >= start], adaptive=False)
        window = features.loc[dates >= self.calibration_start_]
        raw = self._raw(window)
        levels, _ = self._replay(window, prices, raw, self._normalized_targets(window, prices))
        keep = window.index.get_level_values("date") >= start
        return self._to_frame(window.loc[keep], self._calibrated(raw[keep], levels[keep]))

    def prob_gain(self, features: pd.DataFrame) -> pd.Series:
        """Probability of a positive return for each row and horizon (from :meth:`predict`)."""
        return prob_gain(self.predict(features))

    def _check_fitted(self, features: pd.DataFrame) -> None:
        if not self.boosters_:
            raise ValueError("the forecaster is not fitted: call fit first")
        if self.feature_version_ != FEATURE_VERSION:
            raise ValueError(
                f"the model was trained on features version {self.feature_version_!r} but "
                f"build_features is version {FEATURE_VERSION!r}: retrain before serving"
            )
        validate_features(features, self.feature_columns_)
