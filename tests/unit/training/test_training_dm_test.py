"""The Diebold-Mariano test vs a hand computation, statsmodels' HAC and its known properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from training.dm_test import (
    compare_forecasts,
    dm_test,
    evidence_p_value,
    flatten_dm,
    newey_west_variance,
    result_metrics,
)


def test_newey_west_variance_by_hand() -> None:
    d = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    e = d - d.mean()
    n = len(d)
    g0 = (e @ e) / n
    g1 = (e[1:] @ e[:-1]) / n
    g2 = (e[2:] @ e[:-2]) / n
    # h = 3 -> 2 lags, Bartlett weights 1 - k/3
    expected = g0 + 2 * (2 / 3) * g1 + 2 * (1 / 3) * g2
    assert newey_west_variance(d, 2) == pytest.approx(expected)
    assert newey_west_variance(d, 0) == pytest.approx(np.var(d))


def test_dm_statistic_matches_a_hand_computation() -> None:
    d = np.array([0.3, -0.1, 0.4, 0.2, -0.2, 0.5, 0.1, 0.0, 0.3, -0.1])
    h, n = 2, len(d)
    e = d - d.mean()
    var = (e @ e) / n + 2 * 0.5 * (e[1:] @ e[:-1]) / n
    dm = d.mean() / np.sqrt(var / n)
    hln = dm * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    result = dm_test(d, h)
    assert result.statistic == pytest.approx(hln)
    assert result.p_value == pytest.approx(stats.t.sf(hln, df=n - 1))
    assert result.n == n


def test_hac_variance_agrees_with_statsmodels() -> None:
    # The oracle must be there: a missing statsmodels fails the test instead of skipping it.
    import statsmodels.api as sm  # slow to import: only this test needs it

    rng = np.random.default_rng(3)
    d = np.convolve(rng.normal(0.05, 1, 300), np.ones(5) / 5, mode="valid")  # MA(4), like h=5
    fit = sm.OLS(d, np.ones(len(d))).fit(
        cov_type="HAC", cov_kwds={"maxlags": 4, "use_correction": False}
    )
    # statsmodels' HAC variance of the mean = long-run variance / n
    assert newey_west_variance(d, 4) / len(d) == pytest.approx(fit.cov_params()[0, 0], rel=1e-9)


def test_identical_losses_are_no_test_and_leave_no_number() -> None:
    result = dm_test(np.zeros(200), 5, reference_loss=1.0, tolerance=0.002)
    assert result.identical
    assert np.isnan(result.statistic)
    assert np.isnan(result.p_value)
    metrics = result_metrics("h1_dm_ae_vs_champion", result)
    # No statistic and no p-value: the tolerance shift once made this -inf, clipped to -1e6.
    assert metrics == {
        "h1_dm_ae_vs_champion_identical": 1.0,
        "h1_dm_ae_vs_champion_rel": 0.0,
        "h1_dm_ae_vs_champion_n": 200.0,
    }
    assert evidence_p_value(metrics, "h1_dm_ae_vs_champion") == 1.0
    assert evidence_p_value({}, "h1_dm_ae_vs_champion") is None


def test_a_constant_difference_keeps_its_p_value_but_no_infinite_statistic() -> None:
    worse = dm_test(np.full(50, 0.1), 1)
    assert not worse.identical
    assert worse.p_value == 0.0
    metrics = result_metrics("x", worse)
    assert "x" not in metrics
    assert metrics["x_p"] == 0.0
    assert all(np.isfinite(v) for v in metrics.values())


def test_a_small_sample_without_variance_is_no_evidence_not_identical() -> None:
    result = dm_test(np.array([0.0, 0.0]), 1)
    assert result.identical  # every differential is zero, however few
    assert not dm_test(np.array([0.1, -0.1]), 1).identical


def test_a_clearly_worse_series_has_a_tiny_p_value() -> None:
    rng = np.random.default_rng(0)
    worse = dm_test(rng.normal(0.5, 1.0, 500), 1)
    assert worse.statistic > 5
    assert worse.p_value < 1e-6
    better = dm_test(rng.normal(-0.5, 1.0, 500), 1)
    assert better.p_value > 0.999


def test_noise_is_significant_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(1)
    # MA(4) noise around zero at h=5: the HAC lags keep the size near 5%
    rejections = [
        dm_test(np.convolve(rng.normal(0, 1, 254), np.ones(5), mode="valid"), 5).p_value < 0.05
        for _ in range(400)
    ]
    assert 0.02 <= np.mean(rejections) <= 0.09


def test_tolerance_forgives_a_small_difference() -> None:
    rng = np.random.default_rng(2)
    d = rng.normal(0.001, 0.001, 1000)  # 0.1% of a reference loss of 1.0, very consistently
    assert dm_test(d, 1, reference_loss=1.0).p_value < 1e-6
    forgiven = dm_test(d, 1, reference_loss=1.0, tolerance=0.005)
    assert forgiven.p_value > 0.99
    assert forgiven.relative == pytest.approx(d.mean())


def _frame(values: np.ndarray, dates: pd.DatetimeIndex, horizon: int) -> pd.DataFrame:
    index = pd.MultiIndex.from_product(
        [dates, ["A", "B"], [horizon]], names=["date", "ticker", "horizon"]
    )
    return pd.DataFrame(values, index=index, columns=[0.05, 0.5, 0.95])


def test_compare_forecasts_on_shared_rows() -> None:
    rng = np.random.default_rng(4)
    dates = pd.bdate_range("2021-01-01", periods=150)
    y = pd.Series(rng.normal(0, 0.01, 300), index=_frame(np.zeros((300, 3)), dates, 1).index)
    good = _frame(np.tile([-0.0165, 0.0, 0.0165], (300, 1)), dates, 1)
    bad = good + 0.02  # shifted by two sigmas
    results = compare_forecasts(bad, good, y, (1,))
    assert results[(1, "pinball")].p_value < 1e-6
    assert results[(1, "ae")].p_value < 1e-6
    assert results[(1, "ae")].n == 150  # one differential per date
    same = compare_forecasts(good, good.copy(), y, (1,))
    assert same[(1, "pinball")].identical
    metrics = flatten_dm(results, "champion")
    assert {"h1_dm_pinball_vs_champion", "h1_dm_pinball_vs_champion_p"} <= set(metrics)
