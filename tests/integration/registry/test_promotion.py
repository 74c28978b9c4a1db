"""Aliases, promotion history and rollback against real MLflow stores."""

from __future__ import annotations

import pytest

from registry.promotion import CHALLENGER, PromotionError
from tests.integration.registry.conftest import add_version, make_registry

pytestmark = pytest.mark.integration


def test_promote_and_roll_back_with_history(sqlite_uri: str) -> None:
    registry = make_registry(sqlite_uri)
    v1, v2, v3 = (add_version(registry) for _ in range(3))
    assert registry.champion() is None

    registry.promote(v1, reason="first model", actor="ana")
    registry.set_challenger(v2)
    registry.promote(v2, reason="gate passed", actor="scheduler")
    assert registry.version_by_alias(CHALLENGER) is None  # the challenger won
    registry.promote(v3, reason="manual: hotfix", actor="bruno")
    assert str(registry.champion().version) == v3  # type: ignore[union-attr]

    event = registry.rollback(reason="v3 misbehaves", actor="ana")
    assert (event.from_version, event.to_version) == (v3, v2)
    assert str(registry.champion().version) == v2  # type: ignore[union-attr]
    registry.rollback(actor="ana")
    assert str(registry.champion().version) == v1  # type: ignore[union-attr]
    with pytest.raises(PromotionError, match="no earlier champion"):
        registry.rollback()

    history = registry.history()
    assert [(e.action, e.from_version, e.to_version, e.actor) for e in history] == [
        ("promote", None, v1, "ana"),
        ("promote", v1, v2, "scheduler"),
        ("promote", v2, v3, "bruno"),
        ("rollback", v3, v2, "ana"),
        ("rollback", v2, v1, "ana"),
    ]
    assert history[3].reason == "v3 misbehaves"
    tags = registry.get(v1).tags
    assert "by ana" in tags["last_rollback"]


def test_bad_promotions_leave_the_aliases_alone(sqlite_uri: str) -> None:
    registry = make_registry(sqlite_uri)
    v1 = add_version(registry)
    registry.promote(v1, reason="first", actor="ana")
    with pytest.raises(PromotionError, match="has no version '42'"):
        registry.promote("42", reason="typo")
    with pytest.raises(PromotionError, match="already the champion"):
        registry.promote(v1, reason="again")
    with pytest.raises(PromotionError, match="needs a reason"):
        registry.promote(add_version(registry), reason=" ")
    assert str(registry.champion().version) == v1  # type: ignore[union-attr]
    assert len(registry.history()) == 1


def test_registry_against_an_mlflow_server_process(mlflow_server: str) -> None:
    registry = make_registry(mlflow_server, name="served-forecaster")
    v1, v2 = add_version(registry), add_version(registry)
    registry.promote(v1, reason="first", actor="ci")
    registry.promote(v2, reason="better", actor="ci")
    registry.rollback(reason="drill", actor="ci")
    assert str(registry.champion().version) == v1  # type: ignore[union-attr]
    assert [e.action for e in registry.history()] == ["promote", "promote", "rollback"]
