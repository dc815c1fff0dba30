"""shared.decimal128.decimal_of gives exactly what the library's `Decimal128.to_decimal` gives
(the same digits and exponent, so the same text), or raises what it raises."""

from __future__ import annotations

import random
import struct
from decimal import Decimal

import pytest
from bson import Decimal128

from shared.decimal128 import decimal_of

EDGES = [
    "0", "-0", "0E-6176", "0E+6111", "1", "-1", "0.01", "-5.50", "1000", "1E+3", "9.99", "5542.59",
    "9999999999999999999999999999999999", "-9999999999999999999999999999999999E+6111", "1E-6176",
    "1234567890123456789012345678901234E-6176", "Infinity", "-Infinity", "NaN", "-NaN", "sNaN",
]  # fmt: skip


def same(value: Decimal128) -> None:
    try:
        expected = value.to_decimal()
    except Exception as exc:  # the library's verdict on a value it cannot decode stands
        with pytest.raises(type(exc)):
            decimal_of(value)
        return
    got = decimal_of(value)
    assert str(got) == str(expected)
    assert got.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize("text", EDGES)
def test_edge_values(text: str) -> None:
    same(Decimal128(text))


def test_random_values_of_every_size_and_exponent() -> None:
    rnd = random.Random(19)
    for _ in range(20_000):
        digits = rnd.randrange(1, 35)
        text = f"{rnd.choice('-+')}{rnd.randrange(10**digits)}E{rnd.randrange(-6176, 6112 - digits + 1)}"
        same(Decimal128(Decimal(text)))


def test_random_bit_patterns_including_non_canonical_ones() -> None:
    rnd = random.Random(7)
    for _ in range(20_000):
        low, high = rnd.getrandbits(64), rnd.getrandbits(64)
        if rnd.random() < 0.5:  # the common form: a 113-bit coefficient, a little over 10**34
            high &= ~0x6000_0000_0000_0000
        same(Decimal128.from_bid(struct.pack("<QQ", low, high)))
