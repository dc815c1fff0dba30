"""Eduzz Órbita sales API emulator, faithful to eduzz-orbita-sales.md.

- `GET /orbita/v1/sales?start_date&end_date` (both required, YYYY-MM-DD), `date_type`
  creation|payment (default creation), `status` (an integer, as the document types it; the codes
  are this emulator's own, since the document publishes none — a name such as `paid` or any other
  non-integer is a 400, an unknown integer selects nothing), `page` (default 1), `per_page`
  (default 25, capped at 25). Answer: `pages`, `items_per_page`, `page`, `total_items`, `items`.
  A query parameter of the wrong type is a 400 in the same `{"code", "message"}` shape.
- The document promises no order for the listing, so the order is switchable: `oldest_first`
  (by the chosen date, then id; the default), `newest_first`, or `shuffled` (a fixed permutation)
  — by `POST /_sandbox/options {"order": ...}`, the start option `--eduzz-order` /
  SANDBOX_EDUZZ_ORDER, or per request with `X-Sandbox-Order`.
- `GET /orbita/v1/sales/{id}`: the sale with its `items`; 404 when unknown.
- `Authorization: Bearer <token>`; a wrong or expired token → 401.
Sales without a contract or an affiliate omit those fields (the document calls them optional
by example only); unpaid sales have `paid_at: null`.

Run-time data: `POST /_sandbox/sales {"count", "created_at", "status", "total", "after_listing_requests"}`
inserts sales (with new, higher ids) at any creation time — also in the middle of pages already
read — now or once that many more listing requests have been answered (to land while a sync runs);
`POST /_sandbox/status` and `POST /_sandbox/change` alter existing ones. Quirks: see QUIRKS.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from deploy.sandbox.faults import (
    MAX_SIZE,
    ChangeRequest,
    FaultMiddleware,
    FaultState,
    ResetRequest,
    StatusRequest,
    control_router,
    money_json,
)
from deploy.sandbox.quirks import QuirkBook, quirk_router

TOKENS = frozenset({"sandbox-eduzz-token"})
FIRST_ID = 100001
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_DAYS = 365  # the data spreads over this many days from EPOCH (a reset may narrow it)
MAX_PER_PAGE = 25
# status key → (display name as the API prints it, numeric code)
STATUSES: dict[str, tuple[str, int]] = {
    "open": ("Aberta", 1),
    "paid": ("Paga", 3),
    "canceled": ("Cancelada", 4),
    "waiting_refund": ("Aguardando Reembolso", 6),
    "refunded": ("Reembolsada", 7),
    "duplicated": ("Duplicada", 9),
    "expired": ("Expirada", 10),
    "recovering": ("Em Recuperação", 11),
    "negociated": ("Negociada", 13),
    "waiting_payment": ("Aguardando Pagamento", 15),
}
WEIGHTS = {
    "paid": 60,
    "open": 8,
    "waiting_payment": 10,
    "canceled": 8,
    "refunded": 6,
    "expired": 5,
    "waiting_refund": 1,
    "duplicated": 1,
    "recovering": 1,
}
CONTENTS = [
    (99999999, "Curso de Marketing no Telegram", "SKU_TG"),
    (88888888, "Mentoria de Vendas", "SKU_MV"),
    (77777777, "E-book Funil Infinito", "SKU_EB"),
]
ISO = "%Y-%m-%dT%H:%M:%SZ"
Order = Literal["oldest_first", "newest_first", "shuffled"]
ORDERS: tuple[str, ...] = get_args(Order)
QUIRKS = {
    "missing_detail": "sales/{id} answers 404 for the sale, which the listing still shows",
    "extra_fields": "listing and sales/{id}: fields the document does not name",
}
EXTRA = {"currency": "BRL", "origin": {"name": "checkout", "version": 2}, "tags": []}


class OptionsRequest(BaseModel):
    order: Order | None = None


class InsertRequest(BaseModel):
    """New sales on the platform; `created_at` None spreads them over the data's span."""

    count: int = Field(default=1, ge=1, le=MAX_SIZE)
    created_at: datetime | None = None
    status: str | None = None
    total: float | None = None
    seed: int = 0
    after_listing_requests: int = Field(default=0, ge=0)


