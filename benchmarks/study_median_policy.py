"""The path median policy against the per-horizon one (issue 24 §1-2), on the bundled sample.

One walk-forward of the model's raw calibrated quantiles (:class:`UnservedForecaster`, ACI as
served), then :func:`training.policy_comparison.compare_median_policies`: each policy decided on
the forecasts before ``--split`` and scored on those after it, and each decided on the scored
years themselves (as the gate does). Also counts how often the path repair changes a path.

Run with ``python -m benchmarks.study_median_policy`` (defaults: the 20 sample tickers, default
settings, test 2016 to the end of the sample, split 2019-01-01); ``--small`` uses the tests'
compact configuration and six tickers. Writes ``.finsimples/bench/median_policy.csv``; the
figures go to docs/model.md by hand.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from benchmarks.bench_training import load_sample
from training.config import BoosterParams, TrainingConfig
from training.evaluation import run_backtest
from training.policy_comparison import UnservedForecaster, compare_median_policies

OUT = Path(".finsimples/bench")
HORIZONS = [1, 5, 10, 21, 30]
SMALL_TICKERS = ["AAPL", "JNJ", "KO", "XOM", "JPM", "WMT"]


def main() -> None:
    """Run the study and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2016-01-01", help="first test date")
    parser.add_argument("--split", default="2019-01-01", help="first scored date")
    parser.add_argument("--small", action="store_true", help="the tests' compact config")
    args = parser.parse_args()
    prices = load_sample()
    config = TrainingConfig()
    if args.small:
        prices = prices.loc[prices["ticker"].isin(SMALL_TICKERS) & (prices["date"] >= "2008")]
        config = TrainingConfig(
            anchor_horizons=(1, 5, 30),
            calibration_days=252,
            booster=BoosterParams(n_estimators=20, max_depth=2, n_jobs=1),
        )
    began = time.perf_counter()
    backtest = run_backtest(prices, config, args.start, methods={"model": UnservedForecaster})
    raw = backtest.forecasts[f"model_{config.calibration}"]
    scores, decisions, repairs = compare_median_policies(
        raw, backtest.outcomes, pd.Timestamp(args.split), config
    )
    seconds = time.perf_counter() - began
    table = scores.loc[(slice(None), HORIZONS), ["pinball", "coverage", "width", "mae_ratio"]]
    reference = table.loc["per_horizon", "pinball"]
    table["pinball_vs_per_horizon"] = [
        table.loc[(policy, h), "pinball"] / reference.loc[h] - 1 for policy, h in table.index
    ]
    pd.set_option("display.width", 200)
    print(table.round(5).to_string())
    for name, decision in decisions.items():
        if isinstance(decision, dict):
            decision = "model at h=" + ",".join(str(h) for h, s in decision.items() if s == "model")
        print(f"{name}: {decision}")
    print(repairs)
    print(f"{seconds:.0f} s")
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / f"median_policy{'_small' if args.small else ''}.csv")


if __name__ == "__main__":
    main()
