"""The gate benchmark's report reads a test's p-value as the gate does, identical losses too."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.dm_figures import dm_figures, dm_text
from benchmarks.gate_errors import _row, _wf_row
from config.gate import GatePolicy
from registry.gate import GateVerdict
from training.dm_test import dm_test, evidence_p_value, result_metrics

POLICY = GatePolicy(horizons=(1,))


def test_identical_losses_read_as_the_gate_reads_them() -> None:
    """No ``_p`` is stored for identical losses: the report says so and reads p = 1.0."""
    metrics = result_metrics("h1_dm_pinball_vs_champion", dm_test(np.zeros(40), 1))
    assert "h1_dm_pinball_vs_champion_p" not in metrics
    test = dm_figures(metrics, "h1_dm_pinball_vs_champion")
    assert test == {"rel": 0.0, "p": 1.0, "identical": True}
    assert test["p"] == evidence_p_value(metrics, "h1_dm_pinball_vs_champion")
    assert dm_text(test) == "identical: no test"


def test_a_test_that_ran_keeps_its_p_value() -> None:
    d = np.random.default_rng(0).normal(0.5, 1.0, 200)
    metrics = result_metrics("h1_features_dm", dm_test(d, 1, reference_loss=10.0))
    test = dm_figures(metrics, "h1_features_dm")
    assert test["p"] == pytest.approx(metrics["h1_features_dm_p"])
    assert test["p"] < 0.01  # the candidate's loss is higher on most dates
    assert not test["identical"]
    assert dm_text(test) == f"{test['rel']:+.2%} p={test['p']:.3f}"
    assert dm_text(dm_figures({}, "h1_features_dm")) == "not run"


def test_the_reports_of_an_identical_candidate_are_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    identical = result_metrics("h1_dm_pinball_vs_champion", dm_test(np.zeros(40), 1))
    ran = result_metrics("h1_dm_pinball_vs_ewma_normal", dm_test(np.ones(40), 1, reference_loss=2))
    metrics = identical | ran | {"h1_coverage": 0.9, "h1_coverage_worst_year": 0.88}
    metrics |= {"h1_coverage_worst_ticker": 0.86, "h1_pinball_gain": 0.01}
    verdict = GateVerdict(passed=True, reasons=())
    row = _wf_row("honest (control)", 1, verdict, metrics, POLICY)
    assert row["h1_dm_pinball_vs_champion_p"] == 1.0
    assert row["h1_dm_pinball_vs_champion_identical"] is True
    assert row["h1_dm_pinball_vs_ewma_normal_identical"] is False
    assert row["h1_features_dm_p"] is None  # not run
    printed = capsys.readouterr().out
    assert "vs champion identical: no test" in printed
    assert "features permuted not run" in printed
    refit = _row(verdict, identical)
    assert (refit["h1_pinball_p"], refit["h1_pinball_identical"]) == (1.0, True)
    assert refit["h5_ae_p"] is None
