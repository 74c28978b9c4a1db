"""``finsimples stack up | down | status | logs``: the production topology as local processes.

Redis, an MLflow server (for a sqlite registry), N replicas of the bento, NGINX in front and,
when installed, Prometheus with Alertmanager and the NGINX, Redis and node exporters
(``deploy.observability``), all under one supervisord whose config is generated into
``<state_dir>/stack/`` (see ``deploy.layout``). ``up`` is idempotent and waits until every
replica's ``/readyz`` and NGINX answer; it checks binaries, ports and the champion first and
starts nothing when one is wrong. ``down`` stops everything and checks that every port is free.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.layout import Slot, StackLayout
from deploy.nginx import NginxLayout, render_nginx_conf
from deploy.observability import (
    installed_programs,
    monitoring_ports,
    monitoring_programs,
    render_stack_alertmanager_conf,
)
from deploy.preflight import (
    StackError,
    port_owner,
    prepare_model,
    require_binaries,
    require_champion,
    require_free_ports,
)
from deploy.programs import (
    NGINX,
    StackEndpoints,
    endpoints,
    find_binary,
    operations_programs,
    replica_program,
    runs_mlflow,
    service_programs,
)
from deploy.replica import reap
from deploy.supervisor import ProcessInfo, Program, Supervisor, SupervisorError
from finsimples.settings import Settings
from monitoring.prometheus_conf import (
    ALERTMANAGER,
    PROMETHEUS,
    RULES_DIR,
    TARGETS_FILE,
    render_prometheus_conf,
)
from monitoring.rules import render_rules


@dataclass(frozen=True)
class Stack:
    """The local stack of one settings object: its folder, supervisor and URLs."""

    settings: Settings
    layout: StackLayout
    supervisor: Supervisor
    monitoring: frozenset[str]  # the monitoring programs it runs (deploy.observability)

    @classmethod
    def of(cls, settings: Settings) -> Stack:
        """The stack the settings describe (running or not)."""
        layout = StackLayout.of(settings)
        return cls(settings, layout, Supervisor(layout.root), installed_programs())

    @property
    def with_prometheus(self) -> bool:
        """Whether the stack runs Prometheus (it is installed)."""
        return PROMETHEUS in self.monitoring

    @property
    def urls(self) -> StackEndpoints:
        """Where the stack serves."""
        return endpoints(self.settings, self.with_prometheus, ALERTMANAGER in self.monitoring)

    def running(self) -> bool:
        """Whether this stack's supervisord answers."""
        return self.supervisor.alive()

    def replica_url(self, slot: Slot) -> str:
        """A replica's own URL (behind NGINX's back)."""
        return f"http://{self.settings.stack.host}:{slot.port}"

    # --- configuration ---------------------------------------------------------------------
    def service_programs(self, workdir: Path) -> list[Program]:
        """The programs other than the replicas, as these settings define them."""
        services = service_programs(self.settings, self.layout, workdir)
        services += monitoring_programs(self.settings, self.layout, self.monitoring)
        return services + operations_programs(self.settings, self.layout, workdir)

    def programs(self, slots: list[Slot], workdir: Path) -> list[Program]:
        """Every program for ``slots``: the services ``stack up`` recorded (else the settings'),
        then one per replica.

        The recorded services win, so a deploy run with other settings (a shell pointed at the
        stack's MLflow server, the controller's environment) neither drops nor restarts them.
        """
        services = self.layout.read_services()
        if services is None:
            services = self.service_programs(workdir)
        replicas = [replica_program(self.settings, self.layout, s, workdir) for s in slots]
        return services + replicas

    def write_nginx_conf(self, slots: list[Slot], generation: int) -> None:
        """Render NGINX's config for ``slots`` (atomically)."""
        stack = self.settings.stack
        folder = self.layout.nginx_conf.parent
        for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (folder / "tmp" / temp).mkdir(parents=True, exist_ok=True)
        layout = NginxLayout(
            listen=f"{stack.host}:{stack.nginx_port}",
            status_listen=f"127.0.0.1:{stack.nginx_status_port}",
            prefix=str(folder),
            access_log=str(self.layout.access_log),
            error_log=str(self.layout.logs / "nginx-error.log"),
            generation=generation,
        )
        upstreams = [f"{stack.host}:{slot.port}" for slot in slots]
        text = render_nginx_conf(
            stack,
            upstreams,
            layout,
            latency_budget_seconds=self.settings.latency_budget_seconds,
            max_body_bytes=self.settings.max_request_body_bytes,
        )
        staged = self.layout.nginx_conf.with_suffix(".tmp")
        staged.write_text(text)
        staged.replace(self.layout.nginx_conf)

    def write_prometheus_targets(self, slots: list[Slot]) -> None:
        """The replicas Prometheus scrapes (file_sd; it re-reads the file by itself)."""
        if not self.with_prometheus:
            return
        folder = self.layout.root / "prometheus"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        targets = folder / TARGETS_FILE
        groups = [
            {"targets": [f"{self.settings.stack.host}:{s.port}"], "labels": {"replica": s.name}}
            for s in slots
        ]
        staged = targets.with_suffix(".tmp")
        staged.write_text(json.dumps(groups, indent=1))
        staged.replace(targets)

    def write_monitoring_conf(self) -> None:
        """Prometheus's config and rules, Alertmanager's config, all from the current settings.

        The rules come from ``monitoring.rules`` with this process's settings (not the committed
        ``monitoring/rules/``), so ``FINSIMPLES_ALERTS__*`` and ``FINSIMPLES_SLO__*`` apply.
        """
        if not self.with_prometheus:
            return
        folder = self.layout.root / "prometheus"
        rules = folder / RULES_DIR
        rules.mkdir(parents=True, exist_ok=True)
        rendered = render_rules(self.settings)
        for old in rules.glob("*.yml"):
            if old.name not in rendered:
                old.unlink()
        for name, text in rendered.items():
            (rules / name).write_text(text)
        conf = render_prometheus_conf(self.settings.stack, self.monitoring)
        (folder / "prometheus.yml").write_text(conf)
        if ALERTMANAGER in self.monitoring:
            alertmanager = self.layout.root / "alertmanager"
            (alertmanager / "data").mkdir(parents=True, exist_ok=True)
            text = render_stack_alertmanager_conf(self.settings)
            (alertmanager / "alertmanager.yml").write_text(text)

    def nginx_generation(self) -> int | None:
        """The generation of the config NGINX's workers serve now (None: NGINX not answering)."""
        try:
            status = f"http://127.0.0.1:{self.settings.stack.nginx_status_port}/generation"
            answer = httpx.get(status, timeout=1.0)
            return int(answer.text) if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def reload_nginx(self, slots: list[Slot], generation: int, timeout: float = 10.0) -> None:
        """Point NGINX at ``slots`` with a graceful reload; return once its workers use it.

        Raises:
            StackError: the new config is invalid (``nginx -t``; the old one keeps serving) or
                NGINX did not take it within ``timeout`` seconds.
        """
        self.write_nginx_conf(slots, generation)
        self.check_nginx_conf()
        self.supervisor.signal(NGINX, "HUP")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nginx_generation() == generation:
                return
            time.sleep(0.05)
        raise StackError(f"NGINX did not load config generation {generation} in {timeout:.0f} s")

    def check_nginx_conf(self) -> None:
        """``nginx -t`` on the generated config; raise :class:`StackError` with its output."""
        import subprocess

        folder = self.layout.nginx_conf.parent
        command = [find_binary("nginx") or "nginx", "-t", "-q", "-p", str(folder)]
        command += ["-c", str(self.layout.nginx_conf), "-e", str(self.layout.logs / "nginx-t.log")]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - nginx -t, argv list
        if done.returncode != 0:
            raise StackError(f"nginx -t rejected {self.layout.nginx_conf}: {done.stderr.strip()}")

    # --- health ----------------------------------------------------------------------------
    def replica_ready(self, slot: Slot) -> bool:
        """Whether a replica's ``/readyz`` answers 200."""
        try:
            return httpx.get(self.replica_url(slot) + "/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, slots: list[Slot], timeout: float | None = None) -> None:
        """Wait for every replica in ``slots`` to be ready.

        Raises:
            StackError: a replica's program failed (FATAL) or was not ready in time; with the
                end of its log.
        """
        timeout = timeout or self.settings.stack.ready_timeout_seconds
        deadline = time.monotonic() + timeout
        waiting = list(slots)
        while waiting:
            infos = self.supervisor.processes()
            for slot in list(waiting):
                info = infos.get(slot.program)
                if info is not None and info.state == "FATAL":
                    raise StackError(f"{slot.program} failed to start:\n{self.log_tail(slot)}")
                if self.replica_ready(slot):
                    waiting.remove(slot)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.program for s in waiting)
                tail = self.log_tail(waiting[0])
                raise StackError(f"not ready after {timeout:.0f} s: {names}\n{tail}")
            if waiting:
                time.sleep(0.25)

    def wait_services(self, timeout: float = 30.0) -> None:
        """Wait until every program supervisord runs is RUNNING.

        Raises:
            StackError: one failed (FATAL) or is still not running after ``timeout``; with the
                end of its log.
        """
        deadline = time.monotonic() + timeout
        while True:
            infos = self.supervisor.processes()
            down = [info for info in infos.values() if not info.running]
            failed = [info for info in down if info.state in ("FATAL", "EXITED")]
            if not down:
                return
            if failed or time.monotonic() > deadline:
                info = (failed or down)[0]
                raise StackError(
                    f"{info.name} is {info.state} ({info.description}):\n"
                    + self.program_log_tail(info.name)
                )
            time.sleep(0.25)

    def wait_nginx(self, timeout: float = 20.0) -> None:
        """Wait until a request through NGINX reaches a ready replica."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.urls.api + "/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise StackError(f"NGINX ({self.urls.api}) did not answer /readyz in {timeout:.0f} s")

    def log_tail(self, slot: Slot, lines: int = 25) -> str:
        """The end of a replica program's log."""
        return self.program_log_tail(slot.program, lines)

    def program_log_tail(self, program: str, lines: int = 25) -> str:
        """The end of a program's log."""
        log = self.layout.logs / f"{program}.log"
        if not log.exists():
            return f"(no log at {log})"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    # --- up / down -------------------------------------------------------------------------
    def up(self, workdir: Path) -> list[Slot]:
        """Start the stack (or make sure the running one is whole) and wait until it serves.

        Args:
            workdir: The programs' working directory (where a ``.env`` is read).

        Returns:
            The slots serving.

        Raises:
            StackError: a binary missing, a port taken, no champion, a failed start.
        """
        if self.running():
            for name, info in self.supervisor.processes().items():
                if not info.running:
                    self.supervisor.start(name)
            slots = self.layout.read_slots()
            self.wait_ready(slots)
            self.wait_services()
            self.wait_nginx()
            return slots
        require_binaries(["redis-server", "nginx"])
        version = require_champion(self.settings)
        stack = self.settings.stack
        ports = list(stack.replica_ports)[: stack.replicas]
        probe = [Slot(f"replica-{i + 1}", "", port, "", version) for i, port in enumerate(ports)]
        require_free_ports(self.ports(probe))
        model = prepare_model(self.settings, self.layout, version)
        slots = [
            Slot(s.name, f"{s.name}-p{s.port}", s.port, model.tag, model.version) for s in probe
        ]
        self.layout.write_slots(slots)
        self.write_nginx_conf(slots, generation=1)
        self.write_prometheus_targets(slots)
        self.write_monitoring_conf()
        services = self.service_programs(workdir)
        self.layout.write_services(services)
        self.supervisor.write_config(self.programs(slots, workdir))
        try:
            self.supervisor.start_daemon()
        except SupervisorError as exc:
            raise StackError(str(exc)) from exc
        try:
            self.wait_ready(slots)
            self.wait_services()
            self.wait_nginx()
        except StackError:
            self.down()
            raise
        return slots

    def ports(self, slots: list[Slot]) -> dict[str, int]:
        """Every port the stack binds, by use."""
        stack = self.settings.stack
        ports = {"NGINX": stack.nginx_port, "NGINX stub_status": stack.nginx_status_port}
        ports["Redis"] = stack.redis_port
        if runs_mlflow(self.settings):
            ports["MLflow"] = stack.mlflow_port
        ports |= monitoring_ports(stack, self.monitoring)
        if stack.scheduler:
            ports["Prefect"] = stack.prefect_port
        if stack.controller:
            ports["deploy controller"] = stack.controller_port
        return ports | {slot.name: slot.port for slot in slots}

    def down(self, timeout: float = 60.0) -> list[str]:
        """Stop every program and supervisord; the ports still taken afterwards (normally []).

        Raises:
            StackError: no stack is running.
        """
        if not self.running():
            raise StackError(f"no stack is running (nothing answers on {self.supervisor.socket})")
        slots = self.layout.read_slots()
        try:
            self.supervisor.shutdown(timeout)
        except SupervisorError as exc:
            raise StackError(str(exc)) from exc
        reap(self.layout.root / "replicas")  # workers orphaned by a killed replica, if any
        deadline = time.monotonic() + 10
        leftover = self.ports(slots)
        while time.monotonic() < deadline:
            taken = {use: port for use, port in leftover.items() if port_owner(port)}
            if not taken:
                return []
            time.sleep(0.2)
        return [f"{use} {port}: {port_owner(port)}" for use, port in leftover.items()]

    def processes(self) -> dict[str, ProcessInfo]:
        """supervisord's view of every program."""
        return self.supervisor.processes()
