"""Writers racing for the lake as users run them: real `finsimples ingest` processes at once.

Each writer is a process of its own running the `finsimples` console script's ``main()``,
configured by the FINSIMPLES_* variables a user exports. A launcher process does the imports
once (two to three seconds of CPU: pandas, pyarrow, delta-rs) and forks one writer per start
signal, so writers started together meet at the lake within a millisecond, and a dozen
writers cost one interpreter start. The launcher is also the one that SIGKILLs a writer
(its own, not yet reaped child) when told to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from pyarrow import fs

from finsimples.corrections import CORRECTIONS_SCHEMA
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.conftest import s3_settings

pytestmark = pytest.mark.integration

WRITERS = 6
TICKERS = ["AAPL", "AMD", "BAC", "BBY", "CVX", "GE"]
KEY = ["ticker", "date"]

# argv[1]: {"folder": ..., "commands": [[arg, ...], ...]}. Once imported it creates
# folder/ready. Command i starts as `finsimples <args>` in a child of its own when folder/go-i
# appears (in order), with its output in out-i and err-i; folder/kill-i SIGKILLs it; its exit
# status (negative: the signal) lands in status-i once it ended.
LAUNCHER = """
import json, os, signal, sys, time, traceback
from pathlib import Path
from cli.main import main

spec = json.loads(Path(sys.argv[1]).read_text())
folder, commands = Path(spec["folder"]), spec["commands"]

