"""Aliases, never stages: the `champion` serves, the `challenger` waits; every move is audited.

Each promotion or rollback is also recorded as a run of the audit experiment (tags: action,
from, to, actor, reason), so the history can be queried in the MLflow UI and here, and a
rollback knows which champion came before.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

CHAMPION = "champion"
CHALLENGER = "challenger"


class PromotionError(RuntimeError):
    """A promotion or rollback that cannot be done; the aliases were left as they were."""


@dataclass(frozen=True)
class PromotionEvent:
    """One move of the champion alias."""

    at: datetime
    action: str  # "promote" | "rollback"
    from_version: str | None
    to_version: str
    actor: str
    reason: str


def current_actor() -> str:
    """Who is acting: the login name of the process (the scheduler's or a person's)."""
    try:
        return getpass.getuser()
    except OSError:
        return "unknown"


class ModelRegistry:
    """The registered forecaster model and its aliases in MLflow."""

    def __init__(self, client: MlflowClient, model_name: str, audit_experiment: str) -> None:
        self.client = client
        self.model_name = model_name
        self.audit_experiment = audit_experiment

    def version_by_alias(self, alias: str) -> ModelVersion | None:
        """The version an alias points at, or None."""
        try:
            return self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def champion(self) -> ModelVersion | None:
        """The version that serves, or None before the first promotion."""
        return self.version_by_alias(CHAMPION)

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        return sorted(found, key=lambda v: int(v.version), reverse=True)

    def aliases(self) -> dict[str, list[str]]:
        """Version -> its aliases (version searches do not return them in every store)."""
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException:
            return {}
        by_version: dict[str, list[str]] = {}
        for alias, version in model.aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        return by_version

    def get(self, version: str) -> ModelVersion:
        """A version by number.

        Raises:
            PromotionError: no such version.
            MlflowException: the registry failed or could not be reached (not a missing version).
        """
        try:
            return self.client.get_model_version(self.model_name, str(version))
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            raise PromotionError(f"model {self.model_name!r} has no version {version!r}") from exc

    def set_challenger(self, version: str) -> None:
        """Point the challenger alias at a candidate that did not become champion."""
        self.client.set_registered_model_alias(self.model_name, CHALLENGER, str(version))

    def promote(self, version: str, *, reason: str, actor: str | None = None) -> PromotionEvent:
        """Make ``version`` the champion and record why.

        The gate is the caller's business (the retrain job runs it; the CLI demands ``--force``
        and a reason to go around it).
        """
        target = self.get(version)
        if not reason.strip():
            raise PromotionError("a promotion needs a reason")
        # Stores disagree on int or str version numbers: compare and record strings.
        to_version = str(target.version)
        current = self.champion()
        from_version = str(current.version) if current is not None else None
        if from_version == to_version:
            raise PromotionError(f"version {version} is already the champion")
        self.client.set_registered_model_alias(self.model_name, CHAMPION, to_version)
        challenger = self.version_by_alias(CHALLENGER)
        if challenger is not None and str(challenger.version) == to_version:
            self.client.delete_registered_model_alias(self.model_name, CHALLENGER)
        return self._record("promote", from_version, to_version, actor, reason)

    def rollback(self, *, reason: str = "rollback", actor: str | None = None) -> PromotionEvent:
        """Give the champion alias back to the version that held it before the current one.

        Raises:
            PromotionError: there is no earlier champion to go back to.
        """
        chain = self._champion_chain()
        current = self.champion()
        if current is None or len(chain) < 2:
            raise PromotionError("no earlier champion to roll back to")
        previous = chain[-2]
        self.client.set_registered_model_alias(self.model_name, CHAMPION, previous)
        return self._record("rollback", str(current.version), previous, actor, reason)

    def history(self) -> list[PromotionEvent]:
        """Every promotion and rollback of this model, oldest first."""
        experiment = self.client.get_experiment_by_name(self.audit_experiment)
        if experiment is None:
            return []
        runs = self.client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.model = '{self.model_name}'",
            order_by=["attributes.start_time ASC"],
            max_results=10_000,
        )
        return [
            PromotionEvent(
                at=datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC),
                action=run.data.tags["action"],
                from_version=run.data.tags.get("from_version") or None,
                to_version=run.data.tags["to_version"],
                actor=run.data.tags.get("actor", ""),
                reason=run.data.tags.get("reason", ""),
            )
            for run in runs
        ]

    def _champion_chain(self) -> list[str]:
        """The champions in order, with rolled-back ones removed (a stack)."""
        chain: list[str] = []
        for event in self.history():
            if event.action == "rollback" and chain:
                chain.pop()
            else:
                chain.append(event.to_version)
        return chain

    def _record(
        self,
        action: str,
        from_version: str | None,
        to_version: str,
        actor: str | None,
        reason: str,
    ) -> PromotionEvent:
        actor = actor or current_actor()
        experiment = self.client.get_experiment_by_name(self.audit_experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(self.audit_experiment)
        )
        tags = {
            "model": self.model_name,
            "action": action,
            "from_version": from_version or "",
            "to_version": to_version,
            "actor": actor,
            "reason": reason,
        }
        run = self.client.create_run(
            experiment_id, tags=tags, run_name=f"{action} v{from_version} -> v{to_version}"
        )
        self.client.set_terminated(run.info.run_id)
        self.client.set_model_version_tag(
            self.model_name,
            to_version,
            f"last_{action}",
            f"{datetime.now(UTC).isoformat()} by {actor}: {reason}",
        )
        return PromotionEvent(
            at=datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC),
            action=action,
            from_version=from_version,
            to_version=to_version,
            actor=actor,
            reason=reason,
        )
