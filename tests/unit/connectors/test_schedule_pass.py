"""What one schedule pass reads off the polled connections: which are due, and each platform's lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.connectors.sync import poll_is_due, sync_lag_seconds
from shared.mongo import Document

MOMENT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("next_poll_at", "due"),
    [
        (MOMENT - timedelta(seconds=1), True),
        (MOMENT, True),
        (MOMENT + timedelta(seconds=1), False),
        # an aware time in another zone is compared as the instant it is
        (datetime(2026, 11, 23, 14, 59, tzinfo=timezone(timedelta(hours=3))), True),
        (None, False),  # polling switched off
    ],
)
def test_a_poll_is_due_once_its_time_has_come(next_poll_at: datetime | None, due: bool) -> None:
    assert poll_is_due({"_id": "c", "next_poll_at": next_poll_at}, MOMENT) is due


def test_lag_is_the_longest_wait_per_platform() -> None:
    connections: list[Document] = [
        {
            "kind": "sweetclub",
            "last_synced_at": MOMENT - timedelta(minutes=5),
            "created_at": MOMENT - timedelta(days=9),
        },
        {"kind": "sweetclub", "last_synced_at": MOMENT - timedelta(minutes=50), "created_at": MOMENT},
        # never synced: waiting since it was created
        {"kind": "eduzz", "last_synced_at": None, "created_at": MOMENT - timedelta(hours=2)},
        {"kind": "eduzz", "last_synced_at": MOMENT - timedelta(minutes=1)},
        {"kind": "elsewhere", "created_at": MOMENT - timedelta(days=99)},  # not a platform of ours
    ]
    assert sync_lag_seconds(connections, MOMENT) == {"sweetclub": 3000.0, "eduzz": 7200.0, "ofd": 0.0}


def test_no_polled_connection_means_no_lag() -> None:
    assert sync_lag_seconds([], MOMENT) == {"sweetclub": 0.0, "eduzz": 0.0, "ofd": 0.0}
