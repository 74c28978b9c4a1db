"""What other processes took from the machine while a benchmark step ran.

The box has 2 cores and is shared; a figure measured while someone else used a core is an upper
bound, and this says by how much the machine was shared.
"""

from __future__ import annotations

import time

from benchmarks.api_load import cpu_seconds

CpuMark = tuple[float, float, float]


def cpu_mark() -> CpuMark:
    """Now: wall time, the machine's busy CPU seconds, this process tree's CPU seconds."""
    return (time.perf_counter(), *cpu_seconds())


def others_cores(since: CpuMark) -> float:
    """Cores busy outside this process tree since ``since`` (other processes, steal time)."""
    wall, busy, ours = (now - then for now, then in zip(cpu_mark(), since, strict=True))
    return max(0.0, busy - ours) / wall
