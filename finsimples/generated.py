"""Files generated from the settings and committed: write them, or check that they are current.

The rule files, the compose configs and the dashboard are rendered from :class:`Settings`; the
copies in the repository must match. Each generator's ``main`` renders its files and hands them
to :func:`sync_files`: with ``check`` it lists the stale ones and exits 1, otherwise it rewrites
them. A file edited by hand is stale: change the settings, never the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def stale_files(rendered: Mapping[str, str], folder: Path) -> list[str]:
    """The names of ``rendered`` whose file under ``folder`` is missing or differs."""
    return [
        name
        for name, text in rendered.items()
        if not (folder / name).is_file() or (folder / name).read_text() != text
    ]


def sync_files(
    rendered: Mapping[str, str],
    folder: Path,
    *,
    check: bool,
    command: str,
    orphans: Sequence[str] = (),
) -> int:
    """Rewrite the stale files of ``rendered`` under ``folder`` and remove ``orphans``.

    Args:
        rendered: Each file's name under ``folder`` and its text.
        folder: Where the files are.
        check: Only report what is stale (a line each), change nothing.
        command: The command that regenerates them, for the report.
        orphans: Names of files nothing renders any more (removed, or reported with ``check``).

    Returns:
        The exit status: 1 when ``check`` found a stale file, else 0.
    """
    stale = [*stale_files(rendered, folder), *orphans]
    for name in stale:
        path = folder / name
        if check:
            print(f"stale: {path} (run `{command}`)")
        elif name in rendered:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered[name])
            print(f"wrote {path}")
        else:
            path.unlink()
            print(f"removed {path}")
    return 1 if check and stale else 0
