"""SweetClub API emulator, faithful to sweetclub-api.txt.

- `POST /api/login` (form) → `{"api_token"}`; a bad login → `{"error": "Такой логин и/или пароль не
  существует!"}` (HTTP 200, as documented). Sessions live `session_ttl` seconds (24 h) from their
  last use. A missing or dead token → 401 `{"error": ...}` (the document does not show it).
- `GET /api/sale/list`: sale_status 0|1|all (default all), sort s.id|s.total|.s.commission_total|
  s.date_added (default s.id), order ASC|DESC (default DESC), limit (default 20, capped at 1000),
  page (default 1), date_start/date_end (YYYY-MM-DD, on date_added). Ids, statuses are strings.
- `GET /api/sale/info?sale_id=`, `POST /api/sale/add` (form), `GET /api/brand/list`,
  `GET /api/brand/info?brand_id=` (also the document's literal `api/brand/info&brand_id=1`),
  `GET /api/refund/reasons`, `POST /api/refund/add` (form).

Data: `size` deterministic sales from `seed`, dated through 2024, ids sequential from 40001.
`sale/add` keeps its `internal_order` (shown by `sale/info`; nothing dedupes by it, as on the real
platform, whose refund reasons include "Провел продажу два и более раз"); `not_production_date`
gives the zero date `0000-00-00 00:00:00`.

Odd payloads the document allows (`deploy.sandbox.quirks`, per sale or for all): see QUIRKS.
"""

from __future__ import annotations

import bisect
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import JSONResponse

from deploy.sandbox.faults import (
    ChangeRequest,
    FaultMiddleware,
    FaultState,
    ResetRequest,
    StatusRequest,
    control_router,
    money_json,
)
from deploy.sandbox.quirks import QuirkBook, quirk_router

USERS = {"testapi@testapi.com": "testapi@testapi.com"}
FIRST_ID = 40001
EPOCH = datetime(2024, 1, 1)
SPAN_DAYS = 365  # the data spreads over this many days from EPOCH (a reset may narrow it)
BRANDS: list[dict[str, Any]] = [
    {"brand_id": "1", "brand_name": "101 ДАЛМАТИНЕЦ", "licensor_name": "Disney", "licensor_id": "1"},
    {"brand_id": "2", "brand_name": "АЛАДДИН худ. м/ф", "licensor_name": "Disney", "licensor_id": "1"},
    {"brand_id": "3", "brand_name": "АЛИСА В ЗАЗЕРКАЛЬЕ фильм 2016г", "licensor_name": "Disney", "licensor_id": "1"},
    {"brand_id": "4", "brand_name": "АЛИСА В СТРАНЕ ЧУДЕС худ. м/ф", "licensor_name": "Disney", "licensor_id": "1"},
]
SALE_CHANNELS = [
    {"sale_channel_id": "1", "name": "Выставка/Ярмарка"},
    {"sale_channel_id": "2", "name": "Детский/тематический парк"},
]
PRODUCT_TYPES = [
    {
        "title": "Безе",
        "value": "4",
        "units": [{"title": "шт", "value": "1"}, {"title": "кг", "value": "2"}, {"title": "набор", "value": "3"}],
    },
    {"title": "Вафельная печать", "value": "15", "units": [{"title": "шт", "value": "1"}]},
    {"title": "Торт на заказ", "value": "1", "units": [{"title": "шт", "value": "1"}, {"title": "кг", "value": "2"}]},
]
UNITS = {"1": "шт", "2": "кг", "3": "набор"}
REFUND_REASONS = [
    {"return_reason_id": "4", "name": " Провел продажу два и более раз"},
    {"return_reason_id": "2", "name": "Другое (укажите в комментарии)"},
    {"return_reason_id": "5", "name": "Клиент отказался от заказа"},
    {"return_reason_id": "3", "name": "Не правильно указаны данные"},
]
SORTS = {
    "s.id": "id",
    "s.total": "total",
    ".s.commission_total": "commission_total",
    "s.commission_total": "commission_total",
    "s.date_added": "date_added",
}
FMT = "%Y-%m-%d %H:%M:%S"
ZERO_DATE = "0000-00-00 00:00:00"
QUIRKS = {
    "delivery_empty_array": "sale/info: `delivery: []` (PHP's empty array) where an object is documented",
    "zero_dates": "sale/info: production, delivery and modification dates are `0000-00-00 00:00:00`",
    "extra_fields": "sale/list and sale/info: fields the document does not name",
    "amounts_as_strings": 'sale/info: total, commission, price as strings ("500.00")',
    "listing_amounts_as_strings": 'sale/list: total and commission as strings ("99.00")',
    "ids_as_numbers": "sale/list and sale/info: ids and status as JSON numbers (the table types status [1, 0])",
    "nulls": "sale/info: comment, internal_order, sale_channel and production_date are null",
    "missing_detail": "sale/info answers 404 for the sale, which sale/list still shows",
}
EXTRA = {"region_id": "77", "is_test": False, "meta": {"source": "api", "version": 3}}


