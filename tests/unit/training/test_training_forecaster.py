"""QuantileForecaster: shapes, monotone quantiles, every horizon, online causality, update."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from training.config import BoosterParams, TrainingConfig
from training.features import SIGMA_COLUMN, build_features, latest_features
from training.forecaster import QuantileForecaster

CONFIG = TrainingConfig(
    booster=BoosterParams(n_estimators=20, min_child_weight=50, n_jobs=1),
    calibration_days=252,
    min_train_days=252,
    update_rounds=5,
)
CUT = pd.Timestamp("2016-01-01")


def assert_calibrated(covered: pd.Series, nominal: float = 0.9) -> None:
    """Coverage within 3.5 binomial standard errors of nominal (one-day misses are nearly
    independent; ~1,000 rows give +-0.033, where .82-.97 used to pass a 90% interval)."""
    tolerance = 3.5 * np.sqrt(nominal * (1 - nominal) / len(covered))
    assert abs(covered.mean() - nominal) <= tolerance, (covered.mean(), len(covered))


def _before(features, prices, cut):
    return features[features.index.get_level_values("date") < cut], prices[prices.date < cut]


@pytest.fixture(scope="module")
def data(small_prices):
    return small_prices, build_features(small_prices)


@pytest.fixture(scope="module")
def fitted(data):
    prices, features = data
    return QuantileForecaster(CONFIG).fit(*_before(features, prices, CUT))


def test_predict_gives_monotone_quantiles_for_every_horizon(fitted, data):
    _, features = data
    latest = latest_features(features)
    out = fitted.predict(latest)
    assert out.index.names == ["date", "ticker", "horizon"]
    assert list(out.columns) == list(CONFIG.quantiles)
    assert len(out) == 4 * 30
    assert sorted(out.index.get_level_values("horizon").unique()) == list(range(1, 31))
    values = out.to_numpy()
    assert np.isfinite(values).all()
    assert (np.diff(values, axis=1) > 0).all()
    width = (out[0.95] - out[0.05]).unstack("horizon").to_numpy()
    # Wider with the horizon (small wiggles allowed where two anchors' models disagree).
    assert (np.diff(width, axis=1) > -0.01 * width[:, 1:]).all()
    assert (width[:, -1] > 3 * width[:, 0]).all()
    # A 90% range of one day is a few sigmas wide, not a tip.
    one_day = (out[0.95] - out[0.05]).xs(1, level="horizon").to_numpy()
    sigma = latest[SIGMA_COLUMN].to_numpy()
    assert np.all((one_day > 2 * sigma) & (one_day < 6 * sigma))


def test_prob_gain_per_row_and_horizon(fitted, data):
    gain = fitted.prob_gain(latest_features(data[1]))
    assert len(gain) == 4 * 30
    assert gain.between(0.2, 0.8).all()


def test_pickle_round_trip_predicts_the_same(fitted, data):
    latest = latest_features(data[1])
    clone = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(clone.predict(latest), fitted.predict(latest))


def test_online_forecasts_use_only_outcomes_known_at_their_date(fitted, data):
    prices, features = data
    t = pd.Timestamp("2016-06-30")
    window_f, window_p = _before(features, prices, pd.Timestamp("2017-01-01"))
    full = fitted.predict_online(window_f, window_p, CUT)
    shocked = window_p.copy()
    shocked.loc[shocked.date > t, "adj_close"] *= 1.5  # later outcomes all change
    early_f = window_f[window_f.index.get_level_values("date") <= t]
    again = fitted.predict_online(early_f, shocked, CUT)
    pd.testing.assert_frame_equal(again, full[full.index.get_level_values("date") <= t])
    # and the adaptive levels did move away from plain CQR along the way
    cqr = fitted.predict_online(window_f, window_p, CUT, adaptive=False)
    assert not np.allclose(full.to_numpy(), cqr.to_numpy())


def test_backtest_coverage_is_sane(fitted, data):
    prices, features = data
    window_f, window_p = _before(features, prices, pd.Timestamp("2017-01-01"))
    out = fitted.predict_online(window_f, window_p, CUT).xs(1, level="horizon")
    y = np.log(prices.set_index(["date", "ticker"]).adj_close).groupby("ticker").diff(-1) * -1
    y = y.reindex(out.index)
    covered = ((y >= out[0.05]) & (y <= out[0.95]))[y.notna()]
    assert_calibrated(covered)


def test_update_adds_trees_without_refitting_and_stays_calibrated(fitted, data):
    prices, features = data
    model = pickle.loads(pickle.dumps(fitted))
    old = {h: b.copy() for h, b in model.boosters_.items()}
    cal_start = model.calibration_start_
    new_f, new_p = _before(features, prices, pd.Timestamp("2016-03-01"))
    model.update(new_f, new_p)

    design = new_f.loc[:, list(model.feature_columns_)].to_numpy(np.float32)
    for h, booster in model.boosters_.items():
        assert booster.num_boosted_rounds() == 20 + CONFIG.update_rounds
        np.testing.assert_array_equal(  # the first trees are untouched: no refit from scratch
            booster.inplace_predict(design, iteration_range=(0, 20)), old[h].inplace_predict(design)
        )
        assert not np.allclose(booster.inplace_predict(design), old[h].inplace_predict(design))
    assert model.calibration_start_ > cal_start
    assert model.as_of_ == new_f.index.get_level_values("date").max()

    window_f, window_p = _before(features, prices, pd.Timestamp("2017-01-01"))
    out = model.predict_online(window_f, window_p, pd.Timestamp("2016-03-01")).xs(
        1, level="horizon"
    )
    y = -np.log(window_p.set_index(["date", "ticker"]).adj_close).groupby("ticker").diff(-1)
    y = y.reindex(out.index)
    covered = ((y >= out[0.05]) & (y <= out[0.95]))[y.notna()]
    assert_calibrated(covered)


def test_update_after_one_day_recalibrates_without_boosting(fitted, data):
    prices, features = data
    model = pickle.loads(pickle.dumps(fitted))
    next_day = features.index.get_level_values("date")[
        features.index.get_level_values("date") >= CUT
    ].min()
    model.update(*_before(features, prices, next_day + pd.Timedelta(days=1)))
    assert all(b.num_boosted_rounds() == 20 for b in model.boosters_.values())
    assert model.as_of_ == next_day
    assert model.calibration_start_ > fitted.calibration_start_


def test_unknown_ticker_falls_back_to_split_conformal_levels(fitted, data):
    latest = latest_features(data[1]).rename(index={"AAPL": "PETR4"}, level="ticker")
    petr = latest[latest.index.get_level_values("ticker") == "PETR4"]
    pd.testing.assert_frame_equal(fitted.predict(petr), fitted.predict(petr, adaptive=False))


def test_a_single_ticker_can_be_trained_and_served(data):
    prices, _ = data
    one = prices[prices.ticker == "JNJ"]
    features = build_features(one)
    model = QuantileForecaster(CONFIG).fit(*_before(features, one, CUT))
    out = model.predict(latest_features(features))
    assert len(out) == 30
    assert (np.diff(out.to_numpy(), axis=1) > 0).all()


def test_bad_inputs_raise_named_errors(fitted, data):
    prices, features = data
    with pytest.raises(ValueError, match="not fitted"):
        QuantileForecaster(CONFIG).predict(features)
    with pytest.raises(ValueError, match="too little history"):
        QuantileForecaster(CONFIG).fit(*_before(features, prices, pd.Timestamp("2011-06-01")))
    with pytest.raises(ValueError, match="lacks column"):
        fitted.predict(features.drop(columns="ret_5"))
    with pytest.raises(ValueError, match="ewma_vol"):
        fitted.predict(features.drop(columns=SIGMA_COLUMN))
    with pytest.raises(ValueError, match="features is empty"):
        fitted.predict(features.iloc[0:0])
    with pytest.raises(ValueError, match="index must be"):
        fitted.predict(features.reset_index(level="ticker"))
    stale = pickle.loads(pickle.dumps(fitted))
    stale.feature_version_ = "1999.0"
    with pytest.raises(ValueError, match="retrain before serving"):
        stale.predict(latest_features(features))
    with pytest.raises(ValueError, match="call fit first"):
        QuantileForecaster(CONFIG).update(features, prices)
    later_f, later_p = _before(features, prices, pd.Timestamp("2016-06-01"))
    recent = later_f[later_f.index.get_level_values("date") >= pd.Timestamp("2015-06-01")]
    with pytest.raises(ValueError, match="features start on"):  # the unseen dates are missing
        pickle.loads(pickle.dumps(fitted)).update(recent, later_p)
