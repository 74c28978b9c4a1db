"""The feature test: the model against itself with its non-volatility features permuted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import BoosterParams, TrainingConfig
from training.features import (
    FEATURE_COLUMNS,
    SIGMA_COLUMN,
    VOLATILITY_COLUMNS,
    build_features,
)
from training.forecaster import QuantileForecaster
from training.permutation import (
    feature_permutation_test,
    flatten_feature_test,
    permute_features,
)

CONFIG = TrainingConfig(
    anchor_horizons=(1, 5, 30),
    booster=BoosterParams(n_estimators=20, min_child_weight=50, n_jobs=1),
    calibration_days=252,
    min_train_days=252,
)


@pytest.fixture(scope="module")
def data(small_prices):
    features = build_features(small_prices)
    return small_prices, features, QuantileForecaster(CONFIG).fit(features, small_prices)


def test_the_volatility_columns_are_features_and_include_the_target_scale() -> None:
    assert set(VOLATILITY_COLUMNS) <= set(FEATURE_COLUMNS)
    assert SIGMA_COLUMN in VOLATILITY_COLUMNS


def test_permutation_moves_whole_vectors_after_start_and_keeps_volatility(data) -> None:
    _, features, _ = data
    start = features.index.get_level_values("date")[-2000]
    permuted = permute_features(features, start, np.random.default_rng(3))
    after = features.index.get_level_values("date") >= start
    moved = [c for c in features.columns if c not in VOLATILITY_COLUMNS]

    pd.testing.assert_frame_equal(permuted.loc[~after], features.loc[~after])
    pd.testing.assert_frame_equal(
        permuted[list(VOLATILITY_COLUMNS)], features[list(VOLATILITY_COLUMNS)]
    )
    # every permuted row is some original row's non-volatility vector, all columns together
    original = {tuple(row) for row in features.loc[after, moved].to_numpy().round(12)}
    shuffled = [tuple(row) for row in permuted.loc[after, moved].to_numpy().round(12)]
    assert all(row in original for row in shuffled)
    assert (permuted.loc[after, moved].to_numpy() != features.loc[after, moved].to_numpy()).any()
    again = permute_features(features, start, np.random.default_rng(3))
    pd.testing.assert_frame_equal(again, permuted)  # seeded: the verdict is reproducible


def test_nothing_permuted_means_no_evidence(data) -> None:
    prices, features, model = data
    results = feature_permutation_test(
        model, features, prices, CONFIG, 126, (1, 5), permutations=2, keep=tuple(features.columns)
    )
    assert set(results) == {1, 5}
    for r in results.values():
        assert r.relative == 0.0
        assert r.identical  # no forecast changed: not a test, and no number pretends it was
    metrics = flatten_feature_test(results)
    assert metrics["h5_features_dm_identical"] == 1.0
    assert "h5_features_dm_p" not in metrics
    assert "h5_features_dm" not in metrics
    assert metrics["h5_features_dm_n"] == results[5].n > 100


def test_the_median_policy_does_not_hide_the_features(data) -> None:
    prices, features, model = data
    zero = {h: "zero" for h in model.horizons}
    served_zero = QuantileForecaster(CONFIG)
    served_zero.__dict__.update(model.__dict__, median_sources_=zero)
    own = feature_permutation_test(model, features, prices, CONFIG, 126, (5,), permutations=1)
    hidden = feature_permutation_test(
        served_zero, features, prices, CONFIG, 126, (5,), permutations=1
    )
    assert hidden[5] == own[5]  # tested on the model's own median either way
    assert served_zero.median_sources_ == zero  # and the model passed in is left as it was


def test_bad_arguments_are_refused(data) -> None:
    prices, features, model = data
    with pytest.raises(ValueError, match="permutations must be >= 1"):
        feature_permutation_test(model, features, prices, CONFIG, 126, (1,), permutations=0)
    with pytest.raises(ValueError, match="not fitted"):
        feature_permutation_test(QuantileForecaster(CONFIG), features, prices, CONFIG, 126, (1,))
