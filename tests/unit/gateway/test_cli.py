"""The CLI without a gateway: config handling, error sentences, the streaming multipart body, and
each command against an httpx.MockTransport that plays the gateway."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from python_multipart import parse_form
from typer.testing import CliRunner, Result

from services.gateway import cli

URL = "http://gateway.test"
TOKEN = "sw_secret"
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cfg" / "config.json"
    monkeypatch.setenv("SALESWIRE_CONFIG", str(path))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables not squeezed to 80 columns
    return path


@pytest.fixture
def logged_in(config_file: Path) -> Path:
    cli.save_config(cli.Config(URL, TOKEN), config_file)
    return config_file


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[httpx.Request]]:
    """Install a handler as the gateway; returns the list of requests it received."""

    def install(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            request.read()  # drains streamed bodies (uploads) so the handler can inspect them
            seen.append(request)
            return handler(request)

        monkeypatch.setattr(cli, "transport", httpx.MockTransport(record))
        return seen

    return install


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args))


def report_json(status: str = "success", **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "rep-1", "name": "Spring", "created_at": "2024-01-01T00:00:00Z", "channel_id": -1001234567890,
        "status": status, "budget": 1000, "profit": 5000, "creator_id": 1, "error_message": None,
        "updated_at": "2024-01-01T00:00:00Z", "subs": 100, "sales": 5, "leads": 20, "funnel": 10,
        "avg_sale": 2.5, "avg_funnel": None, "avg_lead": 1.25, "premium_percent": 10.5, "username_percent": 80,
        "source_reports": [{"id": "src-1", "kind": "excel", "name": "sales.xlsx", "status": "success",
                            "rows": 100, "created_at": "2024-01-01T00:00:00Z"}],
        "romi": 400, "cpf": 100, "cpl": 50, "cac": 200, "cpc": 10, "cr_leads": 20, "cr_sales": 5, "cr_funnel": 10,
    }  # fmt: skip
    body.update(overrides)
    return body


# ----------------------------------------------------------------------------- configuration


def test_config_round_trip_is_private(config_file: Path) -> None:
    path = cli.save_config(cli.Config(URL, TOKEN))
    assert path == config_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": URL, "token": TOKEN}
    assert cli.load_config() == cli.Config(URL, TOKEN)
    # Saving again replaces the file and keeps it private; no temporary files are left behind.
    cli.save_config(cli.Config(URL + "/x", "t2"))
    assert cli.load_config().token == "t2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]


def test_config_path_defaults_to_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SALESWIRE_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cli.config_path() == tmp_path / "xdg" / "saleswire" / "config.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cli.config_path() == tmp_path / "home" / ".config" / "saleswire" / "config.json"


def test_missing_or_broken_config_is_a_sentence(config_file: Path) -> None:
    with pytest.raises(cli.CliError, match="not logged in; run saleswire login"):
        cli.load_config()
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{not json")
    with pytest.raises(cli.CliError, match="cannot read the configuration"):
        cli.load_config()
    config_file.write_text('{"url": "http://x"}')
    with pytest.raises(cli.CliError, match="incomplete"):
        cli.load_config()


def test_normalize_url() -> None:
    assert cli.normalize_url(" http://127.0.0.1:8000/ ") == "http://127.0.0.1:8000"
    with pytest.raises(cli.CliError, match="not a gateway URL"):
        cli.normalize_url("127.0.0.1:8000")


def test_login_verifies_the_token_and_stores_it(gateway, config_file: Path) -> None:
    seen = gateway(lambda r: httpx.Response(200, json=[]))
    result = invoke("login", "--url", URL + "/", "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen[0].url.path == "/sales/analytic"
    assert json.loads(config_file.read_text()) == {"url": URL, "token": TOKEN}
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_login_with_a_refused_token_stores_nothing(gateway, config_file: Path) -> None:
    gateway(lambda r: httpx.Response(401, json={"detail": "invalid or revoked token"}))
    result = invoke("login", "--url", URL, "--token", "bad")
    assert result.exit_code == 1
    assert "the token was refused; run saleswire login" in result.output
    assert not config_file.exists()


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"detail": "missing bearer token"}, "the token was refused; run saleswire login"),
        (404, {"detail": "report not found"}, "report not found"),
        (413, {"detail": "over 150 MiB"}, "the file is larger than the gateway accepts (over 150 MiB)"),
        (415, {"detail": "x"}, "the file is not a spreadsheet the gateway can read (.xlsx, .xls, .xlsb or .ods)"),
        (
            422,
            {"detail": [{"loc": ["query", "channel_id"], "msg": "Input should be a valid integer"},
                        {"loc": ["query", "budget"], "msg": "Field required"}]},
            "the gateway rejected the request: channel_id: Input should be a valid integer; budget: Field required",
        ),
        (500, "Internal Server Error", "the gateway failed (HTTP 500): Internal Server Error"),
        (503, {"detail": "broker down"}, "the gateway is not ready: broker down; try again shortly"),
        (418, {}, "the gateway answered HTTP 418"),
    ],
)  # fmt: skip
def test_describe_error(status: int, body: object, expected: str) -> None:
    assert cli.describe_error(status, body) == expected


def test_missing_route_is_explained() -> None:
    assert cli.describe_error(404, {"detail": "Not Found"}, "/sales/template") == (
        "the gateway has no /sales/template; check the URL given to saleswire login and the gateway's version"
    )
    assert cli.describe_error(404, {"detail": "report not found"}, "/sales/analytic/report") == "report not found"


def test_unreachable_gateway(gateway, logged_in: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gateway(refuse)
    result = invoke("show", "rep-1")
    assert result.exit_code == 1
    assert f"cannot reach the gateway at {URL}" in result.output


def test_revoked_token_says_to_log_in_again(gateway, logged_in: Path) -> None:
    gateway(lambda r: httpx.Response(401, json={"detail": "invalid or revoked token"}))
    result = invoke("reports", "--channel", "-1001234567890")
    assert result.exit_code == 1
    assert "the token was refused; run saleswire login" in result.output


def test_commands_need_a_login(gateway) -> None:
    gateway(lambda r: httpx.Response(200, json=[]))
    result = invoke("reports", "--channel", "1")
    assert result.exit_code == 1
    assert "not logged in" in result.output


# ----------------------------------------------------------------------------- multipart


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Parse with python-multipart, the parser the gateway itself uses."""
    files: dict[str, tuple[str | None, bytes]] = {}

    def on_file(file: object) -> None:
        handle = file.file_object  # type: ignore[attr-defined]
        handle.seek(0)
        name = file.field_name.decode()  # type: ignore[attr-defined]
        raw = file.file_name  # type: ignore[attr-defined]
        files[name] = (raw.decode() if raw else None, handle.read())

    headers = {"Content-Type": content_type.encode(), "Content-Length": str(len(body)).encode()}
    parse_form(headers, io.BytesIO(body), lambda field: None, on_file)
    return files


