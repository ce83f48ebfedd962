"""vecver's portable filters in Pinecone's metadata filter language.

Pinecone's ``$eq``/``$in`` on a field holding a list of strings match when the list
holds the value, where :meth:`vecver.filters.Filter.matches` says a list (or an object,
or null) never matches a condition. So the backend stores such values as JSON text under
:func:`json_key` (a reserved name; Pinecone could not hold nulls, objects or lists of
non-strings anyway), and a filter on the user's field name never sees them. Numbers are
compared as doubles by Pinecone: an int beyond 2**53 cannot be compared exactly and is
refused (:class:`~vecver.errors.FilterNotExpressible`), as are field names Pinecone
reads as operators (``$...``). Pinecone orders only numbers: a range with string bounds
is left to the backend (the *residual* of :func:`translate_filter`), which applies it
exactly to what Pinecone returns. A condition no record can satisfy (``isin`` with no
values, a string that is not valid Unicode) makes :func:`translate_filter` return
:data:`NOTHING`: the backend answers without asking the database.
"""

from __future__ import annotations

import math
from typing import Any

from ...errors import FilterNotExpressible
from ...filters import Eq, Filter, In, Range, Scalar
from .._remote import RESERVED_PREFIX

__all__ = ["JSON_PREFIX", "NOTHING", "json_key", "translate_filter"]

#: Metadata keys of values Pinecone cannot hold or filter as vecver does (lists, objects,
#: nulls), stored as JSON text: ``_vv_json.<key>``.
JSON_PREFIX = f"{RESERVED_PREFIX}json."

#: Returned by :func:`translate_filter` for a filter that matches no record.
NOTHING: dict[str, Any] = {"$nothing": True}

_EXACT = 2**53


def json_key(key: str) -> str:
    """The stored metadata key of user field ``key`` holding a list, object or null."""
    return JSON_PREFIX + key


class _Nothing(Exception):
    pass


def _value(field: str, value: Scalar) -> Scalar:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if not math.isfinite(float(value)) or abs(value) > _EXACT:
            raise FilterNotExpressible(
                "pinecone", field, f"the number {value!r} is beyond 2**53, where Pinecone "
                "compares numbers inexactly",
            )
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Nothing from None  # no stored string holds a lone surrogate
    return value


def _check_field(f: str) -> None:
    if f.startswith("$") or f.startswith(RESERVED_PREFIX):
        raise FilterNotExpressible("pinecone", f, "Pinecone reads a field name starting "
                                   "with '$' as an operator, and '_vv_' names are vecver's")


def _condition(cond: Eq | In | Range) -> dict[str, Any]:
    f = cond.field
    _check_field(f)
    if isinstance(cond, Eq):
        return {f: {"$eq": _value(f, cond.value)}}
    if isinstance(cond, In):
        values = []
        for v in cond.values:
            try:
                values.append(_value(f, v))
            except _Nothing:
                continue
        if not values:
            raise _Nothing
        if any(isinstance(v, bool) for v in values):
            return {"$or": [{f: {"$eq": v}} for v in values]}
        return {f: {"$in": values}}
    ops: dict[str, Any] = {}
    for name in ("gt", "gte", "lt", "lte"):
        bound = getattr(cond, name)
        if bound is None:
            continue
        ops["$" + name] = _value(f, bound)
    return {f: ops}


def translate_filter(flt: Filter | None) -> tuple[dict[str, Any] | None, Filter | None]:
    """``(pinecone_filter, residual)``: the Pinecone filter (None: none) selecting the
    records that satisfy every condition Pinecone can evaluate exactly, and the conditions
    it cannot — ranges with string bounds (Pinecone orders only numbers) — which the
    backend applies to the records Pinecone returns (None: nothing left). The pinecone
    filter is :data:`NOTHING` when no record can match. ``FilterNotExpressible`` for what
    cannot be evaluated exactly at all (ints beyond 2**53, ``$`` field names)."""
    if flt is None or not flt.conditions:
        return None, None
    native: list[Any] = []
    residual: list[Any] = []
    for c in flt.conditions:
        if isinstance(c, Range) and any(
            isinstance(getattr(c, b), str) for b in ("gt", "gte", "lt", "lte")
        ):
            _check_field(c.field)
            residual.append(c)
        else:
            native.append(c)
    rest = Filter(tuple(residual)) if residual else None
    if not native:
        return None, rest
    try:
        parts = [_condition(c) for c in native]
    except _Nothing:
        return NOTHING, rest
    return (parts[0] if len(parts) == 1 else {"$and": parts}), rest
