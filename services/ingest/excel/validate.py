"""Row validation: a reader row → the stored sale-row document, or error items. Pure, no I/O.

Speed matters (a million rows per file), so the header is resolved once into column positions
and converters, and each row runs a straight-line fast path with no per-cell status checks:
converters raise on the rare invalid cell, and only then is the row validated again slowly,
cell by cell, to collect every error of that row with its cell reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final

from bson import Int64

from services.ingest.excel.columns import COLUMNS, column_letters
from services.ingest.excel.converters import (
    CellInvalid,
    Converter,
    display_value,
    make_datetime_converter,
    to_birthdate,
    to_bool,
    to_currency,
    to_money,
    to_phone,
    to_status,
    to_text,
    to_url,
    to_user_id,
    to_username,
)
from services.ingest.excel.types import CellError
from shared.currency import DEFAULT_CURRENCY

_MS: Final = timedelta(milliseconds=1)
RowFn = Callable[[Sequence[Any], int], "dict[str, Any] | None"]


class ErrorSink:
    """Counts every error of the file, keeps only the first `limit` for the answer."""

    __slots__ = ("items", "limit", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.items: list[CellError] = []

    def add(self, error: CellError) -> None:
        self.total += 1
        if len(self.items) < self.limit:
            self.items.append(error)


def converters_for(zone: tzinfo) -> dict[str, Converter]:
    to_dt = make_datetime_converter(zone)
    return {
        "user_id": to_user_id,
        "name": to_text,
        "product": to_text,
        "purchase_amount": to_money,
        "username": to_username,
        "photo_url": to_url,
        "is_premium": to_bool,
        "phone_number": to_phone,
        "birthdate": to_birthdate,
        "status": to_status,
        "sub_date": to_dt,
        "unsub_date": to_dt,
        "action_date": to_dt,
        "invite_link": to_text,
        "currency": to_currency,
    }


def _empty(value: Any) -> bool:
    return value == "" or value is None or (type(value) is str and not value.strip())


def _absent(_value: Any) -> None:
    return None


class RowValidator:
    """Validates the data rows of one sheet whose header has been matched.

    `positions` maps canonical column names to indexes in the row lists; `col_offset` is the
    sheet column of index 0 (calamine starts rows at the first used column), for cell refs.
    """

    def __init__(
        self,
        *,
        positions: dict[str, int],
        sheet: str,
        zone: tzinfo,
        sink: ErrorSink,
        report_id: str,
        source_report_id: str,
        channel_id: int,
        creator_id: int,
        col_offset: int = 0,
        default_currency: str = DEFAULT_CURRENCY,
    ) -> None:
        self.sheet = sheet
        self.sink = sink
        self.report_id = report_id
        self.source_report_id = source_report_id
        self.channel_id = Int64(channel_id)
        self.creator_id = creator_id
        # The report's currency: of every row whose currency column and amount cell name none.
        self.default_currency = default_currency
        self.positions = dict(positions)
        self.width = max(positions.values(), default=-1) + 1
        self.letters = {name: column_letters(col_offset + i) for name, i in positions.items()}
        convs = converters_for(zone)
        # One (index, converter) pair per spec column, in spec order. An absent column reads
        # index 0 through a converter that always says "empty", so the fast path has no branch.
        self.plan: tuple[tuple[str, int, Converter], ...] = tuple(
            (c.name, positions[c.name], convs[c.name]) if c.name in positions else (c.name, 0, _absent) for c in COLUMNS
        )
        self._mapped = tuple(positions.values())
        # Row → document, or None when the row is fully empty or has errors (reported to the
        # sink). Arguments: the reader's row list and its 1-based sheet row.
        self.validate: RowFn = self._build_fast_path()

    # ------------------------------------------------------------------ fast path

    def _build_fast_path(self) -> RowFn:
        """The per-row function, as a closure over this header's positions and converters:
        free variables are the cheapest lookups Python has, and a million rows feel each one."""
        (
            (_, i_uid, c_uid),
            (_, i_name, c_name),
            (_, i_product, c_product),
            (_, i_amount, c_amount),
            (_, i_username, c_username),
            (_, i_photo, c_photo),
            (_, i_premium, c_premium),
            (_, i_phone, c_phone),
            (_, i_birth, c_birth),
            (_, i_status, c_status),
            (_, i_sub, c_sub),
            (_, i_unsub, c_unsub),
            (_, i_action, c_action),
            (_, i_invite, c_invite),
            (_, i_currency, c_currency),
        ) = self.plan
        # A file without a currency column pays one constant per row for it, not a call.
        has_currency_column = "currency" in self.positions
        default_currency = self.default_currency
        width = self.width
        pad = [""] * width
        id_prefix = f"{self.source_report_id}:"
        report_id = self.report_id
        source_report_id = self.source_report_id
        channel_id = self.channel_id
        creator_id = self.creator_id
        is_empty = self.is_empty
        collect_errors = self.collect_errors

        def validate(row: Sequence[Any], excel_row: int) -> dict[str, Any] | None:
            if len(row) < width:
                row = [*row, *pad[len(row) :]]
            # Cheap gate: a non-empty row almost always has its required cells filled.
            if (row[i_uid] == "" or row[i_sub] == "") and is_empty(row):
                return None
            try:
                user_id = c_uid(row[i_uid])
                amount = c_amount(row[i_amount])
                status = c_status(row[i_status])
                sub_date = c_sub(row[i_sub])
                action_date = c_action(row[i_action])
                unsub_date = c_unsub(row[i_unsub])
                currency = c_currency(row[i_currency]) if has_currency_column else None
                if type(amount) is tuple:  # the amount cell named its currency (`R$ 49,90`)
                    amount, signed = amount
                    if currency is None:
                        currency = signed
                    elif currency != signed:
                        collect_errors(row, excel_row)
                        return None
                doc: dict[str, Any] = {
                    "_id": f"{id_prefix}{excel_row}",
                    "report_id": report_id,
                    "source_report_id": source_report_id,
                    "channel_id": channel_id,
                    "creator_id": creator_id,
                    "source": "excel",
                    "row": excel_row,
                    "user_id": user_id,
                    "customer_key": None,
                    "name": c_name(row[i_name]),
                    "product": c_product(row[i_product]),
                    "username": c_username(row[i_username]),
                    "photo_url": c_photo(row[i_photo]),
                    "phone_number": c_phone(row[i_phone]),
                    "invite_link": c_invite(row[i_invite]),
                    "is_premium": c_premium(row[i_premium]) is True,
                    "birthdate": c_birth(row[i_birth]),
                    "status": status,
                    "purchase_amount": amount,
                    "currency": currency or default_currency,
                    "sub_date": sub_date,
                    "unsub_date": unsub_date,
                    "action_date": action_date,
                    "action_period_ms": None
                    if action_date is None or sub_date is None
                    else Int64((action_date - sub_date) // _MS),
                    "extra": None,
                }
            except CellInvalid:
                collect_errors(row, excel_row)
                return None
            if (
                user_id is None
                or sub_date is None
                or (unsub_date is not None and unsub_date < sub_date)
                or (action_date is not None and action_date < sub_date)
                or (status == "sale" and amount is None)
            ):
                collect_errors(row, excel_row)
                return None
            return doc

        return validate

    def is_empty(self, row: Sequence[Any]) -> bool:
        """Fully empty rows are skipped, not errors. Only known columns count: a row with
        nothing but a note in an unknown column carries no sale."""
        return all(_empty(row[i]) for i in self._mapped)

    # ------------------------------------------------------------------ slow path

    def _error(self, excel_row: int, column: str, raw: Any, code: str, message: str) -> None:
        letters = self.letters.get(column)
        self.sink.add(
            CellError(
                sheet=self.sheet,
                row=excel_row,
                column=column,
                cell=f"{letters}{excel_row}" if letters is not None else None,
                value=display_value(raw),
                code=code,
                message=message,
            )
        )

    def collect_errors(self, row: Sequence[Any], excel_row: int) -> None:
        """Every error of one row: cell errors in column order, then the row rules."""
        values: dict[str, Any] = {}
        invalid: set[str] = set()
        raw: dict[str, Any] = {}
        for name, index, convert in self.plan:
            cell = row[index] if name in self.positions else None
            raw[name] = cell
            try:
                values[name] = convert(cell)
            except CellInvalid as exc:
                invalid.add(name)
                self._error(excel_row, name, cell, exc.code, f"{name} {exc.reason}.")
        for name in ("user_id", "sub_date"):
            if values.get(name) is None and name not in invalid:
                self._error(excel_row, name, raw[name], "required", f"{name} is required.")
        sub = values.get("sub_date")
        if isinstance(sub, datetime):
            for name in ("unsub_date", "action_date"):
                other = values.get(name)
                if isinstance(other, datetime) and other < sub:
                    self._error(
                        excel_row,
                        name,
                        raw[name],
                        "date_before_sub_date",
                        f"{name} must not be before sub_date.",
                    )
        # action_date is optional for every status (SPEC §3): such a row counts, without a period.
        amount = values.get("purchase_amount")
        if values.get("status") == "sale" and amount is None and "purchase_amount" not in invalid:
            self._error(
                excel_row,
                "purchase_amount",
                raw["purchase_amount"],
                "missing_amount",
                "purchase_amount is required for rows with status sale.",
            )
        column_currency = values.get("currency")
        if type(amount) is tuple and column_currency is not None and column_currency != amount[1]:
            self._error(
                excel_row,
                "currency",
                raw["currency"],
                "currency_mismatch",
                f"currency {column_currency} disagrees with the currency of purchase_amount "
                f"({self.letters['purchase_amount']}{excel_row}: "
                f"{display_value(raw['purchase_amount'])}, {amount[1]}).",
            )
