"""The sellers' web page in a real browser, on the real services: sign in, upload a good file and
read its metrics, upload a bad file and read its cells, set a link's cost and see its ROMI change,
connect the SweetClub sandbox and watch its sync reach success, sign out; a second user sees none
of the first user's reports; the Russian page. axe-core checks every page; screenshots of each
page go to .run/screenshots/."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Browser, Session
from tests.connectors.conftest import Sandbox, control
from tests.e2e.conftest import Stack
from tests.workbooks import CAMPAIGN_ROWS, EN_HEADERS, RU_HEADERS, workbook_bytes

CHANNEL = -1001234567890
OTHER_CHANNEL = -1009876543210
SC_CREDENTIALS = {"username": "testapi@testapi.com", "password": "testapi@testapi.com"}
TIMEOUT = 30_000  # ms, for what waits on the services (validation, metrics, syncs)

# Two bad cells: a date that does not exist and an amount that is not a number.
BAD_ROWS: list[list[Any]] = [list(r) for r in CAMPAIGN_ROWS]
BAD_ROWS[0][10] = "31.02.2024"
BAD_ROWS[2][3] = "двести"


def padded_campaign() -> bytes:
    """The hand-computed campaign plus four columns of random text the parser ignores (unknown
    headers): the same metrics, but half a megabyte that takes a while on a throttled link."""
    noise = [[base64.b64encode(os.urandom(22_000)).decode() for _ in range(4)] for _ in CAMPAIGN_ROWS]
    headers = [*EN_HEADERS, "notes 1", "notes 2", "notes 3", "notes 4"]
    return workbook_bytes(headers, [[*row, *extra] for row, extra in zip(CAMPAIGN_ROWS, noise, strict=True)])


def sign_in(session: Session, stack: Stack, user: str) -> Page:
    page = session.page
    page.goto(f"{stack.gateway_url}/app")
    page.get_by_label(re.compile("Access token|Токен доступа")).fill(stack.token(user))
    page.get_by_role("button", name=re.compile("^(Sign in|Войти)$")).click()
    expect(page.get_by_test_id("sign-out")).to_be_visible()
    return page


def show_channel(page: Page, channel: int) -> None:
    page.get_by_label(re.compile("Telegram channel id|ID Telegram-канала")).fill(str(channel))
    page.get_by_role("button", name=re.compile("^(Show|Показать)$")).click()


def drop_file(page: Page, name: str, content: bytes) -> None:
    """A real drag-and-drop of a file onto the drop zone (a DataTransfer holding a File)."""
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}));
            return dt;
        }""",
        [name, base64.b64encode(content).decode()],
    )
    zone = page.get_by_test_id("dropzone")
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    zone.dispatch_event("drop", {"dataTransfer": transfer})


def record_progress(page: Page) -> None:
    """Keeps every value the upload's progress bar shows, for the test to read afterwards."""
    page.evaluate(
        """() => {
            window.__progress = [];
            new MutationObserver(() => {
                const bar = document.getElementById("upload-progress");
                if (bar) window.__progress.push(Number(bar.value));
            }).observe(document.body, {subtree: true, childList: true, attributes: true});
        }"""
    )


