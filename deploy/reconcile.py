"""What the deploy controller should do: desired state (``@champion``) against actual state.

Pure: an observation and the controller's memory in, one decision out. Level-triggered in the
Kubernetes way: the decision depends only on what is true now, never on which event woke the
controller, so a missed webhook costs a delay, never a wrong state.

- **desired**: the version ``@champion`` points at in the registry;
- **actual**: the version each replica serves (the stack's record of the model each replica
  program was started with, pinned in its own model store: ``deploy.layout``);
- **memory**: the last version that was verified serving, and the versions whose
  verification failed (with why), which are held until a new version is promoted or a person
  forces one (``finsimples deploy --version N``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["none", "deploy", "hold", "wait"]


@dataclass(frozen=True)
class Observation:
    """The registry and the stack, as read at one moment.

    Attributes:
        champion: The version behind ``@champion`` (None: no champion yet).
        served: The version each replica serves, in slot order (empty: no replicas).
    """

    champion: str | None
    served: Sequence[str]

    @property
    def in_sync(self) -> bool:
        """Every replica serves the champion."""
        return (
            self.champion is not None and bool(self.served) and set(self.served) == {self.champion}
        )


@dataclass(frozen=True)
class Memory:
    """What the controller remembers across reconciles (and restarts: ``deploy.controller``).

    Attributes:
        last_good: The last version seen serving every replica after a deploy that stood.
        failed: Version -> why its verification failed; such a version is not deployed again
            while it holds ``@champion``.
    """

    last_good: str | None = None
    failed: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """One reconcile's verdict.

    Attributes:
        action: ``none`` (in sync), ``deploy`` (roll ``version`` onto the replicas), ``hold``
            (the champion failed before: serving stays as it is), ``wait`` (nothing to deploy).
        version: The version the decision is about (the champion), if any.
        previous: With ``deploy``: the one version the replicas serve now, to roll back to when
            the verification fails (None: they serve several, or none).
        reason: One line for the logs, the decisions record and ``deploy status``.
    """

    action: Action
    version: str | None
    reason: str
    previous: str | None = None


def decide(observation: Observation, memory: Memory) -> Decision:
    """The action that brings the replicas to ``@champion``, or why none is taken."""
    champion = observation.champion
    served = sorted(set(observation.served), key=_version_key)
    if champion is None:
        return Decision("wait", None, "no @champion in the registry: nothing to serve")
    if not served:
        return Decision("wait", champion, "the stack records no replicas: is it up?")
    if observation.in_sync:
        return Decision("none", champion, f"in sync: every replica serves v{champion}")
    shown = ", ".join(f"v{v}" for v in served)
    if champion in memory.failed:
        return Decision(
            "hold",
            champion,
            f"@champion is v{champion}, whose verification failed "
            f"({memory.failed[champion]}); the replicas keep serving {shown}. Promote another "
            f"version, or force this one with `finsimples deploy --version {champion}`",
        )
    previous = served[0] if len(served) == 1 else None
    return Decision(
        "deploy",
        champion,
        f"@champion is v{champion}, the replicas serve {shown}",
        previous=previous,
    )


def remember(memory: Memory, version: str, landed: bool, why: str = "") -> Memory:
    """The memory after a deploy of ``version``: good when it ``landed``, else held with ``why``.

    A version that landed is forgiven (a forced redeploy of a failed version clears it).
    """
    failed = dict(memory.failed)
    if landed:
        failed.pop(version, None)
        return Memory(last_good=version, failed=failed)
    failed[version] = why or "its deploy failed"
    return Memory(last_good=memory.last_good, failed=failed)


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (-1, version)
