"""Long horizons in stress years (issue 15 §5): does regime-aware calibration lift the worst year?

The walk-forward's worst year at h = 21 and 30 (2018) misses the 0.87 target because forecasts
issued after a calm spell meet a volatility surprise (docs/model.md). Variants of the served
configuration, each an opt-in :class:`training.config.TrainingConfig` field:

- **baseline**: the default settings;
- **term** / **term98**: a GARCH-style volatility term structure for the target scale
  (``vol_term_decay`` 0.99 / 0.98), mean-reverting from sigma_t to the ticker's long-run vol;
- **floor**: from h = 10 on, ACI levels never fall below the CQR level while the ticker is calm
  (``aci_calm_floor_horizon``: sigma_t below its long-run vol);
- **term_floor** / **term98_floor**: both (φ 0.99 / 0.98);
- **buckets** / **buckets_floor**: Mondrian CQR by volatility regime (``cqr_vol_edges``: calm
  below 0.75 of the ticker's long-run vol, stormy from 1.25; :mod:`training.mondrian`), alone and
  with the floor.

Choose on ``--period validation`` (test 2008-2015, the hyperparameters' validation span), judge
once on ``--period test`` (2016-2022). Each variant is one walk-forward (model with ACI, and
EWMA-normal as the reference), run one after the other in this process; each prints its table
and writes ``.finsimples/bench/stress_<period>_<variant>.csv``.

Variants that differ only in the floor share their fits (:class:`SharedFitForecaster`), so
``--variant term term_floor`` costs one walk-forward plus ~35 s.

Run with ``python -m benchmarks.study_stress_calibration --period validation --variant baseline
term term_floor`` (one walk-forward: 234 s for 2016-2022 on 2 idle cores, 16-29 min on the
shared machine, 2026-12-01); the figures go to docs/model.md ("Trying to fix it") by hand.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from benchmarks.bench_training import load_sample
from training.baselines import EwmaNormalBaseline
from training.boosting import BoosterFit, fit_in_process
from training.config import TrainingConfig
from training.evaluation import Backtest, run_backtest
from training.features import build_features
from training.forecaster import QuantileForecaster

HORIZONS = (1, 5, 10, 21, 30)
PERIODS: dict[str, tuple[str, str | None]] = {
    "validation": ("2008-01-01", "2016-01-01"),
    "test": ("2016-01-01", None),
}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "term": {"vol_term_decay": 0.99},
    "term98": {"vol_term_decay": 0.98},
    "floor": {"aci_calm_floor_horizon": 10},
    "term_floor": {"vol_term_decay": 0.99, "aci_calm_floor_horizon": 10},
    "term98_floor": {"vol_term_decay": 0.98, "aci_calm_floor_horizon": 10},
    "buckets": {"cqr_vol_edges": (0.75, 1.25)},
    "buckets_floor": {"cqr_vol_edges": (0.75, 1.25), "aci_calm_floor_horizon": 10},
}
OUT = Path(".finsimples/bench")
SERVING_ONLY = frozenset({"aci_calm_floor_horizon", "aci_calm_ratio", "cqr_vol_edges"})
"""Options that change no booster and no calibration score: variants differing only in these
share their fits (the calibration, whose buckets and ACI replay they do change, runs for
each)."""


class SharedFitForecaster(QuantileForecaster):
    """The forecaster, reusing an earlier variant's boosters and scores for the same block."""

    fitted: ClassVar[dict[tuple[str, pd.Timestamp], QuantileForecaster]] = {}

    def fit(
        self, features: pd.DataFrame, prices: pd.DataFrame, *, engine: BoosterFit = fit_in_process
    ) -> SharedFitForecaster:
        last = features.index.get_level_values("date").max()
        key = (self.config.model_dump_json(exclude=set(SERVING_ONLY)), last)
        if key not in self.fitted:
            super().fit(features, prices, engine=engine)
            self.fitted[key] = copy.deepcopy(self)
            return self
        config = self.config
        self.__dict__.update(copy.deepcopy(self.fitted[key]).__dict__)
        self.config = config
        window = features.loc[features.index.get_level_values("date") >= self.calibration_start_]
        self._calibrate(window, prices)  # the same scores; the final ACI state of this config
        return self


def variant_table(backtest: Backtest, method: str = "model_aci") -> pd.DataFrame:
    """Per horizon: pooled coverage, worst year and ticker (with their names), low-vol tercile
    coverage, pinball and its gain vs EWMA-normal."""
    cov = backtest.coverage
    scores = backtest.scores
    rows = []
    for h in HORIZONS:
        mine = cov[(cov.method == method) & (cov.horizon == h)]
        year = mine[mine.group == "year"].sort_values("coverage").iloc[0]
        ticker = mine[mine.group == "ticker"].sort_values("coverage").iloc[0]
        low = mine[(mine.group == "vol_tercile") & (mine.key == "low")]["coverage"].iloc[0]
        pinball = float(scores.loc[(method, h), "pinball"])
        reference = float(scores.loc[("ewma_normal", h), "pinball"])
        rows.append(
            {
                "horizon": h,
                "coverage": scores.loc[(method, h), "coverage"],
                "worst_year": year.coverage,
                "worst_year_key": year.key,
                "worst_ticker": ticker.coverage,
                "worst_ticker_key": ticker.key,
                "low_vol": low,
                "pinball": pinball,
                "pinball_gain": 1 - pinball / reference,
            }
        )
    return pd.DataFrame(rows).set_index("horizon")


def show(name: str, table: pd.DataFrame) -> None:
    """Print one variant's table, aligned."""
    print(f"\n{name}")
    print("h   coverage  worst year       worst ticker     low-vol  pinball    gain vs EWMA")
    for h, r in table.iterrows():
        print(
            f"{h:<3} {r.coverage:8.3f}  {r.worst_year:.3f} ({r.worst_year_key})  "
            f"{r.worst_ticker:.3f} ({r.worst_ticker_key:<5})  {r.low_vol:7.3f}  "
            f"{r.pinball:.6f}  {r.pinball_gain:+8.1%}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--period", choices=sorted(PERIODS), default="validation")
    parser.add_argument("--variant", choices=sorted(VARIANTS), nargs="+", default=["baseline"])
    args = parser.parse_args()
    start, end = PERIODS[args.period]
    prices = load_sample()
    features = build_features(prices)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in args.variant:
        config = TrainingConfig(**VARIANTS[name])
        began = time.perf_counter()
        backtest = run_backtest(
            prices,
            config,
            start,
            end,
            methods={"model": SharedFitForecaster, "ewma_normal": EwmaNormalBaseline},
            features=features,
        )
        seconds = time.perf_counter() - began
        table = variant_table(backtest)
        show(
            f"{name} ({VARIANTS[name] or 'defaults'}), {args.period} from {start}: {seconds:.0f} s",
            table,
        )
        table.assign(variant=name, period=args.period, seconds=seconds).to_csv(
            OUT / f"stress_{args.period}_{name}.csv"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
