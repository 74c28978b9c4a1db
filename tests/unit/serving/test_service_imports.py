"""`bentoml serve`'s supervisor imports the service module: it must stay free of heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("pandas", "numpy", "scipy", "xgboost", "sklearn", "pyarrow", "mlflow", "redis", "openai")


def test_the_service_module_imports_no_heavy_library() -> None:
    probe = (
        "import json, sys; import bentos.service; "
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
