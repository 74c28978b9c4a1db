"""The fault plan: a replica reads its own faults from the shared file, and only when it changed."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from bentos.faults import NO_FAULT, Fault, FaultPlan


def write(path: Path, plan: object, mtime: float) -> None:
    path.write_text(json.dumps(plan) if not isinstance(plan, str) else plan)
    os.utime(path, (mtime, mtime))


def test_each_replica_reads_its_own_fault(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    write(path, {"replica-2": {"status": 500}, "replica-3": {"delay": 4}}, 1)
    assert FaultPlan(path, "replica-1", check_every=0).current() == NO_FAULT
    assert FaultPlan(path, "replica-2", check_every=0).current() == Fault(status=500)
    assert FaultPlan(path, "replica-3", check_every=0).current() == Fault(delay=4.0)


def test_a_changed_or_removed_file_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    plan = FaultPlan(path, "replica-2", check_every=0)
    assert plan.current() == NO_FAULT  # no file: no fault
    write(path, {"replica-2": {"status": 503}}, 1)
    assert plan.current() == Fault(status=503)
    write(path, {}, 2)
    assert plan.current() == NO_FAULT
    write(path, {"replica-2": {"status": 500}}, 3)
    path.unlink()
    assert plan.current() == NO_FAULT


def test_the_file_is_looked_at_once_a_second_at_most(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    plan = FaultPlan(path, "replica-2", check_every=3600)
    assert plan.current() == NO_FAULT
    write(path, {"replica-2": {"status": 500}}, 1)
    assert plan.current() == NO_FAULT  # not looked at again yet


@pytest.mark.parametrize("text", ["{not json", '["replica-2"]', '{"replica-2": {"status": "x"}}'])
def test_an_unreadable_plan_injects_nothing_and_says_why(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "faults.json"
    write(path, text, 1)
    with caplog.at_level(logging.ERROR, logger="bentos.faults"):
        assert FaultPlan(path, "replica-2", check_every=0).current() == NO_FAULT
    assert "unreadable" in caplog.text
