"""The SLA verdict from records and replica readings."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.loadtest import LoadTestConfig
from loadtest.profiles import PROFILES, StepResult
from loadtest.records import RecordWriter, RequestRecord, read_records
from loadtest.sampler import ReplicaSample, answers_by_source, counter_by_label
from loadtest.verdict import cache_rate_from_metrics, judge

CONFIG = LoadTestConfig()
REPLICAS = ("replica-1", "replica-2", "replica-3")


def forecasts(count: int, replicas=REPLICAS, source="cache", seconds=0.05, t0=1000.0):  # type: ignore[no-untyped-def]
    return [
        RequestRecord(t0 + i, "forecast", 200, seconds, True, replicas[i % len(replicas)], source)
        for i in range(count)
    ]


def samples(cache: float, fresh: float, cpu: float = 20.0) -> list[ReplicaSample]:
    rows = []
    for name in REPLICAS:
        rows.append(ReplicaSample(1000.0, name, None, 100, {"cache": 10.0, "fresh": 5.0}))
        rows.append(
            ReplicaSample(1060.0, name, cpu, 100, {"cache": 10 + cache / 3, "fresh": 5 + fresh / 3})
        )
    return rows


def test_a_healthy_run_passes_every_line() -> None:
    records = forecasts(240) + forecasts(60, source="fresh")
    verdict = judge(records, samples(240, 60), CONFIG, PROFILES["ci"], REPLICAS)
    assert verdict.passed, verdict.failures
    names = [line.name for line in verdict.lines]
    assert "cache measurements agree" in names
    assert [n for n in names if n.startswith("balance")] == [f"balance {r}" for r in REPLICAS]


def test_a_replica_answering_500s_fails_the_errors_and_the_balance() -> None:
    records = forecasts(300)
    broken = [
        RequestRecord(r.t, r.kind, 500, r.seconds, False, r.replica, "", "HTTP 500")
        if r.replica == "replica-2"
        else r
        for r in records
    ]
    verdict = judge(broken, samples(200, 0), CONFIG, PROFILES["ci"], REPLICAS)
    assert not verdict.passed
    failed = {line.name for line in verdict.lines if line.passed is False}
    assert {"error rate", "balance replica-1", "balance replica-2", "balance replica-3"} <= failed
    assert any(
        f.startswith("error rate: 33.3% is 32.3% over the threshold < 1.0%")
        for f in verdict.failures
    )


def test_slow_answers_and_a_cold_cache_fail_with_the_gap() -> None:
    records = forecasts(100, source="fresh", seconds=4.0)
    verdict = judge(records, samples(0, 100, cpu=95.0), CONFIG, PROFILES["ci"], REPLICAS)
    failures = "\n".join(verdict.failures)
    assert "p95 latency: 4.000 s is 1.000 s over the threshold <= 3.000 s" in failures
    assert "cache hit rate (answers): 0.0% is 60.0% under the threshold >= 60.0%" in failures
    assert "peak CPU replica-1: 95.0% is 15.0% over" in failures


def test_the_two_cache_measurements_must_agree() -> None:
    records = forecasts(100)  # every answer from the cache
    verdict = judge(records, samples(70, 30), CONFIG, PROFILES["ci"], REPLICAS)
    line = next(line for line in verdict.lines if line.name == "cache measurements agree")
    assert line.measured == pytest.approx(0.30)
    assert line.passed is False


def test_without_replica_readings_the_replica_lines_are_not_measured() -> None:
    verdict = judge(forecasts(90), [], CONFIG, PROFILES["ci"])
    by_name = {line.name: line for line in verdict.lines}
    assert by_name["cache hit rate (/metrics)"].passed is None
    assert by_name["cache measurements agree"].shown == "not measured"
    assert verdict.passed  # not measured does not decide


def test_a_restarted_replica_counts_from_zero() -> None:
    rows = [
        ReplicaSample(0, "replica-1", None, None, {"cache": 50.0, "fresh": 50.0}),
        ReplicaSample(9, "replica-1", None, None, {"cache": 9.0, "fresh": 1.0}),  # restarted
    ]
    assert cache_rate_from_metrics(rows) == pytest.approx(0.9)


def test_stress_is_judged_on_its_knee() -> None:
    steps = [
        StepResult(0, 10, 200, 10.0, 0.05, 0.0, True),
        StepResult(1, 20, 400, 20.0, 0.06, 0.0, True),
        StepResult(2, 30, 300, 15.0, 3.5, 0.0, False),
    ]
    verdict = judge([], [], CONFIG, PROFILES["stress"], steps=steps)
    (line,) = verdict.lines
    assert line.measured == 20.0
    assert verdict.passed  # 20 req/s >= the seed profile's 2.8 req/s


def test_records_round_trip_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = RecordWriter(path)
    record = RequestRecord(1.5, "forecast", 200, 0.01, True, "replica-1", "cache")
    writer.request(record)
    writer.step(StepResult(0, 10, 5, 1.0, 0.1, 0.0, True))
    writer.close()
    with path.open("a") as file:
        file.write('{"type": "request", "t": 2')  # killed mid-write
    requests, steps = read_records(path)
    assert requests == [record]
    assert steps[0].users == 10


def test_answers_are_read_from_the_metrics_exposition() -> None:
    text = (
        "# HELP finsimples_answers_total Forecast answers by source.\n"
        "# TYPE finsimples_answers_total counter\n"
        'finsimples_answers_total{source="cache"} 7.0\n'
        'finsimples_answers_total{source="fresh"} 3.0\n'
        'finsimples_cache_events_total{cache="forecast",event="hits"} 7.0\n'
        "# TYPE finsimples_narrator_events_total counter\n"
        'finsimples_narrator_events_total{event="calls"} 2.0\n'
    )
    assert answers_by_source(text) == {"cache": 7.0, "fresh": 3.0}
    assert counter_by_label(text, "finsimples_narrator_events", "event") == {"calls": 2.0}


def test_other_traffic_makes_the_two_cache_rates_incomparable() -> None:
    records = forecasts(100)  # the load test's forecasts: all cache hits
    verdict = judge(records, samples(150, 150), CONFIG, PROFILES["ci"], REPLICAS)
    line = next(line for line in verdict.lines if line.name == "cache measurements agree")
    assert line.passed is None
    assert "the replicas answered 200 forecasts to others" in line.note


def test_soak_watches_memory_and_latency_drift_per_replica() -> None:
    soak = PROFILES["soak"].with_duration(600)  # ramp 10 s
    started = 1000.0
    requests, rows = [], []
    for i in range(400):  # one answer every 1.5 s; replica-2 slows down over the run
        replica = REPLICAS[i % 3]
        slow = replica == "replica-2" and i >= 300
        requests.append(
            RequestRecord(
                started + 10 + i * 1.5,
                "forecast",
                200,
                0.2 if slow else 0.05,
                True,
                replica,
                "cache",
            )
        )
    for step in range(60):  # replica-3's memory grows by half
        for name in REPLICAS:
            rss = 100 * 2**20 * (1 + (0.5 * step / 59 if name == "replica-3" else 0))
            rows.append(ReplicaSample(started + 10 + step * 10, name, 5.0, int(rss), None))
    verdict = judge(requests, rows, CONFIG, soak, REPLICAS, started=started)
    by_name = {line.name: line for line in verdict.lines}
    assert by_name["memory growth replica-1"].passed
    assert by_name["memory growth replica-3"].passed is False
    assert by_name["p95 drift replica-1"].passed
    assert by_name["p95 drift replica-2"].passed is False
    assert by_name["p95 drift replica-2"].measured == pytest.approx(4.0)
