"""Numbers and prices as people read them, per locale (pt-BR, en) and currency.

No Babel: two locales and a handful of currencies need a few lines, not a CLDR database.
"""

from __future__ import annotations

CURRENCY_SYMBOLS = {"BRL": "R$", "USD": "US$", "EUR": "€", "GBP": "£"}
"""Symbols as Brazilian readers see them; ``US$`` keeps dollars apart from reais in both locales."""


def format_number(value: float, locale: str, decimals: int = 2) -> str:
    """``1234.5`` as ``1,234.50`` (en) or ``1.234,50`` (pt-BR); no currency symbol."""
    text = f"{value:,.{decimals}f}"
    return text.translate(str.maketrans(",.", ".,")) if locale == "pt-BR" else text


def format_money(value: float, currency: str | None, locale: str, decimals: int = 2) -> str:
    """A price with its currency: ``R$ 37,52`` (pt-BR), ``US$ 131.85`` (en).

    The symbol comes first with a space in both locales; a currency without a known symbol is
    written by its ISO code (``CHF 12.00``); ``None`` (currency not known) gives the bare number.
    """
    number = format_number(value, locale, decimals)
    if currency is None:
        return number
    code = currency.upper()
    symbol = CURRENCY_SYMBOLS.get(code, code)
    if value < 0:
        return f"-{symbol} {number.lstrip('-')}"
    return f"{symbol} {number}"
