"""Issue 16 done, through HTTP with every service its own process: a workbook as a Telegram bot
exports it (Russian headers, text dates, sale rows without action dates, amounts in RUB and USD,
three invite links and rows with none, users with several rows, unsubscribes) uploaded with
`rates=USD:95`. The report and the links table are checked against figures computed HERE from the
rows written, by the plain rules of SPEC §4, §4.1 and §4.2 — never by calling the product's code.
Then link costs and exchange rates are replaced and the figures follow; another user sees nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.workbooks import workbook_bytes

CHANNEL = -1002223334445
BUDGET = Decimal("10000")
L1, L2, L3 = "https://t.me/+AAAA1111aaaa", "https://t.me/+BBBB2222bbbb", "https://t.me/+CCCC3333cccc"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADERS = [
    "id пользователя", "имя", "юзернейм", "премиум", "статус", "сумма", "валюта",
    "дата подписки", "дата отписки", "дата действия", "ссылка",
]  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One row as written to the workbook, with the values the test reasons about."""

    user: int
    status: str | None  # lead / sale / funnel, None = a subscriber row
    amount: Decimal | None
    currency: str  # what the amount is in (column, sign, or the report's RUB)
    sub: datetime
    unsub: datetime | None
    action: datetime | None
    link: str | None
    amount_cell: str | None = None  # as typed in the file, when not the plain amount
    currency_cell: str | None = None


def d(text: str) -> datetime:
    return datetime.strptime(text, "%d.%m.%Y %H:%M")


ROWS = [
    Row(1001, None, None, "RUB", d("01.03.2024 10:00"), None, None, L1),
    Row(1001, "sale", Decimal("1990.50"), "RUB", d("01.03.2024 10:00"), None, d("03.03.2024 10:00"), L1,
        amount_cell="1 990,50", currency_cell="руб"),
    # A later row of the same user: its link and unsubscribe are not the user's (first touch).
    Row(1001, "sale", Decimal("10"), "USD", d("05.03.2024 12:00"), d("06.03.2024 12:00"), None, L2,
        currency_cell="USD"),
    Row(1002, "lead", None, "RUB", d("02.03.2024 09:00"), d("02.03.2024 20:00"), d("02.03.2024 12:00"), L1),
    Row(1003, "sale", Decimal("25"), "USD", d("02.03.2024 08:00"), d("12.03.2024 08:00"), None, L2,
        amount_cell="$25"),
    Row(1004, "funnel", None, "RUB", d("10.03.2024 11:00"), None, d("11.03.2024 11:00"), L2),
    Row(1005, "sale", Decimal("1500"), "RUB", d("15.03.2024 15:00"), None, d("16.03.2024 15:00"), L3,
        amount_cell="1500 ₽"),
    Row(1006, None, None, "RUB", d("20.03.2024 20:00"), None, None, None),
    Row(1007, "sale", Decimal("100"), "RUB", d("25.03.2024 09:30"), None, None, None),
    # User 1005's earliest row comes later in the file: the user (and the sale above) belong to L1.
    Row(1005, None, None, "RUB", d("14.03.2024 15:00"), None, None, L1),
    # Unsubscribed exactly one day after subscribing: still counts as retained on day 1.
    Row(1008, None, None, "RUB", d("10.04.2024 10:00"), d("11.04.2024 10:00"), None, L3),
    # Same sub_date as the user's lead row: the tie goes to the first row in the file (L1).
    Row(1002, "sale", Decimal("5"), "USD", d("02.03.2024 09:00"), None, d("04.03.2024 09:00"), L3,
        currency_cell="usd"),
]  # fmt: skip
STATUS_RU = {"sale": "продажа", "lead": "лид", "funnel": "воронка", None: ""}


def workbook() -> bytes:
    def when(value: datetime | None) -> str | None:
        return None if value is None else value.strftime("%d.%m.%Y %H:%M")

    cells = [
        [r.user, f"User {r.user}", f"@u{r.user}" if r.user % 2 else None, "нет", STATUS_RU[r.status],
         r.amount_cell or (None if r.amount is None else str(r.amount)), r.currency_cell,
         when(r.sub), when(r.unsub), when(r.action), r.link]
        for r in ROWS
    ]  # fmt: skip
    return workbook_bytes(HEADERS, cells, sheet="Подписчики")


# ----------------------------------------------------------------------------- the hand computation


