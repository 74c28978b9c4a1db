"""The stack's generated configs read back by the real tools (`nginx -t`, supervisord's parser)."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from supervisor.options import ServerOptions

from config.stack import StackConfig
from deploy.layout import Slot, StackLayout
from deploy.nginx import NginxLayout, render_nginx_conf
from deploy.preflight import StackError, require_binaries, require_free_ports
from deploy.rolling import DeployInProgressError, DeployReport, count_requests, deploy_lock
from deploy.stack import Stack
from deploy.supervisor import Program, render_supervisord_conf
from finsimples.settings import Settings

pytestmark = pytest.mark.integration


def _slots(count: int, base: int = 3001) -> list[Slot]:
    return [
        Slot(f"replica-{i}", f"replica-{i}-p{base + i}", base + i, "finsimples-forecaster:v1", "1")
        for i in range(1, count + 1)
    ]


@pytest.mark.parametrize("balancing", ["least_conn", "round_robin"])
def test_the_local_nginx_conf_passes_nginx_t(tmp_path: Path, balancing: str) -> None:
    settings = Settings(
        state_dir=tmp_path, stack=StackConfig(balancing=balancing), max_request_body_bytes=10_000
    )
    stack = Stack.of(settings)
    stack.layout.logs.mkdir(parents=True)
    stack.write_nginx_conf(_slots(3), generation=7)
    stack.check_nginx_conf()  # raises on a config nginx rejects

    text = stack.layout.nginx_conf.read_text()
    assert ("least_conn;" in text) is (balancing == "least_conn")
    for port in (3002, 3003, 3004):
        assert f"server 127.0.0.1:{port} " in text
    assert "proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;" in text
    assert "proxy_next_upstream off;" in text  # the admin routes are never retried
    assert "proxy_read_timeout 4000ms;" in text  # the 3 s budget plus the 1 s margin
    assert "proxy_next_upstream_timeout 8000ms;" in text
    assert f"listen 127.0.0.1:{settings.stack.nginx_status_port};" in text
    assert 'return 200 "7";' in text
    assert "client_max_body_size 10000;" in text  # the replicas' own limit, not another number


def test_nginx_t_failing_is_reported(tmp_path: Path) -> None:
    stack = Stack.of(Settings(state_dir=tmp_path))
    stack.layout.logs.mkdir(parents=True)
    stack.write_nginx_conf(_slots(1), generation=1)
    conf = stack.layout.nginx_conf
    conf.write_text(conf.read_text().replace("keepalive 32;", "keepalive many;"))
    with pytest.raises(StackError, match="nginx -t rejected"):
        stack.check_nginx_conf()


def test_nginx_needs_a_replica() -> None:
    layout = NginxLayout("80", "8081", None, "/dev/stdout", "/dev/stderr")
    with pytest.raises(ValueError, match="at least one replica"):
        render_nginx_conf(StackConfig(), [], layout, latency_budget_seconds=3.0)


def test_supervisord_reads_back_what_was_generated(tmp_path: Path) -> None:
    hashes = json.dumps(["ab" * 32])
    program = Program(
        name="replica-1-p3001",
        command=["/usr/bin/env", "echo", "a b", "100%"],
        directory=tmp_path,
        log=tmp_path / "logs" / "replica.log",
        env={"FINSIMPLES_API_KEY_HASHES": hashes, "ODD": "50%, 'quoted' a=b"},
        port=3001,
        priority=300,
    )
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "supervisord.conf"
    conf.write_text(render_supervisord_conf(tmp_path, [program]))

    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    (group,) = options.process_group_configs
    (process,) = group.process_configs
    assert group.name == "replica-1-p3001"
    assert shlex.split(process.command) == ["/usr/bin/env", "echo", "a b", "100%"]
    assert process.environment == {
        "FINSIMPLES_API_KEY_HASHES": hashes,
        "ODD": "50%, 'quoted' a=b",
    }
    assert process.stopasgroup
    assert process.killasgroup
    assert process.autorestart


@pytest.mark.parametrize("value", ["""both ' and " quotes""", '"starts with a quote', "ends'"])
def test_supervisord_values_it_cannot_read_back_are_refused(tmp_path: Path, value: str) -> None:
    program = Program("p", ["/bin/true"], tmp_path, tmp_path / "p.log", env={"X": value})
    with pytest.raises(ValueError, match="X: its value cannot be written"):
        render_supervisord_conf(tmp_path, [program])


