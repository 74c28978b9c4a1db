import pytest

from config.gate import GatePolicy
from registry.gate import evaluate_gate, gate_evidence_tags, readable_evidence

POLICY = GatePolicy(horizons=(1, 5))


def metrics(**overrides: float) -> dict[str, float]:
    good = {
        "coverage": 0.90,
        "coverage_worst_year": 0.87,
        "coverage_worst_ticker": 0.88,
        "pinball": 0.0100,
        "pinball_ewma_normal": 0.0101,
        "mae_ratio": 1.0003,  # noise: not gated (the median policy serves zero's median)
        "dm_pinball_vs_ewma_normal": -0.8,
        "dm_pinball_vs_ewma_normal_p": 0.79,
        "dm_pinball_vs_ewma_normal_rel": -0.01,
        "features_dm": 2.9,  # the model is worse with its features permuted: they matter
        "features_dm_p": 0.003,
        "features_dm_rel": 0.011,
    }
    out = {}
    for h in (1, 5):
        for key, value in {**good, **overrides}.items():
            out[f"h{h}_{key}"] = value
    return out


def versus_champion(pinball_p: float = 0.4, ae_p: float = 0.5, **extra: float) -> dict[str, float]:
    """A candidate's DM tests against the champion on the same rows."""
    out = dict(extra)
    for h in (1, 5):
        for loss, p in (("pinball", pinball_p), ("ae", ae_p)):
            out |= {
                f"h{h}_dm_{loss}_vs_champion": 3.0 if p < 0.01 else 0.2,
                f"h{h}_dm_{loss}_vs_champion_p": p,
                f"h{h}_dm_{loss}_vs_champion_rel": 0.02 if p < 0.01 else 0.0005,
            }
    return out


def test_a_good_candidate_passes_with_and_without_a_champion() -> None:
    assert evaluate_gate(metrics(), None, POLICY).passed
    assert evaluate_gate(metrics() | versus_champion(), metrics(), POLICY).passed
    assert evaluate_gate(metrics(), None, POLICY).summary() == "passed"


def test_a_median_no_better_than_zero_does_not_block() -> None:
    assert evaluate_gate(metrics(mae_ratio=1.01), None, POLICY).passed


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"coverage": 0.87}, "h=1: coverage 0.870 outside 0.90 ± 0.02 (off by -0.030)"),
        ({"coverage": 0.93}, "h=1: coverage 0.930 outside 0.90 ± 0.02 (off by +0.030)"),
        ({"coverage_worst_year": 0.84}, "h=1: worst-year coverage 0.840 < 0.85 (short by 0.010)"),
        (
            {"coverage_worst_ticker": 0.80},
            "h=1: worst-ticker coverage 0.800 < 0.85 (short by 0.050)",
        ),
        (
            {
                "dm_pinball_vs_ewma_normal": 2.5,
                "dm_pinball_vs_ewma_normal_p": 0.006,
                "dm_pinball_vs_ewma_normal_rel": 0.012,
            },
            "h=1: pinball significantly worse than EWMA-normal on the same rows "
            "(+1.20% loss, DM 2.50, p=0.0060)",
        ),
    ],
)
def test_each_threshold_blocks_with_its_reason(override: dict, reason: str) -> None:
    verdict = evaluate_gate(metrics(**override), None, POLICY)
    assert not verdict.passed
    assert reason in verdict.reasons
    assert any(r.startswith("h=5") for r in verdict.reasons)


def test_worse_than_ewma_by_noise_passes() -> None:
    noisy = {"dm_pinball_vs_ewma_normal": 1.2, "dm_pinball_vs_ewma_normal_p": 0.12}
    assert evaluate_gate(metrics(**noisy), None, POLICY).passed


