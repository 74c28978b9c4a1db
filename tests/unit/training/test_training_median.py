"""The median policy: one decision per path; a model median made monotone; zero re-centred."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.median import (
    decide_median_source,
    describe_median,
    monotone_medians,
    path_source,
    per_horizon_sources,
    recentre,
)

LEVELS = [0.05, 0.5, 0.95]


def _panel(signal_at: tuple[int, ...], seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Three tickers, horizons 1-3; the median knows the outcome's signal at ``signal_at``."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2020-01-01", periods=300), ["A", "B", "C"], [1, 2, 3]],
        names=["date", "ticker", "horizon"],
    )
    signal = rng.normal(0, 0.01, len(index))
    y = pd.Series(signal + rng.normal(0, 0.01, len(index)), index=index)
    horizon = index.get_level_values("horizon")
    median = np.where(horizon.isin(signal_at), signal, rng.normal(0, 0.01, len(index)))
    frame = pd.DataFrame(
        np.stack([median - 0.02, median, median + 0.02], axis=1), index=index, columns=LEVELS
    )
    return frame, y


def test_one_decision_for_the_path() -> None:
    informed, y = _panel(signal_at=(1, 2, 3))
    source, p = decide_median_source(informed, y, [1, 2, 3], 0.05)
    assert (source, p < 1e-6) == ("model", True)
    noise, y = _panel(signal_at=())
    source, p = decide_median_source(noise, y, [1, 2, 3], 0.05)
    assert source == "zero"
    assert p > 0.5


def test_the_previous_policy_splits_the_path_where_the_new_one_cannot() -> None:
    split, y = _panel(signal_at=(2,))
    assert per_horizon_sources(split, y, [1, 2, 3], 0.05) == {1: "zero", 2: "model", 3: "zero"}
    source, _ = decide_median_source(split, y, [1, 2, 3], 0.05)
    assert source in {"model", "zero"}  # one answer for every day, whichever it is


def test_a_model_median_equal_to_zero_is_not_tested() -> None:
    frame, y = _panel(signal_at=())
    frame = frame.sub(frame[0.5], axis=0)
    assert decide_median_source(frame, y, [1, 2, 3], 0.05)[0] == "zero"


@pytest.mark.parametrize(
    ("sources", "expected"),
    [({}, "model"), ({1: "model", 2: "model"}, "model"), ({1: "zero"}, "zero")],
)
def test_path_source(sources: dict[int, str], expected: str) -> None:
    assert path_source(sources) == expected
    assert path_source({1: "zero", 2: "model"}) == "zero"  # a split decision from an old model


def test_monotone_medians_remove_the_hump_and_keep_monotone_rows() -> None:
    hump = np.array([[0.0, 0.0016, 0.0022, 0.0027, 0.0, 0.0]])
    flat = monotone_medians(hump)[0]
    steps = np.diff(flat)
    assert (steps >= 0).all() or (steps <= 0).all()
    assert flat.mean() == pytest.approx(hump.mean())  # isotonic keeps the mean of each block
    down = np.array([[0.003, 0.002, 0.002, -0.001]])
    np.testing.assert_array_equal(monotone_medians(down), down)


def _paths(medians: np.ndarray) -> pd.DataFrame:
    n, n_h = medians.shape
    index = pd.MultiIndex.from_product(
        [pd.to_datetime(["2024-01-02"]), [f"T{i}" for i in range(n)], range(1, n_h + 1)],
        names=["date", "ticker", "horizon"],
    )
    flat = medians.reshape(-1)
    width = 0.01 * np.sqrt(np.tile(np.arange(1, n_h + 1), n))
    return pd.DataFrame(
        np.stack([flat - width, flat, flat + width], 1), index=index, columns=LEVELS
    )


def test_recentre_zero_shifts_every_quantile_and_keeps_widths() -> None:
    frame = _paths(np.array([[0.001, 0.002, 0.0], [0.0, -0.001, 0.001]]))
    out = recentre(frame, dict.fromkeys((1, 2, 3), "zero"))
    assert np.allclose(out[0.5], 0.0)
    np.testing.assert_allclose(out[0.95] - out[0.05], frame[0.95] - frame[0.05])


def test_recentre_model_makes_the_median_monotone_and_moves_the_quantiles_with_it() -> None:
    frame = _paths(np.array([[0.0, 0.0016, 0.0022, 0.0027, 0.0, 0.0]]))
    out = recentre(frame, {})
    steps = np.diff(out[0.5].to_numpy())
    assert (steps >= 0).all() or (steps <= 0).all()
    np.testing.assert_allclose(out[0.95] - out[0.5], frame[0.95] - frame[0.5])
    monotone = _paths(np.array([[0.0, 0.001, 0.002]]))
    assert recentre(monotone, {}) is monotone


def test_describe_median_is_one_phrase_for_the_path() -> None:
    assert describe_median({}).startswith("model's median on the whole path")
    assert describe_median(dict.fromkeys(range(1, 31), "zero")) == (
        "zero-return baseline on the whole path (model's median not better than zero)"
    )
    assert "older per-horizon decision, read as zero" in describe_median({1: "zero", 2: "model"})
