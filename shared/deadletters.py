"""Dead letters: list, replay and discard them, and read the depth of every dead-letter queue.

Every consumer queue of the namespace has a dead-letter queue beside it (`shared.topology`). A
message lands there either from the `DeadLetters` middleware (header `x-saleswire-reason`, plus
`x-original-routing-key`) or from RabbitMQ itself when the quorum queue's delivery limit is hit
(header `x-death` with reason `delivery_limit`, original routing key kept).

- list: looks at dead letters without removing them (they are fetched unacknowledged and returned
  to their queue when the channel closes);
- replay: republishes each selected dead letter to the bus exchange with its original routing key,
  persistent, mandatory, with a publisher confirm, and only then acknowledges the dead letter. A
  crash in between replays it twice at worst, which consumers tolerate (they are idempotent);
- discard: acknowledges (drops) the selected dead letters.

The operator's command line over this library is `python -m cli.deadletters`; the services keep
the depth gauge fresh with `shared.dlq_watch.DlqDepthWatcher`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aiormq.exceptions import ChannelNotFoundEntity

from shared import topology
from shared.broker import REASON_HEADER
from shared.settings import Settings

ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
REPLAYS_HEADER = "x-saleswire-replays"
# Headers that describe the failure, not the message: dropped when the message is replayed.
_FAILURE_HEADERS = (REASON_HEADER, ORIGINAL_ROUTING_KEY_HEADER, "x-delivery-count")
_FAILURE_PREFIXES = ("x-death", "x-first-death-", "x-last-death-")
PREVIEW_CHARS = 500

Action = Literal["list", "replay", "discard"]


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as an operator sees it."""

    queue: str
    message_id: str | None
    correlation_id: str | None
    routing_key: str
    reason: str
    dead_lettered_at: datetime | None
    deliveries: int | None
    size_bytes: int
    preview: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        at = self.dead_lettered_at
        data["dead_lettered_at"] = at.isoformat().replace("+00:00", "Z") if at else None
        return data


class UnknownQueueError(ValueError):
    pass


# --- reading headers -------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return {}


def reason_of(headers: Mapping[str, Any]) -> str:
    """Why the message was dead-lettered: our own reason header, else RabbitMQ's x-death reason."""
    if headers.get(REASON_HEADER):
        return _text(headers[REASON_HEADER])
    death = _first_death(headers)
    if death.get("reason"):
        return _text(death["reason"])
    if headers.get("x-first-death-reason"):
        return _text(headers["x-first-death-reason"])
    return "unknown"


def original_routing_key(headers: Mapping[str, Any], fallback: str) -> str:
    """The routing key the message had on the bus before it was dead-lettered."""
    if headers.get(ORIGINAL_ROUTING_KEY_HEADER):
        return _text(headers[ORIGINAL_ROUTING_KEY_HEADER])
    keys = _first_death(headers).get("routing-keys")
    if isinstance(keys, list | tuple) and keys:
        return _text(keys[0])
    return fallback


def _dead_lettered_at(headers: Mapping[str, Any]) -> datetime | None:
    when = _first_death(headers).get("time")
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def _deliveries(headers: Mapping[str, Any]) -> int | None:
    count = _first_death(headers).get("count")
    if isinstance(count, int):
        return count
    raw = headers.get("x-delivery-count")
    return int(raw) if isinstance(raw, int) else None


