"""No secret reaches a log, an answer, the registry, the lake or the model store (issue 12 §4).

Recognisable secrets ("canaries") are set the way ops sets them, in the environment of each
process: a client API key and an admin key (the server holds only their hashes), the narrator's
OpenAI key, the S3 credentials of the lake. Then, as separate processes, the product ingests into
an S3 lake (moto's S3 server), registers a model in an MLflow store, imports it into a BentoML
model store with its fallback snapshot, and serves it with `bentoml serve`; clients send good and
bad requests, keys where careless clients put them (query strings, bodies, Basic auth, a wrong
field) and hostile tickers. Everything the product wrote or answered is then searched for every
canary, raw, URL-encoded and base64 at any alignment, inside gzip, zip and Parquet files too
(``tests.leaks``): captured stdout/stderr, the server's log, the answers (bodies and headers),
the MLflow store (sqlite file, artifacts, and what its API returns), the model store, the lake's
objects read back from S3. The servers the secrets are meant for (moto, the fake OpenAI server)
record what they received: that is the proof the canaries were live, not a leak.

The heavier variant (``slow``) adds `bentoml build` (the bento folder and its generated Dockerfile:
what `bentoml containerize` copies into the image) and the daily Prefect flow.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import boto3
import httpx
import pandas as pd
import pytest

from bentos.auth import hash_api_key
from deploy.compose_files import render_all
from deploy.layout import Slot
from deploy.stack import Stack
from finsimples.settings import Settings
from tests.champion import TICKERS, WATERMARK
from tests.fakes.openai_server import FakeOpenAIServer
from tests.integration.api.conftest import ROOT, ApiServer, environment, wait_ready
from tests.integration.api.test_bento_build import NOT_IN_A_CHECKOUT
from tests.leaks import LeakScanner
from tests.servers import free_port, nginx_in_front, server_process

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
# Tickers a hostile client sends; the API must refuse each with a 422 before any code runs.
HOSTILE_TICKERS = [
    "../../etc/passwd",
    "..",
    "AAPL\r\nDEL *",
    "AAPL\n",
    "AA\x00PL",
    "\u0410APL",  # Cyrillic A
    "\u202eLPAA",  # right-to-left override
    "AA\u200dPL",  # zero-width joiner
    "A" * 5000,
]
# One process (one start-up, one import of MLflow and XGBoost): register a small model as
# `finsimples train` would log it, import it into the model store with its fallback snapshot as
# `python -m bentos.package --prepare` does, then dump what MLflow's API returns about it.
REGISTER_AND_PREPARE = """
import json, sys, time
started = time.monotonic()
from pathlib import Path
import mlflow
from bentos.package import prepare
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.champion import fit_small, register_champion
settings = Settings()
lake = Lake.from_settings(settings)
print(f"{time.monotonic() - started:.1f} s: imported")
print("registered version", register_champion(settings, lake, fit_small(lake)))
print(f"{time.monotonic() - started:.1f} s: registered")
print(prepare(settings, Path(sys.argv[2])))  # beside the run, not in the source tree
print(f"{time.monotonic() - started:.1f} s: prepared")
client = mlflow.MlflowClient(settings.resolved_mlflow_tracking_uri)
records = []
for experiment in client.search_experiments():
    records.append({"experiment": experiment.name, "tags": experiment.tags})
    for run in client.search_runs([experiment.experiment_id]):
        records.append({"run": dict(run.info), "params": run.data.params, "tags": run.data.tags})
        records.append({"metrics": list(run.data.metrics)})
for model in client.search_registered_models():
    records.append({"model": model.name, "tags": model.tags, "aliases": model.aliases})
    for version in client.search_model_versions(f"name='{model.name}'"):
        records.append({"version": dict(version), "tags": version.tags})
with open(sys.argv[1], "w") as out:
    json.dump(records, out, default=str)