@dataclass
class Sale:
    id: int
    created_at: datetime
    paid_at: datetime | None
    status: str
    total: float
    client_id: int
    content: tuple[int, str, str]
    utm: dict[str, str]
    with_contract: bool
    with_affiliate: bool

    def listing(self, quirks: frozenset[str] = frozenset()) -> dict[str, Any]:
        fee = round(-self.total * 0.0379 - 0.0, 2) if self.status == "paid" else 0
        gross = round(self.total + fee, 2) if self.status == "paid" else 0
        sale: dict[str, Any] = {
            "id": self.id,
            "created_at": self.created_at.strftime(ISO),
            "paid_at": self.paid_at.strftime(ISO) if self.paid_at else None,
            "discount_amount": 0,
            "is_recover": self.status == "recovering",
            "is_infinite_funnel": False,
            "gross_gain": money_json(gross),
            "net_gain": money_json(gross),
            "affiliate_gain": 0,
            "fee_value": money_json(fee),
            "others_fees_values": 0,
            "total_value": money_json(self.total),
            "total_interest_value": money_json(self.total),
            "refund_value": money_json(self.total) if self.status == "refunded" else 0,
            "payment_method": "Mastercard" if self.id % 3 else "Pix",
            "client": {
                "id": self.client_id,
                "name": f"Cliente {self.client_id}",
                "email": f"cliente{self.client_id}@dominio.com",
                "document": f"X{self.client_id:011d}",
                "cellphone": f"119{self.client_id:08d}",
            },
            "producer": {"name": "Nome do Produtor"},
            "main_content": {"id": self.content[0], "name": self.content[1], "sku": self.content[2]},
            "status": {"name": STATUSES[self.status][0]},
            **self.utm,
        }
        if "extra_fields" in quirks:
            sale.update(EXTRA)
        if self.with_affiliate:
            sale["affiliate"] = {"name": "Nome do Afiliado"}
        if self.with_contract:
            sale["contract"] = {
                "id": 9000000 + self.id,
                "start_date": self.created_at.strftime(ISO),
                "frequency": 1,
                "frequency_type": "M",
                "installments": 12,
                "total_invoices_paid": 2,
                "total_invoices_to_pay": 10,
                "total_invoices_charged": 3,
                "total_value": money_json(self.total * 12),
            }
        return sale

    def detail(self, quirks: frozenset[str] = frozenset()) -> dict[str, Any]:
        rng = random.Random(self.id)
        count = rng.randint(1, 3)
        share = round(self.total / count, 2)
        items = []
        for n in range(count):
            value = share if n < count - 1 else round(self.total - share * (count - 1), 2)
            items.append(
                {
                    "description": f"{self.content[1]} — parte {n + 1}",
                    "type": "Infoproduto",
                    "sku": f"{self.content[2]}_{n + 1}",
                    "is_bump": n > 0,
                    "quantity": 1,
                    "value": money_json(value),
                    "coupon_key": None,
                    "discount": 0,
                    "gross_gain": 0,
                    "net_gain": 0,
                    "partner_gain": 0,
                    "total_value": money_json(value),
                    "total_interest_value": money_json(value),
                    "fee_value": 0,
                    "anticipation_value": 0,
                    "others_fees_values": 0,
                }
            )
        return {**self.listing(quirks), "items": items}


