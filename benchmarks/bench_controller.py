"""The platform running itself: what the scheduler and the deploy controller cost, and how long
a promotion takes to reach the replicas, by MLflow's webhook and by the poll alone.

A 3-replica stack as ``finsimples stack up`` runs it, with the Prefect server, the flows runner
and the deploy controller (poll 10 s, the default), under a temporary folder on free ports:

1. idle: resident memory (process trees) and CPU of ``prefect-server``, ``flows-runner`` and
   ``deploy-controller`` over ``--idle-seconds``, beside the replicas' as the peer;
2. under an open-loop load of ``--rate`` forecasts per second through NGINX: ``@champion``
   moved through the stack's MLflow server (what MLflow's UI does: a webhook fires), then moved
   back in the registry's store directly (no webhook: only the poll sees it). For each: the time
   from the alias move to the controller's decision (detection), to the last replica serving the
   new version, and to the verification's verdict; requests answered and failed meanwhile.

The deploys are not verified here (``FINSIMPLES_STACK__CONTROLLER_VERIFY=false``): a verification
adds its load test's run after the last replica moved, and on a busy 2-core box it can fail a
capacity line and roll back, leaving the second move nothing to do. Run with
``python -m benchmarks.bench_controller`` (about 6 minutes); figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from mlflow import MlflowClient

from benchmarks.stack_load import Figures, Request, Result, cycling, open_loop
from benchmarks.stack_run import build_stack, stack_up
from deploy.controller import ControllerState
from deploy.programs import CONTROLLER, PREFECT, RUNNER
from jobs.common import open_registry
from tests.champion import TICKERS
from tests.e2e.conftest import RunningStack, settings_of

OPERATIONS = (PREFECT, RUNNER, CONTROLLER)


def requests() -> list[Request]:
    """Cache-friendly forecasts: six tickers, two locales, horizon 5 (as the stack bench)."""
    return [
        Request(json.dumps({"ticker": t, "horizon_days": 5, "locale": loc}).encode())
        for t in TICKERS
        for loc in ("en", "pt-BR")
    ]


def tree(pid: int) -> list[psutil.Process]:
    """A process and its descendants."""
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def footprint(running: RunningStack, seconds: float) -> dict[str, dict[str, float]]:
    """Each program group's RSS (MB, at the end) and CPU (cores) over ``seconds`` of idling."""
    infos = running.stack.processes()
    groups: dict[str, list[int]] = {name: [infos[name].pid] for name in OPERATIONS}
    groups["replicas (3)"] = [i.pid for n, i in infos.items() if n.startswith("replica-")]

    def cpu(pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            for process in tree(pid):
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = process.cpu_times()
                    total += times.user + times.system
        return total

    before = {name: cpu(pids) for name, pids in groups.items()}
    time.sleep(seconds)
    figures = {}
    for name, pids in groups.items():
        rss = 0
        for pid in pids:
            for process in tree(pid):
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += process.memory_info().rss
        figures[name] = {
            "rss_mb": round(rss / 2**20, 1),
            "cores": round((cpu(pids) - before[name]) / seconds, 3),
        }
    return figures


def promotion(running: RunningStack, version: str, move: str, rate: float) -> dict[str, Any]:
    """Move ``@champion`` to ``version`` (``move``: ``webhook`` through the MLflow server,
    ``poll`` in the store directly) under load; the times and the load's figures."""
    state = ControllerState(running.stack.layout.controller)
    seen = len(state.recent(100_000))
    out: list[Result] = []
    stop = threading.Event()
    loader = threading.Thread(
        target=open_loop,
        args=(running.api, cycling(requests()), rate, 3600.0, out),
        kwargs={"stop": stop, "seed": 11},
        daemon=True,
    )
    loader.start()
    time.sleep(5)
    name = running.settings.model_name
    if move == "webhook":
        url = running.stack.urls.mlflow
        MlflowClient(tracking_uri=url, registry_uri=url).set_registered_model_alias(
            name, "champion", version
        )
    else:  # the sqlite store behind the server: no webhook is sent
        open_registry(running.settings).client.set_registered_model_alias(name, "champion", version)
    moved = time.time()
    decided = landed = verdict_at = None
    verdict = ""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and verdict_at is None:
        entries = state.recent(100_000)[seen:]
        for entry in entries:
            at = datetime.fromisoformat(entry["at"]).timestamp()
            if entry["event"] == "deploying" and decided is None:
                decided = at
            if entry["event"] in ("verified", "deployed", "rolled_back", "failed") and decided:
                verdict_at, verdict = at, entry["event"]
        if landed is None and {s.model_version for s in running.slots()} == {version}:
            landed = time.time()
        time.sleep(0.2)
    time.sleep(3)
    stop.set()
    loader.join()
    window = [r for r in out if r.sent_at >= moved]
    return {
        "move": move,
        "version": version,
        "detect_seconds": round(decided - moved, 1) if decided else None,
        "last_replica_seconds": round(landed - moved, 1) if landed else None,
        "verdict_seconds": round(verdict_at - moved, 1) if verdict_at else None,
        "verdict": verdict,
        "load": asdict(Figures.of(window, (window[-1].sent_at - moved) if window else 1.0)),
    }


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=30.0, help="forecasts per second")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args(list(argv) or None)
    root = Path(tempfile.mkdtemp(prefix="bench-controller-"))
    running = build_stack(root)
    # Unverified deploys: the figures are detection and rollout. A verification adds the load
    # test's run (20 s in the e2e tier) and, on this box, can fail a capacity line and roll
    # back, which would leave the second move nothing to do.
    running.env |= {"FINSIMPLES_STACK__CONTROLLER_VERIFY": "false"}
    running.settings = settings_of(running.env)
    summary: dict[str, Any] = {"rate": args.rate, "folder": str(root)}
    with stack_up(running) as cold:
        summary["stack_up_seconds"] = round(cold.up_seconds, 1)
        time.sleep(20)  # the Prefect server and runner settle; the webhook is registered
        summary["idle"] = footprint(running, args.idle_seconds)
        summary["webhook"] = promotion(running, running.v1, "webhook", args.rate)
        summary["poll"] = promotion(running, running.v2, "poll", args.rate)
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"stack up (with the scheduler and controller): {summary['stack_up_seconds']} s")
    print("idle footprint: program | RSS MB | cores")
    for name, figures in summary["idle"].items():
        print(f"  {name:18} | {figures['rss_mb']:7.1f} | {figures['cores']:.3f}")
    print(
        "promotion -> replicas, under load: move | detect s | last replica s | verdict s | "
        "sent | failed | p99 ms"
    )
    for key in ("webhook", "poll"):
        run = summary[key]
        load = run["load"]
        print(
            f"  {key:7} | {run['detect_seconds']} | {run['last_replica_seconds']} | "
            f"{run['verdict_seconds']} ({run['verdict']}) | {load['sent']} | {load['errors']} | "
            f"{load['p99_ms']:.0f}"
        )
    print(f"summary: {root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
