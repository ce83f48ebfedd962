"""Portable filters (:mod:`vecver.filters`) as Qdrant filters, with the reference semantics
of :meth:`vecver.filters.Filter.matches` kept exactly.

What maps natively (one Qdrant condition per vecver condition, ANDed in ``must``):

- ``eq`` / ``in`` on a string: ``MatchValue`` / ``MatchAny`` (Qdrant's keyword match is
  exact and never matches a number or a bool);
- ``eq`` / ``in`` on a bool: ``MatchValue`` (Qdrant keeps bools apart from integers);
- ``eq`` / ``in`` on a number: a closed numeric ``Range`` ``[v, v]``, because vecver
  compares ints and floats as numbers (``1 == 1.0``) while Qdrant's ``MatchValue`` takes
  integers only and never matches a stored float; a range never matches a bool or a
  string, as in the reference;
- ``range`` with numeric bounds: ``Range``.

Where Qdrant's semantics are wider than vecver's, a guard is added: Qdrant matches a
condition against *any element* of an array value, vecver never matches a list. Every
record therefore stores the names of its list-valued metadata fields under
:data:`KEY_LISTS`, and a filter excludes the records where one of its fields holds a list.

Not native, resolved on the client: ``range`` with string bounds (Qdrant orders numbers and
datetimes only). The records matching the native part are scrolled, the string ranges
checked with the reference semantics, and the search is then restricted to those point
ids (``HasId``): exact, at a cost that grows with the number of records the rest of the
filter admits (refused beyond :data:`MAX_RESOLVED_IDS`).

Refused with :class:`~vecver.errors.FilterNotExpressible` (never widened): a field name
Qdrant cannot address (one holding a double quote), a string that is not valid Unicode (a
lone surrogate, which no stored value holds and JSON cannot carry), an integer beyond +-2**53 in a
condition (Qdrant compares numbers as 64-bit floats, so it could not tell 2**53 from
2**53 + 1), and string ranges admitting more than :data:`MAX_RESOLVED_IDS` records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qdrant_client.http import models

from ...errors import FilterNotExpressible
from ...filters import Condition, Eq, Filter, In, Range, Scalar
from .._remote import RESERVED_PREFIX

__all__ = ["KEY_LISTS", "MAX_RESOLVED_IDS", "QdrantFilter", "field_key", "translate_filter"]

#: Payload key listing a record's list-valued metadata fields (see the module docstring).
KEY_LISTS = f"{RESERVED_PREFIX}lists"

#: The most point ids a client-resolved string range may admit.
MAX_RESOLVED_IDS = 100_000

_EXACT_INT = 2**53
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BACKEND = "qdrant"


@dataclass(frozen=True)
class QdrantFilter:
    """A vecver filter as Qdrant sees it.

    ``native``: the Qdrant filter (None: no condition). ``client_side``: the conditions
    Qdrant cannot evaluate (string ranges), to check with :meth:`Filter.matches` on the
    records ``native`` admits; None when there are none. ``matches_nothing``: the filter
    is unsatisfiable by vecver's rules (a condition on one of vecver's own payload fields,
    a range bounded by a number and a string), so no database call is needed."""

    native: models.Filter | None
    client_side: Filter | None = None
    matches_nothing: bool = False


def field_key(field: str) -> str:
    """The Qdrant payload key of the top-level metadata field ``field``: the name itself
    when it is plain (letters, digits, ``_``, ``-``), otherwise quoted so that dots and
    brackets are not read as a path. ``FilterNotExpressible`` for a name holding ``"``."""
    if _PLAIN_KEY.fullmatch(field):
        return field
    _check_text(field, field, "field name")
    if '"' in field:
        raise FilterNotExpressible(
            _BACKEND,
            field,
            "a field name holding a double quote cannot be addressed",
            hint="rename the metadata field",
        )
    return f'"{field}"'


def _check_text(field: str, value: str, what: str = "value") -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterNotExpressible(
            _BACKEND, field, f"the {what} {value!r} is not valid Unicode (a lone surrogate)"
        ) from None
    return value


