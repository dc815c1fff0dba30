"""The detail calls of a run: only for the rows marked pending (new or changed in the listing),
`concurrency` at a time, under the connection's rate budget (the puller's transport), in batches
checkpointed as they are written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.connectors.platforms.base.puller import Enrichment, Puller
from services.connectors.sync.rows_store import Pending, RowsStore
from services.connectors.sync.run_state import RunState
from services.connectors.telemetry import CONNECTOR_DETAIL_CALLS


class Enricher:
    """`concurrency` workers take the pending rows one at a time (no batch waits for its slowest
    call); results are written every `batch` rows, so a stop loses at most a batch and the calls
    in flight."""

    def __init__(self, puller: Puller, rows: RowsStore, *, concurrency: int, batch: int | None = None) -> None:
        self.puller = puller
        self.rows = rows
        self.concurrency = max(1, concurrency)
        self.batch = max(self.concurrency, batch or self.concurrency * 4)

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
        todo = iter(await self.rows.pending(source_report_id))
        done: list[tuple[Pending, Enrichment]] = []
        writing = asyncio.Lock()

        async def flush() -> None:
            async with writing:
                batch = done[:]
                del done[:]
                if batch:
                    await self._write(source_report_id, connection_id, run, batch)
                    await after_batch(run, len(batch))

        async def worker() -> None:
            for pending in todo:  # one shared iterator: each row is taken by one worker
                done.append((pending, await self.puller.enrich(pending.external_id)))
                if len(done) >= self.batch:
                    await flush()

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        await flush()

    async def _write(
        self, source_report_id: str, connection_id: str, run: RunState, batch: list[tuple[Pending, Enrichment]]
    ) -> None:
        CONNECTOR_DETAIL_CALLS.labels(api=self.puller.api).inc(len(batch))
        await self.rows.apply_enrichment(batch)
        bad = [result.quarantined for _, result in batch if result.quarantined is not None]
        await self.rows.quarantine(self.puller.api, source_report_id, connection_id, bad)
        run.enriched += len(batch)
        run.quarantined += len(bad)
