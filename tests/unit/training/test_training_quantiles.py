"""The quantile-frame format: layout, horizon interpolation, prob_gain, price conversion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from training.quantiles import (
    interpolate_horizons,
    make_quantile_frame,
    prob_gain,
    to_price_quantiles,
)

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def _origins(n=2):
    dates = pd.to_datetime(["2024-01-02"] * n)
    return pd.MultiIndex.from_arrays([dates, [f"T{i}" for i in range(n)]], names=["date", "ticker"])


def test_frame_layout_and_rearrangement():
    values = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5)
    values[0, 0] = [5, 4, 3, 2, 1]  # crossed quantiles get sorted
    frame = make_quantile_frame(_origins(), values, [1, 2, 3], LEVELS)
    assert frame.index.names == ["date", "ticker", "horizon"]
    assert list(frame.columns) == list(LEVELS)
    assert frame.shape == (6, 5)
    np.testing.assert_allclose(frame.iloc[0], [1, 2, 3, 4, 5])
    assert (np.diff(frame.to_numpy(), axis=1) >= 0).all()
    with pytest.raises(ValueError, match="does not match"):
        make_quantile_frame(_origins(), values, [1, 2], LEVELS)


def test_interpolation_is_exact_at_anchors_and_linear_between():
    anchors = [1, 5, 10]
    values = np.array([[[1.0], [5.0], [0.0]]])
    out = interpolate_horizons(values, anchors, range(1, 11))
    np.testing.assert_allclose(out[0, :, 0], [1, 2, 3, 4, 5, 4, 3, 2, 1, 0])
    with pytest.raises(ValueError, match="within anchors"):
        interpolate_horizons(values, anchors, [11])


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1.0), (0.3, 1.0), (-0.5, 2.0), (4.0, 1.0)])
def test_prob_gain_is_exact_for_a_normal_forecast(mu, sigma):
    values = mu + sigma * norm.ppf(LEVELS)
    frame = make_quantile_frame(_origins(1), values[None, None, :], [1], LEVELS)
    assert prob_gain(frame).iloc[0] == pytest.approx(norm.sf(0, mu, sigma), abs=1e-9)


def test_an_all_zero_grid_says_nothing_about_the_direction():
    values = np.zeros((1, 1, 5))
    frame = make_quantile_frame(_origins(1), values, [1], LEVELS)
    assert prob_gain(frame).iloc[0] == pytest.approx(0.5, abs=1e-12)  # a point mass at 0


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        ([-0.02, -0.01, 0.0, 0.01, 0.02], 0.5),  # a median of exactly 0
        ([-0.02, 0.0, 0.0, 0.01, 0.02], norm.sf((norm.ppf(0.25) + 0.0) / 2)),  # ties at 0
        ([0.0, 0.0, 0.0, 0.0, 0.0], 0.5),
        ([0.0, 0.01, 0.02, 0.03, 0.04], norm.sf(norm.ppf(0.05))),  # q05 on zero: 95% gain
        ([-0.04, -0.03, -0.02, -0.01, 0.0], norm.sf(norm.ppf(0.95))),
    ],
)
def test_prob_gain_on_grids_touching_zero(grid, expected):
    frame = make_quantile_frame(_origins(1), np.array([[grid]]), [1], LEVELS)
    assert prob_gain(frame).iloc[0] == pytest.approx(expected, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(-0.5, 0.5, allow_nan=False, allow_subnormal=False), min_size=5, max_size=5
    ).map(sorted),
    st.sampled_from([0, 1, 2, 3, 4]),
)
def test_prob_gain_agrees_with_the_median(grid, tied):
    if tied != 2:  # some grids with a quantile exactly on zero
        grid = [0.0 if i == tied else v for i, v in enumerate(grid)]
        grid = sorted(grid)
    frame = make_quantile_frame(_origins(1), np.array([[grid]]), [1], LEVELS)
    p, median = prob_gain(frame).iloc[0], grid[2]
    assert 0.0 <= p <= 1.0
    if median > 0:
        assert p >= 0.5
    elif median < 0:
        assert p <= 0.5
    else:
        assert p == pytest.approx(0.5) or grid[1] == 0.0 or grid[3] == 0.0


def test_price_quantiles_scale_the_last_price():
    frame = make_quantile_frame(_origins(1), np.log([[[0.9, 0.95, 1.0, 1.05, 1.1]]]), [3], LEVELS)
    last = pd.Series([100.0], index=_origins(1))
    prices = to_price_quantiles(frame, last)
    np.testing.assert_allclose(prices.iloc[0], [90, 95, 100, 105, 110])
    with pytest.raises(ValueError, match="last_price is missing"):
        to_price_quantiles(frame, last.iloc[0:0])
