"""A replica SIGKILLed under steady load: NGINX fails over, supervisord restarts it, it rejoins.

Issue 12's bar: under 1% errors (target 0); the test prints its ``fault report | ...`` line.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.conftest import KEYS, LOAD_KEYS, TICKERS, RunningStack
from tests.e2e.load import steady_load
from tests.servers import wait_until

pytestmark = pytest.mark.e2e


def test_a_killed_replica_costs_no_request_and_rejoins(running_stack: RunningStack) -> None:
    stack = running_stack.stack
    victim = running_stack.slots()[1]
    keys = [KEYS["failover"], *LOAD_KEYS]
    with steady_load(running_stack.api, keys, TICKERS, threads=3) as load:
        time.sleep(3)
        info = stack.processes()[victim.program]
        killed_at = time.monotonic()
        # The whole replica (arbiter and worker: its process group), as when a machine or a
        # container dies; supervisord starts each program as its own group.
        os.killpg(info.pid, signal.SIGKILL)

        status = running_stack.cli("stack", "status", timeout=60)
        row = next(line for line in status.stdout.splitlines() if victim.name in line)
        assert "RUNNING" not in row or row.rstrip(" │").endswith("no"), status.stdout

        wait_until(lambda: stack.replica_ready(victim), 120, f"{victim.name} restarted")
        rejoined_at = time.monotonic()
        new_pid = stack.processes()[victim.program].pid
        time.sleep(4)  # NGINX retries the replica within fail_timeout, then sends it traffic

    answers = load.snapshot()
    report = load.report(f"{victim.name} SIGKILLed, restarted by supervisord")
    print(report.line())
    print(f"SIGKILL {victim.name}: {load.summary()}; back after {rejoined_at - killed_at:.1f} s")
    assert report.failed <= 0.01 * report.sent, (load.summary(), load.failed[:3])
    assert report.server_errors <= 0.01 * report.sent
    during = [a for a in answers if killed_at < a.sent_at < rejoined_at and a.status == 200]
    assert during, "no traffic was served while the replica was down"
    assert {a.replica for a in during} - {victim.name}, "the other replicas served nothing"
    after = [a for a in answers if a.sent_at > rejoined_at + 2 and a.status == 200]
    assert any(a.replica == victim.name for a in after), "the restarted replica got no traffic"
    assert new_pid != info.pid
