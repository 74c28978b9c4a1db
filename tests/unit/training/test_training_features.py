"""Features: shape, no look-ahead (property test), serving window, single ticker, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.features import (
    FEATURE_COLUMNS,
    FEATURE_VERSION,
    MIN_HISTORY_DAYS,
    SIGMA_COLUMN,
    build_features,
    ewma_volatility,
    latest_features,
)


def test_features_have_the_documented_shape(make_prices):
    prices = make_prices(seed=1, tickers=3, days=MIN_HISTORY_DAYS + 20)
    features = build_features(prices)

    assert isinstance(FEATURE_VERSION, str)
    assert FEATURE_VERSION
    assert list(features.columns) == list(FEATURE_COLUMNS)
    assert features.index.names == ["date", "ticker"]
    assert features.index.is_monotonic_increasing
    assert not features.isna().any().any()
    # The first feature row of a ticker is its MIN_HISTORY_DAYS-th price.
    first = features.xs("T0", level="ticker").index.min()
    assert first == sorted(prices.loc[prices.ticker == "T0", "date"])[MIN_HISTORY_DAYS - 1]
    assert len(features) == 3 * 21


def test_returns_and_vol_match_hand_computation(make_prices):
    prices = make_prices(seed=2, tickers=1, days=MIN_HISTORY_DAYS + 5)
    features = build_features(prices).xs("T0", level="ticker")
    p = prices.set_index("date")["adj_close"]
    t = features.index[-1]
    position = p.index.get_loc(t)
    assert features.loc[t, "ret_5"] == pytest.approx(
        np.log(p.iloc[position] / p.iloc[position - 5])
    )
    daily = np.diff(np.log(p.to_numpy()))[:position]
    weights = 0.94 ** np.arange(252)
    expected = np.sqrt(np.sum(weights * daily[::-1][:252] ** 2) / weights.sum())
    assert features.loc[t, SIGMA_COLUMN] == pytest.approx(expected, rel=1e-12)


def test_ewma_volatility_is_nan_until_the_window_is_full():
    returns = np.full(10, 0.01)
    vol = ewma_volatility(returns, 0.94, 4)
    assert np.isnan(vol[:3]).all()
    np.testing.assert_allclose(vol[3:], 0.01)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    tickers=st.integers(1, 3),
    gaps=st.sampled_from([0.0, 0.05]),
    cut=st.floats(0.0, 0.9),
    shock=st.floats(0.05, 1.0),
)
def test_prices_after_t_never_change_features_at_t(make_prices, seed, tickers, gaps, cut, shock):
    prices = make_prices(seed, tickers=tickers, days=MIN_HISTORY_DAYS + 60, gap_share=gaps)
    features = build_features(prices)
    dates = features.index.get_level_values("date").unique()
    t = dates[int(cut * (len(dates) - 1))]

    rng = np.random.default_rng(seed + 1)
    changed = prices.copy()
    after = changed["date"] > t
    changed.loc[after, "adj_close"] *= np.exp(rng.normal(0, shock, after.sum()))
    perturbed = build_features(changed)
    truncated = build_features(prices.loc[prices["date"] <= t])

    past = features.loc[features.index.get_level_values("date") <= t]
    pd.testing.assert_frame_equal(
        perturbed.loc[perturbed.index.get_level_values("date") <= t], past, rtol=1e-12, atol=1e-14
    )
    # Serving sees only prices up to t: it must get the same numbers (cross-sectional too).
    pd.testing.assert_frame_equal(truncated, past, rtol=1e-9, atol=1e-12)
    if t < dates[-1]:  # not vacuous: later features do move
        later = features.index.get_level_values("date") > t
        assert not np.allclose(perturbed.loc[later].to_numpy(), features.loc[later].to_numpy())


def test_latest_window_reproduces_training_features(small_prices):
    prices = small_prices[small_prices["date"] < "2012-01-01"]
    full = latest_features(build_features(prices))
    window = prices.sort_values("date").groupby("ticker").tail(MIN_HISTORY_DAYS)
    served = latest_features(build_features(window))
    pd.testing.assert_frame_equal(served, full, rtol=1e-9, atol=1e-12)
    assert len(served) == prices["ticker"].nunique()


def test_a_single_ticker_gets_neutral_cross_sectional_features(make_prices):
    features = build_features(make_prices(seed=3, tickers=1, days=MIN_HISTORY_DAYS + 10))
    np.testing.assert_allclose(features["rel_ret_21"], 0.0)
    np.testing.assert_allclose(features["mkt_ret_5"], features["ret_5"])
    np.testing.assert_allclose(features["rel_vol"], 0.0)
    np.testing.assert_allclose(features["rank_ret_21"], 0.5)
    assert not features.isna().any().any()


def test_short_tickers_are_left_out_but_others_kept(make_prices):
    prices = make_prices(seed=4, tickers=2, days=MIN_HISTORY_DAYS + 5)
    short = prices[
        (prices.ticker == "T1") & (prices.date > prices.date.min() + pd.Timedelta("30D"))
    ]
    features = build_features(pd.concat([prices[prices.ticker == "T0"], short]))
    assert set(features.index.get_level_values("ticker")) == {"T0"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.iloc[0:0], "prices is empty"),
        (lambda p: p.drop(columns="adj_close"), "missing column"),
        (lambda p: p.assign(adj_close=p.adj_close.where(p.index != 5, -1.0)), "adj_close must be"),
        (lambda p: p.assign(adj_close=p.adj_close.where(p.index != 5, 0.0)), "> 0"),
        (lambda p: p.assign(adj_close=p.adj_close.where(p.index != 5, np.nan)), "T0"),
        (lambda p: pd.concat([p, p.iloc[[3]]]), "repeated"),
        (lambda p: p.assign(date="not a date"), "datetime-like"),
        (lambda p: p[p.date < p.date.min() + pd.Timedelta("100D")], "MIN_HISTORY_DAYS"),
    ],
)
def test_bad_prices_raise_a_named_value_error(make_prices, mutate, message):
    prices = make_prices(seed=5, tickers=2, days=MIN_HISTORY_DAYS + 5)
    with pytest.raises(ValueError, match=message):
        build_features(mutate(prices))
