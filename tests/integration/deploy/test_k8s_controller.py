"""The deploy controller's Kubernetes objects (deploy/k8s/base/controller.yaml) and the API
Deployment's model-version wiring, rendered by kustomize: the RBAC is the least the controller's
calls need, the ports and names are the ones deploy.controller_k8s and the settings use, and the
annotation reaches both the model-fetch init container and the API container. (Both overlays
also pass `kubernetes-validate --strict` in test_k8s.py.)"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from deploy import controller_k8s
from deploy.kube import KubeApi
from finsimples.settings import Settings
from tests.integration.deploy.test_k8s import API, Doc, Rendered, defaults, one, rendered

pytestmark = pytest.mark.integration
__all__ = ["defaults", "rendered"]  # fixtures, used by name

NAME = "finsimples-deploy-controller"
ANNOTATION_REF = f"metadata.annotations['{controller_k8s.ANNOTATION}']"


def pod(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def calls_made() -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of every request deploy.kube.KubeApi can make."""
    verbs = {"GET": "get", "PATCH": "patch", "POST": "create", "PUT": "update"}
    source = Path(inspect.getfile(KubeApi)).read_text()
    made = set()
    for method, path in re.findall(r'self\._call\("(\w+)", ([^,)]+)', source):
        group, resource = ("apps", "deployments") if "deployment" in path else (
            "coordination.k8s.io", "leases")  # fmt: skip
        made.add((group, resource, verbs[method]))
    return made


def test_the_role_grants_exactly_the_calls_the_controller_makes(rendered: Rendered) -> None:
    _, _, docs = rendered
    role = one(docs, "Role", NAME)
    granted = {
        (group, resource, verb, name)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames", [None])
    }
    assert {(g, r, v) for g, r, v, _ in granted} == calls_made()
    # Every grant but `create` (which cannot name an object yet) is for one object by name.
    for group, resource, verb, name in granted:
        expected = {"deployments": API, "leases": controller_k8s.LEASE}[resource]
        assert name == (None if verb == "create" else expected), (group, resource, verb)
    assert controller_k8s.DEPLOYMENT == API
    binding = one(docs, "RoleBinding", NAME)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": NAME,
    }
    namespace = role["metadata"]["namespace"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]
    assert one(docs, "ServiceAccount", NAME)
    # No cluster-wide rights.
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_the_controller_deployment_and_service(rendered: Rendered, defaults: Settings) -> None:
    _, _, docs = rendered
    deployment = one(docs, "Deployment", NAME)
    spec = pod(deployment)
    assert deployment["spec"]["replicas"] == 1
    assert spec["serviceAccountName"] == NAME
    assert spec["automountServiceAccountToken"] is True
    [container] = spec["containers"]
    assert container["command"][-4:] == ["deploy", "controller", "--target", "kubernetes"]
    port = defaults.stack.controller_port
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"requests", "limits"} <= container["resources"].keys()
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    keys = env["FINSIMPLES_LOADTEST__API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert (keys["name"], keys["optional"]) == ("finsimples-secrets", True)
    # The webhook URL the controller registers in MLflow is this Service, on the same port.
    service = one(docs, "Service", controller_k8s.CONTROLLER_SERVICE)["spec"]
    assert (
        service["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["ports"] == [
        {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
    ]
    # The verification's load test goes to the API's Service, port 80.
    api_service = one(docs, "Service", API)["spec"]
    assert f"http://{API}" == controller_k8s.SERVICE_URL
    assert [p["port"] for p in api_service["ports"]] == [80]


def test_the_annotation_reaches_model_fetch_and_the_api(rendered: Rendered) -> None:
    _, _, docs = rendered
    deployment = one(docs, "Deployment", API)
    spec = pod(deployment)
    # The controller owns the annotation: an apply must never reset it.
    assert controller_k8s.ANNOTATION not in (
        deployment["spec"]["template"]["metadata"].get("annotations") or {}
    )
    [fetch] = spec["initContainers"]
    [api] = spec["containers"]
    assert fetch["command"] == ["python", "-m", "bentos.model_fetch"]
    fetch_env = {e["name"]: e for e in fetch["env"]}
    api_env = {e["name"]: e for e in api["env"]}
    for env in (fetch_env, api_env):
        ref = env["FINSIMPLES_MODEL_VERSION"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert ref == ANNOTATION_REF
    assert "model_version" in Settings.model_fields  # what FINSIMPLES_MODEL_VERSION sets
    # model-fetch writes into the API's model store: same BENTOML_HOME, on the same volume.
    assert fetch_env["BENTOML_HOME"]["value"] == api_env["BENTOML_HOME"]["value"]
    mounts = {m["mountPath"]: m["name"] for m in fetch["volumeMounts"]}
    home = Path(api_env["BENTOML_HOME"]["value"])
    [(path, volume)] = [(p, v) for p, v in mounts.items() if home.is_relative_to(p)]
    assert {"name": "tmp", "mountPath": path} in api["volumeMounts"]
    assert volume == "tmp"
    # It runs the project's image (MLflow), not the bento's.
    assert fetch["image"] != api["image"]
    assert fetch["image"] == pod(one(docs, "Deployment", NAME))["containers"][0]["image"]
    # A stalled rollout fails before the controller's own wait gives up, and after one pod's
    # start-up budget (its startup probe).
    startup = api["startupProbe"]
    deadline = deployment["spec"]["progressDeadlineSeconds"]
    assert startup["periodSeconds"] * startup["failureThreshold"] < deadline
    assert deadline < controller_k8s.ROLLOUT_TIMEOUT_SECONDS
