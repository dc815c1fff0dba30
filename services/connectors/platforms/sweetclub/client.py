"""SweetClub API client (seed: sweetclub-api.txt), every documented method.

Auth: `POST api/login` with a form (username, password) answers `{"api_token": ...}`; a bad
login answers `{"error": "..."}` (HTTP 200 in the document). The session lives 24 h and is
renewed by use: the client takes the token kept on the connection (`SessionStore`), logs in only
when there is none, it has expired, or a call is refused with 401, and hands a new token back to
the store.

`sale/add` and `refund/add` are writes: sent once (`idempotent=False`); what to do after a lost
answer is decided in `writes.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar, Literal

from services.connectors.platforms.base.client import PlatformClient
from services.connectors.platforms.base.http import ApiError, ApiTransport, AuthError, HttpConfig, Page
from services.connectors.platforms.base.quirks import parse
from services.connectors.platforms.base.session import MemorySession, SessionStore
from services.connectors.platforms.sweetclub.models import (
    BRAND_INFO,
    BRAND_LIST,
    SALE_LIST,
    Brand,
    BrandInfo,
    LoginAnswer,
    RefundAddAnswer,
    RefundReasons,
    SaleAddAnswer,
    SaleAddForm,
    SaleInfo,
    SaleListItem,
    error_text,
    has_error,
)

API = "sweetclub"
MAX_LIMIT = 1000
SortField = Literal["s.id", "s.total", ".s.commission_total", "s.commission_total", "s.date_added"]


class SweetClubClient(PlatformClient):
    api: ClassVar[str] = API

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        config: HttpConfig | None = None,
        *,
        transport: ApiTransport | None = None,
        session: SessionStore | None = None,
    ) -> None:
        super().__init__(base_url, config, transport=transport)
        self._username = username
        self._password = password
        self._session = session or MemorySession()
        self._token: str | None = None
        self._loaded = False
        self._used = False
        self._login_lock = asyncio.Lock()
        self.logins = 0

    async def aclose(self) -> None:
        if self._used:
            await self._session.used()
        await super().aclose()

    # -- auth

    async def login(self) -> str:
        response = await self._http.request(
            "POST", "api/login", data={"username": self._username, "password": self._password}
        )
        answer = LoginAnswer.model_validate(self.decode(response))
        self.logins += 1
        if answer.api_token and response.status_code < 400:
            self._token = answer.api_token
            await self._session.save(answer.api_token)
            return answer.api_token
        message = error_text(answer.error) if answer.error else f"login refused (HTTP {response.status_code})"
        raise AuthError(API, f"login refused: {message}", status=response.status_code, payload=answer.error)

    async def _current_token(self, stale: str | None) -> str:
        # Several concurrent calls may see the same 401; only one of them logs in again.
        async with self._login_lock:
            if not self._loaded:
                self._loaded = True
                self._token = self._token or await self._session.load()
            if self._token is None or self._token == stale:
                await self.login()
            assert self._token is not None
            return self._token

    async def auth_headers(self) -> dict[str, str]:
        self._used = True
        token = self._token if self._loaded and self._token else await self._current_token(None)
        return {"Authorization": f"Bearer {token}"}

    async def reauthenticate(self, refused_headers: Mapping[str, str]) -> bool:
        stale = refused_headers.get("Authorization", "").removeprefix("Bearer ")
        await self._current_token(stale)
        return True

    def refused_message(self, body: Any) -> str:
        return "the API refused a fresh session token"

    def error_text(self, body: Any) -> str:
        return error_text(body.get("error") if isinstance(body, dict) else body)

    async def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        body = await self.read_json("GET", path, params=params)
        if isinstance(body, dict) and has_error(body.get("error")) and not _looks_like_payload(body):
            raise ApiError(API, f"{path}: {error_text(body['error'])}", payload=body["error"])
        return body

    # -- sales

    async def sale_list_raw(
        self,
        *,
        sale_status: Literal["0", "1", "all"] | None = "all",
        sort: SortField | None = "s.id",
        order: Literal["ASC", "DESC"] | None = "ASC",
        limit: int | None = MAX_LIMIT,
        page: int | None = 1,
        date_start: date | None = None,
        date_end: date | None = None,
    ) -> list[Any]:
        """The listing as it came: a JSON array whose items the caller reads one by one (one
        unreadable sale must not make the page unreadable)."""
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}")
        params: dict[str, Any] = {
            "sale_status": sale_status,
            "sort": sort,
            "order": order,
            "limit": limit,
            "page": page,
            "date_start": date_start.isoformat() if date_start else None,
            "date_end": date_end.isoformat() if date_end else None,
        }
        body = await self._get_json("api/sale/list", {k: v for k, v in params.items() if v is not None})
        if body == {} or body is None:  # PHP prints an empty result as `{}` or `null` as readily as `[]`
            return []
        if not isinstance(body, list):
            raise ApiError(API, "api/sale/list: expected a JSON array of sales", payload=str(body)[:200])
        return body

    async def sale_list(self, **query: Any) -> list[SaleListItem]:
        """The listing, every item read (raises ApiError when one cannot be)."""
        return parse(API, "api/sale/list", SALE_LIST.validate_python, await self.sale_list_raw(**query))

    async def sale_list_page(
        self, page: int, *, date_start: date | None, date_end: date | None, limit: int = MAX_LIMIT
    ) -> Page[Any]:
        """A page of every sale (active and refunded) in id order; a short page is the last.
        Ids only grow ("сквозная нумерация"), so a sale created while we page lands after what we
        have read: no gap."""
        items = await self.sale_list_raw(
            sale_status="all",
            sort="s.id",
            order="ASC",
            limit=limit,
            page=page,
            date_start=date_start,
            date_end=date_end,
        )
        return Page(items, page + 1 if len(items) >= limit else None)

    async def sale_info_raw(self, sale_id: str) -> Any:
        return await self._get_json("api/sale/info", {"sale_id": sale_id})

    async def sale_info(self, sale_id: str) -> SaleInfo:
        return parse(API, "api/sale/info", SaleInfo.model_validate, await self.sale_info_raw(sale_id))

    async def latest_sale_id(self) -> int:
        """The highest sale id now (0 for an account without sales): ids only grow."""
        items = await self.sale_list_raw(sale_status="all", sort="s.id", order="DESC", limit=1, page=1)
        return max((int(str(i.get("sale_id", 0))) for i in items if isinstance(i, dict)), default=0)

    async def _write(self, path: str, form: dict[str, str]) -> Any:
        response = await self.call("POST", path, files=_multipart(form), idempotent=False)
        if response.status_code >= 400 and response.status_code != 422:
            raise ApiError(API, f"{path} failed", status=response.status_code, payload=self.decode_or_text(response))
        return self.decode(response)

    async def sale_add(self, form: SaleAddForm) -> SaleAddAnswer:
        """Creates a sale, sent once. The API's refusal is an answer, not an exception; a lost
        answer raises AnswerLost (see writes.py)."""
        return parse(API, "api/sale/add", SaleAddAnswer.model_validate, await self._write("api/sale/add", form.form()))

    async def refund_add(self, sale_id: str, return_reason_id: str, comment: str | None = None) -> RefundAddAnswer:
        form = {"sale_id": sale_id, "return_reason_id": return_reason_id}
        if comment:
            form["comment"] = comment
        return parse(API, "api/refund/add", RefundAddAnswer.model_validate, await self._write("api/refund/add", form))

    # -- reference data

    async def brand_list(self) -> list[Brand]:
        return parse(API, "api/brand/list", BRAND_LIST.validate_python, await self._get_json("api/brand/list"))

    async def brand_info(self, brand_id: str) -> list[BrandInfo]:
        body = await self._get_json("api/brand/info", {"brand_id": brand_id})
        # The document prints a one-element array; tolerate a bare object too.
        return parse(API, "api/brand/info", BRAND_INFO.validate_python, body if isinstance(body, list) else [body])

    async def refund_reasons(self) -> RefundReasons:
        return parse(
            API, "api/refund/reasons", RefundReasons.model_validate, await self._get_json("api/refund/reasons")
        )


def _multipart(form: dict[str, str]) -> dict[str, tuple[None, str]]:
    # The document's curl examples send --form, i.e. multipart/form-data.
    return {k: (None, v) for k, v in form.items()}


def _looks_like_payload(body: dict[str, Any]) -> bool:
    return "sale_info" in body or "return_reasons" in body