def _amount(value: Decimal, as_string: bool) -> str | int | float:
    return f"{value:.2f}" if as_string else money_json(value)


def _id(value: str | int, as_number: bool) -> str | int:
    return int(value) if as_number else str(value)


@dataclass
class Sale:
    id: int
    name: str
    total: Decimal
    commission_percent: int
    commission_total: Decimal
    date_added: datetime
    status: str
    brand_id: str
    type_id: str
    unit_id: str
    quantity: Decimal
    price: Decimal
    client_id: str = "0"
    comment: str = ""
    internal_order: str = ""
    sale_channel_id: str = "1"
    production_date: str = ""
    delivery: dict[str, Any] | None = None
    date_modified: datetime | None = None

    def short(self, quirks: frozenset[str] = frozenset()) -> dict[str, Any]:
        strings, numbers = "listing_amounts_as_strings" in quirks, "ids_as_numbers" in quirks
        row: dict[str, Any] = {
            "sale_id": _id(self.id, numbers),
            "name": self.name,
            "commission_percent": str(self.commission_percent) if strings else self.commission_percent,
            "commission_total": _amount(self.commission_total, strings),
            "total": _amount(self.total, strings),
            "currency_code": "RUB",
            "date_added": self.date_added.strftime(FMT),
            "status": _id(self.status, numbers),
        }
        if "extra_fields" in quirks:
            row.update(EXTRA)
        return row

    def info(self, quirks: frozenset[str] = frozenset()) -> dict[str, Any]:
        brand = next(b for b in BRANDS if b["brand_id"] == self.brand_id)
        ptype = next((p for p in PRODUCT_TYPES if p["value"] == self.type_id), PRODUCT_TYPES[0])
        channel = next((c for c in SALE_CHANNELS if c["sale_channel_id"] == self.sale_channel_id), SALE_CHANNELS[0])
        zero, strings, numbers = "zero_dates" in quirks, "amounts_as_strings" in quirks, "ids_as_numbers" in quirks
        nulls, extra = "nulls" in quirks, "extra_fields" in quirks
        modified = ZERO_DATE if zero else (self.date_modified or self.date_added).strftime(FMT)
        production = ZERO_DATE if zero else self.production_date
        delivery: dict[str, Any] | list[Any] | None = None
        if "delivery_empty_array" in quirks:
            delivery = []
        elif self.delivery is not None:
            delivery = {
                **self.delivery,
                "sale_id": _id(self.id, numbers),
                "date_added": self.date_added.strftime(FMT),
                "date_modified": modified,
                **({"delivery_date": ZERO_DATE} if zero else {}),
                **(EXTRA if extra else {}),
            }
        product: dict[str, Any] = {
            "id": _id(100000 + self.id, numbers),
            "name": brand["brand_name"],
            "licensor": brand["licensor_name"],
            "licensor_id": _id(brand["licensor_id"], numbers),
            "brand": brand["brand_name"],
            "brand_id": _id(self.brand_id, numbers),
            "unit": UNITS.get(self.unit_id, "шт"),
            "unit_id": _id(self.unit_id, numbers),
            "type": ptype["title"],
            "type_id": _id(self.type_id, numbers),
            "quantity": f"{self.quantity:.4f} {UNITS.get(self.unit_id, 'шт')}",
            "production_date": None if nulls else production,
            "price": _amount(self.price, strings),
            "total": _amount(self.total, strings),
            **(EXTRA if extra else {}),
        }
        sale_info: dict[str, Any] = {
            "id": _id(self.id, numbers),
            "internal_order": None if nulls else self.internal_order,
            "client_id": _id(self.client_id, numbers),
            "delivery_id": None,
            "comment": None if nulls else self.comment,
            "commission_percent": str(self.commission_percent) if strings else self.commission_percent,
            "commission_total": _amount(self.commission_total, strings),
            "currency_code": "RUB",
            "name": self.name,
            "total": _amount(self.total, strings),
            "status": _id(self.status, numbers),
            "sale_channel": None if nulls else channel["name"],
            "sale_channel_id": _id(channel["sale_channel_id"], numbers),
            "production_date": None if nulls else production,
            "date_added": self.date_added.strftime(FMT),
            "date_modified": modified,
            "products": [product],
            **(EXTRA if extra else {}),
        }
        return {"delivery": delivery, "sale_info": sale_info, **({"warnings": []} if extra else {})}


