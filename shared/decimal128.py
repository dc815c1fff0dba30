"""Stored Decimal128 values as Python Decimals, exactly and fast.

`bson.Decimal128.to_decimal` decodes the IEEE 754-2008 BID bits in pure Python, several times
slower than this (docs/benchmarks.md, "Figures behind code comments"); a recompute decodes every
sale of a report, a sales page every amount of its rows, a report read its forty figures. Almost
every stored value is a finite number with its coefficient in the 113-bit form, which unpacks in
two integer operations and one `Decimal` from text, exact whatever the thread's decimal context (a
`scaleb` would round to its precision). The rest (infinities, NaN, the 11-form and non-canonical
encodings) go to the library's own decoder.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any, Final

from bson import Decimal128

_HALVES: Final = struct.Struct("<QQ")  # the 16 bytes of `Decimal128.bid`: low, high 64 bits
_COMBINATION_11: Final = 0x6000_0000_0000_0000  # also set by infinities and NaN
_SIGN: Final = 1 << 63
_EXPONENT_BIAS: Final = 6176
_MAX_COEFFICIENT: Final = 10**34 - 1  # larger ones are not canonical: the library decides


def decimal_of(value: Decimal128) -> Decimal:
    """`value.to_decimal()`, the same Decimal (digits and exponent), without its cost."""
    low, high = _HALVES.unpack(value.bid)
    if high & _COMBINATION_11 == _COMBINATION_11:
        return value.to_decimal()
    exponent = ((high & 0x7FFE_0000_0000_0000) >> 49) - _EXPONENT_BIAS
    coefficient = ((high & 0x0001_FFFF_FFFF_FFFF) << 64) | low
    if coefficient > _MAX_COEFFICIENT:
        return value.to_decimal()
    return Decimal(f"{'-' if high & _SIGN else ''}{coefficient}E{exponent}")


def stored_decimal(value: Any) -> Decimal:
    """A stored amount as Decimal: a Decimal128 through `decimal_of`, another number (an older
    release's, or a test's) through its own `to_decimal` or its text."""
    if type(value) is Decimal128:
        return decimal_of(value)
    return value.to_decimal() if hasattr(value, "to_decimal") else Decimal(str(value))
