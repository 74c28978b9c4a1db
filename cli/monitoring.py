"""``finsimples monitor status [--watch]``: a thin command over ``monitoring.status``."""

from __future__ import annotations

import time

import typer
from rich.live import Live

from cli.console import err, out
from deploy.programs import endpoints
from finsimples.settings import Settings
from monitoring.prometheus_api import PrometheusApi, PrometheusError
from monitoring.status import collect, render

monitor_app = typer.Typer(help="The stack's health, read from Prometheus.", no_args_is_help=True)


EXIT_UNREACHABLE = 2
"""Prometheus could not be read."""


@monitor_app.command("status")
def status_command(
    prometheus: str | None = typer.Option(
        None,
        "--prometheus",
        help="Prometheus's URL (default: the local stack's, from the stack settings).",
    ),
    window: str = typer.Option("1m", help="Rate window of the figures (a PromQL duration)."),
    watch: bool = typer.Option(False, "--watch", help="Refresh until Ctrl-C."),
    interval: float = typer.Option(5.0, min=1.0, help="Seconds between refreshes with --watch."),
) -> None:
    """Replicas up, req/s, p95, errors, cache hits and model version per replica; Redis,
    drift, realized coverage and the retrain; the alerts that fire.

    Exits 2 when Prometheus cannot be read (with the reason).
    """
    settings = Settings()
    urls = endpoints(settings, with_prometheus=True)
    url = prometheus or urls.prometheus
    assert url is not None  # noqa: S101 - type narrowing: with_prometheus=True sets it
    scheduler = None if prometheus else urls.prefect  # the local stack's, when it runs one
    with PrometheusApi(url) as api:
        try:
            if not watch:
                out.print(render(collect(api, window, scheduler=scheduler), settings.alerts))
                return
            with Live(
                render(collect(api, window, scheduler=scheduler), settings.alerts), console=out
            ) as live:
                while True:
                    time.sleep(interval)
                    live.update(render(collect(api, window, scheduler=scheduler), settings.alerts))
        except PrometheusError as exc:
            err.print("[bold red]error:[/]", end=" ")
            err.print(str(exc), markup=False, highlight=False)
            raise typer.Exit(EXIT_UNREACHABLE) from exc
        except KeyboardInterrupt:
            return
