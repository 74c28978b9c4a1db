"""The gate's error rates on real models: look-alike refits pass, shuffled-feature ones do not.

The refit path of the train job on the bundled sample: a champion, then candidates of the same
configuration (other seeds, training windows shifted back) judged by the train job's own
comparison with the champion on the latest days (``versus_champion_recent``) and its feature
test (``feature_evidence``). Calibration and the EWMA-normal check come from the two-year
walk-forward, minutes per candidate: they are held as passed, so the verdict isolates the rest.
``python -m benchmarks.gate_errors`` measures the same with more draws (docs/model.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsimples.settings import Settings
from jobs.evidence import feature_evidence, versus_champion_recent
from registry.gate import GateVerdict, evaluate_gate
from tests.champion import SMALL, TICKERS
from training.features import build_features
from training.forecaster import QuantileForecaster

pytestmark = pytest.mark.integration
LOOK_ALIKES = 6
SETTINGS = Settings(training=SMALL)
CALIBRATED = {  # what a passed walk-forward logs at each gated horizon
    f"h{h}_{name}": value
    for h in SETTINGS.gate.horizons
    for name, value in (
        ("coverage", 0.9),
        ("coverage_worst_year", 0.9),
        ("coverage_worst_ticker", 0.9),
        ("dm_pinball_vs_ewma_normal", 0.0),
        ("dm_pinball_vs_ewma_normal_p", 0.5),
    )
}


@pytest.fixture(scope="module")
def panel(sample_wide: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    wide = sample_wide.loc[
        (sample_wide["Date"] >= "2005-01-01") & (sample_wide["Date"] <= "2022-11-30"),
        ["Date", *TICKERS],
    ]
    long = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close").dropna()
    prices = long.rename(columns={"Date": "date"}).reset_index(drop=True)
    return prices, build_features(prices)


def fitted(
    config_seed: int, features: pd.DataFrame, prices: pd.DataFrame, end: pd.Timestamp
) -> QuantileForecaster:
    booster = SMALL.booster.model_copy(update={"seed": config_seed})
    dates = features.index.get_level_values("date")
    return QuantileForecaster(SMALL.model_copy(update={"booster": booster})).fit(
        features.loc[dates <= end], prices.loc[prices["date"] <= end]
    )


def verdict(
    candidate: QuantileForecaster,
    champion: QuantileForecaster,
    prices: pd.DataFrame,
    features: pd.DataFrame,
) -> GateVerdict:
    metrics = CALIBRATED | versus_champion_recent(candidate, champion, features, prices, SETTINGS)
    metrics |= feature_evidence(candidate, features, prices, SETTINGS)
    return evaluate_gate(metrics, {}, SETTINGS.gate)


def test_look_alike_refits_pass_and_shuffled_features_are_blocked_for_that(panel) -> None:
    prices, features = panel
    dates = features.index.get_level_values("date").unique().sort_values()
    end = dates[-SETTINGS.gate_recent_days - 1]  # the champion never saw the scored days
    champion = fitted(0, features, prices, end)

    look_alikes = [
        verdict(
            fitted(seed, features, prices, dates[-SETTINGS.gate_recent_days - 1 - 5 * seed]),
            champion,
            prices,
            features,
        )
        for seed in range(1, LOOK_ALIKES + 1)
    ]
    blocked = [v.summary() for v in look_alikes if not v.passed]
    assert len(blocked) / LOOK_ALIKES <= 0.05, blocked  # the goal: at most 5%

    rng = np.random.default_rng(0)
    for seed in (100, 101):
        rows = rng.permutation(len(features))
        shuffled = pd.DataFrame(
            features.to_numpy()[rows], index=features.index, columns=features.columns
        )
        broken = verdict(fitted(seed, shuffled, prices, end), champion, prices, features)
        assert not broken.passed
        assert any(r.startswith("the features carry no information") for r in broken.reasons)