def _check_number(field: str, value: float) -> float:
    if isinstance(value, int) and not -_EXACT_INT <= value <= _EXACT_INT:
        raise FilterNotExpressible(
            _BACKEND,
            field,
            f"{value} is beyond +-2**53; Qdrant compares numbers as 64-bit floats",
            hint="compare with a float bound, or store such numbers as strings",
        )
    return value


def _value_conditions(key: str, field: str, values: tuple[Scalar, ...]) -> list[models.Condition]:
    """Conditions of which one holds exactly when the field equals one of ``values`` by
    vecver's rules (bools, numbers and strings never equal each other)."""
    strings = [_check_text(field, v) for v in values if isinstance(v, str)]
    out: list[models.Condition] = []
    if len(strings) == 1:
        out.append(models.FieldCondition(key=key, match=models.MatchValue(value=strings[0])))
    elif strings:
        out.append(models.FieldCondition(key=key, match=models.MatchAny(any=strings)))
    for v in dict.fromkeys(v for v in values if isinstance(v, bool)):
        out.append(models.FieldCondition(key=key, match=models.MatchValue(value=v)))
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for n in dict.fromkeys(_check_number(field, v) for v in numbers):
        out.append(models.FieldCondition(key=key, range=models.Range(gte=n, lte=n)))
    return out


def _one_of(conditions: list[models.Condition]) -> models.Condition:
    if len(conditions) == 1:
        return conditions[0]
    return models.Filter(should=conditions)


def translate_filter(flt: Filter, *, prefix: str = "") -> QdrantFilter:
    """The Qdrant form of a non-empty filter; ``FilterNotExpressible`` for a condition
    Qdrant cannot express exactly (see the module docstring). With ``prefix`` (a plain
    payload key: the named layout's vector name), the fields are those of the object
    under that key: ``{prefix}.{field}``, and the list guard ``{prefix}._vv_lists``."""
    def path(key: str) -> str:
        return f"{prefix}.{key}" if prefix else key

    must: list[models.Condition] = []
    client_side: list[Condition] = []
    fields: list[str] = []
    nothing = False
    for cond in flt.conditions:
        if cond.field.startswith(RESERVED_PREFIX):
            # user metadata never holds such a key: the condition is false everywhere
            nothing = True
            continue
        key = path(field_key(cond.field))
        fields.append(cond.field)
        if isinstance(cond, Eq):
            must.append(_one_of(_value_conditions(key, cond.field, (cond.value,))))
        elif isinstance(cond, In):
            must.append(_one_of(_value_conditions(key, cond.field, cond.values)))
        else:
            kinds = {isinstance(b, str) for b in _bounds(cond)}
            if kinds == {True}:
                client_side.append(cond)
            elif kinds == {False}:
                for b in _bounds(cond):
                    _check_number(cond.field, b)  # type: ignore[arg-type]
                must.append(
                    models.FieldCondition(
                        key=key,
                        range=models.Range(
                            gt=_num(cond.gt),
                            gte=_num(cond.gte),
                            lt=_num(cond.lt),
                            lte=_num(cond.lte),
                        ),
                    )
                )
            else:
                # a value is never of both kinds: the range matches nothing
                nothing = True
    if nothing:
        return QdrantFilter(None, None, matches_nothing=True)
    must_not: list[models.Condition] = []
    if fields:
        must_not.append(
            models.FieldCondition(
                key=path(KEY_LISTS), match=models.MatchAny(any=list(dict.fromkeys(fields)))
            )
        )
    native = models.Filter(must=must or None, must_not=must_not or None)
    return QdrantFilter(native, Filter(tuple(client_side)) if client_side else None)


def _bounds(cond: Range) -> list[float | str]:
    return [b for b in (cond.gt, cond.gte, cond.lt, cond.lte) if b is not None]


def _num(bound: float | str | None) -> float | None:
    return None if bound is None else float(bound)
