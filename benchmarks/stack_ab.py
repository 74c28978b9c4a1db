"""ApacheBench (``ab -k``) levels through NGINX, with a mix of request bodies.

``ab`` sends one body per process, so a level of ``c`` clients over a mix of bodies runs
``k = min(c, len(bodies))`` ``ab`` processes at once, each on one body with its share of the
clients, for the same time. Each process writes its whole latency distribution (``-e``: the
time under which 0..100% of its requests were served, in microseconds); the level's percentiles
are those of the processes' distributions pooled (each weighted by its requests, linear between
the percent points), its maximum the largest process maximum.

``ab`` speaks HTTP/1.0: NGINX keeps such connections alive (``Connection: keep-alive``), a
``bentoml serve`` replica (uvicorn) closes them after every answer, so ``ab -k`` cannot measure
a replica directly with kept-alive connections (the Python client does).
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_REQUESTS = 200_000  # per ab process; ab allocates its stats for this many up front


@dataclass(frozen=True)
class AbLevel:
    """One ``ab`` level: pooled figures over its processes."""

    clients: int
    processes: int
    ok: int
    errors: int  # failed (connect, receive, exceptions) plus non-2xx answers
    keep_alive: int  # requests sent on a kept-alive connection
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cores: float  # CPU of the ab processes, in cores

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


def available() -> bool:
    """Whether ``ab`` is installed (Debian: apache2-utils)."""
    return shutil.which("ab") is not None


def _count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    return int(found.group(1)) if found else 0


def _split(clients: int, parts: int) -> list[int]:
    return [clients // parts + (1 if i < clients % parts else 0) for i in range(parts)]


def pooled_percentiles(
    curves: Sequence[np.ndarray], counts: Sequence[int], qs: Sequence[float]
) -> list[float]:
    """Percentiles ``qs`` of the pooled requests of processes with percent curves ``curves``."""
    samples = [
        np.interp((np.arange(n) + 0.5) / n * 100, np.arange(101), curve)
        for curve, n in zip(curves, counts, strict=True)
        if n
    ]
    pooled = np.sort(np.concatenate(samples))
    return [float(np.percentile(pooled, q, method="nearest")) for q in qs]


def run_level(url: str, bodies: Sequence[bytes], clients: int, seconds: float) -> AbLevel:
    """``clients`` keep-alive clients POSTing ``bodies`` (one per process) for ``seconds``."""
    parts = min(clients, len(bodies))
    with tempfile.TemporaryDirectory(prefix="ab-") as tmp:
        folder = Path(tmp)
        processes = []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        for index, concurrency in enumerate(_split(clients, parts)):
            body = folder / f"body-{index}.json"
            body.write_bytes(bodies[index])
            command = ["ab", "-k", "-l", "-q", "-c", str(concurrency), "-t", str(seconds)]
            command += ["-n", str(MAX_REQUESTS), "-s", "30", "-p", str(body)]
            command += ["-T", "application/json", "-e", str(folder / f"percent-{index}.csv")]
            command.append(f"{url}/v1/forecast")
            processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        outputs = [process.communicate(timeout=seconds + 60)[0] for process in processes]
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        for process, output in zip(processes, outputs, strict=True):
            if process.returncode != 0:
                raise RuntimeError(f"ab exited with {process.returncode}:\n{output}")
        counts = [_count(r"Complete requests:\s+(\d+)", out) for out in outputs]
        failed = sum(_count(r"Failed requests:\s+(\d+)", out) for out in outputs)
        non_2xx = sum(_count(r"Non-2xx responses:\s+(\d+)", out) for out in outputs)
        keep_alive = sum(_count(r"Keep-Alive requests:\s+(\d+)", out) for out in outputs)
        durations = [
            float(m.group(1)) if (m := re.search(r"Time taken for tests:\s+([\d.]+)", out)) else 0
            for out in outputs
        ]
        curves = [
            np.loadtxt(folder / f"percent-{i}.csv", delimiter=",", skiprows=1)[:, 1]
            for i in range(parts)
        ]
    p50, p99 = pooled_percentiles(curves, counts, (50, 99))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    ok = max(0, sum(counts) - failed - non_2xx)
    return AbLevel(
        clients,
        parts,
        ok,
        failed + non_2xx,
        keep_alive,
        max(durations) or wall,
        p50,
        p99,
        max(float(curve[-1]) for curve in curves),
        cpu / wall,
    )
