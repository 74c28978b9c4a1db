"""The consoles every command prints to, and the one way a command fails."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print an error and return the exit to raise."""
    err.print("[bold red]error:[/]", end=" ")
    err.print(message, markup=False, highlight=False)
    return typer.Exit(code=1)


def steps() -> Progress:
    """A spinner-less progress line on stderr that names the step under way."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
