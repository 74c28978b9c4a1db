"""Training on Dask against the single-process fit: a full ``QuantileForecaster.fit`` (default
settings: 5 anchor boosters, 60 rounds, then the conformal calibration) on the bundled sample
and on a larger panel made by tiling it under distinct ticker names.

Each panel is fitted twice: in process with the configured threads (``n_jobs``, 2: what
production does on one machine), and on a LocalCluster of ``--workers`` single-threaded worker
processes. The boosters' share of each fit is timed apart (the engine is wrapped), so the fixed
part (labels, calibration in the training process) and the part a cluster divides are known. A
third fit on a tiny panel (two tickers, a few thousand rows) measures what the Dask engine costs
whatever the rows (scheduling, quantile sketches, the per-round allreduce of histograms): its
overhead per fit.

The projection for 4, 16 and 64 workers: ``fixed + row_rounds / (N x r) + overhead``, with ``r``
the per-worker throughput measured on the cluster (its boosting time less the overhead) and the
overhead held constant: optimistic for many workers (a ring allreduce grows with them), see
docs/benchmarks.md.

    python -m benchmarks.bench_dask [--copies 5] [--workers 2] [--tiled-only]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from benchmarks.bench_training import load_sample
from benchmarks.machine import cpu_mark, others_cores
from finsimples.engines import DaskBoosterFit
from finsimples.settings import Settings
from training.boosting import BoosterFit, fit_in_process
from training.config import TrainingConfig
from training.features import build_features
from training.forecaster import QuantileForecaster

PROJECTED_WORKERS = (4, 16, 64)


@dataclass
class TimedEngine:
    """An engine that adds up its own wall time and the row-rounds it boosted."""

    engine: BoosterFit
    seconds: float = 0.0
    row_rounds: int = 0
    fits: list[float] = field(default_factory=list)

    def __call__(
        self,
        params: dict[str, Any],
        design: np.ndarray,
        labels: np.ndarray,
        rounds: int,
        previous: xgb.Booster | None,
    ) -> xgb.Booster:
        began = time.perf_counter()
        booster = self.engine(params, design, labels, rounds, previous)
        self.fits.append(time.perf_counter() - began)
        self.seconds += self.fits[-1]
        self.row_rounds += len(design) * rounds
        return booster


@dataclass(frozen=True)
class Fit:
    """One full fit: its wall time, the boosters' share, and the machine's other load."""

    label: str
    seconds: float
    boosting: float
    row_rounds: int
    others: float

    @property
    def fixed(self) -> float:
        """What stays in the training process whatever the engine (features excluded)."""
        return self.seconds - self.boosting


def tile(prices: pd.DataFrame, copies: int) -> pd.DataFrame:
    """``copies`` copies of the panel, copy ``i``'s tickers renamed ``<ticker>_<i>``."""
    frames = [prices.assign(ticker=prices["ticker"] + f"_{i}") for i in range(copies)]
    return pd.concat(frames, ignore_index=True)


def fit_once(
    label: str,
    config: TrainingConfig,
    features: pd.DataFrame,
    prices: pd.DataFrame,
    engine: BoosterFit,
) -> Fit:
    """Fit once with ``engine``; the wall time and the boosters' share of it."""
    timed = TimedEngine(engine)
    since = cpu_mark()
    QuantileForecaster(config).fit(features, prices, engine=timed)
    seconds = time.perf_counter() - since[0]
    return Fit(label, seconds, timed.seconds, timed.row_rounds, others_cores(since))


def measure(
    name: str, prices: pd.DataFrame, config: TrainingConfig, dask: BoosterFit
) -> tuple[Fit, Fit]:
    """The in-process and the Dask fit of one panel, printed as they finish."""
    began = time.perf_counter()
    features = build_features(prices)
    print(
        f"\n{name}: {prices['ticker'].nunique()} tickers, {len(features):,} feature rows "
        f"(features built in {time.perf_counter() - began:.1f} s, not counted below)"
    )
    fits = []
    for label, engine in (
        (f"in process, {config.booster.n_jobs} threads", fit_in_process),
        ("Dask", dask),
    ):
        fit = fit_once(label, config, features, prices, engine)
        fits.append(fit)
        print(
            f"  {label:<26}{fit.seconds:8.1f} s  boosting {fit.boosting:7.1f} s  "
            f"fixed {fit.fixed:6.1f} s  (others: {fit.others:.2f} cores)"
        )
    return fits[0], fits[1]


def project(dask: Fit, overhead: float, workers: int) -> None:
    """Per-worker throughput on the cluster and the projected fit on more workers."""
    computing = max(dask.boosting - overhead, 1e-9)
    per_worker = dask.row_rounds / (workers * computing)
    print(
        f"  per-worker throughput {per_worker / 1e6:.3f} M row-rounds/s "
        f"({dask.row_rounds / 1e6:.1f} M row-rounds on {workers} workers in {computing:.1f} s "
        f"+ {overhead:.1f} s overhead)"
    )
    for n in PROJECTED_WORKERS:
        total = dask.fixed + dask.row_rounds / (n * per_worker) + overhead
        print(f"  projected on {n:>2} workers: {total:7.1f} s (fixed {dask.fixed:.1f} s)")


def tiny_panel(prices: pd.DataFrame, config: TrainingConfig) -> pd.DataFrame:
    """Two tickers over just enough dates for a fit: the engine's cost without the rows'."""
    tickers = sorted(prices["ticker"].unique())[:2]
    dates = np.sort(prices["date"].unique())
    needed = config.min_train_days + config.calibration_days + 300  # + the features' warm-up
    kept = prices["ticker"].isin(tickers) & (prices["date"] >= dates[-needed])
    return prices.loc[kept].reset_index(drop=True)


def main() -> int:
    """Measure on the sample and on the tiled panel; print figures and projections."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=5, help="tiles of the sample (0: skip)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument(
        "--tiled-only", action="store_true", help="skip the sample itself (a busy box: time)"
    )
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    config = Settings().training
    sample = load_sample()
    print(
        f"default training settings: {config.booster.n_estimators} rounds, "
        f"{len(config.anchor_horizons)} anchors, {len(config.quantiles)} quantiles"
    )
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        tiny = tiny_panel(sample, config)
        # First use: the workers import xgboost and its collective starts; not a per-fit cost.
        fit_once("warm-up", config, build_features(tiny), tiny, DaskBoosterFit(client))
        local_tiny, dask_tiny = measure("tiny panel", tiny, config, DaskBoosterFit(client))
        overhead = max(0.0, dask_tiny.boosting - local_tiny.boosting)
        print(
            f"  Dask overhead per full fit ({len(config.anchor_horizons)} boosters): "
            f"{overhead:.1f} s"
        )
        panels = [] if args.tiled_only else [("sample", sample)]
        if args.copies > 1:
            panels.append((f"sample tiled x{args.copies}", tile(sample, args.copies)))
        for name, prices in panels:
            _, dask = measure(name, prices, config, DaskBoosterFit(client))
            project(dask, overhead, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