@dataclass
class Store:
    sales: list[Sale] = field(default_factory=list)  # ordered by (created_at, id)
    by_id: dict[int, Sale] = field(default_factory=dict)
    created_keys: list[tuple[datetime, int]] = field(default_factory=list)
    tokens_valid: bool = True
    order: Order = "oldest_first"
    quirks: QuirkBook = field(default_factory=lambda: QuirkBook(QUIRKS))
    pending: list[tuple[int, InsertRequest]] = field(default_factory=list)  # (due at listing n, what)
    listings_served: int = 0

    def reset(self, size: int, seed: int, span_days: int = SPAN_DAYS, refund_share: float | None = None) -> None:
        rng = random.Random(seed)
        step = timedelta(days=span_days) / max(size, 1)
        self.sales = [_random_sale(rng, FIRST_ID + i, EPOCH + step * i, refund_share) for i in range(size)]
        self.tokens_valid = True
        self.quirks.clear()
        self.pending.clear()
        self.listings_served = 0
        self.reindex()

    def reindex(self) -> None:
        self.sales.sort(key=lambda s: (s.created_at, s.id))
        self.by_id = {s.id: s for s in self.sales}
        self.created_keys = [(s.created_at, s.id) for s in self.sales]

    def next_id(self) -> int:
        return max(self.by_id) + 1 if self.by_id else FIRST_ID

    def grow(self, count: int) -> int:
        rng = random.Random(len(self.sales))
        last = self.sales[-1].created_at if self.sales else EPOCH
        first = self.next_id()
        self.sales.extend(_random_sale(rng, first + i, last + timedelta(minutes=5 * (i + 1))) for i in range(count))
        self.reindex()
        return len(self.sales)

    def insert(self, request: InsertRequest) -> list[str]:
        if request.status is not None and request.status not in STATUSES:
            raise HTTPException(400, f"unknown status {request.status!r}; known: {sorted(STATUSES)}")
        rng = random.Random(request.seed)
        first, last = (self.sales[0].created_at, self.sales[-1].created_at) if self.sales else (EPOCH, EPOCH)
        made = []
        for n in range(request.count):
            when = request.created_at or first + (last - first) * rng.random()
            sale = _random_sale(rng, self.next_id() + n, when.astimezone(UTC))
            if request.status is not None:
                sale.status = request.status
                paid = request.status in ("paid", "refunded", "waiting_refund")
                sale.paid_at = (sale.created_at + timedelta(seconds=60)) if paid else None
            if request.total is not None:
                sale.total = request.total
            made.append(sale)
        self.sales.extend(made)
        self.reindex()
        return [str(s.id) for s in made]

    def served_listing(self) -> None:
        """One more listing page answered: insert what was due by now."""
        self.listings_served += 1
        due = [r for at, r in self.pending if at <= self.listings_served]
        self.pending = [(at, r) for at, r in self.pending if at > self.listings_served]
        for request in due:
            self.insert(request)

    def change(self, request: ChangeRequest) -> list[str]:
        if request.ids is not None:
            chosen = [self.by_id[int(i)] for i in request.ids if i.isdigit() and int(i) in self.by_id]
        else:
            since = (
                datetime.combine(date.fromisoformat(request.since), datetime.min.time(), UTC) if request.since else None
            )
            eligible = [
                s
                for s in self.sales
                if (since is None or s.created_at >= since) and (request.field == "total" or s.status == "paid")
            ]
            chosen = random.Random(request.seed).sample(eligible, min(request.count, len(eligible)))
        for sale in sorted(chosen, key=lambda s: s.id):
            if request.field == "status":
                sale.status = "refunded"
            else:
                sale.total = round(sale.total + 1, 2)
        return sorted(str(s.id) for s in chosen)

    def ordered(self, rows: list[Sale], order: Order) -> list[Sale]:
        if order == "newest_first":
            return rows[::-1]
        if order == "shuffled":
            return sorted(rows, key=lambda s: hashlib.blake2b(str(s.id).encode(), digest_size=8).digest())
        return rows


def _random_sale(rng: random.Random, sale_id: int, when: datetime, refund_share: float | None = None) -> Sale:
    if refund_share is None:
        status = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    elif rng.random() < refund_share:
        status = "refunded"
    else:
        others = {k: w for k, w in WEIGHTS.items() if k != "refunded"}
        status = rng.choices(list(others), weights=list(others.values()))[0]
    paid = status in ("paid", "refunded", "waiting_refund")
    utm: dict[str, str] = {}
    roll = rng.random()
    if roll < 0.4:
        utm = {
            "utm_source": "telegram",
            "utm_medium": "channel",
            "utm_campaign": "promo",
            "utm_content": f"https://t.me/+inv{rng.randint(1, 50):04d}Ab",
            "tracker": "trk",
        }
    elif roll < 0.6:
        utm = {
            "utm_source": "instagram",
            "utm_campaign": "stories",
            "tracker": "ig",
            "tracker2": "trk2",
            "tracker3": f"t.me/joinchat/AAAA{rng.randint(1, 50):04d}",
        }
    return Sale(
        id=sale_id,
        created_at=when.replace(microsecond=0),
        paid_at=(when + timedelta(seconds=rng.randint(3, 3600))).replace(microsecond=0) if paid else None,
        status=status,
        total=rng.choice([97.0, 197.0, 297.0, 499.0, 79.2, 1997.9]),
        client_id=rng.randint(1000, 1400),
        content=rng.choice(CONTENTS),
        utm=utm,
        with_contract=rng.random() < 0.2,
        with_affiliate=rng.random() < 0.3,
    )


