"""What a run reads: the first run the whole period, later runs a lookback window before the last
day seen; a periodic full re-read only where a platform asks for one; never into the future."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.connectors.platforms import PLATFORMS
from services.connectors.platforms.base.puller import Window
from services.connectors.sync.planning import plan_window
from services.connectors.sync.run_state import RunState

TODAY = date(2026, 12, 1)
START, END = date(2026, 1, 1), date(2026, 12, 31)


def test_the_first_run_reads_the_whole_period_up_to_tomorrow() -> None:
    assert plan_window(START, END, None, today=TODAY) == (Window(START, date(2026, 12, 2)), "full")


@pytest.mark.parametrize(("lookback", "start"), [(7, date(2026, 11, 13)), (0, date(2026, 11, 20)), (400, START)])
def test_later_runs_read_back_the_lookback_window(lookback: int, start: date) -> None:
    window, mode = plan_window(START, END, date(2026, 11, 20), lookback_days=lookback, today=TODAY)
    assert (window, mode) == (Window(start, date(2026, 12, 2)), "incremental")


def test_a_closed_period_is_read_to_its_end() -> None:
    window, _ = plan_window(START, date(2026, 6, 30), date(2026, 6, 29), today=TODAY)
    assert window == Window(date(2026, 6, 22), date(2026, 6, 30))


def test_a_full_re_read_only_where_the_platform_needs_one() -> None:
    seen = date(2026, 11, 20)
    assert plan_window(START, END, seen, runs_since_full=23, full_every=None, today=TODAY)[1] == "incremental"
    assert plan_window(START, END, seen, runs_since_full=22, full_every=24, today=TODAY)[1] == "incremental"
    assert plan_window(START, END, seen, runs_since_full=23, full_every=24, today=TODAY)[1] == "full"
    # Only Eduzz has late changes no documented filter can find (refunds of older sales).
    assert {k: p.full_every_runs for k, p in PLATFORMS.items()} == {"sweetclub": None, "eduzz": 24, "ofd": None}


def test_a_run_state_survives_its_checkpoint() -> None:
    run = RunState("2026-01-01", "2026-12-02", "full", "c1", datetime(2026, 12, 1, tzinfo=UTC), {"page": 3})
    run.pages, run.quarantined = 3, 2
    assert RunState.from_doc(run.to_doc()) == run
    # A run checkpointed by the release before (an integer cursor) reads its listing again.
    old = {**run.to_doc(), "cursor": 7}
    assert RunState.from_doc(old).cursor == {}
