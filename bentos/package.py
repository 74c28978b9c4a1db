"""Build the bento: import ``@champion`` into the model store, write the fallback snapshot, build.

``bentoml build`` packages what ``bentofile.yaml`` lists plus the model the service declares,
so both must exist before it runs; this module prepares them from the settings (registry and
lake) and then builds::

    python -m bentos.package                    # import + snapshot + `bentoml build`
    python -m bentos.package --prepare          # import + snapshot; then run `bentoml build`
    python -m bentos.package --snapshot PATH    # write the snapshot elsewhere (not packaged)
    python -m bentos.package --version 7        # a given registry version, not @champion
    python -m bentos.package --prepare --json   # ... and say what was prepared in JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from bentos.fallback import DEFAULT_SNAPSHOT, build_snapshot
from bentos.model_store import import_champion, load_from_store
from bentos.predictor import Predictor
from finsimples.adjustment import JumpRule
from finsimples.lake import Lake
from finsimples.settings import Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` put in place."""

    model_tag: str
    model_version: str
    snapshot: Path
    snapshot_answers: int


def prepare(
    settings: Settings, snapshot: Path = DEFAULT_SNAPSHOT, version: str | None = None
) -> Prepared:
    """Import the champion (or ``version``) into the model store; write its fallback snapshot."""
    model = import_champion(settings, version=version)
    forecaster, info = load_from_store(model)
    predictor = Predictor.load(
        forecaster,
        info,
        Lake.from_settings(settings),
        settings.stale_after_sessions,
        JumpRule.from_settings(settings),
    )
    answers = build_snapshot(predictor, snapshot)
    return Prepared(str(model.tag), info.version, snapshot, answers)


def build(build_ctx: Path = ROOT) -> str:
    """Run ``bentoml build`` on ``bentofile.yaml`` in ``build_ctx``; the bento's tag."""
    import bentoml

    bento = bentoml.bentos.build_bentofile(
        str(build_ctx / "bentofile.yaml"), build_ctx=str(build_ctx)
    )
    return str(bento.tag)


def main(argv: list[str]) -> int:
    """The command line: prepare, then build unless ``--prepare``."""
    parser = argparse.ArgumentParser(prog="python -m bentos.package", description=__doc__)
    parser.add_argument("--prepare", action="store_true", help="import and snapshot only")
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT, help="snapshot file")
    parser.add_argument("--version", help="registry version to package (default: @champion)")
    parser.add_argument("--json", action="store_true", help="print what was prepared as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prepared = prepare(Settings(), args.snapshot, args.version)
    if args.json:
        print(json.dumps({**asdict(prepared), "snapshot": str(prepared.snapshot)}))
    else:
        print(
            f"model {prepared.model_tag} (registry version {prepared.model_version}); "
            f"snapshot {prepared.snapshot} with {prepared.snapshot_answers} answers"
        )
    if not args.prepare:
        print(f"built bento {build()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
