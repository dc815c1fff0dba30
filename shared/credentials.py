"""Connection credentials: which fields each platform needs, and their encryption at rest.

Shared because the gateway seals what a user sends and the connectors service opens it right
before building a client; nothing else ever sees the plaintext, and nothing here logs it.
"""

from __future__ import annotations

import json
from typing import Literal, cast

from cryptography.fernet import Fernet, InvalidToken

from shared.settings import Settings

Kind = Literal["sweetclub", "eduzz", "ofd"]

REQUIRED_CREDENTIALS: dict[Kind, tuple[str, ...]] = {
    "sweetclub": ("username", "password"),
    "eduzz": ("token",),
    "ofd": ("yandex_key", "ofd_key"),
}


def missing_credentials(kind: Kind, credentials: dict[str, str]) -> list[str]:
    """The fields `kind` needs that `credentials` lacks (or leaves empty)."""
    return [name for name in REQUIRED_CREDENTIALS[kind] if not credentials.get(name)]


class CredentialsBox:
    """Fernet under `Settings.credentials_key`."""

    def __init__(self, settings: Settings) -> None:
        self._fernet = Fernet(settings.credentials_key.get_secret_value().encode())

    def seal(self, credentials: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()

    def open(self, sealed: str) -> dict[str, str]:
        try:
            return cast(dict[str, str], json.loads(self._fernet.decrypt(sealed.encode())))
        except InvalidToken as exc:
            raise ValueError("stored credentials cannot be decrypted with the configured key") from exc
