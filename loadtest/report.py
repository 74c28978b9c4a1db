"""The report folder of a run: the JSON summary and the PNG charts (Locust writes its HTML).

Charts, bucketed over time (about 100 buckets a run, at least 5 s each):
latency percentiles against the p95 threshold, requests per second per replica, the cache hit
rate (from the answers and from the replicas' counters) against its threshold, CPU per replica
against the plan's 70% (autoscaling) and 80% (alert) lines, and memory per replica.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from config.loadtest import LoadTestConfig
from loadtest.records import RequestRecord
from loadtest.sampler import ReplicaSample
from loadtest.verdict import ANSWER_SOURCES

CHARTS = ("latency.png", "rps_per_replica.png", "cache_hit_rate.png", "cpu_per_replica.png")


def bucket_seconds(duration: float) -> float:
    """Bucket width for a run of ``duration`` seconds."""
    return max(5.0, duration / 100)


def _buckets(times: Sequence[float], start: float, width: float) -> np.ndarray:
    return ((np.asarray(times) - start) // width).astype(int)


@dataclass(frozen=True)
class ChartData:
    """What every chart draws from."""

    requests: Sequence[RequestRecord]
    samples: Sequence[ReplicaSample]
    config: LoadTestConfig
    started: float  # UNIX time of the run's start
    width: float  # bucket width, seconds


def write_charts(
    folder: Path,
    requests: Sequence[RequestRecord],
    samples: Sequence[ReplicaSample],
    config: LoadTestConfig,
    started: float,
    duration: float,
) -> list[str]:
    """Draw the charts into ``folder``; the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = ChartData(requests, samples, config, started, bucket_seconds(duration))
    written = []
    charts = {
        "latency.png": _latency,
        "rps_per_replica.png": _rps,
        "cache_hit_rate.png": _cache,
        "cpu_per_replica.png": _cpu,
        "memory_per_replica.png": _memory,
    }
    for name, draw in charts.items():
        fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
        draw(ax, data)
        ax.set_xlabel("minutes into the run")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        written.append(name)
    return written


def _latency(ax: Any, data: ChartData) -> None:
    buckets: dict[int, list[float]] = defaultdict(list)
    for index, r in zip(
        _buckets([r.t for r in data.requests], data.started, data.width), data.requests, strict=True
    ):
        buckets[int(index)].append(r.seconds)
    keys = sorted(buckets)
    minutes = [k * data.width / 60 for k in keys]
    for q in (50, 95, 99):
        ax.plot(minutes, [np.percentile(buckets[k], q) for k in keys], label=f"p{q}")
    ax.axhline(data.config.p95_seconds, color="red", linestyle="--", label="p95 threshold")
    ax.set_yscale("log")
    ax.set_ylabel("seconds")
    ax.set_title("Answer time percentiles")


def _rps(ax: Any, data: ChartData) -> None:
    by_replica: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for index, r in zip(
        _buckets([r.t for r in data.requests], data.started, data.width), data.requests, strict=True
    ):
        by_replica[r.replica or "(no replica header)"][int(index)] += 1
    for replica in sorted(by_replica):
        keys = sorted(by_replica[replica])
        rates = [by_replica[replica][k] / data.width for k in keys]
        ax.plot([k * data.width / 60 for k in keys], rates, label=replica)
    ax.set_ylabel("requests / s")
    ax.set_title("Requests per second per replica")


def _cache(ax: Any, data: ChartData) -> None:
    forecasts = [r for r in data.requests if r.kind == "forecast" and r.ok]
    hits: dict[int, list[bool]] = defaultdict(list)
    for index, r in zip(
        _buckets([r.t for r in forecasts], data.started, data.width), forecasts, strict=True
    ):
        hits[int(index)].append(r.source == "cache")
    keys = sorted(hits)
    ax.plot([k * data.width / 60 for k in keys], [np.mean(hits[k]) for k in keys], label="answers")
    times, rates = _metrics_hit_rate(data.samples, data.started)
    if times:
        ax.plot(times, rates, label="replicas' /metrics", linestyle=":")
    ax.axhline(data.config.min_cache_hit_rate, color="red", linestyle="--", label="threshold")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("hit rate")
    ax.set_title("Forecast cache hit rate")


def _metrics_hit_rate(
    samples: Sequence[ReplicaSample], started: float
) -> tuple[list[float], list[float]]:
    """Hit rate between consecutive readings, summed over the replicas."""
    previous: dict[str, dict[str, float]] = {}
    per_time: dict[float, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in samples:
        if s.answers is None:
            continue
        before = previous.get(s.replica)
        previous[s.replica] = s.answers
        if before is None:
            continue
        slot = round((s.t - started) / 60, 1)
        total = sum(max(0.0, s.answers.get(k, 0) - before.get(k, 0)) for k in ANSWER_SOURCES)
        per_time[slot][0] += max(0.0, s.answers.get("cache", 0) - before.get("cache", 0))
        per_time[slot][1] += total
    times = [t for t in sorted(per_time) if per_time[t][1] > 0]
    return times, [per_time[t][0] / per_time[t][1] for t in times]


def _cpu(ax: Any, data: ChartData) -> None:
    for replica in sorted({s.replica for s in data.samples}):
        points = [
            (s.t, s.cpu_percent)
            for s in data.samples
            if s.replica == replica and s.cpu_percent is not None
        ]
        ax.plot([(t - data.started) / 60 for t, _ in points], [c for _, c in points], label=replica)
    ax.axhline(70, color="orange", linestyle="--", label="HPA target 70%")
    ax.axhline(
        data.config.max_cpu_percent,
        color="red",
        linestyle="--",
        label=f"alert {data.config.max_cpu_percent:g}%",
    )
    ax.set_ylabel("CPU % (100 = one core)")
    ax.set_title("CPU per replica")


def _memory(ax: Any, data: ChartData) -> None:
    for replica in sorted({s.replica for s in data.samples}):
        points = [(s.t, s.rss_bytes) for s in data.samples if s.replica == replica and s.rss_bytes]
        ax.plot(
            [(t - data.started) / 60 for t, _ in points],
            [b / 2**20 for _, b in points],
            label=replica,
        )
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("Memory per replica (process tree)")


def write_summary(folder: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json``; its path."""
    path = folder / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return path
