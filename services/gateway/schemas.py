"""Response and request bodies of the public API (field names are the seed contract's)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    create_model,
    model_validator,
)

from shared.connector_commands import CommandState
from shared.contracts import ChannelId
from shared.credentials import Kind, missing_credentials
from shared.reports import LINK_FIELDS, LINK_FIELDS_ALWAYS_SET, REPORT_METRICS, MetricField, ReportStatus
from shared.sale_row_json import cents, utc_text
from shared.sale_rows import ActionStatus
from shared.source_reports import SourceKind, SourceStatus


def _exact(value: Decimal) -> float:
    return float(value)


UtcDatetime = Annotated[datetime, PlainSerializer(utc_text, return_type=str)]
Number2 = Annotated[Decimal, PlainSerializer(cents, return_type=float)]
# An exchange rate is shown as stored: rounding 0.615 roubles per yen to 0.62 would change it.
RateNumber = Annotated[Decimal, PlainSerializer(_exact, return_type=float)]
MAX_LINK_CHARS = 500  # longest invite link a cost may be set for
MAX_LINK_COSTS = 10_000  # links in one PUT .../links/costs
MAX_RATES = 200  # currencies in one PUT .../exchange-rates (ISO 4217 has fewer)


class CreateSalesResponse(BaseModel):
    report_id: str
    status: ReportStatus


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
    object instead of ten parameters one by one, which costs less CPU per request (the figure:
    docs/benchmarks.md, "Figures behind code comments"). OpenAPI still lists each field as its own
    query parameter."""

    status: ActionStatus
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
    kind: SourceKind
    name: str
    status: SourceStatus
    rows: int | None = None
    created_at: UtcDatetime


def _figure_field(metric: MetricField, *, required: bool = False) -> tuple[Any, Any]:
    """A figure of `shared.reports` as a response field: its type by kind, its label as the title,
    its definition and unit as the description (and the Russian words beside them)."""
    unit = f" (unit: {metric.unit.en})" if metric.unit.en else ""
    russian: dict[str, Any] = {"x-label-ru": metric.label_ru, "x-definition-ru": metric.definition_ru}

    def described(**default: Any) -> Any:
        return Field(
            title=metric.label_en, description=metric.definition_en + unit, json_schema_extra=russian, **default
        )

    if metric.kind == "money_by_currency":
        return dict[str, Number2], described(default_factory=dict)
    if metric.kind == "text":
        return list[str], described(default_factory=list)
    if metric.kind == "link":
        return str | None, described()
    value_type: Any = int if metric.kind == "count" else Number2
    if required:
        return value_type, described()
    return value_type | None, described(default=None)


class _ReportHeader(BaseModel):
    """What a report is, apart from its figures."""

    id: str
    name: str
    created_at: UtcDatetime
    channel_id: int
    status: ReportStatus
    budget: Number2
    # SPEC §4.1: the budget's currency and its rates.
    currency: str = Field(description="ISO 4217 code of the budget, profit and every money figure")
    exchange_rates: dict[str, RateNumber] = Field(
        default_factory=dict, description="report-currency units per one unit of each other currency"
    )
    creator_id: int
    error_message: str | None = None
    updated_at: UtcDatetime
    source_reports: list[SourceReportSchema] = Field(default_factory=list)


# The response models take their figures from `shared.reports`, names, words, units and order, so
# a figure added there is documented and served without a second list here. mypy sees the
# hand-written part (a model built at run time is no type to it).
if TYPE_CHECKING:
    ReportSchema = _ReportHeader
    LinkSchema = BaseModel
else:
    ReportSchema = create_model(
        "ReportSchema",
        __base__=_ReportHeader,
        __module__=__name__,
        **{metric.key: _figure_field(metric) for metric in REPORT_METRICS},
    )
    LinkSchema = create_model(
        "LinkSchema",
        __doc__="One invite link's share of a report (SPEC §4.2); `invite_link` null = rows with no link.",
        __module__=__name__,
        **{field.key: _figure_field(field, required=field.key in LINK_FIELDS_ALWAYS_SET) for field in LINK_FIELDS},
    )


LinkKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LINK_CHARS)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), max_digits=16, decimal_places=2, allow_inf_nan=False)]
Rate = Annotated[Decimal, Field(gt=0, le=Decimal("1e9"), max_digits=20, decimal_places=10, allow_inf_nan=False)]
CurrencyKey = Annotated[str, StringConstraints(min_length=1, max_length=16)]
LinkCostsBody = Annotated[
    dict[LinkKey, Money],
    Field(
        max_length=MAX_LINK_COSTS,
        description="invite link → what its placement cost, in the report's currency; replaces every cost",
        examples=[{"https://t.me/+AbCdEf": 5000}],
    ),
]
ExchangeRatesBody = Annotated[
    dict[CurrencyKey, Rate],
    Field(
        max_length=MAX_RATES,
        description="currency (ISO 4217 code or symbol) → report-currency units per one unit; replaces every rate",
        examples=[{"BRL": 16.2, "USD": "95"}],
    ),
]


