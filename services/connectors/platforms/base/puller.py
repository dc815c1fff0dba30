"""The one interface between the sync engine and a platform: read a listing page at a cursor,
enrich one sale, list late changes, prove the credentials, read reference data.

A listing page gives rows that are complete for counting (status, amount, date, currency), stored
at once; `enrich` adds what only a detail call knows and is asked only for new or changed sales.
Items a model cannot read are returned as `Quarantined`, never raised: one odd sale never stalls
a sync (SPEC §5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from services.connectors.platforms.base.http import ApiError
from services.connectors.platforms.base.rows import Row, RowContext

M = TypeVar("M", bound=BaseModel)
Cursor = dict[str, int]
Stage = Literal["listing", "detail"]


@dataclass(frozen=True)
class Window:
    start: date
    end: date


@dataclass(frozen=True)
class Quarantined:
    """An item we could not read: kept with its raw payload and why."""

    external_id: str | None
    stage: Stage
    reason: str
    raw: Any


@dataclass(frozen=True)
class PulledPage:
    rows: list[Row]
    next_cursor: Cursor | None
    # The latest platform day seen on this page (incremental runs restart from it, less the lookback).
    high_water: date | None
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass(frozen=True)
class Enrichment:
    """Row fields to set for one sale (`{"customer_key": ..., "extra.products": [...]}`), or why not."""

    external_id: str
    fields: dict[str, Any]
    quarantined: Quarantined | None = None


class Puller(Protocol):
    api: str
    first_cursor: Cursor
    # Whether `enrich` adds anything (a platform without detail calls never has pending rows).
    enriches: bool

    async def fetch(self, window: Window, cursor: Cursor, ctx: RowContext) -> PulledPage: ...

    async def late_changes(self, period: Window, since: date, ctx: RowContext) -> PulledPage:
        """Rows of sales in `period` that may have changed after an earlier run read them and lie
        outside the window an incremental run reads (refunds of old sales, late payments)."""
        ...

    async def enrich(self, external_id: str) -> Enrichment: ...

    async def check(self) -> str: ...

    async def reference(self) -> dict[str, Any] | None: ...

    async def aclose(self) -> None: ...


def reason_of(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        return f"unreadable: {exc.error_count()} errors, first at {where}: {first['msg']}"[:500]
    return f"unreadable: {type(exc).__name__}: {exc}"[:500]


def external_id_of(raw: Any, *keys: str) -> str | None:
    if isinstance(raw, dict):
        for key in keys:
            if raw.get(key) not in (None, ""):
                return str(raw[key])
    return None


def read_each(
    raw_items: Iterable[Any],
    to_row: Callable[[Any], Row],
    id_keys: tuple[str, ...],
) -> tuple[list[Row], list[Quarantined]]:
    """Map every raw listing item to a row; an item that cannot be read or mapped is quarantined."""
    rows: list[Row] = []
    bad: list[Quarantined] = []
    for raw in raw_items:
        try:
            rows.append(to_row(raw))
        except (ValidationError, ValueError, TypeError, ArithmeticError) as exc:
            bad.append(Quarantined(external_id_of(raw, *id_keys), "listing", reason_of(exc), raw))
    return rows, bad


def latest_day(rows: Iterable[Row]) -> date | None:
    """The latest platform day among rows (a page's high-water mark)."""
    return max((r["action_date"].date() for r in rows if r["action_date"] is not None), default=None)


async def every_page(
    read: Callable[[int], Awaitable[tuple[list[Any], bool]]],
    to_rows: Callable[[list[Any]], tuple[list[Row], list[Quarantined]]],
) -> PulledPage:
    """A short listing read from page 1 to its end in one go (the late changes: usually a few
    pages). `read(n)` gives page n's raw items and whether another page follows."""
    rows: list[Row] = []
    bad: list[Quarantined] = []
    page, more = 1, True
    while more:
        items, more = await read(page)
        got, quarantined = to_rows(items)
        rows += got
        bad += quarantined
        page += 1
    return PulledPage(rows, None, None, bad)


async def detail_of(
    external_id: str, read: Callable[[str], Awaitable[Any]], route: str, to_fields: Callable[[Any], dict[str, Any]]
) -> Enrichment:
    """One sale's detail call. The sale alone is quarantined, never the run stopped, when the
    platform no longer knows it (404) or its payload cannot be read; other errors are the run's."""
    try:
        raw = await read(external_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return Enrichment(external_id, {}, Quarantined(external_id, "detail", f"{route}: 404 not found", None))
    try:
        return Enrichment(external_id, to_fields(raw))
    except (ValueError, TypeError) as exc:
        return Enrichment(external_id, {}, Quarantined(external_id, "detail", reason_of(exc), raw))
