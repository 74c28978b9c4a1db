"""`stack up` twice is harmless; a taken port or no champion starts nothing; `down` frees all.

A stack of its own (one replica, so it starts in ~20 s), apart from the session's three.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from deploy.stack import Stack
from tests.e2e.conftest import RunningStack, registry_with_two_versions, settings_of
from tests.e2e.conftest import stack_environment as environment

pytestmark = pytest.mark.e2e


def _nothing_started(stack: RunningStack) -> None:
    assert not stack.stack.running()
    assert not stack.leftovers()


def test_stack_without_a_champion_says_how_to_train_one(tmp_path: Path) -> None:
    env = environment(tmp_path / "state", 1)
    empty = RunningStack(tmp_path, env, settings_of(env), "", "")
    result = empty.cli("stack", "up", timeout=120)
    assert result.returncode == 1
    assert "has no @champion" in result.stderr
    assert "finsimples train --full" in result.stderr
    _nothing_started(empty)


@pytest.mark.slow  # a stack of its own, ~75 s; the session stack's teardown checks `down` too
def test_stack_lifecycle(
    tmp_path_factory: pytest.TempPathFactory, sample_wide: pd.DataFrame
) -> None:
    root = tmp_path_factory.mktemp("lifecycle")
    v1, v2 = registry_with_two_versions(root, sample_wide)
    env = environment(root / "state", 1)
    stack = RunningStack(root, env, settings_of(env), v1, v2)

    # A port the stack needs is taken: a clear error naming it and its holder; nothing starts.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.settings.stack.redis_port))
        squatter.listen()
        refused = stack.cli("stack", "up", timeout=120)
    assert refused.returncode == 1, refused.stdout
    message = " ".join(refused.stderr.split())
    assert f"port {stack.settings.stack.redis_port} (Redis) is taken by pid" in message
    _nothing_started(stack)

    first = stack.cli("stack", "up", timeout=300)
    try:
        assert first.returncode == 0, first.stderr
        assert "1 replicas serving model v" + v2 in first.stdout
        assert f"Prefect UI:          http://127.0.0.1:{stack.settings.stack.prefect_port}" in (
            first.stdout
        )
        pids = {name: info.pid for name, info in stack.stack.processes().items()}

        again = stack.cli("stack", "up", timeout=300)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert {name: info.pid for name, info in stack.stack.processes().items()} == pids

        status = stack.cli("stack", "status", timeout=60)
        assert status.returncode == 0, status.stderr
        assert "replica-1" in status.stdout
        assert "RUNNING" in status.stdout
        states = {name: info.state for name, info in stack.stack.processes().items()}
        for program in ("prefect-server", "flows-runner", "deploy-controller"):
            assert states[program] == "RUNNING", states

        logs = stack.cli("stack", "logs", "nginx", "-n", "5", timeout=60)
        assert logs.returncode == 0, logs.stderr
    finally:
        down = stack.cli("stack", "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert "every port is free" in down.stdout
    _nothing_started(stack)
    assert not Stack.of(stack.settings).running()
    again_down = stack.cli("stack", "down", timeout=60)
    assert again_down.returncode == 0
    assert "no stack is running" in again_down.stdout
