"""The stack under test: a registry with two versions, `finsimples stack up` on free ports in a
temporary state folder (the e2e tier's helpers), its cold start, its CPU by process group, and
the NGINX balancing method switched by a graceful reload.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import pandas as pd
import psutil
import redis

from benchmarks.api_load import cpu_seconds
from benchmarks.api_servers import SAMPLE
from deploy.layout import Slot
from deploy.programs import endpoints
from deploy.stack import Stack
from tests.e2e.conftest import (
    RunningStack,
    registry_with_two_versions,
    settings_of,
    stack_environment,
)

REPLICAS = 3
Balancing = Literal["least_conn", "round_robin"]


@dataclass
class ColdStart:
    """How long `stack up` took, and each replica from its process start to ``/readyz`` 200."""

    up_seconds: float = 0.0
    replicas: dict[str, float] = field(default_factory=dict)


def build_stack(root: Path) -> RunningStack:
    """A lake of six sample tickers and a registry with v1 then v2 (@champion) under ``root``;
    the environment of a 3-replica stack on free ports with fault injection on, API keys off."""
    v1, v2 = registry_with_two_versions(root, pd.read_csv(SAMPLE, parse_dates=["Date"]))
    env = stack_environment(root / "state", REPLICAS, FINSIMPLES_FAULT_INJECTION="true")
    env.pop("FINSIMPLES_STACK__DRAIN_SECONDS")  # the e2e tier shortens it; keep the default
    return RunningStack(root, env, settings_of(env), v1, v2)


def _watch_ready(stack: Stack, ready: dict[str, float], stop: threading.Event) -> None:
    """Record when each replica's ``/readyz`` first answers 200 (UNIX time)."""
    with httpx.Client(timeout=0.5, trust_env=False) as client:
        while not stop.is_set():
            for slot in stack.layout.read_slots():
                if slot.name in ready:
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(stack.replica_url(slot) + "/readyz").status_code == 200:
                        ready[slot.name] = time.time()
            stop.wait(0.1)


@contextlib.contextmanager
def stack_up(running: RunningStack) -> Iterator[ColdStart]:
    """`finsimples stack up` (timed, each replica's start to ready watched); `stack down` at the
    end, even on failure, and a check that no process or port is left."""
    cold = ColdStart()
    ready: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_ready, args=(running.stack, ready, stop))
    watcher.start()
    try:
        started = time.perf_counter()
        up = running.cli("stack", "up")
        cold.up_seconds = time.perf_counter() - started
        if up.returncode != 0:
            raise RuntimeError(f"stack up failed:\n{up.stdout}\n{up.stderr}")
        deadline = time.monotonic() + 10
        while len(ready) < REPLICAS and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        watcher.join()
        infos = running.stack.processes()
        for slot in running.slots():
            began = psutil.Process(infos[slot.program].pid).create_time()
            cold.replicas[slot.name] = round(ready[slot.name] - began, 2)
        yield cold
    finally:
        stop.set()
        watcher.join()
        down = running.cli("stack", "down", timeout=120)
        left = running.leftovers()
        print(
            f"stack down: {(down.stdout + down.stderr).strip()}; left behind: {left or 'nothing'}"
        )


def replica_url(running: RunningStack, slot: Slot) -> str:
    """A replica's own URL, behind NGINX's back (its port from the stack's state)."""
    return running.stack.replica_url(slot)


def point_nginx(
    running: RunningStack, method: Balancing | None = None, slots: list[Slot] | None = None
) -> None:
    """Point NGINX at ``slots`` (default: every replica of the stack) with ``method`` (default:
    the settings'): the config rendered from the settings with only ``stack.balancing``
    changed, checked by ``nginx -t`` and reloaded gracefully. The stack's own state (its slots)
    is left as it is."""
    settings = running.settings
    method = method or settings.stack.balancing
    changed = settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"balancing": method})}
    )
    stack = Stack.of(changed)
    generation = stack.nginx_generation()
    if generation is None:
        raise RuntimeError("NGINX does not answer on its status port")
    stack.reload_nginx(slots or stack.layout.read_slots(), generation + 1)
    if ("least_conn;" in stack.layout.nginx_conf.read_text()) != (method == "least_conn"):
        raise RuntimeError(f"NGINX config does not say {method}")


def flush_cache(running: RunningStack) -> None:
    """Empty the stack's Redis: every forecast is a miss again."""
    client = redis.Redis.from_url(endpoints(running.settings, False).redis)
    try:
        client.flushdb()
    finally:
        client.close()


class CpuMeter:
    """CPU seconds by group: the load client (this process and its finished children), NGINX,
    Redis, the replicas, the stack's other programs (MLflow, Prometheus, supervisord), and
    the rest of the machine (``others``: processes outside the benchmark, steal time)."""

    def __init__(self, running: RunningStack) -> None:
        self.running = running

    def _groups(self) -> dict[str, list[psutil.Process]]:
        groups: dict[str, list[psutil.Process]] = {}
        for name, info in self.running.stack.processes().items():
            if not info.pid:
                continue
            group = "replicas" if name.startswith("replica-") else name
            group = group if group in ("replicas", "nginx", "redis") else "stack other"
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(info.pid)
                groups.setdefault(group, []).extend([process, *process.children(recursive=True)])
        pid_file = self.running.stack.layout.root / "supervisord.pid"
        with contextlib.suppress(OSError, ValueError, psutil.NoSuchProcess):
            groups.setdefault("stack other", []).append(psutil.Process(int(pid_file.read_text())))
        return groups

    def sample(self) -> dict[str, float]:
        """Cumulative CPU seconds by group now, and the machine's."""
        totals = {"machine": cpu_seconds()[0]}
        me = psutil.Process().cpu_times()
        totals["client"] = me.user + me.system + me.children_user + me.children_system
        for group, processes in self._groups().items():
            used = 0.0
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = process.cpu_times()
                    used += times.user + times.system
            totals[group] = used
        return totals

    @staticmethod
    def cores(
        before: dict[str, float], after: dict[str, float], seconds: float
    ) -> dict[str, float]:
        """Cores used by each group between two samples; ``others`` is the machine's rest."""
        used = {k: (after[k] - before.get(k, 0.0)) / seconds for k in after}
        machine = used.pop("machine")
        used["others"] = max(0.0, machine - sum(used.values()))
        used["machine"] = machine
        return {k: round(v, 2) for k, v in used.items()}
