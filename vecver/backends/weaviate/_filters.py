"""Portable filters (:mod:`vecver.filters`) in Weaviate's filter language.

Weaviate properties have one data type per collection, while vecver metadata may hold a
number in one record and a string in another under the same key, and keys of any
spelling. So the filterable copy of a record's metadata is kept in properties vecver
owns:

- ``vv_keys`` (``text[]``, tokenization ``field``): one token per top-level scalar field,
  ``KIND|["field", value]`` in JSON (ASCII), the kind ``s`` (string), ``b`` (bool) or
  ``n`` (number, integers written without a fraction so that ``1`` and ``1.0`` are the
  same token, as vecver's rules say). ``eq`` and ``in`` are ``ContainsAny`` over tokens:
  exact, whatever the key or value holds.
- one ``number`` property per numeric field, named ``vn_`` + a hash of the field name
  (:func:`number_property`), added to the collection when a record first holds a number
  there. Numeric ranges compare on it (64-bit floats: a bound beyond +-2**53 is refused
  with ``FilterNotExpressible``).
- string ranges have no exact Weaviate form (its ``field`` tokenization trims
  whitespace); they are evaluated on the client over the records the rest of the filter
  admits (:attr:`WeaviateFilter.client_side`).

A condition on one of vecver's own keys, or a range bounded by a number and a string,
matches nothing by vecver's rules; :attr:`WeaviateFilter.matches_nothing` says so without
asking the database. Lists and objects never equal a scalar and are never in a range, so
they get no token and no number.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from weaviate.classes.query import Filter as WFilter

from ...errors import FilterNotExpressible
from ...filters import Condition, Eq, Filter, In, Range, Scalar
from .._remote import RESERVED_PREFIX

__all__ = [
    "KEYS_PROPERTY",
    "adopted_filter",
    "WeaviateFilter",
    "number_property",
    "numeric_fields",
    "tokens_of",
    "translate_filter",
]

KEYS_PROPERTY = "vv_keys"
_EXACT = 2**53


def number_property(field: str) -> str:
    """The Weaviate property holding the numeric values of metadata field ``field``."""
    digest = hashlib.blake2b(field.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()
    return f"vn_{digest}"


def _token(field: str, value: Scalar) -> str:
    v: Scalar
    if isinstance(value, bool):
        kind, v = "b", value
    elif isinstance(value, str):
        kind, v = "s", value
    else:
        kind = "n"
        v = int(value) if isinstance(value, float) and value.is_integer() else value
    return kind + "|" + json.dumps([field, v], ensure_ascii=True)


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return isinstance(value, (str, int, bool))


def tokens_of(metadata: Mapping[str, Any]) -> list[str]:
    """The ``vv_keys`` tokens of a record's metadata."""
    return [_token(k, v) for k, v in metadata.items() if _scalar(v)]


def numeric_fields(metadata: Mapping[str, Any]) -> dict[str, float]:
    """The numeric property values of a record: ``{property name: value}``."""
    return {
        number_property(k): float(v)
        for k, v in metadata.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and _scalar(v)
    }


@dataclass(frozen=True)
class WeaviateFilter:
    """A vecver filter as Weaviate sees it: ``native`` (None: no condition), the
    conditions left to check on the client (string ranges), the numeric properties the
    native part needs (``needs``: absent from the collection means no record matches),
    and ``matches_nothing``."""

    native: Any
    client_side: Filter | None = None
    needs: frozenset[str] = frozenset()
    matches_nothing: bool = False


def _check_bound(field: str, b: float) -> float:
    if isinstance(b, int) and not -_EXACT <= b <= _EXACT:
        raise FilterNotExpressible(
            "weaviate", field,
            f"{b} is beyond +-2**53; Weaviate compares numbers as 64-bit floats",
            hint="compare with a float bound, or store such numbers as strings",
        )  # fmt: skip
    return float(b)


