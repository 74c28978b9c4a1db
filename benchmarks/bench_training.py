"""Training benchmark on the bundled sample: features, a full fit, an incremental update and
the incremental gate's scoring (candidate and champion on the latest days).

The peer is the full refit itself: the incremental update after one new trading day is measured
in the same run, on the same data, and reported as a ratio. ``--backtest`` adds the full
walk-forward (2016-2022, yearly refits, model and baselines; ~5 min on 2 cores).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import pandas as pd

from training.config import TrainingConfig
from training.evaluation import run_backtest, score_recent
from training.features import build_features
from training.forecaster import QuantileForecaster

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sp500_prices.csv.gz"


def load_sample() -> pd.DataFrame:
    """The sample as the long (date, ticker, adj_close) panel the lake returns."""
    wide = pd.read_csv(SAMPLE, parse_dates=["Date"])
    long = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close").dropna()
    return long.rename(columns={"Date": "date"}).sort_values(["ticker", "date"], ignore_index=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backtest", action="store_true", help="also time the full walk-forward")
    args = parser.parse_args()
    prices = load_sample()
    last_day = prices["date"].max()
    before = prices[prices["date"] < last_day]
    config = TrainingConfig()

    start = time.perf_counter()
    features_before = build_features(before)
    features_seconds = time.perf_counter() - start

    start = time.perf_counter()
    model = QuantileForecaster(config).fit(features_before, before)
    fit_seconds = time.perf_counter() - start

    features = build_features(prices)
    start = time.perf_counter()
    updated = copy.deepcopy(model).update(features, prices)
    update_seconds = time.perf_counter() - start

    recent_days = 126  # Settings.gate_recent_days
    start = time.perf_counter()
    score_recent({"candidate": updated, "champion": model}, features, prices, config, recent_days)
    scoring_seconds = time.perf_counter() - start

    rows = len(features_before)
    print(f"sample: {prices['ticker'].nunique()} tickers, {prices['date'].nunique():,} days")
    print(f"  build features ({rows:,} rows):          {features_seconds:7.1f} s")
    print(f"  full fit (5 anchors x 5 quantiles):       {fit_seconds:7.1f} s")
    print(f"  incremental update after one new day:     {update_seconds:7.1f} s")
    print(f"  ratio full fit / update:                  {fit_seconds / update_seconds:7.1f}x")
    print(f"  gate scoring, 2 models x {recent_days} days:         {scoring_seconds:7.1f} s")
    if args.backtest:
        start = time.perf_counter()
        run_backtest(prices, config, "2016-01-01")
        print(f"  full walk-forward 2016-2022 (7 refits):   {time.perf_counter() - start:7.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