def create_app(size: int | None = None, seed: int | None = None, order: str | None = None) -> FastAPI:
    store = Store()
    chosen_order = order or os.environ.get("SANDBOX_EDUZZ_ORDER", "oldest_first")
    if chosen_order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {chosen_order!r}")
    store.order = chosen_order  # type: ignore[assignment]
    store.reset(
        size if size is not None else int(os.environ.get("SANDBOX_SIZE", "1000")),
        seed if seed is not None else int(os.environ.get("SANDBOX_SEED", "42")),
    )
    faults = FaultState()
    app = FastAPI(title="Eduzz Órbita sandbox")
    app.state.store = store

    def expire() -> None:
        store.tokens_valid = False

    app.add_middleware(FaultMiddleware, state=faults, on_expire=expire)

    def authorised(request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if token not in TOKENS:
            raise HTTPException(401, "Token inválido")
        if not store.tokens_valid:
            raise HTTPException(401, "Token expirado")

    auth = [Depends(authorised)]

    @app.exception_handler(HTTPException)
    async def errors(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"code": exc.status_code, "message": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_types(_: Request, exc: RequestValidationError) -> JSONResponse:
        # A typed API refuses `page=abc` as it refuses `status=paid`: a 400 in its own shape.
        wrong = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors())
        return JSONResponse({"code": 400, "message": f"parâmetro inválido: {wrong}"}, status_code=400)

    @app.get("/orbita/v1/sales", dependencies=auth)
    async def list_sales(
        request: Request,
        start_date: str | None = None,
        end_date: str | None = None,
        date_type: str = "creation",
        status: str | None = None,
        page: int = 1,
        per_page: int = MAX_PER_PAGE,
    ) -> dict[str, Any]:
        if not start_date or not end_date:
            raise HTTPException(400, "start_date e end_date são obrigatórios")
        try:
            start = datetime.combine(date.fromisoformat(start_date), datetime.min.time(), UTC)
            end = datetime.combine(date.fromisoformat(end_date), datetime.min.time(), UTC) + timedelta(days=1)
        except ValueError as exc:
            raise HTTPException(400, "Data inválida") from exc
        if date_type not in ("creation", "payment"):
            raise HTTPException(400, "date_type inválido")
        wanted: str | None = None
        if status is not None:
            if not status.strip().lstrip("-").isdigit():
                raise HTTPException(400, f"status deve ser um número inteiro, não {status!r}")
            by_code = {code: key for key, (_, code) in STATUSES.items()}
            wanted = by_code.get(int(status), "none")  # an integer with no status selects nothing
        order = request.headers.get("x-sandbox-order", store.order)
        if order not in ORDERS:
            raise HTTPException(400, f"X-Sandbox-Order must be one of {ORDERS}")
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = max(page, 1)
        if date_type == "creation":
            keys = store.created_keys
            rows = store.sales[bisect.bisect_left(keys, (start, 0)) : bisect.bisect_left(keys, (end, 0))]
        else:
            rows = sorted(
                (s for s in store.sales if s.paid_at and start <= s.paid_at < end), key=lambda s: (s.paid_at, s.id)
            )
        if wanted is not None:
            rows = [s for s in rows if s.status == wanted]
        rows = store.ordered(rows, order)  # type: ignore[arg-type]
        pages = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        header = request.headers.get("x-sandbox-quirks")
        answer = {
            "pages": pages,
            "items_per_page": per_page,
            "page": page,
            "total_items": len(rows),
            "items": [s.listing(store.quirks.of(str(s.id), header)) for s in chunk],
        }
        store.served_listing()
        return answer

    @app.get("/orbita/v1/sales/{sale_id}", dependencies=auth)
    async def get_sale(request: Request, sale_id: int) -> dict[str, Any]:
        sale = store.by_id.get(sale_id)
        quirks = store.quirks.of(str(sale_id), request.headers.get("x-sandbox-quirks"))
        if sale is None or "missing_detail" in quirks:
            raise HTTPException(404, "Dado não encontrado")
        return sale.detail(quirks)

    @app.post("/_sandbox/options")
    async def set_options(options: OptionsRequest) -> dict[str, Any]:
        if options.order is not None:
            store.order = options.order
        return {"order": store.order}

    @app.post("/_sandbox/sales")
    async def insert_sales(request: InsertRequest) -> dict[str, Any]:
        if request.after_listing_requests:
            store.pending.append((store.listings_served + request.after_listing_requests, request))
            return {
                "scheduled": request.count,
                "at_listing_request": store.listings_served + request.after_listing_requests,
            }
        ids = store.insert(request)
        return {"inserted": len(ids), "ids": ids}

    def reset(request: ResetRequest) -> None:
        store.reset(request.size, request.seed, request.span_days, request.refund_share)

    def truth() -> dict[str, Any]:
        return {
            "sales": [
                {"id": str(s.id), "status": s.status, "total": str(s.total), "created_at": s.created_at.strftime(ISO)}
                for s in store.sales
            ]
        }

    def set_status(request: StatusRequest) -> None:
        sale = store.by_id.get(int(request.id)) if request.id.isdigit() else None
        if request.status not in STATUSES or sale is None:
            raise HTTPException(400, "unknown sale or status")
        sale.status = request.status
        if request.status in ("paid", "refunded", "waiting_refund") and sale.paid_at is None:
            sale.paid_at = datetime.now(UTC).replace(microsecond=0)

    app.include_router(
        control_router(faults, reset=reset, grow=store.grow, truth=truth, set_status=set_status, change=store.change)
    )
    app.include_router(quirk_router(store.quirks, lambda: [str(i) for i in store.by_id]))
    return app
