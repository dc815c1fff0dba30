"""`saleswire`: a command-line client for the gateway's public API.

    saleswire login --url http://127.0.0.1:8000 --token sw_...
    saleswire template -o sales.xlsx
    saleswire upload sales.xlsx --channel -1001234567890 --name "Spring" --budget 1000
    saleswire reports --channel -1001234567890
    saleswire upload sales.xlsx --channel -100... --name "Spring" --budget 1000 --currency RUB --rates USD:95
    saleswire show REPORT_ID
    saleswire links REPORT_ID
    saleswire link-costs REPORT_ID "https://t.me/+AbC=5000" "https://t.me/+DeF=2500"
    saleswire rates REPORT_ID BRL:16.20,USD:95
    saleswire export REPORT_ID --format xlsx -o report.xlsx

The URL and token live in a JSON file readable only by the owner ($SALESWIRE_CONFIG, or
~/.config/saleswire/config.json). Every failure is one plain sentence on stderr and a non-zero exit.

It runs on the seller's machine, not in any Saleswire process: it talks to the gateway over HTTP
only and takes the report's figures and states from `shared/` (`python -m cli.saleswire` when the
`saleswire` script is not installed).
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Final, Literal, NoReturn
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from shared.currency import CurrencyInvalid, parse_rates
from shared.reports import (
    FINAL_REPORT_STATES,
    LINK_FIELDS,
    NUMBER_METRICS,
    REPORT_FAILED,
    MetricField,
    metric_value,
    to_number,
)

EXIT_ERROR: Final = 1
CHUNK_SIZE: Final = 256 * 1024
XLSX_CONTENT_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The gateway may hold the upload request while ingest validates the file (up to its
# validation_wait_seconds, 600 by default), so the read timeout is long by default.
DEFAULT_TIMEOUT: Final = 900.0

app = typer.Typer(
    name="saleswire",
    help="Command-line client for the Saleswire gateway.",
    no_args_is_help=True,
    add_completion=False,
    # Locals would include the token.
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)

# Tests replace this with an httpx.MockTransport; None means real network I/O.
transport: httpx.BaseTransport | None = None


class CliError(Exception):
    """A failure to report as one sentence (and optionally a table) with a non-zero exit."""

    def __init__(self, message: str, table: Table | None = None, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.table = table
        self.exit_code = exit_code


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    url: str
    token: str


def config_path() -> Path:
    explicit = os.environ.get("SALESWIRE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "saleswire" / "config.json"


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"{url!r} is not a gateway URL; give one like http://127.0.0.1:8000")
    return url


def save_config(config: Config, path: Path | None = None) -> Path:
    """Write the config so that only the owner can read it: the token is a credential. The file is
    created 0600 and swapped in atomically, so it is never readable by others, not even briefly."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"url": config.url, "token": config.token}, handle, indent=2)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def load_config(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError("not logged in; run saleswire login --url URL --token TOKEN") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the configuration {path}: {exc}; run saleswire login again") from None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str) or not isinstance(data.get("token"), str):
        raise CliError(f"the configuration {path} is incomplete; run saleswire login again")
    return Config(url=data["url"], token=data["token"])


# ----------------------------------------------------------------------------- errors


def detail_text(body: object) -> str:
    """The `detail` of a FastAPI error body as one line (422 bodies carry a list of problems)."""
    detail = body.get("detail") if isinstance(body, Mapping) else body
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        problems = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = [str(p) for p in item.get("loc", []) if p not in ("query", "body", "path", "header")]
                where = ".".join(loc)
                problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
            else:
                problems.append(str(item))
        return "; ".join(problems)
    if detail is None:
        return ""
    return str(detail)[:300]


