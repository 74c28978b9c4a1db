"""Run a load test: Locust in its own process against the stack (or ``--host``), the replicas
sampled meanwhile, then the verdict, the JSON summary and the charts in one report folder.

The report folder (default ``<state_dir>/reports/loadtest/<profile>-<UTC time>/``) holds
``report.html`` (Locust's own, self-contained), ``summary.json``, the PNG charts,
``events.jsonl`` (every request), ``samples.jsonl`` (every replica reading) and ``locust.log``.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from config.loadtest import LoadTestConfig
from loadtest.profiles import PROFILES, Profile, StressPlan
from loadtest.records import RequestRecord, read_records
from loadtest.report import write_charts, write_summary
from loadtest.sampler import ReplicaSample, ReplicaTarget, Sampler
from loadtest.verdict import Verdict, answer_deltas, judge

if TYPE_CHECKING:
    from finsimples.settings import Settings

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
ROOT = Path(__file__).resolve().parents[1]


class LoadTestError(Exception):
    """The load test could not run (nothing answers at the host, Locust failed to start...)."""


@dataclass(frozen=True)
class LoadTestRun:
    """A finished run: its verdict and where its report is."""

    profile: Profile
    host: str
    folder: Path
    verdict: Verdict
    summary: dict[str, Any]


def check_host(host: str, keys: list[str]) -> int:
    """Fail at once, with the reason, unless ``host`` serves the API; the number of tickers."""
    headers = {"X-API-Key": keys[0]} if keys else {}
    try:
        reply = httpx.get(f"{host}/v1/tickers", headers=headers, timeout=5.0)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise LoadTestError(f"--host {host!r} is not an http(s) URL: {exc}") from exc
    except httpx.HTTPError as exc:
        raise LoadTestError(
            f"nothing answers at {host} ({type(exc).__name__}: {exc}); start the stack with "
            "`finsimples stack up`, or pass --host URL of a running API"
        ) from exc
    if reply.status_code == 401:
        raise LoadTestError(
            f"{host} wants an API key: pass --api-key KEY or set FINSIMPLES_LOADTEST__API_KEYS"
        )
    if reply.status_code != 200:
        raise LoadTestError(f"{host}/v1/tickers answered {reply.status_code}: {reply.text[:200]}")
    try:
        body = reply.json()
        count = int(body.get("total", len(body["tickers"])))  # all pages, not just the first
    except (ValueError, KeyError, TypeError) as exc:
        raise LoadTestError(f"{host}/v1/tickers is not the FinSimples API") from exc
    if count == 0:
        raise LoadTestError(f"{host} serves no ticker: ingest prices and deploy a model first")
    return count


def loadtest_verifier(settings: Settings, host: str) -> Callable[[], tuple[bool, str]]:
    """The load test's ``ci`` profile against ``host`` (Locust in its own process)."""

    def verify() -> tuple[bool, str]:
        try:
            run = run_loadtest(settings, "ci", duration=settings.loadtest.verify_seconds, host=host)
        except Exception as exc:  # it could not run: the version is not verified
            return False, f"the load test could not run: {type(exc).__name__}: {exc}"
        if run.verdict.passed:
            return True, f"{run.summary['requests']} requests, report {run.folder}"
        return False, "; ".join(run.verdict.failures)

    return verify


def check_reachable(settings: Settings, host: str) -> None:
    """Fail at once, with the reason, unless ``host`` serves the API to the load test's keys."""
    check_host(host, [key.get_secret_value() for key in settings.loadtest.api_keys])


def stack_targets(settings: Settings, host: str) -> list[ReplicaTarget]:
    """The stack's replicas when ``host`` is the running stack's NGINX; else none (remote)."""
    from deploy.stack import Stack

    stack = Stack.of(settings)
    if host.rstrip("/") != stack.urls.api or not stack.running():
        return []
    processes = stack.processes()
    targets = []
    for slot in stack.layout.read_slots():
        info = processes.get(slot.program)
        pid = info.pid if info is not None and info.running else None
        targets.append(ReplicaTarget(slot.name, f"{stack.replica_url(slot)}/metrics", pid))
    return targets


