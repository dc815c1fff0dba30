"""The bytes of the links answer (`GET /sales/analytic/report/{id}/links`, SPEC §4.2), made once.

Analytics writes the links table (`report_links`, one document per report) and the gateway answers
it. A 10 000-link table is 180 000 values: SecantusDB is slow to hand back such a document of
sub-documents with Decimal128s, and decoding plus serialising them costs the gateway as much again,
while a document that keeps the answer's JSON as one binary field comes back fast (the figures:
docs/benchmarks.md, "Links read"). So whoever saves the entries also saves `encode_links(entries)`
under `LINKS_JSON_FIELD`; the gateway sends those bytes as they are, and encodes the entries itself
(the same function, the same bytes) only for a document saved without them.

SecantusDB reads a whole document whatever the projection, so the bytes beside 10 000 entries are
still slow to come back, and fast alone in their own document (same section). Hence
`LINKS_ANSWER_COLLECTION`: one document per report, `answer_document(...)`, saved right after the
`report_links` document with the same guards. The gateway reads it first, and `report_links` only
when a report has no answer document (a table saved before it existed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from shared.reports import LINK_FIELD_NAMES

LINKS_JSON_FIELD: Final = "links_json"
# {_id: report_id, creator_id, applied_inputs_version, computed_version, computed_from, links_json: bytes}
LINKS_ANSWER_COLLECTION: Final = "report_links_answer"
# The fields of one entry, in answer order (the issue 16 contract, declared in shared.reports).
LINK_FIELDS: Final = LINK_FIELD_NAMES
_CENT: Final = Decimal("0.01")


def _json_value(value: object) -> object:
    """A stored value as the API shows it: Decimal/Decimal128 half-up to 2 decimals as a number."""
    to_decimal = getattr(value, "to_decimal", None)  # bson.Decimal128, without importing bson here
    if callable(to_decimal):
        value = to_decimal()
    if isinstance(value, Decimal):
        return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return int(value)  # bson.Int64 → int
    return str(value)


def encode_links(entries: Sequence[Mapping[str, object]]) -> bytes:
    """The JSON list the links endpoint answers: every entry with exactly LINK_FIELDS, in order
    (a missing field is null), money and percentages as numbers rounded to 2 decimals."""
    answer = [{field: _json_value(entry.get(field)) for field in LINK_FIELDS} for entry in entries]
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def answer_document(
    creator_id: object, applied_inputs_version: int, computed_from: object, entries: Sequence[Mapping[str, object]]
) -> dict[str, object]:
    """The `LINKS_ANSWER_COLLECTION` document of a links table (without its `_id`, the report's)."""
    return {
        "creator_id": creator_id,
        "applied_inputs_version": applied_inputs_version,
        "computed_from": computed_from,
        LINKS_JSON_FIELD: encode_links(entries),
    }