def describe_error(status_code: int, body: object, path: str | None = None) -> str:
    """A plain sentence for an API error response."""
    detail = detail_text(body)
    if status_code == 401:
        return "the token was refused; run saleswire login"
    if status_code == 403:
        return f"the gateway refused access{': ' + detail if detail else ''}"
    if status_code == 404:
        if detail in ("", "Not Found") and path:
            # FastAPI's answer for a path it has no route for: an older gateway, or a wrong URL.
            return f"the gateway has no {path}; check the URL given to saleswire login and the gateway's version"
        return detail or "not found"
    if status_code == 409:
        return detail or "the file has errors"
    if status_code == 413:
        return "the file is larger than the gateway accepts" + (f" ({detail})" if detail else "")
    if status_code == 415:
        return "the file is not a spreadsheet the gateway can read (.xlsx, .xls, .xlsb or .ods)"
    if status_code == 422:
        return f"the gateway rejected the request: {detail or 'invalid parameters'}"
    if status_code == 503:
        return f"the gateway is not ready{': ' + detail if detail else ''}; try again shortly"
    if status_code >= 500:
        return f"the gateway failed (HTTP {status_code}){': ' + detail if detail else ''}"
    return f"the gateway answered HTTP {status_code}{': ' + detail if detail else ''}"


def empty_mark() -> str:
    """How a null metric is shown: an em dash where the terminal can print it."""
    return "—" if console.encoding.lower().replace("-", "").startswith("utf") else "-"


def _cell_text(value: object) -> Text:
    # Text, not a markup string: values come from the user's file and may contain "[...]".
    return Text(empty_mark() if value is None or value == "" else str(value))


def cell_errors_table(body: Mapping[str, Any]) -> Table:
    """The 409 error list as a table of cells."""
    table = Table(title=detail_text(body) or "errors in the file", title_justify="left")
    for header in ("row", "column", "cell", "value", "message"):
        table.add_column(header, overflow="fold")
    for error in body.get("errors") or []:
        if isinstance(error, Mapping):
            table.add_row(*(_cell_text(error.get(key)) for key in ("row", "column", "cell", "value", "message")))
    return table


# ----------------------------------------------------------------------------- multipart streaming


@dataclass(frozen=True)
class MultipartBody:
    content_type: str
    length: int
    chunks: Iterator[bytes]


