"""The detail calls of a run: only for the rows marked pending (new or changed in the listing),
`concurrency` at a time, under the connection's rate budget (the puller's transport), in batches
checkpointed as they are written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.connectors.platforms.base.puller import Enrichment, Puller
from services.connectors.sync.rows_store import Pending, RowsStore
from services.connectors.sync.run_state import RunState
from shared.metrics import CONNECTOR_DETAIL_CALLS

T = TypeVar("T")
R = TypeVar("R")


async def bounded(items: list[T], limit: int, call: Callable[[T], Awaitable[R]]) -> list[R]:
    gate = asyncio.Semaphore(max(1, limit))

    async def one(item: T) -> R:
        async with gate:
            return await call(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


class Enricher:
    def __init__(self, puller: Puller, rows: RowsStore, *, concurrency: int, batch: int | None = None) -> None:
        self.puller = puller
        self.rows = rows
        self.concurrency = max(1, concurrency)
        # Small batches: a stop loses at most one batch of calls; a write per batch costs little.
        self.batch = max(self.concurrency, batch or self.concurrency * 8)

    async def run(
        self,
        source_report_id: str,
        connection_id: str,
        run: RunState,
        after_batch: Callable[[RunState, int], Awaitable[None]],
    ) -> None:
        """Enriches every pending row of the source; `after_batch(run, written)` checkpoints."""
        if not self.puller.enriches:
            return
        pending = await self.rows.pending(source_report_id)
        for start in range(0, len(pending), self.batch):
            batch = pending[start : start + self.batch]
            results: list[Enrichment] = await bounded(
                batch, self.concurrency, lambda p: self.puller.enrich(p.external_id)
            )
            CONNECTOR_DETAIL_CALLS.labels(api=self.puller.api).inc(len(batch))
            pairs: list[tuple[Pending, Enrichment]] = list(zip(batch, results, strict=True))
            written = await self.rows.apply_enrichment(pairs)
            bad = [r.quarantined for r in results if r.quarantined is not None]
            await self.rows.quarantine(self.puller.api, source_report_id, connection_id, bad)
            run.enriched += len(batch)
            run.quarantined += len(bad)
            await after_batch(run, written)
