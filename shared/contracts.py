"""Message contracts: every command and event that crosses the broker.

Each message carries a schema version, a message id (consumers use it, or the ids inside it,
for idempotency) and a correlation id that follows one piece of work from the HTTP request
through every service and into the logs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.currency import normalise_currency
from shared.logging import correlation_id
from shared.sale_rows import ActionStatus

ChannelId = Annotated[int, Field(ge=-(2**63), le=2**63 - 1, description="Telegram chat id (64-bit signed)")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=512)]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid4().hex


def _current_correlation_id() -> str:
    """The correlation id of the work in progress (HTTP request or consumed message), so every
    message published on its behalf carries it without each publisher passing it along."""
    return correlation_id.get() or uuid4().hex


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    message_id: str = Field(default_factory=_new_id)
    correlation_id: str = Field(default_factory=_current_correlation_id)
    occurred_at: datetime = Field(default_factory=_now)


# --------------------------------------------------------------------------- commands


class UploadExcel(Message):
    """Gateway → ingest: parse the stored workbook of one source report."""

    kind: Literal["upload_excel"] = "upload_excel"
    report_id: str
    source_report_id: str
    file_id: str
    filename: str
    creator_id: int
    channel_id: ChannelId
    timezone: str = "UTC"
    # The report's currency (ISO 4217): the currency of amounts that name none of their own.
    currency: str = "RUB"


class RecomputeReport(Message):
    """Gateway → analytics: the report's exchange rates or link costs changed (already saved on the
    report, with `inputs_version` incremented); recompute it from its stored totals, without
    reading its rows again, and save the figures with `applied_inputs_version`."""

    kind: Literal["recompute_report"] = "recompute_report"
    report_id: str
    reason: Literal["exchange_rates", "link_costs"]
    inputs_version: int = Field(ge=0)


class SyncConnection(Message):
    """Gateway or scheduler → connectors: pull sales of one connection into one source report."""

    kind: Literal["sync_connection"] = "sync_connection"
    connection_id: str
    source_report_id: str | None = None


class CheckConnection(Message):
    """Gateway → connectors: make one live call with a connection's credentials."""

    kind: Literal["check_connection"] = "check_connection"
    connection_id: str
    request_id: str


class SweetClubSaleItem(BaseModel):
    product_id: str
    quantity: int = Field(ge=1)
    price: Decimal | None = None


class SweetClubSaleAdd(Message):
    """Gateway → connectors: create a sale on SweetClub through a connection."""

    kind: Literal["sweetclub_sale_add"] = "sweetclub_sale_add"
    connection_id: str
    request_id: str
    payload: dict[str, str]


class SweetClubRefundAdd(Message):
    """Gateway → connectors: refund a SweetClub sale through a connection."""

    kind: Literal["sweetclub_refund_add"] = "sweetclub_refund_add"
    connection_id: str
    request_id: str
    payload: dict[str, str]


# --------------------------------------------------------------------------- events


SaleStatus = ActionStatus  # what a publisher may report: the statuses of SPEC §3


class RecordedSale(BaseModel):
    """One sale as another system reports it (the public `sale recorded` event, version 1)."""

    model_config = ConfigDict(extra="forbid")

    external_id: NonEmpty = Field(description="The publisher's id of the sale; re-sending it updates the sale")
    user_id: int | None = Field(default=None, description="Telegram user id of the buyer, if known")
    status: SaleStatus = "sale"
    purchase_amount: Decimal | None = Field(default=None, ge=0)
    product: str | None = None
    name: str | None = None
    username: str | None = None
    is_premium: bool = False
    sub_date: datetime | None = None
    action_date: datetime | None = None
    invite_link: str | None = None
    currency: str | None = Field(
        default=None,
        description="ISO 4217 code or symbol (₽, руб, R$, $, €) of purchase_amount; default: the report's currency",
    )

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str | None) -> str | None:
        # An unknown code fails validation, so the message is dead-lettered with the reason.
        return None if value is None else normalise_currency(value)


class SaleRecorded(Message):
    """Any system → ingest: sales to add to a report of a channel, in a batch (≤ 1000 per message)."""

    kind: Literal["sale_recorded"] = "sale_recorded"
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: NonEmpty = Field(description="Name of the publishing system; sales are keyed by (source, external_id)")
    report_id: str
    channel_id: ChannelId
    sales: list[RecordedSale] = Field(min_length=1, max_length=1000)


class SalesIngested(Message):
    """Ingest or connectors → analytics: rows of a report changed; recompute it."""

    kind: Literal["sales_ingested"] = "sales_ingested"
    report_id: str
    source_report_id: str
    rows: int
    # False for a progress announcement while the source is still being read (a long sync):
    # analytics may space those out; the source's last event is always settled.
    settled: bool = True
    # The report's rows version after this write (`shared.report_versions`): analytics skips
    # the event once a recompute that read this version or a later one is saved. None in
    # messages from an older release: those always recompute.
    rows_version: int | None = None


class ReportUpdated(Message):
    kind: Literal["report_updated"] = "report_updated"
    report_id: str
    status: Literal["success"] = "success"


class ReportFailed(Message):
    kind: Literal["report_failed"] = "report_failed"
    report_id: str
    error_message: str
