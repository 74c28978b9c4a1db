"""Conformal calibration reaches nominal coverage on synthetic data with known quantiles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from training.conformal import (
    MIN_CALIBRATION_ROWS,
    IntervalCalibrator,
    conformal_level,
    interval_pairs,
    lookup_scores,
    run_aci,
)

TAUS = (0.05, 0.25, 0.5, 0.75, 0.95)


def _draw(rng, n, scale=1.0):
    """Heteroscedastic data and a too-narrow raw quantile model of it (true law known)."""
    x = rng.uniform(0, 1, n)
    centre, spread = np.sin(2 * np.pi * x), 0.2 + x
    y = centre + scale * spread * rng.standard_normal(n)
    raw = centre[:, None] + 0.6 * spread[:, None] * norm.ppf(TAUS)[None, :]
    return raw, y


def _covered(q, y):
    """Coverage of the 90% and the 50% interval."""
    return np.array(
        [np.mean((y >= q[:, 0]) & (y <= q[:, 4])), np.mean((y >= q[:, 1]) & (y <= q[:, 3]))]
    )


def test_pairs_and_levels():
    assert interval_pairs(TAUS) == [(0, 4), (1, 3)]
    with pytest.raises(ValueError, match="no mirror"):
        interval_pairs((0.1, 0.5, 0.95))
    # n = 19: k = ceil(20 * 0.9) = 18 -> level 17/18; n = 9: k = ceil(10 * 0.95) = 10 > 9 -> max
    assert conformal_level(0.9, 19) == pytest.approx(17 / 18)
    assert conformal_level(0.95, 9) == 1.0


def test_lookup_interpolates_between_order_statistics():
    sorted_scores = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0]])
    got = lookup_scores(sorted_scores, np.array([[0.25, 1.0], [0.0, 0.5]]))
    np.testing.assert_allclose(got, [[0.5, 30.0], [0.0, 20.0]])


def test_cqr_reaches_nominal_coverage_over_many_draws():
    rng = np.random.default_rng(0)
    raw_cover, calibrated_cover = [], []
    for _ in range(300):
        calibrator = IntervalCalibrator.fit(*_draw(rng, 500), TAUS)
        raw, y = _draw(rng, 2000)
        fixed = calibrator.apply(raw)
        raw_cover.append(_covered(raw, y))
        calibrated_cover.append(_covered(fixed, y))
        np.testing.assert_array_equal(fixed[:, 2], raw[:, 2])  # the median is not moved
    raw_mean, calibrated_mean = np.mean(raw_cover, axis=0), np.mean(calibrated_cover, axis=0)
    assert raw_mean[0] < 0.80  # the raw model is badly miscalibrated ...
    np.testing.assert_allclose(calibrated_mean, [0.90, 0.50], atol=0.01)  # ... CQR fixes it
    assert calibrated_mean[0] >= 0.895  # the finite-sample guarantee (up to Monte Carlo noise)


def test_aci_holds_coverage_through_a_shift_with_delayed_outcomes():
    rng = np.random.default_rng(1)
    calibrator = IntervalCalibrator.fit(*_draw(rng, 2000), TAUS)
    steps, delay = 20_000, 5
    raw_a, y_a = _draw(rng, steps // 2)
    raw_b, y_b = _draw(rng, steps // 2, scale=1.5)  # the spread grows after calibration
    raw, y = np.vstack([raw_a, raw_b]), np.concatenate([y_a, y_b])
    reveal = np.arange(steps) + delay

    used, final = run_aci(calibrator, raw, y, reveal, gamma=0.01)
    late = slice(steps // 2, None)
    adaptive = _covered(calibrator.apply(raw, used)[late], y[late])
    fixed = _covered(calibrator.apply(raw)[late], y[late])

    assert fixed[0] < 0.85  # split conformal breaks under the shift ...
    np.testing.assert_allclose(adaptive, [0.90, 0.50], atol=0.015)  # ... ACI adapts
    assert (final > calibrator.nominal_levels()).all()  # both intervals widened
    np.testing.assert_allclose(used[0], calibrator.nominal_levels())


def test_aci_waits_for_outcomes_to_be_revealed():
    rng = np.random.default_rng(2)
    calibrator = IntervalCalibrator.fit(*_draw(rng, 200), TAUS)
    raw, y = _draw(rng, 50)
    used, final = run_aci(calibrator, raw, y, np.full(50, 50), gamma=0.05)
    np.testing.assert_allclose(used, np.broadcast_to(calibrator.nominal_levels(), used.shape))
    np.testing.assert_allclose(final, calibrator.nominal_levels())


def test_calibration_rejects_too_few_rows_or_bad_shapes():
    rng = np.random.default_rng(3)
    raw, y = _draw(rng, MIN_CALIBRATION_ROWS - 1)
    with pytest.raises(ValueError, match="at least 20 rows"):
        IntervalCalibrator.fit(raw, y, TAUS)
    with pytest.raises(ValueError, match="shape"):
        IntervalCalibrator.fit(raw[:, :2], y, TAUS)
