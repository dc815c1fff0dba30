"""What every platform client shares above the transport: open/close, JSON decoding, error
mapping and the 401 path. A platform client says only how it authenticates (`auth_headers`,
`reauthenticate`), how its errors read (`error_text`) and which paths it calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx

from services.connectors.platforms.base.http import ApiError, ApiTransport, AuthError, HttpConfig


class PlatformClient:
    api: ClassVar[str]
    # Statuses that mean "these credentials are refused" on this platform.
    auth_statuses: ClassVar[frozenset[int]] = frozenset({401})

    def __init__(self, base_url: str, config: HttpConfig | None = None, *, transport: ApiTransport | None = None):
        self._http = transport or ApiTransport(self.api, base_url, config)

    @property
    def transport(self) -> ApiTransport:
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- what a platform says about itself

    async def auth_headers(self) -> dict[str, str]:
        return {}

    async def reauthenticate(self, refused_headers: Mapping[str, str]) -> bool:
        """Called once when a call is refused with an auth status; True if new credentials were
        obtained and the call is worth repeating (a session platform logs in again)."""
        return False

    def refused_message(self, body: Any) -> str:
        return f"credentials refused: {self.error_text(body)}"

    def error_text(self, body: Any) -> str:
        if isinstance(body, dict):
            for key in ("message", "error", "detail", "code"):
                if body.get(key):
                    value = body[key]
                    if isinstance(value, dict):
                        return "; ".join(f"{k}: {v}" for k, v in value.items())
                    return str(value)
        return str(body)[:200]

    # -- the shared path of every call

    def decode(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(self.api, "answer is not JSON", status=response.status_code) from exc

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call with the platform's auth; an auth refusal gets one `reauthenticate`."""
        extra = dict(kwargs.pop("headers", None) or {})
        for attempt in range(2):
            auth = await self.auth_headers()
            response = await self._http.request(method, path, headers={**extra, **auth}, **kwargs)
            if response.status_code not in self.auth_statuses:
                return response
            if attempt == 0 and await self.reauthenticate(auth):
                continue
            body = self.decode_or_text(response)
            raise AuthError(self.api, self.refused_message(body), status=response.status_code, payload=body)
        raise AssertionError("unreachable")

    def decode_or_text(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return response.text[:200]

    async def read_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A read: its JSON body, or ApiError for any 4xx/5xx answer (5xx only after retries)."""
        response = await self.call(method, path, **kwargs)
        body = self.decode(response)
        if response.status_code >= 400:
            raise ApiError(self.api, f"{path}: {self.error_text(body)}", status=response.status_code, payload=body)
        return body
