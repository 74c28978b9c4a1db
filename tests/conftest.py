"""Fixtures shared by every tier: the bundled sample, isolated settings, a real S3 API server."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest

from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.servers import free_port, server_process

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sp500_prices.csv.gz"
S3_KEY = "testing"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's FINSIMPLES_* variables or .env, or writes outside tmp."""
    for name in list(os.environ):
        if name.startswith("FINSIMPLES_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The bundled sample: 20 tickers' adjusted closes, 1990-2022, wide CSV."""
    return SAMPLE


@pytest.fixture(scope="session")
def sample_wide() -> pd.DataFrame:
    """The sample as pandas reads it, for comparisons (Date as datetime64)."""
    return pd.read_csv(SAMPLE, parse_dates=["Date"])


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone S3 API server, a separate process on 127.0.0.1."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    command = [
        str(Path(sys.executable).with_name("moto_server")),
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with server_process(command, port, log):
        yield f"http://127.0.0.1:{port}"


def s3_settings(endpoint: str, **overrides: object) -> Settings:
    """Settings for a lake in a new bucket of the S3 API server at ``endpoint``."""
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_KEY,
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    return Settings(
        lake_uri=f"s3://{bucket}/finsimples",
        s3_endpoint_url=endpoint,
        s3_access_key_id=S3_KEY,
        s3_secret_access_key=S3_KEY,
        **overrides,
    )


@pytest.fixture(params=["local", "s3"])
def lake_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty lake: a local folder, then a bucket on the S3 API server."""
    if request.param == "local":
        return Settings(lake_uri=str(tmp_path / "lake"))
    return s3_settings(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def lake(lake_settings: Settings) -> Lake:
    """An empty lake, local or on S3."""
    return Lake.from_settings(lake_settings)
