"""The deploy controller's decisions: @champion against the replicas, and its memory."""

from __future__ import annotations

import pytest

from deploy.reconcile import Memory, Observation, decide, remember


def test_in_sync_does_nothing() -> None:
    decision = decide(Observation("2", ["2", "2", "2"]), Memory())
    assert decision.action == "none"
    assert decision.reason == "in sync: every replica serves v2"


def test_a_new_champion_is_deployed_with_the_served_version_to_roll_back_to() -> None:
    decision = decide(Observation("3", ["2", "2", "2"]), Memory(last_good="2"))
    assert (decision.action, decision.version, decision.previous) == ("deploy", "3", "2")
    assert decision.reason == "@champion is v3, the replicas serve v2"


def test_a_rollback_in_the_registry_is_a_deploy_like_any_other() -> None:
    decision = decide(Observation("1", ["2", "2", "2"]), Memory(last_good="2"))
    assert (decision.action, decision.version, decision.previous) == ("deploy", "1", "2")


def test_mixed_replicas_are_finished_without_a_version_to_roll_back_to() -> None:
    # A deploy cut short (its process killed) left two versions serving.
    decision = decide(Observation("3", ["3", "2", "2"]), Memory(last_good="2"))
    assert decision.action == "deploy"
    assert decision.previous is None
    assert "v2, v3" in decision.reason


def test_versions_sort_as_numbers() -> None:
    decision = decide(Observation("12", ["10", "9"]), Memory())
    assert "v9, v10" in decision.reason


def test_a_failed_version_is_held_not_retried() -> None:
    memory = Memory(last_good="2", failed={"3": "p95 latency: 4.1 s > 3.0 s"})
    decision = decide(Observation("3", ["2", "2", "2"]), memory)
    assert decision.action == "hold"
    assert "p95 latency: 4.1 s > 3.0 s" in decision.reason
    assert "finsimples deploy --version 3" in decision.reason


def test_a_newer_promotion_after_a_failure_is_deployed() -> None:
    memory = Memory(last_good="2", failed={"3": "p95"})
    decision = decide(Observation("4", ["2", "2", "2"]), memory)
    assert (decision.action, decision.version) == ("deploy", "4")


@pytest.mark.parametrize(
    ("observation", "reason"),
    [
        (Observation(None, ["2"]), "no @champion in the registry"),
        (Observation("2", []), "the stack records no replicas"),
    ],
)
def test_nothing_to_compare_waits(observation: Observation, reason: str) -> None:
    decision = decide(observation, Memory())
    assert decision.action == "wait"
    assert reason in decision.reason


def test_remember_keeps_failures_until_the_version_lands() -> None:
    memory = remember(Memory(last_good="2"), "3", landed=False, why="p95")
    assert memory == Memory(last_good="2", failed={"3": "p95"})
    memory = remember(memory, "4", landed=True)
    assert memory == Memory(last_good="4", failed={"3": "p95"})
    forced = remember(memory, "3", landed=True)  # a person forced it and it stood
    assert forced == Memory(last_good="3", failed={})
    assert remember(Memory(), "5", landed=False).failed == {"5": "its deploy failed"}