def test_multipart_body_streams_the_file_with_exact_length_and_progress() -> None:
    payload = bytes(range(256)) * 1000 + b"\r\n--tail\r\n"  # binary, with CRLFs and dashes inside
    progress: list[int] = []
    body = cli.multipart_body(
        io.BytesIO(payload), len(payload), 'my "sales" Ёжик.xlsx', chunk_size=10_000, on_progress=progress.append
    )
    chunks = list(body.chunks)
    raw = b"".join(chunks)
    assert len(raw) == body.length
    assert sum(progress) == len(payload)
    assert len(chunks) > 3  # really chunked, not one blob
    assert all(len(c) <= 10_000 for c in chunks[1:-1])  # file chunks between head and tail
    assert body.content_type.startswith("multipart/form-data; boundary=")
    files = parse_multipart(body.content_type, raw)
    name, content = files["file"]
    assert content == payload
    assert name == "my %22sales%22 Ёжик.xlsx"
    assert b"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in raw


def test_multipart_body_refuses_a_file_that_changed_size() -> None:
    body = cli.multipart_body(io.BytesIO(b"12345"), 3, "a.xlsx")
    with pytest.raises(cli.CliError, match="grew"):
        list(body.chunks)
    body = cli.multipart_body(io.BytesIO(b"12"), 3, "a.xlsx")
    with pytest.raises(cli.CliError, match="shrank"):
        list(body.chunks)


