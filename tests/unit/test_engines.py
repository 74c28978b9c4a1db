"""Which engine fits the boosters: the setting, its check, and how rows are split for workers."""

from __future__ import annotations

import sys
from itertools import pairwise

import pytest
from pydantic import ValidationError

from finsimples.engines import row_blocks, training_engine
from finsimples.settings import Settings
from training.boosting import fit_in_process


def test_the_default_engine_fits_in_process_without_dask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "distributed", raising=False)
    settings = Settings()
    assert settings.training_engine == "local"
    with training_engine(settings) as engine:
        assert engine is fit_in_process
    assert "distributed" not in sys.modules  # no cluster client for a local run


def test_the_environment_selects_dask_and_its_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSIMPLES_TRAINING_ENGINE", "dask")
    monkeypatch.setenv("FINSIMPLES_DASK_SCHEDULER", "tcp://dask-scheduler:8786")
    settings = Settings()
    assert (settings.training_engine, settings.dask_scheduler) == (
        "dask",
        "tcp://dask-scheduler:8786",
    )


def test_dask_without_a_scheduler_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINSIMPLES_TRAINING_ENGINE", "dask")
    with pytest.raises(ValidationError, match="FINSIMPLES_DASK_SCHEDULER"):
        Settings()


def test_an_unknown_engine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSIMPLES_TRAINING_ENGINE", "spark")
    with pytest.raises(ValidationError, match="training_engine"):
        Settings()


@pytest.mark.parametrize(("rows", "count"), [(10, 2), (11, 2), (3, 8), (1, 1), (1000, 7)])
def test_row_blocks_cover_every_row_once_in_order(rows: int, count: int) -> None:
    blocks = row_blocks(rows, count)
    assert 1 <= len(blocks) <= min(rows, count)
    assert blocks[0][0] == 0
    assert blocks[-1][1] == rows
    for (_, end), (start, _) in pairwise(blocks):
        assert end == start  # contiguous, no gap, no overlap
    sizes = [end - start for start, end in blocks]
    assert min(sizes) >= 1
    assert set(sizes[:-1]) <= {sizes[0]}  # equal shares, the last one takes what is left
    assert sizes[-1] <= sizes[0]


def test_row_blocks_refuse_an_empty_design() -> None:
    with pytest.raises(ValueError, match="no rows"):
        row_blocks(0, 2)
