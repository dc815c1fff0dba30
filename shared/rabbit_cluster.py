"""Connecting to a RabbitMQ cluster: one connection, to any of its nodes, that moves to a
surviving node by itself when its node dies, and publishes that survive the move.

Neither FastStream 0.7.8 nor aio-pika 10 takes more than one broker address: aio-pika's
`RobustConnection` reconnects, but always to the one URL it was given (aio-pika issue #141 is
open; the round-robin pull request #680 was closed unmerged). What they do offer is the seam used
here: `connect_robust(connection_class=...)`, which FastStream passes through from the broker's
connection arguments. `ClusterConnection` is that `RobustConnection` with one change — each
(re)connection attempt tries the nodes in turn, starting after the node it last lost — so
channel and consumer restoration, backoff and callbacks stay aio-pika's own.

Publishing: a publish whose connection dies before the broker confirmed it raises; FastStream
buffers nothing. `publish_with_failover` waits for the connection to come back (on another node)
and publishes again, within a time budget. A publish that was confirmed but whose confirm was
lost is then published twice, which is safe: every message carries its message id and every
handler is idempotent (SPEC §1). An unroutable message (Basic.Return) is never retried: it would
be unroutable again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import aiormq.exceptions
from aio_pika import RobustConnection
from faststream.rabbit import RabbitBroker
from yarl import URL

log = logging.getLogger(__name__)

T = TypeVar("T")


class ClusterConnection(RobustConnection):
    """A `RobustConnection` over several nodes of one cluster (set `nodes` on a subclass:
    `cluster_connection_class` makes one). The first node is picked at random so that replicas
    spread their connections over the cluster."""

    nodes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, url: URL, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        super().__init__(url, loop=loop, **kwargs)
        # Every node is reached with the connection parameters (heartbeat, name, …) of the first URL.
        self._node_urls = [URL(node).with_query(url.query) for node in self.nodes] or [URL(url)]
        self._node = random.randrange(len(self._node_urls))
        self.url = self._node_urls[self._node]

    @property
    def node_url(self) -> URL:
        """The node this connection uses now (or tries next)."""
        return self._node_urls[self._node]

    def _node_name(self) -> str:
        return f"{self.node_url.host}:{self.node_url.port}"

    def _use_node(self, index: int) -> None:
        self._node = index % len(self._node_urls)
        self.url = self._node_urls[self._node]

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # The node we were on is gone or going: the next attempt starts at the next one. (aio-pika
        # also calls this when an attempt fails; the attempt loop below sets the node it tries.)
        if not self._close_called:
            self._use_node(self._node + 1)
        await super()._on_connection_close(closing)

    # RobustConnection's (name-mangled) single attempt; its retry loop calls this one.
    async def _RobustConnection__connect_transport(self) -> None:  # noqa: N802 - the name it overrides
        first = self._node
        last: Exception | None = None
        for step in range(len(self._node_urls)):
            self._use_node(first + step)
            node = self._node_name()
            try:
                await super()._RobustConnection__connect_transport()  # type: ignore[misc]
            except Exception as exc:  # refused, timed out, or restoring channels failed there
                last = exc
                log.warning("RabbitMQ node %s unavailable (%r), trying the next one", node, exc)
            else:
                log.info("connected to RabbitMQ node %s", node)
                return
        self._use_node(first + 1)
        assert last is not None
        raise last


def cluster_connection_class(urls: Sequence[str]) -> type[ClusterConnection]:
    return type("SaleswireClusterConnection", (ClusterConnection,), {"nodes": tuple(urls)})


def use_cluster(broker: RabbitBroker, urls: Sequence[str]) -> None:
    """Make `broker` connect through a `ClusterConnection` over `urls` (FastStream hands its
    connection arguments to aio-pika's `connect_robust`, which accepts `connection_class`)."""
    if len(urls) > 1:
        broker._connection_kwargs["connection_class"] = cluster_connection_class(urls)


def is_retryable(exc: BaseException) -> bool:
    """A publish failed because the connection or channel went away, or the broker nacked it —
    not because the message is unroutable or malformed."""
    if isinstance(exc, aiormq.exceptions.PublishError):
        return False
    return isinstance(
        exc,
        aiormq.exceptions.AMQPError | aiormq.exceptions.ChannelInvalidStateError | ConnectionError | TimeoutError,
    )


async def publish_with_failover(
    publish: Callable[[], Awaitable[T]],
    *,
    budget_seconds: float,
    pause_seconds: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `publish` until it succeeds, retrying broker failures for up to `budget_seconds`."""
    deadline = clock() + budget_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            return await publish()
        except Exception as exc:
            if not is_retryable(exc) or clock() + pause_seconds > deadline:
                raise
            log.warning("publish failed (attempt %d: %r); retrying on the cluster", attempt, exc)
            await asyncio.sleep(pause_seconds)