def record_badges(page: Page) -> None:
    """Keeps every status the reports table's badges show, in order."""
    page.evaluate(
        """() => {
            window.__badges = [];
            new MutationObserver(() => {
                const badge = document.querySelector("[data-testid=reports] tbody tr .badge");
                const text = badge && badge.textContent;
                if (text && window.__badges[window.__badges.length - 1] !== text) window.__badges.push(text);
            }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )


def metric(page: Page, name: str) -> str:
    return page.locator(f'li.metric[data-metric="{name}"] .metric-value').inner_text().replace("\u202f", " ")


def test_a_seller_uploads_reads_costs_connects_and_signs_out(browser: Browser, stack: Stack, sandbox: Sandbox) -> None:
    session = browser.open("en-US")
    page = session.page
    page.goto(f"{stack.gateway_url}/app")
    browser.check(page, "01-sign-in")

    # a wrong token is refused, and nothing is kept
    page.get_by_label("Access token").fill("sw_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("This token is not valid or was revoked.")
    assert page.evaluate("sessionStorage.length") == 0

    sign_in(session, stack, "wanda")
    assert page.evaluate("sessionStorage.getItem('saleswire.token')") == stack.token("wanda")
    assert page.evaluate("document.cookie") == ""
    show_channel(page, CHANNEL)
    expect(page.get_by_text("No reports for this channel yet")).to_be_visible()

    # ---- a good file, dropped, with the upload's progress throttled so the bar moves
    cdp = session.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 400 * 1024},
    )
    good = padded_campaign()
    drop_file(page, "october.xlsx", good)
    expect(page.get_by_test_id("chosen-file")).to_contain_text("october.xlsx")
    assert page.get_by_label("Report name").input_value() == "october"
    page.get_by_label("Budget").fill("1000")
    record_progress(page)
    record_badges(page)
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_test_id("upload-ok")).to_be_visible(timeout=TIMEOUT)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    seen: list[float] = page.evaluate("window.__progress")
    assert seen[-1] == 100
    assert any(0 < v < 100 for v in seen), f"the bar never showed the file in transit: {seen}"

    # the report is listed, newest first, and its badge follows processing to "ready"
    row = page.get_by_test_id("reports").locator("tbody tr").first
    expect(row).to_contain_text("october")
    expect(row.locator(".badge")).to_have_text("ready", timeout=TIMEOUT)
    expect(row.locator("td").nth(3)).to_have_text("2")
    badges: list[str] = page.evaluate("window.__badges")
    assert badges[-1] == "ready" and set(badges) <= {"pending", "processing", "ready"}, badges
    browser.check(page, "02-reports")

    # ---- a bad file: nothing created, its cells as a table
    page.get_by_label(re.compile("^Choose an Excel file")).set_input_files(
        {"name": "broken.xlsx", "mimeType": "application/octet-stream", "buffer": workbook_bytes(EN_HEADERS, BAD_ROWS)}
    )
    page.get_by_label("Report name").fill("broken")
    page.get_by_label("Budget").fill("500")
    page.get_by_role("button", name="Upload", exact=True).click()
    cells = page.get_by_test_id("cell-errors")
    expect(cells).to_be_visible(timeout=TIMEOUT)
    body = cells.locator("tbody tr")
    expect(body).to_have_count(2)
    texts = sorted(body.all_inner_texts())
    assert "Лист1" in texts[0] and "D4" in texts[0] and "двести" in texts[0], texts
    assert "K2" in texts[1] and "31.02.2024" in texts[1] and "invalid_date" in texts[1], texts
    assert [h.strip() for h in cells.locator("thead th").all_inner_texts()] == [
        "Sheet", "Cell", "Column", "Value", "Problem",
    ]  # fmt: skip
    browser.check(page, "03-rejected-file")
    expect(page.get_by_test_id("reports").locator("tbody tr")).to_have_count(1)

    # ---- the report page
    page.get_by_role("link", name="october").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("october")
    report_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator(".report-meta .badge")).to_have_text("ready")
    assert metric(page, "subs") == "5"
    assert metric(page, "sales") == "2"
    assert metric(page, "profit").startswith("500.50")
    assert metric(page, "romi") == "-49.95 %"
    assert metric(page, "cac").startswith("500.00")
    # a definition shows on hover, and on keyboard focus
    card = page.locator('li.metric[data-metric="romi"]')
    expect(card.locator(".tooltip")).to_be_hidden()
    card.hover()
    expect(card.locator(".tooltip")).to_be_visible()
    expect(card.locator(".tooltip")).to_have_text("(profit − budget) / budget × 100.")
    page.mouse.move(0, 0)
    page.locator('li.metric[data-metric="cpc"]').focus()
    expect(page.locator('li.metric[data-metric="cpc"] .tooltip')).to_be_visible()
    assert page.locator('li.metric[data-metric="cpc"]').get_attribute("aria-describedby") == "def-cpc"
    # the funnel chart is drawn from the report's counts
    chart = page.evaluate(
        "() => Chart.getChart(document.querySelector('[data-testid=funnel-chart]')).data.datasets[0].data"
    )
    assert chart == [5, 1, 1, 2]

    # the export downloads with the Bearer header
    with page.expect_download() as download:
        page.get_by_role("button", name="Export to Excel").click()
    path = download.value.path()
    assert path is not None and Path(path).read_bytes()[:2] == b"PK"
    assert download.value.suggested_filename.endswith(".xlsx")

    browser.check(page, "04-report")

    # ---- a source's rows: the listing with filters and paging
    page.get_by_test_id("sources").get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rows of a source")
    rows = page.get_by_test_id("rows").locator("tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("Rows per page").select_option("10")
    page.get_by_label("Order by").select_option("purchase_amount")
    page.get_by_label("Direction").select_option("desc")
    page.get_by_role("button", name="Apply").click()
    expect(rows.first).to_contain_text("300")
    page.get_by_label("Invite link", exact=True).select_option("true")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("200.5")
    page.get_by_label("Status", exact=True).select_option("lead")
    page.get_by_label("Invite link", exact=True).select_option("")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    browser.check(page, "06-rows")

    # ---- connections: create the SweetClub sandbox, check, attach, sync, delete
    control(sandbox.sweetclub, "reset", {"size": 60, "seed": 7})
    truth = control(sandbox.sweetclub, "truth", method="GET")["sales"]  # type: ignore[index]
    paid = [s for s in truth if s["status"] == "1"]
    page.get_by_role("link", name="Connections").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Connections")
    page.get_by_label("Platform", exact=True).select_option("eduzz")
    expect(page.get_by_label("API token", exact=True)).to_be_visible()
    page.get_by_label("Platform", exact=True).select_option("ofd")
    expect(page.get_by_label("Yandex key", exact=True)).to_be_visible()
    expect(page.get_by_label("OFD key", exact=True)).to_be_visible()
    page.get_by_label("Platform", exact=True).select_option("sweetclub")
    page.get_by_label("Name (optional)", exact=True).fill("My SweetClub")
    page.get_by_label("API address", exact=True).fill(sandbox.sweetclub)
    page.get_by_label("Username (e-mail)", exact=True).fill(SC_CREDENTIALS["username"])
    page.get_by_label("Password", exact=True).fill(SC_CREDENTIALS["password"])
    page.get_by_role("button", name="Connect", exact=True).click()
    card = page.locator("article.connection")
    expect(card).to_have_count(1)
    expect(card.get_by_role("heading")).to_have_text("My SweetClub (sweetclub)")
    card.get_by_role("button", name=re.compile(r"^Check\b.*My SweetClub")).click()
    expect(card.get_by_test_id("check-ok")).to_be_visible(timeout=TIMEOUT)
    card.get_by_label("Report", exact=True).select_option(report_id)
    card.get_by_label("Period from", exact=True).fill("2000-01-01")
    card.get_by_label("Period to", exact=True).fill("2035-12-31")
    card.get_by_role("button", name="Attach to a report").click()
    progress = card.get_by_test_id("sync-progress")
    expect(progress).to_have_attribute("data-state", "idle")
    # the platform's listing answers 3 s late, so the run is seen while it goes
    control(sandbox.sweetclub, "faults", {"fault": "slow", "count": 1, "path": "/api/sale/list", "delay": 3})
    page.evaluate(
        """() => {
            window.__sync = [];
            new MutationObserver(() => {
                const p = document.querySelector("[data-testid=sync-progress]");
                const badge = document.querySelector("[data-testid=sync-sources] tbody .badge");
                const seen = p && badge && `${badge.textContent}/${p.dataset.state}`;
                if (seen && window.__sync[window.__sync.length - 1] !== seen) window.__sync.push(seen);
            }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
        }"""
    )
    card.get_by_role("button", name="Sync", exact=True).click()
    expect(progress).to_have_attribute("data-state", "done", timeout=60_000)
    states: list[str] = page.evaluate("window.__sync")
    assert "processing/running" in states and states[-1] == "ready/done", states
    expect(card.get_by_test_id("sync-sources").locator("tbody .badge").first).to_have_text("ready")
    expect(progress).to_contain_text(f"sales: {len(truth)}")  # every sale read, paid or not
    expect(card.locator("p.muted")).not_to_contain_text("last sync: —")  # the connection was read again
    browser.check(page, "07-connections")
    # the synced sales are in the report
    card.get_by_test_id("sync-sources").get_by_role("link", name="october").click()
    expect(page.get_by_test_id("sources").locator("tbody tr")).to_have_count(2)
    page.wait_for_function(
        "n => document.querySelector('li.metric[data-metric=sales] .metric-value').textContent === String(n)",
        arg=2 + len(paid),
        timeout=TIMEOUT,
    )
    page.go_back()
    card = page.locator("article.connection")
    card.get_by_role("button", name="Delete").click()
    card.get_by_role("button", name="Yes, delete").click()
    expect(page.locator("article.connection")).to_have_count(0)
    expect(page.get_by_text("No connections for this channel yet.")).to_be_visible()

    # ---- sign out: the token is gone from the tab, the page asks for it again
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_label("Access token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('saleswire.token')") is None
    page.reload()
    expect(page.get_by_label("Access token")).to_be_visible()

    token = stack.token("wanda")
    assert not [u for u in session.watch.requests if token in u], "the token appeared in a URL"
    for proc in stack.processes.values():
        assert token not in proc.log_path.read_text(), f"the token appeared in the {proc.name} log"
    session.watch.assert_clean()


def test_a_link_cost_changes_its_romi_and_a_rate_brings_a_currency_into_profit(browser: Browser, stack: Stack) -> None:
    # Борис's sale (200.50) is in BRL, the rest in the report's RUB
    rows = [[*row, "BRL" if row[0] == 102 else None] for row in CAMPAIGN_ROWS]
    response = httpx.post(
        f"{stack.gateway_url}/sales/create",
        params={"channel_id": CHANNEL, "name": "Links", "budget": "1000", "currency": "RUB"},
        files={"file": ("c.xlsx", workbook_bytes([*EN_HEADERS, "currency"], rows))},
        headers=stack.headers("vera"),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    session = browser.open("en-US")
    page = sign_in(session, stack, "vera")
    page.goto(f"{stack.gateway_url}/app#/report/{response.json()['report_id']}")
    expect(page.locator(".report-meta .badge")).to_have_text("ready", timeout=TIMEOUT)

    # the BRL sale has no rate: left out of profit, and said so
    warnings = page.get_by_test_id("warnings")
    expect(warnings).to_contain_text("BRL")
    by_currency = page.get_by_test_id("profit-by-currency")
    expect(by_currency.locator("tr", has_text="BRL")).to_contain_text("200.50 BRL")
    expect(by_currency.locator("tr", has_text="BRL")).to_contain_text("no rate")
    assert metric(page, "profit") == "300.00 RUB"

    # the links table: sortable, a cost changes its ROMI
    links = page.get_by_test_id("links")
    expect(links).to_be_visible(timeout=TIMEOUT)
    first = links.locator("tbody tr").first.locator("th")
    # largest subs first: the users who came without a link (102, 104, 105), then +abc (101, 103)
    expect(first).to_have_text("no link")
    links.locator('button[data-sort="subs"]').click()
    expect(links.locator('th[aria-sort="ascending"] button')).to_have_attribute("data-sort", "subs")
    expect(first).to_have_text("https://t.me/+abc")
    links.locator('button[data-sort="subs"]').click()
    expect(first).to_have_text("no link")
    romi = links.locator('tr[data-link="https://t.me/+abc"] td[data-col="romi"]')
    before = romi.inner_text()
    page.get_by_label("Cost of https://t.me/+abc").fill("200")
    page.get_by_role("button", name="Save costs").click()
    expect(page.get_by_text("Costs saved; ROMI recomputed.")).to_be_visible(timeout=TIMEOUT)
    expect(romi).not_to_have_text(before)
    assert romi.inner_text().replace("\u202f", " ") == "50 %"  # (300 − 200) / 200 × 100
    browser.check(page, "05-report-links")

    # a rate for BRL: the sale enters profit (300 + 200.50 × 10), the warning goes
    page.get_by_label("RUB per 1 BRL").fill("10")
    page.get_by_role("button", name="Save rates").click()
    page.wait_for_function(
        "() => document.querySelector('li.metric[data-metric=profit] .metric-value').textContent.startsWith('2,305.00')",
        timeout=TIMEOUT,
    )
    expect(page.get_by_test_id("warnings")).to_have_count(0)
    expect(page.get_by_test_id("profit-by-currency").locator("tr", has_text="BRL")).to_contain_text("10")

    session.watch.assert_clean()


def test_a_second_user_sees_none_of_the_first_users_reports(browser: Browser, stack: Stack) -> None:
    response = httpx.post(
        f"{stack.gateway_url}/sales/create",
        params={"channel_id": OTHER_CHANNEL, "name": "Private", "budget": "100"},
        files={"file": ("c.xlsx", workbook_bytes(EN_HEADERS, CAMPAIGN_ROWS))},
        headers=stack.headers("xena"),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    report_id = response.json()["report_id"]

    mine = browser.open("en-US")
    page = sign_in(mine, stack, "xena")
    show_channel(page, OTHER_CHANNEL)
    expect(page.get_by_test_id("reports").locator("tbody tr")).to_have_count(1)

    other = browser.open("en-US")
    page = sign_in(other, stack, "yuri")
    show_channel(page, OTHER_CHANNEL)
    expect(page.get_by_text("No reports for this channel yet")).to_be_visible()
    page.goto(f"{stack.gateway_url}/app#/report/{report_id}")
    expect(page.get_by_role("alert")).to_have_text("report not found")
    page.goto(f"{stack.gateway_url}/app#/connections")
    expect(page.get_by_text("No connections for this channel yet.")).to_be_visible()
    # the two tabs are separate browser sessions: each keeps its own token
    assert mine.page.evaluate("sessionStorage.getItem('saleswire.user')") == "xena"
    assert page.evaluate("sessionStorage.getItem('saleswire.user')") == "yuri"
    mine.watch.assert_clean()
    other.watch.assert_clean()


def test_the_page_speaks_russian_to_a_russian_browser(browser: Browser, stack: Stack) -> None:
    session = browser.open("ru-RU")
    page = session.page
    page.goto(f"{stack.gateway_url}/app")
    expect(page.get_by_role("button", name="Войти")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "ru"
    # by keyboard alone: Tab to the token, type it, Enter; then the skip link leads into the page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(stack.token("zoya"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("sign-out")).to_have_text("Выйти")
    # a new page puts the focus on its heading; the skip link before the menu leads back into the page
    page.wait_for_function("() => document.activeElement.tagName === 'H1'")  # (effects run after paint)
    assert page.evaluate("document.activeElement.textContent") == "Отчёты"
    for _ in range(4):  # back through Выйти, Подключения, Отчёты to the skip link
        page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.textContent") == "Перейти к содержимому"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "channel-id"
    page.keyboard.type(str(CHANNEL))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Отчёты канала"))).to_be_visible()
    page.get_by_label(re.compile("^Выбрать Excel-файл")).set_input_files(
        {"name": "плохой.xlsx", "mimeType": "application/octet-stream", "buffer": workbook_bytes(RU_HEADERS, BAD_ROWS)}
    )
    page.get_by_label("Бюджет").fill("500")
    page.get_by_role("button", name="Загрузить", exact=True).click()
    cells = page.get_by_test_id("cell-errors")
    expect(cells).to_be_visible(timeout=TIMEOUT)
    assert [h.strip() for h in cells.locator("thead th").all_inner_texts()] == [
        "Лист", "Ячейка", "Столбец", "Значение", "Ошибка",
    ]  # fmt: skip
    expect(cells.locator("tbody tr").filter(has_text="K2")).to_contain_text("неверная дата")
    expect(page.get_by_role("heading", name="Файл отклонён")).to_be_visible()
    browser.check(page, "08-rejected-file-ru")
    session.watch.assert_clean()
