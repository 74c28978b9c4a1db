"""The Kubernetes manifests (deploy/k8s): rendered by kustomize, validated offline, checked
against the settings they must agree with (config/stack.py, the generated NGINX config).

No cluster here: `kubectl kustomize` renders each overlay and `kubernetes-validate --strict`
checks every rendered document against the API schemas of the Kubernetes versions below. The
Prefect work pool's job template is checked with Prefect's own template code.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.stack import StackConfig
from deploy.nginx import NginxLayout, render_nginx_conf
from finsimples.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
JOB_TEMPLATE = K8S / "prefect" / "base-job-template.json"
KUBECTL = Path(sys.executable).with_name("kubectl")
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
OVERLAYS = ("local", "production")
# The oldest Kubernetes with every field used on by default (preStop `sleep` is beta from 1.30),
# a current one, and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0", "1.37.0")
SECRET = "finsimples-secrets"
API = "finsimples-forecast"  # the API's Deployment (the deploy controller has one too)
# What the API pods take from the Secret (the flow jobs: the S3 and OpenAI keys).
API_SECRETS = {
    "FINSIMPLES_API_KEY_HASHES",
    "FINSIMPLES_OPENAI_API_KEY",
    "FINSIMPLES_S3_ACCESS_KEY_ID",
    "FINSIMPLES_S3_SECRET_ACCESS_KEY",
}
# Values that must never be in the repository: our API keys, OpenAI and AWS keys, SHA-256
# digests (the API key hashes), PEM blocks.
SECRET_LOOKING = re.compile(
    r"fs_[A-Za-z0-9_-]{16,}|sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|\b[0-9a-f]{64}\b|-----BEGIN"
)
Doc = dict[str, Any]
Rendered = tuple[str, str, list[Doc]]  # overlay, its YAML, its documents


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def validate_strict(path: Path) -> subprocess.CompletedProcess[str]:
    versions = [arg for version in KUBERNETES_VERSIONS for arg in ("-k", version)]
    return run([str(VALIDATE), "--strict", *versions, str(path)])


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    [doc] = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return doc


def container(docs: list[Doc]) -> Doc:
    [api] = one(docs, "Deployment", API)["spec"]["template"]["spec"]["containers"]
    return api


def groups(pattern: str, text: str) -> tuple[str, ...]:
    """The groups of ``pattern``, which must match the whole of ``text``."""
    found = re.fullmatch(pattern, text, re.S)
    assert found, f"{text!r} does not match {pattern!r}"
    return found.groups()


def quantity(value: str) -> float:
    """A Kubernetes quantity (``512Mi``, ``250m``, ``2``) as a number."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    number, unit = groups(r"([0-9.]+)([A-Za-z]*)", value)
    return float(number) * units.get(unit, 1)


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The default settings, whatever FINSIMPLES_* variables this shell has."""
    for key in [k for k in os.environ if k.startswith("FINSIMPLES_")]:
        monkeypatch.delenv(key)
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """Each overlay rendered by `kubectl kustomize`."""
    done = run([str(KUBECTL), "kustomize", str(K8S / "overlays" / request.param)])
    assert done.returncode == 0, done.stderr
    return request.param, done.stdout, [d for d in yaml.safe_load_all(done.stdout) if d]


def test_overlay_passes_strict_schema_validation(rendered: Rendered, tmp_path: Path) -> None:
    overlay, text, docs = rendered
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(text)
    done = validate_strict(path)
    assert done.returncode == 0, done.stdout + done.stderr
    # Every document checked against every version; no kind without a schema (CRDs only warn).
    assert done.stdout.count(" passed for resource ") == len(docs) * len(KUBERNETES_VERSIONS)
    assert "WARN" not in done.stdout + done.stderr


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    done = run([str(KUBECTL), "kustomize", str(K8S / "overlays" / "local")])
    deployment = one(list(yaml.safe_load_all(done.stdout)), "Deployment", API)
    deployment["spec"]["replica"] = 3  # a typo of `replicas`
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(deployment))
    strict = validate_strict(path)
    assert strict.returncode != 0
    assert "'replica' was unexpected" in strict.stdout
    # Without --strict the typo passes: the reason every check here is strict.
    assert run([str(VALIDATE), "-k", KUBERNETES_VERSIONS[-1], str(path)]).returncode == 0


def test_deployment_agrees_with_the_settings_and_the_bento_image(
    rendered: Rendered, defaults: Settings
) -> None:
    from bentoml._internal.container.generate import BENTO_UID_GID  # the image's `bentoml` user

    overlay, _, docs = rendered
    stack = defaults.stack
    deployment = one(docs, "Deployment", API)
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    # Production leaves the count to the HPA (whose minimum is checked below).
    assert spec.get("replicas") == (None if overlay == "production" else stack.replicas)
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    api = container(docs)
    assert api["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/livez"
    startup = api["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    assert startup["periodSeconds"] * startup["failureThreshold"] == stack.ready_timeout_seconds
    assert api["lifecycle"]["preStop"]["sleep"]["seconds"] >= stack.drain_seconds
    assert pod["terminationGracePeriodSeconds"] > api["lifecycle"]["preStop"]["sleep"]["seconds"]
    # Non-root as the image's user, read-only root, writable emptyDirs where BentoML writes.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == BENTO_UID_GID
    assert api["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = [m["mountPath"] for m in api["volumeMounts"] if m["name"] in empty_dirs]
    env = {e["name"]: e for e in api["env"]}
    config = one(docs, "ConfigMap", api["envFrom"][0]["configMapRef"]["name"])["data"]
    for path in (env["BENTOML_HOME"]["value"], config["FINSIMPLES_STATE_DIR"]):
        assert any(Path(path).is_relative_to(mount) for mount in writable), path
    assert env["FINSIMPLES_REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # Requests cover the measured peak RSS of a replica (482 MB, docs/benchmarks.md).
    assert quantity(api["resources"]["requests"]["memory"]) >= 482e6
    assert quantity(api["resources"]["limits"]["memory"]) > 482e6
    [spread, *_] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"


def test_hpa_pdb_and_service_agree_with_the_settings(
    rendered: Rendered, defaults: Settings
) -> None:
    _, _, docs = rendered
    stack = defaults.stack
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": one(docs, "Deployment", API)["metadata"]["name"],
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        stack.replicas,
        stack.autoscale_max_replicas,
    )
    [metric] = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["averageUtilization"] == stack.autoscale_cpu_percent
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 2 < stack.replicas
    labels = one(docs, "Deployment", API)["spec"]["template"]["metadata"]["labels"]
    service = one(docs, "Service", "finsimples-forecast")["spec"]
    for selector in (pdb["selector"]["matchLabels"], service["selector"]):
        assert selector.items() <= labels.items()
    assert service["type"] == "ClusterIP"
    assert service["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def nginx_blocks(stack: StackConfig, budget: float) -> dict[str, dict[str, str]]:
    """The directives of the generated NGINX config: server level, `location /`, admin."""
    layout = NginxLayout(
        listen="80", status_listen="8081", prefix=None, access_log="off", error_log="x"
    )
    conf = render_nginx_conf(stack, ["replica:3000"], layout, latency_budget_seconds=budget)
    [server] = groups(r".*?\n    server \{(.*?)\n    \}.*", conf)  # the API's server block
    [api] = groups(r".*location / \{(.*?)\}.*", server)
    [admin] = groups(r".*location /v1/admin/ \{(.*?)\}.*", server)
    texts = {"server": server.split("location", 1)[0], "api": api, "admin": admin}
    pattern = re.compile(r"^\s*(\w+) (.+);$", re.M)
    return {name: dict(pattern.findall(text)) for name, text in texts.items()}


def seconds(duration: str) -> int:
    """An NGINX duration (``500ms``, ``4s``) in whole seconds, rounded up as ingress-nginx needs."""
    number, unit = groups(r"([0-9.]+)(ms|s)", duration)
    return math.ceil(float(number) / (1000 if unit == "ms" else 1))


def test_ingress_timeouts_equal_the_generated_nginx_config(
    rendered: Rendered, defaults: Settings
) -> None:
    _, _, docs = rendered
    settings = defaults
    nginx = nginx_blocks(settings.stack, settings.latency_budget_seconds)
    server, api, admin = nginx["server"], nginx["api"], nginx["admin"]
    prefix = "nginx.ingress.kubernetes.io/"
    ingresses = {"api": "finsimples-forecast", "admin": "finsimples-forecast-admin"}
    notes = {k: one(docs, "Ingress", v)["metadata"]["annotations"] for k, v in ingresses.items()}
    annotations = {k: {n.removeprefix(prefix): v for n, v in a.items()} for k, a in notes.items()}
    expected_api = {
        "proxy-connect-timeout": seconds(server["proxy_connect_timeout"]),
        "proxy-read-timeout": seconds(server["proxy_read_timeout"]),
        "proxy-send-timeout": seconds(server["proxy_send_timeout"]),
        "proxy-next-upstream": api["proxy_next_upstream"],
        "proxy-next-upstream-tries": int(api["proxy_next_upstream_tries"]),
        "proxy-next-upstream-timeout": seconds(api["proxy_next_upstream_timeout"]),
    }
    expected_admin = {
        "proxy-connect-timeout": seconds(server["proxy_connect_timeout"]),
        "proxy-read-timeout": seconds(admin["proxy_read_timeout"]),
        "proxy-send-timeout": seconds(admin["proxy_send_timeout"]),
        "proxy-next-upstream": admin["proxy_next_upstream"],
    }
    for name, expected in (("api", expected_api), ("admin", expected_admin)):
        assert {k: annotations[name][k] for k in expected} == {
            k: str(v) for k, v in expected.items()
        }, name
    # The numbers behind them, so a change in the settings shows here by name.
    stack = settings.stack
    assert annotations["api"]["proxy-read-timeout"] == str(
        math.ceil(stack.read_timeout_seconds(settings.latency_budget_seconds))
    )
    assert annotations["admin"]["proxy-read-timeout"] == str(math.ceil(stack.admin_timeout_seconds))
    assert annotations["api"]["proxy-next-upstream-tries"] == str(stack.next_upstream_tries)
    assert "non_idempotent" in annotations["api"]["proxy-next-upstream"]
    # The admin routes live under the API's paths; both go to the Service's http port.
    paths = {
        name: one(docs, "Ingress", ingress)["spec"]["rules"][0]["http"]["paths"]
        for name, ingress in ingresses.items()
    }
    assert [p["path"] for p in paths["api"]] == ["/"]
    assert [p["path"] for p in paths["admin"]] == ["/v1/admin/"]
    for [path] in paths.values():
        assert path["backend"]["service"] == {
            "name": "finsimples-forecast",
            "port": {"name": "http"},
        }


def test_config_maps_are_valid_settings(
    rendered: Rendered, defaults: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay, _, docs = rendered
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    api_config = maps[container(docs)["envFrom"][0]["configMapRef"]["name"]]
    assert maps["finsimples-flows-config"] == api_config  # fixed name for the Prefect jobs
    fields = Settings.model_fields
    for key in api_config:
        assert key.startswith("FINSIMPLES_"), key
        assert key.removeprefix("FINSIMPLES_").lower().split("__")[0] in fields, key
    for key, value in api_config.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    # The manifests were checked against these numbers: the ConfigMap must not change them.
    assert settings.stack == defaults.stack
    assert settings.latency_budget_seconds == defaults.latency_budget_seconds
    assert settings.resolved_lake_uri.startswith("s3://")
    assert settings.mlflow_tracking_uri
    assert settings.redis_url
    if overlay == "local":  # the in-cluster Redis of the component
        host, port = groups(r"redis://([^:/]+):(\d+)/\d+", settings.redis_url)
        service = one(docs, "Service", host)["spec"]
        assert int(port) in [p["port"] for p in service["ports"]]
        redis_conf = one(
            docs, "ConfigMap", next(n for n in maps if n.startswith("finsimples-redis"))
        )
        assert "maxmemory-policy allkeys-lru" in redis_conf["data"]["redis.conf"]
    else:  # a managed Redis: no StatefulSet, TLS
        assert settings.redis_url.startswith("rediss://")
        assert not [d for d in docs if d["kind"] == "StatefulSet"]


def test_no_secret_values_in_the_manifests(rendered: Rendered) -> None:
    _, text, docs = rendered
    assert not [d for d in docs if d["kind"] == "Secret"]
    secret_fields = {"api_key_hashes"} | {
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    from_secret = {f"FINSIMPLES_{name.upper()}" for name in secret_fields}
    for data in (d["data"] for d in docs if d["kind"] == "ConfigMap"):
        assert not from_secret & set(data)
    env = {e["name"]: e for e in container(docs)["env"]}
    assert set(env) >= API_SECRETS
    for name in from_secret & set(env):
        reference = env[name]["valueFrom"]["secretKeyRef"]
        assert (reference["name"], reference["key"]) == (SECRET, name)
    # Authentication must not silently turn off when the key is missing from the Secret.
    assert not env["FINSIMPLES_API_KEY_HASHES"]["valueFrom"]["secretKeyRef"].get("optional")
    assert not SECRET_LOOKING.search(text)
    for path in K8S.rglob("*"):
        if path.is_file():
            assert not SECRET_LOOKING.search(path.read_text()), path


def worker_values(variables: Doc) -> Doc:
    """What a Prefect worker fills in for a flow run: the defaults, the deployment's values."""
    values = {
        k: v["default"] for k, v in variables["properties"].items() if v.get("default") is not None
    }
    return values | {
        "name": "daily-k8s-abcde",
        "image": "registry.example.com/finsimples/finsimples-flows:0.1.0",
        "env": {"OMP_WAIT_POLICY": "PASSIVE", "PREFECT_API_URL": "http://prefect:4200/api"},
        "labels": {"prefect.io/flow-run-id": "0d9a2b4e", "prefect.io/deployment-name": "daily-k8s"},
        "command": "prefect flow-run execute",
    }


