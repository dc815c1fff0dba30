"""Where a platform's session token lives between runs. The sync engine keeps it encrypted on
the connection (`sync/session.py`); a client without a store keeps it for its own lifetime."""

from __future__ import annotations

from typing import Protocol


class SessionStore(Protocol):
    async def load(self) -> str | None:
        """A token believed alive, or None (never stored, or expired)."""
        ...

    async def save(self, token: str) -> None: ...

    async def used(self) -> None:
        """The token was used: a session renewed by use lives on from now."""
        ...


class MemorySession:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.saved = 0

    async def load(self) -> str | None:
        return self.token

    async def save(self, token: str) -> None:
        self.token = token
        self.saved += 1

    async def used(self) -> None:
        return None
