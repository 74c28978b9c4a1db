"""No container runs as root: the compose services, the Kubernetes workloads, the images we build.

Offline (no container runtime here): Compose's resolved model (the real binary's `config`), both
kustomize overlays rendered by `kubectl kustomize`, the Prefect job template and our Dockerfiles
are read. A compose service with no `user:` must run an image we build (its Dockerfile's last
USER is checked) or one whose default user is documented as non-root (the table below). The
bento's image (`USER bentoml`, uid 1034) is checked by tests/integration/api/test_bento_build.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.deploy.test_compose import COMPOSE_DIR, compose
from tests.integration.deploy.test_k8s import JOB_TEMPLATE, K8S, KUBECTL, OVERLAYS, run

pytestmark = pytest.mark.integration

ROOT_NAMES = {"root", "0"}
# Images that run as a non-root user of their own, with the USER line of their Dockerfile.
IMAGE_USERS = {
    "finsimples-forecast": "bentoml (1034): BentoML's template ends with `USER bentoml`",
    "nginx/nginx-prometheus-exporter": "build/Dockerfile: `USER 1001:1001`",
    "oliver006/redis_exporter": "Dockerfile: `USER 59000:59000`",
    "prom/node-exporter": "Dockerfile: `USER nobody`",
    "prom/prometheus": "Dockerfile: `USER nobody` (/prometheus owned by nobody)",
    "prom/alertmanager": "Dockerfile: `USER nobody` (/alertmanager owned by nobody)",
    "grafana/grafana": 'Dockerfile: `USER "$GF_UID"` (472, grafana)',
}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def final_user(dockerfile: Path) -> str:
    """The last USER of a Dockerfile (the user its ENTRYPOINT runs as)."""
    users = re.findall(r"^USER\s+(\S+)\s*$", dockerfile.read_text(), flags=re.MULTILINE)
    assert users, f"{dockerfile.name} never sets USER: it would run as root"
    return str(users[-1])


def assert_not_root(user: str, where: str) -> None:
    name, _, group = user.partition(":")
    assert name, f"{where}: no user in {user!r}"
    assert name not in ROOT_NAMES, f"{where} runs as {user!r}"
    assert group not in ROOT_NAMES, f"{where} runs in the root group: {user!r}"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = compose("config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)["services"])


def test_every_compose_service_runs_as_a_non_root_user(services: dict[str, Any]) -> None:
    by_image = []
    for name, service in services.items():
        assert not service.get("privileged"), name
        if service.get("user"):
            assert_not_root(str(service["user"]), name)
        elif "build" in service:
            dockerfile = Path(service["build"]["context"]) / service["build"]["dockerfile"]
            assert_not_root(final_user(dockerfile), f"{name} ({dockerfile.name})")
        else:
            repository = service["image"].rsplit(":", 1)[0]
            assert repository in IMAGE_USERS, f"{name}: {repository} may run as root: set user:"
            by_image.append(repository)
    # The table is not stale: every image in it is still used without a `user:`.
    assert set(by_image) == set(IMAGE_USERS)


def test_what_the_non_root_services_need_is_theirs(services: dict[str, Any]) -> None:
    # NGINX as 101: its pid and temp folders are tmpfs owned by that user, and it may bind :80.
    nginx = services["nginx"]
    uid, gid = nginx["user"].split(":")
    assert sorted(nginx["tmpfs"]) == [
        f"/run:uid={uid},gid={gid}",
        f"/var/cache/nginx:uid={uid},gid={gid}",
    ]
    assert nginx["sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"}
    # MinIO's data volume is mounted where its image's user owns the folder.
    minio = services["minio"]
    dockerfile = (COMPOSE_DIR / minio["build"]["dockerfile"]).read_text()
    [data] = [v["target"] for v in minio["volumes"] if v["source"] == "minio-data"]
    assert f"chown {final_user(COMPOSE_DIR / 'minio.Dockerfile')} {data}" in dockerfile
    assert minio["command"][:2] == ["server", data]
    # Images with no user of their own run as nobody with their state under /tmp.
    assert services["prefect-server"]["environment"]["PREFECT_HOME"].startswith("/tmp/")
    assert services["minio-init"]["environment"]["MC_CONFIG_DIR"].startswith("/tmp/")


def test_our_images_use_numeric_users_that_they_create() -> None:
    # Kubernetes' runAsNonRoot can only verify a numeric USER (the flow jobs run this image).
    for name in ("finsimples.Dockerfile", "mlflow.Dockerfile", "minio.Dockerfile"):
        path = COMPOSE_DIR / name
        uid, _, gid = final_user(path).partition(":")
        assert uid.isdigit(), name
        assert gid.isdigit(), name
        assert int(uid) > 0, name
        assert int(gid) > 0, name
        text = path.read_text()
        assert f"useradd --uid {uid}" in text or f"chown {uid}:{gid}" in text, name


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if doc["kind"] in WORKLOADS:
        return [doc["spec"]["template"]["spec"]]
    return [doc["spec"]] if doc["kind"] == "Pod" else []


def assert_pod_not_root(pod: dict[str, Any], where: str) -> None:
    context = pod.get("securityContext", {})
    assert context.get("runAsNonRoot") is True, f"{where}: no runAsNonRoot"
    assert context.get("runAsUser", 1) != 0, where
    assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
    for container in pod.get("initContainers", []) + pod["containers"]:
        own = container.get("securityContext", {})
        name = f"{where}/{container['name']}"
        assert own.get("runAsNonRoot", True) is True, name
        assert own.get("runAsUser", 1) != 0, name
        assert own.get("privileged", False) is False, name
        assert own.get("allowPrivilegeEscalation") is False, name
        assert own.get("capabilities", {}).get("drop") == ["ALL"], name
        assert not own.get("capabilities", {}).get("add"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kubernetes_pod_runs_as_non_root(overlay: str) -> None:
    done = run([str(KUBECTL), "kustomize", str(K8S / "overlays" / overlay)])
    assert done.returncode == 0, done.stderr
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    checked = []
    for doc in docs:
        for pod in pod_specs(doc):
            assert_pod_not_root(pod, f"{overlay}: {doc['kind']} {doc['metadata']['name']}")
            checked.append(doc["metadata"]["name"])
    # The API's Deployment, the deploy controller's, Redis's StatefulSet where the overlay
    # runs one, and the Prefect server and worker.
    pods = {"finsimples-forecast", "finsimples-deploy-controller"}
    assert pods | {"finsimples-prefect", "finsimples-prefect-worker"} <= set(checked)
    # The controller runs the project's image as that image's own numeric user.
    [controller] = [
        d
        for d in docs
        if d["metadata"]["name"] == "finsimples-deploy-controller" and d["kind"] == "Deployment"
    ]
    uid = final_user(COMPOSE_DIR / "finsimples.Dockerfile").split(":")[0]
    assert controller["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)
    assert ("finsimples-redis" in checked) == (overlay == "local")


def test_the_flow_jobs_run_as_non_root() -> None:
    manifest = json.loads(JOB_TEMPLATE.read_text())["job_configuration"]["job_manifest"]
    assert_pod_not_root(manifest["spec"]["template"]["spec"], "prefect flow job")
