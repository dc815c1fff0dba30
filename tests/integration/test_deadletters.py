"""Dead letters on the real broker: produced by the DeadLetters middleware (schema errors, permanent
errors) and by RabbitMQ's own delivery limit, then listed, replayed and discarded."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest
from faststream import AckPolicy
from faststream.rabbit import RabbitBroker
from prometheus_client import REGISTRY, CollectorRegistry

from cli import deadletters as deadletters_cli
from shared import contracts, deadletters, dlq_watch, topology
from shared.broker import REASON_HEADER, Bus, PermanentError, declare_topology, make_broker
from shared.dlq_watch import DLQ_DEPTH
from shared.settings import Settings
from tests.infra import ROOT
from tests.ops.namespace import drop_namespace

SYNC_DLQ = topology.SYNC_CONNECTION


@pytest.fixture(autouse=True)
async def _drop_namespace(settings: Settings) -> AsyncIterator[None]:
    yield
    await drop_namespace(settings)


async def wait_for(check: Callable[[], Any], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def depth_is(settings: Settings, spec: topology.QueueSpec, expected: int) -> None:
    name = topology.dead_letter_queue_name(settings, spec)

    async def check() -> bool:
        return (await deadletters.dlq_depths(settings))[name] == expected

    await wait_for(check)


class SyncConsumer:
    """A connectors-like consumer of sync commands that fails permanently until `healthy`."""

    def __init__(self) -> None:
        self.healthy = False
        self.handled: list[contracts.SyncConnection] = []


@pytest.fixture
async def sync_consumer(settings: Settings) -> AsyncIterator[tuple[RabbitBroker, SyncConsumer]]:
    broker = make_broker(settings, registry=CollectorRegistry())
    state = SyncConsumer()

    @broker.subscriber(
        topology.rabbit_queue(settings, topology.SYNC_CONNECTION),
        topology.bus_exchange(settings),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_sync(message: contracts.SyncConnection) -> None:
        if not state.healthy:
            raise PermanentError(f"connection {message.connection_id} is broken")
        state.handled.append(message)

    await broker.connect()
    await declare_topology(broker, settings)
    await broker.start()
    try:
        yield broker, state
    finally:
        await broker.stop()


async def test_list_replay_and_discard_middleware_dead_letters(
    settings: Settings, sync_consumer: tuple[RabbitBroker, SyncConsumer]
) -> None:
    broker, state = sync_consumer
    bus = Bus(broker, settings)
    first = contracts.SyncConnection(connection_id="conn-1")
    second = contracts.SyncConnection(connection_id="conn-2")
    await bus.publish(first)
    await bus.publish(second)
    # Another system publishes something that is not a valid sync command.
    await broker.publish(
        {"kind": "sync_connection", "schema_version": 1},
        exchange=topology.bus_exchange(settings),
        routing_key=topology.SYNC_CONNECTION.routing_key,
        message_id="not-a-command",
        persist=True,
    )
    await depth_is(settings, SYNC_DLQ, 3)
    dlq = topology.dead_letter_queue_name(settings, SYNC_DLQ)
    depths = await deadletters.dlq_depths(settings)
    assert depths == {
        topology.dead_letter_queue_name(settings, s): (3 if s is SYNC_DLQ else 0) for s in topology.ALL_QUEUES
    }

    # Listing shows every letter with its reason and original routing key, and removes nothing.
    letters = await deadletters.list_dead_letters(settings)
    by_id = {letter.message_id: letter for letter in letters}
    assert set(by_id) == {first.message_id, second.message_id, "not-a-command"}
    assert by_id[first.message_id].reason == "PermanentError: connection conn-1 is broken"
    assert by_id[first.message_id].correlation_id == first.correlation_id
    assert by_id["not-a-command"].reason.startswith("ValidationError")
    assert {letter.routing_key for letter in letters} == {"command.sync_connection"}
    assert {letter.queue for letter in letters} == {dlq}
    assert '"connection_id":"conn-1"' in by_id[first.message_id].preview
    assert len(await deadletters.list_dead_letters(settings, limit=2)) == 2
    assert (await deadletters.dlq_depths(settings))[dlq] == 3

    # The gauge follows the broker, also when a service keeps it fresh in the background.
    await dlq_watch.update_dlq_depth_gauge(settings)
    assert REGISTRY.get_sample_value("saleswire_dlq_depth_messages", {"queue": dlq}) == 3
    DLQ_DEPTH.labels(queue=dlq).set(-1)
    watcher = dlq_watch.DlqDepthWatcher(settings, interval_seconds=0.1)
    await watcher.start()
    await wait_for(lambda: REGISTRY.get_sample_value("saleswire_dlq_depth_messages", {"queue": dlq}) == 3)
    await watcher.stop()

    # The fault is fixed; replaying one letter by id delivers it, unchanged, to its consumer.
    state.healthy = True
    replayed = await deadletters.replay_dead_letters(settings, message_id=first.message_id)
    assert [letter.message_id for letter in replayed] == [first.message_id]
    await wait_for(lambda: len(state.handled) == 1)
    assert state.handled[0] == first
    await depth_is(settings, SYNC_DLQ, 2)

    # Replaying the rest: the valid command is handled, the invalid one comes straight back.
    rest = await deadletters.replay_dead_letters(settings, queue=topology.SYNC_CONNECTION.name)
    assert {letter.message_id for letter in rest} == {second.message_id, "not-a-command"}
    await wait_for(lambda: len(state.handled) == 2)
    assert state.handled[1] == second
    await depth_is(settings, SYNC_DLQ, 1)
    (back,) = await deadletters.list_dead_letters(settings, queue=dlq)
    assert back.message_id == "not-a-command"
    assert back.reason.startswith("ValidationError")

    # Discarding it empties the queue; a second replay of the handled command changed nothing.
    discarded = await deadletters.discard_dead_letters(settings, message_id="not-a-command")
    assert [letter.message_id for letter in discarded] == ["not-a-command"]
    await depth_is(settings, SYNC_DLQ, 0)
    assert [m.message_id for m in state.handled] == [first.message_id, second.message_id]


async def test_delivery_limit_dead_letter_is_listed_with_rabbitmq_reason_and_replayed_clean(
    settings: Settings,
) -> None:
    broker = make_broker(settings, registry=CollectorRegistry())
    await broker.connect()
    await declare_topology(broker, settings)
    command = contracts.SweetClubSaleAdd(connection_id="c", request_id="r", payload={"total": "10.00"})
    await Bus(broker, settings).publish(command)

    # A consumer that dies on it every time: RabbitMQ dead-letters it at the delivery limit.
    queue_name = topology.queue_name(settings, topology.SWEETCLUB_COMMANDS)
    connection = await aio_pika.connect(settings.rabbit_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        for _ in range(settings.delivery_limit + 1):
            message = await queue.get(fail=False, timeout=5)
            if message is None:
                break
            await message.nack(requeue=True)
        await depth_is(settings, topology.SWEETCLUB_COMMANDS, 1)

        (letter,) = await deadletters.list_dead_letters(settings, queue=topology.SWEETCLUB_COMMANDS.name)
        assert letter.reason == "delivery_limit"
        assert letter.routing_key == "command.sweetclub.sale_add"
        assert letter.message_id == command.message_id
        assert letter.dead_lettered_at is not None

        replayed = await deadletters.replay_dead_letters(settings, queue=queue_name, limit=5)
        assert [r.message_id for r in replayed] == [command.message_id]
        await depth_is(settings, topology.SWEETCLUB_COMMANDS, 0)
        again = None
        for _ in range(50):
            again = await queue.get(fail=False, timeout=5)
            if again is not None:
                break
            await asyncio.sleep(0.1)
        assert again is not None
        assert again.message_id == command.message_id
        assert again.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        headers = again.headers or {}
        assert headers[deadletters.REPLAYS_HEADER] == 1
        assert not any(key.startswith("x-death") or key == REASON_HEADER for key in headers)
        assert contracts.SweetClubSaleAdd.model_validate_json(again.body) == command
        await again.ack()
    finally:
        await connection.close()
        await broker.stop()


async def test_cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    broker = make_broker(settings, registry=CollectorRegistry())
    await broker.connect()
    await declare_topology(broker, settings)
    for _ in range(2):
        await broker.publish(
            b"{}",
            exchange=topology.dead_letter_exchange(settings),
            routing_key=topology.UPLOAD_EXCEL.routing_key,
            headers={REASON_HEADER: "PermanentError: file is gone"},
            message_id=f"m-{_}",
            persist=True,
        )
    await broker.stop()
    await depth_is(settings, topology.UPLOAD_EXCEL, 2)

    assert await deadletters_cli.run(["list", "--json"], settings) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["message_id"] for line in lines] == ["m-0", "m-1"]
    assert {line["reason"] for line in lines} == {"PermanentError: file is gone"}

    assert await deadletters_cli.run(["list", "--queue", "nope"], settings) == 2
    assert "unknown queue" in capsys.readouterr().err
    assert await deadletters_cli.run(["discard"], settings) == 2
    assert await deadletters_cli.run(["replay", "--id", "missing"], settings) == 1
    assert await deadletters_cli.run(["depths", "--json"], settings) == 0
    dlq = topology.dead_letter_queue_name(settings, topology.UPLOAD_EXCEL)
    assert json.loads(capsys.readouterr().out)[dlq] == 2

    # The module entry point, as an operator runs it, with settings from the environment.
    env = {
        **os.environ,
        "SALESWIRE_RABBIT_URL": settings.rabbit_url,
        "SALESWIRE_NAMESPACE": settings.namespace,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.deadletters",
        "discard",
        "--queue",
        "ingest.upload-excel",
        "--id",
        "m-0",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert "m-0" in out.decode()
    assert "discarded: 1" in err.decode()
    await depth_is(settings, topology.UPLOAD_EXCEL, 1)
