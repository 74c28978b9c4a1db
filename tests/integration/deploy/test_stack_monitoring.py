"""The stack's monitoring configs read back by the real tools: promtool, amtool, supervisord."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from supervisor.options import ServerOptions

from config.monitoring import AlertConfig
from config.stack import StackConfig
from deploy.layout import Slot
from deploy.observability import installed_programs
from deploy.stack import Stack
from deploy.supervisor import render_supervisord_conf
from finsimples.settings import Settings
from monitoring.prometheus_conf import (
    ALERTMANAGER,
    EVERY_PROGRAM,
    NGINX_EXPORTER,
    NODE_EXPORTER,
    PROMETHEUS,
    REDIS_EXPORTER,
    render_prometheus_conf,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _slots() -> list[Slot]:
    return [Slot(f"replica-{i}", f"replica-{i}-p{3000 + i}", 3000 + i, "m:v1", "1") for i in (1, 2)]


def _stack(tmp_path: Path, programs: frozenset[str], **settings: object) -> Stack:
    stack = Stack.of(Settings(state_dir=tmp_path, **settings))  # type: ignore[arg-type]
    stack = Stack(stack.settings, stack.layout, stack.supervisor, programs)
    stack.write_prometheus_targets(_slots())
    stack.write_monitoring_conf()
    return stack


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed (make system-deps)"
    return found


def test_every_monitoring_program_is_installed_here() -> None:
    # make system-deps installs them; the e2e alert test needs every one.
    assert installed_programs() == EVERY_PROGRAM


def test_the_stack_prometheus_conf_passes_promtool(tmp_path: Path) -> None:
    stack = _stack(tmp_path, EVERY_PROGRAM)
    folder = stack.layout.root / "prometheus"
    done = subprocess.run(
        [_tool("promtool"), "check", "config", str(folder / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 rule files found" in done.stdout  # rules/*.yml, relative to the config's folder
    config = yaml.safe_load((folder / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {
        *("prometheus", "finsimples-api", "nginx", "redis", "node", "alertmanager"),
        "deploy-controller",
    }
    ports = stack.settings.stack
    assert jobs["deploy-controller"]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{ports.controller_port}"
    ]
    assert jobs["nginx"]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{ports.nginx_exporter_port}"
    ]
    assert jobs["redis"]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{ports.redis_exporter_port}"
    ]
    assert jobs["node"]["static_configs"][0]["targets"] == [f"127.0.0.1:{ports.node_exporter_port}"]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == [f"127.0.0.1:{ports.alertmanager_port}"]
    targets = json.loads((folder / "replicas.json").read_text())
    assert [group["labels"]["replica"] for group in targets] == ["replica-1", "replica-2"]
    assert jobs["finsimples-api"]["file_sd_configs"][0]["files"] == ["replicas.json"]


def test_without_exporters_or_alertmanager_their_jobs_are_left_out(tmp_path: Path) -> None:
    stack = _stack(tmp_path, frozenset({PROMETHEUS}))
    text = (stack.layout.root / "prometheus" / "prometheus.yml").read_text()
    config = yaml.safe_load(text)
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert jobs == ["prometheus", "finsimples-api", "deploy-controller"]
    assert "alerting" not in config
    assert not (stack.layout.root / "alertmanager").exists()
    assert set(stack.ports([])) == {
        *("NGINX", "NGINX stub_status", "Redis", "MLflow", "Prometheus"),
        *("Prefect", "deploy controller"),
    }


def test_the_rules_come_from_the_current_settings(tmp_path: Path) -> None:
    stack = _stack(tmp_path, EVERY_PROGRAM, alerts=AlertConfig(replica_down_for="7s"))
    rules = stack.layout.root / "prometheus" / "rules"
    assert sorted(p.name for p in rules.glob("*.yml")) == [
        "model.yml",
        "operations.yml",
        "replicas.yml",
        "serving.yml",
        "slo.yml",
    ]
    (group,) = yaml.safe_load((rules / "replicas.yml").read_text())["groups"]
    (down,) = [rule for rule in group["rules"] if rule.get("alert") == "ReplicaDown"]
    assert down["for"] == "7s"
    # The committed copy keeps the default: the stack does not read it.
    assert "for: 1m" in (ROOT / "monitoring" / "rules" / "replicas.yml").read_text()


def test_the_committed_prometheus_yml_is_the_stack_conf_for_the_defaults() -> None:
    committed = (ROOT / "monitoring" / "prometheus.yml").read_text()
    assert committed == render_prometheus_conf(StackConfig(), EVERY_PROGRAM)
    done = subprocess.run(
        [_tool("promtool"), "check", "config", str(ROOT / "monitoring" / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("webhook", [None, "http://127.0.0.1:9/alerts"], ids=["none", "webhook"])
def test_the_stack_alertmanager_conf_passes_amtool(tmp_path: Path, webhook: str | None) -> None:
    alerts = AlertConfig(page_group_wait="1s", page_group_interval="2s")
    stack = _stack(
        tmp_path, EVERY_PROGRAM, alerts=alerts, stack=StackConfig(alert_webhook_url=webhook)
    )
    config_file = stack.layout.root / "alertmanager" / "alertmanager.yml"
    done = subprocess.run(
        [_tool("amtool"), "check-config", str(config_file)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(config_file.read_text())
    page = next(r for r in config["route"]["routes"] if r["receiver"] == "page")
    assert (page["group_wait"], page["group_interval"]) == ("1s", "2s")
    for receiver in config["receivers"]:
        if webhook is None:
            assert "webhook_configs" not in receiver
        else:
            assert receiver["webhook_configs"] == [{"url": webhook, "send_resolved": True}]


def test_supervisord_reads_the_monitoring_programs(tmp_path: Path) -> None:
    stack = _stack(tmp_path, EVERY_PROGRAM)
    programs = [p for p in stack.programs([], tmp_path) if p.name in EVERY_PROGRAM]
    assert {p.name for p in programs} == EVERY_PROGRAM
    stack.supervisor.write_config(programs)
    options = ServerOptions()
    options.realize(args=["-c", str(stack.supervisor.conf)])
    commands = {
        group.name: group.process_configs[0].command for group in options.process_group_configs
    }
    ports = stack.settings.stack
    assert f"--web.listen-address=127.0.0.1:{ports.alertmanager_port}" in commands[ALERTMANAGER]
    assert "--cluster.listen-address=" in commands[ALERTMANAGER]
    assert f"127.0.0.1:{ports.nginx_status_port}/stub_status" in commands[NGINX_EXPORTER]
    assert f"-redis.addr=redis://127.0.0.1:{ports.redis_port}" in commands[REDIS_EXPORTER]
    assert "--collector.disable-defaults" in commands[NODE_EXPORTER]
    assert f"127.0.0.1:{ports.node_exporter_port}" in commands[NODE_EXPORTER]
    assert render_supervisord_conf(tmp_path, programs)  # every value writable


def test_exporter_ports_are_checked_for_clashes() -> None:
    with pytest.raises(ValidationError, match="node_exporter_port and prometheus_port"):
        StackConfig(node_exporter_port=9090)
    with pytest.raises(ValidationError, match="overlaps redis_exporter_port"):
        StackConfig(redis_exporter_port=3002)
