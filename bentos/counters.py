"""Named counters of the serving objects (cache, engine, narrator), exported to Prometheus."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


class Counters:
    """Thread-safe named integer counters, meant to be exported as Prometheus counters.

    Args:
        names: The counter names; every one starts at 0.
        on_increment: Called as ``on_increment(name, amount)`` after each increment, e.g. to
            increment a Prometheus counter as well.
    """

    def __init__(
        self, names: Iterable[str], on_increment: Callable[[str, int], None] | None = None
    ) -> None:
        self._values = dict.fromkeys(names, 0)
        self._lock = threading.Lock()
        self._on_increment = on_increment

    def incr(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` (KeyError for an unknown name)."""
        with self._lock:
            self._values[name] += amount
        if self._on_increment is not None:
            self._on_increment(name, amount)

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter's current value."""
        with self._lock:
            return dict(self._values)
