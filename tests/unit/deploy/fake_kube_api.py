"""A small fake Kubernetes API server, run as its own process by the tests of
``deploy.kube`` and ``deploy.controller_k8s``: ``python fake_kube_api.py PORT``.

It answers only what the controller calls, as the real API server does:
GET/PATCH (JSON merge patch) of ``apps/v1`` Deployments, GET/POST/PUT of
``coordination.k8s.io/v1`` Leases with ``resourceVersion`` conflicts (409), 404 for absent
objects, 401 without the bearer token. It plays the Deployment controller too: a new pod
template bumps ``generation``, and each later GET moves the rollout one pod forward, unless the
template's ``finsimples.io/model-version`` is listed as bad, when the rollout stalls and ends
with ``ProgressDeadlineExceeded`` as a pod that never gets ready would.

Test-only routes: ``POST /fake/bad`` {"versions": [...]}, ``GET /fake/log`` (requests seen),
``POST /fake/deployment`` (replace the stored Deployment).
"""

from __future__ import annotations

import copy
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "test-token"
NAMESPACE = "finsimples"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
ANNOTATION = "finsimples.io/model-version"


def new_deployment(replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "finsimples-forecast", "namespace": NAMESPACE, "generation": 1},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": "api"}}}},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


class World:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deployment = new_deployment()
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 100
        self.bad: set[str] = set()
        self.stalled = 0
        self.log: list[dict[str, Any]] = []

    def next_version(self) -> str:
        self.version += 1
        return str(self.version)

    def advance(self) -> None:
        """One step of the Deployment controller's rollout."""
        d = self.deployment
        meta, spec, status = d["metadata"], d["spec"], d["status"]
        wanted = spec["replicas"]
        if meta["generation"] > status.get("observedGeneration", 0):
            status.update(observedGeneration=meta["generation"], updatedReplicas=0)
            status["replicas"] = wanted + 1
            status.pop("conditions", None)
            self.stalled = 0
            return
        version = (spec["template"]["metadata"].get("annotations") or {}).get(ANNOTATION)
        if status["updatedReplicas"] < wanted or status["replicas"] > wanted:
            if version in self.bad:  # the surge pod never becomes ready
                status["updatedReplicas"] = 1
                self.stalled += 1
                if self.stalled >= 2:
                    status["conditions"] = [
                        {
                            "type": "Progressing",
                            "status": "False",
                            "reason": "ProgressDeadlineExceeded",
                            "message": 'ReplicaSet "x" has timed out progressing.',
                        }
                    ]
                return
            status["updatedReplicas"] = min(status["updatedReplicas"] + 1, wanted)
            status["availableReplicas"] = wanted
            if status["updatedReplicas"] == wanted:
                status["replicas"] = wanted


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


WORLD = World()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code: int, reason: str, message: str) -> None:
        self.answer(code, {"kind": "Status", "code": code, "reason": reason, "message": message})

    def body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def handle_any(self, method: str) -> None:
        body = self.body() if method in ("POST", "PUT", "PATCH") else None
        with WORLD.lock:
            if self.path.startswith("/fake/"):
                self.fake(method, body)
                return
            WORLD.log.append(
                {
                    "method": method,
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "authorization": self.headers.get("Authorization"),
                    "body": body,
                }
            )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.status(401, "Unauthorized", "Unauthorized")
                return
            self.api(method, body)

    def fake(self, method: str, body: Any) -> None:
        if self.path == "/fake/log":
            self.answer(200, WORLD.log)
        elif self.path == "/fake/bad":
            WORLD.bad = set(body["versions"])
            self.answer(200, {})
        elif self.path == "/fake/deployment":
            WORLD.deployment = body
            self.answer(200, {})
        else:
            self.status(404, "NotFound", self.path)

    def api(self, method: str, body: Any) -> None:
        path = self.path.split("?")[0]
        if path.startswith(DEPLOYMENTS):
            name = path.removeprefix(DEPLOYMENTS)
            d = WORLD.deployment
            if name != d["metadata"]["name"]:
                self.status(404, "NotFound", f'deployments.apps "{name}" not found')
            elif method == "GET":
                WORLD.advance()
                self.answer(200, d)
            elif method == "PATCH":
                if self.headers.get("Content-Type") != "application/merge-patch+json":
                    self.status(415, "UnsupportedMediaType", "merge patches only here")
                    return
                before = copy.deepcopy(d["spec"]["template"])
                patched = merge(d, body)
                if patched["spec"]["template"] != before:
                    patched["metadata"]["generation"] += 1
                WORLD.deployment = patched
                self.answer(200, patched)
            else:
                self.status(405, "MethodNotAllowed", method)
        elif path == LEASES and method == "POST":
            name = body["metadata"]["name"]
            if name in WORLD.leases:
                self.status(409, "AlreadyExists", f'leases "{name}" already exists')
                return
            body["metadata"]["resourceVersion"] = WORLD.next_version()
            WORLD.leases[name] = body
            self.answer(201, body)
        elif path.startswith(LEASES + "/"):
            name = path.removeprefix(LEASES + "/")
            stored = WORLD.leases.get(name)
            if stored is None:
                self.status(404, "NotFound", f'leases "{name}" not found')
            elif method == "GET":
                self.answer(200, stored)
            elif method == "PUT":
                if body["metadata"].get("resourceVersion") != stored["metadata"]["resourceVersion"]:
                    self.status(409, "Conflict", "the object has been modified")
                    return
                body["metadata"]["resourceVersion"] = WORLD.next_version()
                WORLD.leases[name] = body
                self.answer(200, body)
            else:
                self.status(405, "MethodNotAllowed", method)
        else:
            self.status(404, "NotFound", path)

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_PUT(self) -> None:
        self.handle_any("PUT")

    def do_PATCH(self) -> None:
        self.handle_any("PATCH")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.serve_forever()
