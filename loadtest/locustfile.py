"""Investors' traffic for Locust: run by ``finsimples loadtest`` in its own process.

Never import this module elsewhere (and never in the test process): Locust patches the standard
library with gevent on import, which breaks ssl once MLflow is loaded in the same process.

``finsimples loadtest --profile ci`` runs, in effect::

    python -m locust -f loadtest/locustfile.py --headless --host URL --html report.html \\
        --fs-profile ci --fs-events events.jsonl

with the API keys in ``FINSIMPLES_LOADTEST_KEYS`` (one per line; not on the command line).
Each request is recorded by ``loadtest.records`` for the verdict; Locust's HTML report counts
a bad request's 4xx as a success (it was expected) and anything else but a 2xx as a failure.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust import FastHttpUser, LoadTestShape, constant_pacing, events, task
from locust.env import Environment

from loadtest.profiles import PROFILES, Profile, StressPlan, StressRun
from loadtest.records import REPLICA_HEADER, RecordWriter, RequestRecord
from loadtest.traffic import Investor, Popularity, every_ticker

KEYS_ENV = "FINSIMPLES_LOADTEST_KEYS"


@dataclass
class Run:
    """The run's plan and shared state, set up by the ``init`` and ``test_start`` events."""

    profile: Profile
    stress: StressRun | None
    seed: int
    keys: list[str]
    writer: RecordWriter | None = None
    popularity: Popularity | None = None
    user_numbers: itertools.count[int] = field(default_factory=itertools.count)
    answers: list[tuple[float, float, bool]] = field(default_factory=list)  # t, seconds, failed
    steps_written: int = 0

    def record(self, record: RequestRecord) -> None:
        """Write one request and keep what the stress steps are judged on."""
        if self.writer is not None:
            self.writer.request(record)
        self.answers.append((record.t, record.seconds, not record.ok))


RUN: Run | None = None


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    """FinSimples' options (``--fs-*``)."""
    parser.add_argument("--fs-profile", choices=sorted(PROFILES), default="ci")
    parser.add_argument("--fs-duration", type=float, default=0.0, help="seconds; 0: profile's")
    parser.add_argument("--fs-events", default="events.jsonl", help="JSON-lines records")
    parser.add_argument("--fs-seed", type=int, default=0, help="popularity order and draws")
    parser.add_argument("--fs-stress-max-users", type=int, default=600)
    parser.add_argument("--fs-p95-seconds", type=float, default=3.0)
    parser.add_argument("--fs-max-error-rate", type=float, default=0.01)


@events.init.add_listener
def plan_run(environment: Environment, **_: Any) -> None:
    """Read the options into the run's plan; set the users' pacing."""
    global RUN
    options = environment.parsed_options
    if options is None:
        return
    profile = PROFILES[options.fs_profile]
    stress = None
    if profile.name == "stress":
        stress = StressRun(
            StressPlan(
                max_users=options.fs_stress_max_users,
                p95_seconds=options.fs_p95_seconds,
                max_error_rate=options.fs_max_error_rate,
            )
        )
    elif options.fs_duration > 0:
        profile = profile.with_duration(options.fs_duration)
    keys = [k for k in os.environ.get(KEYS_ENV, "").splitlines() if k.strip()]
    RUN = Run(profile, stress, options.fs_seed, keys)
    pacing = stress.plan.pacing_seconds if stress else profile.pacing_seconds
    InvestorUser.wait_time = constant_pacing(pacing)


@events.test_start.add_listener
def start_run(environment: Environment, **_: Any) -> None:
    """Open the records file; rank the API's tickers by popularity."""
    assert RUN is not None
    assert environment.parsed_options is not None
    RUN.writer = RecordWriter(Path(environment.parsed_options.fs_events))
    try:
        RUN.popularity = Popularity.of(_all_tickers(environment.host or ""), RUN.seed)
    except Exception as exc:  # no investor can start without the tickers: end the run now
        logging.error("cannot read %s/v1/tickers: %s", environment.host, exc)
        if environment.runner is not None:
            environment.runner.quit()


def _all_tickers(host: str) -> list[str]:
    """Every ticker the API lists (``/v1/tickers`` is paginated)."""

    def fetch(query: str) -> Any:
        request = urllib.request.Request(f"{host}/v1/tickers{query}", headers=_headers(0))  # noqa: S310 - scheme checked below
        if request.type not in ("http", "https"):  # urlopen would read file: URLs too
            raise ValueError(f"--host must be an http(s) URL, got {host!r}")
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - http(s) only
            return json.load(reply)

    return every_ticker(fetch)


