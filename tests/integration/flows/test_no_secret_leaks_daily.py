"""The daily flow with every secret set leaves none in Prefect, MLflow, the lake or Redis.

The Prefect side of ``tests/integration/test_no_secret_leaks.py``: the flows read their settings
from the environment, as a deployment's process does, so the canaries go there: S3 credentials of
a lake and a drop location on moto's S3 server, the narrator's OpenAI key, the deploy's admin
key, the client keys' hashes. One replayed day runs ingest -> incremental retrain -> gate ->
deploy hook (cache warmed in Redis, narratives from the fake OpenAI server) -> track record.
Then Prefect's database and home, the MLflow store, the process's output, the lake's objects
and Redis's keys and values are searched for every canary.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pandas as pd
import prefect.settings
import pytest
import redis

from bentos.auth import hash_api_key
from flows.daily import daily_flow
from tests.champion import fit_small, register_champion
from tests.fakes.openai_server import FakeOpenAIServer
from tests.integration.flows.conftest import make_world
from tests.integration.test_no_secret_leaks import canaries
from tests.leaks import LeakScanner

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_daily_flow_leaves_no_secret(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sample_wide: pd.DataFrame,
    s3_endpoint: str,
    redis_url: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    found = canaries()
    bucket = f"daily-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", found["S3 access key id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", found["S3 secret key"])
    with FakeOpenAIServer() as llm:
        world = make_world(
            monkeypatch,
            tmp_path,
            sample_wide,
            lake_uri=f"s3://{bucket}/lake",
            drop_uri=f"s3://{bucket}/incoming",
            s3_endpoint_url=s3_endpoint,
            s3_access_key_id=found["S3 access key id"],
            s3_secret_access_key=found["S3 secret key"],
            openai_base_url=llm.base_url,
            openai_api_key=found["OpenAI key"],
            openai_model="fake-gpt",
            api_key_hashes=[hash_api_key(found["client API key"])],
            admin_key_hashes=[hash_api_key(found["admin API key"])],
            deploy_api_key=found["admin API key"],
            redis_url=redis_url,
        )
        register_champion(world.settings, world.lake, fit_small(world.lake))
        dropped = world.drop_next_day()
        summary = daily_flow()
        authorizations = [
            {k.lower(): v for k, v in request.headers.items()}.get("authorization")
            for request in llm.requests
        ]
    assert summary.ingest.processed == [dropped.name]
    assert summary.retrain is not None
    assert summary.retrain.outcome is not None
    assert f"Bearer {found['OpenAI key']}" in authorizations  # the canary was live

    scanner = LeakScanner(found)
    database = Path(urlparse(prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).path)
    assert database.is_file()
    # Prefect's database (flow and task runs, parameters, logs) and home (results, storage).
    scanner.scan_trees([database.parent, Path(os.environ["PREFECT_HOME"]), tmp_path])
    output = capfd.readouterr()
    scanner.scan_text("stdout", output.out)
    scanner.scan_text("stderr", output.err)
    for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        scanner.files += 1
        body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        scanner.scan_bytes(f"s3://{bucket}/{entry['Key']}", body)
    cache = redis.Redis.from_url(redis_url)
    dump = {key.decode(): repr(cache.dump(key)) for key in cache.scan_iter(match="*", count=1000)}
    scanner.scan_text("redis", json.dumps(dump))
    print(scanner.report())
    assert scanner.files > 30, scanner.report()
    assert not scanner.leaks, scanner.report()
