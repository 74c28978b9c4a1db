"""The deploy gate's record and its rollback: a failed undo is said, never hidden."""

from __future__ import annotations

from typing import Any

import pytest

import flows.deploy_hook as hook
from finsimples.settings import Settings

FAILED = {"passed": False, "failures": ["p95 latency: 4.0 s is 1.0 s over"], "report": "r"}


def record(**fields: Any) -> hook.DeployRecord:
    base: dict[str, Any] = {
        "new_version": "3",
        "old_version": "2",
        "removed": 0,
        "warmed": 0,
        "drift_detected": None,
        "drift_report": "not run",
    }
    return hook.DeployRecord(**(base | fields))


def test_a_deploy_lands_unless_its_load_test_failed() -> None:
    assert record().landed  # no --verify
    assert record(verification={"passed": True, "failures": []}).landed
    failed = record(verification=FAILED, rolled_back_to="2")
    assert not failed.landed
    assert "load test verdict: FAIL (p95 latency: 4.0 s is 1.0 s over), rolled back to v2" in (
        failed.message
    )


def test_a_failed_rollback_is_in_the_message() -> None:
    failed = record(verification=FAILED, rolled_back_to="2", rollback_error="replicas: boom")
    assert not failed.landed
    assert "rollback to v2 FAILED (replicas: boom)" in failed.message


def test_undo_tries_both_steps_and_reports_each_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def restore(settings: Settings, old: str, new: str, why: str) -> None:
        calls.append(f"champion {new}->{old}: {why}")
        raise RuntimeError("registry down")

    def roll(settings: Settings, version: str) -> None:
        calls.append(f"replicas ->{version}")
        raise RuntimeError("replica-2 did not start")

    monkeypatch.setattr(hook, "restore_champion", restore)
    monkeypatch.setattr(hook, "roll_replicas", roll)
    error = hook.undo(Settings(), "2", "3", "p95")
    assert calls == ["champion 3->2: p95", "replicas ->2"]  # the second step still ran
    assert error == (
        "@champion not restored: registry down; replicas not rolled back: replica-2 did not start"
    )
    monkeypatch.setattr(hook, "restore_champion", lambda *a: None)
    monkeypatch.setattr(hook, "roll_replicas", lambda *a: None)
    assert hook.undo(Settings(), "2", "3", "p95") is None
