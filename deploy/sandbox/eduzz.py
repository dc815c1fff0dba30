"""Eduzz Órbita sales API emulator, faithful to eduzz-orbita-sales.md.

- `GET /orbita/v1/sales?start_date&end_date` (both required, YYYY-MM-DD), `date_type`
  creation|payment (default creation), `status` (a name such as `paid`, or its numeric code),
  `page` (default 1), `per_page` (default 25, capped at 25). Answer: `pages`, `items_per_page`,
  `page`, `total_items`, `items`, sales ordered by the chosen date then id.
- `GET /orbita/v1/sales/{id}`: the sale with its `items`; 404 when unknown.
- `Authorization: Bearer <token>`; a wrong or expired token → 401.
Sales without a contract or an affiliate omit those fields (the document calls them optional
by example only); unpaid sales have `paid_at: null`.
"""

from __future__ import annotations

import bisect
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from deploy.sandbox.faults import FaultMiddleware, FaultState, ResetRequest, StatusRequest, control_router, money_json

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

    def listing(self) -> dict[str, Any]:
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

    def detail(self) -> dict[str, Any]:
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
        return {**self.listing(), "items": items}


@dataclass
class Store:
    sales: list[Sale] = field(default_factory=list)
    tokens_valid: bool = True

    def reset(self, size: int, seed: int, span_days: int = SPAN_DAYS) -> None:
        rng = random.Random(seed)
        step = timedelta(days=span_days) / max(size, 1)
        self.sales = [_random_sale(rng, FIRST_ID + i, EPOCH + step * i) for i in range(size)]
        self.tokens_valid = True

    def grow(self, count: int) -> int:
        rng = random.Random(len(self.sales))
        last = self.sales[-1].created_at if self.sales else EPOCH
        first = self.sales[-1].id + 1 if self.sales else FIRST_ID
        self.sales.extend(_random_sale(rng, first + i, last + timedelta(minutes=5 * (i + 1))) for i in range(count))
        return len(self.sales)


def _random_sale(rng: random.Random, sale_id: int, when: datetime) -> Sale:
    status = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
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


def create_app(size: int | None = None, seed: int | None = None) -> FastAPI:
    store = Store()
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

    @app.get("/orbita/v1/sales", dependencies=auth)
    async def list_sales(
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
            by_code = {str(code): key for key, (_, code) in STATUSES.items()}
            wanted = status if status in STATUSES else by_code.get(status)
            if wanted is None:
                raise HTTPException(400, "status inválido")
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = max(page, 1)
        if date_type == "creation":
            keys = [s.created_at for s in store.sales]
            rows = store.sales[bisect.bisect_left(keys, start) : bisect.bisect_left(keys, end)]
        else:
            rows = sorted(
                (s for s in store.sales if s.paid_at and start <= s.paid_at < end), key=lambda s: (s.paid_at, s.id)
            )
        if wanted is not None:
            rows = [s for s in rows if s.status == wanted]
        pages = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        return {
            "pages": pages,
            "items_per_page": per_page,
            "page": page,
            "total_items": len(rows),
            "items": [s.listing() for s in chunk],
        }

    @app.get("/orbita/v1/sales/{sale_id}", dependencies=auth)
    async def get_sale(sale_id: int) -> dict[str, Any]:
        index = sale_id - FIRST_ID
        if not 0 <= index < len(store.sales):
            raise HTTPException(404, "Dado não encontrado")
        return store.sales[index].detail()

    def reset(request: ResetRequest) -> None:
        store.reset(request.size, request.seed, request.span_days)

    def truth() -> dict[str, Any]:
        return {
            "sales": [
                {"id": str(s.id), "status": s.status, "total": str(s.total), "created_at": s.created_at.strftime(ISO)}
                for s in store.sales
            ]
        }

    def set_status(request: StatusRequest) -> None:
        index = int(request.id) - FIRST_ID
        if request.status not in STATUSES or not 0 <= index < len(store.sales):
            raise HTTPException(400, "unknown sale or status")
        sale = store.sales[index]
        sale.status = request.status
        if request.status in ("paid", "refunded", "waiting_refund") and sale.paid_at is None:
            sale.paid_at = datetime.now(UTC).replace(microsecond=0)

    app.include_router(control_router(faults, reset=reset, grow=store.grow, truth=truth, set_status=set_status))
    return app
