"""Connector-service tuning, `SALESWIRE_CONNECTORS_<NAME>` (kept apart from shared Settings,
which belongs to every service)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SALESWIRE_CONNECTORS_", env_file=None, extra="ignore")

    # A lease on a connection lives this long unless renewed (renewed every third of it). A replica
    # that dies holds its connections at most this long.
    lease_seconds: float = 60.0
    # How often a replica looks for due polls, requested syncs and orphaned runs.
    tick_seconds: float = 2.0
    # How often a replica reads its polled connections for due polls and the lag gauge. No index
    # serves that read on SecantusDB (it scans every connection), so it runs on its own, slower
    # cadence; the shortest poll interval a connection may ask for is 10 s.
    schedule_seconds: float = 10.0
    max_concurrent_syncs: int = 4
    # HTTP policy defaults (a connection's `options` may override rate_per_second / burst).
    http_timeout_seconds: float = 30.0
    retry_attempts: int = 5
    retry_base_delay_seconds: float = 0.5
    retry_max_delay_seconds: float = 15.0
    rate_per_second: float = 10.0
    burst: int = 10
    # Parallel detail calls (sale/info, sales/{id}) while enriching (a connection's `detail_concurrency`
    # option overrides); they share the connection's rate budget with the listing.
    detail_concurrency: int = 4
    # SalesIngested is published after a page at most this often, and always at the end of a run.
    publish_every_seconds: float = 5.0
    # Incremental runs re-read from the last seen day less the connection's `lookback_days` (default
    # 7); a platform whose late changes nothing else can find re-reads its period every
    # `full_every_runs` runs (`platforms/<name>/puller.py` PLATFORM, option `full_every_runs`).
    reference_ttl_seconds: float = 24 * 3600
