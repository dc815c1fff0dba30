"""The rules by which analytics skips a `SalesIngested`: the rows version (no clock), and the
progress spacing (this process's monotonic clock only). Neither reads a wall-clock time, so an
event stamped an hour ahead or behind the report's last recompute is judged the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.analytics.handlers import REMEMBERED_RECOMPUTES, ProgressSpacing, already_covered
from shared import contracts
from shared.mongo import Document

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def event(version: int | None, *, settled: bool = True, skew: timedelta = timedelta(0)) -> contracts.SalesIngested:
    return contracts.SalesIngested(
        report_id="r", source_report_id="s", rows=1, rows_version=version, settled=settled, occurred_at=NOON + skew
    )


def saved(version: object, status: str = "processing", **extra: object) -> Document:
    return {"_id": "r", "status": status, "computed_version": version, "computed_from": NOON, **extra}


@pytest.mark.parametrize("skew", [timedelta(hours=-1), timedelta(0), timedelta(hours=1)])
def test_an_event_is_covered_exactly_when_a_saved_recompute_read_its_version_or_a_later_one(skew: timedelta) -> None:
    assert already_covered(saved(5), event(4, skew=skew))
    assert already_covered(saved(5), event(5, skew=skew))
    assert not already_covered(saved(5), event(6, skew=skew))


def test_never_computed_failed_or_unversioned_reports_and_events_recompute() -> None:
    assert not already_covered({"_id": "r", "status": "pending"}, event(1))  # never computed
    assert not already_covered(saved(None), event(1))  # computed by a release before versions
    assert not already_covered(saved(9), event(None))  # an event from a release before versions
    assert not already_covered(saved(9, status="failed"), event(1))


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_spaced_by_this_replicas_monotonic_clock_and_settled_events_never_wait() -> None:
    clock = FakeMonotonic()
    spacing = ProgressSpacing(10.0, clock)
    report = saved(3, recompute_seconds=1.0)
    assert not spacing.too_soon(report, event(4, settled=False))  # this replica never recomputed it
    spacing.started_now("r")
    clock.now += 9.9
    assert spacing.too_soon(report, event(4, settled=False))
    assert not spacing.too_soon(report, event(4, settled=True))
    clock.now += 0.1
    assert not spacing.too_soon(report, event(4, settled=False))


def test_a_slow_recompute_spaces_progress_by_four_times_its_duration() -> None:
    clock = FakeMonotonic()
    spacing = ProgressSpacing(10.0, clock)
    spacing.started_now("r")
    clock.now += 30.0
    slow = saved(3, recompute_seconds=8.0)
    assert spacing.too_soon(slow, event(4, settled=False))
    clock.now += 2.0
    assert not spacing.too_soon(slow, event(4, settled=False))


def test_the_oldest_remembered_recomputes_are_forgotten_first() -> None:
    clock = FakeMonotonic()
    spacing = ProgressSpacing(10.0, clock)
    for i in range(REMEMBERED_RECOMPUTES + 1):
        spacing.started_now(f"r{i}")
    spacing.started_now("r1")  # touched again: kept
    spacing.started_now("extra")
    assert len(spacing.started) == REMEMBERED_RECOMPUTES
    assert "r0" not in spacing.started and "r2" not in spacing.started
    assert "r1" in spacing.started and "extra" in spacing.started
