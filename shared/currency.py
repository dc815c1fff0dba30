"""Currencies (SPEC §4.1): ISO 4217 codes, the symbols sellers type, and exchange-rate lists. Pure.

Money in different currencies is never added up as if it were one: every sale row keeps its own
currency and original amount, and a report converts with its own `exchange_rates` (report-currency
units per one unit of another currency). The code list is ISO 4217 as `pycountry` ships it (kept
up to date by its maintainers from the ISO data), not a hand-written table.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

import pycountry

# Symbols and words that stand for one currency in Russian and Brazilian exports. `$` alone is the
# US dollar (`R$` is the real); `р.`/`руб.` are how Russian spreadsheets abbreviate the rouble.
SYMBOLS: Final[dict[str, str]] = {
    "₽": "RUB",
    "руб": "RUB",
    "руб.": "RUB",
    "рубль": "RUB",
    "рублей": "RUB",
    "рубля": "RUB",
    "р": "RUB",
    "р.": "RUB",
    "rub": "RUB",
    "r$": "BRL",
    "real": "BRL",
    "reais": "BRL",
    "$": "USD",
    "us$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₸": "KZT",
    "₴": "UAH",
    "₺": "TRY",
}
_CODE: Final = re.compile(r"^[A-Za-z]{3}$")
DEFAULT_CURRENCY: Final = "RUB"


class CurrencyInvalid(ValueError):
    """A currency or a rate list that cannot be read; the message says why."""


@lru_cache(maxsize=512)
def normalise_currency(text: str) -> str:
    """A currency code or symbol as typed (`rub`, `₽`, `руб.`, `R$`, `$`, `EUR`) → ISO 4217 code.
    Raises `CurrencyInvalid` for anything else."""
    cleaned = text.strip()
    symbol = SYMBOLS.get(cleaned.casefold())
    if symbol is not None:
        return symbol
    if _CODE.match(cleaned) and pycountry.currencies.get(alpha_3=cleaned.upper()) is not None:
        return cleaned.upper()
    raise CurrencyInvalid(f"{text!r} is not an ISO 4217 currency code or a known currency symbol")


def is_currency(text: str) -> bool:
    try:
        normalise_currency(text)
    except CurrencyInvalid:
        return False
    return True


def parse_rates(text: str) -> dict[str, Decimal]:
    """`BRL:16.20,USD:95` → {"BRL": Decimal("16.20"), "USD": Decimal("95")}. Each rate is
    report-currency units per one unit of that currency, positive; a currency named twice, an empty
    item or a non-positive rate is an error."""
    rates: dict[str, Decimal] = {}
    if not text.strip():
        return rates
    for item in text.split(","):
        code_text, sep, rate_text = item.partition(":")
        if not sep:
            raise CurrencyInvalid(f"{item.strip()!r} is not CODE:RATE (e.g. BRL:16.20)")
        code = normalise_currency(code_text)
        if code in rates:
            raise CurrencyInvalid(f"{code} is given twice")
        rates[code] = parse_rate(rate_text, code)
    return rates


def parse_rate(value: object, code: str = "") -> Decimal:
    """One exchange rate: a positive finite decimal (`16.20`, `16,20`, 95)."""
    try:
        rate = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation as exc:
        raise CurrencyInvalid(f"the rate of {code or 'a currency'} is not a number: {value!r}") from exc
    if not rate.is_finite() or rate <= 0:
        raise CurrencyInvalid(f"the rate of {code or 'a currency'} must be a positive number, not {value!r}")
    return rate
