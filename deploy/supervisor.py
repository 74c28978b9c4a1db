"""The stack's process supervisor: supervisord, run from a config generated into the stack folder.

supervisord starts every program, restarts one that dies (a crashed replica comes back), stops
each with its whole process group (``bentoml serve`` has worker children) and answers an XML-RPC
API on a unix socket, which ``stack status`` and the rolling deploy use to add, stop and remove
programs while the others run. No hand-written Popen or pid files.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from finsimples.templating import render


@dataclass(frozen=True)
class Program:
    """One long-running process of the stack.

    Attributes:
        name: supervisord's program name (letters, digits, ``-``).
        command: The command line (an absolute executable path first).
        directory: Working directory.
        log: File receiving its stdout and stderr.
        env: Variables added to supervisord's own environment.
        port: The TCP port it serves on (None: none), checked before start.
        priority: Lower starts first and stops last.
        startsecs: Seconds it must stay up to count as started.
        stopwaitsecs: Seconds between SIGTERM and SIGKILL when stopping.
        stopsignal: The signal that asks it to stop.
    """

    name: str
    command: Sequence[str]
    directory: Path
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    priority: int = 500
    startsecs: int = 1
    stopwaitsecs: int = 15
    stopsignal: str = "TERM"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``from_dict`` reads them back)."""
        return {
            **{k: getattr(self, k) for k in ("name", "port", "priority", "startsecs")},
            **{k: getattr(self, k) for k in ("stopwaitsecs", "stopsignal")},
            "command": list(self.command),
            "directory": str(self.directory),
            "log": str(self.log),
            "env": dict(self.env),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Program:
        """The program ``as_dict`` wrote."""
        return cls(**{**raw, "directory": Path(raw["directory"]), "log": Path(raw["log"])})


def _escape(text: str) -> str:
    """A value for supervisord's config: ``%`` starts an expansion there, so it is doubled."""
    return text.replace("%", "%%")


def _env_value(key: str, value: str) -> str:
    """A value for supervisord's ``environment=``, quoted the only way its parser reads back.

    supervisord splits ``KEY="v",KEY2='v2'`` with a non-POSIX shlex and strips the quotes: no
    escapes exist, so a value is wrapped in the quote character it does not hold.

    Raises:
        ValueError: the value holds both quote characters, or starts or ends with one.
    """
    quote = '"' if '"' not in value else "'"
    edges = {value[:1], value[-1:]} - {""}
    if quote in value or edges & {"'", '"'}:
        raise ValueError(f"{key}: its value cannot be written in supervisord's environment=")
    return f"{quote}{_escape(value)}{quote}"


def render_program(program: Program) -> str:
    """The ``[program:NAME]`` section of one program (``supervisord_program.conf.j2``)."""
    env = ",".join(f"{key}={_env_value(key, value)}" for key, value in sorted(program.env.items()))
    return render(
        "deploy",
        "supervisord_program.conf.j2",
        name=program.name,
        command=_escape(shlex.join(program.command)),
        directory=_escape(str(program.directory)),
        priority=program.priority,
        startsecs=program.startsecs,
        stopsignal=program.stopsignal,
        stopwaitsecs=program.stopwaitsecs,
        log=_escape(str(program.log)),
        environment=env,
    )


def render_supervisord_conf(folder: Path, programs: Iterable[Program]) -> str:
    """The whole ``supervisord.conf``: its socket, pid and log in ``folder``, then the programs."""
    return render(
        "deploy",
        "supervisord.conf.j2",
        socket=_escape(str(folder / "supervisor.sock")),
        logfile=_escape(str(folder / "logs" / "supervisord.log")),
        pidfile=_escape(str(folder / "supervisord.pid")),
        childlogdir=_escape(str(folder / "logs")),
        sections=[render_program(p) for p in programs],
    )


class SupervisorError(RuntimeError):
    """supervisord could not be started or reached, or refused a request."""


@dataclass(frozen=True)
class ProcessInfo:
    """What supervisord says of one program."""

    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int
    started: float  # UNIX time; 0 when not running
    description: str

    @property
    def running(self) -> bool:
        """Whether the process is up."""
        return self.state == "RUNNING"


class Supervisor:
    """A client of the stack's supervisord (XML-RPC over its unix socket).

    Args:
        folder: The stack folder holding ``supervisord.conf`` and ``supervisor.sock``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.conf = folder / "supervisord.conf"
        self.socket = folder / "supervisor.sock"

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def alive(self) -> bool:
        """Whether supervisord answers on its socket."""
        if not self.socket.exists():
            return False
        try:
            return bool(self._proxy().getState()["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Error):
            return False

    def write_config(self, programs: Iterable[Program]) -> None:
        """Write ``supervisord.conf`` (atomically) for ``programs``; create their folders."""
        programs = list(programs)
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        for program in programs:
            program.directory.mkdir(parents=True, exist_ok=True)
            program.log.parent.mkdir(parents=True, exist_ok=True)
        staged = self.conf.with_suffix(".tmp")
        staged.write_text(render_supervisord_conf(self.folder, programs))
        staged.replace(self.conf)

    def start_daemon(self, timeout: float = 15.0) -> None:
        """Start supervisord on the written config; it starts every program by priority.

        Raises:
            SupervisorError: it exited or did not answer within ``timeout`` seconds.
        """
        daemon = str(Path(sys.executable).with_name("supervisord"))
        done = subprocess.run(  # noqa: S603 - the venv's supervisord on our config, argv list
            [daemon, "-c", str(self.conf)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SupervisorError(f"supervisord did not start: {done.stderr or done.stdout}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive():
                return
            time.sleep(0.1)
        raise SupervisorError(f"supervisord did not answer on {self.socket} in {timeout:.0f} s")

    def processes(self) -> dict[str, ProcessInfo]:
        """Every program's state, by name."""
        infos = cast(list[dict[str, Any]], self._proxy().getAllProcessInfo())
        return {
            info["name"]: ProcessInfo(
                info["name"], info["statename"], info["pid"], info["start"], info["description"]
            )
            for info in infos
        }

    def start(self, name: str) -> None:
        """Start ``name`` if it is not running (does not wait for it to be ready)."""
        try:
            self._proxy().startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise SupervisorError(f"start {name}: {fault.faultString}") from fault

    def stop(self, name: str) -> None:
        """Stop ``name`` and its process group; return once it is stopped (not restarted)."""
        try:
            self._proxy().stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise SupervisorError(f"stop {name}: {fault.faultString}") from fault

    def apply_config(self, programs: Iterable[Program]) -> tuple[list[str], list[str]]:
        """Rewrite the config and apply it: new programs start, removed ones stop and go.

        Programs whose definition did not change keep running untouched.

        Returns:
            The names added and the names removed.
        """
        self.write_config(programs)
        proxy = self._proxy()
        added, changed, removed = proxy.reloadConfig()[0]
        for name in [*removed, *changed]:
            try:
                proxy.stopProcessGroup(name, True)
            except xmlrpc.client.Fault as fault:
                if "NOT_RUNNING" not in fault.faultString:
                    raise
            proxy.removeProcessGroup(name)
        for name in [*changed, *added]:
            proxy.addProcessGroup(name)
        return [*changed, *added], [*removed, *changed]

    def signal(self, name: str, signal: str) -> None:
        """Send ``signal`` (e.g. ``HUP``) to a program's process."""
        self._proxy().signalProcess(name, signal)

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop every program (each with its process group), then supervisord itself."""
        pid_file = self.folder / "supervisord.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        try:
            self._proxy().shutdown()
        except (OSError, xmlrpc.client.Error) as exc:
            raise SupervisorError(f"supervisord did not accept the shutdown: {exc}") from exc
        deadline = time.monotonic() + timeout
        while pid is not None and _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid is not None and _pid_alive(pid):
            raise SupervisorError(f"supervisord (pid {pid}) still runs after {timeout:.0f} s")


def _pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
