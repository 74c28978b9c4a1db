"""`python -m deploy.audit` with the real pip-audit against an unreachable service: NOT RUN.

The service is made unreachable on purpose (a local port that refuses connections), so the
result does not depend on this machine's network: PyPI through a proxy that refuses, OSV at a
query URL that refuses. A fresh pip-audit cache each time, so no earlier answer is reused.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.audit import BENTO_REQUIREMENTS, NOT_RUN, ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def refused_url() -> Iterator[str]:
    """An http URL on 127.0.0.1 whose port is bound but not listening: connections refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def audit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "deploy.audit", "-r", str(BENTO_REQUIREMENTS), *args]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def clean_env(**extra: str) -> dict[str, str]:
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in proxies}
    return env | extra


@pytest.mark.parametrize("service", ["pypi", "osv"])
def test_an_unreachable_service_gives_not_run_and_exit_3(
    service: str, refused_url: str, tmp_path: Path
) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    if service == "pypi":  # pip-audit always asks pypi.org: send it through a refusing proxy
        done = audit(*cache, env=clean_env(HTTPS_PROXY=refused_url, HTTP_PROXY=refused_url))
    else:
        done = audit(*cache, "-s", "osv", "--osv-url", f"{refused_url}/v1/query", env=clean_env())
    assert done.returncode == NOT_RUN, done.stdout + done.stderr
    [line] = done.stdout.splitlines()  # exactly one verdict line
    assert line.startswith(f"audit: NOT RUN — service {service}: "), line
    assert "clean" not in line
    assert "Connection" in line or "Proxy" in line, line  # the reason is the network's
