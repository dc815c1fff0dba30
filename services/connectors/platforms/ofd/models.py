"""Yandex OFD sales report payloads (seed: yandex-ofd-sales-report.txt). The document says
elements may be missing and undocumented service fields may appear, so every field is optional
and extras are kept."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from services.connectors.platforms.base.quirks import EMPTY_IS_NONE, ApiModel, LooseInt, Money, Text

DEFAULT_DOCUMENT_TYPES = ("receipt", "receiptCorrection", "bso", "bsoCorrection")
DocumentType = Literal[
    "fiscalReport",
    "fiscalReportCorrection",
    "openShift",
    "closeShift",
    "receipt",
    "receiptCorrection",
    "bso",
    "bsoCorrection",
    "currentStateReport",
    "closeArchive",
]
OperationType = Literal["income", "income_return", "outcome", "outcome_return"]
TaxationType = Literal["osn", "usn_income", "usn_income_wo_expenditure", "esn_agricultural", "psn"]
Interval = Literal["day", "week", "month"]
ORDER_KEYS = frozenset(
    {
        "date",
        "income",
        "income_return",
        "cash",
        "ecash",
        "checks",
        "checks_income",
        "avg_receipt",
        "outcome",
        "outcome_return",
    }
)


class Amounts(ApiModel):
    prepaid: Money | None = None
    cashTotal: Money | None = None  # noqa: N815 - the API's name
    credit: Money | None = None
    ecashTotal: Money | None = None  # noqa: N815 - the API's name
    provision: Money | None = None
    # Authoritative: the payment-kind parts may not add up to it (see the seed's example: 630 vs 631).
    total: Money | None = None


class Totals(ApiModel):
    income: Annotated[Amounts | None, EMPTY_IS_NONE] = None
    income_return: Annotated[Amounts | None, EMPTY_IS_NONE] = None
    outcome: Annotated[Amounts | None, EMPTY_IS_NONE] = None
    outcome_return: Annotated[Amounts | None, EMPTY_IS_NONE] = None
    checks: LooseInt | None = None
    checks_income: LooseInt | None = None
    income_avg: Money | None = None
    date_from: Text | None = None
    date_to: Text | None = None


class IntervalRow(Totals):
    start: Text | None = None
    end: Text | None = None


class SalesReport(ApiModel):
    # Read one by one by the puller: one unreadable interval must not make the page unreadable.
    data: list[Any] = Field(default_factory=list)
    full: Annotated[Totals | None, EMPTY_IS_NONE] = None
    total: LooseInt | None = None


class SalesQuery(BaseModel):
    """The request body, every documented filter."""

    date_from: str
    date_to: str
    limit: int | None = None
    offset: int | None = None
    company_ids: list[str] | None = None
    retail_point_ids: list[str] | None = None
    cashbox_ids: list[str] | None = None
    document_types: list[DocumentType] | None = None
    operation_types: list[OperationType] | None = None
    taxation_types: list[TaxationType] | None = None
    interval: Interval | None = None
    orders: list[str] | None = None

    def body(self) -> dict[str, Any]:
        for order in self.orders or ():
            if order.lstrip("-") not in ORDER_KEYS:
                raise ValueError(f"unknown order {order!r}")
        return self.model_dump(exclude_none=True)
