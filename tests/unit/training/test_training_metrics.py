"""Metrics on hand-computed tiny cases, coverage breakdowns and the leakage tripwire."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import TrainingConfig
from training.metrics import (
    LeakageError,
    assert_no_leakage,
    check_leakage,
    coverage_breakdown,
    miss_breakdown,
    pinball_losses,
    rank_ic,
    score_forecasts,
    winkler_scores,
)

CONFIG = TrainingConfig(
    max_horizon=1, anchor_horizons=(1,), quantiles=(0.05, 0.5, 0.95), eval_horizons=(1,)
)


def _tiny():
    index = pd.MultiIndex.from_tuples(
        [(pd.Timestamp("2023-01-02"), "A", 1), (pd.Timestamp("2024-01-02"), "B", 1)],
        names=["date", "ticker", "horizon"],
    )
    forecasts = pd.DataFrame(
        [[-1.0, 0.0, 1.0], [-1.0, 0.2, 1.0]], index=index, columns=[0.05, 0.5, 0.95]
    )
    outcomes = pd.Series([0.5, -3.0], index=index)
    return forecasts, outcomes


def test_scores_match_hand_computation():
    forecasts, outcomes = _tiny()
    scores = score_forecasts(forecasts, outcomes, CONFIG).loc[1]
    assert scores.n == 2
    assert scores.mae_ratio == pytest.approx(3.7 / 3.5)
    assert scores.r2_oos == pytest.approx(1 - 10.49 / 9.25)
    assert scores.pinball == pytest.approx((0.35 / 3 + 3.7 / 3) / 2)
    assert scores.winkler == pytest.approx((2 + 42) / 2)
    assert scores.coverage == pytest.approx(0.5)
    assert scores.width == pytest.approx(2.0)
    assert scores.directional_accuracy == pytest.approx(0.5)
    assert scores.up_rate == pytest.approx(0.5)
    assert np.isnan(scores.rank_ic)  # one ticker per date: no cross-section to rank


def test_pinball_and_winkler_rows():
    forecasts, outcomes = _tiny()
    np.testing.assert_allclose(pinball_losses(forecasts, outcomes.to_numpy()), [0.35 / 3, 3.7 / 3])
    np.testing.assert_allclose(
        winkler_scores(np.array([-1.0, -1.0]), np.array([1.0, 1.0]), np.array([0.5, 3.0]), 0.1),
        [2.0, 42.0],
    )


def test_rank_ic_averages_daily_spearman_and_skips_thin_dates():
    rows = [
        ("d1", "A", 1, 10),
        ("d1", "B", 2, 20),
        ("d1", "C", 3, 30),
        ("d2", "A", 1, 3),
        ("d2", "B", 2, 2),
        ("d2", "C", 3, 1),
        ("d3", "A", 1, 1),
        ("d3", "B", 2, 2),  # two tickers: skipped
        ("d4", "A", 1, 5),
        ("d4", "B", 1, 2),
        ("d4", "C", 1, 9),  # constant forecast: skipped
    ]
    frame = pd.DataFrame(rows, columns=["date", "ticker", "f", "y"]).set_index(["date", "ticker"])
    assert rank_ic(frame.f, frame.y) == pytest.approx(0.0)
    assert rank_ic(frame.f.loc[["d1"]], frame.y.loc[["d1"]]) == pytest.approx(1.0)
    assert np.isnan(rank_ic(frame.f.loc[["d3"]], frame.y.loc[["d3"]]))


def test_coverage_breakdown_groups():
    forecasts, outcomes = _tiny()
    sigma = pd.Series([0.01, 0.03], index=forecasts.index.droplevel("horizon"))
    table = coverage_breakdown(forecasts, outcomes, sigma, CONFIG)
    by = table.set_index(["group", "key"])["coverage"]
    assert by[("pooled", "all")] == pytest.approx(0.5)
    assert by[("year", "2023")] == 1.0
    assert by[("year", "2024")] == 0.0
    assert by[("ticker", "B")] == 0.0
    assert by[("vol_tercile", "low")] == 1.0
    assert by[("vol_tercile", "high")] == 0.0


def test_miss_breakdown_sides_and_vol_surprise():
    forecasts, outcomes = _tiny()
    sigma = pd.Series([0.5, 1.5], index=forecasts.index.droplevel("horizon"))
    table = miss_breakdown(forecasts, outcomes, sigma, CONFIG)
    first, second = table.loc[(1, "2023-01")], table.loc[(1, "2024-01")]
    assert (first.n, first.coverage, first.below, first.above) == (1, 1.0, 0.0, 0.0)
    assert first.rms_z == pytest.approx(1.0)  # 0.5 / (0.5 * sqrt(1))
    assert (second.coverage, second.below, second.above) == (0.0, 1.0, 0.0)
    assert second.rms_z == pytest.approx(2.0)  # |-3| / 1.5


def test_scoring_without_any_outcome_fails():
    forecasts, outcomes = _tiny()
    with pytest.raises(ValueError, match="no forecast row has a known outcome"):
        score_forecasts(forecasts, outcomes * np.nan, CONFIG)


def _scores(**values):
    row = {"mae_ratio": 0.999, "directional_accuracy": 0.52, "r2_oos": 0.001, "rank_ic": 0.01}
    row.update(values)
    return pd.DataFrame([row], index=pd.Index([1], name="horizon"))


def test_tripwire_passes_honest_scores():
    assert check_leakage(_scores(), CONFIG) == []
    assert_no_leakage(_scores(), CONFIG)


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"mae_ratio": 0.95}, "mae_ratio"),
        ({"directional_accuracy": 0.60}, "directional_accuracy"),
        ({"r2_oos": 0.05}, "r2_oos"),
        ({"rank_ic": 0.2}, "rank_ic"),
    ],
)
def test_tripwire_trips_on_each_too_good_score(values, name):
    reasons = check_leakage(_scores(**values), CONFIG)
    assert len(reasons) == 1
    assert name in reasons[0]
    with pytest.raises(LeakageError, match=name):
        assert_no_leakage(_scores(**values), CONFIG)


def test_tripwire_thresholds_come_from_config():
    lenient = CONFIG.model_copy(update={"tripwire_max_r2_oos": 0.10})
    assert check_leakage(_scores(r2_oos=0.05), lenient) == []
    with pytest.raises(ValueError, match="tripwire horizon"):
        check_leakage(_scores().rename(index={1: 5}), CONFIG)
