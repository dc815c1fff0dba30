"""Upload → report through HTTP, with every service running as its own process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.infra import stored_rows
from tests.workbooks import CAMPAIGN_ROWS, EN_HEADERS, RU_HEADERS, workbook_bytes

CHANNEL = -1001234567890
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def upload(
    stack: Stack,
    user: str,
    content: bytes,
    *,
    budget: str = "1000",
    name: str = "Кампания",
    channel: int = CHANNEL,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway_url}/sales/create",
        params={"channel_id": channel, "name": name, "budget": budget},
        files={"file": ("campaign.xlsx", content, XLSX)},
        headers={**stack.headers(user), **(headers or {})},
        timeout=120,
    )


def wait_report(stack: Stack, user: str, report_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.post(
            f"{stack.gateway_url}/sales/analytic/report",
            json={"report_id": report_id},
            headers=stack.headers(user),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in ("success", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


@pytest.fixture(scope="module")
def campaign(stack: Stack) -> dict[str, Any]:
    r = upload(stack, "alice", workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS))
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("pending", "processing", "success")
    return wait_report(stack, "alice", r.json()["report_id"])


def test_russian_workbook_gives_the_hand_computed_report(campaign: dict[str, Any]) -> None:
    report = campaign
    assert report["status"] == "success", report
    assert report["channel_id"] == CHANNEL
    assert report["budget"] == 1000
    expected = {
        "subs": 5, "sales": 2, "leads": 1, "funnel": 1, "profit": 500.5, "romi": -49.95,
        "cpc": 200.0, "cpf": 1000.0, "cpl": 1000.0, "cac": 500.0,
        "cr_sales": 40.0, "cr_leads": 20.0, "cr_funnel": 20.0,
        "avg_sale": 3.0, "avg_lead": 1.0, "avg_funnel": 0.5,
        "premium_percent": 20.0, "username_percent": 40.0,
    }  # fmt: skip
    assert {k: report[k] for k in expected} == expected
    assert report["error_message"] is None
    assert report["created_at"].endswith("Z") and report["updated_at"].endswith("Z")
    [source] = report["source_reports"]
    assert source["kind"] == "excel" and source["rows"] == 6 and source["status"] == "ingested"


def sales(stack: Stack, user: str, source_id: str, channel: int = CHANNEL, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{stack.gateway_url}/sales/analytic/{channel}/{source_id}/sales",
        params=params,
        headers=stack.headers(user),
        timeout=10,
    )


def test_sales_listing_filters_orders_and_pages(stack: Stack, campaign: dict[str, Any]) -> None:
    src = campaign["source_reports"][0]["id"]
    rows = sales(stack, "alice", src, status="sale").json()
    assert [r["user_id"] for r in rows] == [101, 102]
    first = rows[0]
    assert first["purchase_amount"] == 300.0 and first["username"] == "anna" and first["is_premium"] is True
    assert first["sub_date"] == "2024-01-01T10:00:00Z" and first["action_period"] == 2.0
    assert first["birthdate"] == "1990-05-01"
    assert [r["user_id"] for r in sales(stack, "alice", src, status="lead").json()] == [101]
    assert [r["user_id"] for r in sales(stack, "alice", src, status="funnel").json()] == [103]
    assert [r["user_id"] for r in sales(stack, "alice", src, status="sale", is_premium=True).json()] == [101]
    assert [r["user_id"] for r in sales(stack, "alice", src, status="sale", is_null_invite_link=True).json()] == [102]
    assert [r["user_id"] for r in sales(stack, "alice", src, status="sale", is_null_invite_link=False).json()] == [101]
    assert sales(stack, "alice", src, status="lead", product="Курс").json()[0]["user_id"] == 101
    assert sales(stack, "alice", src, status="funnel", product="Курс").json() == []
    in_feb = sales(
        stack, "alice", src, status="sale", start_date="2024-02-01T00:00:00Z", end_date="2024-02-28T00:00:00Z"
    )
    assert [r["user_id"] for r in in_feb.json()] == [102]
    by_amount = sales(stack, "alice", src, status="sale", order_by="purchase_amount", order_dir="desc").json()
    assert [r["purchase_amount"] for r in by_amount] == [300.0, 200.5]
    page2 = sales(stack, "alice", src, status="sale", order_by="user_id", limit=1, offset=1).json()
    assert [r["user_id"] for r in page2] == [102]


def test_report_list_of_a_channel(stack: Stack, campaign: dict[str, Any]) -> None:
    r = httpx.get(
        f"{stack.gateway_url}/sales/analytic",
        params={"channel_id": CHANNEL},
        headers=stack.headers("alice"),
        timeout=10,
    )
    assert r.status_code == 200
    items = r.json()
    assert campaign["id"] in [i["id"] for i in items]
    assert set(items[0]) == {"id", "name", "created_at", "channel_id"}


def test_nothing_of_another_user_is_visible(stack: Stack, campaign: dict[str, Any]) -> None:
    src = campaign["source_reports"][0]["id"]
    r = httpx.post(
        f"{stack.gateway_url}/sales/analytic/report",
        json={"report_id": campaign["id"]},
        headers=stack.headers("mallory"),
        timeout=10,
    )
    assert r.status_code == 404
    assert sales(stack, "mallory", src, status="sale").status_code == 404
    listing = httpx.get(
        f"{stack.gateway_url}/sales/analytic",
        params={"channel_id": CHANNEL},
        headers=stack.headers("mallory"),
        timeout=10,
    )
    assert listing.status_code == 200 and campaign["id"] not in [i["id"] for i in listing.json()]
    # The right source report under the wrong channel is not found either.
    assert sales(stack, "alice", src, channel=-100999, status="sale").status_code == 404


def coalesced(stack: Stack) -> dict[str, float]:
    """The gateway's counters of shared work: whole read requests, and reads inside the runs."""
    found: dict[str, float] = {}
    for line in httpx.get(f"{stack.gateway_url}/metrics", timeout=10).text.splitlines():
        for kind in ("requests", "reads"):
            if line.startswith(f"saleswire_gateway_{kind}_coalesced_total "):
                found[kind] = float(line.split()[1])
    assert set(found) == {"requests", "reads"}, f"coalescing counters not exported: {found}"
    return found