def test_prefect_job_template_is_a_valid_base_job_template() -> None:
    import jsonschema
    from prefect.server.schemas.actions import validate_base_job_template

    template = json.loads(JOB_TEMPLATE.read_text())
    assert set(template) == {"job_configuration", "variables"}
    validate_base_job_template(template)  # what `prefect work-pool create` has the server check
    variables = template["variables"]
    jsonschema.Draft202012Validator.check_schema(variables)
    jsonschema.validate(worker_values(variables), variables)
    for prop in variables["properties"].values():
        if "default" in prop:
            jsonschema.validate(prop["default"], prop)
    # prefect.yaml's kubernetes pool: this template's pool, namespace and variables.
    prefect = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    pool = prefect["definitions"]["work_pools"]["kubernetes"]
    assert pool["name"] == "finsimples-k8s"
    assert set(pool["job_variables"]) <= set(variables["properties"])
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert variables["properties"]["namespace"]["default"] == pool["job_variables"]["namespace"]
    assert pool["job_variables"]["namespace"] == base["namespace"]


def test_prefect_job_manifest_is_a_valid_job(tmp_path: Path) -> None:
    from prefect.utilities.templating import apply_values

    template = json.loads(JOB_TEMPLATE.read_text())
    config = apply_values(template["job_configuration"], worker_values(template["variables"]))
    job = copy.deepcopy(config["job_manifest"])
    assert "{{" not in json.dumps(job)
    # As prefect-kubernetes' worker prepares it: its env first, the template's list after, and
    # the command split into args.
    [pod_container] = job["spec"]["template"]["spec"]["containers"]
    env = [{"name": k, "value": v} for k, v in config["env"].items()]
    pod_container["env"] = env + pod_container["env"]
    pod_container["args"] = shlex.split(pod_container["args"])
    # The worker refuses a manifest without these (prefect_kubernetes.worker's base manifest).
    pod = job["spec"]["template"]["spec"]
    assert (pod.pop("parallelism"), pod.pop("completions"), pod["restartPolicy"]) == (1, 1, "Never")
    assert pod_container["name"] == "prefect-job"
    # Those two are not PodSpec fields: the API server drops them with a warning (API clients'
    # fieldValidation defaults to Warn); strict validation would not, so they go before it.
    job["metadata"]["name"] = job["metadata"]["generateName"] + "x7k2p"  # as the API server does
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    done = validate_strict(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed for resource job/") == len(KUBERNETES_VERSIONS)
    # Flow pods reach the in-cluster Redis (NetworkPolicy) and read the fixed-name ConfigMap.
    assert (
        job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "finsimples"
    )
    assert pod_container["envFrom"] == [{"configMapRef": {"name": "finsimples-flows-config"}}]
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"] for e in pod_container["env"] if "valueFrom" in e
    }
    assert refs == {SECRET}


def test_grafana_dashboard_config_map_holds_the_generated_dashboard(rendered: Rendered) -> None:
    _, _, docs = rendered
    dashboard = one(docs, "ConfigMap", "finsimples-grafana-dashboard")  # fixed name: no hash
    # The label Grafana's dashboard sidecar selects on (kube-prometheus-stack, grafana chart).
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    generated = ROOT / "monitoring" / "grafana" / "finsimples.json"
    assert dashboard["data"] == {"finsimples.json": generated.read_text()}
    assert json.loads(dashboard["data"]["finsimples.json"])["uid"] == "finsimples"
    # `kubectl apply` keeps a copy in an annotation limited to 256 KiB.
    assert len(yaml.safe_dump(dashboard).encode()) < 256 * 1024
