"""Import the pinned registry version into this replica's model store, before it serves.

A Kubernetes pod's ``model-fetch`` init container runs ``python -m bentos.model_fetch`` with
``FINSIMPLES_MODEL_VERSION`` taken from the pod annotation ``finsimples.io/model-version``
(downward API) and ``BENTOML_HOME`` on the volume the API container shares; the API then serves
that version (``bentos.model_store.served_model``). The deploy controller moves the annotation
(``deploy.controller_k8s``), so a promotion reaches the pods as an ordinary rolling update.

Unset or empty, it does nothing and the model packaged in the bento serves, as before. It needs
MLflow, so it runs from the project's image (the bento image holds the serving packages only).
Exit status 1 with the reason when the version cannot be imported: the pod does not start, the
rollout stalls with the old pods serving, and the controller rolls the annotation back.
"""

from __future__ import annotations

import logging
import sys

from finsimples.settings import Settings


def fetch(settings: Settings) -> str | None:
    """Import ``settings.model_version`` into ``BENTOML_HOME``'s store; its tag (None: none
    pinned, nothing to do)."""
    from bentos.model_store import import_champion

    if not settings.model_version:
        return None
    return str(import_champion(settings, version=settings.model_version).tag)


def main() -> int:
    """The init container's command."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings()
    try:
        tag = fetch(settings)
    except Exception as exc:  # the pod must not start on the packaged model by mistake
        print(
            f"model-fetch: cannot import registry version {settings.model_version} of "
            f"{settings.model_name!r}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    if tag is None:
        print("model-fetch: no version pinned (model_version unset): the packaged model serves")
    else:
        print(f"model-fetch: registry version {settings.model_version} imported as {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