# ----------------------------------------------------------------------------- commands


def test_upload_streams_follows_and_prints_metrics(gateway, logged_in: Path, tmp_path: Path) -> None:
    workbook = tmp_path / "sales.xlsx"
    workbook.write_bytes(b"PK\x03\x04" + b"x" * 600_000)
    statuses = iter(["pending", "processing", "success"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sales/create":
            return httpx.Response(200, json={"report_id": "rep-1", "status": "pending"})
        assert request.url.path == "/sales/analytic/report"
        assert json.loads(request.content) == {"report_id": "rep-1"}
        return httpx.Response(200, json=report_json(next(statuses)))

    seen = gateway(handler)
    result = invoke(
        "upload", str(workbook), "--channel", "-1001234567890", "--name", "Spring", "--budget", "1000.50",
        "--poll-interval", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    create = seen[0]
    assert create.method == "POST"
    assert dict(create.url.params) == {"channel_id": "-1001234567890", "name": "Spring", "budget": "1000.50"}
    assert create.headers["Content-Length"] == str(len(create.content))
    assert "Transfer-Encoding" not in create.headers
    assert create.headers["Idempotency-Key"]
    assert parse_multipart(create.headers["Content-Type"], create.content)["file"] == (
        "sales.xlsx",
        workbook.read_bytes(),
    )
    assert len(seen) == 4  # create + three status polls until success
    assert "ROMI (romi)" in result.output
    assert "400.00 %" in result.output
    assert "5,000.00" in result.output  # profit
    assert "2.50 days" in result.output  # avg_sale
    assert "sales.xlsx" in result.output  # sources table


def test_upload_of_a_file_with_errors_prints_the_cells(gateway, logged_in: Path, tmp_path: Path) -> None:
    workbook = tmp_path / "bad.xlsx"
    workbook.write_bytes(b"PK\x03\x04 bad")
    errors = [
        {"sheet": "Sheet1", "row": 12, "column": "sub_date", "cell": "K12", "value": "31.02.2024",
         "code": "invalid_date", "message": "not a date"},
        {"sheet": "Sheet1", "row": None, "column": "user_id", "cell": None, "value": None,
         "code": "missing_column", "message": "required column user_id is missing"},
    ]  # fmt: skip
    gateway(lambda r: httpx.Response(409, json={"detail": "the file has 2 errors", "errors": errors}))
    result = invoke("upload", str(workbook), "-c", "-1001234567890", "--name", "x", "--budget", "1")
    assert result.exit_code == 1
    assert "the file has 2 errors" in result.output
    for text in ("K12", "31.02.2024", "not a date", "sub_date", "required column user_id is missing"):
        assert text in result.output


def test_upload_of_a_failed_report_exits_non_zero(gateway, logged_in: Path, tmp_path: Path) -> None:
    workbook = tmp_path / "a.xlsx"
    workbook.write_bytes(b"PK")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sales/create":
            return httpx.Response(200, json={"report_id": "rep-1", "status": "pending"})
        return httpx.Response(200, json=report_json("failed", error_message="the database went away"))

    gateway(handler)
    result = invoke("upload", str(workbook), "--channel=-5", "--name", "x", "--budget", "1", "--poll-interval", "0")
    assert result.exit_code == 1
    assert "the report failed: the database went away" in result.output


def test_upload_rejects_bad_budget_and_missing_file(gateway, logged_in: Path, tmp_path: Path) -> None:
    seen = gateway(lambda r: httpx.Response(500))
    result = invoke("upload", str(tmp_path / "a.xlsx"), "--channel", "-5", "--name", "x", "--budget", "ten")
    assert result.exit_code == 2
    result = invoke("upload", str(tmp_path / "missing.xlsx"), "--channel", "-5", "--name", "x", "--budget", "10")
    assert result.exit_code == 1
    assert "no such file" in result.output
    assert seen == []


def test_reports_accepts_negative_channel_ids(gateway, logged_in: Path) -> None:
    items = [{"id": "rep-9", "name": "[bold]Autumn[/bold]", "created_at": "2024-02-01T00:00:00Z",
              "channel_id": -1001234567890}]  # fmt: skip
    seen = gateway(lambda r: httpx.Response(200, json=items))
    result = invoke("reports", "--channel", "-1001234567890", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert seen[0].url.params["channel_id"] == "-1001234567890"
    assert seen[0].url.params["limit"] == "5"
    assert "rep-9" in result.output
    assert "[bold]Autumn[/bold]" in result.output  # user text is shown literally, not as markup


def test_show_prints_a_readable_report(gateway, logged_in: Path) -> None:
    gateway(lambda r: httpx.Response(200, json=report_json()))
    result = invoke("show", "rep-1")
    assert result.exit_code == 0, result.output
    assert "Cost per lead (CPL) (cpl)" in result.output
    assert "50.00" in result.output
    assert "—" in result.output  # avg_funnel is null
    assert "budget 1,000.00" in result.output


def test_show_of_an_unknown_report(gateway, logged_in: Path) -> None:
    gateway(lambda r: httpx.Response(404, json={"detail": "report not found"}))
    result = invoke("show", "nope")
    assert result.exit_code == 1
    assert "error: report not found" in result.output


def test_export_writes_the_file_and_nothing_else(gateway, logged_in: Path, tmp_path: Path) -> None:
    content = b"PK\x03\x04" + bytes(range(256)) * 4000
    seen = gateway(lambda r: httpx.Response(200, content=content, headers={"Content-Type": "application/x"}))
    target = tmp_path / "out" / "r.xlsx"
    result = invoke("export", "rep-1", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == content
    assert seen[0].url.path == "/sales/analytic/report/rep-1/export"
    assert seen[0].url.params["format"] == "xlsx"
    assert [p.name for p in target.parent.iterdir()] == ["r.xlsx"]


def test_failed_export_leaves_no_file(gateway, logged_in: Path, tmp_path: Path) -> None:
    gateway(lambda r: httpx.Response(404, json={"detail": "report not found"}))
    target = tmp_path / "r.csv"
    result = invoke("export", "nope", "--format", "csv", "-o", str(target))
    assert result.exit_code == 1
    assert "report not found" in result.output
    assert list(tmp_path.iterdir()) == [tmp_path / "cfg"]


def test_template_downloads(gateway, logged_in: Path, tmp_path: Path) -> None:
    seen = gateway(lambda r: httpx.Response(200, content=b"PK template"))
    target = tmp_path / "t.xlsx"
    result = invoke("template", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert seen[0].url.path == "/sales/template"
    assert target.read_bytes() == b"PK template"


# ----------------------------------------------------------------------------- currencies and links


def test_upload_sends_currency_and_rates(gateway, logged_in: Path, tmp_path: Path) -> None:
    workbook = tmp_path / "sales.xlsx"
    workbook.write_bytes(b"PK\x03\x04")
    seen = gateway(lambda r: httpx.Response(200, json={"report_id": "rep-1", "status": "pending"}))
    result = invoke(
        "upload", str(workbook), "-c", "-5", "--name", "x", "--budget", "1", "--currency", "₽",
        "--rates", "USD:95,BRL:16.20", "--no-wait",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert dict(seen[0].url.params) == {
        "channel_id": "-5", "name": "x", "budget": "1", "currency": "₽", "rates": "USD:95,BRL:16.20"
    }  # fmt: skip


def test_show_prints_profit_by_currency_warnings_and_retention(gateway, logged_in: Path) -> None:
    report = report_json(
        currency="RUB", exchange_rates={"USD": 95}, profit_by_currency={"RUB": 1990.5, "USD": 10, "BRL": 49.9},
        warnings=["1 sale rows in BRL have no exchange rate and are not in profit"], unsubs=7, net_subs=93,
        unsub_percent=7, cpc_net=10.75, retention_d1=96.5, retention_d7=91.25, retention_d30=None,
    )  # fmt: skip
    gateway(lambda r: httpx.Response(200, json=report))
    result = invoke("show", "rep-1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    usd = next(line for line in lines if "│ USD" in line)
    assert "10.00" in usd and "95" in usd
    brl = next(line for line in lines if "│ BRL" in line)
    assert "49.90" in brl and "—" in brl  # no rate
    assert "1,990.50" in next(line for line in lines if "│ RUB" in line)
    assert "warning: 1 sale rows in BRL have no exchange rate and are not in profit" in result.output
    assert "91.25 %" in next(line for line in lines if "(retention_d7)" in line)
    assert "10.75" in next(line for line in lines if "(cpc_net)" in line)
    assert "93" in next(line for line in lines if "(net_subs)" in line)


LINKS_ANSWER = [
    {"invite_link": "https://t.me/+a", "subs": 3, "unsubs": 1, "net_subs": 2, "funnel": 0, "leads": 1, "sales": 2,
     "buyers": 1, "profit": 1990.5, "cost": 500, "romi": 298.1, "cpc": 166.67, "cpc_net": 250, "cac": 500,
     "cr_sales": 66.67, "retention_d1": 100, "retention_d7": None, "retention_d30": None},
    {"invite_link": None, "subs": 1, "unsubs": 0, "net_subs": 1, "funnel": 0, "leads": 0, "sales": 0, "buyers": 0,
     "profit": 0, "cost": None, "romi": None, "cpc": None, "cpc_net": None, "cac": None, "cr_sales": 0,
     "retention_d1": None, "retention_d7": None, "retention_d30": None},
]  # fmt: skip


def test_links_prints_the_table(gateway, logged_in: Path) -> None:
    seen = gateway(lambda r: httpx.Response(200, json=LINKS_ANSWER))
    result = invoke("links", "rep-1")
    assert result.exit_code == 0, result.output
    assert seen[0].method == "GET" and seen[0].url.path == "/sales/analytic/report/rep-1/links"
    first = next(line for line in result.output.splitlines() if "https://t.me/+a" in line)
    for text in ("1,990.50", "500.00", "298.10 %", "166.67", "66.67 %"):
        assert text in first
    assert "(no link)" in result.output


def test_link_costs_puts_the_map_and_prints_the_links(gateway, logged_in: Path) -> None:
    seen = gateway(lambda r: httpx.Response(200, json=LINKS_ANSWER))
    result = invoke("link-costs", "rep-1", "https://t.me/+a=500", "https://t.me/+b?x=1=2,5")
    assert result.exit_code == 0, result.output
    assert seen[0].method == "PUT" and seen[0].url.path == "/sales/analytic/report/rep-1/links/costs"
    assert json.loads(seen[0].content) == {"https://t.me/+a": "500", "https://t.me/+b?x=1": "2.5"}
    assert "https://t.me/+a" in result.output and "298.10 %" in result.output


def test_link_costs_refuses_bad_items_before_calling(gateway, logged_in: Path) -> None:
    seen = gateway(lambda r: httpx.Response(200, json=[]))
    for item, message in (("nolink", "LINK=AMOUNT"), ("a=-1", ">= 0"), ("a=abc", "not a number")):
        result = invoke("link-costs", "rep-1", item)
        assert result.exit_code != 0 and message in result.output, result.output
    assert seen == []


def test_rates_puts_the_rates_and_prints_the_report_or_the_pending_answer(gateway, logged_in: Path) -> None:
    seen = gateway(lambda r: httpx.Response(200, json=report_json(currency="RUB", exchange_rates={"USD": 95})))
    result = invoke("rates", "rep-1", "$:95,BRL:16.20")
    assert result.exit_code == 0, result.output
    assert seen[0].method == "PUT" and seen[0].url.path == "/sales/analytic/report/rep-1/exchange-rates"
    assert json.loads(seen[0].content) == {"USD": "95", "BRL": "16.20"}
    assert "currencies (report in RUB)" in result.output
    pending = {"detail": "the new exchange rates are saved and the report is being recomputed", "report_id": "rep-1",
               "inputs_version": 2}  # fmt: skip
    gateway(lambda r: httpx.Response(202, json=pending))
    result = invoke("rates", "rep-1", "USD:96")
    assert result.exit_code == 0 and "being recomputed" in result.output
    result = invoke("rates", "rep-1", "QQQ:1")
    assert result.exit_code != 0 and "ISO 4217" in result.output