@events.test_stop.add_listener
def stop_run(**_: Any) -> None:
    """Flush the records."""
    if RUN is not None and RUN.writer is not None:
        RUN.writer.close()
        RUN.writer = None


def _headers(number: int) -> dict[str, str]:
    if RUN is None or not RUN.keys:
        return {}
    return {"X-API-Key": RUN.keys[number % len(RUN.keys)]}


class InvestorUser(FastHttpUser):
    """One investor's app: mostly forecasts, sometimes the model card or the ticker list."""

    wait_time = constant_pacing(1.0)  # replaced by the profile's pacing at init

    def on_start(self) -> None:
        """Draw this investor's key and random stream."""
        assert RUN is not None
        assert RUN.popularity is not None
        number = next(RUN.user_numbers)
        self.headers = _headers(number)
        self.investor = Investor(RUN.popularity, random.Random(RUN.seed * 100_003 + number))

    @task
    def act(self) -> None:
        """One call, drawn from the traffic mix."""
        kind = self.investor.task()
        if kind == "forecast":
            self._call(kind, "POST", "/v1/forecast", self.investor.forecast_body())
        elif kind == "model":
            self._call(kind, "GET", "/v1/model")
        elif kind == "tickers":
            self._call(kind, "GET", "/v1/tickers")
        else:
            bad = self.investor.bad_request()
            self._call(kind, "POST", "/v1/forecast", bad.body, name=f"bad request: {bad.name}")

    def _call(
        self, kind: str, method: str, path: str, body: Any = None, name: str | None = None
    ) -> None:
        assert RUN is not None
        sent, started = time.time(), time.monotonic()
        headers = dict(self.headers)
        payload: str | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = body if isinstance(body, str) else json.dumps(body)
        with self.client.request(
            method, path, data=payload, headers=headers, name=name or path, catch_response=True
        ) as reply:
            seconds = time.monotonic() - started
            status = reply.status_code or 0
            source, error = "", ""
            if kind == "invalid":
                ok = 400 <= status < 500
                error = "" if ok else f"bad request answered {status}, not a 4xx"
            else:
                ok = 200 <= status < 300
                if ok and kind == "forecast":
                    try:
                        source = str(reply.json()["provenance"]["source"])
                    except (ValueError, KeyError, TypeError):
                        ok, error = False, "a 2xx forecast without provenance"
                elif not ok:
                    error = f"HTTP {status}" if status else f"no answer: {reply.error}"
            if ok:
                reply.success()
            else:
                reply.failure(error)
            replica = reply.headers.get(REPLICA_HEADER, "") if reply.headers else ""
            RUN.record(RequestRecord(sent, kind, status, seconds, ok, replica, source, error))


class ProfileShape(LoadTestShape):
    """Users over time from the chosen profile; for ``stress``, steps judged as they end."""

    def tick(self) -> tuple[int, float] | None:
        """The users wanted now and how fast to start them; None ends the run."""
        assert RUN is not None
        seconds = self.get_run_time()
        if RUN.stress is None:
            users = RUN.profile.users_at(seconds)
            return None if users is None else (users, RUN.profile.spawn_rate)
        return self._stress_tick(RUN, RUN.stress, seconds)

    def _stress_tick(self, run: Run, stress: StressRun, seconds: float) -> tuple[int, float] | None:
        plan, t0 = stress.plan, self.start_wall
        # Copy the answers only when a step is due (tick runs every second, in the event loop).
        due = (len(stress.steps) + 1) * plan.step_seconds + stress.grace <= seconds
        users = stress.tick(seconds, [(t - t0, s, f) for t, s, f in run.answers] if due else [])
        while run.steps_written < len(stress.steps):
            if run.writer is not None:
                run.writer.step(stress.steps[run.steps_written])
            run.steps_written += 1
        if due and stress.steps:  # what the judged steps were sent in is no longer needed
            judged_until = plan.window(len(stress.steps) - 1)[1]
            run.answers = [a for a in run.answers if a[0] - t0 >= judged_until]
        return None if users is None else (users, float(plan.step_users))

    @property
    def start_wall(self) -> float:
        """UNIX time the run started (records carry UNIX times)."""
        return time.time() - self.get_run_time()
