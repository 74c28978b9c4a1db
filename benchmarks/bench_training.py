"""Training benchmark on the bundled sample: features, a full fit, an incremental update and
the incremental gate's scoring (candidate and champion on the latest days).

The peer is the full refit itself: the incremental update after one new trading day is measured
in the same run, on the same data, and reported as a ratio. ``--backtest`` adds the full
walk-forward (2016-2022, yearly refits, model and baselines; ~5 min on 2 cores). These are the
core's figures; ``bench_flows`` times the same two through the retrain flow (train job, MLflow
logging, registration, gate, deploy hook) on one lake.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from benchmarks.machine import cpu_mark, others_cores
from finsimples.settings import Settings
from jobs.evidence import feature_evidence
from training.evaluation import run_backtest, score_recent
from training.features import build_features
from training.forecaster import QuantileForecaster

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sp500_prices.csv.gz"
T = TypeVar("T")


def load_sample() -> pd.DataFrame:
    """The sample as the long (date, ticker, adj_close) panel the lake returns."""
    wide = pd.read_csv(SAMPLE, parse_dates=["Date"])
    long = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close").dropna()
    return long.rename(columns={"Date": "date"}).sort_values(["ticker", "date"], ignore_index=True)


@dataclass(frozen=True)
class Timing:
    """One step's wall time, and what the rest of the machine took meanwhile."""

    seconds: float
    others: float  # cores taken by processes outside the benchmark


def timed(action: Callable[[], T]) -> tuple[T, Timing]:
    """Run ``action``: its result, and how long it took."""
    since = cpu_mark()
    result = action()
    return result, Timing(time.perf_counter() - since[0], others_cores(since))


def show(label: str, timing: Timing) -> None:
    """One step's line, values aligned."""
    print(f"  {label:<44}{timing.seconds:7.1f} s   (others: {timing.others:.2f} cores)")


def main() -> int:
    """Time each step on the sample and print the figures and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backtest", action="store_true", help="also time the full walk-forward")
    args = parser.parse_args()
    settings = Settings()
    config, recent_days = settings.training, settings.gate_recent_days
    prices = load_sample()
    before = prices[prices["date"] < prices["date"].max()]

    features_before, featuring = timed(lambda: build_features(before))
    model, fit = timed(lambda: QuantileForecaster(config).fit(features_before, before))
    features = build_features(prices)
    updated, update = timed(lambda: copy.deepcopy(model).update(features, prices))
    models = {"candidate": updated, "champion": model}
    _, scoring = timed(lambda: score_recent(models, features, prices, config, recent_days))
    tested, testing = timed(lambda: feature_evidence(updated, features, prices, settings))

    print(f"sample: {prices['ticker'].nunique()} tickers, {prices['date'].nunique():,} days")
    show(f"build features ({len(features_before):,} rows):", featuring)
    shape = f"{len(config.anchor_horizons)} anchors x {len(config.quantiles)} quantiles"
    show(f"full fit ({shape}):", fit)
    show("incremental update after one new day:", update)
    print(f"  ratio full fit / update: {fit.seconds / update.seconds:.1f}x")
    show(f"gate scoring, 2 models x {recent_days} days:", scoring)
    permutations = settings.gate.feature_permutations
    show(
        f"feature test, 1 + {permutations} permutations x {config.calibration_days} days:",
        testing,
    )
    for h in settings.gate.horizons:
        print(
            f"  h={h}: permuted {tested[f'h{h}_features_dm_rel']:+.2%} pinball, "
            f"DM {tested[f'h{h}_features_dm']:.2f}, p={tested[f'h{h}_features_dm_p']:.4f}"
        )
    if args.backtest:
        _, backtest = timed(lambda: run_backtest(prices, config, "2016-01-01"))
        show("full walk-forward 2016-2022 (7 refits):", backtest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
