"""`finsimples ingest` into a local lake folder that is read-only, or on a full disk.

Tests run as root, for whom file modes stop no write, so the faults are made by the kernel: a
read-only bind mount of the lake folder (EROFS) and a small tmpfs holding it (ENOSPC). Both
need ``mount`` (root with CAP_SYS_ADMIN); where it is refused the test is skipped and says so.
Each case prints one ``fault report | ...`` line.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.champion import TICKERS

pytestmark = pytest.mark.integration


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextmanager
def _mounted(what: str, *args: str, target: Path) -> Iterator[None]:
    """``mount ARGS TARGET`` for the block; the test fails, saying why, if mounting is refused.

    Mounting needs root (CAP_SYS_ADMIN) and the ``mount`` program, as CI has (it runs as root;
    ``deploy/install-system-deps.sh`` installs ``mount``): a machine without them fails here
    instead of passing untested.
    """
    try:
        _mount(*args, str(target))
    except (OSError, subprocess.CalledProcessError) as exc:
        why = getattr(exc, "stderr", None) or exc
        pytest.fail(f"{what}: mount was refused ({str(why).strip()}); run as root", pytrace=False)
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.fixture
def prices(tmp_path: Path, sample_wide: pd.DataFrame) -> Path:
    """Six sample tickers from 2005 to 2022, as a wide CSV."""
    subset = sample_wide.loc[sample_wide["Date"] >= "2005-01-01", ["Date", *TICKERS]]
    path = tmp_path / "prices.csv"
    subset.to_csv(path, index=False)
    return path


def _ingest(*args: str) -> tuple[int, str]:
    """Run ``finsimples ingest ARGS`` in this process: its exit code and its error output."""
    result = CliRunner().invoke(app, ["ingest", *args])
    return result.exit_code, result.stderr


def _contents(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _used_bytes(folder: Path) -> int:
    stat = os.statvfs(folder)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def _lake(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Lake:
    monkeypatch.setenv("FINSIMPLES_LAKE_URI", str(folder))
    return Lake.from_settings(Settings())


def test_a_read_only_lake_folder_fails_the_ingest_and_keeps_its_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prices: Path
) -> None:
    folder = tmp_path / "lake"
    lake = _lake(monkeypatch, folder)
    assert _ingest("--until", "2012-12-31", str(prices))[0] == 0
    before, rows, files = lake.snapshot(), lake.read_prices(), _contents(folder)

    with _mounted("read-only lake folder", "--bind", "-o", "ro", str(folder), target=folder):
        code, error = _ingest(str(prices))
        # The lake is read while the fault lasts: readers are not hurt by it.
        assert lake.snapshot() == before
        pd.testing.assert_frame_equal(lake.read_prices(), rows)

    assert code == 1
    assert f"lake {folder}: " in error
    assert "Read-only file system" in error
    assert "the lake was not changed" in error
    assert _contents(folder) == files  # not one byte written
    _report(
        "read-only lake folder (ro bind mount)",
        folder,
        error,
        code,
        before.version,
        lake.snapshot().version,
        stray=0,
    )
    assert _ingest(str(prices))[0] == 0  # writable again: the same command succeeds
    assert lake.snapshot().version == before.version + 1


def test_a_full_lake_disk_fails_the_ingest_and_keeps_its_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prices: Path
) -> None:
    folder = tmp_path / "lake"
    folder.mkdir()
    lake = _lake(monkeypatch, folder)
    with _mounted("full lake disk", "-t", "tmpfs", "-o", "size=4m", "tmpfs", target=folder):
        assert _ingest("--until", "2012-12-31", str(prices))[0] == 0
        before, rows, files = lake.snapshot(), lake.read_prices(), _contents(folder)
        # Room for a page or four more: a year's data file of the ten still to come may fit.
        _mount("-o", f"remount,size={_used_bytes(folder) + 16384}", str(folder))

        code, error = _ingest(str(prices))

        assert code == 1
        assert f"lake {folder}: " in error
        assert "No space left on device" in error
        assert lake.snapshot() == before
        pd.testing.assert_frame_equal(lake.read_prices(), rows)
        after = _contents(folder)
        assert {name: after[name] for name in files} == files  # what v1 holds is intact
        stray = sorted(set(after) - set(files))
        assert all(name.startswith("prices/") for name in stray), stray  # data files only
        assert not [name for name in after if "/.tmp-" in name]  # no half-written file
        _report(
            "full lake disk (tmpfs)",
            folder,
            error,
            code,
            before.version,
            lake.snapshot().version,
            stray=len(stray),
        )

        _mount("-o", "remount,size=16m", str(folder))  # space again: the same command succeeds
        assert _ingest(str(prices))[0] == 0
        assert lake.snapshot().version == before.version + 1
        removed = lake.vacuum(retention_hours=0)
        assert set(stray) <= set(removed)  # the failed run's files ...
        # ... and, with no retention, the change-data files of committed writes (the
        # corrections they hold are copied into corrections/ first): nothing a version reads.
        assert all(p in stray or "/_change_data/" in p for p in removed), removed
        assert len(lake.read_prices()) == lake.snapshot().rows > len(rows)  # all still read


def _report(
    fault: str, folder: Path, error: str, code: int, before: int, after: int, *, stray: int
) -> None:
    message = " ".join(error.split())
    print(
        f"fault report | {fault} | attempted: finsimples ingest into {folder} | "
        f"exit code: {code} | error: {message[:220]} | lake: v{before} -> v{after}"
        f"{' (unchanged)' if before == after else ''} | uncommitted files left: {stray}"
    )
