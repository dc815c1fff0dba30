"""Serves the web page: `/app` (the one HTML document), `/app/static/...` (scripts, styles, the
vendored libraries) and `/app/me` (who the token belongs to, for the sign-in form).

The page authenticates every API call with `Authorization: Bearer <token>` from script, the token
kept in sessionStorage. No cookie carries a session, so the browser never attaches credentials on
its own and a cross-site request cannot act for the user (no CSRF to defend against). The price is
that script can read the token, so the page runs under a strict Content-Security-Policy: scripts
only from this origin (plus the import map, allowed by its hash), no eval, no inline handlers, and
every fetch only to this origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from services.gateway.deps import CurrentUser
from services.gateway.schemas import COMMON_RESPONSES

HERE = Path(__file__).parent
STATIC = HERE / "static"
_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


def _page() -> tuple[bytes, str]:
    html = (HERE / "index.html").read_text(encoding="utf-8")
    match = _IMPORT_MAP.search(html)
    assert match is not None, "index.html must carry its import map"
    digest = base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode()
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'sha256-{digest}'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
            "font-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return html.encode(), policy


PAGE, POLICY = _page()
PAGE_HEADERS = {
    "Content-Security-Policy": POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(prefix="/app", tags=["web page"])


class Me(BaseModel):
    id: int
    name: str


@router.get("", include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers=PAGE_HEADERS)


@router.get("/", include_in_schema=False)
async def page_slash() -> RedirectResponse:
    return RedirectResponse("/app", status_code=308)


@router.get("/me", response_model=Me, responses=COMMON_RESPONSES, summary="The user a bearer token belongs to")
async def me(user: CurrentUser) -> Me:
    return Me(id=user.id, name=user.name)


def mount(app: FastAPI) -> None:
    """Adds the page's routes and its static files to the gateway."""
    app.include_router(router)
    app.mount("/app/static", StaticFiles(directory=STATIC), name="app-static")
