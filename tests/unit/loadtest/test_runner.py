"""The runner's pure parts: the host check's messages, CPU seconds from readings."""

from __future__ import annotations

import pytest

from loadtest.runner import LoadTestError, check_host, cpu_seconds
from loadtest.sampler import ReplicaSample
from tests.servers import free_port


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("http://[::1", "is not an http(s) URL"),
        ("ftp://example", "is not an http(s) URL"),
        ("http://127.0.0.1:{port}", "nothing answers at http://127.0.0.1:"),
    ],
)
def test_a_bad_host_fails_at_once_with_the_reason(host: str, message: str) -> None:
    with pytest.raises(LoadTestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_host(host.format(port=free_port()), [])


def test_cpu_seconds_add_each_readings_share_of_its_interval() -> None:
    readings = [
        ReplicaSample(0.0, "r", None, None, None),  # the first reading has no rate yet
        ReplicaSample(2.0, "r", 50.0, None, None),  # half a core for 2 s
        ReplicaSample(4.0, "r", None, None, None),  # the process was gone: no CPU known
        ReplicaSample(14.0, "r", 10.0, None, None),  # a tenth of a core for 10 s
    ]
    assert cpu_seconds(readings) == pytest.approx(2.0)
    assert cpu_seconds(readings[:1]) is None
