"""Start real server processes on 127.0.0.1 for tests, and stop them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest


def required_tool(name: str, package: str) -> str:
    """The path of the program ``name``; the test fails, naming its Debian package, without it.

    A missing tool is a broken machine, not a reason to pass: ``make test`` runs
    ``deploy/install-system-deps.sh``, which installs every program the tests call.
    """
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run deploy/install-system-deps.sh (make system-deps), "
            f"or apt-get install {package}",
            pytrace=False,
        )
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``ready`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} was not ready after {timeout:.0f} s")


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ServerExitedError(RuntimeError):
    """The server process ended before it accepted connections."""


@contextmanager
def server_process(
    command: Sequence[str],
    port: int,
    log: Path,
    *,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; yields once ``port`` accepts connections.

    Args:
        command: The server's command line.
        port: The port it listens on.
        log: File receiving its stdout and stderr.
        timeout: Seconds to wait for the port.
        env: The process environment (default: this process's).

    Raises:
        TimeoutError: The port did not open in time.
        ServerExitedError: The process ended first (at once, not after the timeout).
    """

    def ready() -> bool:
        if process.poll() is not None:
            raise ServerExitedError(f"{command[0]} exited with status {process.returncode}")
        return port_open(port)

    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
        )
        try:
            wait_until(ready, timeout, " ".join(command))
            yield process
        except (TimeoutError, ServerExitedError) as exc:
            tail = log.read_text(errors="replace")[-2000:]
            raise type(exc)(f"{exc}; log:\n{tail}") from exc
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate ``process``; kill it if it is still running after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def nginx_in_front(upstreams: Sequence[str], root: Path, budget: float = 3.0) -> Iterator[str]:
    """The real nginx with the stack's generated config over ``upstreams`` (``host:port``).

    Its files live under ``root`` (created): ``nginx.conf``, ``access.log`` (the stack's JSON
    lines) and ``error.log``. Yields its URL.
    """
    from config.stack import StackConfig
    from deploy.nginx import NginxLayout, render_nginx_conf
    from deploy.programs import find_binary

    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / "tmp" / temp).mkdir(parents=True)
    port = free_port()
    layout = NginxLayout(
        listen=f"127.0.0.1:{port}",
        status_listen=f"127.0.0.1:{free_port()}",
        prefix=str(root),
        access_log=str(root / "access.log"),
        error_log=str(root / "error.log"),
    )
    conf = root / "nginx.conf"
    conf.write_text(
        render_nginx_conf(StackConfig(), list(upstreams), layout, latency_budget_seconds=budget)
    )
    command = [find_binary("nginx") or "nginx", "-p", str(root), "-c", str(conf)]
    command += ["-e", str(root / "error.log")]
    with server_process(command, port, root / "nginx.out", timeout=10):
        yield f"http://127.0.0.1:{port}"
