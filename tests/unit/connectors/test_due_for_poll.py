"""Which source reports a scheduled poll re-syncs (the rule the scheduler applies in Python)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.connectors.sync import due_for_poll

MOMENT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period_end", "status", "due"),
    [
        (MOMENT + timedelta(days=30), "success", True),  # the period is still open
        (MOMENT - timedelta(hours=23), "success", True),  # ended within the last day
        (MOMENT - timedelta(days=1), "success", True),  # exactly a day ago: still polled
        (MOMENT - timedelta(days=1, seconds=1), "success", False),  # closed and synced
        (MOMENT - timedelta(days=90), "failed", True),  # never synced successfully
        (MOMENT - timedelta(days=90), "pending", True),
        (None, "success", False),
        (None, "processing", True),
    ],
)
def test_a_poll_resyncs_open_periods_and_unsuccessful_sources(
    period_end: datetime | None, status: str, due: bool
) -> None:
    assert due_for_poll({"_id": "s", "period_end": period_end, "status": status}, MOMENT) is due


def test_a_source_without_a_status_is_polled() -> None:
    assert due_for_poll({"_id": "s", "period_end": MOMENT - timedelta(days=90)}, MOMENT) is True