print(len(records), "MLflow records")
"""


def canaries() -> dict[str, str]:
    """Fresh recognisable secrets, as long as the real ones (a log may show a short value whole
    and cut a long one), random enough that a stale file from another run never matches."""

    def token(prefix: str, length: int) -> str:
        return (prefix + secrets.token_urlsafe(length))[:length]

    return {
        "client API key": token("fs_LEAKCANARYc", 46),  # `finsimples api-key new`: 46
        "admin API key": token("fs_LEAKCANARYa", 46),
        "wrong API key": token("fs_LEAKCANARYw", 46),
        "OpenAI key": token("sk-proj-LEAKCANARY", 164),
        "S3 access key id": "AKIALEAKC" + secrets.token_hex(6).upper()[:11],  # AWS: 20
        "S3 secret key": token("LEAKCANARYs3", 40),  # AWS: 40
    }


@dataclass(repr=False)  # a failing test's report shows no secret: it names them
class LeakRun:
    """What the product wrote and answered, and what the secrets' recipients received."""

    secrets: dict[str, str]
    product: Path
    settings_env: dict[str, str]
    bucket: str
    s3: object
    answers: list[tuple[str, int, str]] = field(default_factory=list)
    llm_authorizations: list[str] = field(default_factory=list)
    s3_recording: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, command: list[str], cwd: Path | None = None, **extra: str) -> str:
        """Run one product command with the secrets' environment; its output kept as a log."""
        logs = self.product / "logs"
        logs.mkdir(exist_ok=True)
        started = time.monotonic()
        done = subprocess.run(
            command,
            cwd=cwd or self.product,
            env=self.settings_env | extra,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        (logs / f"{name}.stdout").write_text(done.stdout)
        (logs / f"{name}.stderr").write_text(done.stderr)
        assert done.returncode == 0, f"{name}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        self.timings[name] = round(time.monotonic() - started, 1)
        print(f"{name}: {self.timings[name]} s")
        return done.stdout


@pytest.fixture(scope="module")
def moto_recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A moto S3 server of this module's own that records every request it receives."""
    root = tmp_path_factory.mktemp("moto-recorded")
    recording = root / "requests.jsonl"
    port = free_port()
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    env = environment(MOTO_ENABLE_RECORDING="true", MOTO_RECORDER_FILEPATH=str(recording))
    with contextlib.chdir(root), server_process(command, port, root / "moto.log", env=env):
        yield f"http://127.0.0.1:{port}", recording


@pytest.fixture(scope="module")
def leak_run(
    tmp_path_factory: pytest.TempPathFactory,
    sample_wide: pd.DataFrame,
    moto_recording: tuple[str, Path],
) -> LeakRun:
    """Ingest, register, prepare and serve with the canaries set; the answers collected."""
    endpoint, recording = moto_recording
    found = canaries()
    product = tmp_path_factory.mktemp("leaks") / "product"
    product.mkdir()
    bucket = f"lake-{secrets.token_hex(6)}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=bucket)
    keys = {
        "FINSIMPLES_API_KEY_HASHES": json.dumps([hash_api_key(found["client API key"])]),
        "FINSIMPLES_ADMIN_KEY_HASHES": json.dumps([hash_api_key(found["admin API key"])]),
    }
    with FakeOpenAIServer() as llm:
        env = environment(
            FINSIMPLES_STATE_DIR=str(product / "state"),
            FINSIMPLES_LAKE_URI=f"s3://{bucket}/finsimples",
            FINSIMPLES_S3_ENDPOINT_URL=endpoint,
            FINSIMPLES_S3_ACCESS_KEY_ID=found["S3 access key id"],
            FINSIMPLES_S3_SECRET_ACCESS_KEY=found["S3 secret key"],
            # The standard chain too: whatever library looks there (boto3, MLflow) finds them.
            AWS_ACCESS_KEY_ID=found["S3 access key id"],
            AWS_SECRET_ACCESS_KEY=found["S3 secret key"],
            FINSIMPLES_OPENAI_BASE_URL=llm.base_url,
            FINSIMPLES_OPENAI_API_KEY=found["OpenAI key"],
            FINSIMPLES_OPENAI_MODEL="fake-gpt",
            FINSIMPLES_DEPLOY_API_KEY=found["admin API key"],
            FINSIMPLES_API_KEY_BURST="1000",
            BENTOML_HOME=str(product / "bentoml"),
            FINSIMPLES_FALLBACK_SNAPSHOT_PATH=str(product / "snapshot" / "fallback.json.gz"),
            **keys,
        )
        run = LeakRun(found, product, env, bucket, s3, s3_recording=recording)
        prices = product / "inputs" / "prices.csv"
        prices.parent.mkdir()
        subset = sample_wide.loc[sample_wide["Date"] >= "2017-01-01", ["Date", *TICKERS]]
        subset.to_csv(prices, index=False)
        finsimples = str(BIN / "finsimples")
        run.run("ingest", [finsimples, "ingest", "--until", WATERMARK.isoformat(), str(prices)])
        api_dump = product / "logs" / "mlflow-api.json"
        snapshot = product / "snapshot" / "fallback.json.gz"
        snapshot.parent.mkdir()
        script = [sys.executable, "-c", REGISTER_AND_PREPARE, str(api_dump), str(snapshot)]
        run.run("register + prepare", script)
        serve(run)
        for request in llm.requests:
            headers = {name.lower(): value for name, value in request.headers.items()}
            run.llm_authorizations.append(headers.get("authorization", ""))
    return run


def serve(run: LeakRun) -> None:
    """`bentoml serve` with the secrets; clients good, bad and careless; the answers kept."""
    client, admin, wrong = (
        run.secrets[k] for k in ("client API key", "admin API key", "wrong API key")
    )
    port = free_port()
    command = [str(BIN / "bentoml"), "serve", "bentos.service:ForecastService"]
    command += ["--working-dir", str(ROOT), "--host", "127.0.0.1", "--port", str(port)]
    log = run.product / "logs" / "serve.log"
    env = run.settings_env | {"FINSIMPLES_REPLICA_ID": "leak-test"}
    started = time.monotonic()
    with contextlib.chdir(run.product), server_process(command, port, log, timeout=60, env=env):
        server = ApiServer(f"http://127.0.0.1:{port}", "leak-test", log)
        wait_ready(server)
        run.timings["serve start"] = round(time.monotonic() - started, 1)
        good = {"X-API-Key": client}
        json_body = good | {"Content-Type": "application/json"}
        basic = base64.b64encode(f"user:{client}".encode()).decode()
        forecast = {"ticker": "KO", "horizon_days": 5, "locale": "en"}
        requests: list[tuple[str, str, dict[str, object], int]] = [
            ("POST", "/v1/forecast", {"json": forecast, "headers": good}, 200),
            (
                "POST",
                "/v1/forecast",
                {"json": forecast, "headers": {"Authorization": f"Bearer {client}"}},
                200,
            ),
            ("POST", "/v1/forecast", {"json": forecast, "headers": {"X-API-Key": wrong}}, 401),
            (  # a key sent two ways (RFC 6750 §2): refused, neither key echoed
                "POST",
                "/v1/forecast",
                {"json": forecast, "headers": good | {"Authorization": f"Bearer {wrong}"}},
                400,
            ),
            ("GET", "/v1/tickers", {"params": {"api_key": client}}, 401),
            ("GET", "/v1/tickers", {"headers": {"Authorization": f"Basic {basic}"}}, 401),
            ("POST", "/v1/forecast", {"json": {**forecast, "api_key": client}}, 401),
            (
                "POST",
                "/v1/forecast",
                {"json": {**forecast, "api_key": client}, "headers": good},
                200,
            ),
            ("POST", "/v1/forecast", {"json": {"ticker": client}, "headers": good}, 422),
            (
                "POST",
                "/v1/forecast",
                {"json": {"ticker": "KO", "horizon_days": client}, "headers": good},
                422,
            ),
            ("POST", "/v1/forecast", {"content": f"api_key={client}", "headers": json_body}, 422),
            ("POST", "/v1/forecast", {"content": f'["{client}"]', "headers": json_body}, 422),
            (
                "POST",
                "/v1/forecast/batch",
                {"json": {"tickers": ["KO", client]}, "headers": good},
                422,
            ),
            ("GET", "/v1/history", {"params": {"ticker": client}, "headers": good}, 422),
            (
                "GET",
                "/v1/history",
                {"params": {"ticker": "KO", "api_key": client}, "headers": good},
                200,
            ),
            ("POST", "/v1/forecast", {"json": {"ticker": "ZZZZ"}, "headers": good}, 404),
            ("GET", "/v1/model", {"headers": good}, 200),
            ("GET", "/docs.json", {}, 200),
            ("GET", "/readyz", {}, 200),
            (
                "POST",
                "/v1/admin/cache/warm",
                {
                    "json": {"tickers": ["KO"], "horizons": [5], "locales": ["en"]},
                    "headers": {"X-API-Key": admin},
                },
                200,
            ),
            (
                "POST",
                "/v1/admin/cache/invalidate",
                {"json": {"model_version": f"v:{admin}"}, "headers": {"X-API-Key": admin}},
                422,
            ),
        ]
        for ticker in HOSTILE_TICKERS:
            requests += [
                ("POST", "/v1/forecast", {"json": {"ticker": ticker}, "headers": good}, 422),
                (
                    "POST",
                    "/v1/forecast/batch",
                    {"json": {"tickers": [ticker]}, "headers": good},
                    422,
                ),
                ("GET", "/v1/history", {"params": {"ticker": ticker}, "headers": good}, 422),
            ]
        requests.append(("GET", "/metrics", {}, 200))  # last: every series counted by then
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for method, path, options, expected in requests:
                reply = http.request(method, path, **options)  # type: ignore[arg-type]
                shown = f"{method} {path} {options.get('json') or options.get('params') or ''}"
                answer = f"{reply.headers}\n{reply.text}"
                run.answers.append((shown, reply.status_code, answer))
                assert reply.status_code == expected, (
                    f"{shown!r}: {reply.status_code} {reply.text[:300]}"
                )


def scan(run: LeakRun) -> LeakScanner:
    """Every file the product wrote, its answers, the MLflow API's records, the lake's objects."""
    scanner = LeakScanner(run.secrets)
    scanner.scan_tree(run.product)
    for shown, status, answer in run.answers:
        scanner.scan_text(f"answer {status} to {shown[:80]!r}", answer)
    listing = run.s3.list_objects_v2(Bucket=run.bucket)  # type: ignore[attr-defined]
    for entry in listing.get("Contents", []):
        body = run.s3.get_object(Bucket=run.bucket, Key=entry["Key"])["Body"].read()  # type: ignore[attr-defined]
        scanner.files += 1
        scanner.scan_bytes(f"s3://{run.bucket}/{entry['Key']}", body)
    return scanner


def test_the_canaries_were_live(leak_run: LeakRun) -> None:
    # The narrator sent the OpenAI key to its server, the lake's writer signed with the S3 key:
    # without this, a clean scan could mean the secrets were never read.
    assert f"Bearer {leak_run.secrets['OpenAI key']}" in leak_run.llm_authorizations
    assert leak_run.s3_recording is not None
    signed = leak_run.s3_recording.read_text()
    assert f"Credential={leak_run.secrets['S3 access key id']}/" in signed
    assert leak_run.secrets["S3 secret key"] not in signed  # SigV4 never sends the secret


def test_no_secret_in_logs_answers_registry_lake_or_model_store(leak_run: LeakRun) -> None:
    scanner = scan(leak_run)
    print(f"steps (s): {leak_run.timings}")
    print(scanner.report())
    assert scanner.files > 20, scanner.report()
    # Among them: the registered model's MLflow artifacts and what MLflow's API returned.
    assert list(leak_run.product.rglob("MLmodel")), "no MLflow artifact was searched"
    assert (leak_run.product / "logs" / "mlflow-api.json").stat().st_size > 1000
    assert scanner.searched_bytes > 1_000_000, scanner.report()
    assert not scanner.leaks, scanner.report()
    # The bad bodies were logged, by field and error type only (bentos.log_redaction).
    served = (leak_run.product / "logs" / "serve.log").read_text()
    assert "invalid request: ticker (string_pattern_mismatch)" in served
    assert "invalid request: body (json_invalid)" in served


@pytest.mark.slow
def test_no_secret_reaches_the_bento_or_its_image(leak_run: LeakRun, tmp_path: Path) -> None:
    # `bentoml build` from a clean copy of the repository, with every canary in the
    # environment and in a .env beside bentofile.yaml, as on a developer's machine.
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(*NOT_IN_A_CHECKOUT))
    names = {
        "FINSIMPLES_OPENAI_API_KEY": "OpenAI key",
        "FINSIMPLES_S3_SECRET_ACCESS_KEY": "S3 secret key",
        "FINSIMPLES_DEPLOY_API_KEY": "admin API key",
    }
    dotenv = "".join(f"{name}={leak_run.secrets[key]}\n" for name, key in names.items())
    (checkout / ".env").write_text(dotenv)
    snapshot = leak_run.product / "snapshot" / "fallback.json.gz"
    (checkout / "bentos" / "snapshot").mkdir()
    shutil.copy(snapshot, checkout / "bentos" / "snapshot" / "fallback.json.gz")
    command = [str(BIN / "bentoml"), "build", "--output", "tag"]
    leak_run.run("bentoml build", command, cwd=checkout, PYTHONPATH=str(checkout))
    bentos = leak_run.product / "bentoml" / "bentos" / "finsimples-forecast"
    bento = bentos / (bentos / "latest").read_text().strip()
    assert (bento / "env" / "docker" / "Dockerfile").is_file()
    scanner = LeakScanner(leak_run.secrets)
    scanner.scan_tree(bento)  # src/, env/docker/Dockerfile, env/python, bento.yaml, apis/
    scanner.scan_tree(leak_run.product / "logs")
    print(scanner.report())
    assert scanner.files > 50, scanner.report()
    assert not scanner.leaks, scanner.report()


