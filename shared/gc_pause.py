"""Pausing CPython's cyclic garbage collector around a fold of many rows.

A fold of a million rows keeps a million small containers alive (a list per user, the decoded
chunk documents in flight), and the collector's generational passes walk them again and again as
they accumulate: measured in the report recompute, that walking was about a third of the
analytics process's CPU (docs/benchmarks.md, "Report recompute"). The fold makes no reference
cycles, and everything it drops is freed by reference counting at once, so nothing waits for the
collector meanwhile; cycles other tasks of the process make during the pause are collected when it
ends. Pauses nest across concurrent tasks: the collector runs again when the last one ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_holders = 0
_disabled_by_us = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disables the cyclic collector for the block (if it was enabled), for every task at once."""
    global _holders, _disabled_by_us
    if _holders == 0 and gc.isenabled():
        gc.disable()
        _disabled_by_us = True
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders == 0 and _disabled_by_us:
            _disabled_by_us = False
            gc.enable()