def half_up(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def ratio(top: Decimal | int, bottom: Decimal | int, times: int = 1) -> float | None:
    return None if not bottom else half_up(Decimal(top) * times / Decimal(bottom))


def first_touch() -> dict[int, Row]:
    """Each user's row with the earliest sub_date, ties to the first in file order."""
    users: dict[int, Row] = {}
    for row in ROWS:
        if row.user not in users or row.sub < users[row.user].sub:
            users[row.user] = row
    return users


AS_OF = max(v for r in ROWS for v in (r.sub, r.unsub, r.action) if v is not None)


def retention(users: list[Row], days: int) -> float | None:
    old_enough = [u for u in users if u.sub <= AS_OF - timedelta(days=days)]
    stayed = [u for u in old_enough if u.unsub is None or u.unsub >= u.sub + timedelta(days=days)]
    return ratio(len(stayed), len(old_enough), 100)


def amount(row: Row) -> Decimal:
    assert row.amount is not None, "every sale row of the workbook has an amount"
    return row.amount


def figures(rows: list[Row], users: list[Row], rates: dict[str, Decimal], spend: Decimal | None) -> dict[str, Any]:
    sales = [r for r in rows if r.status == "sale"]
    rate = {"RUB": Decimal(1), **rates}
    profit = sum((amount(r) * rate[r.currency] for r in sales if r.currency in rate), Decimal(0))
    subs, unsubs = len(users), sum(1 for u in users if u.unsub is not None)
    buyers = len({r.user for r in sales})
    out: dict[str, Any] = {
        "subs": subs, "unsubs": unsubs, "net_subs": subs - unsubs, "sales": len(sales),
        "leads": sum(1 for r in rows if r.status == "lead"), "funnel": sum(1 for r in rows if r.status == "funnel"),
        "buyers": buyers, "profit": half_up(profit), "cr_sales": ratio(len(sales), subs, 100),
        "retention_d1": retention(users, 1), "retention_d7": retention(users, 7), "retention_d30": retention(users, 30),
    }  # fmt: skip
    if spend is None:
        return {**out, "romi": None, "cpc": None, "cpc_net": None, "cac": None}
    out["romi"] = ratio(profit - spend, spend, 100)
    out["cpc"] = ratio(spend, subs)
    out["cpc_net"] = ratio(spend, subs - unsubs)
    out["cac"] = ratio(spend, buyers)
    return out


def expected_report(rates: dict[str, Decimal]) -> dict[str, Any]:
    users = list(first_touch().values())
    f = figures(ROWS, users, rates, BUDGET)
    f.pop("buyers")
    f["unsub_percent"] = ratio(f["unsubs"], f["subs"], 100)
    f["profit_by_currency"] = {
        code: half_up(sum((amount(r) for r in ROWS if r.status == "sale" and r.currency == code), Decimal(0)))
        for code in {r.currency for r in ROWS if r.status == "sale"}
    }
    return f


def expected_links(costs: dict[str, Decimal], rates: dict[str, Decimal] | None = None) -> list[dict[str, Any]]:
    touch = first_touch()
    table = []
    for link in {u.link for u in touch.values()}:
        users = [u for u in touch.values() if u.link == link]
        ids = {u.user for u in users}
        rows = [r for r in ROWS if r.user in ids]
        cost = costs.get(link) if link is not None else None
        entry = {"invite_link": link, **figures(rows, users, {"USD": Decimal(95)} if rates is None else rates, cost)}
        entry["cost"] = None if cost is None else half_up(cost)
        table.append(entry)
    table.sort(key=lambda e: (-e["subs"], e["invite_link"] is None, e["invite_link"] or ""))
    return table


# ----------------------------------------------------------------------------- through HTTP


def call(stack: Stack, user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{stack.gateway_url}{path}", headers=stack.headers(user), timeout=120, **kwargs)


def settled_report(stack: Stack, report_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = call(
            stack, "ru-bot", "POST", "/sales/analytic/report", json={"report_id": report_id}
        ).json()
        if body["status"] in ("success", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


@pytest.fixture(scope="module")
def report_id(stack: Stack) -> str:
    r = httpx.post(
        f"{stack.gateway_url}/sales/create",
        params={"channel_id": CHANNEL, "name": "Март, бот", "budget": str(BUDGET), "rates": "USD:95"},
        files={"file": ("telegram-bot-export.xlsx", workbook(), XLSX)},
        headers=stack.headers("ru-bot"),
        timeout=120,
    )
    assert r.status_code == 200, r.text
    rid: str = r.json()["report_id"]
    assert settled_report(stack, rid)["status"] == "success"
    return rid


def subset(body: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {key: body.get(key) for key in expected}


def test_report_matches_the_hand_computation(stack: Stack, report_id: str) -> None:
    report = settled_report(stack, report_id)
    expected = expected_report({"USD": Decimal(95)})
    assert expected["profit"] == 1990.50 + 1500 + 100 + (10 + 25 + 5) * 95  # the rows, added by eye
    assert subset(report, expected) == expected
    assert report["currency"] == "RUB" and report["exchange_rates"] == {"USD": 95}
    assert report["cpc_net"] == ratio(BUDGET, expected["net_subs"])
    assert report["warnings"] == []


def test_links_table_matches_the_hand_computation(stack: Stack, report_id: str) -> None:
    r = call(stack, "ru-bot", "GET", f"/sales/analytic/report/{report_id}/links")
    assert r.status_code == 200, r.text
    links = r.json()
    assert links == expected_links({})
    assert [e["invite_link"] for e in links][:1] == [L1]  # largest subs first
    report = settled_report(stack, report_id)
    for key in ("subs", "sales"):
        assert sum(e[key] for e in links) == report[key]
    assert half_up(sum((Decimal(str(e["profit"])) for e in links), Decimal(0))) == report["profit"]


def test_link_costs_change_each_links_cost_romi_cpc_and_cac(stack: Stack, report_id: str) -> None:
    costs = {L1: Decimal("5000"), L2: Decimal("2500.50"), L3: Decimal("0")}
    r = call(stack, "ru-bot", "PUT", f"/sales/analytic/report/{report_id}/links/costs",
             json={link: str(cost) for link, cost in costs.items()})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == expected_links(costs)
    by_link = {e["invite_link"]: e for e in r.json()}
    assert by_link[L1]["cost"] == 5000 and by_link[L1]["romi"] is not None and by_link[L1]["cac"] is not None
    assert by_link[L3]["romi"] is None and by_link[L3]["cpc"] == 0  # a zero cost divides nothing
    assert by_link[None]["cost"] is None
    assert call(stack, "ru-bot", "GET", f"/sales/analytic/report/{report_id}/links").json() == r.json()


def test_without_a_rate_usd_rows_leave_profit_and_say_so(stack: Stack, report_id: str) -> None:
    r = call(stack, "ru-bot", "PUT", f"/sales/analytic/report/{report_id}/exchange-rates", json={})
    assert r.status_code == 200, r.text
    report = r.json()
    expected = expected_report({})
    assert expected["profit"] == 1990.50 + 1500 + 100
    assert subset(report, expected) == expected
    assert report["exchange_rates"] == {}
    [warning] = report["warnings"]
    assert "3" in warning and "USD" in warning
    r = call(stack, "ru-bot", "PUT", f"/sales/analytic/report/{report_id}/exchange-rates", json={"$": "90"})
    assert r.status_code == 200, r.text
    assert r.json()["profit"] == expected_report({"USD": Decimal(90)})["profit"] and r.json()["warnings"] == []
    bad = call(stack, "ru-bot", "PUT", f"/sales/analytic/report/{report_id}/exchange-rates", json={"RUB": 1})
    assert bad.status_code == 422 and "own currency" in bad.text


def test_bad_currency_or_rates_at_creation_are_422(stack: Stack) -> None:
    for params in ({"currency": "монеты"}, {"rates": "USD95"}, {"rates": "RUB:1"}, {"rates": "USD:-1"}):
        r = httpx.post(
            f"{stack.gateway_url}/sales/create",
            params={"channel_id": CHANNEL, "name": "x", "budget": "1", **params},
            files={"file": ("a.xlsx", workbook(), XLSX)},
            headers=stack.headers("ru-bot"),
            timeout=60,
        )
        assert r.status_code == 422, (params, r.text)
        assert r.json()["detail"][0]["loc"][:2] == ["query", next(iter(params))]


def test_another_user_gets_404_on_every_new_endpoint(stack: Stack, report_id: str) -> None:
    for method, path, body in (
        ("GET", f"/sales/analytic/report/{report_id}/links", None),
        ("PUT", f"/sales/analytic/report/{report_id}/links/costs", {L1: 1}),
        ("PUT", f"/sales/analytic/report/{report_id}/exchange-rates", {"USD": 1}),
    ):
        assert call(stack, "someone-else", method, path, json=body).status_code == 404, path
    assert settled_report(stack, report_id)["exchange_rates"] == {"USD": 90}  # untouched by them


def test_cli_uploads_with_rates_and_sets_costs_and_rates(
    stack: Stack, report_id: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("cli16")
    env = {**os.environ, "SALESWIRE_CONFIG": str(home / "config.json"), "COLUMNS": "260", "PYTHONIOENCODING": "utf-8"}
    script = Path(sys.executable).parent / "saleswire"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "services.gateway.cli"]

    def cli(*args: str) -> str:
        done = subprocess.run([*command, *args], env=env, cwd=home, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    cli("login", "--url", stack.gateway_url, "--token", stack.token("ru-bot"))
    (home / "bot.xlsx").write_bytes(workbook())
    out = cli("upload", "bot.xlsx", "-c", str(CHANNEL), "--name", "CLI", "--budget", str(BUDGET),
              "--currency", "₽", "--rates", "USD:95", "--poll-interval", "0.3")  # fmt: skip
    assert "currencies (report in RUB)" in out
    usd = next(line for line in out.splitlines() if "│ USD" in line)
    assert "40.00" in usd and "95" in usd
    assert f"{expected_report({'USD': Decimal(95)})['profit']:,.2f}" in out  # 7,390.50
    assert "(retention_d7)" in out
    links = cli("links", report_id)
    assert L1 in links and "(no link)" in links
    costs = cli("link-costs", report_id, f"{L1}=100", f"{L2}=200")
    l1 = next(line for line in costs.splitlines() if L1 in line)
    [hand] = [e for e in expected_links({L1: Decimal(100)}, {"USD": Decimal(90)}) if e["invite_link"] == L1]
    assert f"│ {hand['profit']:,.2f} │ 100.00 │ {hand['romi']:.2f} % │" in l1  # the rate is 90 since the rates test
    rates = cli("rates", report_id, "")
    warning = next(line for line in rates.splitlines() if line.startswith("warning:"))
    assert "3" in warning and "USD" in warning  # the three USD sale rows left out of profit
