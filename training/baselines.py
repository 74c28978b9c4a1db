"""Baselines reported beside the model, in the same quantile-frame format.

* ``EwmaNormalBaseline``: ``0 +/- z_tau * sigma_t * sqrt(h)`` (RiskMetrics vol, normal law).
* ``HistoricalBaseline(drift=False)``: naive zero return; its spread is the ticker's historical
  h-day return distribution, median-centred (a random walk with unconditional volatility).
* ``HistoricalBaseline(drift=True)``: the same spread centred on the ticker's historical
  drift (mean daily log return over the whole training window, times h).

All share the forecaster's interface: ``fit(features, prices)``, ``predict(features)``,
``predict_online(features, prices, start)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from training.config import TrainingConfig
from training.features import SIGMA_COLUMN
from training.quantiles import make_quantile_frame
from training.targets import build_targets


class EwmaNormalBaseline:
    """Normal interval around zero with EWMA volatility: nothing to fit."""

    def __init__(self, config: TrainingConfig | None = None) -> None:
        self.config = config or TrainingConfig()

    def fit(self, features: pd.DataFrame, prices: pd.DataFrame) -> EwmaNormalBaseline:
        """No parameters: kept for the common interface."""
        return self

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Quantile frame ``z_tau * max(sigma, min_daily_vol) * sqrt(h)`` for h = 1..H.

        Args:
            features: Rows with the ``ewma_vol`` column.

        Returns:
            Quantile frame (see :mod:`training.quantiles`).
        """
        if SIGMA_COLUMN not in features.columns:
            raise ValueError(f"features lacks the {SIGMA_COLUMN!r} column")
        features = features.sort_index()
        horizons = np.arange(1, self.config.max_horizon + 1)
        sigma = np.maximum(features[SIGMA_COLUMN].to_numpy(float), self.config.min_daily_vol)
        scores = norm.ppf(self.config.quantiles)
        values = sigma[:, None, None] * np.sqrt(horizons)[None, :, None] * scores[None, None, :]
        return make_quantile_frame(features.index, values, horizons, self.config.quantiles)

    def predict_online(
        self, features: pd.DataFrame, prices: pd.DataFrame, start: pd.Timestamp
    ) -> pd.DataFrame:
        """Same as :meth:`predict` on rows dated ``start`` or later (nothing adapts)."""
        return self.predict(features.loc[features.index.get_level_values("date") >= start])


class HistoricalBaseline:
    """Historical h-day return quantiles per ticker, centred on zero or on the drift."""

    def __init__(self, config: TrainingConfig | None = None, drift: bool = False) -> None:
        self.config = config or TrainingConfig()
        self.drift = drift
        self.spread_: dict[str, np.ndarray] = {}
        self.drift_: dict[str, float] = {}

    def fit(self, features: pd.DataFrame, prices: pd.DataFrame) -> HistoricalBaseline:
        """Per-ticker mean daily log return and median-centred h-day return quantiles.

        Args:
            features: Unused (kept for the common interface).
            prices: Training prices; every return in them is used.

        Returns:
            ``self``; tickers unseen at fit time get the pooled values at predict time.
        """
        targets = build_targets(prices, self.config.max_horizon)
        if not targets[1].notna().any():
            raise ValueError("prices hold no return to learn a historical distribution from")
        levels = np.asarray(self.config.quantiles)
        tickers = targets.index.get_level_values("ticker")
        for ticker, rows in targets.groupby(tickers):
            if rows[1].notna().any():  # a one-row ticker falls back to the pooled values
                self.spread_[str(ticker)], self.drift_[str(ticker)] = self._summarize(rows, levels)
        self.pooled_ = self._summarize(targets, levels)
        return self

    def _summarize(self, targets: pd.DataFrame, levels: np.ndarray) -> tuple[np.ndarray, float]:
        """Median-centred quantiles ``(H, Q)`` and the mean daily log return of some targets."""
        values = targets.to_numpy(float)
        daily = np.nanmean(values[:, 0])
        horizons = np.arange(1, values.shape[1] + 1)
        spread = np.full((values.shape[1], len(levels)), np.nan)
        for i in range(values.shape[1]):
            known = values[:, i][np.isfinite(values[:, i])]
            if len(known):
                # Centred on the median so the point forecast is exactly the centre.
                spread[i] = np.quantile(known, levels) - np.median(known)
        # Too-short histories lack long horizons: scale the last known spread by sqrt(h).
        known_rows = np.flatnonzero(np.isfinite(spread[:, 0]))
        if len(known_rows) == 0:
            spread[:] = 0.0
        else:
            last = known_rows[-1]
            spread[last + 1 :] = (
                spread[last] * np.sqrt(horizons[last + 1 :] / horizons[last])[:, None]
            )
        return spread, float(daily)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Quantile frame of the stored distributions for each (date, ticker) row."""
        if not self.spread_:
            raise ValueError("the baseline is not fitted: call fit first")
        features = features.sort_index()
        horizons = np.arange(1, self.config.max_horizon + 1)
        tickers = features.index.get_level_values("ticker")
        pooled_spread, pooled_drift = self.pooled_
        spread = np.stack([self.spread_.get(t, pooled_spread) for t in tickers])
        centre = np.zeros((len(tickers), len(horizons), 1))
        if self.drift:
            daily = np.array([self.drift_.get(t, pooled_drift) for t in tickers])
            centre = (daily[:, None] * horizons[None, :])[:, :, None]
        return make_quantile_frame(features.index, centre + spread, horizons, self.config.quantiles)

    def predict_online(
        self, features: pd.DataFrame, prices: pd.DataFrame, start: pd.Timestamp
    ) -> pd.DataFrame:
        """Same as :meth:`predict` on rows dated ``start`` or later (refit to update)."""
        return self.predict(features.loc[features.index.get_level_values("date") >= start])
