"""What a narrative says: the facts it may use, the deterministic template, the LLM prompt.

The text only restates :class:`ForecastFacts`, numbers formatted per locale (pt-BR, en) and
prices with their currency (``R$ 37,52``, ``US$ 131.85``, see ``finsimples.money``); the
LLM narrator (``bentos.narrator``) sends the same facts with :data:`SYSTEM_PROMPT`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from openai.types.chat import ChatCompletionMessageParam

from finsimples.money import format_money, format_number
from finsimples.schemas import check_ticker

PROMPT_VERSION = "prompt-v1"
LOCALES = ("pt-BR", "en")

_TEXTS = {
    "en": {
        "period": "over the next trading day|over the next {h} trading days",
        "body": "Forecast for {ticker} {period}, with data up to {as_of}. Last price: {last}. "
        "The model's median price at the end of the period is {median}; with {level} "
        "probability it places the price between {low} and {high}. Estimated probability of "
        "a gain: {gain}. Recent annualized volatility: {vol}.",
        "track": "Track record: over the last {window} trading days, {coverage} of actual "
        "prices fell inside the {level} ranges the model served.",
        "no_track": "Track record: not enough history yet to measure how often the model's "
        "ranges held.",
        "disclaimer": "This is a statistical estimate, not investment advice.",
    },
    "pt-BR": {
        "period": "no próximo pregão|nos próximos {h} pregões",
        "body": "Previsão para {ticker} {period}, com dados até {as_of}. Último preço: {last}. "
        "A mediana do modelo para o fim do período é {median}; com {level} de probabilidade, "
        "o modelo situa o preço entre {low} e {high}. Probabilidade estimada de alta: {gain}. "
        "Volatilidade anualizada recente: {vol}.",
        "track": "Histórico: nos últimos {window} pregões, {coverage} dos preços observados "
        "ficaram dentro das faixas de {level} que o modelo forneceu.",
        "no_track": "Histórico: ainda não há dados suficientes para medir com que frequência "
        "as faixas do modelo se confirmaram.",
        "disclaimer": "Esta é uma estimativa estatística, não é recomendação de investimento.",
    },
}
_LANGUAGES = {"en": "English", "pt-BR": "Brazilian Portuguese"}
SYSTEM_PROMPT = (
    "You explain a stock price forecast to a retail investor, in {language}, in at most 120 "
    "words of plain prose (no lists, no headings). Use only the numbers the user gives, written "
    "exactly as given; do not compute new figures. Explain what the range and the median mean, "
    "what the probability of a gain means, how the recent volatility relates to the width of "
    "the range, and what the model's track record says about trusting the range. Never make "
    "your own prediction, never say whether to buy, sell or hold, and give no advice. Do not "
    "add a disclaimer: one is appended to your text."
)


@dataclass(frozen=True)
class ForecastFacts:
    """The numbers a narrative may use, all taken from the model's answer.

    Attributes:
        ticker: The ticker, e.g. ``PETR4``.
        horizon_days: Trading days ahead (1..30).
        as_of: Date of the last price the forecast used.
        last_price: That price.
        median_price: Median forecast price at the horizon.
        low_price: Lower bound of the interval at the horizon.
        high_price: Upper bound of the interval at the horizon.
        interval_level: Nominal coverage of the interval, e.g. 0.90.
        prob_gain: Probability that the price at the horizon is above ``last_price``.
        annual_volatility: Recent annualized volatility, e.g. 0.31 for 31%.
        model_version: The model version that produced the numbers (for the cache key).
        recent_coverage: Realized share of the prices inside the intervals served over the
            track record's window (pooled over tickers and model versions, see
            ``finsimples.track_record``); None when there is not enough history.
        coverage_window_days: Trading days of that window (set with ``recent_coverage``).
        locale: ``pt-BR`` or ``en``.
        currency: ISO code of the prices (``BRL``, ``USD``); None: bare numbers.
    """

    ticker: str
    horizon_days: int
    as_of: date
    last_price: float
    median_price: float
    low_price: float
    high_price: float
    interval_level: float
    prob_gain: float
    annual_volatility: float
    model_version: str
    recent_coverage: float | None = None
    locale: str = "pt-BR"
    coverage_window_days: int | None = None
    currency: str | None = None

    def __post_init__(self) -> None:
        # The ticker goes into the LLM prompt and the narrative cache key: never an unchecked one.
        check_ticker(self.ticker)
        checks = {
            "locale": (self.locale in LOCALES, f"one of {LOCALES}"),
            "horizon_days": (self.horizon_days >= 1, ">= 1"),
            "last_price": (self.last_price > 0, "> 0"),
            "low_price": (0 < self.low_price <= self.median_price, "0 < low <= median"),
            "high_price": (self.median_price <= self.high_price, ">= median_price"),
            "interval_level": (0 < self.interval_level < 1, "between 0 and 1"),
            "prob_gain": (0 <= self.prob_gain <= 1, "between 0 and 1"),
            "annual_volatility": (self.annual_volatility >= 0, ">= 0"),
        }
        if self.recent_coverage is not None:
            checks["recent_coverage"] = (0 <= self.recent_coverage <= 1, "between 0 and 1")
            window = self.coverage_window_days
            checks["coverage_window_days"] = (window is not None and window >= 1, ">= 1")
        for field, (ok, expected) in checks.items():
            value = getattr(self, field)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ValueError(f"ForecastFacts.{field}={value!r}: expected {expected}")


@dataclass(frozen=True)
class Narrative:
    """A narrative and who wrote it: ``"{llm model}/{PROMPT_VERSION}"`` or ``"template"``.

    ``fallback``: the template wrote it because the LLM could not (failure, quota, deadline);
    such answers are cached briefly, so the LLM's text replaces them soon. It says how long to
    keep the text, not what it is, so equality ignores it.
    """

    text: str
    narrator: str
    fallback: bool = dataclasses.field(default=False, compare=False)


class Narrator(Protocol):
    """Anything that writes a narrative by an absolute ``time.monotonic()`` deadline."""

    def narrate(self, facts: ForecastFacts, deadline: float) -> Narrative:
        """The narrative of ``facts``."""
        ...


def format_percent(fraction: float, locale: str) -> str:
    """``0.052`` as ``5.2%`` (en) or ``5,2%`` (pt-BR); whole numbers without decimals (``90%``)."""
    percent = round(fraction * 100, 1)
    return format_number(percent, locale, 0 if percent.is_integer() else 1) + "%"


def _fields(facts: ForecastFacts) -> dict[str, str]:
    loc = facts.locale
    one, many = _TEXTS[loc]["period"].split("|")
    return {
        "ticker": facts.ticker,
        "period": one if facts.horizon_days == 1 else many.format(h=facts.horizon_days),
        "as_of": facts.as_of.strftime("%d/%m/%Y" if loc == "pt-BR" else "%Y-%m-%d"),
        "last": format_money(facts.last_price, facts.currency, loc),
        "median": format_money(facts.median_price, facts.currency, loc),
        "low": format_money(facts.low_price, facts.currency, loc),
        "high": format_money(facts.high_price, facts.currency, loc),
        "level": format_percent(facts.interval_level, loc),
        "gain": format_percent(facts.prob_gain, loc),
        "vol": format_percent(facts.annual_volatility, loc),
        "coverage": format_percent(facts.recent_coverage or 0.0, loc),
        "window": str(facts.coverage_window_days or 0),
    }


def build_messages(facts: ForecastFacts) -> list[ChatCompletionMessageParam]:
    """The chat messages for ``facts``: the system prompt and the numbers, formatted per locale."""
    f = _fields(facts)
    track = (
        f"{f['coverage']} of actual prices fell inside its {f['level']} ranges"
        if facts.recent_coverage is not None
        else "not enough history yet"
    )
    facts_text = "\n".join(
        [
            f"ticker: {f['ticker']}",
            f"horizon: {facts.horizon_days} trading days",
            f"data as of: {f['as_of']}",
            f"last price: {f['last']}",
            f"median price at the horizon: {f['median']}",
            f"{f['level']} range at the horizon: {f['low']} to {f['high']}",
            f"probability of a gain: {f['gain']}",
            f"recent annualized volatility: {f['vol']}",
            f"model track record over the last {f['window']} trading days: {track}"
            if facts.recent_coverage is not None
            else f"model track record: {track}",
        ]
    )
    system = SYSTEM_PROMPT.format(language=_LANGUAGES[facts.locale])
    return [{"role": "system", "content": system}, {"role": "user", "content": facts_text}]


class TemplateNarrator:
    """Deterministic text that only restates the numbers, with the disclaimer."""

    name = "template"

    def render(self, facts: ForecastFacts) -> str:
        """The template text of ``facts`` in ``facts.locale``."""
        texts, fields = _TEXTS[facts.locale], _fields(facts)
        track = texts["track" if facts.recent_coverage is not None else "no_track"]
        parts = (texts["body"], track, texts["disclaimer"])
        return " ".join(part.format(**fields) for part in parts)

    def narrate(self, facts: ForecastFacts, deadline: float | None = None) -> Narrative:
        """The template narrative; ``deadline`` is ignored (rendering takes microseconds)."""
        return Narrative(self.render(facts), self.name)


def disclaimer(locale: str) -> str:
    """The line every narrative ends with, whoever wrote the rest."""
    return _TEXTS[locale]["disclaimer"]