async def test_concurrent_reads_share_round_trips_but_never_across_users(
    stack: Stack, campaign: dict[str, Any]
) -> None:
    src = campaign["source_reports"][0]["id"]
    before = coalesced(stack)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:

        async def report(user: str) -> httpx.Response:
            return await http.post(
                "/sales/analytic/report", json={"report_id": campaign["id"]}, headers=stack.headers(user)
            )

        async def rows(user: str) -> httpx.Response:
            return await http.get(
                f"/sales/analytic/{CHANNEL}/{src}/sales", params={"status": "sale"}, headers=stack.headers(user)
            )

        answers = await asyncio.gather(*(f(u) for _ in range(30) for u in ("alice", "mallory") for f in (report, rows)))
    owner = [a for a in answers if stack.token("alice") in a.request.headers["authorization"]]
    other = [a for a in answers if stack.token("mallory") in a.request.headers["authorization"]]
    assert [a.status_code for a in owner] == [200] * 60
    assert all(a.json() == campaign for a in owner if a.url.path.endswith("/report"))
    assert all(len(a.json()) == campaign["sales"] for a in owner if a.url.path.endswith("/sales"))
    assert [a.status_code for a in other] == [404] * 60  # never joined to alice's reads
    after = coalesced(stack)
    # 120 requests at once did share work: whole answers, or the database reads of their runs.
    assert after["requests"] + after["reads"] > before["requests"] + before["reads"]


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic YWxpY2U6cHc=", "Bearer"])
def test_every_endpoint_requires_a_valid_token(stack: Stack, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    base = stack.gateway_url
    calls = [
        httpx.post(
            f"{base}/sales/create",
            params={"channel_id": 1, "name": "x", "budget": 1},
            files={"file": ("a.xlsx", b"PK\x03\x04", XLSX)},
            headers=headers,
        ),
        httpx.get(f"{base}/sales/analytic", params={"channel_id": 1}, headers=headers),
        httpx.post(f"{base}/sales/analytic/report", json={"report_id": "x"}, headers=headers),
        httpx.get(f"{base}/sales/analytic/1/x/sales", params={"status": "sale"}, headers=headers),
    ]
    assert [c.status_code for c in calls] == [401] * 4


def test_revoked_token_is_refused(stack: Stack) -> None:
    import subprocess
    import sys

    token = stack.token("revoked-user")
    ok = httpx.get(
        f"{stack.gateway_url}/sales/analytic", params={"channel_id": 1}, headers={"Authorization": f"Bearer {token}"}
    )
    assert ok.status_code == 200
    subprocess.run([sys.executable, "-m", "services.gateway.tokens", "revoke", token], env=stack.env, check=True)
    refused = httpx.get(
        f"{stack.gateway_url}/sales/analytic", params={"channel_id": 1}, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 401


def test_malformed_workbook_is_409_naming_each_cell_and_stores_nothing(stack: Stack) -> None:
    rows = [
        [201, "A", None, None, None, None, "нет", None, None, None, "31.02.2024", None, None, None],  # K2 bad date
        [202, "B", None, None, None, None, "может", None, None, None, "2024-01-01", None, None, None],  # G3 bool
        [203, "C", None, None, None, None, "нет", None, None, "продажа", "2024-01-01", None, "2024-01-02", None],
    ]
    db = stack.db()
    reports_before = db.reports.count_documents({})
    r = upload(stack, "alice", workbook_bytes(RU_HEADERS, rows), name="broken")
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["detail"] == "the file has 3 errors"
    cells = {(e["cell"], e["code"]) for e in body["errors"]}
    assert ("K2", "invalid_date") in cells
    assert ("G3", "invalid_boolean") in cells
    assert ("D4", "missing_amount") in cells
    bad_date = next(e for e in body["errors"] if e["cell"] == "K2")
    assert bad_date["row"] == 2 and bad_date["column"] == "sub_date" and bad_date["value"] == "31.02.2024"
    assert db.reports.count_documents({}) == reports_before
    assert stored_rows(db, {"name": {"$in": ["A", "B", "C"]}}) == []


def test_missing_required_column_is_one_error_without_row(stack: Stack) -> None:
    headers = [h for h in EN_HEADERS if h != "sub_date"]
    r = upload(stack, "alice", workbook_bytes(headers, [[1, "x", *[None] * 12]]))
    assert r.status_code == 409
    [error] = r.json()["errors"]
    assert error["row"] is None and error["column"] == "sub_date" and error["code"] == "missing_column"


def test_not_a_spreadsheet_is_415_judged_by_content(stack: Stack) -> None:
    r = upload(stack, "alice", b"user_id,name\n1,Ann\n")  # a CSV named campaign.xlsx
    assert r.status_code == 415
    zipped_text = workbook_bytes(EN_HEADERS, [])[:0] + b"PK\x03\x04" + b"\x00" * 100  # zip magic, not a workbook
    r2 = upload(stack, "alice", zipped_text)
    assert r2.status_code in (409, 415)


def test_file_over_the_limit_is_413(stack: Stack) -> None:
    big = b"PK\x03\x04" + b"\x00" * (stack.settings.max_upload_bytes + 1024)
    r = upload(stack, "alice", big)
    assert r.status_code == 413


@pytest.mark.parametrize(
    "params",
    [
        {"channel_id": "abc", "name": "x", "budget": 1},
        {"channel_id": 2**63, "name": "x", "budget": 1},
        {"channel_id": 1, "name": "x", "budget": -5},
        {"channel_id": 1, "budget": 1},
    ],
)
def test_bad_create_parameters_are_422(stack: Stack, params: dict[str, Any]) -> None:
    r = httpx.post(
        f"{stack.gateway_url}/sales/create",
        params=params,
        files={"file": ("a.xlsx", b"PK\x03\x04", XLSX)},
        headers=stack.headers("alice"),
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    "params",
    [
        {"channel_id": 1, "order_by": "$where"},
        {"channel_id": 1, "order_by": "password"},
        {"channel_id": 1, "limit": 100000},
        {"channel_id": 1, "limit": 0},
        {"channel_id": 1, "offset": -1},
        {"channel_id": 1, "order_dir": "sideways"},
    ],
)
def test_bad_listing_parameters_are_422(stack: Stack, params: dict[str, Any]) -> None:
    r = httpx.get(f"{stack.gateway_url}/sales/analytic", params=params, headers=stack.headers("alice"))
    assert r.status_code == 422


def test_sales_listing_needs_a_valid_status_and_whitelisted_order(stack: Stack, campaign: dict[str, Any]) -> None:
    src = campaign["source_reports"][0]["id"]
    assert sales(stack, "alice", src).status_code == 422
    assert sales(stack, "alice", src, status="bought").status_code == 422
    assert sales(stack, "alice", src, status="sale", order_by="$where").status_code == 422
    assert sales(stack, "alice", src, status='{"$gt": ""}').status_code == 422
    # an operator-looking product is a literal string that matches nothing
    assert sales(stack, "alice", src, status="sale", product='{"$ne": null}').json() == []


def test_idempotency_key_returns_the_first_answer_and_creates_nothing_new(stack: Stack) -> None:
    content = workbook_bytes(
        EN_HEADERS, [[301, "Z", None, None, None, None, "no", None, None, None, "2024-03-01", None, None, None]]
    )
    key = {"Idempotency-Key": "upload-42"}
    first = upload(stack, "alice", content, name="idem", headers=key)
    second = upload(stack, "alice", content, name="idem", headers=key)
    assert first.status_code == second.status_code == 200
    assert first.json()["report_id"] == second.json()["report_id"]
    assert stack.db().reports.count_documents({"name": "idem"}) == 1
    other_user = upload(stack, "bob", content, name="idem", headers=key)
    assert other_user.json()["report_id"] != first.json()["report_id"]


def test_openapi_documents_the_contract(stack: Stack) -> None:
    spec = httpx.get(f"{stack.gateway_url}/openapi.json").json()
    paths = spec["paths"]
    assert {
        "/sales/create",
        "/sales/analytic",
        "/sales/analytic/report",
        "/sales/analytic/{channel_id}/{source_report_id}/sales",
    } <= set(paths)
    create = paths["/sales/create"]["post"]
    assert {"401", "409", "413", "415", "422"} <= set(create["responses"])
    assert "multipart/form-data" in create["requestBody"]["content"]
    params = {p["name"]: p for p in paths["/sales/analytic"]["get"]["parameters"]}
    assert params["order_by"]["schema"]["default"] == "created_at"
    assert params["limit"]["schema"]["default"] == 10 and params["limit"]["schema"]["maximum"] == 1000
