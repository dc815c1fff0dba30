"""Response and request bodies of the public API (field names are the seed contract's)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer


def _iso_z(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _two_decimals(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


UtcDatetime = Annotated[datetime, PlainSerializer(_iso_z, return_type=str)]
Number2 = Annotated[Decimal, PlainSerializer(_two_decimals, return_type=float)]


class CreateSalesResponse(BaseModel):
    report_id: str
    status: str


class CellErrorSchema(BaseModel):
    sheet: str | None = None
    row: int | None = Field(None, description="1-based Excel row; null for a file-level error")
    column: str | None = None
    cell: str | None = Field(None, description="Excel cell reference, e.g. K12")
    value: str | None = None
    code: str
    message: str


class SalesExceptionSchema(BaseModel):
    detail: str
    errors: list[CellErrorSchema]


class ErrorSchema(BaseModel):
    detail: str


class ReportListItem(BaseModel):
    id: str
    name: str
    created_at: UtcDatetime
    channel_id: int


SaleOrderBy = Literal[
    "user_id", "name", "product", "purchase_amount", "username", "is_premium", "status",
    "sub_date", "unsub_date", "action_date", "action_period", "row",
]  # fmt: skip
MAX_LIMIT = 1000  # documented maximum page size of every listing


class SalesListingQuery(BaseModel):
    """The query string of the sales listing, validated as one model: FastAPI then validates one
    object instead of ten parameters one by one (~30 µs less per request on an in-process probe app).
    OpenAPI still lists each field as its own query parameter."""

    status: Literal["lead", "sale", "funnel"]
    product: str | None = Field(None, max_length=500)
    is_premium: bool | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    is_null_invite_link: bool | None = None
    order_by: SaleOrderBy | None = None
    order_dir: Literal["asc", "desc"] = "asc"
    limit: int = Field(10, ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")
    offset: int = Field(0, ge=0, le=10_000_000)


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report_id: str = Field(min_length=1, max_length=64)


class SourceReportSchema(BaseModel):
    id: str
    kind: str
    name: str
    status: str
    rows: int | None = None
    created_at: UtcDatetime


class ReportSchema(BaseModel):
    id: str
    name: str
    created_at: UtcDatetime
    channel_id: int
    status: Literal["pending", "processing", "success", "failed"]
    budget: Number2
    profit: Number2 | None = None
    creator_id: int
    error_message: str | None = None
    updated_at: UtcDatetime
    subs: int | None = None
    sales: int | None = None
    leads: int | None = None
    funnel: int | None = None
    avg_sale: Number2 | None = None
    avg_funnel: Number2 | None = None
    avg_lead: Number2 | None = None
    premium_percent: Number2 | None = None
    username_percent: Number2 | None = None
    source_reports: list[SourceReportSchema] = Field(default_factory=list)
    romi: Number2 | None = None
    cpf: Number2 | None = None
    cpl: Number2 | None = None
    cac: Number2 | None = None
    cpc: Number2 | None = None
    cr_leads: Number2 | None = None
    cr_sales: Number2 | None = None
    cr_funnel: Number2 | None = None


class SaleRowSchema(BaseModel):
    user_id: int | None
    name: str | None = None
    product: str | None = None
    purchase_amount: Number2 | None = None
    username: str | None = None
    photo_url: str | None = None
    is_premium: bool = False
    phone_number: str | None = None
    birthdate: date | None = None
    status: str | None = None
    sub_date: UtcDatetime | None = None
    unsub_date: UtcDatetime | None = None
    action_date: UtcDatetime | None = None
    action_period: Number2 | None = Field(None, description="action_date − sub_date in days")
    invite_link: str | None = None


# Answers any authenticated route may give, documented once for every router.
COMMON_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorSchema, "description": "missing, malformed or revoked bearer token"},
    404: {"model": ErrorSchema, "description": "unknown, or belongs to another user"},
    503: {"model": ErrorSchema, "description": "the database or the broker is unavailable; retry"},
}
