"""Ingest's problems: each invalid value named by file, line, column and value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_REPORTED_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    """One invalid value: where it is, what it is and what was expected."""

    file: str
    message: str
    line: str | None = None
    column: str | None = None
    value: object = None

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (self.file, self.line, self.column and f"column {self.column!r}")
            if part
        )
        value = "" if self.value is None else f"value {self.value!r}: "
        return f"{where}: {value}{self.message}"


class IngestError(ValueError):
    """Invalid input; the lake was left unchanged."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = [str(p) for p in self.problems[:MAX_REPORTED_PROBLEMS]]
        more = len(self.problems) - len(shown)
        super().__init__(
            "\n".join(shown + ([f"... and {more} more problems"] if more else []))
            + "\nnothing was written to the lake"
        )
