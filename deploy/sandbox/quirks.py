"""Odd payloads a real platform may send, switchable per sale or for every sale.

Each emulator names the quirks it knows (SweetClub: a PHP-style `delivery: []`, zero dates, unknown
fields, amounts as strings...; Eduzz: a 404 on one sale's details...). They are set by
`POST /_sandbox/quirks` `{"quirks": ["zero_dates"], "ids": ["40007"]}` (those sales),
`{"quirks": [...], "share": 0.01, "seed": 3}` (a deterministic share of the sales there are now) or
`{"quirks": [...]}` (every sale, also those made later); `GET /_sandbox/quirks` shows them and
`DELETE /_sandbox/quirks` clears them (a reset clears them too). A request may also carry
`X-Sandbox-Quirks: zero_dates,extra_fields` for its own answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field


class QuirkRequest(BaseModel):
    quirks: list[str] = Field(min_length=1)
    ids: list[str] | None = None
    share: float | None = Field(default=None, ge=0, le=1)
    seed: int = 0


@dataclass
class QuirkBook:
    known: Mapping[str, str]  # name → what it does
    everywhere: set[str] = field(default_factory=set)
    by_id: dict[str, set[str]] = field(default_factory=dict)

    def of(self, sale_id: str, header: str | None = None) -> frozenset[str]:
        extra = {q.strip() for q in header.split(",") if q.strip()} if header else set()
        return frozenset(self.everywhere | self.by_id.get(sale_id, set()) | (extra & set(self.known)))

    def clear(self) -> None:
        self.everywhere.clear()
        self.by_id.clear()

    def apply(self, request: QuirkRequest, all_ids: Callable[[], Collection[str]]) -> list[str]:
        unknown = sorted(set(request.quirks) - set(self.known))
        if unknown:
            raise HTTPException(400, f"unknown quirks {unknown}; known: {sorted(self.known)}")
        if request.ids is None and request.share is None:
            self.everywhere.update(request.quirks)
            return []
        if request.ids is not None:
            existing = set(all_ids())
            missing = [i for i in request.ids if i not in existing]
            if missing:
                raise HTTPException(400, f"unknown sale ids {missing[:5]}")
            chosen = list(request.ids)
        else:
            ids = sorted(all_ids(), key=_id_order)
            share = request.share or 0.0
            chosen = sorted(random.Random(request.seed).sample(ids, round(len(ids) * share)), key=_id_order)
        for sale_id in chosen:
            self.by_id.setdefault(sale_id, set()).update(request.quirks)
        return chosen

    def describe(self) -> dict[str, Any]:
        return {
            "known": dict(self.known),
            "everywhere": sorted(self.everywhere),
            "by_id": {k: sorted(v) for k, v in self.by_id.items()},
        }


def _id_order(sale_id: str) -> tuple[int, str]:
    return (int(sale_id), "") if sale_id.isdigit() else (0, sale_id)


def quirk_router(book: QuirkBook, all_ids: Callable[[], Collection[str]]) -> APIRouter:
    router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

    @router.post("/quirks")
    async def set_quirks(request: QuirkRequest) -> dict[str, Any]:
        chosen = book.apply(request, all_ids)
        return {"quirks": request.quirks, "ids": chosen, "everywhere": sorted(book.everywhere)}

    @router.get("/quirks")
    async def get_quirks() -> dict[str, Any]:
        return book.describe()

    @router.delete("/quirks")
    async def clear_quirks() -> dict[str, Any]:
        book.clear()
        return book.describe()

    return router