def describe(queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    headers: Mapping[str, Any] = message.headers or {}
    body = message.body
    return DeadLetter(
        queue=queue,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        routing_key=original_routing_key(headers, message.routing_key or ""),
        reason=reason_of(headers),
        dead_lettered_at=_dead_lettered_at(headers),
        deliveries=_deliveries(headers),
        size_bytes=len(body),
        preview=body[:PREVIEW_CHARS].decode("utf-8", errors="replace"),
    )


def replay_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers a replayed message carries: the failure bookkeeping removed, a replay count added."""
    kept = {
        key: value
        for key, value in headers.items()
        if key not in _FAILURE_HEADERS and not key.startswith(_FAILURE_PREFIXES)
    }
    previous = headers.get(REPLAYS_HEADER)
    kept[REPLAYS_HEADER] = (previous if isinstance(previous, int) else 0) + 1
    return kept


# --- queues ------------------------------------------------------------------------------------


def resolve_queues(settings: Settings, name: str | None) -> list[topology.QueueSpec]:
    """Every consumer queue of the namespace, or the one `name` designates (short, full or DLQ name)."""
    if name is None:
        return list(topology.ALL_QUEUES)
    for spec in topology.ALL_QUEUES:
        if name in (spec.name, topology.queue_name(settings, spec), topology.dead_letter_queue_name(settings, spec)):
            return [spec]
    known = ", ".join(spec.name for spec in topology.ALL_QUEUES)
    raise UnknownQueueError(f"unknown queue {name!r}; known queues: {known}")


@asynccontextmanager
async def _connect(settings: Settings) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect(settings.rabbit_url, timeout=10)
    try:
        yield connection
    finally:
        await connection.close()


async def _message_count(connection: AbstractConnection, queue: str) -> int | None:
    """Ready messages in `queue` by a passive declare; None when the queue does not exist."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        declared = await channel.declare_queue(queue, passive=True)
    except ChannelNotFoundEntity:
        return None  # the failed passive declare has closed this channel already
    result = declared.declaration_result.message_count
    await channel.close()
    return int(result or 0)


async def dlq_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting in every dead-letter queue of the namespace, by DLQ name (0 if not declared)."""
    depths: dict[str, int] = {}
    async with _connect(settings) as connection:
        for spec in topology.ALL_QUEUES:
            name = topology.dead_letter_queue_name(settings, spec)
            depths[name] = await _message_count(connection, name) or 0
    return depths


# --- list / replay / discard ----------------------------------------------------------------------


async def _process_queue(
    channel: AbstractChannel,
    settings: Settings,
    spec: topology.QueueSpec,
    action: Action,
    *,
    limit: int | None,
    message_id: str | None,
) -> list[DeadLetter]:
    """Walk one DLQ once (at most the messages it held at the start), acting on the selected ones.

    Messages are fetched unacknowledged and held, so each `get` returns the next one; those not
    acted on go back to the queue when the caller closes the channel.
    """
    name = topology.dead_letter_queue_name(settings, spec)
    try:
        queue = await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        return []
    to_scan = int(queue.declaration_result.message_count or 0)
    bus = None
    if action == "replay":
        bus_spec = topology.bus_exchange(settings)
        bus = await channel.get_exchange(bus_spec.name, ensure=True)
    done: list[DeadLetter] = []
    held: list[AbstractIncomingMessage] = []
    try:
        for _ in range(to_scan):
            if limit is not None and len(done) >= limit:
                break
            message = await queue.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            if message_id is not None and message.message_id != message_id:
                held.append(message)
                continue
            letter = describe(name, message)
            if action == "list":
                held.append(message)
            else:
                await _act(message, letter, action, bus)
            done.append(letter)
    finally:
        # Give back what was only looked at, explicitly and before returning: leaving it to the
        # channel's close requeues asynchronously, and an immediate next call would miss it.
        for message in held:
            await message.nack(requeue=True)
        # A quorum queue applies requeues through its log: wait (briefly) until they are ready again.
        for _ in range(40):
            if not held or int(
                (await channel.declare_queue(name, passive=True)).declaration_result.message_count or 0
            ) >= len(held):
                break
            await asyncio.sleep(0.05)
    return done


async def _act(
    message: AbstractIncomingMessage, letter: DeadLetter, action: Action, bus: aio_pika.abc.AbstractExchange | None
) -> None:
    """Replay (republish to the bus with the original routing key, confirmed) or discard, then ack."""
    if action == "replay":
        assert bus is not None
        await bus.publish(
            aio_pika.Message(
                message.body,
                headers=replay_headers(message.headers or {}),
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                correlation_id=message.correlation_id,
                message_id=message.message_id,
                timestamp=message.timestamp,
                type=message.type,
                app_id=message.app_id,
                priority=message.priority,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=letter.routing_key,
            mandatory=True,
            timeout=10,
        )
    await message.ack()


async def process_dead_letters(
    settings: Settings,
    action: Action,
    *,
    queue: str | None = None,
    limit: int | None = None,
    message_id: str | None = None,
) -> list[DeadLetter]:
    """List, replay or discard the dead letters selected by queue, message id and limit (per queue)."""
    specs = resolve_queues(settings, queue)
    done: list[DeadLetter] = []
    async with _connect(settings) as connection:
        for spec in specs:
            # One channel per queue: closing it hands back every message fetched but not acked.
            # Publisher confirms + on_return_raises: a replay that reaches no queue raises.
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            try:
                done += await _process_queue(channel, settings, spec, action, limit=limit, message_id=message_id)
            finally:
                if not channel.is_closed:
                    await channel.close()
    return done


async def list_dead_letters(
    settings: Settings, *, queue: str | None = None, limit: int | None = 50, message_id: str | None = None
) -> list[DeadLetter]:
    return await process_dead_letters(settings, "list", queue=queue, limit=limit, message_id=message_id)


async def replay_dead_letters(
    settings: Settings, *, queue: str | None = None, limit: int | None = None, message_id: str | None = None
) -> list[DeadLetter]:
    return await process_dead_letters(settings, "replay", queue=queue, limit=limit, message_id=message_id)


async def discard_dead_letters(
    settings: Settings, *, queue: str | None = None, limit: int | None = None, message_id: str | None = None
) -> list[DeadLetter]:
    return await process_dead_letters(settings, "discard", queue=queue, limit=limit, message_id=message_id)
