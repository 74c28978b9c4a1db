"""The capacity model: cache hits and LLM calls from the traffic mix, replicas and cost."""

from __future__ import annotations

import pytest

from loadtest.capacity import (
    MIN_REPLICAS,
    Measured,
    Prices,
    Usage,
    distinct_keys,
    expected_hit_rate,
    hpa_rate,
    key_probabilities,
    plan_size,
)

MEASURED = Measured(
    cpu_seconds_per_request=0.004,
    replica_rate=100.0,
    rss_mib=450.0,
    forecast_cache_hit_rate=0.9,
    llm_calls_per_forecast=None,
    forecast_rate=3.0,
    forecasts=1000,
    prompt_tokens=400,
    output_tokens=120,
)


def test_keys_cover_the_whole_mix() -> None:
    probabilities = key_probabilities(20)
    assert len(probabilities) == 20 * 5 * 2
    assert sum(probabilities) == pytest.approx(1.0)


def test_hit_rate_grows_with_traffic_from_none_to_all() -> None:
    p = key_probabilities(20)
    assert expected_hit_rate(0.0, 300, p) == 0.0
    rates = [expected_hit_rate(r, 300, p) for r in (0.01, 0.1, 1.0, 10.0, 1000.0)]
    assert rates == sorted(rates)
    assert rates[-1] > 0.99
    # One key asked once every 300 s on average, TTL 300 s: a miss stores the entry, one more
    # ask on average falls within its 300 s: half the asks hit.
    assert expected_hit_rate(1 / 300, 300, [1.0]) == pytest.approx(0.5)


def test_a_days_llm_calls_are_its_distinct_keys() -> None:
    p = key_probabilities(20)
    assert distinct_keys(1, p) == pytest.approx(1.0)
    assert distinct_keys(10**7, p) == pytest.approx(len(p))
    assert distinct_keys(500, p) < 500


def test_replicas_follow_cpu_or_rate_above_the_ha_minimum() -> None:
    small = plan_size(50, MEASURED, Usage(), Prices())
    assert small.replicas == MIN_REPLICAS
    assert small.bound_by == "HA minimum"
    heavy = Measured(**{**MEASURED.__dict__, "cpu_seconds_per_request": 1.0})
    big = plan_size(50_000, heavy, Usage(), Prices())
    # 50,000 x 10 x 0.2 / 3600 / 0.93 = 29.9 calls/s x 1 core-s = 29.9 cores at 70% of 1 core
    assert big.replicas == 43
    assert big.bound_by == "CPU"
    assert big.total > small.total
    assert big.cost["VMs"] == pytest.approx(43 * 800 / 3)


def test_the_hpa_adds_replicas_past_70_percent_of_their_requests() -> None:
    assert hpa_rate(MEASURED) == pytest.approx(3 * 0.7 / 0.004)


def test_measured_figures_are_read_from_summaries() -> None:
    run = {
        "seconds": 100.0,
        "requests": 1000,
        "cpu_ms_per_request": 3.0,
        "sources": {"cache": 900, "fresh": 100},
        "replicas": {"replica-1": {"max_rss_mib": 400.0}, "replica-2": {"max_rss_mib": 450.0}},
        "llm_calls_per_1000_forecasts": 25.0,
    }
    stress = {
        "cpu_ms_per_request": 2.0,
        "replicas": {"a": {}, "b": {}},
        "steps": [{"rate": 80, "passed": True}, {"rate": 120, "passed": False}],
    }
    measured = Measured.from_summaries(run, stress, 400, 120)
    assert measured.cpu_seconds_per_request == 0.002  # the dense run's
    assert measured.replica_rate == 40.0
    assert measured.rss_mib == 450.0
    assert measured.forecast_cache_hit_rate == 0.9
    assert measured.llm_calls_per_forecast == 0.025
    assert measured.forecast_rate == 10.0
