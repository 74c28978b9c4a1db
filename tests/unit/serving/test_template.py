"""The template narrator, number formatting, the facts' validation and the prompt."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from bentos.narrative import (
    ForecastFacts,
    TemplateNarrator,
    build_messages,
    format_number,
    format_percent,
)
from bentos.narrator import LLMNarrator

FACTS = ForecastFacts(
    ticker="PETR4",
    horizon_days=5,
    as_of=date(2024, 3, 1),
    last_price=1234.5,
    median_price=1240.0,
    low_price=12.34,
    high_price=1300.0,
    interval_level=0.9,
    prob_gain=0.052,
    annual_volatility=0.315,
    model_version="7",
    recent_coverage=0.881,
    coverage_window_days=63,
)


def test_pt_br_text_restates_the_numbers_with_comma_decimals() -> None:
    text = TemplateNarrator().render(FACTS)
    assert text == (
        "Previsão para PETR4 nos próximos 5 pregões, com dados até 01/03/2024. "
        "Último preço: 1.234,50. A mediana do modelo para o fim do período é 1.240,00; "
        "com 90% de probabilidade, o modelo situa o preço entre 12,34 e 1.300,00. "
        "Probabilidade estimada de alta: 5,2%. Volatilidade anualizada recente: 31,5%. "
        "Histórico: nos últimos 63 pregões, 88,1% dos preços observados ficaram dentro das "
        "faixas de 90% que o modelo forneceu. "
        "Esta é uma estimativa estatística, não é recomendação de investimento."
    )
    assert "R$" not in text


def test_en_text_restates_the_numbers_with_point_decimals() -> None:
    text = TemplateNarrator().render(replace(FACTS, locale="en"))
    assert text == (
        "Forecast for PETR4 over the next 5 trading days, with data up to 2024-03-01. "
        "Last price: 1,234.50. The model's median price at the end of the period is "
        "1,240.00; with 90% probability it places the price between 12.34 and 1,300.00. "
        "Estimated probability of a gain: 5.2%. Recent annualized volatility: 31.5%. "
        "Track record: over the last 63 trading days, 88.1% of actual prices fell inside the "
        "90% ranges the model served. This is a statistical estimate, not investment advice."
    )


@pytest.mark.parametrize(
    ("locale", "period", "no_track", "disclaimer"),
    [
        ("pt-BR", "no próximo pregão", "ainda não há dados", "não é recomendação"),
        ("en", "over the next trading day", "not enough history", "not investment advice"),
    ],
)
def test_one_day_and_no_track_record(
    locale: str, period: str, no_track: str, disclaimer: str
) -> None:
    facts = replace(FACTS, horizon_days=1, recent_coverage=None, locale=locale)
    narrative = TemplateNarrator().narrate(facts)
    assert narrative.narrator == "template"
    assert period in narrative.text
    assert no_track in narrative.text
    assert disclaimer in narrative.text
    assert narrative == TemplateNarrator().narrate(facts)  # deterministic


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        (12.345, "pt-BR", "12,35"),
        (1234567.891, "pt-BR", "1.234.567,89"),
        (1234567.891, "en", "1,234,567.89"),
        (0.5, "en", "0.50"),
    ],
)
def test_format_number(value: float, locale: str, expected: str) -> None:
    assert format_number(value, locale) == expected


@pytest.mark.parametrize(
    ("fraction", "locale", "expected"),
    [(0.052, "pt-BR", "5,2%"), (0.9, "pt-BR", "90%"), (0.5234, "en", "52.3%"), (1.0, "en", "100%")],
)
def test_format_percent(fraction: float, locale: str, expected: str) -> None:
    assert format_percent(fraction, locale) == expected


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"locale": "fr"}, "locale"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"low_price": 1250.0}, "low_price"),
        ({"high_price": 1000.0}, "high_price"),
        ({"interval_level": 90.0}, "interval_level"),
        ({"prob_gain": float("nan")}, "prob_gain"),
        ({"recent_coverage": 1.5}, "recent_coverage"),
        ({"coverage_window_days": None}, "coverage_window_days"),
    ],
)
def test_facts_are_validated(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"ForecastFacts.{field}="):
        replace(FACTS, **change)  # type: ignore[arg-type]


def test_prompt_holds_only_the_facts_and_forbids_advice() -> None:
    system, user = build_messages(replace(FACTS, locale="en"))
    assert system["role"] == "system"
    assert "English" in str(system["content"])
    for rule in ("Never make your own prediction", "buy, sell or hold", "give no advice"):
        assert rule in str(system["content"])
    for number in ("1,234.50", "1,240.00", "12.34 to 1,300.00", "5.2%", "31.5%", "88.1%"):
        assert number in str(user["content"])
    assert "track record over the last 63 trading days: 88.1% of actual prices" in str(
        user["content"]
    )
    _, bare = build_messages(replace(FACTS, recent_coverage=None, coverage_window_days=None))
    assert "model track record: not enough history yet" in str(bare["content"])


def test_llm_narrator_without_key_writes_the_template() -> None:
    with LLMNarrator(api_key="") as narrator:
        assert narrator.narrate(FACTS, deadline=0.0) == TemplateNarrator().narrate(FACTS)
        assert narrator.counters["template_fallbacks"] == 1
        assert narrator.counters["calls"] == 0


def test_the_template_standing_in_for_the_llm_is_marked() -> None:
    # A configured LLM that cannot answer in time: the template stands in, marked as such.
    with LLMNarrator(api_key="sk-test", base_url="http://127.0.0.1:1/v1") as narrator:
        narrative = narrator.narrate(FACTS, deadline=0.0)
    assert (narrative.narrator, narrative.fallback) == ("template", True)
    assert narrative.text == TemplateNarrator().render(FACTS)
    with LLMNarrator(api_key=None) as narrator:  # no LLM: the template is the narrator
        assert narrator.narrate(FACTS, deadline=0.0).fallback is False
