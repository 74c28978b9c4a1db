"""The replica's /metrics: BentoML's latency histograms and FinSimples' own series."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api.conftest import KEYS, ApiServer, ApiStack

pytestmark = pytest.mark.integration
KEY = KEYS["metrics"]


def samples(server: ApiServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def test_metrics_count_what_the_replica_did(replica_a: ApiServer, api_stack: ApiStack) -> None:
    before = samples(replica_a)
    payload = {"ticker": "WMT", "horizon_days": 15, "locale": "en"}
    slow = {"X-FinSimples-Fault-Delay": "3"}
    with replica_a.http(KEY) as http:
        assert http.post("/v1/forecast", json=payload).status_code == 200  # miss
        assert http.post("/v1/forecast", json=payload).status_code == 200  # hit
        other = {"ticker": "WMT", "horizon_days": 16, "locale": "en"}
        assert http.post("/v1/forecast", json=other, headers=slow).status_code == 200  # fallback
    after = samples(replica_a)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("finsimples_cache_events_total", cache="forecast", event="hits") >= 1
    assert grew("finsimples_cache_events_total", cache="forecast", event="misses") >= 2
    assert grew("finsimples_answers_total", source="fresh") >= 1
    assert grew("finsimples_answers_total", source="cache") >= 1
    assert grew("finsimples_fallbacks_total", reason="deadline") >= 1
    assert grew("finsimples_narrator_events_total", event="narrations") >= 1
    assert value(after, "finsimples_narrator_events_total", event="calls") >= 1
    info = value(after, "finsimples_model_info", model_version=api_stack.v1, alias="champion")
    assert info == 1
    assert value(after, "finsimples_lake_version") >= 1
    latency = "bentoml_service_request_duration_seconds_count"
    assert value(after, latency, endpoint="/v1/forecast") >= 3


def test_metrics_hold_the_replicas_cpu_and_memory(replica_a: ApiServer) -> None:
    found = samples(replica_a)
    # Summed over the worker's start-up (imports, the model, the lake): well over a CPU second.
    assert value(found, "finsimples_process_cpu_seconds_total") > 0.5
    # One worker holds the model and the lake's windows: hundreds of MB (docs/benchmarks.md).
    assert value(found, "finsimples_process_resident_memory_bytes") > 100_000_000


def test_the_latency_histogram_has_the_slo_bucket(replica_a: ApiServer) -> None:
    # The latency SLO's recording rules read le="3.0" (monitoring/rules/slo.yml).
    with replica_a.http(KEY) as http:
        assert http.get("/v1/tickers").status_code == 200
    found = samples(replica_a)
    bucket = "bentoml_service_request_duration_seconds_bucket"
    assert value(found, bucket, endpoint="/v1/tickers", le="3.0") >= 1
    status = "bentoml_service_request_total"
    assert value(found, status, endpoint="/v1/tickers", http_response_code="200") >= 1
