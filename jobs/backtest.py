"""The backtest job: the full walk-forward of the model and every baseline, table and plots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from finsimples.engines import training_engine
from finsimples.lake import Lake
from finsimples.settings import Settings
from jobs.common import JobError, read_training_prices
from registry.figures import backtest_figures
from training.evaluation import run_backtest, summarize_backtest


@dataclass(frozen=True)
class BacktestResult:
    """The headline table (one row per method and horizon) and where the report went."""

    span: str
    table: pd.DataFrame
    leakage: list[str]
    report_dir: Path


def run(
    settings: Settings, start: date | None = None, *, step: Callable[[str], None] | None = None
) -> BacktestResult:
    """Walk forward from ``start`` (default ``settings.backtest_start``) to the lake's end.

    Writes ``summary.csv``, ``coverage.csv`` and the plots to ``<reports_dir>/backtest-<date>``
    (``backtest-<date>-update<N>m`` with ``settings.training.update_months``).

    Raises:
        JobError: empty lake, or no data after ``start``.
    """
    report = step or (lambda _: None)
    config = settings.training
    prices = read_training_prices(Lake.from_settings(settings))
    first = pd.Timestamp(start or settings.backtest_start)
    last = prices["date"].max()
    if first >= last:
        raise JobError(f"the lake ends on {last.date()}, before the test start {first.date()}")
    report(f"walk-forward {first.date()} to {last.date()} (model and baselines)")
    try:
        with training_engine(settings) as engine:
            backtest = run_backtest(prices, config, first, engine=engine)
    except ValueError as exc:
        raise JobError(str(exc)) from exc
    summary = summarize_backtest(backtest, tuple(config.eval_horizons), "ewma_normal")

    report("writing the report")
    suffix = f"-update{config.update_months}m" if config.update_months else ""
    out = settings.reports_dir / f"backtest-{last.date()}{suffix}"
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "summary.csv")
    backtest.coverage.to_csv(out / "coverage.csv", index=False)
    for name, figure in backtest_figures(backtest, prices, config).items():
        figure.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    leakage = [f"{m}: {msg}" for m, msgs in backtest.leakage.items() for msg in msgs]
    return BacktestResult(
        span=f"{first.date()} to {last.date()}",
        table=summary.reset_index(),
        leakage=leakage,
        report_dir=out,
    )
