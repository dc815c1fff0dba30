"""The baseline of bench/gateway_load.py: a bare FastAPI app answering the same routes with a
constant body of the same shape, no auth, no database."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()
REPORT: dict[str, Any] = {
    "id": "r", "name": "n", "created_at": "2024-01-01T00:00:00Z", "channel_id": -1001234567890,
    "status": "success", "budget": 1000.0, "profit": 500.5, "creator_id": 1, "error_message": None,
    "updated_at": "2024-01-01T00:00:00Z", "subs": 5, "sales": 2, "leads": 1, "funnel": 1, "avg_sale": 3.0,
    "avg_funnel": 0.5, "avg_lead": 1.0, "premium_percent": 20.0, "username_percent": 40.0,
    "source_reports": [], "romi": -49.95, "cpf": 1000.0, "cpl": 1000.0, "cac": 500.0, "cpc": 200.0,
    "cr_leads": 20.0, "cr_sales": 40.0, "cr_funnel": 20.0,
}  # fmt: skip
ROWS = [{"user_id": i, "status": "sale", "purchase_amount": 300.0} for i in range(10)]


@app.post("/sales/analytic/report")
async def report(body: dict[str, Any]) -> dict[str, Any]:
    return REPORT


@app.get("/sales/analytic/{channel_id}/{source_report_id}/sales")
async def sales(channel_id: int, source_report_id: str, status: str) -> list[dict[str, Any]]:
    return ROWS
