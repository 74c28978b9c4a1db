"""Schemathesis' CLI over the served spec: every check, all four phases, as a subprocess.

Schemathesis' Hypothesis strategies alone (the suite's earlier fuzz test, which this one
replaced) generate valid and invalid requests per operation and nothing else. ``schemathesis
run`` runs the whole pipeline: the examples phase (the spec's examples), the coverage phase
(boundary values, each way to break each constraint, undeclared Content-Types and methods),
fuzzing, and the stateful phase, which chains requests along the spec's links (a ticker of
/v1/tickers to /v1/forecast and /v1/history, a model version to the cache invalidation;
``bentos.openapi.document_links``).
Its first run found a 500 on a ``multipart/form-data`` body and a warm-up route taking
``tickers: null`` that its spec refused; see ``bentos.bodies`` and ``bentos.openapi``.
schemathesis.toml beside this file says what each check of ``--checks all`` does here, and why
three of them never fire on this API.

Replica B (no keys) takes the run: a fixed seed and a bounded number of examples per
operation, a few hundred cases in the default run and thousands in the ``slow`` one. The test
reads schemathesis' event stream and fails when a phase ran no case, so a phase that stops
applying (say, the spec loses its links) cannot pass silently. Replica A, whose spec declares
its API key, runs the client routes briefly for ``ignored_auth``. Last, the malformed bodies
the coverage phase only samples, each with the 4xx it gets, in the API's error envelope.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bentos.schemas import ApiErrorBody, ValidationErrorBody
from tests.integration.api.conftest import KEYS, ApiServer, ApiStack

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
PHASES = ("examples", "coverage", "fuzzing", "stateful")
SEED = 20261201
CLIENT_ROUTES = r"^/v1/(forecast|tickers|model|history)$"  # A's admin routes take an admin key


@dataclass(frozen=True)
class CliRun:
    """What one ``schemathesis run`` did: exit code, console output, cases run per phase."""

    returncode: int
    output: str
    cases: Counter[str]
    report: dict[str, Any]

    def __str__(self) -> str:
        return f"schemathesis exited {self.returncode}; cases {dict(self.cases)}\n{self.output}"


def schemathesis_run(
    url: str, folder: Path, *options: str, phases: str = ",".join(PHASES), config: Path = CONFIG
) -> CliRun:
    """Run ``schemathesis run`` on ``url``'s spec with every check, reports into ``folder``."""
    events, report = folder / "events.ndjson", folder / "run.json"
    command = [
        *(str(SCHEMATHESIS), "--config-file", str(config), "--no-color", "run", f"{url}/docs.json"),
        *("--checks", "all", "--phases", phases, "--seed", str(SEED)),
        *("--generation-database", "none", "--request-timeout", "30"),
        *("--report", "ndjson,json"),
        *("--report-ndjson-path", str(events), "--report-json-path", str(report)),
        *options,
    ]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=1800)
    output = done.stdout + done.stderr
    assert events.exists(), output
    assert report.exists(), output
    return CliRun(done.returncode, output, cases_per_phase(events), json.loads(report.read_text()))


def cases_per_phase(events: Path) -> Counter[str]:
    """Test cases run per phase, from the NDJSON event stream (one recorder per scenario)."""
    cases: Counter[str] = Counter()
    for line in events.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is not None:
            cases[finished["phase"]] += len(finished["recorder"].get("cases", {}))
    return cases


def assert_every_phase_ran(run: CliRun, minimum: int) -> None:
    print(f"schemathesis: {dict(run.cases)} cases in {run.report['running_time']:.1f} s")
    assert run.returncode == 0, str(run)
    statuses = {name: phase["status"] for name, phase in run.report["phases"].items()}
    assert statuses == dict.fromkeys(PHASES, "success"), str(run)
    assert all(run.cases[phase] > 0 for phase in PHASES), str(run)
    assert sum(run.cases.values()) >= minimum, str(run)
    operations = run.report["operations"]
    assert operations["tested"] == operations["total"] == operations["selected"], str(run)


@pytest.fixture
def fuzzed_b(replica_b: ApiServer, api_stack: ApiStack) -> Iterator[ApiServer]:
    """Replica B; afterwards, the answers the run cached are dropped."""
    yield replica_b
    # Later modules read B's narratives and cache and expect them free of the run's.
    with replica_b.http() as http:
        dropped = http.post("/v1/admin/cache/invalidate", json={"model_version": api_stack.v2})
    assert dropped.status_code == 200, dropped.text


def test_every_phase_and_check_passes(fuzzed_b: ApiServer, tmp_path: Path) -> None:
    run = schemathesis_run(fuzzed_b.url, tmp_path, "--max-examples", "20")
    assert_every_phase_ran(run, minimum=200)


