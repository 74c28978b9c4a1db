"""The scheduler in the cluster (deploy/k8s/prefect): a Prefect server and the worker of the
kubernetes pool, rendered in both overlays and checked against prefect.yaml, uv.lock's Prefect,
the compose file's server and the settings' port. (Strict schema validation of every object:
test_k8s.py.)"""

from __future__ import annotations

import importlib.metadata
import json

import pytest
import yaml

from finsimples.settings import Settings
from tests.integration.deploy.test_compose import COMPOSE_FILE
from tests.integration.deploy.test_k8s import (
    JOB_TEMPLATE,
    ROOT,
    Rendered,
    defaults,
    one,
    rendered,
)

pytestmark = pytest.mark.integration
__all__ = ["defaults", "rendered"]  # fixtures, used by name

SERVER = "finsimples-prefect"
WORKER = "finsimples-prefect-worker"


def test_server_and_worker_run_the_locked_prefect_on_the_settings_port(
    rendered: Rendered, defaults: Settings
) -> None:
    _, _, docs = rendered
    version = importlib.metadata.version("prefect")
    [server] = one(docs, "Deployment", SERVER)["spec"]["template"]["spec"]["containers"]
    [worker] = one(docs, "Deployment", WORKER)["spec"]["template"]["spec"]["containers"]
    assert server["image"] == f"prefecthq/prefect:{version}-python3.11"
    assert worker["image"] == f"prefecthq/prefect:{version}-python3.11-kubernetes"
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["prefect-server"]
    assert compose["image"] == server["image"]
    port = defaults.stack.prefect_port
    assert server["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert server["command"][-2:] == ["--port", str(port)]
    service = one(docs, "Service", SERVER)["spec"]
    assert service["ports"] == [
        {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
    ]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["PREFECT_API_URL"] == f"http://{SERVER}:{port}/api"
    server_env = {e["name"]: e for e in server["env"]}
    assert server_env["PREFECT_SERVER_ANALYTICS_ENABLED"]["value"] == "false"
    # sqlite on the volume unless the Secret names a database: one server, never two.
    assert one(docs, "Deployment", SERVER)["spec"]["strategy"] == {"type": "Recreate"}
    data = next(m for m in server["volumeMounts"] if m["name"] == "data")
    assert server_env["PREFECT_HOME"]["value"] == data["mountPath"]
    database = server_env["PREFECT_API_DATABASE_CONNECTION_URL"]["valueFrom"]["secretKeyRef"]
    assert (database["name"], database["optional"]) == ("finsimples-secrets", True)


def test_the_worker_serves_prefect_yamls_kubernetes_pool_with_the_template(
    rendered: Rendered,
) -> None:
    _, _, docs = rendered
    deployment = one(docs, "Deployment", WORKER)
    pod = deployment["spec"]["template"]["spec"]
    [worker] = pod["containers"]
    command = worker["command"]
    pools = yaml.safe_load((ROOT / "prefect.yaml").read_text())["definitions"]["work_pools"]
    assert command[:3] == ["prefect", "worker", "start"]
    assert command[command.index("--pool") + 1] == pools["kubernetes"]["name"]
    assert command[command.index("--type") + 1] == "kubernetes"
    assert command[command.index("--install-policy") + 1] == "never"  # nothing pip-installed
    # The template it creates the pool with is the committed one, mounted from a ConfigMap.
    path = command[command.index("--base-job-template") + 1]
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    folder, file = path.rsplit("/", 1)
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[folder])
    template = one(docs, "ConfigMap", volume["configMap"]["name"])["data"][file]
    assert json.loads(template) == json.loads(JOB_TEMPLATE.read_text())
    assert worker["livenessProbe"]["httpGet"]["path"] == "/health"
    assert "--with-healthcheck" in command


def test_the_worker_may_run_jobs_in_its_namespace_only(rendered: Rendered) -> None:
    _, _, docs = rendered
    pod = one(docs, "Deployment", WORKER)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == WORKER
    rules = one(docs, "Role", WORKER)["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {("batch", "jobs", "create"), ("batch", "jobs", "delete")} <= granted
    assert {("", "pods", "list"), ("", "pods/log", "get")} <= granted
    # Read-only on everything but its Jobs; no secrets, no cluster-wide rights.
    writes = {"create", "update", "patch", "delete"}
    assert {r for _, r, v in granted if v in writes} == {"jobs"}
    assert not {r for _, r, _ in granted} & {"secrets", "configmaps"}
    binding = one(docs, "RoleBinding", WORKER)
    assert binding["roleRef"]["name"] == WORKER
    assert [s["name"] for s in binding["subjects"]] == [WORKER]
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
