"""TableRef.create: a writer that loses the race to create a table looks again, three times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from finsimples import tables
from finsimples.storage import Location
from finsimples.tables import LakeConflictError, TableRef

SCHEMA = pa.schema([("ticker", pa.string())])
_CREATE = DeltaTable.create  # the real one, kept before a test replaces it


def _ref(tmp_path: Path) -> TableRef:
    return TableRef(Location(pafs.LocalFileSystem(), str(tmp_path), str(tmp_path)), "prices", None)


class _LosingCreate:
    """DeltaTable.create that loses ``losses`` races, then creates the table for real."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> DeltaTable:
        self.calls += 1
        if self.calls <= self.losses:
            raise CommitFailedError("a concurrent transaction created the table")
        return _CREATE(*args, **kwargs)


def test_a_lost_race_is_retried_and_the_table_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = _LosingCreate(losses=2)
    monkeypatch.setattr(tables.DeltaTable, "create", create)
    table = _ref(tmp_path).create(SCHEMA)
    assert table.version() == 0
    assert create.calls == 3


def test_three_lost_races_are_reported_as_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = _LosingCreate(losses=3)
    monkeypatch.setattr(tables.DeltaTable, "create", create)
    with pytest.raises(LakeConflictError, match="could not be opened or created") as raised:
        _ref(tmp_path).create(SCHEMA)
    assert isinstance(raised.value.__cause__, CommitFailedError)
    assert create.calls == 3


def test_an_existing_table_is_opened_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = _ref(tmp_path)
    ref.create(SCHEMA)
    create = _LosingCreate(losses=99)
    monkeypatch.setattr(tables.DeltaTable, "create", create)
    assert ref.create(SCHEMA).version() == 0
    assert create.calls == 0
