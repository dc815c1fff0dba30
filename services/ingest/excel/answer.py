"""The file's totals as they travel in the parse worker's JSON answer.

Kept apart from bulk.py because the ingest service decodes them: importing bulk would load
columnar, and with it pyarrow and numpy, into the long-lived service process, resident memory it
never uses (docs/benchmarks.md, "Pipeline", 2026-12-02: the service and its worker are held to
1.2x the bare parser's peak together).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final

import bson

from shared.totals import Totals, from_document, to_document

_TZ_AWARE: Final[bson.CodecOptions[Mapping[str, Any]]] = bson.CodecOptions(tz_aware=True)


def totals_field(totals: Totals) -> str:
    """shared.totals' own stored document, as BSON in base64 (so Decimal, dates and every field
    of whichever Totals this release has)."""
    return base64.b64encode(bson.encode(to_document(totals))).decode()


def totals_from_field(text: str) -> Totals:
    # Aware datetimes (UTC), as the database hands them to analytics.
    return from_document(bson.decode(base64.b64decode(text), codec_options=_TZ_AWARE))


# An in-band note on the worker's chunk pipe, never a stored document (its one key is an operator
# name): forget every chunk of this file sent so far, the worker reads the file again another way.
DISCARD: Final = bson.encode({"$discard": True})
