"""The collector pause around a recompute's fold: nested and concurrent pauses, and a collector
someone else disabled is left as it was."""

from __future__ import annotations

import asyncio
import gc

from shared.gc_pause import paused_gc


def test_pause_disables_and_restores() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the outer pause still holds"
    assert gc.isenabled()


def test_pause_restores_after_an_error() -> None:
    try:
        with paused_gc():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_collector_disabled_elsewhere_stays_disabled() -> None:
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_overlapping_tasks_resume_the_collector_when_the_last_ends() -> None:
    first_in, second_done = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        with paused_gc():
            first_in.set()
            await second_done.wait()
            assert not gc.isenabled()

    async def second() -> None:
        await first_in.wait()
        with paused_gc():
            await asyncio.sleep(0)
        assert not gc.isenabled(), "the first task's pause still holds"
        second_done.set()

    await asyncio.gather(first(), second())
    assert gc.isenabled()
