"""The API benchmark's report: the table, memory per process, ratios and the goals' verdict."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.api_load import LEVELS, Level
from benchmarks.api_processes import TreeMemory

GOAL_HIT_P99_MS = 10.0
GOAL_THROUGHPUT_RATIO = 2.0
GOAL_RSS_MB = 600.0
MB = 1024 * 1024


@dataclass
class ServerReport:
    """Everything measured on one server."""

    name: str
    levels: list[Level]
    memory: TreeMemory
    first_requests_ms: list[float] = field(default_factory=list)


def print_report(reports: Sequence[ServerReport]) -> None:
    header = (
        f"{'server':<28} {'mode':<14} {'clients':>7} {'ok':>5} {'err':>4} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>8} {'cpu':>5} {'others':>6}  answers"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for report in reports:
        for level in report.levels:
            answers = ", ".join(f"{k} x{n}" for k, n in sorted(level.outcomes.items()))
            capped = " (time cap hit)" if level.capped else ""
            print(
                f"{level.server:<28} {level.mode:<14} {level.clients:>7} "
                f"{len(level.latencies):>5} {level.errors:>4} {level.p50_ms:>8.2f} "
                f"{level.p99_ms:>8.2f} {level.max_ms:>8.1f} {level.throughput:>8.1f} "
                f"{level.busy_cores:>5.2f} {level.others_cores:>6.2f}  "
                f"{answers}{capped}"
            )
    print(
        f"cpu: cores busy during the level (of {os.cpu_count()}), clients and servers included; "
        "others: of which taken by processes outside this benchmark\n"
    )
    for report in reports:
        memory = report.memory
        print(
            f"{report.name:<28} process tree RSS: ready {memory.ready_rss / MB:.0f} MB, peak "
            f"{memory.peak_rss / MB:.0f} MB; at the end RSS "
            f"{sum(p.rss for p in memory.end) / MB:.0f} MB, PSS "
            f"{sum(p.pss for p in memory.end) / MB:.0f} MB, USS "
            f"{sum(p.uss for p in memory.end) / MB:.0f} MB"
        )
        for process in memory.end:
            print(
                f"{'':<30}{process.rss / MB:5.0f} / {process.pss / MB:4.0f} / "
                f"{process.uss / MB:4.0f} MB (RSS/PSS/USS)  {process.what}"
            )
        if report.first_requests_ms:
            first = report.first_requests_ms
            print(
                f"{'':<28} first request per ticker (model runs), n={len(first)}: "
                f"median {statistics.median(first):.1f} ms, max {max(first):.1f} ms"
            )


def level(report: ServerReport, mode: str, clients: int) -> Level:
    return next(x for x in report.levels if x.mode == mode and x.clients == clients)


def print_verdict(api: ServerReport, peer: ServerReport, others: Sequence[ServerReport]) -> None:
    most = max(LEVELS)
    peer_rate = level(peer, "1 feature row", most).throughput
    print(f"\nratios at {most} clients (throughput / {peer.name}'s {peer_rate:.1f} req/s):")
    for report in (api, *others):
        for mode in ("cache hit", "cache miss"):
            rate = level(report, mode, most).throughput
            print(f"  {report.name:<28} {mode:<11} {rate / peer_rate:6.2f}x")
    if api.first_requests_ms:
        # The honest comparison: a request that really runs the model (a ticker's first).
        first = statistics.median(api.first_requests_ms)
        peer_p50 = level(peer, "1 feature row", 1).p50_ms
        print(
            f"  {api.name:<28} first request per ticker, median {first:.1f} ms vs "
            f"{peer.name}'s p50 at 1 client {peer_p50:.1f} ms: {first / peer_p50:.2f}x the time"
        )
    hit_p99 = level(api, "cache hit", 1).p99_ms
    hit_ratio = level(api, "cache hit", most).throughput / peer_rate
    miss_ratio = level(api, "cache miss", most).throughput / peer_rate
    rss = api.memory.peak_rss / MB

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print("\ngoals (in-process cache replica):")
    print(
        f"  cache-hit p99 at 1 client <= {GOAL_HIT_P99_MS:g} ms: {hit_p99:.2f} ms "
        f"-> {verdict(hit_p99 <= GOAL_HIT_P99_MS)}"
    )
    print(
        f"  throughput >= {GOAL_THROUGHPUT_RATIO:g}x mlflow at {most} clients: hit "
        f"{hit_ratio:.2f}x -> {verdict(hit_ratio >= GOAL_THROUGHPUT_RATIO)}, miss "
        f"{miss_ratio:.2f}x -> {verdict(miss_ratio >= GOAL_THROUGHPUT_RATIO)}"
    )
    print(f"  per-replica RSS <= {GOAL_RSS_MB:g} MB: {rss:.0f} MB -> {verdict(rss <= GOAL_RSS_MB)}")
