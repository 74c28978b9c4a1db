"""The forecaster's calibration on a synthetic universe passes what the gate asks of real data.

30 tickers x 6 years, yearly refits over the last two years, the serving tests' small model
(about 20 s on two busy cores): the out-of-sample 90% intervals must hold the gate's pooled
coverage (0.90 +- its tolerance), with CQR and with ACI, and the variant the gate judges must
hold its worst-year and worst-ticker floors, as on the bundled sample (docs/model.md).
"""

from __future__ import annotations

import pytest

from benchmarks import study_synthetic_calibration as study
from benchmarks.study_synthetic_calibration import SPEC, synthetic_calibration
from config.gate import GatePolicy
from tests.champion import SMALL


def test_the_study_uses_the_serving_tests_model() -> None:
    assert study.SMALL == SMALL


def test_intervals_hold_the_gates_coverage_out_of_sample() -> None:
    table = synthetic_calibration(SPEC, SMALL).to_dict("index")  # (method, h) -> figures
    policy = GatePolicy()
    judged = f"model_{SMALL.calibration}"  # the variant the gate reads (jobs.evidence)
    for horizon in (1, 5):
        for method in ("model_cqr", "model_aci"):
            assert table[(method, horizon)]["coverage"] == pytest.approx(
                SMALL.interval_coverage, abs=policy.coverage_tolerance
            ), (method, horizon)
        row = table[(judged, horizon)]
        assert row["worst_year"] >= policy.min_worst_year_coverage, horizon
        assert row["worst_ticker"] >= policy.min_worst_ticker_coverage, horizon
    # Intervals of a calibrated model on GARCH data are as wide as the volatility says:
    # within a tenth of the EWMA-normal baseline's, which knows that volatility by construction.
    for horizon in (1, 5):
        model, baseline = table[("model_aci", horizon)], table[("ewma_normal", horizon)]
        assert model["width"] == pytest.approx(baseline["width"], rel=0.1)