@pytest.mark.slow
def test_every_phase_and_check_passes_thousands_of_cases(
    fuzzed_b: ApiServer, tmp_path: Path
) -> None:
    run = schemathesis_run(fuzzed_b.url, tmp_path, "--max-examples", "300")
    assert_every_phase_ran(run, minimum=2000)


def test_keyed_replica_enforces_the_key_its_spec_declares(
    replica_a: ApiServer, replica_b: ApiServer, tmp_path: Path
) -> None:
    # ignored_auth sends each operation's request again without the key and with a wrong one.
    # Few cases: every one with the key takes from its rate budget (BURST).
    # The key goes in as the spec's ApiKey scheme, not as a raw header: then Schemathesis sends
    # no made-up bearer token beside it, which the API refuses with 400 (a key sent two ways).
    config = tmp_path / "schemathesis.toml"
    auth = f'\n[auth.openapi.ApiKey]\napi_key = "{KEYS["schemathesis"]}"\n'
    config.write_text(CONFIG.read_text() + auth)
    clients = ("--include-path-regex", CLIENT_ROUTES)
    (tmp_path / "a").mkdir()
    run = schemathesis_run(
        replica_a.url,
        tmp_path / "a",
        *clients,
        "--max-examples",
        "5",
        phases="fuzzing",
        config=config,
    )
    assert run.returncode == 0, str(run)
    assert run.cases["fuzzing"] >= 4, str(run)
    # The check is live: A's spec against B, which takes no key, is caught ignoring it.
    (tmp_path / "b").mkdir()
    against_b = ("--url", replica_b.url, "--max-examples", "1")
    control = schemathesis_run(
        replica_a.url, tmp_path / "b", *clients, *against_b, phases="fuzzing", config=config
    )
    codes = {failure["type"] for failure in control.report["failures"]}
    assert control.returncode != 0, str(control)
    assert "IgnoredAuth" in codes, str(control)


def _chunks(size: int, piece: int = 65_536) -> Iterator[bytes]:
    yield b'{"ticker": "AAPL", "pad": "'
    for _ in range(size // piece):
        yield b"x" * piece
    yield b'"}'


TEN_MB = 10 * 1024 * 1024
BODY = b'{"ticker": "AAPL", "horizon_days": 1}'
JSON = "application/json"
MALFORMED: dict[str, tuple[int, dict[str, str], bytes | None]] = {
    # name: (status, headers, body)
    "text/plain": (415, {"content-type": "text/plain"}, BODY),
    "form-encoded": (415, {"content-type": "application/x-www-form-urlencoded"}, b"ticker=AAPL"),
    "multipart without boundary": (415, {"content-type": "multipart/form-data"}, BODY),
    "unknown charset": (415, {"content-type": "application/json; charset=nope"}, BODY),
    "misspelt media type": (415, {"content-type": "application/jso"}, BODY),
    "no content-type": (415, {}, BODY),
    "missing body": (422, {"content-type": JSON}, None),
    "truncated JSON": (422, {"content-type": JSON}, BODY[:20]),
    "array, not object": (422, {"content-type": JSON}, b"[" + BODY + b"]"),
    "deeply nested": (
        422,
        {"content-type": JSON},
        b'{"ticker": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",  # 40 kB: under the size limit
    ),
    "10 MB": (413, {"content-type": JSON}, b'{"ticker": "AAPL", "pad": "' + b"x" * TEN_MB + b'"}'),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_requests_get_a_4xx_in_the_error_envelope(
    replica_b: ApiServer, name: str
) -> None:
    status, headers, body = MALFORMED[name]
    with replica_b.http() as http:
        response = http.post("/v1/forecast", content=body, headers=headers)
    assert response.status_code == status, (response.status_code, response.text)
    envelope = (ValidationErrorBody if status == 422 else ApiErrorBody).model_validate(
        response.json()
    )
    assert envelope.error == {413: "payload_too_large", 415: "unsupported_media_type"}.get(
        status, "invalid_request"
    )
    assert response.headers["x-finsimples-replica"] == "replica-b"


def test_every_post_route_refuses_non_json_and_oversized_bodies(fuzzed_b: ApiServer) -> None:
    routes = (
        "/v1/forecast",
        "/v1/forecast/batch",
        "/v1/admin/cache/invalidate",
        "/v1/admin/cache/warm",
    )
    with fuzzed_b.http() as http:
        statuses = {
            route: (
                http.post(route, content=BODY, headers={"content-type": "text/plain"}).status_code,
                # chunked: no Content-Length to refuse it by, the bytes read are counted
                http.post(
                    route, content=_chunks(TEN_MB), headers={"content-type": JSON}
                ).status_code,
                http.post(
                    route, content=b"{}", headers={"content-type": f"{JSON}; charset=UTF-8"}
                ).status_code,
            )
            for route in routes
        }
    # {} is valid for the warm-up route only (every field has a default)
    assert statuses == {
        route: (415, 413, 200 if route.endswith("warm") else 422) for route in routes
    }