@dataclass
class Store:
    session_ttl: float = 24 * 3600
    sales: list[Sale] = field(default_factory=list)  # ordered by id and by date_added
    sessions: dict[str, float] = field(default_factory=dict)  # token → expires at (monotonic)
    quirks: QuirkBook = field(default_factory=lambda: QuirkBook(QUIRKS))

    def reset(self, size: int, seed: int, span_days: int = SPAN_DAYS, refund_share: float | None = None) -> None:
        rng = random.Random(seed)
        step = timedelta(days=span_days) / max(size, 1)
        share = 0.1 if refund_share is None else refund_share
        self.sales = [_random_sale(rng, FIRST_ID + i, EPOCH + step * i, share) for i in range(size)]
        self.sessions.clear()
        self.quirks.clear()

    def change(self, request: ChangeRequest) -> list[str]:
        """Refund or re-price `count` sales, as a seller's later edits on the platform do."""
        if request.ids is not None:
            chosen = [s for s in (self.find(i) for i in request.ids) if s is not None]
        else:
            since = datetime.fromisoformat(request.since) if request.since else None
            eligible = [
                s
                for s in self.sales
                if (since is None or s.date_added >= since) and (request.field == "total" or s.status == "1")
            ]
            count = min(request.count, len(eligible))
            chosen = sorted(random.Random(request.seed).sample(eligible, count), key=lambda s: s.id)
        now = datetime.now().replace(microsecond=0)
        for sale in chosen:
            if request.field == "status":
                sale.status = "0"
            else:
                sale.total += 1
                sale.commission_total = (sale.total * sale.commission_percent / 100).quantize(Decimal("0.01"))
            sale.date_modified = now
        return [str(s.id) for s in chosen]

    def grow(self, count: int) -> int:
        last = self.sales[-1].date_added if self.sales else EPOCH
        rng = random.Random(len(self.sales))
        for i in range(count):
            self.sales.append(_random_sale(rng, self.next_id(), last + timedelta(minutes=7 * (i + 1))))
        return len(self.sales)

    def next_id(self) -> int:
        return self.sales[-1].id + 1 if self.sales else FIRST_ID

    def find(self, sale_id: str) -> Sale | None:
        if not sale_id.isdigit():
            return None
        index = int(sale_id) - FIRST_ID
        if 0 <= index < len(self.sales) and self.sales[index].id == int(sale_id):
            return self.sales[index]
        return None


def _random_sale(rng: random.Random, sale_id: int, when: datetime, refund_share: float = 0.1) -> Sale:
    brand = rng.choice(BRANDS)
    ptype = rng.choice(PRODUCT_TYPES)
    quantity = Decimal(rng.randint(1, 4))
    price = Decimal(rng.choice([99, 100, 250, 400, 500, 1250])) + Decimal(rng.choice([0, 0, 0, 50])) / 100
    total = price * quantity
    percent = rng.choice([10, 15, 20])
    return Sale(
        id=sale_id,
        name=f"{brand['brand_name']} {ptype['title']} {quantity}шт",
        total=total,
        commission_percent=percent,
        commission_total=(total * percent / 100).quantize(Decimal("0.01")),
        date_added=when.replace(microsecond=0),
        status="0" if rng.random() < refund_share else "1",
        brand_id=brand["brand_id"],
        type_id=str(ptype["value"]),
        unit_id="1",
        quantity=quantity,
        price=price,
        client_id=str(rng.randint(1, 500)) if rng.random() < 0.5 else "0",
        production_date=(when - timedelta(days=2)).strftime("%Y-%m-%d 00:00:00"),
        delivery={
            "address": "1-й Колобовский переулок, 27/3 ст3",
            "delivery_date": when.strftime("%Y-%m-%d 00:00:00"),
            "type": "Доставка",
            "type_id": "2",
        }
        if rng.random() < 0.3
        else None,
    )