def test_nginx_logs_no_key_a_client_put_in_a_query_string(tmp_path: Path) -> None:
    # The stack's NGINX config, run by the real nginx in front of a stand-in upstream.
    secret = canaries()["client API key"]
    folder = tmp_path / "nginx"
    queries = [
        {"api_key": secret},
        {"ticker": "KO", "token": secret},
        {"key": secret},
        {"ticker": secret},  # a bare fs_ value
        {"ticker": "KO", "days": "5"},
    ]
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(FakeOpenAIServer())  # answers anything: a stand-in
        url = stack.enter_context(nginx_in_front([urlparse(upstream.base_url).netloc], folder))
        for query in queries:
            httpx.get(f"{url}/v1/history", params=query, timeout=10)
    logged = [json.loads(line)["uri"] for line in (folder / "access.log").read_text().splitlines()]
    assert logged == ["/v1/history?[redacted]"] * 4 + ["/v1/history?ticker=KO&days=5"]
    scanner = LeakScanner({"client API key": secret})
    scanner.scan_tree(folder)
    assert not scanner.leaks, scanner.report()


def test_the_stack_and_compose_files_hold_no_secret(tmp_path: Path) -> None:
    # What `finsimples stack up` writes before starting anything (supervisord's programs and
    # their environment, NGINX, Prometheus, Alertmanager, the slots) and the compose files,
    # generated from settings holding every secret. The replicas get secrets from the
    # environment `stack up` runs in, never from a file of the stack.
    found = canaries()
    settings = Settings(
        state_dir=tmp_path / "state",
        lake_uri="s3://lake/finsimples",
        s3_endpoint_url="http://127.0.0.1:9000",
        s3_access_key_id=found["S3 access key id"],
        s3_secret_access_key=found["S3 secret key"],
        openai_api_key=found["OpenAI key"],
        api_key_hashes=[hash_api_key(found["client API key"])],
        admin_key_hashes=[hash_api_key(found["admin API key"])],
        deploy_api_key=found["admin API key"],
    )
    stack = Stack.of(settings)
    tag, version = "finsimples-forecaster:v1-abc", "1"
    # pin_model links each replica's model store to the stack's: a folder stands for the model.
    (stack.layout.model_store / "models" / "finsimples-forecaster" / "v1-abc").mkdir(parents=True)
    stack.layout.state_file.parent.mkdir(parents=True, exist_ok=True)
    ports = list(settings.stack.replica_ports)[: settings.stack.replicas]
    slots = [
        Slot(f"replica-{i}", f"replica-{i}-p{p}", p, tag, version) for i, p in enumerate(ports)
    ]
    stack.layout.write_slots(slots)
    stack.write_nginx_conf(slots, generation=1)
    stack.write_prometheus_targets(slots)
    stack.write_monitoring_conf()
    stack.supervisor.write_config(stack.programs(slots, tmp_path))
    scanner = LeakScanner(found)
    scanner.scan_tree(tmp_path)
    for name, text in render_all(settings).items():
        scanner.scan_text(f"compose {name}", text)
    assert (stack.supervisor.folder / "supervisord.conf").is_file()
    assert scanner.files >= 10, scanner.report()
    assert not scanner.leaks, scanner.report()
