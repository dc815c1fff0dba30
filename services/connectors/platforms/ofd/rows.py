"""Yandex OFD day totals → stored rows. Pure.

One `revenue` row per day, amount = income.total − income_return.total (the totals are
authoritative, not the payment-kind parts), in RUB, no user.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from services.connectors.platforms.base.rows import Row, RowContext, base_row, money, text
from services.connectors.platforms.ofd.models import IntervalRow

SOURCE = "ofd"


def day_of(interval: IntervalRow) -> date:
    for value in (interval.start, interval.date_from):
        if value:
            return date.fromisoformat(value[:10])
    raise ValueError("an OFD interval without start or date_from")


def revenue_of(interval: IntervalRow) -> Decimal:
    income = interval.income.total if interval.income and interval.income.total is not None else Decimal(0)
    returned = (
        interval.income_return.total
        if interval.income_return and interval.income_return.total is not None
        else Decimal(0)
    )
    return income - returned


def day_row(ctx: RowContext, interval: IntervalRow) -> Row:
    day = day_of(interval)
    row = base_row(ctx, SOURCE, f"day:{day.isoformat()}")
    row.update(
        status="revenue",
        purchase_amount=money(revenue_of(interval)),
        product="receipts",
        action_date=datetime.combine(day, datetime.min.time(), ctx.zone()).astimezone(UTC),
    )
    row["extra"].update(
        day=day.isoformat(),
        checks=interval.checks,
        checks_income=interval.checks_income,
        income_avg=text(interval.income_avg),
        totals=interval.model_dump(mode="json", exclude={"start", "end"}),
    )
    return row
