"""Is the synthetic universe a market the forecaster can be judged on, or a toy?

Walks the forecaster forward over the last years of a synthetic universe
(``benchmarks.universe``) with yearly refits, exactly as ``training.evaluation`` does on the
bundled sample, and reports what the promotion gate reads: pooled coverage of the 90% interval,
worst year, worst ticker, width and pinball gain against the EWMA-normal baseline.

On real prices the gate asks for pooled coverage 0.90 +- 0.02 and worst year / worst ticker
>= 0.85 (``registry.gate.GatePolicy``); a synthetic universe whose calibration lands there
behaves like real data for the calibration machinery.

Run with ``python -m benchmarks.study_synthetic_calibration [--seeds 0 1 2] [--config small]``
(about 20 s per seed with ``small`` on 2 cores); the figures go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from benchmarks.universe import UniverseSpec, generate_universe
from training.baselines import EwmaNormalBaseline
from training.config import BoosterParams, TrainingConfig
from training.evaluation import run_backtest, summarize_backtest
from training.forecaster import QuantileForecaster

SPEC = UniverseSpec(tickers=30, years=6)
TEST_START = "2024-01-01"
HORIZONS = (1, 5)
SMALL = TrainingConfig(
    anchor_horizons=(1, 5, 30),
    calibration_days=252,
    booster=BoosterParams(n_estimators=20, max_depth=2, n_jobs=1),
    eval_horizons=HORIZONS,
)
"""The serving tests' quick model (``tests/champion.py``): 20 trees of depth 2 per quantile."""
COLUMNS = ["coverage", "worst_year", "worst_ticker", "width", "pinball_gain"]


def synthetic_calibration(
    spec: UniverseSpec,
    config: TrainingConfig,
    test_start: str = TEST_START,
    horizons: tuple[int, ...] = HORIZONS,
) -> pd.DataFrame:
    """The walk-forward summary of the forecaster (CQR and ACI) and EWMA-normal on ``spec``.

    Returns:
        Frame indexed by (method, horizon): coverage, worst_year, worst_ticker, width,
        pinball_gain (vs EWMA-normal; > 0 is better).
    """
    universe = generate_universe(spec)
    prices = universe.prices.loc[:, ["date", "ticker", "adj_close"]]
    methods = {"model": QuantileForecaster, "ewma_normal": EwmaNormalBaseline}
    backtest = run_backtest(prices, config, test_start=test_start, methods=methods)
    return summarize_backtest(backtest, horizons, "ewma_normal").loc[:, COLUMNS]


def main() -> None:
    """Print the summary for each seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tickers", type=int, default=SPEC.tickers)
    parser.add_argument("--years", type=int, default=SPEC.years)
    parser.add_argument("--config", choices=["small", "default"], default="small")
    args = parser.parse_args()
    config = SMALL if args.config == "small" else TrainingConfig(eval_horizons=HORIZONS)
    for seed in args.seeds:
        spec = UniverseSpec(tickers=args.tickers, years=args.years, seed=seed)
        began = time.perf_counter()
        table = synthetic_calibration(spec, config)
        seconds = time.perf_counter() - began
        print(f"\nseed {seed}: {args.tickers} tickers x {args.years} years, {args.config} config, "
              f"test from {TEST_START}, {seconds:.1f} s")  # fmt: skip
        print(table.round(4).to_string())


if __name__ == "__main__":
    main()
