"""Start a replica: first end what a killed predecessor left behind, then become ``bentoml serve``.

``bentoml serve`` is an arbiter process with a worker child that holds the listening socket.
When only the arbiter dies (``kill -9`` of the pid supervisord shows), the worker lives on,
orphaned, still bound to the port: the restarted replica could not bind it, and nothing would
stop that orphan. supervisord therefore starts each replica through this module::

    python -m deploy.replica BENTOML_HOME -- bentoml serve ... --port P

It kills the processes whose ``BENTOML_HOME`` is this replica's own (each replica program has
its own), then ``exec``s the command, keeping supervisord's pid. ``stack down`` uses
:func:`reap` the same way for the whole stack folder.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import psutil


def orphans(home_prefix: Path) -> list[psutil.Process]:
    """Processes (other than this one) whose ``BENTOML_HOME`` lies under ``home_prefix``."""
    found = []
    prefix = str(home_prefix)
    for process in psutil.process_iter(["pid"]):
        if process.pid == os.getpid():
            continue
        try:
            home = process.environ().get("BENTOML_HOME", "")
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if home == prefix or home.startswith(prefix + os.sep):
            found.append(process)
    return found


def reap(home_prefix: Path, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process of :func:`orphans` and wait for them; their pids."""
    doomed = orphans(home_prefix)
    for process in doomed:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(doomed, timeout=timeout)
    return [process.pid for process in doomed]


def main(argv: list[str]) -> None:
    """``BENTOML_HOME -- COMMAND...``: reap that home's orphans, then exec the command."""
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m deploy.replica BENTOML_HOME -- COMMAND [ARG...]")
    killed = reap(Path(argv[0]))
    if killed:
        print(f"deploy.replica: killed orphans of a previous run: {killed}", flush=True)
    os.execv(argv[2], argv[2:])  # noqa: S606 - the supervisor's own program line, by design


if __name__ == "__main__":
    main(sys.argv[1:])
