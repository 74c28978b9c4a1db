"""The investor page in a real headless Chromium (Debian's /usr/bin/chromium, via Playwright).

The API replicas are the API tier's session stack (``tests/integration/api/conftest.py``): its
fixtures are imported here. Run together with that tier in one session, pytest starts that
stack once per folder (fixtures are per conftest), so run this folder on its own when the box
is busy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.api.conftest import (  # noqa: F401  (fixtures)
    api_stack,
    model_registry,
    replica_a,
    replica_b,
)

CHROMIUM = Path("/usr/bin/chromium")
ASSETS = Path(__file__).with_name("assets")
AXE = ASSETS / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session; Playwright never downloads a browser here."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail("chromium missing: run deploy/install-system-deps.sh (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()
