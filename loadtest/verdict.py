"""The SLA verdict of a load test run, from what the clients saw and what the replicas counted.

Pure: records and samples in, lines out. Each line is a measured figure against a threshold of
:class:`~config.loadtest.LoadTestConfig` (the scalability plan's numbers by default); the run
passes when no line fails. A line that could not be measured (no access to the replicas from a
remote ``--host``) says so and does not decide.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from config.loadtest import LoadTestConfig
from loadtest.profiles import PROFILES, Profile, StepResult, knee
from loadtest.records import RequestRecord
from loadtest.sampler import ReplicaSample

ANSWER_SOURCES = ("fresh", "cache", "fallback")
OTHER_TRAFFIC_SLACK = 0.02
"""The replicas may count this share more forecasts than the clients got (NGINX's retries of
answers that came too late) before the difference is taken for someone else's traffic."""


@dataclass(frozen=True)
class Line:
    """One figure of the verdict against its threshold."""

    name: str
    measured: float | None  # None: not measured
    limit: float
    bound: Literal["max", "min"]  # measured must stay at most / at least limit
    unit: Literal["s", "%", "req/s", ""] = ""
    strict: bool = False  # "<" rather than "<="
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """Whether the figure meets its threshold; None when not measured."""
        if self.measured is None:
            return None
        if self.bound == "max":
            return self.measured < self.limit if self.strict else self.measured <= self.limit
        return self.measured >= self.limit

    @property
    def rule(self) -> str:
        """The threshold as text, e.g. ``<= 3 s``."""
        op = {"max": "<" if self.strict else "<=", "min": ">="}[self.bound]
        return f"{op} {fmt(self.limit, self.unit)}"

    @property
    def shown(self) -> str:
        """The measured figure as text."""
        return "not measured" if self.measured is None else fmt(self.measured, self.unit)

    def explain(self) -> str:
        """Why the line failed, and by how much (empty when it passed or was not measured)."""
        if self.passed is not False or self.measured is None:
            return ""
        gap = abs(self.measured - self.limit)
        side = "over" if self.bound == "max" else "under"
        return f"{self.name}: {self.shown} is {fmt(gap, self.unit)} {side} the threshold " + (
            f"{self.rule} ({self.note})" if self.note else self.rule
        )

    def as_dict(self) -> dict[str, Any]:
        """For the JSON summary."""
        return {
            "name": self.name,
            "measured": self.measured,
            "threshold": self.rule,
            "passed": self.passed,
            "note": self.note,
        }


def fmt(value: float, unit: str) -> str:
    """A figure with its unit (percentages from fractions)."""
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "req/s":
        return f"{value:.1f} req/s"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Verdict:
    """Every line of a run's verdict."""

    lines: tuple[Line, ...]

    @property
    def passed(self) -> bool:
        """No line failed."""
        return all(line.passed is not False for line in self.lines)

    @property
    def failures(self) -> list[str]:
        """Each failed line, explained."""
        return [line.explain() for line in self.lines if line.passed is False]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile, None for no values."""
    return float(np.percentile(values, q)) if len(values) else None


def cache_rate_from_answers(requests: Sequence[RequestRecord]) -> float | None:
    """Cache answers among the successful forecasts (``provenance.source``)."""
    sources = Counter(r.source for r in requests if r.kind == "forecast" and r.ok)
    total = sum(sources[s] for s in ANSWER_SOURCES)
    return sources["cache"] / total if total else None


def answer_deltas(
    samples: Sequence[ReplicaSample], counter: str = "answers"
) -> dict[str, float] | None:
    """What the replicas counted (``answers`` by source, or ``narrator`` events) between their
    first and last readings, summed over the replicas."""
    first: dict[str, dict[str, float]] = {}
    last: dict[str, dict[str, float]] = {}
    for sample in samples:
        counts: dict[str, float] | None = getattr(sample, counter)
        if counts is None:
            continue
        first.setdefault(sample.replica, counts)
        last[sample.replica] = counts
    if not last:
        return None
    totals: dict[str, float] = {}
    for replica, end in last.items():
        start = first[replica]
        for source, value in end.items():
            before = start.get(source, 0.0)
            grown = value - before if value >= before else value  # restarted: counts from 0
            totals[source] = totals.get(source, 0.0) + grown
    return totals


def cache_rate_from_metrics(samples: Sequence[ReplicaSample]) -> float | None:
    """Cache answers among forecast answers, from the replicas' ``/metrics``."""
    deltas = answer_deltas(samples)
    if deltas is None:
        return None
    total = sum(deltas.get(s, 0.0) for s in ANSWER_SOURCES)
    return deltas.get("cache", 0.0) / total if total else None


def replica_shares(requests: Sequence[RequestRecord], replicas: Sequence[str]) -> dict[str, float]:
    """Each replica's share of the successful answers (from the replica header)."""
    counts = Counter(r.replica for r in requests if r.ok and r.replica)
    names = list(replicas) or sorted(counts)
    total = sum(counts[name] for name in names)
    return {name: (counts[name] / total if total else 0.0) for name in names}


def _peak_cpu(samples: Sequence[ReplicaSample], replica: str) -> float | None:
    values = [s.cpu_percent for s in samples if s.replica == replica and s.cpu_percent is not None]
    return max(values) if values else None


def _rss_growth(samples: Sequence[ReplicaSample], replica: str, after: float) -> float | None:
    values = [s.rss_bytes for s in samples if s.replica == replica and s.t >= after and s.rss_bytes]
    if len(values) < 10:
        return None
    tenth = len(values) // 10
    return float(np.median(values[-tenth:]) / np.median(values[:tenth]) - 1)


