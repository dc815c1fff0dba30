"""Yandex OFD sales report emulator, faithful to yandex-ofd-sales-report.txt.

`POST /v1/docs/aggregations/sales` with `X-Yandex-Key` and `X-OFD-Key` (wrong or missing → 401).
Body: date_from* / date_to* (`YYYY-MM-DD` or `YYYY-MM-DD hh:mm:ss`; a bare date_to means the end of
that day), limit / offset over intervals (integers, or integers quoted as the document's template
shows them), company_ids, retail_point_ids, cashbox_ids, document_types, operation_types,
taxation_types, interval day|week|month, orders (date, income, income_return, cash, ecash, checks,
checks_income, avg_receipt, outcome, outcome_return; `-` prefix for descending).
Answer: `data` (intervals that have documents), `full`, `total` (number of such intervals).
Like the real service, a few receipts' payment-kind parts do not add up to their `total`.

Data: `size` receipts spread over 2024 (deterministic from `seed`). Late documents (an offline cash
register sending days later): `POST /_sandbox/receipts {"count", "at", "operation"}` adds receipts
dated `at`; `POST /_sandbox/change {"count"}` adds a return receipt to `count` distinct days.
Quirks per day (`deploy.sandbox.quirks`, ids are the days `YYYY-MM-DD`): QUIRKS — the document says
elements may be missing and undocumented service fields may appear.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field

from deploy.sandbox.faults import MAX_SIZE, ChangeRequest, FaultMiddleware, FaultState, ResetRequest, control_router
from deploy.sandbox.quirks import QuirkBook, quirk_router

KEYS = frozenset({("sandbox-yandex-key", "sandbox-ofd-key")})
EPOCH = datetime(2024, 1, 1, 8, 0)
SPAN_DAYS = 365  # the data spreads over this many days from EPOCH (a reset may narrow it)
DOCUMENT_TYPES = (
    "fiscalReport",
    "fiscalReportCorrection",
    "openShift",
    "closeShift",
    "receipt",
    "receiptCorrection",
    "bso",
    "bsoCorrection",
    "currentStateReport",
    "closeArchive",
)
SALES_DOCUMENTS = ("receipt", "receiptCorrection", "bso", "bsoCorrection")
OPERATIONS = ("income", "income_return", "outcome", "outcome_return")
TAXATIONS = ("osn", "usn_income", "usn_income_wo_expenditure", "esn_agricultural", "psn")
PARTS = ("prepaid", "cashTotal", "credit", "ecashTotal", "provision")
QUIRKS = {
    "missing_elements": "the day's zero parts, income_return when nothing was returned, outcome, outcome_return, "
    "income_avg and date_from/date_to are left out",
    "extra_fields": "undocumented service fields in the day's row",
}
ORDER_KEYS = (
    "date",
    "income",
    "income_return",
    "cash",
    "ecash",
    "checks",
    "checks_income",
    "avg_receipt",
    "outcome",
    "outcome_return",
)


@dataclass(frozen=True)
class Receipt:
    at: datetime
    company_id: str
    retail_point_id: str
    cashbox_id: str
    document_type: str
    operation_type: str
    taxation_type: str
    total: int  # kopeks
    parts: tuple[int, int, int, int, int]  # kopeks, in PARTS order; may not add up to total


def _quoted_int(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


QuotedInt = Annotated[int, BeforeValidator(_quoted_int)]


class Query(BaseModel):
    date_from: str
    date_to: str
    limit: QuotedInt = Field(default=100, ge=0)
    offset: QuotedInt = Field(default=0, ge=0)
    company_ids: list[str] | None = None
    retail_point_ids: list[str] | None = None
    cashbox_ids: list[str] | None = None
    document_types: list[str] | None = None
    operation_types: list[str] | None = None
    taxation_types: list[str] | None = None
    interval: str = "day"
    orders: list[str] | None = None


class ReceiptsRequest(BaseModel):
    count: int = Field(default=1, ge=1, le=MAX_SIZE)
    at: datetime
    operation: str = "income"
    seed: int = 0


@dataclass
class Store:
    receipts: list[Receipt] = field(default_factory=list)
    keys_valid: bool = True
    quirks: QuirkBook = field(default_factory=lambda: QuirkBook(QUIRKS))

    def reset(self, size: int, seed: int, span_days: int = SPAN_DAYS, refund_share: float | None = None) -> None:
        rng = random.Random(seed)
        step = timedelta(days=span_days) / max(size, 1)
        self.receipts = [_random_receipt(rng, EPOCH + step * i, refund_share) for i in range(size)]
        self.keys_valid = True
        self.quirks.clear()

    def add(self, request: ReceiptsRequest) -> int:
        if request.operation not in OPERATIONS:
            raise HTTPException(400, f"operation must be one of {OPERATIONS}")
        rng = random.Random(request.seed)
        for n in range(request.count):
            receipt = _random_receipt(rng, request.at.replace(tzinfo=None) + timedelta(seconds=n))
            self.receipts.append(
                Receipt(**{**receipt.__dict__, "operation_type": request.operation, "document_type": "receipt"})
            )
        return len(self.receipts)

    def days(self) -> list[str]:
        return sorted({r.at.date().isoformat() for r in self.receipts})

    def change(self, request: ChangeRequest) -> list[str]:
        """A return receipt on each of `count` days (an old day's figures change)."""
        days = [d for d in self.days() if request.since is None or d >= request.since]
        chosen = sorted(request.ids or random.Random(request.seed).sample(days, min(request.count, len(days))))
        for day in chosen:
            at = datetime.fromisoformat(day).replace(hour=23, minute=30)
            self.add(ReceiptsRequest(at=at, operation="income_return", seed=request.seed))
        return chosen

    def grow(self, count: int) -> int:
        rng = random.Random(len(self.receipts))
        last = max((r.at for r in self.receipts), default=EPOCH)  # late receipts are appended out of order
        self.receipts.extend(_random_receipt(rng, last + timedelta(minutes=31 * (i + 1))) for i in range(count))
        return len(self.receipts)


def _random_receipt(rng: random.Random, at: datetime, refund_share: float | None = None) -> Receipt:
    total = rng.choice([35000, 7000, 12550, 99000, 4990, 150000])
    if refund_share is None:
        operation = rng.choices(OPERATIONS, weights=(85, 8, 5, 2))[0]
    else:
        rest = (1 - refund_share) / 92
        operation = rng.choices(OPERATIONS, weights=(85 * rest, refund_share, 5 * rest, 2 * rest))[0]
    kind = rng.choices(range(5), weights=(5, 50, 3, 40, 2))[0]
    parts = [0, 0, 0, 0, 0]
    parts[kind] = total
    if rng.random() < 0.03:
        parts[kind] -= 100  # the payment-kind split is off by a rouble: `total` stays authoritative
    return Receipt(
        at=at.replace(microsecond=0),
        company_id=rng.choice(["301", "302"]),
        retail_point_id=rng.choice(["11", "12", "13"]),
        cashbox_id=f"KKT{rng.randint(1, 4)}",
        document_type=rng.choices(DOCUMENT_TYPES, weights=(0, 0, 1, 1, 85, 3, 6, 1, 0, 0))[0],
        operation_type=operation,
        taxation_type=rng.choice(TAXATIONS),
        total=total,
        parts=(parts[0], parts[1], parts[2], parts[3], parts[4]),
    )


def _rub(kopeks: int) -> float:
    return kopeks / 100


def _parse_bound(value: str, *, end: bool) -> datetime:
    value = value.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime.combine(day, datetime.max.time() if end else datetime.min.time()).replace(microsecond=0)
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")


def _interval_of(moment: datetime, interval: str) -> tuple[date, date]:
    day = moment.date()
    if interval == "day":
        return day, day
    if interval == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


class Totals:
    def __init__(self) -> None:
        self.ops: dict[str, list[int]] = {op: [0] * 6 for op in OPERATIONS}  # PARTS + total
        self.checks = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.income_checks = 0

    def add(self, r: Receipt) -> None:
        sums = self.ops[r.operation_type]
        for i, part in enumerate(r.parts):
            sums[i] += part
        sums[5] += r.total
        self.checks += 1
        self.first = r.at if self.first is None or r.at < self.first else self.first
        self.last = r.at if self.last is None or r.at > self.last else self.last
        if r.operation_type == "income":
            self.income_checks += 1

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for op, sums in self.ops.items():
            out[op] = {**{name: _rub(sums[i]) for i, name in enumerate(PARTS)}, "total": _rub(sums[5])}
        income_total = self.ops["income"][5]
        out["checks"] = self.checks
        out["checks_income"] = self.income_checks
        out["income_avg"] = round(_rub(income_total) / self.income_checks, 2) if self.income_checks else 0.0
        out["date_from"] = self.first.strftime("%Y-%m-%d %H:%M:%S") if self.first else None
        out["date_to"] = self.last.strftime("%Y-%m-%d %H:%M:%S") if self.last else None
        return out


def _sort_value(row: dict[str, Any], key: str) -> Any:
    """The value a listing is ordered by. A day whose element is absent (`missing_elements`: no
    `income_return` on a day without returns, no `outcome`...) sorts as zero, as its sum is."""

    def part(element: str, field: str = "total") -> Any:
        value = (row.get(element) or {}).get(field)
        return 0 if value is None else value

    if key == "date":
        return row.get("start")
    if key in ("checks", "checks_income", "avg_receipt"):
        value = row.get("income_avg" if key == "avg_receipt" else key)
        return 0 if value is None else value
    element, field = {
        "income": ("income", "total"),
        "income_return": ("income_return", "total"),
        "cash": ("income", "cashTotal"),
        "ecash": ("income", "ecashTotal"),
        "outcome": ("outcome", "total"),
        "outcome_return": ("outcome_return", "total"),
    }[key]
    return part(element, field)


def _with_quirks(row: dict[str, Any], quirks: frozenset[str]) -> dict[str, Any]:
    if "missing_elements" in quirks:
        for key in ("outcome", "outcome_return", "income_avg", "date_from", "date_to"):
            row.pop(key, None)
        for key in ("income", "income_return"):
            row[key] = {k: v for k, v in row[key].items() if v or k == "total"}
        if not row["income_return"]["total"]:
            row.pop("income_return")
    if "extra_fields" in quirks:
        row.update({"kkt_count": 2, "service": {"shard": "a1", "cached": True}})
    return row


def aggregate(
    receipts: list[Receipt], q: Query, book: QuirkBook | None = None, header: str | None = None
) -> dict[str, Any]:
    try:
        start, end = _parse_bound(q.date_from, end=False), _parse_bound(q.date_to, end=True)
    except ValueError as exc:
        raise HTTPException(400, "date_from/date_to: expected YYYY-MM-DD or YYYY-MM-DD hh:mm:ss") from exc
    if q.interval not in ("day", "week", "month"):
        raise HTTPException(400, f"unknown interval {q.interval!r}")
    for order in q.orders or []:
        if order.lstrip("-") not in ORDER_KEYS:
            raise HTTPException(400, f"unknown order {order!r}")
    for values, allowed, name in (
        (q.document_types, DOCUMENT_TYPES, "document_types"),
        (q.operation_types, OPERATIONS, "operation_types"),
        (q.taxation_types, TAXATIONS, "taxation_types"),
    ):
        if values and set(values) - set(allowed):
            raise HTTPException(400, f"unknown {name}: {sorted(set(values) - set(allowed))}")
    filters = [
        (q.company_ids, "company_id"),
        (q.retail_point_ids, "retail_point_id"),
        (q.cashbox_ids, "cashbox_id"),
        (q.document_types, "document_type"),
        (q.operation_types, "operation_type"),
        (q.taxation_types, "taxation_type"),
    ]
    active = [(set(values), attr) for values, attr in filters if values]
    groups: dict[tuple[date, date], Totals] = defaultdict(Totals)
    full = Totals()
    for r in receipts:
        if r.at < start or r.at > end or any(getattr(r, attr) not in values for values, attr in active):
            continue
        bucket = groups[_interval_of(r.at, q.interval)]
        bucket.add(r)
        full.add(r)
    rows = [{**totals.json(), "start": lo.isoformat(), "end": hi.isoformat()} for (lo, hi), totals in groups.items()]
    rows.sort(key=lambda row: row["start"])
    if book is not None and q.interval == "day":
        rows = [_with_quirks(row, book.of(row["start"], header)) for row in rows]
    # Stable sorts applied from the last order to the first give the documented precedence.
    for order in reversed(q.orders or []):
        key = order.lstrip("-")
        rows.sort(key=lambda row, k=key: _sort_value(row, k), reverse=order.startswith("-"))  # type: ignore[misc]
    page = rows[q.offset : q.offset + q.limit]
    full_json = full.json()
    return {"data": page, "full": full_json, "total": len(rows), "request_id": "sandbox"}


def create_app(size: int | None = None, seed: int | None = None) -> FastAPI:
    store = Store()
    store.reset(
        size if size is not None else int(os.environ.get("SANDBOX_SIZE", "1000")),
        seed if seed is not None else int(os.environ.get("SANDBOX_SEED", "42")),
    )
    faults = FaultState()
    app = FastAPI(title="Yandex OFD sandbox")
    app.state.store = store

    def expire() -> None:
        store.keys_valid = False

    app.add_middleware(FaultMiddleware, state=faults, on_expire=expire)

    @app.exception_handler(HTTPException)
    async def errors(_: Request, exc: HTTPException) -> JSONResponse:
        code = {400: "bad_request", 401: "unauthorized"}.get(exc.status_code, "error")
        return JSONResponse({"code": code, "message": exc.detail}, status_code=exc.status_code)

    @app.post("/v1/docs/aggregations/sales")
    async def sales(
        request: Request,
        query: Query,
        x_yandex_key: Annotated[str | None, Header()] = None,
        x_ofd_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if (x_yandex_key, x_ofd_key) not in KEYS:
            raise HTTPException(401, "invalid X-Yandex-Key / X-OFD-Key")
        if not store.keys_valid:
            raise HTTPException(401, "key expired")
        return aggregate(store.receipts, query, store.quirks, request.headers.get("x-sandbox-quirks"))

    @app.post("/_sandbox/receipts")
    async def add_receipts(request: ReceiptsRequest) -> dict[str, int]:
        return {"size": store.add(request)}

    def reset(request: ResetRequest) -> None:
        store.reset(request.size, request.seed, request.span_days, request.refund_share)

    def truth() -> dict[str, Any]:
        days: dict[str, dict[str, int]] = defaultdict(lambda: {"revenue": 0, "checks_income": 0})
        for r in store.receipts:
            if r.document_type not in SALES_DOCUMENTS:
                continue
            day = days[r.at.date().isoformat()]
            if r.operation_type == "income":
                day["revenue"] += r.total
                day["checks_income"] += 1
            elif r.operation_type == "income_return":
                day["revenue"] -= r.total
        return {
            "days": {
                d: {"revenue": f"{v['revenue'] / 100:.2f}", "checks_income": v["checks_income"]}
                for d, v in sorted(days.items())
            }
        }

    app.include_router(control_router(faults, reset=reset, grow=store.grow, truth=truth, change=store.change))
    app.include_router(quirk_router(store.quirks, store.days))
    return app
