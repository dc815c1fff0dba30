"""Broker wiring shared by every service: the RabbitBroker, the topology, publishing with
confirms and persistence, correlation ids, and dead-lettering with a reason.
"""

from __future__ import annotations

import logging
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from shared import contracts, topology
from shared.logging import correlation_id
from shared.metrics import MESSAGES_DEAD_LETTERED, MESSAGES_REDELIVERED
from shared.rabbit_cluster import publish_with_failover, use_cluster
from shared.settings import Settings

log = logging.getLogger(__name__)

REASON_HEADER = "x-saleswire-reason"


class PermanentError(Exception):
    """A message that can never succeed (bad content, unknown report): dead-letter it at once."""


class _Consume(BaseMiddleware):
    """Per-message scope: binds the correlation id for logs, and turns failures into dead letters.

    - invalid message (schema) or PermanentError → dead-lettered at once with the reason, acked;
    - any other error → re-raised, so the message is requeued (NACK_ON_ERROR); on its last
      allowed delivery it is dead-lettered here with the error as reason. The queue's own
      x-delivery-limit stays as the safety net for consumers that die mid-message.
    """

    dead_letters: DeadLetters

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        token = correlation_id.set(msg.correlation_id or None)
        try:
            deliveries = int((msg.headers or {}).get("x-delivery-count", 0) or 0)
            if deliveries:
                spec = topology.queue_for(_routing_key_of(msg))
                queue = topology.queue_name(self.dead_letters.settings, spec) if spec else _routing_key_of(msg)
                MESSAGES_REDELIVERED.labels(queue=queue).inc()
            try:
                return await call_next(msg)
            except (ValidationError, PermanentError) as exc:
                await self.dead_letters.send(msg, f"{type(exc).__name__}: {exc}")
                return None
            except Exception as exc:
                if deliveries + 1 >= self.dead_letters.settings.delivery_limit:
                    log.exception("message failed on its last delivery, dead-lettering it")
                    await self.dead_letters.send(msg, f"{type(exc).__name__}: {exc}")
                    return None
                log.warning("message failed (delivery %d), will be retried: %r", deliveries + 1, exc)
                raise
        finally:
            correlation_id.reset(token)


def _routing_key_of(msg: StreamMessage[Any]) -> str:
    raw = msg.raw_message
    return str(getattr(raw, "routing_key", "") or "")


class DeadLetters:
    """Middleware factory (FastStream calls it once per message) that can publish dead letters."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: RabbitBroker | None = None

    def __call__(self, msg: Any, /, *, context: Any) -> _Consume:
        scope = _Consume(msg, context=context)
        scope.dead_letters = self
        return scope

    async def send(self, msg: StreamMessage[Any], reason: str) -> None:
        assert self.broker is not None
        routing_key = _routing_key_of(msg)
        headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("x-death")}
        headers[REASON_HEADER] = reason[:4000]
        headers["x-original-routing-key"] = routing_key
        await self.broker.publish(
            msg.body,
            exchange=topology.dead_letter_exchange(self.settings),
            routing_key=routing_key,
            persist=True,
            mandatory=True,
            headers=headers,
            correlation_id=msg.correlation_id,
            message_id=msg.message_id,
            content_type=msg.content_type,
        )
        # Labelled with the DLQ's name, as saleswire_dlq_depth_messages is, so the two line up.
        spec = topology.queue_for(routing_key)
        dlq = topology.dead_letter_queue_name(self.settings, spec) if spec else routing_key
        MESSAGES_DEAD_LETTERED.labels(queue=dlq).inc()
        log.error("dead-lettered message", extra={"routing_key": routing_key, "reason": reason[:500]})


def make_broker(settings: Settings, *, registry: CollectorRegistry = REGISTRY) -> RabbitBroker:
    dead_letters = DeadLetters(settings)
    nodes = settings.rabbit_nodes
    broker = RabbitBroker(
        nodes[0],
        default_channel=Channel(prefetch_count=settings.prefetch_count, on_return_raises=True),
        middlewares=[RabbitPrometheusMiddleware(registry=registry, app_name="saleswire"), dead_letters],
        # A log line per message is a visible share of a consumer's CPU (docs/benchmarks.md,
        # "Figures behind code comments"); keep them at debug.
        log_level=logging.DEBUG,
        reconnect_interval=1.0,
    )
    dead_letters.broker = broker
    use_cluster(broker, nodes)
    return broker


async def declare_topology(broker: RabbitBroker, settings: Settings) -> None:
    """Declare exchanges, every consumer queue and every dead-letter queue, with their bindings.

    Every service does this at start-up, so that a command published before its consumer ever
    ran is still routed (publishes are mandatory) and kept.
    """
    bus = await broker.declare_exchange(topology.bus_exchange(settings))
    dlx = await broker.declare_exchange(topology.dead_letter_exchange(settings))
    for spec in topology.ALL_QUEUES:
        queue = await broker.declare_queue(topology.rabbit_queue(settings, spec))
        await queue.bind(bus, routing_key=spec.routing_key)
        dead = await broker.declare_queue(topology.dead_letter_queue(settings, spec))
        await dead.bind(dlx, routing_key=spec.routing_key)


class Bus:
    """Publishes contracts: persistent, with publisher confirms, commands mandatory."""

    def __init__(self, broker: RabbitBroker, settings: Settings) -> None:
        self.broker = broker
        self.settings = settings

    async def publish(self, message: contracts.Message) -> None:
        kind = type(message)

        async def publish() -> Any:
            return await self.broker.publish(
                message,
                exchange=topology.bus_exchange(self.settings),
                routing_key=topology.ROUTING_KEYS[kind],
                persist=True,
                mandatory=kind in topology.COMMANDS,
                correlation_id=message.correlation_id,
                message_id=message.message_id,
                timeout=10,
            )

        if len(self.settings.rabbit_nodes) == 1:
            await publish()  # one node: nothing to fail over to, the caller answers at once
        else:
            await publish_with_failover(publish, budget_seconds=self.settings.publish_failover_seconds)
