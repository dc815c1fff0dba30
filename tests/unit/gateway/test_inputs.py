"""The pure checks of a report's currency and rates (services.gateway.inputs): what becomes a 422,
in FastAPI's own error shape, and what is normalised."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.exceptions import RequestValidationError

from services.gateway import inputs


def error_of(exc: pytest.ExceptionInfo[RequestValidationError]) -> tuple[tuple[object, ...], str]:
    [error] = exc.value.errors()
    return tuple(error["loc"]), str(error["msg"])


def test_creation_currency_normalises_codes_and_symbols_and_defaults_to_the_setting() -> None:
    assert inputs.creation_currency(None, "RUB") == "RUB"
    assert inputs.creation_currency("  ", "eur") == "EUR"
    assert inputs.creation_currency("R$", "RUB") == "BRL"
    assert inputs.creation_currency("₽", "USD") == "RUB"
    with pytest.raises(RequestValidationError) as exc:
        inputs.creation_currency("монеты", "RUB")
    loc, message = error_of(exc)
    assert loc == ("query", "currency") and "ISO 4217" in message


def test_creation_rates_parse_and_refuse_the_reports_own_currency() -> None:
    assert inputs.creation_rates(None, "RUB") == {}
    assert inputs.creation_rates("BRL:16.20,$:95", "RUB") == {"BRL": Decimal("16.20"), "USD": Decimal("95")}
    for text, needle in (
        ("RUB:1", "own currency"),
        ("USD95", "CODE:RATE"),
        ("USD:0", "positive"),
        ("USD:1,$:2", "twice"),
    ):
        with pytest.raises(RequestValidationError) as exc:
            inputs.creation_rates(text, "RUB")
        loc, message = error_of(exc)
        assert loc == ("query", "rates") and needle in message, (text, message)
    assert inputs.creation_rates("RUB:60", "USD") == {"RUB": Decimal("60")}  # a USD report may rate roubles


def test_normalise_rates_names_the_offending_key() -> None:
    assert inputs.normalise_rates({"usd": Decimal("95"), "R$": Decimal("16.2")}, "RUB") == {
        "USD": Decimal("95"), "BRL": Decimal("16.2")
    }  # fmt: skip
    assert inputs.normalise_rates({}, "RUB") == {}
    for body, key, needle in (
        ({"USD": Decimal(1), "$": Decimal(2)}, "$", "given twice"),
        ({"руб": Decimal(1)}, "руб", "own currency"),
        ({"QQQ": Decimal(1)}, "QQQ", "ISO 4217"),
    ):
        with pytest.raises(RequestValidationError) as exc:
            inputs.normalise_rates(body, "RUB")
        loc, message = error_of(exc)
        assert loc == ("body", key) and needle in message