def run(i, argv):
    for fd, name in ((1, "out"), (2, "err")):
        os.dup2(os.open(folder / f"{name}-{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = ["finsimples", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

(folder / "ready").touch()
waiting, running = list(range(len(commands))), {}
deadline = time.monotonic() + 300
while waiting or running:
    if time.monotonic() > deadline:
        sys.exit("the writers did not all start and end within 300 s")
    while waiting and (folder / f"go-{waiting[0]}").exists():
        i = waiting.pop(0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run(i, commands[i])
        running[i] = pid
    for i, pid in list(running.items()):
        if (folder / f"kill-{i}").exists():
            os.kill(pid, signal.SIGKILL)  # not reaped yet: still our child
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            (folder / f"status-{i}.tmp").write_text(str(os.waitstatus_to_exitcode(status)))
            (folder / f"status-{i}.tmp").rename(folder / f"status-{i}")
            del running[i]
    time.sleep(0.002)
"""


def settings_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """An empty lake in a local folder or in a new bucket of the S3 API server."""
    if backend == "local":
        return Settings(lake_uri=str(tmp_path / "lake"))
    return s3_settings(request.getfixturevalue("s3_endpoint"))


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """An empty lake in a local folder, then in a bucket of the S3 API server."""
    return settings_for(request.param, request, tmp_path)


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment plus the lake's settings as FINSIMPLES_* variables."""
    fields = {f for f in Settings.model_fields if f.startswith(("lake_", "s3_"))}
    values = settings.model_dump(include=fields, exclude_none=True)
    lake = {
        f"FINSIMPLES_{name.upper()}": str(getattr(value, "get_secret_value", lambda v=value: v)())
        for name, value in values.items()
    }
    return {**os.environ, **lake, **extra}


def ticker_file(folder: Path, wide: pd.DataFrame, ticker: str) -> tuple[Path, pd.DataFrame]:
    """A long CSV (ticker,date,adj_close) of one ticker's 2020-2022 sample closes."""
    span = wide[wide["Date"] >= "2020-01-01"]
    rows = pd.DataFrame({"ticker": ticker, "date": span["Date"], "adj_close": span[ticker]})
    rows = rows.dropna().reset_index(drop=True)
    path = folder / f"{ticker}.csv"
    rows.to_csv(path, index=False, date_format="%Y-%m-%d")
    return path, rows


def prices_of(lake: Lake) -> pd.DataFrame:
    """The lake's (ticker, date, adj_close) rows, as ``read_prices`` sorts them."""
    return lake.read_prices()[["ticker", "date", "adj_close"]]


@dataclass(frozen=True)
class Exit:
    """How one `finsimples` process ended: its status (negative: the signal) and output."""

    status: int
    out: str
    err: str

    @property
    def version(self) -> int:
        """The lake version the ingest's summary line names."""
        return int(self.out.rsplit("lake version ", 1)[1].split(";")[0])


class Launch:
    """A launcher process holding writers at the start line, in a session of its own."""

    def __init__(self, folder: Path, commands: Sequence[Sequence[str]], env: dict[str, str]):
        folder.mkdir()
        self.folder = folder
        spec = folder / "spec.json"
        spec.write_text(json.dumps({"folder": str(folder), "commands": commands}))
        with (folder / "launcher.log").open("w") as log:
            self.launcher = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(spec)],
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_for(folder / "ready", 120)

    def go(self, *writers: int) -> float:
        """Start these writers (in order, at once); the moment they were started."""
        for i in writers:
            (self.folder / f"go-{i}").touch()
        return time.monotonic()

    def running(self, writer: int) -> bool:
        return not (self.folder / f"status-{writer}").exists()

    def kill(self, writer: int) -> None:
        """SIGKILL the writer now (if it still runs)."""
        (self.folder / f"kill-{writer}").touch()

    def finish(self, writer: int) -> Exit:
        """Wait for the writer to end; how it ended."""
        self._wait_for(self.folder / f"status-{writer}", 120)
        status = int((self.folder / f"status-{writer}").read_text())
        return Exit(status, self._output("out", writer), self._output("err", writer))

    def _output(self, name: str, writer: int) -> str:
        path = self.folder / f"{name}-{writer}"
        return path.read_text() if path.exists() else ""  # none: killed before it began

    def _wait_for(self, path: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert self.launcher.poll() is None, (self.folder / "launcher.log").read_text()
            assert time.monotonic() < deadline, f"no {path.name} after {timeout:.0f} s"
            time.sleep(0.01)

    def __enter__(self) -> Launch:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.launcher.wait(timeout=30)  # every writer ended: so does the launcher
        except subprocess.TimeoutExpired:
            pass
        if self.launcher.poll() is None:  # not reaped yet: its process group is still ours
            os.killpg(self.launcher.pid, signal.SIGKILL)
            self.launcher.wait()
        if exc[0] is None:
            assert self.launcher.returncode == 0, (self.folder / "launcher.log").read_text()


def run_together(
    folder: Path, commands: Sequence[Sequence[str]], env: dict[str, str]
) -> list[Exit]:
    """Run every command at the same moment and wait for them all."""
    with Launch(folder, commands, env) as launch:
        writers = range(len(commands))
        launch.go(*writers)
        return [launch.finish(i) for i in writers]


def assert_lost_by_name(writer: Exit, lake: Lake) -> None:
    """A writer that failed did so for the one allowed reason, and says so naming the lake."""
    message = " ".join(writer.err.split())
    assert writer.status == 1, writer.err
    assert f"error: lake {lake.uri}:" in message, writer.err
    assert "lost the commit to a concurrent writer on each of its" in message, writer.err
    assert "nothing of it was committed" in message, writer.err


@pytest.mark.parametrize(
    ("backend", "attempts"),
    [("local", 10), ("s3", 10), ("local", 1)],
    ids=["local", "s3", "local-one-try"],
)
def test_concurrent_ingests_land_every_row_or_fail_by_name(
    backend: str,
    attempts: int,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sample_wide: pd.DataFrame,
) -> None:
    settings = settings_for(backend, request, tmp_path)
    files = {t: ticker_file(tmp_path, sample_wide, t) for t in TICKERS}
    env = env_of(settings, FINSIMPLES_LAKE_COMMIT_ATTEMPTS=str(attempts))
    done = run_together(tmp_path / "run", [["ingest", str(p)] for p, _ in files.values()], env)

    lake = Lake.from_settings(settings)
    landed = prices_of(lake)
    assert not landed.duplicated(KEY).any()
    won = []
    for ticker, w in zip(TICKERS, done, strict=True):
        rows = landed[landed["ticker"] == ticker].reset_index(drop=True)
        if w.status == 0:
            won.append(w)
            pd.testing.assert_frame_equal(rows, files[ticker][1])
        else:  # allowed when the writers get a single try: then none of its rows is there
            assert_lost_by_name(w, lake)
            assert rows.empty
    if attempts > 1:
        assert len(won) == WRITERS, [w.err for w in done if w not in won]
    assert won, "every writer lost: some commit must land"
    # One commit each, none lost or overwritten: the winners saw versions 1..n, the lake is at n.
    assert sorted(w.version for w in won) == list(range(1, len(won) + 1))
    snapshot = lake.snapshot()
    assert snapshot.version == len(won)
    assert snapshot.rows == sum(len(files[t][1]) for t in snapshot.tickers)
    assert [c.operation for c in lake.history()].count("write") == len(won)
    assert set(snapshot.tickers) <= set(lake.listings())
    print(f"{backend}, {attempts} tries: {len(won)} of {WRITERS} writers landed")


def test_concurrent_corrections_are_each_applied_and_recorded_once(
    where: Settings, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    lake = Lake.from_settings(where)
    ingest_files(lake, [ticker_file(tmp_path, sample_wide, t)[0] for t in TICKERS[:3]])
    base, base_version = prices_of(lake), lake.snapshot().version
    # Six writers, two per ticker, each correcting its own four days of early 2021: all of
    # them rewrite the same 2021 file, so their commits truly conflict.
    days = base.loc[base["date"].dt.year == 2021, "date"].drop_duplicates().sort_values()
    fixes, commands = [], []
    for i in range(WRITERS):
        mine = base["date"].isin(days.iloc[i * 4 : i * 4 + 4]) & (base["ticker"] == TICKERS[i % 3])
        old = base[mine]
        new = old.assign(adj_close=(old["adj_close"] * 1.01 + i).round(4))
        path = tmp_path / f"fix-{i}.csv"
        new.to_csv(path, index=False, date_format="%Y-%m-%d")
        fixes.append(old.merge(new, on=KEY, suffixes=("_old", "_new")).assign(source=path.name))
        commands.append(["ingest", str(path)])
    done = run_together(tmp_path / "run", commands, env_of(where))

    for w in done:
        assert w.status == 0, w.err
        assert ": 0 new, 4 replaced, 0 unchanged;" in w.out, w.out
    versions = [w.version for w in done]
    assert sorted(versions) == list(range(base_version + 1, base_version + WRITERS + 1))
    expected = (
        pd.concat(fix.assign(version=v) for fix, v in zip(fixes, versions, strict=True))
        .sort_values(["version", *KEY])
        .reset_index(drop=True)
    )
    lake = Lake.from_settings(where)
    # Every correction is in the prices table, and nothing else changed.
    wanted = base.set_index(KEY)["adj_close"].copy()
    wanted.loc[expected.set_index(KEY).index] = expected["adj_close_new"].to_numpy()
    pd.testing.assert_series_equal(prices_of(lake).set_index(KEY)["adj_close"], wanted)
    # Exactly one audit record per replaced row: its version, source, old and new values.
    recorded = lake.corrections()
    columns = ["version", *KEY, "adj_close_old", "adj_close_new", "source"]
    got = recorded[columns].assign(date=pd.to_datetime(recorded["date"]))
    pd.testing.assert_frame_equal(got, expected[columns], check_dtype=False)
    for column in ("open", "high", "low", "close", "volume"):  # the files had no such column
        assert recorded[[f"{column}_old", f"{column}_new"]].isna().all().all()
    # ... and each writer's copy into the corrections table left none pending, none twice.
    table = lake.corrections_table.open()
    assert table is not None
    copied = lake.corrections_table.read(table, CORRECTIONS_SCHEMA, columns=["version", *KEY])
    copied_keys = copied.to_pandas().assign(date=lambda f: pd.to_datetime(f["date"]))
    pd.testing.assert_frame_equal(
        copied_keys.sort_values(["version", *KEY]).reset_index(drop=True),
        expected[["version", *KEY]],
        check_dtype=False,
    )


def test_a_writer_killed_mid_commit_leaves_a_whole_version(
    where: Settings, tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    tickers = list(sample_wide.columns[1:11])
    wide = sample_wide.loc[sample_wide["Date"] >= "2015-01-01", ["Date", *tickers]]

    def prices_file(i: int) -> tuple[Path, pd.DataFrame]:
        """Ten tickers' 2015-2022 closes, each write's values 0.1% off the previous one's."""
        scaled = wide.assign(**{t: (wide[t] * (1 + i / 1000)).round(6) for t in tickers})
        path = tmp_path / f"prices-{i}.csv"
        scaled.to_csv(path, index=False, date_format="%Y-%m-%d")
        rows = scaled.melt(id_vars="Date", var_name="ticker", value_name="adj_close")
        rows = rows.rename(columns={"Date": "date"}).dropna().sort_values(KEY)
        return path, rows[["ticker", "date", "adj_close"]].reset_index(drop=True)

    lake = Lake.from_settings(where)
    files = [prices_file(i) for i in range(7)]
    ingest_files(lake, [files[0][0]])
    states = [files[0][1]]

    def committed(version: int) -> bool:
        """Whether the prices table's log holds ``version``."""
        entry = lake.location.path(f"prices/_delta_log/{version:020d}.json")
        return lake.location.filesystem.get_file_info(entry).type == fs.FileType.File

    def data_files() -> set[str]:
        stored = lake.location.list_files("prices")
        return {p for p in stored if "/_delta_log/" not in p and "/_change_data/" not in p}

    commands = [["ingest", str(path)] for path, _ in files[1:]]
    with Launch(tmp_path / "run", commands, env_of(where)) as launch:
        # An unkilled writer replacing every row: when, after its start, it commits and exits.
        began, commit_time = launch.go(0), None
        while launch.running(0):
            if commit_time is None and committed(2):
                commit_time = time.monotonic() - began
            time.sleep(0.02)
        exit_time = time.monotonic() - began
        timed = launch.finish(0)
        assert timed.status == 0, timed.err
        assert commit_time is not None, "the commit was not seen before the writer exited"
        states.append(files[1][1])

        # When each writer gets its SIGKILL, given the seconds since its start, its version
        # and the data files before it: spread over the timed writer's run, and on seeing its
        # first data file, then its commit.
        kill_when: dict[str, Callable[[float, int, set[str]], bool]] = {
            "at 1/4 of the commit time": lambda t, v, old: t >= commit_time / 4,
            "at 1/2 of the commit time": lambda t, v, old: t >= commit_time / 2,
            "at its first data file": lambda t, v, old: bool(data_files() - old),
            "at the commit time": lambda t, v, old: t >= commit_time,
            "once its commit is in the log": lambda t, v, old: committed(v),
        }
        outcomes = []
        for writer, (when, due) in enumerate(kill_when.items(), start=1):
            before, files_before = lake.snapshot().version, data_files()
            path, after = files[writer + 1]
            began = launch.go(writer)
            while launch.running(writer) and not due(
                time.monotonic() - began, before + 1, files_before
            ):
                time.sleep(0.01)
            launch.kill(writer)
            killed = launch.finish(writer)
            assert killed.status in (0, -signal.SIGKILL), killed.err
            # A reader sees the version before, row for row, or the whole write: never a part.
            reader = Lake.from_settings(where)
            version = reader.snapshot().version
            assert version in (before, before + 1)
            expected = states[-1] if version == before else after
            pd.testing.assert_frame_equal(prices_of(reader), expected)
            ended = "killed" if killed.status else "had exited"
            if version == before:
                orphans = len(data_files() - files_before)
                outcomes.append(f"{when}: {ended}, nothing committed ({orphans} orphan files)")
            else:
                outcomes.append(f"{when}: {ended}, committed")
            # The next writer succeeds, and makes the write if the killed one had not.
            report = ingest_files(reader, [path])
            assert report.write.version == (before + 1 if version == before else None)
            pd.testing.assert_frame_equal(prices_of(reader), after)
            states.append(after)
    summary = "; ".join(outcomes)
    print(f"commit at {commit_time:.2f} s, exit at {exit_time:.2f} s. SIGKILL {summary}")
    assert "killed, nothing committed" in summary, summary  # at 1/4 of the time, if not later
    assert "once its commit is in the log: killed, committed" in summary, summary

    def assert_audit_whole(recorded: pd.DataFrame) -> None:
        """Every write replaced every row, once: one audit record per row and version, also
        for a writer killed between its commit and its copy into the corrections table."""
        assert sorted(recorded["version"].unique()) == list(range(2, len(states) + 1))
        for version in recorded["version"].unique():
            old, new = states[version - 2], states[version - 1]
            rows = recorded[recorded["version"] == version]
            rows = rows.assign(date=pd.to_datetime(rows["date"])).sort_values(KEY)
            pd.testing.assert_frame_equal(
                rows[[*KEY, "adj_close_old", "adj_close_new"]].reset_index(drop=True),
                old.merge(new, on=KEY, suffixes=("_old", "_new")),
                check_dtype=False,
            )

    assert_audit_whole(lake.corrections())
    final = lake.snapshot()
    deleted = lake.vacuum(retention_hours=0)
    assert any(p.startswith("prices/") for p in deleted)  # the replaced versions' files
    reader = Lake.from_settings(where)
    # Left: the latest version's data files, and none of the killed writers' orphans.
    table = reader.prices.open()
    assert table is not None
    assert data_files() == {
        u.removeprefix("s3://").removeprefix("file://") for u in table.file_uris()
    }
    vacuumed = reader.snapshot()  # vacuum logs commits of its own: a later version, same data
    assert (vacuumed.tickers, vacuumed.files) == (final.tickers, final.files)
    pd.testing.assert_frame_equal(prices_of(reader), states[-1])
    assert_audit_whole(reader.corrections())
    assert ingest_files(reader, [files[0][0]]).write.version == vacuumed.version + 1
