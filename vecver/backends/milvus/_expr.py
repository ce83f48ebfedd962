"""Milvus boolean expressions built from vecver values, with nothing of the user's left
unescaped.

Two things go into an expression: string literals (document ids, string filter values and
range bounds) and number/bool literals. Field *names* of user metadata never do: each
record carries a second JSON field, :data:`FILTER_FIELD`, in which every top-level scalar
metadata value is stored under a key derived from the metadata key (a tag for the value's
kind plus a 64-bit BLAKE2b of the key, so only ``[a-z0-9]`` reaches the parser) — which
also gives vecver's type rules for free: strings, numbers and bools live under different
keys, so ``True`` never equals ``1`` and ``"1"`` never equals ``1``, while ints and floats
(one kind) compare as numbers, and lists, objects and nulls are not stored there at all
(they match no condition), exactly as :meth:`vecver.filters.Filter.matches` says.

String literals are double-quoted; inside, ``\\`` and ``"`` are backslash-escaped and line
breaks and tabs written ``\\n``, ``\\r``, ``\\t`` (the escapes both the Milvus server's
parser and Milvus Lite's accept); every other character is written as itself.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

from ...errors import FilterNotExpressible
from ...filters import Eq, Filter, In, Range, Scalar

__all__ = [
    "FALSE",
    "adopted_filter",
    "literal_list",
    "FILTER_FIELD",
    "filter_keys",
    "literal",
    "string_literal",
    "translate_filter",
]

#: The JSON field holding the filterable copy of each record's metadata.
FILTER_FIELD = "filter_keys"

#: An expression no record satisfies (ids are non-empty strings).
FALSE = 'id == ""'

#: Integers beyond this magnitude are not all exactly representable as doubles, which the
#: engines use when comparing an int with a float.
_EXACT = 2**53
_INT64 = 2**63

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string_literal(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal that parses back to ``value``
    exactly (on the server and on Milvus Lite). ``FilterNotExpressible`` is not raised
    here; call :func:`valid_text` first for text that may hold lone surrogates."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def valid_text(value: str) -> bool:
    """True when ``value`` encodes as UTF-8 (no lone surrogates): only such strings can be
    sent to the database, and only such strings are ever stored."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key_hash(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _tag(value: object) -> str | None:
    if isinstance(value, bool):
        return "b"
    if isinstance(value, (int, float)):
        return "n"
    if isinstance(value, str):
        return "s"
    return None


