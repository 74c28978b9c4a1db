"""``finsimples monitor status`` against a real Prometheus with no FinSimples targets yet.

Prometheus is the judge of the screen's PromQL: every query must be accepted. With nothing
scraped, the screen says so instead of inventing figures. The live figures are checked on the
whole stack in ``tests/e2e/test_monitor_status.py``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitoring.prometheus_api import PrometheusApi, PrometheusError
from monitoring.status import collect, status_queries
from tests.servers import free_port, required_tool, server_process

pytestmark = pytest.mark.integration
FINSIMPLES = str(Path(sys.executable).with_name("finsimples"))


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping only itself."""
    binary = required_tool("prometheus", "prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: prometheus, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n"
    )
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with server_process(command, port, folder / "prometheus.log"):
        yield f"http://127.0.0.1:{port}"


def test_prometheus_accepts_every_query_of_the_screen(prometheus: str) -> None:
    with PrometheusApi(prometheus) as api:
        for name, expr in status_queries("1m").items():
            assert api.query(expr) == [], f"{name}: {expr}"  # valid, and nothing scraped yet
        snapshot = collect(api, scheduler=f"http://127.0.0.1:{free_port()}")
    assert snapshot.replicas == ()
    assert snapshot.controller_up is None
    assert snapshot.scheduler_up is False  # nothing answers there
    assert snapshot.alerts == ()
    assert snapshot.redis_up is None
    assert snapshot.drift_detected is None
    assert snapshot.coverage == {}
    assert snapshot.total_rps == 0


def test_a_refused_query_says_why(prometheus: str) -> None:
    with PrometheusApi(prometheus) as api, pytest.raises(PrometheusError) as refused:
        api.query("sum(rate(up[1m]")
    assert "bad_data" in str(refused.value)
    assert "unclosed left parenthesis" in str(refused.value)


def test_the_command_prints_the_screen_or_exits_2_with_the_reason(prometheus: str) -> None:
    def run(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FINSIMPLES, "monitor", "status", "--prometheus", url],
            capture_output=True,
            text=True,
            timeout=60,
        )

    shown = run(prometheus)
    assert shown.returncode == 0, shown.stderr
    assert "replicas: 0/0 up" in shown.stdout
    assert "no track record yet" in shown.stdout
    assert "alerts: none firing or pending" in shown.stdout

    closed = run(f"http://127.0.0.1:{free_port()}")
    assert closed.returncode == 2
    assert "is not answering" in closed.stderr
