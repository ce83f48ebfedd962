"""A portable metadata filter: equality, membership and range, combined with AND.

Backends translate a :class:`Filter` into their own query language; :meth:`Filter.matches`
is the reference semantics every translation must agree with (the compliance suite checks
this).

Build one in Python::

    F.eq("topic", "sport") & F.range("year", gte=2020) & F.isin("lang", ["en", "fr"])

or from a plain mapping (the CLI and config form)::

    Filter.parse({"topic": "sport", "year": {"gte": 2020}, "lang": {"in": ["en", "fr"]}})

Semantics: a condition on a field that is absent from a document's metadata is false.
Range bounds compare numbers with numbers and strings with strings; a value of another
type never matches.

Input rules (each refused with :class:`~vecver.errors.InvalidFilter`):

- "no filter" is ``filter=None`` in Python and leaving ``--filter`` out on the command
  line; a filter that is given is a mapping (a JSON *object*): the text ``null``, a list,
  a number or a string are refused by :meth:`Filter.from_json` rather than read as "no
  filter"; ``{}`` is the empty filter, which matches everything;
- a value is a string, a number or a bool; ``None`` (JSON ``null``) is refused, and so is
  a NaN or infinite number, which no stored value can equal or be ordered against.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from .errors import InvalidFilter

Scalar = Union[str, int, float, bool]


def _check_finite(field: str, value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilter(
            f"filter value for {field!r} must be a finite number, got {value!r}"
        )


def _check_scalar(field: str, value: object) -> Scalar:
    if isinstance(value, (str, int, float, bool)):
        _check_finite(field, value)
        return value
    raise InvalidFilter(
        f"filter value for {field!r} must be a string, number or bool, got {type(value).__name__}"
    )


def _check_field(field: object) -> str:
    if not isinstance(field, str) or not field:
        raise InvalidFilter(f"filter field must be a non-empty string, got {field!r}")
    return field


@dataclass(frozen=True)
class Eq:
    field: str
    value: Scalar


@dataclass(frozen=True)
class In:
    field: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range:
    field: str
    gt: float | str | None = None
    gte: float | str | None = None
    lt: float | str | None = None
    lte: float | str | None = None


Condition = Union[Eq, In, Range]


def _same_kind(a: object, b: object) -> bool:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, num) and isinstance(b, num):
        return True
    return isinstance(a, str) and isinstance(b, str)


def _scalar_equal(a: object, b: object) -> bool:
    return _same_kind(a, b) and a == b


def _match(cond: Condition, metadata: Mapping[str, Any]) -> bool:
    if cond.field not in metadata:
        return False
    v = metadata[cond.field]
    if isinstance(cond, Eq):
        return _scalar_equal(v, cond.value)
    if isinstance(cond, In):
        return any(_scalar_equal(v, x) for x in cond.values)
    for op, bound in (("gt", cond.gt), ("gte", cond.gte), ("lt", cond.lt), ("lte", cond.lte)):
        if bound is None:
            continue
        if isinstance(v, bool) or not _same_kind(v, bound):
            return False
        if not _compare(op, v, bound):
            return False
    return True


def _compare(op: str, v: Any, bound: Any) -> bool:
    if op == "gt":
        return bool(v > bound)
    if op == "gte":
        return bool(v >= bound)
    if op == "lt":
        return bool(v < bound)
    return bool(v <= bound)


@dataclass(frozen=True)
class Filter:
    """A conjunction of conditions. The empty filter matches everything."""

    conditions: tuple[Condition, ...] = ()

    def __and__(self, other: Filter) -> Filter:
        return Filter(self.conditions + other.conditions)

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Reference semantics: True when every condition holds."""
        return all(_match(c, metadata) for c in self.conditions)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.conditions:
            if isinstance(c, Eq):
                out.setdefault(c.field, {})["eq"] = c.value
            elif isinstance(c, In):
                out.setdefault(c.field, {})["in"] = list(c.values)
            else:
                d = out.setdefault(c.field, {})
                for name in ("gt", "gte", "lt", "lte"):
                    if getattr(c, name) is not None:
                        d[name] = getattr(c, name)
        return out

    @staticmethod
    def from_json(text: str) -> Filter:
        """The filter a JSON text gives (the CLI's ``--filter``). The text must hold a JSON
        object: ``null``, a list, a number or a string are refused (``InvalidFilter``), so
        that a mistyped filter never silently searches everything; to search without a
        filter, give none."""
        try:
            spec = json.loads(text)
        except (TypeError, ValueError) as e:
            raise InvalidFilter(f"a filter is a JSON object, got {text!r} ({e})") from e
        if not isinstance(spec, dict):
            raise InvalidFilter(
                f"a filter is a JSON object of field to condition, got {text!r}",
                hint="to search without a filter, leave --filter out",
            )
        return Filter.parse(spec)

    @staticmethod
    def parse(spec: Mapping[str, Any] | Filter | None) -> Filter:
        """Build a filter from ``{field: value | {"eq"|"in"|"gt"|"gte"|"lt"|"lte": ...}}``;
        ``None`` is no filter (the empty filter).

        Raises :class:`~vecver.errors.InvalidFilter` on anything else (see the module's
        input rules).
        """
        if spec is None:
            return Filter()
        if isinstance(spec, Filter):
            return spec
        if not isinstance(spec, Mapping):
            raise InvalidFilter(f"a filter is a mapping of field to condition, got {spec!r}")
        conds: list[Condition] = []
        for field, cond in spec.items():
            field = _check_field(field)
            if not isinstance(cond, Mapping):
                conds.append(Eq(field, _check_scalar(field, cond)))
                continue
            unknown = set(cond) - {"eq", "in", "gt", "gte", "lt", "lte"}
            if unknown or not cond:
                raise InvalidFilter(
                    f"unknown filter operator(s) {sorted(unknown) or '(none)'} on {field!r}; "
                    "use eq, in, gt, gte, lt, lte"
                )
            if "eq" in cond:
                conds.append(Eq(field, _check_scalar(field, cond["eq"])))
            if "in" in cond:
                conds.append(F.isin(field, cond["in"]).conditions[0])
            bounds = {k: cond[k] for k in ("gt", "gte", "lt", "lte") if k in cond}
            if bounds:
                conds.append(F.range(field, **bounds).conditions[0])
        return Filter(tuple(conds))


class F:
    """Constructors for filter conditions."""

    @staticmethod
    def eq(field: str, value: Scalar) -> Filter:
        field = _check_field(field)
        return Filter((Eq(field, _check_scalar(field, value)),))

    @staticmethod
    def isin(field: str, values: Iterable[Scalar]) -> Filter:
        field = _check_field(field)
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise InvalidFilter(f"'in' for {field!r} needs a list of values")
        vals = tuple(_check_scalar(field, v) for v in values)
        if not vals:
            raise InvalidFilter(f"'in' for {field!r} needs at least one value")
        return Filter((In(field, vals),))

    @staticmethod
    def range(
        field: str,
        *,
        gt: float | str | None = None,
        gte: float | str | None = None,
        lt: float | str | None = None,
        lte: float | str | None = None,
    ) -> Filter:
        field = _check_field(field)
        bounds: Sequence[object] = [b for b in (gt, gte, lt, lte) if b is not None]
        if not bounds:
            raise InvalidFilter(f"range on {field!r} needs at least one bound")
        for b in bounds:
            if isinstance(b, bool) or not isinstance(b, (int, float, str)):
                raise InvalidFilter(f"range bound on {field!r} must be a number or string")
            _check_finite(field, b)
        return Filter((Range(field, gt, gte, lt, lte),))