class RecomputePendingSchema(BaseModel):
    """The new inputs are saved; analytics has not applied them yet (read the report again shortly)."""

    detail: str
    report_id: str
    inputs_version: int = Field(description="the version of rates and costs the report will show")


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


# --------------------------------------------------------------------------- connections (routes/connections.py)

MAX_POLL_INTERVAL_SECONDS = 7 * 86_400  # a week between scheduled syncs at most


def _check_poll_interval(seconds: int) -> None:
    if 0 < seconds < 10:
        raise ValueError("poll_interval_seconds must be 0 or at least 10")


class ConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    channel_id: ChannelId
    name: str | None = Field(default=None, max_length=200)
    base_url: str = Field(pattern=r"^https?://[^\s]+$", max_length=500)
    credentials: dict[str, str] = Field(
        description="sweetclub: username, password · eduzz: token · ofd: yandex_key, ofd_key"
    )
    poll_interval_seconds: int = Field(
        default=900, ge=0, le=MAX_POLL_INTERVAL_SECONDS, description="0 = no scheduled polling"
    )
    options: dict[str, str | int | float | bool | list[str]] = Field(
        default_factory=dict,
        description="timezone, page_size, fetch_details, rate_per_second, burst, timeout_seconds, company_ids (ofd)",
    )

    @model_validator(mode="after")
    def _credentials_complete(self) -> ConnectionIn:
        if missing := missing_credentials(self.kind, self.credentials):
            raise ValueError(f"credentials for {self.kind} need {', '.join(missing)}")
        _check_poll_interval(self.poll_interval_seconds)
        return self


class ConnectionPatch(BaseModel):
    """What a user may change on a connection; e.g. new credentials after a static token (Eduzz,
    OFD keys) expired or was rotated — the next sync resumes at its saved cursor."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=500)
    credentials: dict[str, str] | None = Field(default=None, description="the whole set, as on creation")
    poll_interval_seconds: int | None = Field(default=None, ge=0, le=MAX_POLL_INTERVAL_SECONDS)
    options: dict[str, str | int | float | bool | list[str]] | None = None

    @model_validator(mode="after")
    def _interval(self) -> ConnectionPatch:
        if self.poll_interval_seconds is not None:
            _check_poll_interval(self.poll_interval_seconds)
        return self


class ConnectionOut(BaseModel):
    id: str
    kind: Kind
    channel_id: int
    name: str | None
    base_url: str
    poll_interval_seconds: int
    options: dict[str, Any]
    created_at: datetime
    last_synced_at: datetime | None = None
    last_check: dict[str, Any] | None = None


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    report_id: str = Field(min_length=1, max_length=64)
    period_start: date
    period_end: date

    @model_validator(mode="after")
    def _ordered(self) -> AttachIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class SourceReportOut(BaseModel):
    id: str
    report_id: str
    kind: str
    connection_id: str
    period_start: datetime
    period_end: datetime
    status: SourceStatus
    progress: dict[str, Any]
    error_message: str | None = None
    creator_id: int
    channel_id: int
    created_at: datetime


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_report_id: str | None = None


class SyncOut(BaseModel):
    connection_id: str
    source_report_ids: list[str]


class CommandOut(BaseModel):
    request_id: str
    kind: str
    state: CommandState
    result: dict[str, Any] | None = None
    error: str | None = None


class SaleAddIn(BaseModel):
    """The fields of SweetClub's `api/sale/add` (see its document)."""

    model_config = ConfigDict(extra="forbid")

    brand_id: str
    product_type: str
    product_quantity: str
    product_unit: str
    product_price: str
    sale_channel_id: str
    production_date: str | None = None
    delivery_date: str | None = None
    product_in_unit: str | None = None
    not_production_date: str | None = None
    internal_order: str | None = None
    comment: str | None = None
    delivery_type_id: str | None = None
    delivery_address: str | None = None
    delivery_at: str | None = None


class RefundAddIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sale_id: str = Field(min_length=1)
    return_reason_id: str = Field(min_length=1)
    comment: str | None = None


# Answers any authenticated route may give, documented once for every router.
COMMON_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorSchema, "description": "missing, malformed or revoked bearer token"},
    404: {"model": ErrorSchema, "description": "unknown, or belongs to another user"},
    503: {"model": ErrorSchema, "description": "the database or the broker is unavailable; retry"},
}
