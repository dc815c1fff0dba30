"""The Idempotency-Key of POST /sales/create: the first request with a key claims it and, once
done, stores its answer; a later request with the same key gets that answer.

A claim is a lease kept alive by its holder: while the upload is in progress the holder increments
the claim's `beat` every `beat_seconds`. A request that finds the key claimed waits for the answer;
if it sees the `beat` stand still for `lease_seconds` of its own monotonic clock, the holder is
dead (a gateway killed mid-upload) and it takes the claim over with a conditional update on the
holder and the beat it saw, so exactly one waiter wins. No clock is compared between hosts: the
waiter only measures how long *it* has seen the same beat. (docs/reliability.md proposed judging
expiry by the database's `$$NOW`; SecantusDB does not evaluate it, and the beat needs no clock.)

What the dead holder had done is on the claim: `report_id` and `source_report_id` from the start,
and the `UploadExcel` command (`command`) once the report's documents were stored, just before
it was published. The taker goes on from there (see `services.gateway.creation`).

Hand-written: a lease is three conditional updates on one document. The MongoDB lock libraries
looked at do not fit: `mongolock` is synchronous and stamps expiry with the client's own
`datetime`, so gateways' clocks must agree; `shylock` (Motor) expires locks with a TTL index,
which the server sweeps once a minute (a retry would wait up to a minute more), and neither keeps
the answer a key must return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.mongo import COLLECTIONS, Document

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """The answer the key's first request gave (or the 409 of one still in progress)."""

    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """This request holds the key. `stranded` is the claim document of a dead holder this request
    took over (None for a fresh claim): what that holder had done is on it."""

    key_id: str
    owner: str
    stranded: Document | None = None


STILL_IN_PROGRESS = Answer(409, {"detail": "a request with this Idempotency-Key is still in progress", "errors": []})


class IdempotencyKeys:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        beat_seconds: float,
        lease_seconds: float,
        wait_seconds: float = 300.0,
        poll_seconds: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = db[COLLECTIONS.idempotency]
        self.beat_seconds = beat_seconds
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.monotonic = monotonic

    async def claim(self, key_id: str) -> Claim | Answer:
        """Claims the key, takes over a dead holder's claim, or returns the first request's answer
        (409 if its holder is alive and still at work after `wait_seconds`)."""
        owner = uuid.uuid4().hex
        deadline = self.monotonic() + self.wait_seconds
        seen: tuple[object, object] | None = None
        seen_since = self.monotonic()
        while self.monotonic() < deadline:
            try:
                await self.keys.insert_one(
                    {"_id": key_id, "response": None, "report_id": None, "owner": owner, "beat": 0,
                     "created_at": datetime.now(UTC)}
                )  # fmt: skip
                return Claim(key_id, owner)
            except DuplicateKeyError:
                pass
            held = await self.keys.find_one({"_id": key_id})
            if held is None:  # its holder failed and let it go between our two reads: claim it
                continue
            if held.get("response") is not None:
                response: dict[str, Any] = held["response"]
                return Answer(int(response["status_code"]), response["body"])
            beat = (held.get("owner"), held.get("beat"))
            if beat != seen:
                seen, seen_since = beat, self.monotonic()
            elif self.monotonic() - seen_since >= self.lease_seconds:
                # `owner`/`beat` None also match a claim of an older release, which had neither.
                taken = await self.keys.update_one(
                    {"_id": key_id, "response": None, "owner": beat[0], "beat": beat[1]},
                    {"$set": {"owner": owner, "taken_over_at": datetime.now(UTC)}, "$inc": {"beat": 1}},
                )
                if taken.modified_count == 1:
                    log.warning("Idempotency-Key of a dead request taken over", extra={"key": key_id})
                    return Claim(key_id, owner, stranded=held)
            await asyncio.sleep(self.poll_seconds)
        return STILL_IN_PROGRESS

    @contextlib.asynccontextmanager
    async def held(self, claim: Claim) -> AsyncIterator[None]:
        """Keeps the claim's lease alive while the body runs."""
        beating = asyncio.create_task(self._beat(claim))
        try:
            yield
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _beat(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(self.beat_seconds)
            try:
                kept = await self.keys.update_one(
                    {"_id": claim.key_id, "owner": claim.owner, "response": None}, {"$inc": {"beat": 1}}
                )
            except PyMongoError as exc:  # a database outage: the next beat tries again
                log.warning("Idempotency-Key lease not renewed: %r", exc)
                continue
            if kept.matched_count == 0:  # answered, released, or taken over (we were thought dead)
                return

    async def note(self, claim: Claim, fields: dict[str, Any]) -> None:
        """Records on the claim how far the upload got (for a taker, should this request die)."""
        await self.keys.update_one({"_id": claim.key_id, "owner": claim.owner}, {"$set": fields})

    async def answer(self, claim: Claim, answer: Answer) -> None:
        await self.keys.update_one(
            {"_id": claim.key_id, "owner": claim.owner},
            {"$set": {"response": {"status_code": answer.status_code, "body": answer.body}}},
        )

    async def release(self, claim: Claim) -> None:
        """The request failed without an answer: the key is free for a retry."""
        await self.keys.delete_one({"_id": claim.key_id, "owner": claim.owner, "response": None})
