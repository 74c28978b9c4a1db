import pytest

from registry.gate import GatePolicy, evaluate_gate

POLICY = GatePolicy(horizons=(1, 5))


def metrics(**overrides: float) -> dict[str, float]:
    good = {
        "coverage": 0.90,
        "coverage_worst_year": 0.87,
        "coverage_worst_ticker": 0.88,
        "pinball": 0.0100,
        "pinball_ewma_normal": 0.0101,
        "mae_ratio": 0.999,
    }
    out = {}
    for h in (1, 5):
        for key, value in {**good, **overrides}.items():
            out[f"h{h}_{key}"] = value
    return out


def test_a_good_candidate_passes_with_and_without_a_champion() -> None:
    assert evaluate_gate(metrics(), None, POLICY).passed
    assert evaluate_gate(metrics(), metrics(pinball=0.0100), POLICY).passed
    assert evaluate_gate(metrics(), None, POLICY).summary() == "passed"


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"coverage": 0.87}, "h=1: coverage 0.870 outside 0.90 ± 0.02"),
        ({"coverage": 0.93}, "h=1: coverage 0.930 outside 0.90 ± 0.02"),
        ({"coverage_worst_year": 0.84}, "h=1: worst-year coverage 0.840 < 0.85"),
        ({"coverage_worst_ticker": 0.80}, "h=1: worst-ticker coverage 0.800 < 0.85"),
        ({"pinball": 0.0102}, "h=1: pinball 0.010200 worse than EWMA-normal 0.010100"),
        (
            {"mae_ratio": 1.01},
            "h=1: MAE ratio vs zero 1.0100 > 1.0 (point forecast worse than zero)",
        ),
    ],
)
def test_each_threshold_blocks_with_its_reason(override: dict, reason: str) -> None:
    verdict = evaluate_gate(metrics(**override), None, POLICY)
    assert not verdict.passed
    assert reason in verdict.reasons
    assert any(r.startswith("h=5") for r in verdict.reasons)


def test_a_candidate_worse_than_the_champion_is_blocked() -> None:
    verdict = evaluate_gate(metrics(pinball=0.0100), metrics(pinball=0.0090), POLICY)
    assert verdict.reasons == (
        "h=1: pinball 0.010000 worse than the champion's 0.009000",
        "h=5: pinball 0.010000 worse than the champion's 0.009000",
    )


def test_missing_metrics_block_the_candidate() -> None:
    partial = {k: v for k, v in metrics().items() if not k.startswith("h5_")}
    verdict = evaluate_gate(partial, None, POLICY)
    assert not verdict.passed
    assert verdict.reasons[0].startswith("h=5: not evaluated (h5_coverage")


def test_thresholds_come_from_the_policy() -> None:
    lenient = GatePolicy(horizons=(1,), coverage_tolerance=0.05, max_mae_ratio=1.02)
    assert evaluate_gate(metrics(coverage=0.86, mae_ratio=1.01), None, lenient).passed


def recent(**overrides: float) -> dict[str, float]:
    """An incremental candidate: inherited walk-forward metrics plus the recent-window scores."""
    scores = {
        "recent_pinball": 0.0100,
        "recent_pinball_champion": 0.0100,
        "recent_coverage": 0.89,
        "recent_coverage_champion": 0.88,
    } | overrides
    return metrics() | {f"h{h}_{key}": value for h in (1, 5) for key, value in scores.items()}


def test_an_incremental_candidate_no_worse_than_its_champion_on_recent_days_passes() -> None:
    assert evaluate_gate(recent(), metrics(), POLICY).passed
    # 1% worse pinball is inside the default tolerance (1.01); a lower recent coverage than
    # the champion's is fine while it is no further from nominal than the slack allows.
    assert evaluate_gate(recent(recent_pinball=0.0101), metrics(), POLICY).passed
    assert evaluate_gate(recent(recent_coverage=0.87), metrics(), POLICY).passed


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        (
            {"recent_pinball": 0.0102},
            "h=1: pinball on the latest days 0.010200 worse than the champion's 0.010000 on "
            "the same rows",
        ),
        (
            {"recent_coverage": 0.83},
            "h=1: coverage on the latest days 0.830 further from 0.90 than the champion's 0.880",
        ),
        (
            {"recent_coverage": 0.99, "recent_coverage_champion": 0.90},
            "h=1: coverage on the latest days 0.990 further from 0.90 than the champion's 0.900",
        ),
    ],
)
def test_an_incremental_candidate_worse_on_recent_days_is_blocked(
    override: dict, reason: str
) -> None:
    verdict = evaluate_gate(recent(**override), metrics(), POLICY)
    assert not verdict.passed
    assert reason in verdict.reasons


def test_half_scored_recent_window_blocks() -> None:
    candidate = {k: v for k, v in recent().items() if k != "h5_recent_coverage_champion"}
    verdict = evaluate_gate(candidate, metrics(), POLICY)
    assert verdict.reasons == ("h=5: recent window not evaluated (h5_recent_coverage_champion)",)
