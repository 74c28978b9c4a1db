"""The dependency audit: ``pip-audit --strict`` over what we ship, with a verdict that never lies.

What is audited: the locked main dependencies (``uv export --frozen``: what the project image
installs) and the bento's ``bentos/requirements.txt`` (what the forecast API's image installs).
Both are pinned, so pip-audit resolves nothing (``--no-deps --disable-pip``).

Why a verdict of our own: pip-audit's exit code cannot tell "clean" from "not checked".
Without ``--strict`` a package it cannot look up is skipped, and when the vulnerability service
is unreachable it skips every package, prints "No known vulnerabilities found" and exits 0. With
``--strict`` the first skip ends the run with exit 1, the exit code of a vulnerability found.
So the verdict reads its JSON report and its error output, and prints exactly one line:

- ``audit: clean (N packages, service S)``: every package looked up, none vulnerable; exit 0;
- ``audit: N vulnerabilities in M packages: ...``: exit 1;
- ``audit: NOT RUN — <reason>``: the service was unreachable, a package could not be looked up,
  or pip-audit failed before auditing; exit 3 (2 is argparse's and make's own failure code).

Run ``python -m deploy.audit`` (``make audit``); ``-r FILE`` audits given files instead.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENTO_REQUIREMENTS = ROOT / "bentos" / "requirements.txt"
SERVICES = ("pypi", "osv", "esms")
CLEAN, VULNERABLE, NOT_RUN = 0, 1, 3
# pip-audit's own warnings about --no-deps: our files are lock exports, pinned by construction.
_NOISE = re.compile(r"^WARNING:pip_audit\._cli:(--no-deps is supported|Consider using a tool)")
_MAX_LISTED = 5  # vulnerabilities named in the verdict line; the JSON report has them all
_PACKAGE = ("package", "packages")


@dataclass(frozen=True)
class AuditRun:
    """What one pip-audit process returned."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Verdict:
    """The one line to print and the exit code that goes with it."""

    line: str
    exit_code: int


def pip_audit_command(
    files: Sequence[Path],
    service: str,
    *,
    osv_url: str | None = None,
    timeout: float = 15,
    cache_dir: Path | None = None,
) -> list[str]:
    """The pip-audit command line: strict, JSON on stdout, pinned files, nothing resolved."""
    command = [sys.executable, "-m", "pip_audit", "--strict", "--format", "json"]
    command += ["--aliases", "on", "--progress-spinner", "off", "--no-deps", "--disable-pip"]
    command += ["--vulnerability-service", service, "--timeout", str(timeout)]
    if osv_url:
        command += ["--osv-url", osv_url]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    for path in files:
        command += ["-r", str(path)]
    return command


