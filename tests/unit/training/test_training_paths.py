"""Path repair: ordered quantiles and non-narrowing spreads in price terms, median untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from training.paths import count_repairs, repair_frame, repair_paths, repaired_shares

LEVELS = np.array([0.05, 0.25, 0.5, 0.75, 0.95])


def assert_path_invariants(log_q: np.ndarray, tolerance: float = 1e-12) -> None:
    """Ordered every day; q95-q05 and q75-q25 of exp(q) (price / last price) never narrow."""
    g = np.exp(log_q)
    assert (np.diff(g, axis=-1) >= -tolerance).all(), "quantiles out of order"
    for lo, hi in ((0, 4), (1, 3)):
        width = g[..., hi] - g[..., lo]
        assert (np.diff(width, axis=-1) >= -tolerance * np.maximum(1, width[..., 1:])).all()


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        float,
        st.tuples(st.integers(1, 4), st.integers(1, 12), st.just(5)),
        elements=st.floats(-1.5, 1.5, allow_nan=False, allow_subnormal=False),
    )
)
def test_any_paths_come_out_ordered_and_widening(values: np.ndarray) -> None:
    repaired = repair_paths(values, LEVELS)
    assert_path_invariants(repaired, tolerance=1e-9)
    # The median is the policy's: the repair never moves it (after sorting the day's grid).
    np.testing.assert_array_equal(repaired[:, :, 2], np.sort(values, axis=2)[:, :, 2])
    # A repaired path is left as it is (unless the price-0 cap bound: then the excess moves
    # up again, harmless, on a path whose median fell below an earlier day's lowest quantile).
    if np.exp(repaired).min() > 1e-6:
        np.testing.assert_allclose(repair_paths(repaired, LEVELS), repaired, atol=1e-12)


def test_a_good_path_is_untouched() -> None:
    h = np.arange(1, 31)[None, :, None]
    z = np.array([-1.645, -0.674, 0.0, 0.674, 1.645])[None, None, :]
    good = 0.0003 * h + 0.015 * np.sqrt(h) * z
    np.testing.assert_allclose(repair_paths(good, LEVELS), good, atol=1e-15)


def test_a_narrowing_day_is_widened_to_the_previous_width() -> None:
    q = np.log([[[0.94, 0.97, 1.0, 1.03, 1.06], [0.96, 0.98, 1.0, 1.02, 1.04]]])
    out = np.exp(repair_paths(q, LEVELS))[0]
    np.testing.assert_allclose(out[1], out[0])  # same median: the same envelope
    assert_path_invariants(np.log(out))


def test_a_steep_fall_of_the_median_keeps_prices_positive_and_the_width() -> None:
    q = np.log([[[0.5, 0.8, 1.0, 1.2, 1.5], [0.01, 0.015, 0.02, 0.025, 0.03]]])
    out = np.exp(repair_paths(q, LEVELS))[0]
    assert (out > 0).all()
    assert out[1, 2] == pytest.approx(0.02)
    assert out[1, 4] - out[1, 0] == pytest.approx(1.0)  # the first day's width, carried over
    assert_path_invariants(np.log(out))


def _frame(values: np.ndarray) -> pd.DataFrame:
    n, n_h, _ = values.shape
    index = pd.MultiIndex.from_product(
        [pd.to_datetime(["2024-01-02"]), [f"T{i}" for i in range(n)], range(1, n_h + 1)],
        names=["date", "ticker", "horizon"],
    )
    return pd.DataFrame(values.reshape(n * n_h, -1), index=index, columns=list(LEVELS))


def test_count_repairs_counts_crossed_and_narrowed_paths() -> None:
    good = np.log([[[0.97, 0.99, 1.0, 1.01, 1.03], [0.96, 0.98, 1.0, 1.02, 1.04]]])
    narrow = np.log([[[0.96, 0.98, 1.0, 1.02, 1.04], [0.97, 0.99, 1.0, 1.01, 1.03]]])
    crossed = np.log([[[0.97, 1.01, 1.0, 0.99, 1.03], [0.96, 0.98, 1.0, 1.02, 1.04]]])
    counts = count_repairs(_frame(np.concatenate([good, narrow, crossed])))
    assert (counts.paths, counts.crossed, counts.narrowed) == (3, 1, 1)
    assert counts.max_widening == pytest.approx(0.04 / 0.02 - 1)  # inner 0.02 widened to 0.04
    repaired = repair_frame(_frame(np.concatenate([good, narrow, crossed])))
    assert count_repairs(repaired).narrowed == 0


def test_repaired_shares_count_the_forecasts_each_horizon_needed_repaired() -> None:
    """Three paths of two days: a narrowing second day, a crossed first day, a good path."""
    good = np.log([[[0.97, 0.99, 1.0, 1.01, 1.03], [0.96, 0.98, 1.0, 1.02, 1.04]]])
    narrow = np.log([[[0.96, 0.98, 1.0, 1.02, 1.04], [0.97, 0.99, 1.0, 1.01, 1.03]]])
    crossed = np.log([[[0.97, 1.01, 1.0, 0.99, 1.03], [0.96, 0.98, 1.0, 1.02, 1.04]]])
    before = _frame(np.concatenate([good, narrow, crossed]))
    shares = repaired_shares(before, repair_frame(before))
    # h=1: only the crossed day was sorted; h=2: only the narrowed day was widened (the crossed
    # path's second day is already wider than its sorted first)
    assert shares.to_dict() == {1: pytest.approx(1 / 3), 2: pytest.approx(1 / 3)}
    assert (repaired_shares(before, before) == 0).all()
    good_only = _frame(good)
    assert (repaired_shares(good_only, repair_frame(good_only)) == 0).all()  # no rounding


def test_paths_must_share_their_horizons() -> None:
    frame = _frame(np.log(np.full((2, 3, 5), [0.97, 0.99, 1.0, 1.01, 1.03])))
    with pytest.raises(ValueError, match="same horizons"):
        repair_frame(frame.iloc[:-1])
