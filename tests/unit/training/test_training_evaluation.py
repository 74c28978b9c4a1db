"""Walk-forward: blocks, what each fit may see, the headline table, the leakage tripwire."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
import pytest

from training.baselines import EwmaNormalBaseline
from training.config import BoosterParams, TrainingConfig
from training.evaluation import make_blocks, run_backtest, summarize_backtest
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


def test_empty_test_span_is_rejected(small_prices):
    with pytest.raises(ValueError, match="no feature dates in the test span"):
        run_backtest(small_prices, CONFIG, "2030-01-01", "2031-01-01", methods=METHODS)
