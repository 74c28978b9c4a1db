"""Prices per locale and currency: R$ 37,52 in pt-BR, US$ 131.85 in en."""

from __future__ import annotations

import pytest

from finsimples.money import format_money


@pytest.mark.parametrize(
    ("value", "currency", "locale", "expected"),
    [
        (37.52, "BRL", "pt-BR", "R$ 37,52"),
        (131.85, "USD", "en", "US$ 131.85"),
        (131.85, "USD", "pt-BR", "US$ 131,85"),
        (37.52, "BRL", "en", "R$ 37.52"),
        (1234567.891, "BRL", "pt-BR", "R$ 1.234.567,89"),
        (1234567.891, "USD", "en", "US$ 1,234,567.89"),
        (-2.5, "brl", "pt-BR", "-R$ 2,50"),
        (12.0, "CHF", "en", "CHF 12.00"),
        (12.0, None, "pt-BR", "12,00"),
    ],
)
def test_format_money(value: float, currency: str | None, locale: str, expected: str) -> None:
    assert format_money(value, currency, locale) == expected
