"""Connecting to a cluster by a list of nodes (shared/rabbit_cluster.py), on the real broker: a
node that is down is skipped at start-up, whichever node the connection tries first; a publish
is retried only for failures a failover explains, and only within its budget."""

from __future__ import annotations

import asyncio
from typing import Any

import aiormq.exceptions
import pytest
from pamqp import commands as spec

from shared.broker import make_broker
from shared.rabbit_cluster import ClusterConnection, is_retryable, publish_with_failover
from shared.settings import Settings
from tests.infra import free_port


async def test_a_dead_node_in_the_list_is_skipped(settings: Settings) -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    for nodes in ([dead, settings.rabbit_url], [settings.rabbit_url, dead]) * 3:  # the first try is random
        broker = make_broker(settings.model_copy(update={"rabbit_urls": ",".join(nodes), "rabbit_url": nodes[0]}))
        await broker.start()
        try:
            connection = broker._connection
            assert isinstance(connection, ClusterConnection)
            assert connection.url.port == int(settings.rabbit_url.rsplit(":", 1)[1].strip("/"))
            assert await broker.ping(timeout=2)
        finally:
            await broker.stop()


async def test_with_one_node_the_broker_is_plain(settings: Settings) -> None:
    broker = make_broker(settings)
    assert "connection_class" not in broker._connection_kwargs


async def test_publish_is_retried_through_a_failover_and_not_beyond() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise aiormq.exceptions.AMQPConnectionError("node gone")
        return "confirmed"

    assert await publish_with_failover(flaky, budget_seconds=5, pause_seconds=0.01) == "confirmed"
    assert len(calls) == 3

    async def always_down() -> None:
        raise ConnectionResetError("node gone")

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionResetError):
        await publish_with_failover(always_down, budget_seconds=0.3, pause_seconds=0.05)
    assert 0.2 <= loop.time() - started < 2


def test_only_failover_failures_are_retryable() -> None:
    returned: Any = type("Returned", (), {"delivery": spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE")})()
    assert not is_retryable(aiormq.exceptions.PublishError(returned, spec.Basic.Return()))
    assert is_retryable(aiormq.exceptions.DeliveryError(None, spec.Basic.Nack()))  # the broker refused it
    assert is_retryable(aiormq.exceptions.ChannelInvalidStateError("closed"))
    assert is_retryable(TimeoutError())
    assert not is_retryable(ValueError("bad message"))
