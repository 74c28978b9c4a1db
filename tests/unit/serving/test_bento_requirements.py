"""The bento's requirements file is generated from uv.lock and must not drift from it."""

from __future__ import annotations

from bentos.requirements import REQUIREMENTS, ROOT, SERVING_PACKAGES, locked_closure, render


def test_requirements_match_the_lock_file() -> None:
    expected = render(locked_closure(ROOT / "uv.lock"))
    assert REQUIREMENTS.read_text() == expected, "run `python -m bentos.requirements`"


def test_requirements_hold_the_serving_packages_and_not_the_platform() -> None:
    pinned = locked_closure(ROOT / "uv.lock")
    assert set(SERVING_PACKAGES) <= set(pinned)
    assert not {"mlflow", "prefect", "evidently", "locust", "mapie"} & set(pinned)
