"""The median policy: the model's median only where it beats zero; quantiles re-centred."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.median import decide_median_sources, describe_median, recentre


def _panel(seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2020-01-01", periods=300), ["A", "B", "C"], [1, 2]],
        names=["date", "ticker", "horizon"],
    )
    signal = rng.normal(0, 0.01, len(index))
    y = pd.Series(signal + rng.normal(0, 0.01, len(index)), index=index)
    horizon = index.get_level_values("horizon")
    # h=1: the median knows the signal (truly better than zero); h=2: pure noise
    median = np.where(horizon == 1, signal, rng.normal(0, 0.01, len(index)))
    frame = pd.DataFrame(
        np.stack([median - 0.02, median, median + 0.02], axis=1),
        index=index,
        columns=[0.05, 0.5, 0.95],
    )
    return frame, y


def test_the_median_is_kept_only_where_it_beats_zero() -> None:
    frame, y = _panel()
    sources, p = decide_median_sources(frame, y, [1, 2, 3], 0.05)
    assert sources == {1: "model", 2: "zero", 3: "zero"}  # h=3 has no rows: zero
    assert p[1] < 1e-6 < 0.5 < p[2]


def test_recentre_shifts_every_quantile_of_the_zero_horizons() -> None:
    frame, _ = _panel()
    out = recentre(frame, {1: "model", 2: "zero"})
    h = frame.index.get_level_values("horizon")
    assert np.allclose(out.loc[h == 2, 0.5], 0.0)
    assert np.allclose(out.loc[h == 2, 0.95] - out.loc[h == 2, 0.05], 0.04)  # widths kept
    pd.testing.assert_frame_equal(out.loc[h == 1], frame.loc[h == 1])
    assert recentre(frame, {}) is frame


def test_describe_median() -> None:
    assert describe_median({1: "zero"}) == "zero-return baseline (model not better at h=1)"
    assert describe_median({h: "model" for h in (1, 2)}) == "model"
    assert describe_median({1: "zero", 2: "zero", 3: "zero", 4: "model", 5: "zero"}) == (
        "zero-return baseline at h=1-3,5 (model not better there); model at h=4"
    )
