"""The API benchmark's processes: start and stop servers, sample their memory, pin CPUs."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.servers import port_open, stop_process, wait_until

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 180.0
SERVER_CPUS: set[int] | None = None  # --pin: the servers' CPUs (the load generator gets the rest)


def environment(**extra: str) -> dict[str, str]:
    """This environment without FINSIMPLES_/BENTOML_/MLFLOW_ variables, plus ``extra``."""
    prefixes = ("FINSIMPLES_", "BENTOML_", "PROMETHEUS_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env |= {
        "BENTOML_DO_NOT_TRACK": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONPATH": str(ROOT),
        # The venv's scripts first: `mlflow models serve` runs `uvicorn` from PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    }
    return env | extra


def _stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` and every process it started; kill what is left after 10 s."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    stop_process(process)
    for child in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(family, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


@contextlib.contextmanager
def server(
    command: Sequence[str], port: int, log: Path, env: Mapping[str, str], cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; yields once ``port`` accepts connections."""
    if SERVER_CPUS is not None:  # taskset execs the command: same pid, same process tree
        command = ["taskset", "-c", ",".join(map(str, sorted(SERVER_CPUS))), *command]
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd
        )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with status {process.returncode}")
            return port_open(port)

        try:
            wait_until(ready, START_TIMEOUT, " ".join(command))
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}; log:\n{log.read_text(errors='replace')[-3000:]}") from exc
        yield process
    finally:
        _stop_tree(process)


def wait_http_ok(url: str, log: Path) -> None:
    """Wait until ``url`` answers 200 (the app is up, not only the port)."""

    def ok() -> bool:
        try:
            return httpx.get(url, timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ok, START_TIMEOUT, url)
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}; log:\n{log.read_text(errors='replace')[-3000:]}") from exc


@dataclass(frozen=True)
class ProcessMemory:
    """One process of a server's tree: what it runs and its memory."""

    what: str
    rss: int
    pss: int  # shared pages split between the processes sharing them
    uss: int  # pages no other process shares


@dataclass
class TreeMemory:
    """Summed RSS of a process tree: once ready, the peak (sampled in a thread), the end."""

    pid: int
    ready_rss: int = 0
    peak_rss: int = 0
    end: list[ProcessMemory] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _family(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def sample(self) -> int:
        """The tree's summed RSS now (and update the peak)."""
        total = 0
        for process in self._family():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        return total

    def detail(self) -> list[ProcessMemory]:
        """Each process's RSS, PSS and USS now."""
        found = []
        for process in self._family():
            with contextlib.suppress(psutil.NoSuchProcess):
                info = process.memory_full_info()
                args = process.cmdline()
                what = " ".join(Path(args[0]).name if i == 0 else a for i, a in enumerate(args))
                found.append(ProcessMemory(what[:60], info.rss, info.pss, info.uss))
        return found

    @contextlib.contextmanager
    def sampling(self, every: float = 0.25) -> Iterator[TreeMemory]:
        """Sample every ``every`` seconds until the block ends, then take :meth:`detail`."""

        def loop() -> None:
            while not self._stop.wait(every):
                self.sample()

        self.ready_rss = self.sample()
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.sample()
            self.end = self.detail()


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def pin(server_cpus: set[int]) -> str:
    """Servers on ``server_cpus`` from now on, this process (every thread) on the other CPUs."""
    global SERVER_CPUS
    mine = set(range(os.cpu_count() or 1)) - server_cpus
    if not mine or not shutil.which("taskset"):
        raise SystemExit("--pin needs 2 CPUs or more and taskset")
    SERVER_CPUS = server_cpus
    for thread in psutil.Process().threads():
        os.sched_setaffinity(thread.id, mine)
    return f"servers pinned to CPU {sorted(server_cpus)}, load generator to CPU {sorted(mine)}"
