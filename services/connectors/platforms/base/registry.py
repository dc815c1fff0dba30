"""What the sync engine knows about a platform: one entry per platform folder.

Adding a fourth platform = its folder (`platforms/<name>/`: client, models, rows, puller, and a
`PLATFORM` entry) and its line in `platforms/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.connectors.platforms.base.http import HttpConfig
from services.connectors.platforms.base.puller import Puller
from services.connectors.platforms.base.session import SessionStore
from shared.credentials import REQUIRED_CREDENTIALS, Kind


class CredentialsError(ValueError):
    """The stored credentials lack a field this platform needs."""


@dataclass(frozen=True)
class PullerArgs:
    base_url: str
    credentials: dict[str, str]
    options: dict[str, Any]
    http: HttpConfig
    detail_concurrency: int = 4
    session: SessionStore | None = None

    def need(self, *names: str) -> list[str]:
        missing = [n for n in names if not self.credentials.get(n)]
        if missing:
            raise CredentialsError(f"credentials lack {', '.join(missing)}")
        return [self.credentials[n] for n in names]

    @property
    def fetch_details(self) -> bool:
        """Whether detail calls enrich the rows (connection option `fetch_details`, default on)."""
        return bool(self.options.get("fetch_details", True))


@dataclass(frozen=True)
class Platform:
    kind: Kind
    # Naive platform times are read in this zone unless the connection's `timezone` option says otherwise.
    default_timezone: str
    # The currency of amounts that do not carry their own (connection option `currency` overrides).
    default_currency: str
    make_puller: Callable[[PullerArgs], Puller]
    # Runs between full re-reads of the whole period, for late changes that neither the lookback
    # window nor `late_changes` can find on this platform; None: never needed.
    full_every_runs: int | None = None
    # Whether the platform has a session worth keeping between runs (SweetClub's 24 h token).
    keeps_session: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def required_credentials(self) -> tuple[str, ...]:
        """The credential fields a connection needs (one list, shared with the gateway's checks)."""
        return REQUIRED_CREDENTIALS[self.kind]

    def timezone(self, options: dict[str, Any]) -> str:
        return str(options.get("timezone") or self.default_timezone)

    def currency(self, options: dict[str, Any]) -> str:
        return str(options.get("currency") or self.default_currency).upper()
