"""Baselines produce the model's quantile format with their documented formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from training.baselines import EwmaNormalBaseline, HistoricalBaseline
from training.config import TrainingConfig
from training.features import MIN_HISTORY_DAYS, SIGMA_COLUMN, build_features, latest_features


@pytest.fixture
def panel(make_prices):
    prices = make_prices(seed=11, tickers=2, days=MIN_HISTORY_DAYS + 60)
    return prices, build_features(prices)


def test_ewma_normal_is_z_sigma_sqrt_h(panel):
    prices, features = panel
    config = TrainingConfig()
    out = EwmaNormalBaseline(config).fit(features, prices).predict(features)
    row = features.iloc[0]
    origin = features.index[0]
    got = out.loc[(*origin, 9)].to_numpy()
    expected = row[SIGMA_COLUMN] * 3.0 * norm.ppf(config.quantiles)
    np.testing.assert_allclose(got, expected)
    assert len(out) == len(features) * config.max_horizon


def test_zero_baseline_has_zero_median_and_historical_spread(panel):
    prices, features = panel
    out = HistoricalBaseline().fit(features, prices).predict(latest_features(features))
    np.testing.assert_allclose(out[0.5], 0.0)
    own = prices[prices.ticker == "T0"].adj_close.to_numpy()
    one_day = np.diff(np.log(own))
    spread = np.quantile(one_day, 0.95) - np.median(one_day)
    assert out.xs(("T0", 1), level=("ticker", "horizon"))[0.95].iloc[0] == pytest.approx(spread)


def test_drift_baseline_centres_on_the_mean_daily_return_times_h(panel):
    prices, features = panel
    model = HistoricalBaseline(drift=True).fit(features, prices)
    out = model.predict(latest_features(features))
    own = prices[prices.ticker == "T1"].adj_close.to_numpy()
    mu = np.mean(np.diff(np.log(own)))
    assert out.xs(("T1", 20), level=("ticker", "horizon"))[0.5].iloc[0] == pytest.approx(20 * mu)


def test_unknown_ticker_gets_the_pooled_distribution(panel):
    prices, features = panel
    model = HistoricalBaseline().fit(features, prices)
    renamed = features.rename(index={"T0": "PETR4"}, level="ticker")
    out = model.predict(renamed)
    assert "PETR4" in out.index.get_level_values("ticker")
    assert np.isfinite(out.to_numpy()).all()


def test_unfitted_or_unusable_input_raises(panel):
    prices, features = panel
    with pytest.raises(ValueError, match="not fitted"):
        HistoricalBaseline().predict(features)
    with pytest.raises(ValueError, match="ewma_vol"):
        EwmaNormalBaseline().predict(features.drop(columns=SIGMA_COLUMN))
    with pytest.raises(ValueError, match="prices is empty"):
        HistoricalBaseline().fit(features, prices.iloc[0:0])
    single = pd.DataFrame(
        {"date": [pd.Timestamp("2024-01-02")], "ticker": ["X"], "adj_close": [1.0]}
    )
    with pytest.raises(ValueError, match="no return"):
        HistoricalBaseline().fit(features, single)
