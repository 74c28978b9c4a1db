"""Schema fuzzing of the served spec: no bad input gets a 500, every answer is as documented.

schemathesis loads ``/docs.json`` from a running replica and generates requests for each
operation from it: valid ones (positive) and ones the spec forbids (negative). Every answer
goes through schemathesis' checks against the same spec: no 5xx but the documented 503 (no
answer within the budget), a documented status, content type and headers, a body matching
its schema, valid requests accepted and invalid ones refused. About half the generated
tickers are the lake's, so real forecasts are checked too, not only 404s. Replica B has no API
keys: the admin routes are fuzzed as well, and no key's rate limit turns the run into 429s.

Derandomized with a bounded number of examples per operation: the same requests every run.
Hypothesis drives the cases (``APIOperation.as_strategy``) rather than
``schemathesis.pytest.from_fixture``, whose runner sets ``Function._nodeid``, an attribute
pytest 9.2 no longer has.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import given, settings
from schemathesis import BaseSchema, Case, GenerationMode

from tests.champion import TICKERS
from tests.integration.api.conftest import ApiServer, ApiStack

pytestmark = pytest.mark.integration

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Every /v1/ operation of the served spec (test_every_operation_is_fuzzed keeps it complete).
OPERATIONS = {
    "POST /v1/forecast": (POSITIVE, NEGATIVE),
    "POST /v1/forecast/batch": (POSITIVE, NEGATIVE),
    "POST /v1/admin/cache/invalidate": (POSITIVE, NEGATIVE),
    "POST /v1/admin/cache/warm": (POSITIVE, NEGATIVE),
    "GET /v1/tickers": (POSITIVE,),  # no parameters: no invalid request to make
    "GET /v1/model": (POSITIVE,),
    "GET /v1/history": (POSITIVE, NEGATIVE),
}
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None)


@pytest.fixture(scope="module")
def api_schema(replica_b: ApiServer, api_stack: ApiStack) -> Iterator[BaseSchema]:
    """The spec replica B serves; afterwards, the answers the fuzzer cached are dropped."""
    config = schemathesis.Config.from_dict(
        {
            "base-url": replica_b.url,
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}},
            "dictionaries": {"lake": {"values": [*TICKERS, *(t.lower() for t in TICKERS)]}},
            "parameters": {
                "body.ticker": {"dictionary": "lake", "probability": 0.5},
                "body.tickers[*]": {"dictionary": "lake", "probability": 0.5},
            },
        }
    )
    yield schemathesis.openapi.from_url(f"{replica_b.url}/docs.json", config=config, timeout=10)
    # Later modules warm and count B's cache and expect it free of these horizons and locales.
    with replica_b.http() as http:
        dropped = http.post("/v1/admin/cache/invalidate", json={"model_version": api_stack.v2})
    assert dropped.status_code == 200, dropped.text


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One keep-alive connection pool for every generated request."""
    with requests.Session() as session:
        yield session


def test_every_operation_is_fuzzed(replica_b: ApiServer) -> None:
    spec = httpx.get(f"{replica_b.url}/docs.json", timeout=10).json()
    served = {
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    assert served == set(OPERATIONS)


@pytest.mark.parametrize(
    ("label", "mode"),
    [(label, mode) for label, modes in OPERATIONS.items() for mode in modes],
)
def test_fuzzed_requests_get_documented_answers(
    api_schema: BaseSchema, session: requests.Session, label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served spec"

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ
    def fuzz(case: Case) -> None:
        case.call_and_validate(session=session, timeout=30)

    fuzz()
