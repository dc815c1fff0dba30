"""The `connector_commands` document: one live call (a credential check, a SweetClub sale or
refund) the gateway asks of the connectors service, under its request id.

The gateway inserts it `queued` and waits on it; the connectors service claims it (`running`)
and ends it `done` (the answer is in `result`), `rejected` (the platform said no, its error kept)
or `failed` (no answer could be had).
"""

from __future__ import annotations

from typing import Final, Literal

CommandState = Literal["queued", "running", "done", "rejected", "failed"]
COMMAND_QUEUED: Final[CommandState] = "queued"
COMMAND_RUNNING: Final[CommandState] = "running"
COMMAND_DONE: Final[CommandState] = "done"
COMMAND_REJECTED: Final[CommandState] = "rejected"
COMMAND_FAILED: Final[CommandState] = "failed"
# A command in one of these states has its answer: whoever waits stops waiting.
FINAL_COMMAND_STATES: Final[frozenset[CommandState]] = frozenset({COMMAND_DONE, COMMAND_REJECTED, COMMAND_FAILED})
