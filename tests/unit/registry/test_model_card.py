import pandas as pd

from registry.gate import GateVerdict
from registry.model_card import render_model_card
from training.forecaster import QuantileForecaster


def card(metrics: dict[str, float]) -> str:
    forecaster = QuantileForecaster()
    forecaster.as_of_ = pd.Timestamp("2022-11-30")
    return render_model_card(
        model_name="finsimples-forecaster",
        mode="full",
        forecaster=forecaster,
        summary=None,
        metrics=metrics,
        metrics_source="walk-forward",
        verdict=GateVerdict(passed=True, reasons=()),
        tickers=["AAPL"],
    )


def test_the_card_shows_the_feature_test_when_the_candidate_had_one() -> None:
    tested = card(
        {
            "h1_features_dm_p": 0.2,
            "h1_features_dm_rel": 0.004,
            "h5_features_dm_p": 0.001,
            "h5_features_dm_rel": 0.011,
        }
    )
    assert "- feature test (pinball with the non-volatility features permuted): " in tested
    assert "h=1 +0.40% p=0.200, h=5 +1.10% p=0.001" in tested
    assert "feature test" not in card({"h1_coverage": 0.9})  # versions from before the test


def test_the_card_says_identical_losses_are_no_test_and_shows_no_sentinel() -> None:
    identical = {
        f"h{h}_dm_{loss}_vs_champion_{key}": value
        for h in (1, 5)
        for loss in ("pinball", "ae")
        for key, value in (("identical", 1.0), ("rel", 0.0), ("n", 625.0))
    }
    text = card(
        identical | {"h1_dm_pinball_vs_ewma_normal": -0.8, "h1_dm_pinball_vs_ewma_normal_p": 0.79}
    )
    assert (
        "- vs champion (DM, same rows): h1 pinball identical to the champion: no test, "
        "h1 ae identical to the champion: no test, h5 pinball identical" in text
    )
    assert "- vs EWMA-normal (DM, same rows): h1 pinball DM -0.80 p=0.790" in text
    assert "_dm_" not in text  # DM families are written in words, not as raw metric rows


def test_the_card_says_how_often_the_path_repair_changed_a_forecast() -> None:
    text = card({"h1_repaired_share": 0.0, "h5_repaired_share": 0.021, "h30_repaired_share": 0.1})
    assert (
        "- path repair (quantiles sorted, ranges widened so they never narrow): changed "
        "h=1 0.0%, h=5 2.1%, h=30 10.0% of the walk-forward's forecasts"
    ) in text
    assert "path repair" not in card({"h1_coverage": 0.9})  # versions from before the count