def _report(stdout: str) -> list[dict[str, Any]] | None:
    """The ``dependencies`` of pip-audit's JSON report, or None when it printed none."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and isinstance(report.get("dependencies"), list):
            return report["dependencies"]
    return None


def _failure(stderr: str) -> str:
    """Why pip-audit stopped: its first error line, else the last line (a traceback's)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not _NOISE.match(line)]
    errors = [line.removeprefix("ERROR:pip_audit._cli:") for line in lines if "ERROR:" in line]
    if errors:
        return errors[0]
    return lines[-1] if lines else "no output"


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(number: int, noun: str, plural: str) -> str:
    return f"{number} {noun if number == 1 else plural}"


def verdict(run: AuditRun, service: str) -> Verdict:
    """Judge one pip-audit run; "clean" only when every package was looked up and none is hit.

    Args:
        run: pip-audit's exit code and output (``--format json``, ideally ``--strict``).
        service: The vulnerability service it was asked (named in the verdict).

    Returns:
        The verdict line and its exit code (:data:`CLEAN`, :data:`VULNERABLE`, :data:`NOT_RUN`).
    """
    dependencies = _report(run.stdout)
    if dependencies is None:
        reason = _failure(run.stderr)
        if "Dependency not found on PyPI" in reason:  # what a 404 from PyPI's JSON API says
            reason += " (every locked package is on PyPI: is its JSON API reachable from here?)"
        if run.returncode == 0:
            reason = f"pip-audit exited 0 without a report ({reason})"
        return Verdict(f"audit: NOT RUN — service {service}: {_shorten(reason)}", NOT_RUN)
    hit = [dep for dep in dependencies if dep.get("vulns")]
    skipped = [dep for dep in dependencies if "skip_reason" in dep]
    if hit:
        found = [
            f"{dep['name']} {dep['version']} {vuln['id']}"
            + (f" (fixed in {', '.join(vuln['fix_versions'])})" if vuln.get("fix_versions") else "")
            for dep in hit
            for vuln in dep["vulns"]
        ]
        more = f"; and {len(found) - _MAX_LISTED} more" if len(found) > _MAX_LISTED else ""
        unchecked = f" ({_count(len(skipped), *_PACKAGE)} not audited)" if skipped else ""
        line = (
            f"audit: {_count(len(found), 'vulnerability', 'vulnerabilities')} in "
            f"{_count(len(hit), *_PACKAGE)}{unchecked}: " + "; ".join(found[:_MAX_LISTED]) + more
        )
        return Verdict(line, VULNERABLE)
    if skipped:  # only without --strict: pip-audit would have called this a pass
        first = skipped[0]
        reason = (
            f"{len(skipped)} of {len(dependencies)} packages could not be audited "
            f"(first: {first['name']}: {first['skip_reason']})"
        )
        return Verdict(f"audit: NOT RUN — service {service}: {_shorten(reason)}", NOT_RUN)
    if run.returncode != 0 or not dependencies:
        reason = f"pip-audit exited {run.returncode} with {len(dependencies)} packages audited"
        reason += f" ({_failure(run.stderr)})"
        return Verdict(f"audit: NOT RUN — service {service}: {_shorten(reason)}", NOT_RUN)
    return Verdict(
        f"audit: clean ({_count(len(dependencies), *_PACKAGE)}, service {service})", CLEAN
    )


def locked_requirements(uv: Sequence[str], folder: Path) -> Path:
    """``uv export`` of the main dependencies (no dev extra, no project) from ``uv.lock``."""
    path = folder / "locked-requirements.txt"
    command = [*uv, "export", "--frozen", "--no-hashes", "--no-emit-project", "-o", str(path)]
    done = subprocess.run(  # noqa: S603 - uv from the Makefile, argv list
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"uv export failed: {_failure(done.stderr)}")
    return path


def run_audit(
    files: Sequence[Path],
    service: str,
    *,
    osv_url: str | None = None,
    timeout: float = 15,
    cache_dir: Path | None = None,
) -> Verdict:
    """Run pip-audit on ``files`` and judge it (a run that hangs is NOT RUN too)."""
    command = pip_audit_command(
        files, service, osv_url=osv_url, timeout=timeout, cache_dir=cache_dir
    )
    try:
        done = subprocess.run(  # noqa: S603 - the venv's pip-audit, argv list
            command, capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired:
        return Verdict(f"audit: NOT RUN — service {service}: pip-audit ran over 600 s", NOT_RUN)
    except OSError as exc:  # pip-audit not installed: `make setup` installs the dev extra
        return Verdict(f"audit: NOT RUN — cannot start pip-audit: {exc}", NOT_RUN)
    return verdict(AuditRun(done.returncode, done.stdout, done.stderr), service)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the verdict line; exit 0 clean, 1 vulnerabilities, 3 not run."""
    parser = argparse.ArgumentParser(prog="python -m deploy.audit", description=__doc__)
    parser.add_argument("-s", "--service", choices=SERVICES, default="pypi")
    parser.add_argument("--osv-url", help="OSV's query URL (a mirror); default: OSV's own")
    parser.add_argument("--timeout", type=float, default=15, help="seconds per request")
    parser.add_argument(
        "-r",
        "--requirement",
        type=Path,
        action="append",
        help="audit this pinned file instead of uv.lock's export and the bento's requirements",
    )
    parser.add_argument("--cache-dir", type=Path, help="pip-audit's HTTP cache (default: its own)")
    parser.add_argument("--uv", default="uv", help="how to call uv (e.g. 'python3 -m uv')")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="finsimples-audit-") as folder:
        files = args.requirement
        if not files:
            try:
                files = [locked_requirements(args.uv.split(), Path(folder)), BENTO_REQUIREMENTS]
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
                result = Verdict(f"audit: NOT RUN — cannot export uv.lock: {exc}", NOT_RUN)
                print(result.line, flush=True)
                return result.exit_code
        result = run_audit(
            files,
            args.service,
            osv_url=args.osv_url,
            timeout=args.timeout,
            cache_dir=args.cache_dir,
        )
    print(result.line, flush=True)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
