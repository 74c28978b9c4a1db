"""The stack benchmark's rolling deploy: `finsimples deploy` under a steady open-loop load.

The load client resends once on a kept-alive connection closed before any answer (NGINX's
graceful reload; ``benchmarks.stack_load.send``) and counts it. The rollout's own report (in the
lake under ``reports/deploys/``) gives each replica's steps and the window NGINX counted.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from typing import Any

from benchmarks.api_load import cpu_seconds
from benchmarks.stack_load import Figures, Request, Result, cycling, open_loop
from tests.e2e.conftest import RunningStack


def rolling_deploy(
    running: RunningStack, requests: list[Request], rate: float, before: float, after: float
) -> dict[str, Any]:
    """`finsimples deploy --version <v1>` (v2 serves) under an open loop of ``requests`` at
    ``rate`` per second: ``before`` seconds of load first, ``after`` seconds after it ends.

    Figures per window: before; the rollout (the deploy report's window) and its phases (new
    replicas starting; warm-up, NGINX reload, drain); the whole command; after.
    """
    out: list[Result] = []
    stop = threading.Event()
    load_thread = threading.Thread(
        target=open_loop,
        args=(running.api, cycling(requests), rate, 3600.0, out),
        kwargs={"stop": stop, "seed": 7},
        daemon=True,
    )
    machine_at_start = cpu_seconds()[0]
    start = time.time()
    load_thread.start()
    try:
        time.sleep(before)
        machine = cpu_seconds()[0]
        began = time.time()
        machine_before = (machine - machine_at_start) / (began - start)
        deploy = running.cli("deploy", "--version", running.v1)
        ended = time.time()
        machine_during = (cpu_seconds()[0] - machine) / (ended - began)
        time.sleep(after)
    finally:
        stop.set()
        stopped = time.time()
        load_thread.join()
    if deploy.returncode != 0:
        raise RuntimeError(f"deploy failed:\n{deploy.stdout}\n{deploy.stderr}")
    folder = running.settings.state_dir / "lake" / "reports" / "deploys"
    record = json.loads(sorted(folder.glob(f"*-v{running.v1}.json"))[-1].read_text())
    rollout = record["rollout"]
    w0, w1 = rollout["window"]

    def window(lo: float, hi: float) -> dict[str, Any]:
        return asdict(Figures.of([r for r in out if lo <= r.sent_at < hi], hi - lo))

    # The rollout's steps, one replica after the other from the window's start: a new
    # replica starting beside the serving ones, then warm + NGINX reload + drain and stop.
    phases: dict[str, list[tuple[float, float]]] = {"starting": [], "switching": []}
    at = w0
    for step in rollout["replicas"]:
        rest = step["warm_seconds"] + step["switch_seconds"] + step["drain_seconds"]
        phases["starting"].append((at, at + step["start_seconds"]))
        phases["switching"].append((at + step["start_seconds"], at + step["start_seconds"] + rest))
        at += step["start_seconds"] + rest

    def spans(intervals: list[tuple[float, float]]) -> dict[str, Any]:
        inside = [r for r in out if any(lo <= r.sent_at < hi for lo, hi in intervals)]
        return asdict(Figures.of(inside, sum(hi - lo for lo, hi in intervals)))

    last = [r for r in out if r.sent_at >= ended]
    return {
        "rate": rate,
        "command_seconds": round(ended - began, 1),
        "rollout": rollout,
        "before": window(start + 1, began),
        "during_command": window(began, ended),
        "during_rollout": window(w0, w1),
        "rollout_starting": spans(phases["starting"]),
        "rollout_switching": spans(phases["switching"]),
        "after": window(ended, ended + after),
        "all": window(start, stopped),
        "versions_after": sorted({r.model_version for r in last if r.status == 200}),
        "machine_cores": {"before": round(machine_before, 2), "during": round(machine_during, 2)},
        "output": deploy.stdout[-2000:],
    }
