"""Regime-aware calibration options (issue 15 §5): the volatility term structure and the calm
ACI floor, on small synthetic inputs; both off by default, reproducing the old forecasts."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import training.forecaster as forecaster_module
from tests.unit.training.conftest import random_prices
from training.config import BoosterParams, TrainingConfig
from training.conformal import IntervalCalibrator, run_aci
from training.features import SIGMA_COLUMN, build_features
from training.forecaster import QuantileForecaster
from training.targets import horizon_scale, long_run_vol

TAUS = (0.05, 0.25, 0.5, 0.75, 0.95)
HORIZONS = np.arange(1, 31)
SMALL = {
    "booster": BoosterParams(n_estimators=8, min_child_weight=20, n_jobs=1),
    "calibration_days": 120,
    "min_train_days": 120,
}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    prices = random_prices(0, days=560)
    return prices, build_features(prices)


@pytest.fixture(scope="module")
def default_model(data) -> QuantileForecaster:
    return _fit(data)


def _with(model: QuantileForecaster, **options) -> QuantileForecaster:
    """The same fitted boosters and calibrators under other (serving-time) options."""
    other = copy.deepcopy(model)
    other.config = model.config.model_copy(update=options)
    return other


def _fit(data, **options) -> QuantileForecaster:
    prices, features = data
    cut = features.index.get_level_values("date").unique()[-40]
    train = features.loc[features.index.get_level_values("date") < cut]
    return QuantileForecaster(TrainingConfig(**SMALL, **options)).fit(
        train, prices.loc[prices.date < cut]
    )


def test_flat_scale_when_off_or_when_vol_sits_at_its_long_run_level():
    sigma = np.array([0.005, 0.01, 0.03])
    flat = sigma[:, None] * np.sqrt(HORIZONS)[None, :]
    assert np.array_equal(horizon_scale(sigma, sigma, HORIZONS, None), flat)
    np.testing.assert_allclose(horizon_scale(sigma, sigma, HORIZONS, 0.98), flat, rtol=1e-12)


def test_term_structure_widens_long_horizons_after_calm_and_narrows_after_a_storm():
    sigma, long_run = np.array([0.005, 0.03]), np.array([0.015, 0.015])
    flat = horizon_scale(sigma, long_run, HORIZONS, None)
    ratio = horizon_scale(sigma, long_run, HORIZONS, 0.98) / flat
    assert ratio[:, 0] == pytest.approx([1.0, 1.0], abs=1e-12)  # h = 1: today's vol
    assert 1 < ratio[0, 1] < ratio[0, 20] < ratio[0, 29]  # calm: wider the longer
    assert ratio[0, 29] > 1.5
    assert 1 > ratio[1, 1] > ratio[1, 20] > ratio[1, 29]  # storm: narrower the longer
    assert ratio[1, 29] < 0.95
    # Slower mean reversion moves less; the long-run vol bounds the move.
    assert (horizon_scale(sigma, long_run, HORIZONS, 0.995) / flat)[0, 29] < ratio[0, 29]
    assert (horizon_scale(sigma, long_run, HORIZONS, 0.98)[0] <= 0.015 * np.sqrt(HORIZONS)).all()


def test_long_run_vol_is_the_rms_daily_log_return_per_ticker():
    prices = pd.DataFrame(
        {
            "date": pd.bdate_range("2020-01-01", periods=4).tolist() * 2,
            "ticker": ["A"] * 4 + ["B"] * 4,
            "adj_close": [100, 110, 99, 99, 10, 10, 10, 10],
        }
    )
    got = long_run_vol(prices)
    returns = np.diff(np.log([100, 110, 99, 99]))
    assert got["A"] == pytest.approx(np.sqrt(np.mean(returns**2)))
    assert got["B"] == 0.0


def test_aci_floor_keeps_levels_at_or_above_cqr_while_calm():
    rng = np.random.default_rng(1)
    y_cal = rng.standard_normal(500)
    raw_cal = np.tile(norm.ppf(TAUS), (500, 1))
    calibrator = IntervalCalibrator.fit(raw_cal, y_cal, TAUS)
    nominal = calibrator.nominal_levels()
    # A calm spell: outcomes far smaller than the calibrated law, so ACI sees no misses.
    steps = 400
    raw, y = np.tile(norm.ppf(TAUS), (steps, 1)), 0.2 * rng.standard_normal(steps)
    reveal = np.arange(steps) + 21
    free, _ = run_aci(calibrator, raw, y, reveal, gamma=0.01)
    assert (free[-1] < nominal - 0.05).all()  # unfloored, the level drifts down
    calm = np.arange(steps) < 300
    floored, _ = run_aci(calibrator, raw, y, reveal, gamma=0.01, floor=calm)
    assert (floored[calm] >= nominal - 1e-12).all()
    assert (floored[~calm][-1] < nominal).all()  # outside the calm rows ACI is free again


def test_default_config_and_an_old_pickle_give_the_same_forecasts_bit_for_bit(data, default_model):
    prices, features = data
    model = default_model
    assert TrainingConfig().vol_term_decay is None
    assert TrainingConfig().aci_calm_floor_horizon is None
    assert TrainingConfig().cqr_vol_edges is None
    # The default target scale is RiskMetrics' sigma * sqrt(h), exactly as before.
    sigma = np.maximum(features[SIGMA_COLUMN].to_numpy(float), model.config.min_daily_vol)
    assert np.array_equal(
        model._scale(features, model.anchors), sigma[:, None] * np.sqrt(model.anchors)[None, :]
    )
    # A model pickled before the options existed has neither the attribute nor the fields.
    old = pickle.loads(pickle.dumps(model))
    del old.long_run_vol_
    del old.bucket_offsets_
    for name in ("vol_term_decay", "aci_calm_floor_horizon", "aci_calm_ratio", "cqr_vol_edges"):
        del old.config.__dict__[name]
    start = features.index.get_level_values("date").unique()[-40]
    pd.testing.assert_frame_equal(
        old.predict_online(features, prices, start), model.predict_online(features, prices, start)
    )
    assert np.array_equal(old.predict(features).to_numpy(), model.predict(features).to_numpy())


def test_floor_acts_only_in_the_calm_regime(data, default_model, monkeypatch):
    # The floor acts on the calibrated levels: compare them before the path repair, whose
    # envelope carries earlier days' widths forward (training.paths).
    monkeypatch.setattr(forecaster_module, "repair_frame", lambda frame: frame)
    prices, features = data
    start = features.index.get_level_values("date").unique()[-40]
    expected = default_model.predict_online(features, prices, start)
    never_calm = _with(default_model, aci_calm_floor_horizon=10, aci_calm_ratio=1e-6)
    pd.testing.assert_frame_equal(never_calm.predict_online(features, prices, start), expected)
    always_calm = _with(default_model, aci_calm_floor_horizon=10, aci_calm_ratio=1e6)
    for frame in (
        always_calm.predict_online(features, prices, start),
        always_calm.predict(features),
    ):
        cqr = always_calm.predict(
            features.loc[features.index.isin(frame.index.droplevel(2))], adaptive=False
        )
        for h in (10, 21, 30):
            width = (frame[0.95] - frame[0.05]).xs(h, level="horizon")
            floor = (cqr[0.95] - cqr[0.05]).xs(h, level="horizon").reindex(width.index)
            assert (width >= floor - 1e-12).all()


def test_term_structure_model_keeps_one_day_forecasts_on_todays_vol(data):
    _, features = data
    model = _fit(data, vol_term_decay=0.98)
    assert set(model.long_run_vol_) == {"T0", "T1", "T2"}
    scale = model._scale(features, model.horizons)
    sigma = np.maximum(features[SIGMA_COLUMN].to_numpy(float), model.config.min_daily_vol)
    np.testing.assert_allclose(scale[:, 0], sigma, rtol=1e-12)
    out = model.predict(features)
    assert np.isfinite(out.to_numpy()).all()
    assert (np.diff(out.to_numpy(), axis=1) > 0).all()
