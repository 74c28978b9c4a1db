"""What must hold before the stack starts anything: binaries, free ports, a champion, a model.

Each check fails with a message that says what to do: the apt command for a missing binary,
the process holding a port, the command that trains a champion.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deploy.layout import StackLayout
from deploy.programs import APT_PACKAGES, ROOT, find_binary
from finsimples.redact import mask_secrets, mask_url
from finsimples.settings import Settings


class StackError(RuntimeError):
    """The stack cannot start, stop or deploy; the message says why and what to do."""


def missing_binaries(names: Iterable[str]) -> list[str]:
    """The system binaries among ``names`` that are not installed."""
    return [name for name in names if find_binary(name) is None]


def require_binaries(names: Iterable[str]) -> None:
    """Raise a :class:`StackError` naming the apt command when a binary is missing."""
    missing = missing_binaries(names)
    if missing:
        packages = " ".join(APT_PACKAGES.get(name, name) for name in missing)
        raise StackError(
            f"missing: {', '.join(missing)}. Install with `sudo apt-get install -y {packages}` "
            "(or `make system-deps`)"
        )


def port_owner(port: int) -> str | None:
    """Who listens on TCP ``port``: ``pid 123 (redis-server ...)``; None when the port is free."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return None
        except OSError:
            pass
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid is None:
                    return "a process of another user"
                process = psutil.Process(conn.pid)
                command = " ".join(process.cmdline()[:4]) or process.name()
                return f"pid {conn.pid} ({command})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return "an unknown process"


def require_free_ports(ports: dict[str, int]) -> None:
    """Raise a :class:`StackError` naming every taken port, its use and who holds it."""
    taken = []
    for use, port in ports.items():
        owner = port_owner(port)
        if owner is not None:
            taken.append(f"port {port} ({use}) is taken by {owner}")
    if taken:
        raise StackError(
            "; ".join(taken) + ". Stop that process or choose other ports "
            "(FINSIMPLES_STACK__NGINX_PORT, FINSIMPLES_STACK__REPLICA_BASE_PORT, ...)"
        )


def require_champion(settings: Settings, version: str | None = None) -> str:
    """The registry version to serve: ``version`` or ``@champion``'s.

    Raises:
        StackError: no champion (with the command that trains one), or no such version.
    """
    from jobs.common import open_registry  # MLflow: imported when needed

    try:
        registry = open_registry(settings)
        found = registry.get(version) if version else registry.version_by_alias("champion")
    except Exception as exc:  # the registry is unreachable or the version unknown
        uri = settings.resolved_mlflow_tracking_uri
        raise StackError(
            f"the MLflow model registry ({mask_url(uri)}): {mask_secrets(str(exc), uri)}"
        ) from exc
    if found is None:
        raise StackError(
            f"model {settings.model_name!r} has no @champion: train one with "
            "`finsimples train --full` (it promotes the first model that passes the gate)"
        )
    return str(found.version)


@dataclass(frozen=True)
class PreparedModel:
    """A registry version in the stack's model store, with its fallback snapshot."""

    tag: str
    version: str
    snapshot: Path


def prepare_model(settings: Settings, layout: StackLayout, version: str) -> PreparedModel:
    """Import a registry version into the stack's shared model store and write its snapshot.

    Runs ``python -m bentos.package --prepare`` with the stack's BENTOML_HOME (BentoML fixes
    its store location when it is imported, so a child process is the way to choose it).

    Raises:
        StackError: the import failed (registry or lake unreachable, ...), with its output.
    """
    snapshot = layout.snapshot(version)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTOML_")}
    env |= {"BENTOML_HOME": str(layout.model_store), "BENTOML_DO_NOT_TRACK": "true"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "bentos.package", "--prepare", "--json"]
    command += ["--version", version, "--snapshot", str(snapshot)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603 - our own module, argv list
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
        raise StackError(f"importing model version {version} failed:\n" + "\n".join(tail))
    prepared = json.loads(done.stdout.strip().splitlines()[-1])
    return PreparedModel(prepared["model_tag"], prepared["model_version"], snapshot)