def run_duration(profile: Profile, config: LoadTestConfig) -> float:
    """How long the run lasts at most, seconds."""
    if profile.name == "stress":
        plan = StressPlan(max_users=config.stress_max_users)
        steps = (plan.max_users - plan.start_users) // plan.step_users + 1
        return steps * plan.step_seconds
    return profile.duration_seconds


def locust_command(
    profile: Profile, host: str, folder: Path, config: LoadTestConfig, seed: int
) -> list[str]:
    """The Locust command line of a run."""
    return [
        sys.executable,
        *("-m", "locust", "-f", str(LOCUSTFILE), "--headless"),
        *("--host", host, "--html", str(folder / "report.html")),
        *("--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10"),
        *("--fs-profile", profile.name, "--fs-duration", str(profile.duration_seconds)),
        *("--fs-events", str(folder / "events.jsonl"), "--fs-seed", str(seed)),
        *("--fs-stress-max-users", str(config.stress_max_users)),
        *("--fs-p95-seconds", str(config.p95_seconds)),
        *("--fs-max-error-rate", str(config.max_error_rate)),
    ]


def run_locust(command: list[str], folder: Path, keys: list[str], timeout: float) -> int:
    """Run Locust to its end; its exit code (1 when any request failed: judged by the verdict)."""
    env = dict(os.environ)
    env["FINSIMPLES_LOADTEST_KEYS"] = "\n".join(keys)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with (folder / "locust.log").open("w") as log:
        try:
            done = subprocess.run(  # noqa: S603 - Locust from our argv list, no shell
                command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise LoadTestError(
                f"Locust ran past {timeout:.0f} s; see {folder / 'locust.log'}"
            ) from exc
    return done.returncode


def write_samples(path: Path, samples: list[ReplicaSample]) -> None:
    """Every replica reading, one JSON line each (for figures computed after the run)."""
    with path.open("w", encoding="utf-8") as out:
        for sample in samples:
            out.write(json.dumps(asdict(sample), separators=(",", ":")) + "\n")


def cpu_seconds(samples: list[ReplicaSample]) -> float | None:
    """CPU time one replica used over the readings (each reading's percent over its interval)."""
    total, seen = 0.0, False
    for before, after in itertools.pairwise(samples):
        if after.cpu_percent is not None:
            total += after.cpu_percent / 100 * (after.t - before.t)
            seen = True
    return total if seen else None


def summarize(
    profile: Profile,
    host: str,
    started: float,
    ended: float,
    requests: list[RequestRecord],
    samples: list[ReplicaSample],
    verdict: Verdict,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The run's figures for ``summary.json``."""
    seconds = [r.seconds for r in requests]
    ok_by_replica = Counter(r.replica for r in requests if r.ok and r.replica)
    replicas: dict[str, dict[str, Any]] = {}
    for name in sorted({s.replica for s in samples} | set(ok_by_replica)):
        mine = [s for s in samples if s.replica == name]
        cpu = [s.cpu_percent for s in mine if s.cpu_percent is not None]
        rss = [s.rss_bytes for s in mine if s.rss_bytes]
        replicas[name] = {
            "answers": ok_by_replica[name],
            "cpu_seconds": cpu_seconds(mine),
            "peak_cpu_percent": max(cpu) if cpu else None,
            "mean_cpu_percent": float(np.mean(cpu)) if cpu else None,
            "max_rss_mib": max(rss) / 2**20 if rss else None,
        }
    forecasts = sum(1 for r in requests if r.kind == "forecast" and r.ok)
    used = [r["cpu_seconds"] for r in replicas.values() if r["cpu_seconds"] is not None]
    narrator = answer_deltas(samples, "narrator")
    return {
        "profile": {
            "name": profile.name,
            "users": profile.users,
            "ramp_seconds": profile.ramp_seconds,
            "duration_seconds": profile.duration_seconds,
            "pacing_seconds": profile.pacing_seconds,
            "peak_rate": profile.peak_rate,
        },
        "host": host,
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "seconds": round(ended - started, 1),
        "requests": len(requests),
        "requests_per_second": len(requests) / (ended - started) if ended > started else None,
        "by_kind": dict(Counter(r.kind for r in requests)),
        "by_status": {str(k): v for k, v in sorted(Counter(r.status for r in requests).items())},
        "sources": dict(Counter(r.source for r in requests if r.source)),
        "latency_seconds": {
            f"p{q}": float(np.percentile(seconds, q)) if seconds else None for q in (50, 95, 99)
        }
        | {"mean": float(np.mean(seconds)) if seconds else None},
        "replicas": replicas,
        "cpu_ms_per_request": 1000 * sum(used) / len(requests) if used and requests else None,
        "narrator": narrator,
        "llm_calls_per_1000_forecasts": (
            1000 * narrator.get("calls", 0.0) / forecasts if narrator and forecasts else None
        ),
        "passed": verdict.passed,
        "verdict": [line.as_dict() for line in verdict.lines],
        "failures": verdict.failures,
        **extra,
    }


def run_loadtest(
    settings: Settings,
    profile_name: str,
    *,
    host: str | None = None,
    folder: Path | None = None,
    duration: float | None = None,
    keys: list[str] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadTestRun:
    """Run the profile ``profile_name`` and judge it.

    Args:
        settings: Thresholds (``settings.loadtest``) and where the stack and reports are.
        profile_name: ci, seed, stress or soak.
        host: The API's URL; default the running stack's NGINX.
        folder: The report folder; default a new one under ``<state_dir>/reports/loadtest``.
        duration: Seconds; default the profile's (not for stress: it ends on its knee).
        keys: API keys of the investors; default ``settings.loadtest.api_keys``.
        seed: Popularity order and the investors' draws.
        progress: Called with one line per step.

    Raises:
        LoadTestError: The run could not happen (host down, Locust failed).
    """
    from deploy.stack import Stack

    config = settings.loadtest
    if profile_name not in PROFILES:
        raise LoadTestError(f"unknown profile {profile_name!r}: choose one of {sorted(PROFILES)}")
    profile = PROFILES[profile_name]
    if duration is not None and profile_name != "stress":
        profile = profile.with_duration(duration)
    host = (host or Stack.of(settings).urls.api).rstrip("/")
    keys = keys if keys else [k.get_secret_value() for k in config.api_keys]
    tickers = check_host(host, keys)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = folder or settings.state_dir / "reports" / "loadtest" / f"{profile.name}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    targets = stack_targets(settings, host)
    progress(
        f"{profile.name}: {profile.summary}; {host}, {tickers} tickers, "
        f"{len(targets) or 'no'} replicas sampled; report in {folder}"
    )
    sampler = Sampler(targets, interval=2.0 if run_duration(profile, config) < 900 else 10.0)
    sampler.start()
    started = time.time()
    try:
        command = locust_command(profile, host, folder, config, seed)
        code = run_locust(command, folder, keys, run_duration(profile, config) + 120)
    finally:
        sampler.stop()
    ended = time.time()
    requests, steps = read_records(folder / "events.jsonl")
    if code not in (0, 1) or not requests:
        log = (folder / "locust.log").read_text(errors="replace")[-2000:]
        raise LoadTestError(f"Locust exited {code} after {len(requests)} requests:\n{log}")
    replicas = [t.name for t in targets]
    verdict = judge(requests, sampler.samples, config, profile, replicas, steps, started)
    charts = write_charts(folder, requests, sampler.samples, config, started, ended - started)
    extra = {"steps": [s.as_dict() for s in steps], "charts": charts, "locust_exit": code}
    summary = summarize(profile, host, started, ended, requests, sampler.samples, verdict, extra)
    write_summary(folder, summary)
    write_samples(folder / "samples.jsonl", sampler.samples)
    return LoadTestRun(profile, host, folder, verdict, summary)
