"""SweetClub writes that are never made twice (SPEC §5, "Rules that the real platforms force").

`sale/add` is not idempotent on SweetClub's side: a sale committed whose answer is lost would be
created again by a blind retry (SweetClub even has a refund reason for it, "Провел продажу два и
более раз"). So every sale carries an idempotency key, its `internal_order` (generated when the
caller gives none), and the highest sale id is noted before it is sent. After a lost answer the
sales created since that id are read (`sale/list` by id, newest first, then `sale/info` for the
`internal_order`, which the listing does not show): found → "already created"; not found → the
write did not happen and is sent again.

`refund/add` after a lost answer, or when refused, reads the sale's status (`sale/info`): "0"
means the refund happened ("refunded" after a lost answer, "already refunded" when the platform
refused because it was).

The outcome names what happened; the caller (commands.py) stores it for the gateway.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from services.connectors.platforms.base.http import AnswerLost, ApiError
from services.connectors.platforms.sweetclub.client import SweetClubClient
from services.connectors.platforms.sweetclub.models import SaleAddForm, error_text, has_error

log = logging.getLogger(__name__)

Result = Literal["created", "already created", "refunded", "already refunded", "refused"]
# Sales created since our mark that are read at most, looking for our key (a busy account adds a
# few per minute; a lost answer is looked up seconds later).
LOOKUP_LIMIT = 200


@dataclass(frozen=True)
class WriteOutcome:
    result: Result
    sale_id: str | None = None
    platform_error: Any = None
    message: str | None = None
    lookups: int = 0
    attempts: int = 1
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result != "refused"


def idempotency_key() -> str:
    """A fresh `internal_order` (digits, as the document's example; 32 of them from a UUID)."""
    return str(uuid.uuid4().int)[:32]


async def find_by_internal_order(client: SweetClubClient, internal_order: str, after_id: int) -> tuple[str | None, int]:
    """The id of the sale carrying `internal_order` among the sales created after `after_id`,
    and how many `sale/info` reads it took."""
    reads = 0
    page = 1
    while reads < LOOKUP_LIMIT:
        items = await client.sale_list_raw(sale_status="all", sort="s.id", order="DESC", limit=100, page=page)
        newer = [str(i["sale_id"]) for i in items if isinstance(i, dict) and int(str(i.get("sale_id", 0))) > after_id]
        for sale_id in newer:
            reads += 1
            info = await client.sale_info_raw(sale_id)
            detail = info.get("sale_info") if isinstance(info, dict) else None
            if isinstance(detail, dict) and str(detail.get("internal_order") or "") == internal_order:
                return sale_id, reads
        if len(newer) < len(items) or len(items) < 100:
            return None, reads
        page += 1
    return None, reads


async def create_sale(
    client: SweetClubClient,
    form: SaleAddForm,
    *,
    attempts: int = 3,
    mark: int | None = None,
    on_prepared: Callable[[str, int], Awaitable[None]] | None = None,
) -> WriteOutcome:
    """Create the sale once. `mark` (the highest id before a first attempt made by an earlier
    delivery) makes a redelivered command look up before sending; `on_prepared(key, mark)` lets the
    caller persist both before anything is sent."""
    key = form.internal_order or idempotency_key()
    form = form.model_copy(update={"internal_order": key})
    lookups = 0
    if mark is not None:
        found, lookups = await find_by_internal_order(client, key, mark)
        if found is not None:
            return WriteOutcome("already created", found, lookups=lookups, attempts=0, detail={"internal_order": key})
    else:
        mark = await client.latest_sale_id()
    if on_prepared is not None:
        await on_prepared(key, mark)
    for attempt in range(1, attempts + 1):
        try:
            answer = await client.sale_add(form)
        except AnswerLost as lost:
            log.warning("sale/add answer lost; looking the sale up", extra={"attempt": attempt, "problem": str(lost)})
            found, reads = await find_by_internal_order(client, key, mark)
            lookups += reads
            if found is not None:
                return WriteOutcome(
                    "already created", found, lookups=lookups, attempts=attempt, detail={"internal_order": key}
                )
            if attempt == attempts:
                raise
            continue
        if answer.sales_id and not has_error(answer.error):
            sale_id = str(answer.sales_id[0])
            return WriteOutcome(
                "created",
                sale_id,
                message=answer.success,
                lookups=lookups,
                attempts=attempt,
                detail={"internal_order": key, "sales_id": [str(s) for s in answer.sales_id]},
            )
        return WriteOutcome(
            "refused",
            platform_error=answer.error,
            message=error_text(answer.error) or "sale refused",
            lookups=lookups,
            attempts=attempt,
        )
    raise AssertionError("unreachable")


async def sale_status(client: SweetClubClient, sale_id: str) -> str | None:
    info = await client.sale_info_raw(sale_id)
    detail = info.get("sale_info") if isinstance(info, dict) else None
    return None if not isinstance(detail, dict) else str(detail.get("status", "")).strip()


async def refund_sale(
    client: SweetClubClient, sale_id: str, return_reason_id: str, comment: str | None = None, *, attempts: int = 3
) -> WriteOutcome:
    for attempt in range(1, attempts + 1):
        try:
            answer = await client.refund_add(sale_id, return_reason_id, comment)
        except AnswerLost:
            if await _refunded(client, sale_id):
                return WriteOutcome("refunded", sale_id, lookups=attempt, attempts=attempt)
            if attempt == attempts:
                raise
            continue
        if answer.success and not has_error(answer.error):
            return WriteOutcome("refunded", sale_id, message=answer.success, attempts=attempt)
        # Refused: because it is refunded already (an earlier delivery's write, or someone else's)?
        if await _refunded(client, sale_id):
            return WriteOutcome("already refunded", sale_id, platform_error=answer.error, attempts=attempt)
        return WriteOutcome(
            "refused", sale_id, platform_error=answer.error, message=error_text(answer.error), attempts=attempt
        )
    raise AssertionError("unreachable")


async def _refunded(client: SweetClubClient, sale_id: str) -> bool:
    try:
        return await sale_status(client, sale_id) == "0"
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