def test_a_candidate_significantly_worse_than_the_champion_is_blocked() -> None:
    verdict = evaluate_gate(metrics() | versus_champion(pinball_p=0.001), metrics(), POLICY)
    assert verdict.reasons == (
        "h=1: pinball significantly worse than the champion's on the latest days "
        "(+2.00% loss, DM 3.00, p=0.0010)",
        "h=5: pinball significantly worse than the champion's on the latest days "
        "(+2.00% loss, DM 3.00, p=0.0010)",
    )
    folds = versus_champion(ae_p=0.002, champion_compared_on_folds=1.0)
    verdict = evaluate_gate(metrics() | folds, metrics(), POLICY)
    assert verdict.reasons[0].startswith(
        "h=1: absolute error of the median significantly worse than the champion's on the "
        "same folds"
    )


def test_a_candidate_worse_only_by_noise_passes() -> None:
    assert evaluate_gate(metrics() | versus_champion(pinball_p=0.2), metrics(), POLICY).passed


def test_a_champion_but_no_same_row_comparison_blocks() -> None:
    verdict = evaluate_gate(metrics(), metrics(), POLICY)
    assert verdict.reasons[0].startswith(
        "h=1: not compared with the champion on the same rows (h1_dm_pinball_vs_champion_p"
    )


def test_missing_metrics_block_the_candidate() -> None:
    partial = {k: v for k, v in metrics().items() if not k.startswith("h5_")}
    verdict = evaluate_gate(partial, None, POLICY)
    assert not verdict.passed
    assert verdict.reasons[0].startswith("h=5: not evaluated (h5_coverage")


def test_thresholds_come_from_the_policy() -> None:
    lenient = GatePolicy(horizons=(1,), coverage_tolerance=0.05)
    assert evaluate_gate(metrics(coverage=0.86), None, lenient).passed
    strict = GatePolicy(horizons=(1,), significance=0.5 - 1e-9)
    assert not evaluate_gate(metrics() | versus_champion(pinball_p=0.4), metrics(), strict).passed


def test_evidence_tags_show_statistic_and_p_value() -> None:
    tags = gate_evidence_tags(metrics() | versus_champion(), (1,))
    assert tags["gate.dm_vs_champion"] == "h1 pinball DM 0.20 p=0.400, h1 ae DM 0.20 p=0.500"
    assert tags["gate.dm_vs_ewma_normal"] == "h1 pinball DM -0.80 p=0.790"


def recent(**overrides: float) -> dict[str, float]:
    """An incremental candidate: inherited walk-forward metrics plus the recent-window scores."""
    scores = {
        "recent_pinball": 0.0100,
        "recent_pinball_champion": 0.0100,
        "recent_coverage": 0.89,
        "recent_coverage_champion": 0.88,
    } | overrides
    out = {f"h{h}_{key}": value for h in (1, 5) for key, value in scores.items()}
    return metrics() | versus_champion() | out


def test_an_incremental_candidate_no_worse_than_its_champion_on_recent_days_passes() -> None:
    assert evaluate_gate(recent(), metrics(), POLICY).passed
    # a lower recent coverage than the champion's is fine while it is no further from
    # nominal than the slack allows.
    assert evaluate_gate(recent(recent_coverage=0.87), metrics(), POLICY).passed