def create_app(size: int | None = None, seed: int | None = None, session_ttl: float | None = None) -> FastAPI:
    store = Store(session_ttl=session_ttl or float(os.environ.get("SANDBOX_SWEETCLUB_SESSION_TTL", 24 * 3600)))
    store.reset(
        size if size is not None else int(os.environ.get("SANDBOX_SIZE", "1000")),
        seed if seed is not None else int(os.environ.get("SANDBOX_SEED", "42")),
    )
    faults = FaultState()
    app = FastAPI(title="SweetClub sandbox")
    app.state.store = store
    app.add_middleware(FaultMiddleware, state=faults, on_expire=store.sessions.clear)

    def authorised(request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        now = time.monotonic()
        expires = store.sessions.get(token)
        if expires is None or expires < now:
            store.sessions.pop(token, None)
            raise HTTPException(401, "Unauthorized")
        store.sessions[token] = now + store.session_ttl  # the session is renewed by use

    auth = [Depends(authorised)]

    @app.exception_handler(HTTPException)
    async def errors(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.post("/api/login")
    async def login(username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "") -> dict[str, str]:
        if USERS.get(username) != password or not username:
            return {"error": "Такой логин и/или пароль не существует!"}
        token = secrets.token_hex(13)
        store.sessions[token] = time.monotonic() + store.session_ttl
        return {"api_token": token}

    @app.get("/api/sale/list", dependencies=auth)
    async def sale_list(
        request: Request,
        sale_status: str = "all",
        sort: str = "s.id",
        order: str = "DESC",
        limit: int = 20,
        page: int = 1,
        date_start: str | None = None,
        date_end: str | None = None,
    ) -> list[dict[str, Any]]:
        if sale_status not in ("0", "1", "all") or sort not in SORTS or order.upper() not in ("ASC", "DESC"):
            raise HTTPException(400, "Неверные параметры запроса")
        limit = max(1, min(limit, 1000))
        page = max(page, 1)
        rows = store.sales
        keys = [s.date_added for s in rows] if (date_start or date_end) else None
        lo, hi = 0, len(rows)
        try:
            if date_start and keys is not None:
                lo = bisect.bisect_left(keys, datetime.fromisoformat(date_start))
            if date_end and keys is not None:
                hi = bisect.bisect_left(keys, datetime.fromisoformat(date_end) + timedelta(days=1))
        except ValueError as exc:
            raise HTTPException(400, "Неверный формат даты") from exc
        selected = [s for s in rows[lo:hi] if sale_status == "all" or s.status == sale_status]
        attr = SORTS[sort]
        reverse = order.upper() == "DESC"
        if attr == "id":
            if reverse:
                selected.reverse()
        else:
            selected.sort(key=lambda s: (getattr(s, attr), s.id), reverse=reverse)
        header = request.headers.get("x-sandbox-quirks")
        return [s.short(store.quirks.of(str(s.id), header)) for s in selected[(page - 1) * limit : page * limit]]

    @app.get("/api/sale/info", dependencies=auth)
    async def sale_info(request: Request, sale_id: str = "") -> dict[str, Any]:
        sale = store.find(sale_id)
        quirks = store.quirks.of(sale_id, request.headers.get("x-sandbox-quirks"))
        if sale is None or "missing_detail" in quirks:
            raise HTTPException(404, "Продажа не найдена")
        return sale.info(quirks)

    @app.post("/api/sale/add", dependencies=auth)
    async def sale_add(request: Request) -> dict[str, Any]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        errors: dict[str, str] = {}
        for name in (
            "brand_id",
            "product_type",
            "product_quantity",
            "product_unit",
            "product_price",
            "sale_channel_id",
        ):
            if not form.get(name):
                errors[name] = f"Поле {name} обязательно"
        if form.get("brand_id") and not any(b["brand_id"] == form["brand_id"] for b in BRANDS):
            errors["brand_id"] = "Бренд недоступен для продажи"
        if not form.get("production_date") and form.get("not_production_date") is None:
            errors["production_date"] = "Укажите дату производства"
        try:
            quantity = Decimal(form.get("product_quantity") or "0")
            price = Decimal(form.get("product_price") or "0")
        except ArithmeticError:
            errors["product_price"] = "Неверное число"
            quantity = price = Decimal(0)
        if not errors and (quantity <= 0 or price < 0):
            errors["product_quantity"] = "Количество должно быть больше нуля"
        if errors:
            return {"sales_id": [], "success": "", "error": errors}
        last = store.sales[-1].date_added if store.sales else EPOCH
        total = price * quantity
        delivery = None
        if form.get("delivery_type_id") or form.get("delivery_address"):
            delivery = {
                "address": form.get("delivery_address", ""),
                "delivery_date": f"{form.get('delivery_date', '')} 00:00:00".strip(),
                "type": "Доставка" if form.get("delivery_type_id") == "2" else "Самовывоз",
                "type_id": form.get("delivery_type_id", "1"),
            }
        sale = Sale(
            id=store.next_id(),
            name=f"{next(b['brand_name'] for b in BRANDS if b['brand_id'] == form['brand_id'])}",
            total=total,
            commission_percent=20,
            commission_total=(total / 5).quantize(Decimal("0.01")),
            date_added=max(last + timedelta(seconds=1), datetime.now().replace(microsecond=0)),
            status="1",
            brand_id=form["brand_id"],
            type_id=form["product_type"],
            unit_id=form["product_unit"],
            quantity=quantity,
            price=price,
            comment=form.get("comment", ""),
            internal_order=form.get("internal_order", ""),
            sale_channel_id=form["sale_channel_id"],
            production_date=ZERO_DATE if form.get("not_production_date") else f"{form.get('production_date')} 00:00:00",
            delivery=delivery,
        )
        store.sales.append(sale)
        return {"sales_id": [sale.id], "success": "Заказ создан", "error": []}

    @app.get("/api/brand/list", dependencies=auth)
    async def brand_list() -> list[dict[str, str]]:
        return [{"brand_id": b["brand_id"], "brand_name": b["brand_name"]} for b in BRANDS]

    def brand_details(brand_id: str) -> list[dict[str, Any]]:
        brand = next((b for b in BRANDS if b["brand_id"] == brand_id), None)
        if brand is None:
            raise HTTPException(404, "Бренд не найден")
        return [{**brand, "sale_channels": SALE_CHANNELS, "product_type": PRODUCT_TYPES}]

    @app.get("/api/brand/info", dependencies=auth)
    async def brand_info(brand_id: str = "") -> list[dict[str, Any]]:
        return brand_details(brand_id)

    @app.get("/api/brand/info&brand_id={brand_id}", dependencies=auth)
    async def brand_info_literal(brand_id: str) -> list[dict[str, Any]]:
        # The document writes the method as `api/brand/info&brand_id=1`; accept that spelling too.
        return brand_details(brand_id)

    @app.get("/api/refund/reasons", dependencies=auth)
    async def refund_reasons() -> dict[str, Any]:
        return {"return_reasons": REFUND_REASONS}

    @app.post("/api/refund/add", dependencies=auth)
    async def refund_add(request: Request) -> dict[str, Any]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        sale = store.find(form.get("sale_id", ""))
        if sale is None or sale.status != "1":
            return {"error": {"sale_id": "Возврат не произведен. Не корректный sale_id"}}
        if not any(r["return_reason_id"] == form.get("return_reason_id") for r in REFUND_REASONS):
            return {"error": {"return_reason_id": "Возврат не произведен. Не корректная причина возврата"}}
        sale.status = "0"
        sale.date_modified = datetime.now().replace(microsecond=0)
        return {"success": "Возврат произведен."}

    def reset(request: ResetRequest) -> None:
        store.reset(request.size, request.seed, request.span_days, request.refund_share)

    def truth() -> dict[str, Any]:
        return {
            "sales": [
                {
                    "id": str(s.id),
                    "status": s.status,
                    "total": str(s.total),
                    "date_added": s.date_added.strftime(FMT),
                    "internal_order": s.internal_order,
                }
                for s in store.sales
            ]
        }

    def set_status(request: StatusRequest) -> None:
        sale = next((s for s in store.sales if str(s.id) == request.id), None)
        if sale is None or request.status not in ("0", "1"):
            raise HTTPException(400, "unknown sale or status")
        sale.status = request.status
        sale.date_modified = datetime.now().replace(microsecond=0)

    app.include_router(
        control_router(faults, reset=reset, grow=store.grow, truth=truth, set_status=set_status, change=store.change)
    )
    app.include_router(quirk_router(store.quirks, lambda: [str(s.id) for s in store.sales]))
    return app