def _p95_drift(requests: Sequence[RequestRecord], replica: str, after: float) -> float | None:
    times = [(r.t, r.seconds) for r in requests if r.replica == replica and r.t >= after]
    if len(times) < 40:
        return None
    quarter = len(times) // 4
    first = percentile([s for _, s in times[:quarter]], 95)
    last = percentile([s for _, s in times[-quarter:]], 95)
    return last / first if first and last is not None else None


def judge(
    requests: Sequence[RequestRecord],
    samples: Sequence[ReplicaSample],
    config: LoadTestConfig,
    profile: Profile,
    replicas: Sequence[str] = (),
    steps: Sequence[StepResult] = (),
    started: float = 0.0,
) -> Verdict:
    """The verdict of a run.

    Args:
        requests: Every request the clients sent.
        samples: The replicas' readings (empty when they could not be reached).
        config: The thresholds.
        profile: The profile run (``stress`` is judged on its knee, ``soak`` on drift too).
        replicas: The replicas expected to share the traffic (default: those that answered).
        steps: The stress steps, as judged during the run.
        started: UNIX time the run started (soak drift is measured after the ramp).
    """
    if profile.name == "stress":
        return Verdict((_knee_line(steps),))
    lines = _sla_lines(requests, config)
    shares = replica_shares(requests, replicas)
    mean_share = 1 / len(shares) if shares else 0.0
    for name, share in shares.items():
        off = share / mean_share - 1 if mean_share else math.inf
        note = f"share {share:.1%} vs mean {mean_share:.1%}"
        lines.append(
            Line(f"balance {name}", abs(off), config.balance_tolerance, "max", "%", note=note)
        )
    lines += _cache_lines(requests, samples, config)
    names = list(shares) or sorted({s.replica for s in samples})
    for name in names:
        peak = _peak_cpu(samples, name)
        lines.append(
            Line(
                f"peak CPU {name}",
                None if peak is None else peak / 100,
                config.max_cpu_percent / 100,
                "max",
                "%",
                note="100% = one core",
            )
        )
    if profile.name == "soak":
        after = started + profile.ramp_seconds
        for name in names:
            growth = _rss_growth(samples, name, after)
            lines.append(Line(f"memory growth {name}", growth, config.max_rss_growth, "max", "%"))
            drift = _p95_drift(requests, name, after)
            lines.append(
                Line(
                    f"p95 drift {name}",
                    drift,
                    config.max_p95_drift,
                    "max",
                    note="last quarter's p95 / first quarter's",
                )
            )
    return Verdict(tuple(lines))


def _sla_lines(requests: Sequence[RequestRecord], config: LoadTestConfig) -> list[Line]:
    seconds = [r.seconds for r in requests]
    failed = sum(1 for r in requests if not r.ok)
    mean = float(np.mean(seconds)) if seconds else None
    return [
        Line("p95 latency", percentile(seconds, 95), config.p95_seconds, "max", "s"),
        Line("mean latency", mean, config.mean_seconds, "max", "s"),
        Line(
            "error rate",
            failed / len(requests) if requests else None,
            config.max_error_rate,
            "max",
            "%",
            strict=True,
            note=f"{failed} of {len(requests)} requests",
        ),
    ]


def _cache_lines(
    requests: Sequence[RequestRecord], samples: Sequence[ReplicaSample], config: LoadTestConfig
) -> list[Line]:
    by_answers = cache_rate_from_answers(requests)
    by_metrics = cache_rate_from_metrics(samples)
    ok_forecasts = [r for r in requests if r.kind == "forecast" and r.ok]
    fallbacks = sum(1 for r in ok_forecasts if r.source == "fallback")
    agree, agree_note = None, "difference of the two hit rates"
    counted = sum((answer_deltas(samples) or {}).get(s, 0.0) for s in ANSWER_SOURCES)
    others = counted - len(ok_forecasts)
    if others > OTHER_TRAFFIC_SLACK * len(ok_forecasts) + 5:
        # The replicas also answered someone else: the two rates are of different traffic.
        agree_note = f"not comparable: the replicas answered {others:.0f} forecasts to others"
    elif by_answers is not None and by_metrics is not None:
        agree = abs(by_answers - by_metrics)
    return [
        Line(
            "cache hit rate (answers)",
            by_answers,
            config.min_cache_hit_rate,
            "min",
            "%",
            note="provenance.source of the forecasts",
        ),
        Line(
            "cache hit rate (/metrics)",
            by_metrics,
            config.min_cache_hit_rate,
            "min",
            "%",
            note="finsimples_answers_total of the replicas",
        ),
        Line(
            "cache measurements agree", agree, config.cache_agreement, "max", "%", note=agree_note
        ),
        Line(
            "fallback rate",
            fallbacks / len(ok_forecasts) if ok_forecasts else None,
            config.max_fallback_rate,
            "max",
            "%",
            note=f"{fallbacks} stale answers",
        ),
    ]


def _knee_line(steps: Sequence[StepResult]) -> Line:
    """The stress run's knee against the seed profile's peak rate (what the plan needs)."""
    best = knee(steps)
    if not steps:
        return Line("knee (highest passing rate)", None, PROFILES["seed"].peak_rate, "min", "req/s")
    note = (
        "no step passed"
        if best is None
        else (f"{best.users} users, p95 {best.p95_seconds:.3f} s, errors {best.error_rate:.2%}")
    )
    if best is not None and all(step.passed for step in steps):
        note += "; the user cap came first: the knee is higher"

    return Line(
        "knee (highest passing rate)",
        best.rate if best else 0.0,
        PROFILES["seed"].peak_rate,
        "min",
        "req/s",
        note=f"{note}; needed: the seed profile's peak rate",
    )
