"""The Grafana dashboard, as code: every panel's PromQL and threshold lines from the settings.

``monitoring.panels`` holds the panels as plain data (title, queries, unit, threshold lines);
:func:`build_dashboard` turns them into a Grafana 11.6 dashboard with ``grafana-foundation-sdk``
and :func:`render_dashboard` into its JSON. The JSON is committed in three places, so neither
Grafana nor Kubernetes needs Python: ``monitoring/grafana/finsimples.json`` (the reference),
``deploy/compose/grafana/dashboards/`` (the compose stack mounts that folder) and
``deploy/k8s/base/grafana/`` (a kustomize ``configMapGenerator`` reads files under its root
only). A test fails when one is stale.

Every query is proven against a
real Prometheus scraping the stack (tests/e2e/test_dashboard_queries.py): no panel is decorative.

Run ``python -m monitoring.dashboard`` to rewrite the files, ``--check`` to exit 1 when one differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.dashboard import Row as DashboardRow
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphThresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import (
    Dashboard as DashboardModel,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from finsimples import generated
from finsimples.settings import Settings
from monitoring.panels import RATE, PanelSpec, Query, dashboard_rows

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = (
    "monitoring/grafana/finsimples.json",
    "deploy/compose/grafana/dashboards/finsimples.json",
    "deploy/k8s/base/grafana/finsimples.json",
)
"""Where the dashboard JSON is written, relative to the repository root."""
UID = "finsimples"
DATASOURCE_VARIABLE = "datasource"
PanelBuilder = timeseries.Panel | stat.Panel | table.Panel


def _thresholds(spec: PanelSpec) -> tuple[list[Threshold], Literal["line", "off"]]:
    """Grafana threshold steps: the base colour, then one step per line."""
    if not spec.lines:
        return [Threshold(None, "green")], "off"
    base = "red" if spec.low_is_bad else "green"
    return [
        Threshold(None, base),
        *(Threshold(line.value, line.color) for line in spec.lines),
    ], "line"


def _target(query: Query, ref: str, datasource: DataSourceRef) -> Dataquery:
    target = Dataquery().expr(query.expr).legend_format(query.legend or "__auto")
    target = target.ref_id(ref).datasource(datasource)
    if query.instant:
        return target.instant().format(PromQueryFormat.TABLE)
    return target.range()


def _panel(spec: PanelSpec, datasource: DataSourceRef) -> PanelBuilder:
    steps, style = _thresholds(spec)
    panel: PanelBuilder
    if spec.kind == "timeseries":
        panel = timeseries.Panel().thresholds_style(
            GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode(style))
        )
        panel = panel.min(0).line_width(1).fill_opacity(10)
    elif spec.kind == "stat":
        panel = stat.Panel()
    else:
        panel = table.Panel().with_transformation(
            DataTransformerConfig(
                id_val="organize", options={"excludeByName": {"Time": True, "Value": True}}
            )
        )
    if spec.mappings:
        options = {
            v: ValueMappingResult(text=text, color=color) for v, text, color in spec.mappings
        }
        panel = panel.mappings([ValueMap(options=options)])
    refs = "ABCDEFGH"  # Grafana's refIds
    return (
        panel.title(spec.title)
        .description(spec.description)
        .datasource(datasource)
        .unit(spec.unit)
        .span(spec.width)
        .height(8)
        .thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        .targets([_target(q, refs[i], datasource) for i, q in enumerate(spec.queries)])
    )


def build_dashboard(settings: Settings) -> DashboardModel:
    """The dashboard: a Prometheus data source variable, then one row of panels per area."""
    datasource = DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
    board = (
        Dashboard("FinSimples")
        .uid(UID)
        .description("The forecast API's replicas, serving, model and exporters (issue 11).")
        .tags(["finsimples"])
        .time("now-1h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(
            DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus")
        )
    )
    ids = iter(range(1, 1000))  # stable panel ids: links to a panel (viewPanel=N) keep working
    for title, specs in dashboard_rows(settings):
        board = board.with_row(DashboardRow(title).id(next(ids)))
        for spec in specs:
            board = board.with_panel(_panel(spec, datasource).id(next(ids)))
    return board.build()


def render_dashboard(settings: Settings) -> str:
    """The dashboard's JSON, as Grafana's file provisioning and the sidecar read it."""
    return json.dumps(build_dashboard(settings), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of a dashboard's JSON, rows excluded."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel.get("targets", [])
    ]


def substitute(expr: str, rate_interval: str = "1m") -> str:
    """``expr`` as Grafana sends it to Prometheus: ``$__rate_interval`` replaced.

    The data source variable only picks the Prometheus; queries hold no other variable.
    """
    return expr.replace(RATE, rate_interval)


def rendered_files(settings: Settings) -> dict[str, str]:
    """Every output (relative to the repository root) and its text."""
    rendered = render_dashboard(settings)
    return dict.fromkeys(OUTPUTS, rendered)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboard JSON files, or with ``--check`` report the stale ones (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.dashboard", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="default: the repository")
    args = parser.parse_args(argv)
    return generated.sync_files(
        rendered_files(Settings()),
        args.root,
        check=args.check,
        command="python -m monitoring.dashboard",
    )


if __name__ == "__main__":
    sys.exit(main())
