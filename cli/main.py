"""The ``finsimples`` command line: the app assembled from one module per command group.

Each group lives beside this module, named after who uses it: ``cli.data`` (ingest, lake, feed),
``cli.models`` (train, backtest, promote, rollback, models), ``cli.serving`` (predict, api-key),
``cli.flows``, ``cli.stack``, ``cli.deploy``, ``cli.monitoring`` and ``cli.loadtest``. Settings are
built in each command; :func:`main` turns bad settings into what to fix.
"""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from pydantic_settings.exceptions import SettingsError

from cli import data, models, serving
from cli.console import err
from cli.deploy import deploy_app
from cli.flows import flows_app
from cli.loadtest import loadtest_command
from cli.monitoring import monitor_app
from cli.stack import stack_app
from finsimples.environment import describe_settings_error
from finsimples.settings import Settings
from finsimples.tables import LakeError

app = typer.Typer(
    help="FinSimples: calibrated price-range forecasts. Data, training, registry and serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Typer lists commands, then groups, each in the order they are added here.
app.command("loadtest")(loadtest_command)
app.command()(data.ingest)
app.command()(models.train)
app.command()(models.backtest)
app.command()(models.promote)
app.command()(models.rollback)
app.command()(serving.predict)
app.add_typer(data.lake_app, name="lake")
app.add_typer(stack_app, name="stack")
app.add_typer(deploy_app, name="deploy")
app.add_typer(monitor_app, name="monitor")
app.add_typer(serving.api_key_app, name="api-key")
app.add_typer(models.models_app, name="models")
app.add_typer(flows_app, name="flows")
app.add_typer(data.feed_app, name="feed")


def main() -> None:
    """The ``finsimples`` command: :data:`app`, with bad settings told as what to fix.

    Every command builds its ``Settings`` from the environment and ``.env``; a misspelt or
    invalid ``FINSIMPLES_*`` variable then ends the command with exit code 2 and one line per
    problem (never a traceback, never a secret's value).
    """
    try:
        app()
    except LakeError as exc:  # an unmigrated lake, or a commit that kept losing its race
        err.print("[bold red]error:[/]", end=" ")
        err.print(str(exc), markup=False, highlight=False)
        sys.exit(1)
    except (ValidationError, SettingsError) as exc:
        if isinstance(exc, ValidationError) and exc.title != Settings.__name__:
            raise
        err.print("[bold red]error:[/] the settings are invalid:")
        err.print(describe_settings_error(exc, Settings), markup=False, highlight=False)
        sys.exit(2)
