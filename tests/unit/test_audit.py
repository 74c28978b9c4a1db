"""The dependency audit's verdict on recorded pip-audit runs: "clean" only when it was checked.

tests/data/pip_audit/ holds real pip-audit 2.10.1 runs (exit code, stdout, stderr; each file says
where it was recorded): a clean and a vulnerable run against a local stand-in for OSV's query API
(answering the OSV record PYSEC-2019-179 for flask 0.5), and this machine's own runs, where the
services are unreachable, with and without ``--strict``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.audit import CLEAN, NOT_RUN, VULNERABLE, AuditRun, pip_audit_command, verdict

RECORDED = Path(__file__).resolve().parents[1] / "data" / "pip_audit"


def recorded(name: str) -> AuditRun:
    data = json.loads((RECORDED / f"{name}.json").read_text())
    return AuditRun(data["returncode"], data["stdout"], data["stderr"])


def test_clean_only_when_every_package_was_looked_up() -> None:
    result = verdict(recorded("clean"), "osv")
    assert (result.line, result.exit_code) == ("audit: clean (2 packages, service osv)", CLEAN)


def test_a_vulnerability_names_the_package_the_advisory_and_the_fix() -> None:
    result = verdict(recorded("vulnerable"), "osv")
    assert result.exit_code == VULNERABLE
    assert result.line == (
        "audit: 1 vulnerability in 1 package: flask 0.5 PYSEC-2019-179 (fixed in 1.0)"
    )


@pytest.mark.parametrize(
    ("name", "service", "reason"),
    [
        # PyPI's JSON API answers 404 here: --strict stops at the first package.
        ("pypi_unreachable", "pypi", "a2wsgi: Dependency not found on PyPI"),
        # OSV's host does not resolve: pip-audit dies with requests' traceback.
        ("osv_unreachable", "osv", "requests.exceptions.ConnectionError:"),
        # Without --strict pip-audit says "No known vulnerabilities found" and exits 0.
        ("not_strict", "pypi", "2 of 2 packages could not be audited (first: a2wsgi"),
    ],
)
def test_an_unreachable_service_is_not_run_never_clean(
    name: str, service: str, reason: str
) -> None:
    run = recorded(name)
    result = verdict(run, service)
    assert result.exit_code == NOT_RUN
    assert result.line.startswith(f"audit: NOT RUN — service {service}: ")
    assert reason in result.line
    assert "clean" not in result.line
    assert "\n" not in result.line
    if name == "not_strict":  # the false pass the verdict exists for
        assert run.returncode == 0
        assert "No known vulnerabilities found" in run.stderr


def test_no_report_or_an_odd_exit_is_not_run() -> None:
    clean = recorded("clean")
    # Exit 0 but no JSON report (say, output redirected): nothing proves a check happened.
    assert verdict(AuditRun(0, "", clean.stderr), "pypi").exit_code == NOT_RUN
    # A report with no vulnerability but a failing exit code.
    assert verdict(AuditRun(1, clean.stdout, "ERROR:x: boom"), "pypi").exit_code == NOT_RUN
    # An empty report: zero packages audited is not a clean audit.
    empty = json.dumps({"dependencies": [], "fixes": []})
    assert verdict(AuditRun(0, empty, ""), "pypi").exit_code == NOT_RUN


def test_many_vulnerabilities_are_counted_and_the_line_stays_short() -> None:
    vulns = [{"id": f"PYSEC-2024-{i}", "fix_versions": [], "aliases": []} for i in range(8)]
    report = {"dependencies": [{"name": "a", "version": "1", "vulns": vulns}], "fixes": []}
    result = verdict(AuditRun(1, json.dumps(report), ""), "pypi")
    assert result.exit_code == VULNERABLE
    assert result.line.startswith("audit: 8 vulnerabilities in 1 package: a 1 PYSEC-2024-0; ")
    assert result.line.endswith("; and 3 more")


def test_the_command_is_strict_and_audits_pinned_files_only() -> None:
    command = pip_audit_command([Path("a.txt"), Path("b.txt")], "osv", osv_url="http://x/q")
    assert {"--strict", "--no-deps", "--disable-pip"} <= set(command)
    assert command[command.index("--format") + 1] == "json"
    assert command[command.index("--vulnerability-service") + 1] == "osv"
    assert command[command.index("--osv-url") + 1] == "http://x/q"
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "-r"] == ["a.txt", "b.txt"]
