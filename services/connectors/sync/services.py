"""What the connectors' parts share (database, bus, settings) and how a connection becomes a puller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from pymongo.asynchronous.database import AsyncDatabase

from services.connectors.config import ConnectorSettings
from services.connectors.platforms import platform
from services.connectors.platforms.base.http import HttpConfig, RetryPolicy
from services.connectors.platforms.base.puller import Puller
from services.connectors.platforms.base.registry import PullerArgs
from services.connectors.platforms.base.session import SessionStore
from services.connectors.sync.session import ConnectionSession
from shared.broker import Bus
from shared.credentials import CredentialsBox
from shared.mongo import Document
from shared.settings import Settings


@dataclass
class Services:
    db: AsyncDatabase[Document]
    bus: Bus
    settings: Settings
    cfg: ConnectorSettings


def http_config(cfg: ConnectorSettings, options: dict[str, Any]) -> HttpConfig:
    timeout = float(options.get("timeout_seconds", cfg.http_timeout_seconds))
    return HttpConfig(
        timeout=timeout,
        connect_timeout=min(5.0, timeout),
        retry=RetryPolicy(
            attempts=cfg.retry_attempts, base_delay=cfg.retry_base_delay_seconds, max_delay=cfg.retry_max_delay_seconds
        ),
        rate_per_second=float(options.get("rate_per_second", cfg.rate_per_second)),
        burst=int(options.get("burst", cfg.burst)),
    )


def options_of(conn: Document) -> dict[str, Any]:
    return cast(dict[str, Any], conn.get("options") or {})


def puller_args(svc: Services, conn: Document) -> PullerArgs:
    box = CredentialsBox(svc.settings)
    credentials = box.open(str(conn["credentials"]))
    session: SessionStore | None = None
    if platform(str(conn["kind"])).keeps_session:
        session = ConnectionSession(svc.db, box, conn, credentials)
    options = options_of(conn)
    return PullerArgs(
        base_url=str(conn["base_url"]),
        credentials=credentials,
        options=options,
        http=http_config(svc.cfg, options),
        detail_concurrency=int(options.get("detail_concurrency", svc.cfg.detail_concurrency)),
        session=session,
    )


def build_puller(svc: Services, conn: Document) -> Puller:
    return platform(str(conn["kind"])).make_puller(puller_args(svc, conn))
