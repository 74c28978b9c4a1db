"""Every dashboard query through Prometheus's own PromQL parser.

No Grafana server here. ``promtool check rules`` parses each rule's ``expr`` with the real
parser, so the committed dashboard's queries (``$__rate_interval`` replaced, as Grafana does
before sending them) go into a throwaway rule file, one recording rule each. Whether they
return data is the e2e tier's part (tests/e2e/test_dashboard_queries.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring.dashboard import panel_queries, substitute
from tests.servers import required_tool

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "monitoring" / "grafana" / "finsimples.json"


def promtool() -> str:
    return required_tool("promtool", "prometheus")


def check_rules(queries: list[tuple[str, str]], folder: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check rules`` on a rule file holding each query as a recording rule."""
    rules = [
        {"record": f"dashboard:{re.sub(r'[^a-z0-9]+', '_', title.lower())}:{i}", "expr": expr}
        for i, (title, expr) in enumerate(queries)
    ]
    path = folder / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_dashboard_query_parses_as_promql(tmp_path: Path) -> None:
    queries = [
        (title, substitute(expr))
        for title, expr in panel_queries(json.loads(DASHBOARD.read_text()))
    ]
    done = check_rules(queries, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_promtool_rejects_a_broken_query(tmp_path: Path) -> None:
    """The check above would catch a typo: promtool really parses the expressions."""
    [(title, expr), *_] = panel_queries(json.loads(DASHBOARD.read_text()))
    done = check_rules([(title, substitute(expr).replace(")", "", 1))], tmp_path)
    assert done.returncode != 0
    assert "parse error" in done.stdout + done.stderr
    # Unsubstituted, Grafana's variable is no PromQL either.
    done = check_rules([(title, expr)], tmp_path)
    assert done.returncode != 0