def translate_filter(flt: Filter, rename: Callable[[str], str] | None = None) -> WeaviateFilter:
    """The Weaviate form of a non-empty filter (see the module docstring). ``rename``
    maps vecver's property names (:data:`KEYS_PROPERTY` and :func:`number_property`
    names) to those the collection holds them under (the named-vector layout prefixes
    them with the namespace's vector name); ``needs`` holds the renamed names."""
    name = rename or (lambda p: p)
    parts: list[Any] = []
    client: list[Condition] = []
    needs: set[str] = set()
    for cond in flt.conditions:
        if cond.field.startswith(RESERVED_PREFIX):
            return WeaviateFilter(None, matches_nothing=True)
        if isinstance(cond, (Eq, In)):
            values = (cond.value,) if isinstance(cond, Eq) else cond.values
            toks = list(dict.fromkeys(_token(cond.field, v) for v in values))
            parts.append(WFilter.by_property(name(KEYS_PROPERTY)).contains_any(toks))
            continue
        bounds = _bounds(cond)
        kinds = {isinstance(b, str) for b in bounds}
        if kinds == {True}:
            client.append(cond)
            continue
        if kinds != {False}:
            return WeaviateFilter(None, matches_nothing=True)
        prop = name(number_property(cond.field))
        needs.add(prop)
        p = WFilter.by_property(prop)
        for op, b in (("gt", cond.gt), ("gte", cond.gte), ("lt", cond.lt), ("lte", cond.lte)):
            if b is None:
                continue
            v = _check_bound(cond.field, b)  # type: ignore[arg-type]
            parts.append({"gt": p.greater_than, "gte": p.greater_or_equal,
                          "lt": p.less_than, "lte": p.less_or_equal}[op](v))  # fmt: skip
    native = None
    if parts:
        native = parts[0] if len(parts) == 1 else WFilter.all_of(parts)
    return WeaviateFilter(native, Filter(tuple(client)) if client else None, frozenset(needs))


def _bounds(cond: Range) -> list[float | str]:
    return [b for b in (cond.gt, cond.gte, cond.lt, cond.lte) if b is not None]


# -- adopted collections: filters on the collection's own properties --------------------


def adopted_filter(flt: Filter, props: Mapping[str, tuple[str, str | None]]) -> WeaviateFilter:
    """A portable filter over an adopted collection's own properties (``props``: name ->
    (data type, tokenization)), exactly or not at all: ``eq``/``in`` on ``int``,
    ``number``, ``boolean`` and ``field``-tokenized ``text`` properties, numeric ranges on
    numbers; a value of another kind than the property's matches nothing (vecver's
    rules); string ranges, other tokenizations, arrays and unknown types are refused
    with ``FilterNotExpressible``. A field the schema lacks matches nothing."""
    parts: list[Any] = []
    for cond in flt.conditions:
        info = props.get(cond.field)
        if info is None:
            return WeaviateFilter(None, matches_nothing=True)
        dtype, tok = info
        p = WFilter.by_property(cond.field)
        if isinstance(cond, (Eq, In)):
            values = (cond.value,) if isinstance(cond, Eq) else cond.values
            fitting = [v for v in values if _fits(dtype, v)]
            if dtype == "text":
                if tok != "field":
                    raise FilterNotExpressible(
                        "weaviate", cond.field,
                        f"text property tokenized {tok!r} cannot be compared exactly",
                        hint="filter on a property with tokenization 'field'",
                    )  # fmt: skip
                for v in fitting:
                    if str(v) != str(v).strip():
                        raise FilterNotExpressible(
                            "weaviate", cond.field,
                            "Weaviate's 'field' tokenization trims surrounding whitespace",
                        )  # fmt: skip
            elif dtype not in ("int", "number", "boolean"):
                raise FilterNotExpressible(
                    "weaviate", cond.field, f"a {dtype} property cannot be compared exactly"
                )
            if not fitting:
                return WeaviateFilter(None, matches_nothing=True)
            if dtype == "int":
                fitting = [int(v) for v in fitting]
            elif dtype == "number":
                fitting = [float(_check_bound(cond.field, v)) for v in fitting]  # type: ignore[arg-type]
            parts.append(p.equal(fitting[0]) if len(fitting) == 1 else p.contains_any(fitting))  # type: ignore[arg-type]
            continue
        bounds = _bounds(cond)
        if any(isinstance(b, str) for b in bounds):
            if dtype != "text" or not all(isinstance(b, str) for b in bounds):
                return WeaviateFilter(None, matches_nothing=True)
            raise FilterNotExpressible(
                "weaviate", cond.field, "string ranges on an adopted collection are not "
                "expressible exactly in Weaviate",
            )  # fmt: skip
        if dtype not in ("int", "number"):
            return WeaviateFilter(None, matches_nothing=True)
        for op, b in (("gt", cond.gt), ("gte", cond.gte), ("lt", cond.lt), ("lte", cond.lte)):
            if b is None:
                continue
            v = _check_bound(cond.field, b)  # type: ignore[arg-type]
            parts.append({"gt": p.greater_than, "gte": p.greater_or_equal,
                          "lt": p.less_than, "lte": p.less_or_equal}[op](v))  # fmt: skip
    native = None
    if parts:
        native = parts[0] if len(parts) == 1 else WFilter.all_of(parts)
    return WeaviateFilter(native)


def _fits(dtype: str, v: Scalar) -> bool:
    if dtype == "boolean":
        return isinstance(v, bool)
    if dtype == "text":
        return isinstance(v, str)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return dtype == "number" or float(v).is_integer()
