"""Translate a :class:`vecver.filters.Filter` into a SQLite boolean expression.

The expression is evaluated over the ``metadata`` column (a JSON object stored as text) and
must agree exactly with :meth:`Filter.matches`:

- a condition on an absent field is false (``json_type`` is SQL NULL for a missing key);
- equality is type-strict: a bool only equals a bool (JSON ``true``/``false``), a number
  only a number (JSON ``integer``/``real``, compared numerically, so ``1 == 1.0``), a string
  only a string; ``null``, arrays and objects never equal anything;
- a range compares numbers with numbers and strings with strings (SQLite's BINARY collation
  on UTF-8 is code-point order, like Python's ``str`` comparison); a bool value, or bounds of
  mixed kinds, never match; a range without bounds only requires the field to be present.

:func:`to_sql` returns ``None`` when a filter cannot be translated faithfully (a field name
that SQLite's JSON path syntax cannot quote, an integer outside the 64-bit range); the caller
then evaluates :meth:`Filter.matches` in Python.
"""

from __future__ import annotations

from typing import Any

from vecver.filters import Eq, Filter, In, Range

__all__ = ["to_sql"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_NUMERIC = "('integer', 'real')"


def _kind(value: object) -> str | None:
    """The comparison kind of a filter value, by the rules of ``vecver.filters._same_kind``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, str):
        return "str"
    return None


def _path(field: str) -> str | None:
    """A JSON path naming the top-level key ``field``, or None if it cannot be quoted."""
    if not field or '"' in field or "\\" in field or any(ord(ch) < 0x20 for ch in field):
        return None
    return f'$."{field}"'


class _Untranslatable(Exception):
    pass


def _bindable(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Untranslatable
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def _equals(path: str, value: object, params: list[Any]) -> str:
    kind = _kind(value)
    if kind is None:
        return "0"
    if kind == "bool":
        params.append(path)
        return "json_type(metadata, ?) = " + ("'true'" if value else "'false'")
    params.extend((path, path, _bindable(value)))
    if kind == "num":
        return f"(json_type(metadata, ?) IN {_NUMERIC} AND json_extract(metadata, ?) = ?)"
    return "(json_type(metadata, ?) = 'text' AND json_extract(metadata, ?) = ?)"


def _condition(cond: Eq | In | Range, params: list[Any]) -> str:
    path = _path(cond.field)
    if path is None:
        raise _Untranslatable
    if isinstance(cond, Eq):
        return _equals(path, cond.value, params)
    if isinstance(cond, In):
        parts = [_equals(path, v, params) for v in cond.values if _kind(v) is not None]
        return "(" + " OR ".join(parts) + ")" if parts else "0"
    bounds = [
        (op, b)
        for op, b in ((">", cond.gt), (">=", cond.gte), ("<", cond.lt), ("<=", cond.lte))
        if b is not None
    ]
    if not bounds:
        params.append(path)
        return "json_type(metadata, ?) IS NOT NULL"
    kinds = {_kind(b) for _, b in bounds}
    if len(kinds) != 1 or kinds & {None, "bool"}:
        return "0"
    kind = kinds.pop()
    params.append(path)
    sql = [
        f"json_type(metadata, ?) IN {_NUMERIC}"
        if kind == "num"
        else "json_type(metadata, ?) = 'text'"
    ]
    for op, b in bounds:
        params.extend((path, _bindable(b)))
        sql.append(f"json_extract(metadata, ?) {op} ?")
    return "(" + " AND ".join(sql) + ")"


def to_sql(flt: Filter) -> tuple[str, list[Any]] | None:
    """``(expression, parameters)`` equivalent to ``flt.matches(metadata)``, or None."""
    params: list[Any] = []
    try:
        parts = [_condition(c, params) for c in flt.conditions]
    except _Untranslatable:
        return None
    if not parts:
        return "1", []
    return " AND ".join(parts), params
