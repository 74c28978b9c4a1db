"""Faults a replica injects on purpose, for drills and tests (``fault_injection`` on only).

The fault plan is a JSON file shared by the replicas (``Settings.resolved_fault_plan_path``),
mapping a replica id to its faults::

    {"replica-2": {"status": 500}, "replica-3": {"delay": 4.0}}

- ``status``: the replica answers every forecast with this HTTP status (an ``injected_fault``
  error body), e.g. 500 for a broken replica behind NGINX;
- ``delay``: seconds its predictor sleeps before forecasting (a slow model).

The file is looked at no more than once a second and read again only when it changed, so a
drill breaks and mends a running replica by writing the file. A missing file means no fault;
an unreadable one is logged and means no fault.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fault:
    """What one replica injects."""

    status: int | None = None
    delay: float = 0.0


NO_FAULT = Fault()


class FaultPlan:
    """The fault plan file, as seen by one replica."""

    def __init__(self, path: Path, replica_id: str, check_every: float = 1.0) -> None:
        self.path = path
        self.replica_id = replica_id
        self.check_every = check_every
        self._lock = threading.Lock()
        self._checked = -float("inf")
        self._mtime: float | None = None
        self._fault = NO_FAULT

    def current(self) -> Fault:
        """This replica's fault now."""
        now = time.monotonic()
        if now - self._checked < self.check_every:
            return self._fault
        with self._lock:
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                self._mtime, self._fault = None, NO_FAULT
                return self._fault
            if mtime != self._mtime:
                self._mtime = mtime
                self._fault = self._read()
            return self._fault

    def _read(self) -> Fault:
        try:
            plan = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(plan, dict):
                raise ValueError("the plan is not an object of replica ids")
            mine = plan.get(self.replica_id, {})
            status = mine.get("status")
            fault = Fault(
                status=int(status) if status is not None else None,
                delay=float(mine.get("delay", 0.0)),
            )
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.error("fault plan %s unreadable, no fault injected: %s", self.path, exc)
            return NO_FAULT
        if fault != NO_FAULT:
            log.warning("fault injection on %s: %s", self.replica_id, fault)
        return fault
