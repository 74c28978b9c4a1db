"""The load shapes and the traffic mix, as numbers (no Locust in the test process)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from loadtest.profiles import PROFILES, StressPlan, StressRun, judge_step, knee
from loadtest.traffic import (
    BAD_REQUESTS,
    TASK_WEIGHTS,
    Investor,
    Popularity,
    every_ticker,
    zipf_weights,
)


def test_seed_is_the_plan_and_beats_its_peak_hour() -> None:
    seed = PROFILES["seed"]
    assert seed.users_at(0) == 1
    assert seed.users_at(300) == 50  # halfway up the 10 min ramp
    assert seed.users_at(600) == seed.users_at(3599) == 100
    assert seed.users_at(3600) is None
    assert seed.peak_rate * 3600 >= 100  # at least the plan's 100 forecasts an hour
    assert seed.peak_rate == pytest.approx(100 / 36)


def test_ci_is_the_seed_shape_compressed() -> None:
    seed, ci = PROFILES["seed"], PROFILES["ci"]
    assert ci.duration_seconds == 120
    factor = seed.duration_seconds / ci.duration_seconds
    assert ci.ramp_seconds * factor == seed.ramp_seconds
    assert ci.pacing_seconds * factor == pytest.approx(seed.pacing_seconds)
    for fraction in (0.05, 0.1, 0.5, 0.99):
        assert ci.users_at(fraction * ci.duration_seconds) == seed.users_at(
            fraction * seed.duration_seconds
        )


def test_a_shortened_run_keeps_the_ramp_share_and_the_rate() -> None:
    ci = PROFILES["ci"].with_duration(30)
    assert ci.ramp_seconds == 5
    assert ci.peak_rate == PROFILES["ci"].peak_rate
    assert ci.users_at(30) is None
    with pytest.raises(ValueError, match="more than 0 s"):
        PROFILES["ci"].with_duration(0)


def test_a_stress_step_fails_on_latency_or_errors_and_the_knee_is_the_last_pass() -> None:
    plan = StressPlan(
        start_users=10, step_users=10, step_seconds=30, settle_seconds=10, max_error_rate=0.01
    )
    fast = judge_step(plan, 0, [0.1] * 200, [False] * 200)
    assert fast.passed
    assert fast.rate == 10.0  # 200 answers in the 20 s window
    assert fast.users == 10
    slow = judge_step(plan, 1, [0.1] * 90 + [4.0] * 10, [False] * 100)
    assert not slow.passed
    assert slow.p95_seconds > 3.0
    failing = judge_step(plan, 2, [0.1] * 100, [True] * 2 + [False] * 98)
    assert not failing.passed
    assert failing.error_rate == 0.02
    assert not judge_step(plan, 3, [], []).passed  # no answer at all is no pass
    assert knee([fast, slow, failing]) == fast
    assert knee([slow, fast]) is None  # the first failure ends the climb


def test_zipf_weights_rank_the_tickers() -> None:
    weights = zipf_weights(20)
    assert sum(weights) == pytest.approx(1.0)
    assert weights == sorted(weights, reverse=True)
    assert weights[0] == pytest.approx(0.31, abs=0.01)  # the most popular of 20
    assert weights[-1] == pytest.approx(0.012, abs=0.001)
    with pytest.raises(ValueError, match="no tickers"):
        zipf_weights(0)


def test_investors_follow_the_mix() -> None:
    popularity = Popularity.of([f"T{i}" for i in range(20)], seed=3)
    assert Popularity.of(list(reversed(popularity.tickers)), seed=3) == popularity
    investor = Investor(popularity, random.Random(7))
    tasks = Counter(investor.task() for _ in range(20_000))
    assert tasks["invalid"] / 20_000 == pytest.approx(TASK_WEIGHTS["invalid"] / 100, abs=0.003)
    bodies = [investor.forecast_body() for _ in range(20_000)]
    tickers = Counter(b["ticker"] for b in bodies)
    assert tickers.most_common(1)[0][0] == popularity.tickers[0]
    locales = Counter(b["locale"] for b in bodies)
    assert locales["pt-BR"] / 20_000 == pytest.approx(0.8, abs=0.02)
    assert {b["horizon_days"] for b in bodies} == {1, 5, 10, 21, 30}
    assert {investor.bad_request().name for _ in range(500)} == {b.name for b in BAD_REQUESTS}


def test_a_stress_run_judges_each_step_after_its_slow_answers_came_in() -> None:
    plan = StressPlan(
        start_users=10, step_users=10, step_seconds=20, settle_seconds=5, max_users=100
    )
    run = StressRun(plan)  # grace: twice the 3 s p95 limit
    fast = [(t + 0.5, 0.1, False) for t in range(5, 20)] * 10  # step 0's window, 150 answers
    assert run.tick(10, fast) == 10
    assert run.tick(25.9, fast) == 20  # step 1 started; step 0 not judged yet
    assert run.steps == []
    # Step 1's answers sent late in its window are slow and come back during the grace.
    slow = [(t + 25.5, 4.0, False) for t in range(15)] * 10
    assert run.tick(40.0, fast) == 30
    assert [s.passed for s in run.steps] == [True]
    assert run.tick(46.0, fast + slow) is None  # step 1 judged with them: p95 4 s > 3 s
    assert [s.passed for s in run.steps] == [True, False]
    assert knee(run.steps) == run.steps[0]


def test_a_stress_run_stops_at_the_user_cap() -> None:
    plan = StressPlan(start_users=10, step_users=10, step_seconds=20, max_users=20)
    run = StressRun(plan, grace=0)
    answers = [(t + 0.5, 0.1, False) for t in range(0, 60)] * 5
    assert run.tick(20, answers) == 20
    assert run.tick(40, answers) is None  # step 1 (20 users) passed; 30 users would pass the cap
    assert [s.users for s in run.steps] == [10, 20]


def test_every_ticker_follows_the_cursor_to_the_last_page() -> None:
    """The load test's investors draw from every ticker, not the first page of /v1/tickers."""
    from urllib.parse import parse_qs

    from bentos.ticker_search import TickerQuery, search_tickers

    @dataclass(frozen=True)
    class Window:
        ticker: str
        name: str | None = None
        forecastable: bool = True

    lake = [Window(f"T{i:03d}") for i in range(250)]
    asked: list[str] = []

    def fetch(query: str) -> dict[str, Any]:  # the API's own paging, without HTTP
        asked.append(query)
        params = {k: v[0] for k, v in parse_qs(query.lstrip("?")).items()}
        page = search_tickers(
            lake, TickerQuery(limit=int(params["limit"]), cursor=params.get("cursor"))
        )
        return {
            "tickers": [{"ticker": w.ticker} for w in page.items],
            "next_cursor": page.next_cursor,
        }

    assert every_ticker(fetch) == [w.ticker for w in lake]
    assert len(asked) == 3