@pytest.mark.parametrize(
    ("override", "reason"),
    [
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


def test_features_that_carry_no_information_block_the_candidate() -> None:
    shuffled = metrics(features_dm=-0.3, features_dm_p=0.62, features_dm_rel=-0.0002)
    verdict = evaluate_gate(shuffled, None, POLICY)
    assert not verdict.passed
    (reason,) = verdict.reasons
    assert reason.startswith("the features carry no information")
    assert "needs p < 0.025" in reason
    assert "h=1 -0.02% p=0.620, h=5 -0.02% p=0.620" in reason


def test_features_significant_at_one_gated_horizon_are_enough() -> None:
    candidate = metrics(features_dm_p=0.4) | {"h5_features_dm_p": 0.01}
    assert evaluate_gate(candidate, None, POLICY).passed


def test_the_feature_test_is_corrected_for_the_number_of_horizons() -> None:
    # 0.03 < 0.05 at each of two horizons, but not below 0.05 / 2: no evidence, blocked.
    assert not evaluate_gate(metrics(features_dm_p=0.03), None, POLICY).passed
    one = GatePolicy(horizons=(1,))
    assert evaluate_gate(metrics(features_dm_p=0.03), None, one).passed


def test_a_candidate_whose_features_were_not_tested_is_blocked() -> None:
    untested = {k: v for k, v in metrics().items() if "features" not in k}
    verdict = evaluate_gate(untested, None, POLICY)
    assert verdict.reasons == ("features not tested (h1_features_dm_p, h5_features_dm_p)",)


def test_the_feature_test_is_a_version_tag() -> None:
    tags = gate_evidence_tags(metrics(), (1, 5))
    assert tags["gate.features"] == "h1 permuted +1.10% p=0.003, h5 permuted +1.10% p=0.003"


def identical_to_champion() -> dict[str, float]:
    """What ``result_metrics`` logs when every loss equals the champion's: no statistic, no p."""
    return {
        f"h{h}_dm_{loss}_vs_champion_{key}": value
        for h in (1, 5)
        for loss in ("pinball", "ae")
        for key, value in (("identical", 1.0), ("rel", 0.0), ("n", 500.0))
    }


def test_identical_losses_do_not_block_and_are_named_as_no_test() -> None:
    verdict = evaluate_gate(metrics() | identical_to_champion(), metrics(), POLICY)
    assert verdict.passed, verdict.reasons
    assert verdict.notes == (
        "h=1: pinball, absolute error of the median identical to the champion: no test",
        "h=5: pinball, absolute error of the median identical to the champion: no test",
    )
    assert verdict.summary().startswith("passed (h=1: pinball, absolute error")
    tags = gate_evidence_tags(metrics() | identical_to_champion(), (1, 5))
    assert tags["gate.dm_vs_champion"] == (
        "h1 pinball identical to the champion: no test, h1 ae identical to the champion: no test, "
        "h5 pinball identical to the champion: no test, h5 ae identical to the champion: no test"
    )
    assert "1000000" not in " ".join(tags.values())


def test_features_that_change_no_forecast_are_no_information() -> None:
    candidate = metrics()
    for h in (1, 5):
        for key in ("features_dm", "features_dm_p", "features_dm_rel"):
            del candidate[f"h{h}_{key}"]
        candidate[f"h{h}_features_dm_identical"] = 1.0
    verdict = evaluate_gate(candidate, None, POLICY)
    assert not verdict.passed
    assert "permuted: h=1 identical: no test, h=5 identical: no test" in verdict.reasons[0]
    assert "h=1: permuting the features changed no forecast: no test" in verdict.notes


def test_a_constant_worse_difference_blocks_without_a_statistic() -> None:
    candidate = metrics() | versus_champion()
    del candidate["h1_dm_pinball_vs_champion"]
    candidate["h1_dm_pinball_vs_champion_p"] = 0.0
    verdict = evaluate_gate(candidate, metrics(), POLICY)
    assert not verdict.passed
    assert "constant difference, p=0.0000" in verdict.reasons[0]
    tag = gate_evidence_tags(candidate, (1,))["gate.dm_vs_champion"]
    assert tag.startswith("h1 pinball constant difference p=0.000")


def test_an_old_clipped_statistic_reads_as_identical() -> None:
    old = "h1 pinball DM -0.41 p=0.660, h1 ae DM -1000000.00 p=1.000"
    assert readable_evidence(old) == (
        "h1 pinball DM -0.41 p=0.660, h1 ae identical to the champion: no test"
    )
    assert readable_evidence("h1 ae DM -1000000.00 p=0.990") == "h1 ae DM -1000000.00 p=0.990"