def _quote_filename(name: str) -> str:
    # What browsers do (WHATWG form encoding): the name stays UTF-8, only ", CR and LF are escaped.
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(
    file: BinaryIO,
    size: int,
    filename: str,
    *,
    field: str = "file",
    content_type: str | None = None,
    boundary: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> MultipartBody:
    """A multipart/form-data body with one file part, produced chunk by chunk so that a large
    workbook is never in memory whole. `on_progress(n)` is called with the number of file bytes in
    each chunk as it is handed to the transport. The exact length is known up front, so the request
    carries Content-Length (the gateway can refuse an oversized file before reading it)."""
    boundary = boundary or f"saleswire-{uuid.uuid4().hex}"
    content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{_quote_filename(filename)}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        sent = 0
        while chunk := file.read(chunk_size):
            sent += len(chunk)
            if sent > size:
                raise CliError("the file grew while it was being uploaded; try again")
            if on_progress is not None:
                on_progress(len(chunk))
            yield chunk
        if sent != size:
            raise CliError("the file shrank while it was being uploaded; try again")
        yield tail

    return MultipartBody(
        content_type=f"multipart/form-data; boundary={boundary}",
        length=len(head) + size + len(tail),
        chunks=chunks(),
    )


# ----------------------------------------------------------------------------- HTTP client


class Gateway:
    """Thin synchronous client: every non-2xx answer and every network failure becomes a CliError."""

    def __init__(self, config: Config, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = config.url
        self._client = httpx.Client(
            base_url=config.url,
            headers={"Authorization": f"Bearer {config.token}", "User-Agent": "saleswire-cli"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def _unreachable(self, exc: httpx.TransportError) -> CliError:
        if isinstance(exc, httpx.TimeoutException):
            return CliError(f"cannot reach the gateway at {self.url} (no answer in time)")
        if isinstance(exc, httpx.WriteError):
            # The gateway may close the connection mid-upload when it refuses the file early.
            return CliError(f"cannot reach the gateway at {self.url} (the connection closed during the upload)")
        return CliError(f"cannot reach the gateway at {self.url}")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self.check(response)
        return response

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        try:
            with self._client.stream(method, path, **kwargs) as response:
                if response.is_error:
                    response.read()
                self.check(response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    @staticmethod
    def check(response: httpx.Response) -> None:
        if response.is_success:
            return
        try:
            body: object = response.json()
        except ValueError:
            body = {"detail": response.text[:300]}
        if response.status_code == 409 and isinstance(body, Mapping) and isinstance(body.get("errors"), list):
            raise CliError(describe_error(409, body), table=cell_errors_table(body))
        raise CliError(describe_error(response.status_code, body, response.request.url.path))

    def report(self, report_id: str) -> dict[str, Any]:
        data = self.request("POST", "/sales/analytic/report", json={"report_id": report_id}).json()
        if not isinstance(data, dict):
            raise CliError("the gateway answered with something that is not a report")
        return data


# ----------------------------------------------------------------------------- rendering


def format_metric(metric: MetricField, value: int | Decimal | None) -> str:
    if value is None:
        return empty_mark()
    if metric.kind == "count":
        return f"{value:,}"
    if metric.kind == "money":
        return f"{value:,.2f}"
    if metric.kind == "percent":
        return f"{value:.2f} %"
    return f"{value:.2f} days"


def money_text(value: object) -> str:
    number = to_number(value)
    return empty_mark() if number is None else f"{Decimal(str(number)):,.2f}"


def metrics_table(report: Mapping[str, Any]) -> Table:
    budget = money_text(report.get("budget"))
    title = Text(f"{report.get('name')} | {report.get('status')} | budget {budget}")
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("definition", overflow="fold")
    for metric in NUMBER_METRICS:
        table.add_row(
            Text(f"{metric.label_en} ({metric.key})"),
            Text(format_metric(metric, metric_value(report, metric))),
            Text(metric.definition_en),
        )
    return table


def report_details(report: Mapping[str, Any]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, key in (
        ("report", "id"), ("name", "name"), ("channel", "channel_id"), ("status", "status"),
        ("created", "created_at"), ("updated", "updated_at"),
    ):  # fmt: skip
        table.add_row(label, _cell_text(report.get(key)))
    table.add_row("budget", Text(money_text(report.get("budget"))))
    if report.get("error_message"):
        table.add_row("error", Text(str(report["error_message"]), style="red"))
    return table


def sources_table(report: Mapping[str, Any]) -> Table | None:
    sources = report.get("source_reports") or []
    if not sources:
        return None
    table = Table(title="sources", title_justify="left")
    for header in ("id", "kind", "name", "status", "rows", "created_at"):
        table.add_column(header, justify="right" if header == "rows" else "left", overflow="fold")
    for source in sources:
        table.add_row(*(_cell_text(source.get(k)) for k in ("id", "kind", "name", "status", "rows", "created_at")))
    return table


def _money_map(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, Mapping):
        return []
    return sorted((str(code), money_text(amount)) for code, amount in value.items())


def currencies_table(report: Mapping[str, Any]) -> Table:
    """The report's currency, its exchange rates and the original sums per currency (SPEC §4.1)."""
    currency = str(report.get("currency") or "")
    table = Table(title=f"currencies (report in {currency})", title_justify="left")
    table.add_column("currency")
    table.add_column("profit, original amounts", justify="right")
    table.add_column(f"rate, {currency} per unit", justify="right")
    rates = report.get("exchange_rates") if isinstance(report.get("exchange_rates"), Mapping) else {}
    assert isinstance(rates, Mapping)
    sums = dict(_money_map(report.get("profit_by_currency")))
    for code in sorted(set(sums) | {str(c) for c in rates}):
        rate = rates.get(code)
        shown = "1" if code == currency else (empty_mark() if rate is None else str(rate))
        table.add_row(Text(code), Text(sums.get(code, empty_mark())), Text(shown))
    return table


def print_warnings(report: Mapping[str, Any]) -> None:
    for warning in report.get("warnings") or []:
        console.print(Text(f"warning: {warning}", style="yellow"))


def links_table(links: Sequence[Mapping[str, Any]], report_id: str) -> Table:
    """The links answer as a table; a null link is the rows that came with none."""
    table = Table(title=f"invite links of report {report_id}", title_justify="left")
    for field in LINK_FIELDS:
        table.add_column(field.key, justify="left" if field.kind == "link" else "right", overflow="fold")
    for entry in links:
        cells = []
        for field in LINK_FIELDS:
            value = entry.get(field.key)
            if field.kind == "link":
                cells.append(Text("(no link)" if value is None else str(value)))
            elif field.kind == "money":
                cells.append(Text(money_text(value)))
            elif field.kind == "percent":
                number = to_number(value)
                cells.append(Text(empty_mark() if number is None else f"{Decimal(str(number)):.2f} %"))
            else:
                cells.append(_cell_text(value))
        table.add_row(*cells)
    if not links:
        table.caption = "no links yet (the report has not been computed)"
    return table


def print_report(report: Mapping[str, Any]) -> None:
    console.print(report_details(report))
    console.print(metrics_table(report))
    console.print(currencies_table(report))
    print_warnings(report)
    sources = sources_table(report)
    if sources is not None:
        console.print(sources)


def fail(error: CliError) -> NoReturn:
    if error.table is not None:
        err_console.print(error.table)
    err_console.print(Text(f"error: {error.message}", style="red"))
    raise typer.Exit(error.exit_code)


def run(action: Callable[[], None]) -> None:
    try:
        action()
    except CliError as error:
        fail(error)


def parse_budget(value: str) -> Decimal:
    try:
        budget = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a number") from None
    if not budget.is_finite() or budget < 0:
        raise typer.BadParameter("the budget must be a number >= 0")
    return budget


# ----------------------------------------------------------------------------- commands

ChannelOption = Annotated[
    int,
    typer.Option(
        "--channel",
        "-c",
        help="Telegram channel id, e.g. -1001234567890 (negative ids are fine: --channel -100...).",
    ),
]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait for one answer of the gateway.")]


@app.command()
def login(
    url: Annotated[str, typer.Option(help="Gateway base URL, e.g. http://127.0.0.1:8000")],
    token: Annotated[str, typer.Option(prompt=True, hide_input=True, help="API token (asked for when not given)")],
    verify: Annotated[bool, typer.Option(help="Check the token against the gateway first.")] = True,
) -> None:
    """Store the gateway URL and token for the other commands."""

    def action() -> None:
        config = Config(url=normalize_url(url), token=token.strip())
        if not config.token:
            raise CliError("the token is empty")
        if verify:
            with Gateway(config, timeout=30.0) as gateway:
                # Any authenticated read will do; this one is cheap and touches nothing.
                gateway.request("GET", "/sales/analytic", params={"channel_id": 0, "limit": 1})
        path = save_config(config)
        console.print(Text(f"logged in to {config.url}; settings saved in {path}"))
        host = urlsplit(config.url).hostname or ""
        if config.url.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(Text("warning: the token travels unencrypted over http://", style="yellow"))

    run(action)


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="Excel workbook (.xlsx, .xls, .xlsb, .ods)")],
    channel: ChannelOption,
    name: Annotated[str, typer.Option(help="Report name")],
    budget: Annotated[str, typer.Option(help="Campaign budget (money)")],
    currency: Annotated[
        str | None, typer.Option(help="Currency of the budget: ISO code or symbol (RUB, ₽, R$, $); default RUB")
    ] = None,
    rates: Annotated[
        str | None, typer.Option(help="Exchange rates into the report's currency, e.g. USD:95,BRL:16.20")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the report until it is success or failed.")] = True,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to follow the report.")] = 600.0,
    poll_interval: Annotated[float, typer.Option(help="Seconds between status checks.")] = 1.0,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Upload a workbook, follow the report, print its metrics."""
    amount = parse_budget(budget)

    def action() -> None:
        if not file.is_file():
            raise CliError(f"no such file: {file}")
        config = load_config()
        size = file.stat().st_size
        with Gateway(config, timeout=timeout) as gateway, file.open("rb") as handle:
            params = {"channel_id": str(channel), "name": name, "budget": str(amount)}
            params.update({k: v for k, v in (("currency", currency), ("rates", rates)) if v is not None})
            answer = _send_upload(gateway, handle, size, file.name, params)
            report_id = str(answer["report_id"])
            console.print(Text(f"uploaded {file.name}: report {report_id} ({answer.get('status')})"))
            if not wait:
                return
            report = _follow(gateway, report_id, wait_timeout, poll_interval)
        print_report(report)
        if report.get("status") == REPORT_FAILED:
            raise CliError(f"the report failed: {report.get('error_message') or 'no reason given'}")

    run(action)


def _send_upload(
    gateway: Gateway, handle: BinaryIO, size: int, filename: str, params: Mapping[str, str]
) -> dict[str, Any]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"uploading {filename}", total=size)

        sent = 0

        def advance(n: int) -> None:
            nonlocal sent
            sent += n
            progress.advance(task, n)
            if sent >= size:
                # The gateway answers only after ingest has checked the file.
                progress.update(task, description="checking the file")

        body = multipart_body(handle, size, filename, on_progress=advance)
        response = gateway.request(
            "POST",
            "/sales/create",
            params=params,
            headers={
                "Content-Type": body.content_type,
                "Content-Length": str(body.length),
                # One key per invocation: if a proxy or the transport retries, nothing is created twice.
                "Idempotency-Key": uuid.uuid4().hex,
            },
            content=body.chunks,
        )
    data = response.json()
    if not isinstance(data, dict) or "report_id" not in data:
        raise CliError("the gateway accepted the file but did not name the report")
    return data


def _follow(gateway: Gateway, report_id: str, wait_timeout: float, poll_interval: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_timeout
    with err_console.status(f"report {report_id}: pending") as status:
        while True:
            report = gateway.report(report_id)
            state = str(report.get("status"))
            status.update(f"report {report_id}: {state}")
            if state in FINAL_REPORT_STATES:
                return report
            if time.monotonic() >= deadline:
                raise CliError(
                    f"report {report_id} is still {state} after {wait_timeout:g} s; "
                    f"check later with saleswire show {report_id}"
                )
            time.sleep(poll_interval)


@app.command()
def reports(
    channel: ChannelOption,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    order_by: Annotated[Literal["created_at", "name", "id", "channel_id"], typer.Option()] = "created_at",
    order_dir: Annotated[Literal["asc", "desc"], typer.Option()] = "desc",
    timeout: TimeoutOption = 30.0,
) -> None:
    """List the reports of a channel."""

    def action() -> None:
        params: dict[str, str | int] = {
            "channel_id": channel, "limit": limit, "offset": offset, "order_by": order_by, "order_dir": order_dir,
        }  # fmt: skip
        with Gateway(load_config(), timeout=timeout) as gateway:
            items = gateway.request("GET", "/sales/analytic", params=params).json()
        console.print(reports_table(items, channel))

    run(action)


def reports_table(items: Sequence[Mapping[str, Any]], channel: int) -> Table:
    table = Table(title=f"reports of channel {channel}", title_justify="left")
    for header in ("id", "name", "created_at", "channel_id"):
        table.add_column(header, overflow="fold")
    for item in items:
        table.add_row(*(_cell_text(item.get(k)) for k in ("id", "name", "created_at", "channel_id")))
    if not items:
        table.caption = "no reports"
    return table


@app.command()
def show(
    report_id: Annotated[str, typer.Argument(help="Report id")],
    timeout: TimeoutOption = 30.0,
) -> None:
    """Show one report with every metric."""

    def action() -> None:
        with Gateway(load_config(), timeout=timeout) as gateway:
            report = gateway.report(report_id)
        print_report(report)

    run(action)


@app.command()
def links(
    report_id: Annotated[str, typer.Argument(help="Report id")],
    timeout: TimeoutOption = 30.0,
) -> None:
    """Show each invite link's share of a report: subscribers, sales, profit, cost, ROMI, retention."""

    def action() -> None:
        with Gateway(load_config(), timeout=timeout) as gateway:
            answer = gateway.request("GET", f"/sales/analytic/report/{report_id}/links").json()
        if not isinstance(answer, list):
            raise CliError("the gateway answered with something that is not a links table")
        console.print(links_table(answer, report_id))

    run(action)


def parse_link_costs(items: Sequence[str]) -> dict[str, str]:
    """`LINK=AMOUNT` items → {link: amount}; the last `=` splits, so a link may contain one."""
    costs: dict[str, str] = {}
    for item in items:
        link, sep, amount = item.rpartition("=")
        if not sep or not link.strip():
            raise typer.BadParameter(f"{item!r} is not LINK=AMOUNT")
        try:
            value = Decimal(amount.strip().replace(",", "."))
        except InvalidOperation:
            raise typer.BadParameter(f"the cost of {link} is not a number: {amount!r}") from None
        if not value.is_finite() or value < 0:
            raise typer.BadParameter(f"the cost of {link} must be a number >= 0")
        if link in costs:
            raise typer.BadParameter(f"{link} is given twice")
        costs[link] = str(value)
    return costs


def _print_pending_or(response: httpx.Response, show: Callable[[Any], None]) -> None:
    body = response.json()
    if response.status_code == 202:
        console.print(Text(str(body.get("detail") if isinstance(body, Mapping) else body)))
        return
    show(body)


@app.command("link-costs")
def link_costs(
    report_id: Annotated[str, typer.Argument(help="Report id")],
    costs: Annotated[
        list[str] | None, typer.Argument(help="LINK=AMOUNT, in the report's currency; none clears every cost")
    ] = None,
    timeout: TimeoutOption = 120.0,
) -> None:
    """Set what each invite link's placement cost (replaces every cost), then show the links."""
    body = parse_link_costs(costs or [])

    def action() -> None:
        with Gateway(load_config(), timeout=timeout) as gateway:
            response = gateway.request("PUT", f"/sales/analytic/report/{report_id}/links/costs", json=body)
        _print_pending_or(response, lambda answer: console.print(links_table(answer, report_id)))

    run(action)


@app.command("rates")
def set_rates(
    report_id: Annotated[str, typer.Argument(help="Report id")],
    rates: Annotated[str, typer.Argument(help="e.g. USD:95,BRL:16.20 (report-currency units per unit); '' clears")],
    timeout: TimeoutOption = 120.0,
) -> None:
    """Set a report's exchange rates (replaces every rate), then show the recomputed report."""
    try:
        parsed = parse_rates(rates)
    except CurrencyInvalid as exc:
        raise typer.BadParameter(str(exc)) from None
    body = {code: str(rate) for code, rate in parsed.items()}

    def action() -> None:
        with Gateway(load_config(), timeout=timeout) as gateway:
            response = gateway.request("PUT", f"/sales/analytic/report/{report_id}/exchange-rates", json=body)
        _print_pending_or(response, print_report)

    run(action)


@app.command()
def export(
    report_id: Annotated[str, typer.Argument(help="Report id")],
    format_: Annotated[Literal["xlsx", "csv"], typer.Option("--format", "-f")] = "xlsx",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write it")] = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Download a report as .xlsx (metrics, funnel chart, sale rows) or CSV (sale rows)."""

    def action() -> None:
        target = output or Path(f"report-{report_id}.{format_}")
        with Gateway(load_config(), timeout=timeout) as gateway:
            size = download(gateway, f"/sales/analytic/report/{report_id}/export", target, params={"format": format_})
        console.print(Text(f"saved {target} ({size:,} bytes)"))

    run(action)


@app.command()
def template(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it")] = Path("saleswire-template.xlsx"),
    timeout: TimeoutOption = 30.0,
) -> None:
    """Download the Excel template for uploads."""

    def action() -> None:
        with Gateway(load_config(), timeout=timeout) as gateway:
            size = download(gateway, "/sales/template", output)
        console.print(Text(f"saved {output} ({size:,} bytes)"))

    run(action)


def download(gateway: Gateway, path: str, target: Path, params: Mapping[str, str] | None = None) -> int:
    """Stream a response body to `target` with a progress bar. Written to a temporary file next to
    the target and renamed at the end, so a failed download never leaves a truncated file behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".part")
    written = 0
    try:
        with os.fdopen(fd, "wb") as handle, gateway.stream("GET", path, params=params) as response:
            length = response.headers.get("Content-Length")
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                console=err_console,
                transient=True,
            ) as progress:
                task = progress.add_task(f"downloading {target.name}", total=int(length) if length else None)
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    handle.write(chunk)
                    written += len(chunk)
                    progress.advance(task, len(chunk))
        # mkstemp made the file 0600; a download should get the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return written


def main() -> None:
    app()


if __name__ == "__main__":
    main()
