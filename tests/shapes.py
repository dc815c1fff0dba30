"""Checks a built document against its declaration in shared/ (a TypedDict): the same keys, and
each value of a declared type (bson's Int64 and Decimal128 included, Literals by value)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Union, get_args, get_origin, get_type_hints


def _fits(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is NotRequired:
        return _fits(value, get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in get_args(hint))
    if origin is Literal:
        return value in get_args(hint)
    if origin is list:
        (item,) = get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and hasattr(hint, "__required_keys__"):  # a nested TypedDict
        return isinstance(value, Mapping) and not mismatches(value, hint)
    return isinstance(value, hint)


def mismatches(doc: Mapping[str, Any], declaration: Any) -> list[str]:
    """What differs between `doc` and the TypedDict `declaration`; empty when it fits."""
    hints = get_type_hints(declaration)
    required: frozenset[str] = declaration.__required_keys__
    found = [f"missing key {key!r}" for key in sorted(required - set(doc))]
    found += [f"undeclared key {key!r}" for key in sorted(set(doc) - set(hints))]
    found += [
        f"{key}={doc[key]!r} is not {hints[key]}"
        for key in sorted(set(doc) & set(hints))
        if not _fits(doc[key], hints[key])
    ]
    return found