def test_stack_config_refuses_clashing_ports() -> None:
    with pytest.raises(ValidationError, match="overlaps redis_port"):
        StackConfig(replica_base_port=6388)  # 6388..6395 holds the Redis port 6390
    with pytest.raises(ValidationError, match="are both port"):
        StackConfig(nginx_port=9090)
    with pytest.raises(ValidationError, match="autoscale_max_replicas 2 < replicas 3"):
        StackConfig(autoscale_max_replicas=2)


def test_stack_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSIMPLES_STACK__REPLICAS", "5")
    monkeypatch.setenv("FINSIMPLES_STACK__BALANCING", "round_robin")
    stack = Settings().stack
    assert stack.replicas == 5
    assert stack.balancing == "round_robin"
    assert len(stack.replica_ports) == 12


def test_preflight_messages_say_what_to_do() -> None:
    with pytest.raises(StackError, match=r"sudo apt-get install -y no-such-server-xyz"):
        require_binaries(["no-such-server-xyz"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StackError, match=rf"port {port} \(Redis\) is taken by pid \d+ \("):
            require_free_ports({"Redis": port})


def test_a_replica_home_pins_its_model(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path)
    for version in ("v1-aaa", "v2-bbb"):
        (layout.model_store / "models" / "finsimples-forecaster" / version).mkdir(parents=True)
    home = layout.pin_model("replica-1-p3001", "finsimples-forecaster:v1-aaa")
    folder = home / "models" / "finsimples-forecaster"
    assert (folder / "latest").read_text() == "v1-aaa"
    assert (
        folder / "v1-aaa"
    ).resolve() == layout.model_store / "models/finsimples-forecaster/v1-aaa"
    assert not (folder / "v2-bbb").exists()
    with pytest.raises(FileNotFoundError, match="not in the stack's store"):
        layout.pin_model("replica-2-p3002", "finsimples-forecaster:v9-zzz")


def test_deploy_counts_requests_from_the_access_log(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    before = json.dumps({"status": "200"}) + "\n"
    log.write_text(before)
    lines = [{"status": "200"}, {"status": "200"}, {"status": "502"}, {"status": "429"}]
    with log.open("a") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")
        handle.write("not json\n")
    report = DeployReport("2", ["1"])
    count_requests(report, log, offset=len(before))
    assert report.requests == 4
    assert report.errors == 1
    assert report.statuses == {"200": 2, "502": 1, "429": 1}


def test_one_deploy_at_a_time(tmp_path: Path) -> None:
    lock = tmp_path / "deploy.lock"
    holder = (
        "import fcntl, sys, time; handle = open(sys.argv[1], 'w'); "
        "fcntl.flock(handle, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", holder, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "held"
        busy = pytest.raises(DeployInProgressError, match="another deploy is running")
        with busy, deploy_lock(lock):
            pass
    finally:
        other.kill()
        other.wait()
    # Reentrant in one process (the CLI holds it around the rolling deploy that takes it too),
    # and released when the outermost holder leaves.
    with deploy_lock(lock), deploy_lock(lock):
        pass
    with deploy_lock(lock):  # released: the next deploy may go
        pass


def test_an_unreachable_registry_is_named_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy.preflight import require_champion

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    port = socket.socket()
    port.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    uri = f"http://ops:s3cr3t-pw@127.0.0.1:{port.getsockname()[1]}"
    settings = Settings(_env_file=None, state_dir=tmp_path, mlflow_tracking_uri=uri)  # type: ignore[call-arg]
    try:
        with pytest.raises(StackError) as caught:
            require_champion(settings)
    finally:
        port.close()
    message = str(caught.value)
    assert "the MLflow model registry (http://ops:***@127.0.0.1:" in message
    assert "s3cr3t-pw" not in message
