"""The platforms the connectors speak to, one folder each; this registry is the one list of them."""

from __future__ import annotations

from services.connectors.platforms.base.registry import Platform
from services.connectors.platforms.eduzz.puller import PLATFORM as EDUZZ
from services.connectors.platforms.ofd.puller import PLATFORM as OFD
from services.connectors.platforms.sweetclub.puller import PLATFORM as SWEETCLUB

PLATFORMS: dict[str, Platform] = {p.kind: p for p in (SWEETCLUB, EDUZZ, OFD)}
KINDS: tuple[str, ...] = tuple(PLATFORMS)


def platform(kind: str) -> Platform:
    try:
        return PLATFORMS[kind]
    except KeyError:
        raise ValueError(f"unknown platform {kind!r}") from None
