"""The one HTTP machinery every connector client shares.

- a timeout on every call (connect/read/write/pool);
- retries with exponential backoff and jitter on network errors, 429 (honouring `Retry-After`)
  and 5xx — anything else is the API's answer and goes back to the client unchanged;
- a per-connection rate budget (token bucket), so one noisy connection cannot exhaust an API's
  quota for the others and bursts stay polite;
- `CONNECTOR_CALLS{api,outcome}` and `CONNECTOR_CALL_SECONDS{api}` for every attempt;
- generic pagination to the end.

A write (`idempotent=False`) is sent once: a timeout, a dropped connection or a 5xx after the
request left may mean it was committed, so it raises `AnswerLost` and the caller finds out what
happened before deciding (SPEC §5). Only answers that prove the write was not processed are
retried: a connection that never opened, and 429.

The platform clients (`platforms/<name>/client.py`) only know their paths, auth and payload models;
`platforms/base/client.py` holds what they share above this transport.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx

from shared.metrics import CONNECTOR_CALL_SECONDS, CONNECTOR_CALLS

log = logging.getLogger(__name__)

T = TypeVar("T")


class ConnectorError(Exception):
    """Base of every error a connector reports. The message is safe to show and to store:
    it never contains credentials or tokens."""


class ApiError(ConnectorError):
    """The API answered, but not with what we asked for (a 4xx, an `{"error": ...}` body...)."""

    def __init__(self, api: str, message: str, *, status: int | None = None, payload: Any = None) -> None:
        super().__init__(f"{api}: {message}" + (f" (HTTP {status})" if status is not None else ""))
        self.api = api
        self.status = status
        self.payload = payload


class AuthError(ApiError):
    """Credentials were refused: retrying cannot help until someone fixes them."""


class UnavailableError(ConnectorError):
    """Retries exhausted on network errors, 429 or 5xx: the API is (for now) unreachable."""


class AnswerLost(UnavailableError):
    """A write left, and its answer did not come back (timeout, dropped connection, 5xx): the
    platform may or may not have done it. Never retried blind."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 10.0
    # A server asking us to wait longer than this is treated as "unavailable" rather than
    # blocking a sync for an unbounded time.
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so that replicas
        retrying together spread out but never retry immediately."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


class TokenBucket:
    """`rate` calls per second on average, up to `burst` at once. Async, per process.

    One connection is synced by one replica at a time (the lease), so a per-process bucket per
    connection is the connection's whole budget.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class HttpConfig:
    timeout: float = 30.0
    connect_timeout: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_per_second: float = 10.0
    burst: int = 10


class ApiTransport:
    """An httpx.AsyncClient with the retry, rate and metric policy above. One per connection."""

    def __init__(
        self,
        api: str,
        base_url: str,
        config: HttpConfig | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.api = api
        self.config = config or HttpConfig()
        cfg = self.config
        self._client = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            timeout=httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "saleswire-connector/1"},
        )
        self._owns_client = client is None
        self.bucket = TokenBucket(cfg.rate_per_second, cfg.burst)
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> ApiTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _count(self, outcome: str, started: float) -> None:
        CONNECTOR_CALLS.labels(api=self.api, outcome=outcome).inc()
        CONNECTOR_CALL_SECONDS.labels(api=self.api).observe(time.perf_counter() - started)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send one logical call; returns the first answer that is not worth retrying.

        Raises UnavailableError when the retries are spent; for a write (`idempotent=False`),
        AnswerLost as soon as an answer is lost after the request may have been processed. Paths
        are relative to the base URL (a leading slash is ignored), so a base URL with a prefix such as `/sandbox` works.
        """
        retry = self.config.retry
        last_problem = ""
        url = path.lstrip("/")
        for attempt in range(retry.attempts):
            await self.bucket.acquire()
            started = time.perf_counter()
            delay: float | None = None
            try:
                response = await self._client.request(
                    method, url, params=params, data=data, files=files, json=json, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The connection never opened: nothing was sent, a retry is safe even for a write.
                self._count("network_error", started)
                last_problem = f"could not connect ({type(exc).__name__})"
            except httpx.TimeoutException as exc:
                self._count("timeout", started)
                last_problem = f"timeout ({type(exc).__name__})"
                if not idempotent:
                    raise AnswerLost(f"{self.api}: {url}: answer lost: {last_problem}") from exc
            except httpx.TransportError as exc:
                self._count("network_error", started)
                last_problem = f"network error ({type(exc).__name__})"
                if not idempotent:
                    raise AnswerLost(f"{self.api}: {url}: answer lost: {last_problem}") from exc
            else:
                status = response.status_code
                if status == 429:
                    self._count("rate_limited", started)
                    last_problem = "rate limited (HTTP 429)"
                    delay = parse_retry_after(response.headers.get("Retry-After"))
                    if delay is not None and delay > retry.max_retry_after:
                        raise UnavailableError(
                            f"{self.api}: asked to wait {delay:.0f}s (Retry-After), more than allowed"
                        )
                elif status >= 500:
                    self._count("server_error", started)
                    last_problem = f"server error (HTTP {status})"
                    if not idempotent:
                        raise AnswerLost(f"{self.api}: {url}: answer lost: {last_problem}")
                else:
                    self._count("ok" if status < 400 else "client_error", started)
                    return response
            if attempt + 1 >= retry.attempts:
                break
            wait = delay if delay is not None else retry.backoff(attempt, self._rng)
            log.info(
                "retrying external call",
                extra={
                    "api": self.api,
                    "path": url,
                    "attempt": attempt + 1,
                    "wait_s": round(wait, 3),
                    "problem": last_problem,
                },
            )
            await self._sleep(wait)
        raise UnavailableError(f"{self.api}: gave up after {retry.attempts} attempts: {last_problem}")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and where the next one starts (None = this was the last)."""

    items: list[T]
    next_page: int | None


async def paginate(fetch: Callable[[int], Awaitable[Page[T]]], first_page: int = 1) -> AsyncIterator[Page[T]]:
    """Follow `next_page` to the end. The fetch function decides what "the end" is for its API
    (a short page, `pages` reached, `offset >= total`)."""
    page_no: int | None = first_page
    while page_no is not None:
        page = await fetch(page_no)
        yield page
        page_no = page.next_page
