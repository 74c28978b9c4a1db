"""The alert rules and Alertmanager's config, through the real parsers and promtool's rule tests.

``promtool check rules`` on every rule file, ``promtool test rules`` on one test file per rule
group (``promtool/<group file>_test.yml``), in which every alert fires on a series that breaks
it and stays quiet on a healthy one; ``amtool check-config`` and ``amtool config routes test``
on the Alertmanager config; ``python -m monitoring.rules --check`` on the committed files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.monitoring import AlertConfig
from finsimples.settings import Settings
from monitoring.alertmanager import render_alertmanager_yml
from monitoring.rules import render_all
from tests.servers import required_tool

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
PROMTOOL_TESTS = Path(__file__).resolve().parent / "promtool"
TEST_FILES = sorted(PROMTOOL_TESTS.glob("*_test.yml"))


def run(command: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSIMPLES_")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def alert_names(rule_file: Path) -> set[str]:
    groups = yaml.safe_load(rule_file.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_checks_the_rule_file(rule_file: Path) -> None:
    done = run([required_tool("promtool", "prometheus"), "check", "rules", str(rule_file)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_each_rule_file_has_one_promtool_test_file() -> None:
    assert len(RULE_FILES) == 5
    assert [p.name.removesuffix("_test.yml") for p in TEST_FILES] == [p.stem for p in RULE_FILES]
    for test_file in TEST_FILES:
        (rule_file,) = yaml.safe_load(test_file.read_text())["rule_files"]
        assert Path(rule_file).name == test_file.name.removesuffix("_test.yml") + ".yml"


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_every_alert_fires_on_a_breaking_series_and_stays_quiet_on_a_healthy_one(
    test_file: Path,
) -> None:
    rule_file = MONITORING / "rules" / test_file.name.replace("_test.yml", ".yml")
    cases: list[dict[str, Any]] = yaml.safe_load(test_file.read_text())["tests"]
    fires, quiet = set(), set()
    for case in cases:
        expectations: dict[str, list[bool]] = {}
        for check in case.get("alert_rule_test", []):
            expectations.setdefault(check["alertname"], []).append(bool(check.get("exp_alerts")))
        for name, fired in expectations.items():
            if any(fired):
                fires.add(name)
            else:  # a case where the alert never fires: its series is healthy
                quiet.add(name)
    alerts = alert_names(rule_file)
    assert alerts, rule_file
    assert alerts - fires == set(), "alerts without a case that fires"
    assert alerts - quiet == set(), "alerts without a healthy case"
    assert (fires | quiet) - alerts == set(), "cases for alerts the rule file does not have"


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_rule_tests_pass(test_file: Path) -> None:
    done = run([required_tool("promtool", "prometheus"), "test", "rules", str(test_file)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_tests_fail_on_other_thresholds(tmp_path: Path) -> None:
    """The cases are not tautologies: rules rendered with a higher CPU line break them."""
    promtool = required_tool("promtool", "prometheus")
    settings = Settings(alerts=AlertConfig(cpu_percent=95))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "replicas.yml").write_text(render_all(settings)["rules/replicas.yml"])
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(PROMTOOL_TESTS / "replicas_test.yml", cases / "replicas_test.yml")
    test_file = cases / "replicas_test.yml"
    text = test_file.read_text().replace("../../../../monitoring/rules/", "../rules/")
    test_file.write_text(text)
    done = run([promtool, "test", "rules", str(test_file)])
    assert done.returncode != 0
    report = done.stdout + done.stderr
    assert "alertname: ReplicaHighCpu" in report  # the 90% case no longer fires
    assert "alertname: ReplicaDown" not in report  # the others still pass


def test_amtool_accepts_the_config_and_routes_by_severity(tmp_path: Path) -> None:
    amtool = required_tool("amtool", "prometheus-alertmanager")
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(render_alertmanager_yml("http://127.0.0.1:9999/alerts"))
    for config in (MONITORING / "alertmanager.yml", rendered):
        done = run([amtool, "check-config", str(config)])
        assert done.returncode == 0, done.stdout + done.stderr
        assert "4 inhibit rules" in done.stdout
        assert "2 receivers" in done.stdout

    def receiver(*labels: str) -> str:
        route = [amtool, "config", "routes", "test", f"--config.file={rendered}", *labels]
        done = run(route)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert receiver("alertname=ReplicaDown", "severity=page") == "page"
    assert receiver("alertname=CacheHitRateLow", "severity=ticket") == "ticket"
    assert receiver("alertname=Unlabelled") == "ticket"


def test_amtool_rejects_a_broken_config(tmp_path: Path) -> None:
    amtool = required_tool("amtool", "prometheus-alertmanager")
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(render_alertmanager_yml("not a url"))
    assert run([amtool, "check-config", str(broken)]).returncode != 0


def test_generated_files_are_current(tmp_path: Path) -> None:
    check = [sys.executable, "-m", "monitoring.rules", "--check"]
    done = run(check)
    assert done.returncode == 0, done.stdout + done.stderr
    # A copy edited by hand, and a rule file nobody renders: --check names both and exits 1;
    # the generator rewrites the one and removes the other.
    shutil.copytree(MONITORING / "rules", tmp_path / "rules")
    shutil.copy(MONITORING / "alertmanager.yml", tmp_path / "alertmanager.yml")
    edited = tmp_path / "rules" / "serving.yml"
    edited.write_text(edited.read_text().replace("> 0.01", "> 0.05"))
    (tmp_path / "rules" / "old.yml").write_text("groups: []\n")
    done = run([*check, "--dir", str(tmp_path)])
    assert done.returncode == 1
    assert "serving.yml" in done.stdout
    assert "old.yml" in done.stdout
    assert "replicas.yml" not in done.stdout
    assert run([sys.executable, "-m", "monitoring.rules", "--dir", str(tmp_path)]).returncode == 0
    assert edited.read_text() == (MONITORING / "rules" / "serving.yml").read_text()
    assert not (tmp_path / "rules" / "old.yml").exists()
    assert run([*check, "--dir", str(tmp_path)]).returncode == 0
