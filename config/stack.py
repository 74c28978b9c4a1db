"""The production topology's numbers: replicas, ports, timeouts, autoscaling. One source of truth.

The local stack (``deploy.stack``), the generated NGINX config (``deploy.nginx``), the compose
file and the Kubernetes manifests all take their ports, replica count, timeouts and thresholds
from here, or are checked against it by a test. Embedded in the app settings as
``Settings.stack`` (``FINSIMPLES_STACK__<FIELD>``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StackConfig(BaseModel):
    """The 3-replica topology behind NGINX, on one machine or in a cluster.

    Balancing: round robin, chosen by measurement (docs/benchmarks.md, "Balancing method"). With
    cache hits alone the two methods are within noise; with slow requests in the mix (an LLM
    call, a cache miss) round robin gave the fast requests a 24-31% lower p99 and 12-15% more
    throughput, because least_conn steers CPU-bound requests away from replicas whose
    connections wait off the CPU. After a replica's SIGKILL both lost no request (e2e test).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    replicas: int = Field(3, ge=1, le=16, description="API replicas behind NGINX")
    host: str = Field("127.0.0.1", description="interface every local stack process binds")
    nginx_port: int = Field(8080, ge=1, le=65535, description="the API through NGINX")
    nginx_status_port: int = Field(
        8081, ge=1, le=65535, description="NGINX stub_status, bound to 127.0.0.1 only"
    )
    replica_base_port: int = Field(
        3001,
        ge=1,
        le=65535,
        description="first replica port; a rolling deploy takes fresh ports from the "
        "range [base, base + 2 * replicas + 1]",
    )
    redis_port: int = Field(6390, ge=1, le=65535, description="the shared Redis")
    mlflow_port: int = Field(5050, ge=1, le=65535, description="the MLflow tracking server")
    prometheus_port: int = Field(9090, ge=1, le=65535, description="Prometheus, when installed")
    alertmanager_port: int = Field(9093, ge=1, le=65535, description="Alertmanager, if installed")
    nginx_exporter_port: int = Field(
        9113, ge=1, le=65535, description="prometheus-nginx-exporter (NGINX's stub_status)"
    )
    redis_exporter_port: int = Field(9121, ge=1, le=65535, description="prometheus-redis-exporter")
    node_exporter_port: int = Field(
        9100, ge=1, le=65535, description="prometheus-node-exporter (the host)"
    )
    alert_webhook_url: str | None = Field(
        None,
        description="where the stack's Alertmanager posts its notifications (Alertmanager's "
        "webhook JSON); unset: no receiver posts anywhere, alerts are only listed by "
        "Alertmanager (its UI, `amtool alert query`)",
    )
    s3_port: int = Field(
        9000, ge=1, le=65535, description="moto's S3 API server, for an s3:// lake on 127.0.0.1"
    )
    prefect_port: int = Field(
        4200, ge=1, le=65535, description="the stack's Prefect server (API and UI)"
    )
    controller_port: int = Field(
        9095,
        ge=1,
        le=65535,
        description="the deploy controller: MLflow's webhook, /metrics, /healthz, /reconcile",
    )
    scheduler: bool = Field(
        True,
        description="`stack up` runs a Prefect server and the process serving the flows' "
        "deployments on their schedules (daily per exchange, drift)",
    )
    controller: bool = Field(
        True,
        description="`stack up` runs the deploy controller: the replicas follow @champion",
    )
    controller_poll_seconds: float = Field(
        10.0,
        gt=0,
        description="the controller compares @champion with the replicas at least this often "
        "(the safety net under MLflow's webhooks, which are not durable)",
    )
    controller_verify: bool = Field(
        True,
        description="the controller judges each deploy with the load test's ci profile "
        "(`deploy --verify`) and rolls a failing version back",
    )
    balancing: Literal["least_conn", "round_robin"] = Field(
        "round_robin", description="NGINX upstream method (see the class docstring)"
    )
    upstream_keepalive: int = Field(
        32, ge=0, description="idle keepalive connections NGINX keeps to the replicas"
    )
    connect_timeout_seconds: float = Field(
        0.5, gt=0, description="NGINX gives up connecting to a replica after this, then fails over"
    )
    read_margin_seconds: float = Field(
        1.0,
        ge=0,
        description="NGINX waits the latency budget plus this for a replica's answer: a "
        "replica answers (from the fallback if need be) within the budget, so past it the "
        "replica is hung and the request goes to the next one",
    )
    next_upstream_tries: int = Field(
        3, ge=1, description="replicas one request may be tried on (proxy_next_upstream_tries)"
    )
    admin_timeout_seconds: float = Field(
        120.0, gt=0, description="read timeout of the admin routes (a cache warm-up is long)"
    )
    ready_timeout_seconds: float = Field(
        180.0, gt=0, description="how long `stack up` and a deploy wait for a replica's /readyz"
    )
    drain_seconds: float = Field(
        2.0,
        ge=0,
        description="after NGINX stops routing to a replica, wait this long before stopping it "
        "(requests in flight finish)",
    )
    autoscale_cpu_percent: int = Field(
        70, ge=1, le=100, description="Kubernetes HPA target CPU utilisation (the plan: 70%)"
    )
    autoscale_max_replicas: int = Field(
        6, ge=1, description="HPA ceiling (capacity figures in docs/benchmarks.md)"
    )

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackConfig:
        fixed = {
            "nginx_port": self.nginx_port,
            "nginx_status_port": self.nginx_status_port,
            "redis_port": self.redis_port,
            "mlflow_port": self.mlflow_port,
            "prometheus_port": self.prometheus_port,
            "alertmanager_port": self.alertmanager_port,
            "nginx_exporter_port": self.nginx_exporter_port,
            "redis_exporter_port": self.redis_exporter_port,
            "node_exporter_port": self.node_exporter_port,
            "s3_port": self.s3_port,
            "prefect_port": self.prefect_port,
            "controller_port": self.controller_port,
        }
        seen: dict[int, str] = {}
        for name, port in fixed.items():
            if port in seen:
                raise ValueError(f"{name} and {seen[port]} are both port {port}")
            seen[port] = name
        for port in self.replica_ports:
            if port in seen:
                raise ValueError(
                    f"replica port range {self.replica_ports.start}-{self.replica_ports.stop - 1} "
                    f"overlaps {seen[port]} ({port})"
                )
            if port > 65535:
                raise ValueError(f"replica port range ends past 65535 ({port})")
        if self.autoscale_max_replicas < self.replicas:
            raise ValueError(
                f"autoscale_max_replicas {self.autoscale_max_replicas} < replicas {self.replicas}"
            )
        return self

    @property
    def replica_ports(self) -> range:
        """Every port a replica may take: two per slot (old and new during a deploy), plus one."""
        return range(self.replica_base_port, self.replica_base_port + 2 * self.replicas + 2)

    def read_timeout_seconds(self, latency_budget_seconds: float) -> float:
        """NGINX's read timeout for the API routes: the budget plus the margin."""
        return latency_budget_seconds + self.read_margin_seconds
