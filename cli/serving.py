"""Serving commands: ``predict`` (a forecast without a server) and ``api-key ...`` (the keys
the API accepts)."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.console import err, fail, out
from finsimples.settings import Settings

api_key_app = typer.Typer(help="API keys: mint one, keep only its hash.", no_args_is_help=True)


@api_key_app.command("new")
def api_key_new(
    admin: bool = typer.Option(
        False,
        "--admin",
        help="An admin key: the only kind the admin routes (/v1/admin/) accept, and refused "
        "on the client routes.",
    ),
) -> None:
    """Print a new random API key and its SHA-256; the key is shown once and stored nowhere."""
    from bentos.auth import ADMIN_KEY_PREFIX, KEY_PREFIX, generate_api_key

    key, digest = generate_api_key(ADMIN_KEY_PREFIX if admin else KEY_PREFIX)
    variable = "FINSIMPLES_ADMIN_KEY_HASHES" if admin else "FINSIMPLES_API_KEY_HASHES"
    holder = "the deploy (FINSIMPLES_DEPLOY_API_KEY) or the operator" if admin else "the client"
    out.print(f"key:    {key}", markup=False, highlight=False)
    out.print(f"sha256: {digest}", markup=False, highlight=False)
    err.print(
        f"Give the key to {holder}; put only the sha256 in {variable} (a JSON list, e.g. "
        f"'[\"{digest}\"]'), then restart the replicas.",
        markup=False,
        highlight=False,
    )


def predict(
    ticker: str = typer.Argument(..., help="Ticker, e.g. AAPL or PETR4."),
    horizon: int = typer.Option(5, "--horizon", "-h", help="Trading days ahead (1..30)."),
    as_json: bool = typer.Option(False, "--json", help="Print the forecast as JSON."),
    locale: str = typer.Option(
        "en", help="Number format of the table: en (US$ 131.85) or pt-BR (R$ 37,52)."
    ),
) -> None:
    """Forecast a ticker with the champion, locally (no server); dates are the sessions of the
    ticker's exchange, prices in its currency."""
    from finsimples.money import format_money
    from jobs.common import JobError
    from jobs.predict import predict as predict_job

    if locale not in ("en", "pt-BR"):
        raise fail(f"--locale {locale!r}: expected en or pt-BR")

    try:
        forecast, version = predict_job(Settings(), ticker, horizon)
    except JobError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        out.print_json(forecast.model_dump_json())
        return
    lo, hi = sorted(forecast.path[0].prices, key=lambda k: float(k[1:]))[
        :: len(forecast.path[0].prices) - 1
    ]

    def money(value: float) -> str:
        return format_money(value, forecast.currency, locale)

    place = f" ({forecast.exchange}, {forecast.currency})" if forecast.exchange else ""
    table = Table(
        title=f"{forecast.ticker}{place}: last {money(forecast.last_price)} on "
        f"{forecast.as_of}; model v{version}; {forecast.interval:.0%} range",
        title_justify="left",
    )
    for column in ("day", "date", f"low ({lo})", "median", f"high ({hi})", "P(gain)"):
        table.add_column(column, justify="right")
    for point in forecast.path:
        table.add_row(
            str(point.day),
            str(point.date),
            money(point.prices[lo]),
            money(point.prices["q0.5"]),
            money(point.prices[hi]),
            f"{point.prob_gain:.0%}",
        )
    out.print(table)
