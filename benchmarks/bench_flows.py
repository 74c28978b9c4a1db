"""The daily flow on the whole bundled sample: wall time per replayed day, next to a full retrain.

A temporary state folder gets the sample up to ``--start``; the retrain flow then makes the
first champion with a full refit gated on its walk-forward (the peer: what every day would cost
without incremental updates). Then each replayed day drops the sample's next trading day into
the drop location and runs the ingest flow and the retrain flow (incremental update, gate,
promotion, deploy hook with the drift check) under a local Prefect test server. Default
settings (20 tickers, the default model, a 2-year gate), in-process cache, so the deploy hook's
cache step has nothing to warm.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort
from prefect.testing.utilities import prefect_test_harness

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sp500_prices.csv.gz"


def last_run_seconds(flow_name: str) -> float:
    """Run time of the latest run of ``flow_name`` as the Prefect server recorded it."""
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    return run.total_run_time.total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=5, help="trading days to replay")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2022, 11, 21))
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="finsimples-bench-flows-"))
    os.environ["FINSIMPLES_STATE_DIR"] = str(state)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_HOME", str(state / "prefect"))

    from finsimples.drop import DropZone
    from finsimples.ingest import ingest_files
    from finsimples.lake import Lake
    from finsimples.replay import next_day_file
    from finsimples.settings import Settings
    from flows.ingest import ingest_flow
    from flows.retrain import retrain_flow

    settings = Settings()
    lake = Lake.from_settings(settings)
    ingest_files(lake, [SAMPLE], until=args.start)
    drop = DropZone.from_settings(settings)
    print(f"state {state}; sample up to {args.start}; load average {os.getloadavg()[0]:.2f}")
    with prefect_test_harness(server_startup_timeout=120):
        started = time.perf_counter()
        first = retrain_flow()
        full = time.perf_counter() - started
        print(f"full retrain (walk-forward gate, fit, register, deploy hook): {full:6.1f} s")
        print(f"  {first.message}")
        print("day         ingest  retrain  of which deploy hook  day total  mode")
        totals = []
        for _ in range(args.days):
            day = next_day_file(SAMPLE, lake)
            if day is None:
                break
            drop.put(day.name, day.data)
            started = time.perf_counter()
            ingest_flow()
            ingested = time.perf_counter()
            summary = retrain_flow()
            done = time.perf_counter()
            hook = last_run_seconds("deploy-hook") if summary.deploy else 0.0
            totals.append(done - started)
            mode = summary.outcome.mode if summary.outcome else "nothing"
            print(
                f"{day.day}  {ingested - started:6.1f}  {done - ingested:7.1f}"
                f"  {hook:20.1f}  {done - started:9.1f}  {mode}"
            )
    mean = sum(totals) / len(totals)
    print(f"mean day {mean:.1f} s (goal <= 90 s); full retrain / mean day: {full / mean:.1f}x")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
