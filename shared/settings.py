"""The one Settings class. Every value can be set by an environment variable `SALESWIRE_<NAME>`."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SALESWIRE_", env_file=None, extra="ignore")

    # --- infrastructure -------------------------------------------------------------------
    rabbit_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Every node of a RabbitMQ cluster, comma-separated (e.g. the output of
    # `scripts/rabbitmq-cluster.sh urls`). Empty: the one node of `rabbit_url`. With several, a
    # service connects to one of them and moves to a surviving one when it dies (shared.rabbit_cluster).
    rabbit_urls: str = ""
    # With several nodes, how long a publish that failed with its node keeps retrying on the
    # others before it fails (an upload then answers 503). With one node a publish fails at once.
    publish_failover_seconds: float = 30.0
    # Prefix of every exchange and queue name, so that a test run and a demo can share one broker.
    namespace: str = "saleswire"
    mongo_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongo_db: str = "saleswire"
    # How many unacknowledged messages one consumer holds; bounds memory and spreads work.
    prefetch_count: int = 8
    # Delivery attempts before a message is dead-lettered (quorum queue x-delivery-limit).
    delivery_limit: int = 5

    # --- HTTP -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    ingest_port: int = 8001
    analytics_port: int = 8002
    connectors_port: int = 8003

    # --- uploads --------------------------------------------------------------------------
    max_upload_bytes: int = 150 * 1024 * 1024
    # How long POST /sales/create waits for ingest's verdict on the file before answering 200
    # with the report still pending (the verdict then lands on the report as failed/success).
    validation_wait_seconds: float = 600.0
    max_listed_errors: int = 100
    timezone: str = "UTC"
    # Currency of a report whose creator names none (ISO 4217, SPEC §4.1): its budget's currency.
    report_currency: str = "RUB"

    # --- Excel parsing limits (the parser runs in a child process under these caps) -------
    parse_timeout_seconds: float = 900.0
    parse_memory_bytes: int = 6 * 1024**3
    max_rows: int = 2_000_000
    max_columns: int = 64
    max_uncompressed_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0
    insert_batch_size: int = 5_000

    # --- analytics ------------------------------------------------------------------------
    # How report totals are computed: "scan" streams rows into a fold in the analytics process
    # (fastest on the embedded SecantusDB); "aggregate" runs a `$group` pipeline in the database
    # (set it on MongoDB proper, as docker-compose does). Both are tested to give equal totals.
    analytics_totals: Literal["scan", "aggregate"] = "scan"
    # During a long sync, progress announcements recompute a report at most this often (and at
    # most every 4× the last recompute's duration); the sync's last event always recomputes.
    progress_recompute_seconds: float = 10.0

    # --- API ------------------------------------------------------------------------------
    # An upload's Idempotency-Key is held by a lease its gateway renews this often; a retry that
    # sees it not renewed for `idempotency_lease_seconds` (its holder died) takes it over.
    idempotency_beat_seconds: float = 2.0
    idempotency_lease_seconds: float = 10.0
    max_page_limit: int = 1000
    # How long PUT .../exchange-rates and .../links/costs wait for analytics to apply the new
    # inputs before answering 202 (the report then shows them as soon as analytics is done).
    recompute_wait_seconds: float = 10.0
    # Key that encrypts connection credentials at rest (Fernet, urlsafe base64 of 32 bytes).
    credentials_key: SecretStr = Field(
        default=SecretStr("ZGV2LW9ubHkta2V5LWNoYW5nZS1tZS1pbi1wcm9kISE="),
    )

    log_level: str = "INFO"

    @property
    def rabbit_nodes(self) -> list[str]:
        """The AMQP URL of every broker node the services may use (at least `rabbit_url`)."""
        return [url.strip() for url in self.rabbit_urls.split(",") if url.strip()] or [self.rabbit_url]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
