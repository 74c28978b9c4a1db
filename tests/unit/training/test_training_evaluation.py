"""Walk-forward: blocks, what each fit may see, the headline table, the leakage tripwire."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
import pytest

from training.baselines import EwmaNormalBaseline
from training.config import BoosterParams, TrainingConfig
from training.evaluation import make_blocks, run_backtest, score_recent, summarize_backtest
from training.features import build_features
from training.forecaster import QuantileForecaster
from training.targets import build_targets

CONFIG = TrainingConfig(
    booster=BoosterParams(n_estimators=20, min_child_weight=50, n_jobs=1),
    calibration_days=252,
    min_train_days=252,
)
METHODS = {"model": QuantileForecaster, "ewma_normal": EwmaNormalBaseline}


class SpyBaseline(EwmaNormalBaseline):
    """EWMA-normal that records the last date of everything it was fitted on."""

    seen: ClassVar[list[tuple[pd.Timestamp, pd.Timestamp]]] = []

    def fit(self, features, prices):
        SpyBaseline.seen.append((features.index.get_level_values("date").max(), prices.date.max()))
        return self


def test_blocks_follow_the_refit_period():
    dates = pd.bdate_range("2015-01-01", "2016-12-31")
    blocks = make_blocks(dates, pd.Timestamp("2015-01-01"), pd.Timestamp("2017-01-01"), 6)
    assert [b[0].strftime("%Y-%m") for b in blocks] == ["2015-01", "2015-07", "2016-01", "2016-07"]
    assert blocks[-1][1] == pd.Timestamp("2017-01-01")


def test_each_fit_sees_nothing_from_its_test_block(small_prices):
    SpyBaseline.seen = []
    config = CONFIG.model_copy(update={"refit_months": 6})
    result = run_backtest(
        small_prices, config, "2015-01-01", "2016-01-01", methods={"spy": SpyBaseline}
    )
    starts = list(result.blocks.test_start)
    assert len(SpyBaseline.seen) == len(starts) == 2
    for (feature_end, price_end), start in zip(SpyBaseline.seen, starts, strict=True):
        assert feature_end < start
        assert price_end < start
    # so every training label (log P[t+h] / P[t]) ends before the test block: a purge of >= h days
    cut = small_prices[small_prices.date < starts[1]]
    labels = build_targets(cut, 30)
    last_origin = labels[30].dropna().index.get_level_values("date").max()
    assert (small_prices.date.sort_values().unique() > last_origin).sum() >= 30


@pytest.fixture(scope="module")
def honest(small_prices):
    return run_backtest(small_prices, CONFIG, "2015-01-01", "2016-01-01", methods=METHODS)


def test_backtest_scores_every_method_and_horizon(honest):
    assert set(honest.forecasts) == {"model_cqr", "model_aci", "ewma_normal"}
    horizons = honest.scores.index.get_level_values("horizon")
    assert sorted(horizons.unique()) == list(range(1, 31))
    table = summarize_backtest(honest, (1, 5, 21), "ewma_normal")
    assert table.loc[("ewma_normal", 1), "pinball_gain"] == 0.0
    assert table["coverage"].between(0.75, 1.0).all()
    assert {"worst_year", "worst_ticker", "mae_ratio"} <= set(table.columns)
    assert honest.leakage == {"model_cqr": [], "model_aci": [], "ewma_normal": []}
    groups = set(honest.coverage.group)
    assert groups == {"pooled", "year", "ticker", "vol_tercile"}


def test_tripwire_flags_a_model_that_sees_the_future(small_prices):
    features = build_features(small_prices)
    future = build_targets(small_prices, 1)[1].reindex(features.index)
    leaky = features.assign(peek=future.fillna(0.0))
    result = run_backtest(
        small_prices, CONFIG, "2015-01-01", "2016-01-01", methods=METHODS, features=leaky
    )
    assert result.leakage["ewma_normal"] == []
    for name in ("model_cqr", "model_aci"):
        reasons = " ".join(result.leakage[name])
        assert "mae_ratio" in reasons
        assert "directional_accuracy" in reasons
    da = result.scores.loc[("model_aci", 1), "directional_accuracy"]
    assert da > 0.8


class SpyForecaster(QuantileForecaster):
    """The forecaster, recording the last date of everything each update was given."""

    updates: ClassVar[list[tuple[pd.Timestamp, pd.Timestamp]]] = []

    def update(self, features, prices, **engine):
        SpyForecaster.updates.append(
            (features.index.get_level_values("date").max(), prices.date.max())
        )
        return super().update(features, prices, **engine)


def test_incremental_updates_between_refits_see_only_the_past(small_prices):
    SpyForecaster.updates = []
    config = CONFIG.model_copy(update={"refit_months": 6, "update_months": 2})
    result = run_backtest(
        small_prices, config, "2015-01-01", "2016-01-01", methods={"model": SpyForecaster}
    )
    # Each 6-month block: a refit, then updates at the start of months 3 and 5.
    assert list(result.blocks.updates) == [2, 2]
    starts = ["2015-03-01", "2015-05-01", "2015-09-01", "2015-11-01"]
    assert len(SpyForecaster.updates) == len(starts)
    for (feature_end, price_end), start in zip(SpyForecaster.updates, starts, strict=True):
        assert feature_end < pd.Timestamp(start)
        assert price_end < pd.Timestamp(start)
    # every test date is forecast exactly once, by the model as updated at that time
    aci = result.forecasts["model_aci"]
    assert not aci.index.duplicated().any()
    dates = aci.index.get_level_values("date")
    assert dates.min() >= pd.Timestamp("2015-01-01")
    assert dates.max() < pd.Timestamp("2016-01-01")
    assert result.scores.loc[("model_aci", 1), "coverage"] == pytest.approx(0.9, abs=0.06)


def test_recent_scores_compare_models_on_the_same_rows(small_prices):
    features = build_features(small_prices)
    model = QuantileForecaster(CONFIG).fit(features, small_prices)
    scores = score_recent({"a": model, "b": model}, features, small_prices, CONFIG, days=126)
    a, b = scores.xs("a", level="method"), scores.xs("b", level="method")
    pd.testing.assert_frame_equal(a, b)
    # at horizon h the last h dates have no outcome yet: 126 - h origins per ticker
    assert a.loc[1, "n"] == 4 * 125
    assert a.loc[30, "n"] == 4 * 96
    with pytest.raises(ValueError, match="recent scoring needs 5000 feature dates"):
        score_recent({"a": model}, features, small_prices, CONFIG, days=5000)


def test_empty_test_span_is_rejected(small_prices):
    with pytest.raises(ValueError, match="no feature dates in the test span"):
        run_backtest(small_prices, CONFIG, "2030-01-01", "2031-01-01", methods=METHODS)
