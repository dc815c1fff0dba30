"""Broker topology: one topic exchange for all traffic, one dead-letter exchange, and a quorum
queue per consumer with a delivery limit and a dead-letter queue beside it.

Names are prefixed with `Settings.namespace` so that several stacks (a demo, a test run) can
share one RabbitMQ without seeing each other's messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from shared import contracts
from shared.settings import Settings

# Routing key of every message type. Commands must reach a queue (published mandatory);
# events may have no listener yet.
ROUTING_KEYS: dict[type[contracts.Message], str] = {
    contracts.UploadExcel: "command.upload_excel",
    contracts.SyncConnection: "command.sync_connection",
    contracts.RecomputeReport: "command.recompute_report",
    contracts.CheckConnection: "command.connectors.check",
    contracts.SweetClubSaleAdd: "command.sweetclub.sale_add",
    contracts.SweetClubRefundAdd: "command.sweetclub.refund_add",
    contracts.SaleRecorded: "event.sale_recorded",
    contracts.SalesIngested: "event.sales_ingested",
    contracts.ReportUpdated: "event.report_updated",
    contracts.ReportFailed: "event.report_failed",
}
COMMANDS: frozenset[type[contracts.Message]] = frozenset(
    {
        contracts.UploadExcel,
        contracts.SyncConnection,
        contracts.RecomputeReport,
        contracts.SweetClubSaleAdd,
        contracts.SweetClubRefundAdd,
    }
)


@dataclass(frozen=True)
class QueueSpec:
    """A consumer queue: its short name and the routing key it is bound with."""

    name: str
    routing_key: str


UPLOAD_EXCEL = QueueSpec("ingest.upload-excel", ROUTING_KEYS[contracts.UploadExcel])
SALE_RECORDED = QueueSpec("ingest.sale-recorded", ROUTING_KEYS[contracts.SaleRecorded])
SALES_INGESTED = QueueSpec("analytics.sales-ingested", ROUTING_KEYS[contracts.SalesIngested])
RECOMPUTE_REPORT = QueueSpec("analytics.recompute-report", ROUTING_KEYS[contracts.RecomputeReport])
SYNC_CONNECTION = QueueSpec("connectors.sync", ROUTING_KEYS[contracts.SyncConnection])
SWEETCLUB_COMMANDS = QueueSpec("connectors.sweetclub", "command.sweetclub.*")
CHECK_CONNECTION = QueueSpec("connectors.check", ROUTING_KEYS[contracts.CheckConnection])
ALL_QUEUES: tuple[QueueSpec, ...] = (
    UPLOAD_EXCEL,
    SALE_RECORDED,
    SALES_INGESTED,
    RECOMPUTE_REPORT,
    SYNC_CONNECTION,
    SWEETCLUB_COMMANDS,
    CHECK_CONNECTION,
)


def topic_matches(pattern: str, routing_key: str) -> bool:
    """RabbitMQ topic matching: `*` is exactly one word, `#` zero or more."""

    def match(ps: list[str], ks: list[str]) -> bool:
        if not ps:
            return not ks
        if ps[0] == "#":
            return any(match(ps[1:], ks[i:]) for i in range(len(ks) + 1))
        return bool(ks) and ps[0] in ("*", ks[0]) and match(ps[1:], ks[1:])

    return match(pattern.split("."), routing_key.split("."))


def queue_for(routing_key: str) -> QueueSpec | None:
    """The consumer queue a message with this routing key is delivered to (each key has one)."""
    return next((spec for spec in ALL_QUEUES if topic_matches(spec.routing_key, routing_key)), None)


def bus_exchange(settings: Settings) -> RabbitExchange:
    return RabbitExchange(f"{settings.namespace}.bus", type=ExchangeType.TOPIC, durable=True)


def dead_letter_exchange(settings: Settings) -> RabbitExchange:
    return RabbitExchange(f"{settings.namespace}.dlx", type=ExchangeType.TOPIC, durable=True)


def queue_name(settings: Settings, spec: QueueSpec) -> str:
    return f"{settings.namespace}.{spec.name}"


def dead_letter_queue_name(settings: Settings, spec: QueueSpec) -> str:
    return f"{queue_name(settings, spec)}.dlq"


def rabbit_queue(settings: Settings, spec: QueueSpec) -> RabbitQueue:
    """The consumer queue: quorum (replicated, survives restarts), retried up to the delivery
    limit, then dead-lettered with its original routing key."""
    return RabbitQueue(
        queue_name(settings, spec),
        queue_type=QueueType.QUORUM,
        routing_key=spec.routing_key,
        arguments={
            "x-dead-letter-exchange": dead_letter_exchange(settings).name,
            "x-delivery-limit": settings.delivery_limit,
        },
    )


def dead_letter_queue(settings: Settings, spec: QueueSpec) -> RabbitQueue:
    return RabbitQueue(
        dead_letter_queue_name(settings, spec),
        queue_type=QueueType.QUORUM,
        routing_key=spec.routing_key,
    )
