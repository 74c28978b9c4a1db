"""The load shapes, as plain numbers: who is connected when, and how often each one asks.

A Locust ``LoadTestShape`` (``loadtest.locustfile.ProfileShape``) only reads these; they hold no
Locust object, so they are tested and documented without starting Locust.

Pacing: each simulated investor starts one request every ``pacing_seconds`` (Locust's
``constant_pacing``), so at full strength a profile sends ``users / pacing_seconds`` requests
per second, about 93% of them forecasts (see ``loadtest.traffic``).

- ``seed``, the plan as written: 0 -> 100 users over 10 min, held until 60 min. One request per
  investor every 36 s gives 2.8 requests/s at the hold, 10,000 an hour, 9,300 of them
  forecasts: 93 times the plan's peak of 100 forecasts an hour; the plan's month (500 a day,
  15,000) in about 1 h 40.
- ``ci``: the same shape compressed thirty times, to 2 min (ramp 20 s), with the pacing
  compressed alike (1.2 s): the same ~9,000 requests, 83 requests/s at the hold.
- ``stress``: 20 users more every 20 s, one request per second each, until a step's p95
  passes the threshold, its errors pass the error budget, or the user cap (600); the knee is
  the highest request rate of a step that still passed. Locust runs on the same machine as the
  stack, so on a small box the knee is the machine's (client and servers), not the stack's.
- ``soak``: 30 users (one request every 2 s each, 15 requests/s), held for ``--duration``
  (30 min by default), watching memory and latency drift per replica.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Profile:
    """A ramp to ``users`` over ``ramp_seconds``, held until ``duration_seconds``."""

    name: str
    users: int
    ramp_seconds: float
    duration_seconds: float
    pacing_seconds: float
    summary: str

    @property
    def peak_rate(self) -> float:
        """Requests per second once every user is connected."""
        return self.users / self.pacing_seconds

    @property
    def spawn_rate(self) -> float:
        """Users started per second during the ramp."""
        return self.users / self.ramp_seconds

    def users_at(self, seconds: float) -> int | None:
        """Users connected ``seconds`` into the run; None once it is over."""
        if seconds >= self.duration_seconds:
            return None
        if seconds >= self.ramp_seconds:
            return self.users
        return max(1, math.ceil(self.users * seconds / self.ramp_seconds))

    def with_duration(self, seconds: float) -> Profile:
        """The same profile over ``seconds``: the ramp keeps its share of the run, the pacing
        its value (so a shortened run keeps the request rate)."""
        if seconds <= 0:
            raise ValueError(f"a run lasts more than 0 s, not {seconds:g}")
        ramp = self.ramp_seconds * seconds / self.duration_seconds
        return replace(self, ramp_seconds=max(1.0, ramp), duration_seconds=seconds)


@dataclass(frozen=True)
class StressPlan:
    """Steps of ``step_users`` more users every ``step_seconds``, until a step fails."""

    start_users: int = 20
    step_users: int = 20
    step_seconds: float = 20.0
    settle_seconds: float = 5.0  # the start of a step, while users connect, is not judged
    pacing_seconds: float = 1.0
    max_users: int = 600
    p95_seconds: float = 3.0
    max_error_rate: float = 0.01

    def users_of(self, step: int) -> int:
        """Users connected during step ``step`` (0-based)."""
        return self.start_users + step * self.step_users

    def window(self, step: int) -> tuple[float, float]:
        """The seconds of the run judged for step ``step``."""
        start = step * self.step_seconds
        return start + self.settle_seconds, start + self.step_seconds


@dataclass(frozen=True)
class StepResult:
    """One stress step, judged on its window."""

    step: int
    users: int
    requests: int
    rate: float  # requests per second
    p95_seconds: float
    error_rate: float
    passed: bool

    def as_dict(self) -> dict[str, float | int | bool]:
        """For the JSON records."""
        return {
            "step": self.step,
            "users": self.users,
            "requests": self.requests,
            "rate": self.rate,
            "p95_seconds": self.p95_seconds,
            "error_rate": self.error_rate,
            "passed": self.passed,
        }


def judge_step(
    plan: StressPlan, step: int, seconds: Sequence[float], failed: Sequence[bool]
) -> StepResult:
    """Judge step ``step`` from its window's answer times and failures."""
    start, end = plan.window(step)
    count = len(seconds)
    p95 = float(np.percentile(seconds, 95)) if count else math.inf
    error_rate = sum(failed) / count if count else 1.0
    passed = count > 0 and p95 <= plan.p95_seconds and error_rate <= plan.max_error_rate
    return StepResult(
        step, plan.users_of(step), count, count / (end - start), p95, error_rate, passed
    )


class StressRun:
    """The stress steps of one run: judged as their answers come in, stopping at a failure.

    Step k is judged ``grace`` seconds after its window ends (twice the p95 limit by default),
    so the requests it sent that are still in flight (near the knee, the slow ones) are in.
    """

    def __init__(self, plan: StressPlan, grace: float | None = None) -> None:
        self.plan = plan
        self.grace = 2 * plan.p95_seconds if grace is None else grace
        self.steps: list[StepResult] = []

    def tick(self, seconds: float, answers: Sequence[tuple[float, float, bool]]) -> int | None:
        """Users wanted ``seconds`` into the run (judging the steps due); None: stop.

        Args:
            seconds: Seconds since the run started.
            answers: (seconds since the start when sent, answer seconds, failed), so far.
        """
        plan = self.plan
        while (len(self.steps) + 1) * plan.step_seconds + self.grace <= seconds:
            done = len(self.steps)
            start, end = plan.window(done)
            window = [(s, f) for t, s, f in answers if start <= t < end]
            self.steps.append(
                judge_step(plan, done, [s for s, _ in window], [f for _, f in window])
            )
            if not self.steps[-1].passed or plan.users_of(done + 1) > plan.max_users:
                return None
        return min(plan.users_of(int(seconds // plan.step_seconds)), plan.max_users)


def knee(steps: Sequence[StepResult]) -> StepResult | None:
    """The highest-rate step that passed before the first one that failed."""
    passed: list[StepResult] = []
    for result in steps:
        if not result.passed:
            break
        passed.append(result)
    return max(passed, key=lambda r: r.rate) if passed else None


PROFILES: dict[str, Profile] = {
    "seed": Profile(
        "seed", 100, 600.0, 3600.0, 36.0, "the plan: 0 -> 100 users in 10 min, held to 60 min"
    ),
    "ci": Profile("ci", 100, 20.0, 120.0, 1.2, "the plan's shape compressed to 2 min"),
    "soak": Profile("soak", 30, 30.0, 1800.0, 2.0, "steady traffic, memory and latency drift"),
    "stress": Profile(
        "stress", 600, 20.0, 3600.0, 1.0, "steps of 20 users every 20 s until a step fails"
    ),
}
"""Every profile by name. ``stress`` is driven by :class:`StressPlan`; its entry bounds the run."""
