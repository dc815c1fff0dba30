"""Field types that accept what the external APIs really send.

The seed documents disagree with themselves: SweetClub documents `status` as `[1, 0]` and prints
`"0"`; ids are strings in one method and integers in the next; OFD's request template quotes
integers. These types take either form, so a payload is never rejected for a cosmetic quirk,
while the values we compute with (money, ids, statuses) end up in one canonical type.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

R = TypeVar("R")


def _to_text(value: Any) -> Any:
    # bool is an int subclass; a boolean where text is expected is a real error, keep it.
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    return value


def _to_decimal(value: Any) -> Any:
    if isinstance(value, str):
        cleaned = value.strip().replace(",", ".").replace("\u00a0", "").replace(" ", "")
        if cleaned == "":
            return None
        try:
            return Decimal(cleaned)
        except InvalidOperation:
            return value  # let pydantic report it
    if isinstance(value, float):
        # repr of a float is the shortest string that round-trips: 19.8 stays 19.8, not 19.80000000000000071.
        return Decimal(repr(value))
    return value


def _to_int(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


# PHP-style APIs print "no date" as zeros: not a date we can store, and no reason to reject the item.
_ZERO_DATES = frozenset({"0000-00-00 00:00:00", "0000-00-00", "0000-00-00T00:00:00", "0000-00-00T00:00:00Z"})


def _to_datetime(value: Any) -> Any:
    if isinstance(value, str) and (value.strip() in _ZERO_DATES or value.strip() == ""):
        return None
    return value


def _to_object(value: Any) -> Any:
    # PHP's json_encode prints an empty associative array as `[]` (the SweetClub document shows
    # `"error": []`): where an object is documented, an empty list or an empty text is "no object".
    if value == [] or value == "":
        return None
    return value


Text = Annotated[str, BeforeValidator(_to_text)]
LooseDatetime = Annotated[datetime | None, BeforeValidator(_to_datetime)]
# On an optional documented object: `delivery: Annotated[Delivery | None, EMPTY_IS_NONE] = None`.
EMPTY_IS_NONE = BeforeValidator(_to_object)
Money = Annotated[Decimal, BeforeValidator(_to_decimal)]
LooseInt = Annotated[int, BeforeValidator(_to_int)]


class ApiModel(BaseModel):
    """Payload model: unknown fields are kept (the APIs add undocumented service fields, and we
    store platform fields as they came), missing optional fields are None."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def parse(api: str, what: str, validator: Callable[[Any], R], body: Any) -> R:
    """Validate a payload; a payload we cannot read is the API's fault, reported as ApiError."""
    from services.connectors.platforms.base.http import ApiError  # local: http.py is the lower layer

    try:
        return validator(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(
            api,
            f"{what}: unexpected payload ({exc.error_count()} errors, first at "
            f"{'.'.join(map(str, first['loc']))}: {first['msg']})",
        ) from exc
