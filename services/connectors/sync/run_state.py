"""One run's state, as it is checkpointed in `sync_state.run` after every page and batch.

Phases: "listing" (pages of the window, then the late changes), then "enriching" (detail calls for
the rows marked pending). A run killed anywhere resumes from here: at its saved cursor, or with
the rows still marked pending.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from services.connectors.platforms.base.puller import Cursor, Window
from services.connectors.sync.planning import Mode
from shared.source_reports import SYNC_RUNNING

Phase = Literal["listing", "enriching"]


@dataclass
class RunState:
    window_start: str
    window_end: str
    mode: Mode
    correlation_id: str
    started_at: datetime
    # None once the listing has been read to its end.
    cursor: Cursor | None
    phase: Phase = "listing"
    pages: int = 0
    # Sales the listing gave (every one of them counted at once), and of those new or changed.
    sales: int = 0
    changed: int = 0
    enriched: int = 0
    quarantined: int = 0
    listed_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> Window:
        return Window(date.fromisoformat(self.window_start), date.fromisoformat(self.window_end))

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RunState:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in doc.items() if k in known}
        cursor = values.get("cursor")
        if isinstance(cursor, int):  # checkpointed by an older release: its listing is read again
            values["cursor"] = {}
        values.setdefault("mode", "full")
        values.setdefault("correlation_id", "")
        return cls(**values)

    def progress(self) -> dict[str, Any]:
        """The public progress fields (on the source report)."""
        return {
            "state": SYNC_RUNNING,
            "phase": self.phase,
            "mode": self.mode,
            "pages": self.pages,
            "sales": self.sales,
            "changed": self.changed,
            "enriched": self.enriched,
            "quarantined": self.quarantined,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "started_at": self.started_at,
            "listed_at": self.listed_at,
        }
