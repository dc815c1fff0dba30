"""Domain: what a report's figures depend on besides its rows — budget, currency, exchange rates,
link costs — read from the report document as the gateway stores them. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bson import Decimal128


def _decimal(value: Any) -> Decimal:
    return value.to_decimal() if isinstance(value, Decimal128) else Decimal(str(value))


@dataclass(frozen=True)
class ReportInputs:
    budget: Decimal
    currency: str
    exchange_rates: dict[str, Decimal]  # report-currency units per unit (never the report's own)
    link_costs: dict[str, Decimal]  # per invite link, in the report's currency
    version: int  # `inputs_version`: incremented by every change of rates or costs

    @classmethod
    def of(cls, report: Mapping[str, Any], default_currency: str) -> ReportInputs:
        rates = report.get("exchange_rates") or {}
        costs = report.get("link_costs") or {}
        currency = str(report.get("currency") or default_currency)
        return cls(
            budget=_decimal(report.get("budget") or 0),
            currency=currency,
            exchange_rates={str(code): _decimal(rate) for code, rate in rates.items() if code != currency},
            link_costs={str(link): _decimal(cost) for link, cost in costs.items()},
            version=int(report.get("inputs_version") or 0),
        )