def filter_keys(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`FILTER_FIELD` value of a record with ``metadata``: each top-level string,
    number and bool under ``<kind tag><hash of the key>``; other values are left out."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        tag = _tag(value)
        if tag is not None:
            out[tag + _key_hash(key)] = value
    return out


def _path(tag: str, field: str) -> str:
    return f'{FILTER_FIELD}["{tag}{_key_hash(field)}"]'


def literal(field: str, value: Scalar) -> str:
    """A number, bool or string filter value as a Milvus literal. Raises
    ``FilterNotExpressible`` for a number the engines cannot compare exactly (magnitude
    above 2**53) and for a string that is not valid Unicode."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) > _EXACT:
            raise FilterNotExpressible(
                "milvus", field, f"the integer {value} is beyond 2**53, where Milvus compares "
                "numbers inexactly",
            )
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > _EXACT:
            raise FilterNotExpressible(
                "milvus", field, f"the number {value!r} is beyond 2**53, where Milvus compares "
                "numbers inexactly",
            )
        return repr(value)
    if not valid_text(value):
        raise FilterNotExpressible(
            "milvus", field, f"the bound {value!r} is not valid Unicode (a lone surrogate)"
        )
    return string_literal(value)


def _equals(field: str, value: Scalar) -> str:
    tag = _tag(value)
    assert tag is not None
    if tag == "s" and not valid_text(str(value)):
        return FALSE  # no stored string holds a lone surrogate: nothing can be equal
    return f"{_path(tag, field)} == {literal(field, value)}"


_OPS = (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))


def _condition(cond: Eq | In | Range) -> str:
    if isinstance(cond, Eq):
        return _equals(cond.field, cond.value)
    if isinstance(cond, In):
        terms = [t for t in (_equals(cond.field, v) for v in cond.values) if t != FALSE]
        if not terms:
            return FALSE
        return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"
    parts = []
    for name, op in _OPS:
        bound = getattr(cond, name)
        if bound is None:
            continue
        tag = "s" if isinstance(bound, str) else "n"
        parts.append(f"{_path(tag, cond.field)} {op} {literal(cond.field, bound)}")
    return " and ".join(parts)


def translate_filter(flt: Filter | None) -> str:
    """The Milvus expression selecting exactly the records whose metadata ``flt`` matches
    (by :meth:`Filter.matches`), over the :data:`FILTER_FIELD` of each record; ``""`` for
    no filter or the empty filter. Raises ``FilterNotExpressible`` for a condition Milvus
    cannot evaluate exactly (never a wider or narrower expression)."""
    if flt is None or not flt.conditions:
        return ""
    return " and ".join(f"({_condition(c)})" for c in flt.conditions)


# -- adopted collections: plain fields of the collection's own schema --------------------

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMERIC = ("INT8", "INT16", "INT32", "INT64", "FLOAT", "DOUBLE")


def literal_list(values: list[int | str]) -> str:
    """A Milvus list literal of ints and (escaped) strings."""
    return "[" + ", ".join(
        str(v) if isinstance(v, int) else string_literal(v) for v in values
    ) + "]"


def _kind_fits(ftype: str, value: Scalar) -> bool:
    """Whether a field of Milvus type ``ftype`` can hold ``value`` by vecver's type rules
    (a bool is not a number; a string is not a number)."""
    if isinstance(value, bool):
        return ftype == "BOOL"
    if isinstance(value, (int, float)):
        return ftype in _NUMERIC
    return ftype == "VARCHAR"


def _adopted_condition(cond: Eq | In | Range, fields: Mapping[str, str]) -> str | None:
    """The expression of one condition on a plain field; None when it can match nothing."""
    name = cond.field
    ftype = fields.get(name)
    if ftype is None or not _FIELD_NAME.fullmatch(name):
        raise FilterNotExpressible(
            "milvus", name, "an adopted collection is filtered on the scalar fields of its "
            "schema only" + (f" ({', '.join(sorted(fields))})" if fields else ""),
        )
    if isinstance(cond, Eq):
        if not _kind_fits(ftype, cond.value):
            return None
        return f"{name} == {literal(name, cond.value)}"
    if isinstance(cond, In):
        vals = [v for v in cond.values if _kind_fits(ftype, v)]
        if not vals:
            return None
        return f"{name} in [" + ", ".join(literal(name, v) for v in vals) + "]"
    parts = []
    for attr, op in _OPS:
        bound = getattr(cond, attr)
        if bound is None:
            continue
        if isinstance(bound, str) or ftype not in _NUMERIC:
            raise FilterNotExpressible(
                "milvus", name, "ranges on an adopted collection are numeric only")
        parts.append(f"{name} {op} {literal(name, bound)}")
    return " and ".join(parts)


def adopted_filter(flt: Filter | None, fields: Mapping[str, str], key_field: str) -> str:
    """The Milvus expression selecting exactly the rows of an adopted collection whose
    fields ``flt`` matches (``fields``: scalar field -> Milvus type name). ``""`` for no
    filter; an expression no row satisfies when a condition can match nothing.
    ``FilterNotExpressible`` for a field outside the schema or a string range."""
    if flt is None or not flt.conditions:
        return ""
    terms = []
    for c in flt.conditions:
        t = _adopted_condition(c, fields)
        if t is None:
            return f"{key_field} in []"
        terms.append(f"({t})")
    return " and ".join(terms)
