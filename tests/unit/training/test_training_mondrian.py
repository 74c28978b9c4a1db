"""Mondrian CQR by volatility bucket: each bucket covers its own calibration rows; off by
default, and with one bucket it is pooled CQR."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from tests.unit.training.conftest import random_prices
from training.config import BoosterParams, TrainingConfig
from training.conformal import IntervalCalibrator, lookup_scores, run_aci
from training.features import build_features
from training.forecaster import QuantileForecaster
from training.mondrian import bucket_offsets, vol_buckets

TAUS = (0.05, 0.25, 0.5, 0.75, 0.95)


def test_buckets_are_cut_at_the_edges() -> None:
    ratio = np.array([0.2, 0.8, 0.81, 1.0, 1.25, 3.0])
    assert vol_buckets(ratio, (0.8, 1.25)).tolist() == [0, 1, 1, 1, 2, 2]


def _two_regimes(n: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same raw forecasts for all rows; outcomes half as wide in bucket 0, twice in 1."""
    rng = np.random.default_rng(3)
    buckets = (np.arange(n) % 2).astype(int)
    outcomes = rng.standard_normal(n) * np.where(buckets == 0, 0.5, 2.0)
    return np.tile(norm.ppf(TAUS), (n, 1)), outcomes, buckets


def coverage(calibrator, raw, y, levels) -> np.ndarray:
    out = calibrator.apply(raw, levels)
    return np.array([((out[:, lo] <= y) & (y <= out[:, hi])).mean() for lo, hi in calibrator.pairs])


def test_each_bucket_covers_its_own_rows_where_the_pooled_width_does_not() -> None:
    raw, y, buckets = _two_regimes()
    calibrator = IntervalCalibrator.fit(raw, y, TAUS)
    offsets = bucket_offsets(calibrator, raw, y, buckets, 2)
    nominal = calibrator.nominal_levels()
    target = np.asarray(calibrator.coverages)
    for b in (0, 1):
        rows = buckets == b
        pooled = coverage(calibrator, raw[rows], y[rows], nominal)
        own = coverage(calibrator, raw[rows], y[rows], nominal + offsets[b])
        assert abs(pooled[0] - target[0]) > 0.05  # calm over-covered, stormy under-covered
        np.testing.assert_allclose(own, target, atol=0.01)
    assert (offsets[0] < 0).all()
    assert (offsets[1] > 0).all()
    # the looked-up width of a bucket is its own conformal score quantile
    width = lookup_scores(calibrator.sorted_scores, nominal + offsets[1])
    mine = IntervalCalibrator.fit(raw[buckets == 1], y[buckets == 1], TAUS)
    uppers = [hi for _, hi in calibrator.pairs]
    np.testing.assert_allclose(width, mine.apply(raw[:1])[0, uppers] - raw[0, uppers], rtol=0.02)


def test_a_bucket_with_too_few_rows_keeps_the_pooled_width() -> None:
    raw, y, buckets = _two_regimes()
    buckets = np.where(np.arange(len(y)) < 10, 2, buckets)  # ten rows in bucket 2
    offsets = bucket_offsets(IntervalCalibrator.fit(raw, y, TAUS), raw, y, buckets, 3)
    assert (offsets[2] == 0).all()


def test_aci_issues_its_state_plus_the_offset_and_adapts_without_it() -> None:
    raw, y, _ = _two_regimes(400)
    calibrator = IntervalCalibrator.fit(raw, y, TAUS)
    reveal = np.arange(len(y)) + 5
    free, state = run_aci(calibrator, raw, y, reveal, gamma=0.01)
    zero, zero_state = run_aci(calibrator, raw, y, reveal, gamma=0.01, offsets=np.zeros((400, 2)))
    np.testing.assert_array_equal(free, zero)
    np.testing.assert_array_equal(state, zero_state)
    shifted, _ = run_aci(calibrator, raw, y, reveal, gamma=0.01, offsets=np.full((400, 2), 0.02))
    assert shifted[0] == pytest.approx(calibrator.nominal_levels() + 0.02)


def test_config_validates_the_edges() -> None:
    assert TrainingConfig().cqr_vol_edges is None
    with pytest.raises(ValueError, match="cqr_vol_edges"):
        TrainingConfig(cqr_vol_edges=(1.2, 0.8))
    with pytest.raises(ValueError, match="cqr_vol_edges"):
        TrainingConfig(cqr_vol_edges=(0.0, 1.0))


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    prices = random_prices(0, days=560)
    return prices, build_features(prices)


def test_a_forecaster_with_buckets_serves_each_buckets_width(data) -> None:
    prices, features = data
    small = {
        "booster": BoosterParams(n_estimators=8, min_child_weight=20, n_jobs=1),
        "calibration_days": 120,
        "min_train_days": 120,
        "calibration": "cqr",
    }
    pooled = QuantileForecaster(TrainingConfig(**small)).fit(features, prices)
    assert pooled.bucket_offsets_ == {}
    edges = (1.0,)
    model = QuantileForecaster(TrainingConfig(**small, cqr_vol_edges=edges)).fit(features, prices)
    assert set(model.bucket_offsets_) == set(model.anchors)
    assert all(o.shape == (2, 2) for o in model.bucket_offsets_.values())
    # the boosters and pooled scores are the same: only the buckets' levels differ
    window = features.loc[features.index.get_level_values("date") >= model.calibration_start_]
    buckets = model._buckets(window)
    assert buckets is not None
    assert set(np.unique(buckets)) == {0, 1}
    same, other = (model.predict(window), pooled.predict(window))
    assert not same.equals(other)
    one = QuantileForecaster(TrainingConfig(**small, cqr_vol_edges=(1e9,))).fit(features, prices)
    np.testing.assert_allclose(one.predict(window).to_numpy(), other.to_numpy(), atol=1e-9)
