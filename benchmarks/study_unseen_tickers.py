"""Does a ticker the model never trained on get forecasts of the same quality?

A user's own ticker (say PETR4) enters the lake and is forecast by a model whose boosters and
calibration never saw it. This study holds out every fourth ticker of the bundled sample,
walks forward 2016-2022 twice with the default settings, and scores the held-out tickers only:

- **unseen**: the forecaster is fitted (and recalibrated) without the held-out tickers, which
  are forecast as a user's new ticker would be (their features and ACI replay are computed,
  since their prices are in the lake);
- **seen**: the usual forecaster, fitted on every ticker (the peer, same run);
- the EWMA-normal baseline on the same rows.

Run with ``python -m benchmarks.study_unseen_tickers`` (~10 minutes on 2 cores); the figures
go to docs/model.md by hand.
"""

from __future__ import annotations

import time

import pandas as pd

from benchmarks.bench_training import load_sample
from training.baselines import EwmaNormalBaseline
from training.boosting import BoosterFit, fit_in_process
from training.config import TrainingConfig
from training.evaluation import Backtest, run_backtest
from training.forecaster import QuantileForecaster
from training.metrics import coverage_breakdown, score_forecasts

TEST_START = "2016-01-01"
HORIZONS = (1, 5, 10, 21, 30)


class UnseenForecaster(QuantileForecaster):
    """The forecaster, fitted without the held-out tickers."""

    holdout: frozenset[str] = frozenset()

    def fit(
        self, features: pd.DataFrame, prices: pd.DataFrame, *, engine: BoosterFit = fit_in_process
    ) -> UnseenForecaster:
        seen = ~features.index.get_level_values("ticker").isin(self.holdout)
        kept = prices.loc[~prices["ticker"].isin(self.holdout)]
        super().fit(features.loc[seen], kept, engine=engine)
        return self


def held_out_scores(backtest: Backtest, method: str, holdout: frozenset[str], config) -> dict:
    """Pooled coverage, worst year, worst ticker and pinball of ``method`` on ``holdout`` only."""
    frame = backtest.forecasts[method]
    frame = frame.loc[frame.index.get_level_values("ticker").isin(holdout)]
    scores = score_forecasts(frame, backtest.outcomes, config)
    coverage = coverage_breakdown(frame, backtest.outcomes, backtest.sigma, config)
    worst = coverage[coverage.group.isin(["year", "ticker"])].groupby(["horizon", "group"])
    worst = worst["coverage"].min().unstack("group")
    return {
        h: {
            "coverage": scores.loc[h, "coverage"],
            "worst_year": worst.loc[h, "year"],
            "worst_ticker": worst.loc[h, "ticker"],
            "pinball": scores.loc[h, "pinball"],
        }
        for h in HORIZONS
    }


def main() -> int:
    prices = load_sample()
    tickers = sorted(prices["ticker"].unique())
    holdout = frozenset(tickers[::4])
    UnseenForecaster.holdout = holdout
    config = TrainingConfig()
    print(f"held out ({len(holdout)} of {len(tickers)}): {', '.join(sorted(holdout))}")

    start = time.perf_counter()
    seen = run_backtest(
        prices,
        config,
        TEST_START,
        methods={"model": QuantileForecaster, "ewma_normal": EwmaNormalBaseline},
    )
    unseen = run_backtest(prices, config, TEST_START, methods={"model": UnseenForecaster})
    print(f"two walk-forwards {TEST_START} on: {time.perf_counter() - start:.0f} s")

    rows = {
        "unseen (model + ACI)": held_out_scores(unseen, "model_aci", holdout, config),
        "seen (model + ACI)": held_out_scores(seen, "model_aci", holdout, config),
        "EWMA-normal": held_out_scores(seen, "ewma_normal", holdout, config),
    }
    ewma = rows["EWMA-normal"]
    print("h   method                  coverage  worst year  worst ticker  pinball gain vs EWMA")
    for h in HORIZONS:
        for name, by_h in rows.items():
            m = by_h[h]
            gain = 1 - m["pinball"] / ewma[h]["pinball"]
            print(
                f"{h:<3} {name:<22} {m['coverage']:8.3f} {m['worst_year']:11.3f} "
                f"{m['worst_ticker']:13.3f} {gain:+20.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
