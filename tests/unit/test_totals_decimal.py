"""The fold's own Decimal128 decoding gives exactly what pymongo's `to_decimal` gives."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from bson import Decimal128
from hypothesis import assume, given
from hypothesis import strategies as st

from services.ingest.excel.converters import decimal128_cents
from shared.decimal128 import stored_decimal


def same(a: Decimal, b: Decimal) -> bool:
    if a.is_nan() or b.is_nan():
        return a.is_nan() and b.is_nan()
    return a == b and a.as_tuple() == b.as_tuple()


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d) < Decimal("1e6000")))
def test_any_decimal128_decodes_like_pymongo(value: Decimal) -> None:
    try:
        stored = Decimal128(value)
    except decimal.Inexact:  # more than Decimal128's 34 digits: nothing could store it
        assume(False)
        return
    assert same(stored_decimal(stored), stored.to_decimal())


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-0",
        "0.00",
        "1990.50",
        "-5.25",
        "1E+5",
        "9" * 34,
        "1.2345678901234567890123456789012E-20",
        "NaN",
        "Infinity",
        "-Infinity",
    ],
)
def test_edge_encodings_decode_like_pymongo(text: str) -> None:
    stored = Decimal128(text)
    assert same(stored_decimal(stored), stored.to_decimal())


def test_ingest_cents_and_plain_numbers() -> None:
    assert stored_decimal(decimal128_cents(199050)) == Decimal("1990.50")
    assert stored_decimal(Decimal("3.5")) == Decimal("3.5")
    assert stored_decimal(7) == Decimal(7)
