"""The daily flow on the whole bundled sample: wall time per replayed day, next to a full retrain.

A temporary state folder gets the sample up to ``--start``; the retrain flow then makes the
first champion with a full refit gated on its walk-forward (what every day would cost without
incremental updates). Then each replayed day drops the sample's next trading day into the drop
location and runs the ingest flow and the retrain flow (incremental update, gate, promotion,
deploy hook with the drift check) under a local Prefect test server. Default settings (20
tickers, the default model, a 2-year gate), in-process cache, so the deploy hook's cache step
has nothing to warm.

The peer of the incremental retrain: once the last day is replayed, the retrain flow runs again
with ``full=True`` (what ``finsimples train --full`` does, plus the deploy hook) on the same
lake the last incremental retrain saw, and the two are printed as a ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort
from prefect.testing.utilities import prefect_test_harness

from benchmarks.machine import CpuMark, cpu_mark, others_cores
from finsimples.drop import DropZone
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.replay import next_day_file
from finsimples.settings import Settings
from flows.deploy_hook import deploy_hook_flow
from flows.ingest import ingest_flow
from flows.retrain import retrain_flow

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sp500_prices.csv.gz"


@dataclass(frozen=True)
class RetrainRun:
    """One run of the retrain flow (after the ingest flow on a replayed day), in seconds."""

    label: str
    mode: str
    retrain: float
    hook: float | None  # None: nothing was promoted, so the deploy hook did not run
    ingest: float | None  # None: no ingest before this retrain
    others: float  # cores taken by processes outside the benchmark meanwhile

    @property
    def without_hook(self) -> float:
        """The retrain flow without its deploy hook: plan, train job, logging, promotion."""
        return self.retrain - (self.hook or 0.0)

    @property
    def total(self) -> float:
        """Ingest plus retrain: what the day cost."""
        return (self.ingest or 0.0) + self.retrain


def last_run_seconds(flow_name: str) -> float:
    """Run time of the latest run of ``flow_name`` as the Prefect server recorded it."""
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    return run.total_run_time.total_seconds()


def run_retrain(
    label: str, *, full: bool = False, ingest: float | None = None, since: CpuMark | None = None
) -> RetrainRun:
    """Run the retrain flow once and time it, with its deploy hook apart.

    Args:
        label: the table's first column.
        full: ask for a full refit (otherwise the flow decides, as every day).
        ingest: the seconds of the ingest flow run just before, if any.
        since: where to count other processes' CPU from (default: now).
    """
    since = since or cpu_mark()
    started = time.perf_counter()
    summary = retrain_flow(full=full)
    seconds = time.perf_counter() - started
    hook = None
    if summary.outcome is not None and summary.outcome.promoted and summary.outcome.version:
        # What the deploy controller runs after a promotion (here: the cache step, no stack).
        deploy_hook_flow(new_version=summary.outcome.version, old_version=summary.plan.champion)
        hook = last_run_seconds("deploy-hook")
    mode = summary.outcome.mode if summary.outcome else "nothing"
    print(f"{label}: {summary.message}")
    return RetrainRun(label, mode, seconds, hook, ingest, others_cores(since))


def replay_day(lake: Lake, drop: DropZone) -> RetrainRun | None:
    """Drop the sample's next trading day, run the ingest flow, then the retrain flow."""
    day = next_day_file(SAMPLE, lake)
    if day is None:
        return None
    drop.put(day.name, day.data)
    since, started = cpu_mark(), time.perf_counter()
    ingest_flow()
    return run_retrain(str(day.day), ingest=time.perf_counter() - started, since=since)


def print_runs(runs: list[RetrainRun]) -> None:
    """The table: one line per retrain flow run."""
    print("seconds; hook: the deploy hook; others: cores taken outside the benchmark")
    header = f"{'ingest':>7}{'retrain':>9}{'hook':>7}{'no hook':>9}{'total':>8}{'others':>8}"
    print(f"{'':<34}{header}  mode")
    for run in runs:
        ingest = "-" if run.ingest is None else f"{run.ingest:.1f}"
        hook = "-" if run.hook is None else f"{run.hook:.1f}"
        print(
            f"{run.label:<34}{ingest:>7}{run.retrain:9.1f}{hook:>7}"
            f"{run.without_hook:9.1f}{run.total:8.1f}{run.others:8.2f}  {run.mode}"
        )


def print_ratios(first: RetrainRun, days: list[RetrainRun], full: RetrainRun) -> None:
    """Mean day against the first full retrain; full against incremental on the same lake."""
    mean = sum(d.total for d in days) / len(days)
    print(f"mean day (ingest + retrain) {mean:.1f} s (goal <= 90 s)")
    print(f"  ratio first full retrain / mean day: {first.retrain / mean:.1f}x")
    last = days[-1]
    print(f"same lake (through {last.label}): full retrain flow vs the incremental one")
    print(
        f"  whole flow:       {full.retrain:6.1f} s vs {last.retrain:5.1f} s, "
        f"ratio {full.retrain / last.retrain:.1f}x"
    )
    print(
        f"  without the hook: {full.without_hook:6.1f} s vs {last.without_hook:5.1f} s, "
        f"ratio {full.without_hook / last.without_hook:.1f}x"
    )
    if last.mode != "incremental":
        print(f"  the last day's retrain was {last.mode}, not incremental: no comparison")
    if (full.hook is None) != (last.hook is None):
        print("  only one of the two ran the deploy hook: compare them without it")


def main() -> int:
    """Replay the days and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=5, help="trading days to replay")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2022, 11, 21))
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="finsimples-bench-flows-"))
    os.environ["FINSIMPLES_STATE_DIR"] = str(state)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_HOME", str(state / "prefect"))

    settings = Settings()
    lake = Lake.from_settings(settings)
    ingest_files(lake, [SAMPLE], until=args.start)
    drop = DropZone.from_settings(settings)
    print(f"state {state}; sample up to {args.start}; load average {os.getloadavg()[0]:.2f}")
    with prefect_test_harness(server_startup_timeout=120):
        first = run_retrain("full retrain (no champion)")
        days = []
        for _ in range(args.days):
            day = replay_day(lake, drop)
            if day is None:
                break
            days.append(day)
        if not days:
            raise SystemExit(f"no trading day in the sample after {args.start}")
        full = run_retrain(f"full retrain, lake of {days[-1].label}", full=True)
    print_runs([first, *days, full])
    print_ratios(first, days, full)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
