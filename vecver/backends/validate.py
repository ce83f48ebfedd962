"""The input rules every backend shares, as functions. :class:`vecver.backends.base.Backend`
applies them before a call reaches a database, so a backend never sees a bad batch.

One rule per input:

- a document id is a non-empty ``str`` of valid Unicode (it encodes as UTF-8, so no lone
  surrogates) without NUL characters; anything else raises
  :class:`~vecver.errors.InvalidId` saying why (a database that cuts strings at NUL would
  otherwise confuse ``"d7\\x00x"`` with ``"d7"``); a list of ids is a sequence of such
  strings, never a single ``str``;
- a vector is 1-d, of the namespace's dimension, finite, and — where the metric needs a
  norm (``cosine``) — not all zeros (:class:`~vecver.errors.ZeroVector`);
- metadata is a mapping with ``str`` keys of JSON values (finite numbers, valid Unicode),
  of the kinds and size the backend declares; a text is ``None`` or a ``str`` of valid
  Unicode within the declared size;
- ``k`` and a scan ``limit`` are ``int`` (not ``bool``) of at least 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import (
    DimensionMismatch,
    DuplicateIds,
    InvalidFilter,
    InvalidId,
    InvalidInput,
    LimitExceeded,
    NonFiniteVector,
    StampMismatch,
    UnsupportedFilter,
    UnsupportedMetadata,
    ZeroVector,
)
from ..filters import Eq, Filter, In, Range
from ..types import METRICS, Matrix, NamespaceSpec, Record, Stamp
from .capabilities import METADATA_KINDS, Capabilities

__all__ = [
    "check_id",
    "check_ids_argument",
    "check_filter",
    "check_metadata",
    "filter_operators",
    "json_safe_metadata",
    "validate_ids",
    "validate_k",
    "validate_limit",
    "validate_queries",
    "validate_records",
    "validate_spec",
]

_MAX_DEPTH = 64
_DEFAULT_CAPABILITIES = Capabilities()
_F32 = np.dtype(np.float32)


def check_id(value: object) -> str:
    """``value`` if it is a valid document id; otherwise ``InvalidId`` saying why."""
    if not isinstance(value, str) or not value:
        raise InvalidId(value)
    if "\x00" in value:
        raise InvalidId(value, "it contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidId(value, "it is not valid Unicode (a lone surrogate)") from None
    return value


def check_ids_argument(ids: object) -> list[str]:
    """A list argument of ids as a list (not yet checked one by one); a single ``str`` (which
    would be taken as one id per character) or a non-sequence raises ``InvalidInput``."""
    if isinstance(ids, (str, bytes)):
        raise InvalidInput(
            f"ids must be a list of strings, got the single string {ids!r}",
            hint="wrap a single id in a list: [id]",
        )
    if not isinstance(ids, Sequence) and not isinstance(ids, (set, frozenset)):
        raise InvalidInput(f"ids must be a list of strings, got {type(ids).__name__}")
    return list(ids)


def validate_ids(ids: Sequence[str]) -> None:
    """Raise ``InvalidId`` for a bad id or ``DuplicateIds`` when an id repeats."""
    seen: set[str] = set()
    dups: list[str] = []
    for i in ids:
        check_id(i)
        if i in seen:
            dups.append(i)
        seen.add(i)
    if dups:
        raise DuplicateIds(dups)


def validate_spec(spec: NamespaceSpec) -> None:
    """Raise ``InvalidInput`` unless ``spec`` is a well-formed :class:`NamespaceSpec`."""
    if not isinstance(spec, NamespaceSpec):
        raise InvalidInput(f"expected a NamespaceSpec, got {type(spec).__name__}")
    if (
        isinstance(spec.dimension, bool)
        or not isinstance(spec.dimension, int)
        or spec.dimension < 1
    ):
        raise InvalidInput(f"dimension must be a positive integer, got {spec.dimension!r}")
    if spec.metric not in METRICS:
        raise InvalidInput(f"metric must be one of {', '.join(METRICS)}, got {spec.metric!r}")
    if not isinstance(spec.fingerprint, str) or not spec.fingerprint:
        raise InvalidInput(f"fingerprint must be a non-empty string, got {spec.fingerprint!r}")


def _kind(value: object) -> str | None:
    if value is None:
        return "null"
    t = type(value)
    if t is str or isinstance(value, str):
        return "str"
    if t is bool:
        return "bool"
    if t is int or (isinstance(value, int) and not isinstance(value, bool)):
        return "int"
    if t is float or isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return None


def check_metadata(
    metadata: object,
    doc_id: str | None,
    *,
    kinds: frozenset[str] = METADATA_KINDS,
    max_bytes: int | None = None,
    backend: str = "backend",
) -> None:
    """Raise unless ``metadata`` is a JSON object the backend can store: ``InvalidInput``
    (not JSON: a non-``str`` key, NaN, an object of another type, invalid Unicode, nested
    deeper than 64), ``UnsupportedMetadata`` (a kind not in ``kinds``) or ``LimitExceeded``
    (more than ``max_bytes`` of JSON)."""
    who = f" of document {doc_id!r}" if doc_id is not None else ""
    if not isinstance(metadata, Mapping):
        raise InvalidInput(f"metadata{who} must be an object, got {type(metadata).__name__}")
    every_kind = kinds >= METADATA_KINDS
    stack: list[tuple[str, object, int]] = []
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise InvalidInput(f"metadata{who} has a non-string key {key!r}")
        stack.append((key, value, 0))
    while stack:
        key, value, depth = stack.pop()
        kind = _kind(value)
        if kind is None:
            raise InvalidInput(
                f"metadata field {key!r}{who} holds a {type(value).__name__}, which is not "
                "a JSON value"
            )
        if not every_kind and kind not in kinds:
            raise UnsupportedMetadata(doc_id, key, kind, sorted(kinds), backend)
        if kind == "str":
            s: str = value  # type: ignore[assignment]
            if not s.isascii():
                _check_unicode(s, f"metadata field {key!r}{who}")
        elif kind == "float":
            if not math.isfinite(value):  # type: ignore[arg-type]
                raise InvalidInput(f"metadata field {key!r}{who} holds {value!r}, not JSON")
        elif kind in ("list", "object"):
            if depth >= _MAX_DEPTH:
                raise InvalidInput(f"metadata field {key!r}{who} is nested too deeply")
            if kind == "list":
                stack.extend((key, v, depth + 1) for v in value)  # type: ignore[attr-defined]
            else:
                for k2, v2 in value.items():  # type: ignore[attr-defined]
                    if not isinstance(k2, str):
                        raise InvalidInput(f"metadata field {key!r}{who} has a non-string key")
                    if not k2.isascii():
                        _check_unicode(k2, f"metadata field {key!r}{who}")
                    stack.append((key, v2, depth + 1))
    if max_bytes is not None:
        size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > max_bytes:
            raise LimitExceeded("metadata", doc_id, size, max_bytes, backend)


def _plain_scalars(metadata: dict[str, Any]) -> bool:
    """True when every key is a ``str`` and every value an ASCII ``str``, an ``int``, a
    ``bool``, ``None`` or a finite ``float``: metadata :func:`check_metadata` accepts for
    every backend without limits (False says nothing: check it in full)."""
    for key, value in metadata.items():
        if type(key) is not str:
            return False
        t = type(value)
        if t is str:
            if not value.isascii():
                return False
        elif t is float:
            if not math.isfinite(value):
                return False
        elif not (t is int or t is bool or value is None):
            return False
    return True


#: the kinds of :func:`_plain_scalars` metadata
_SCALAR_KINDS = frozenset({"str", "int", "float", "bool", "null"})


def _json_size_bound(metadata: dict[str, Any]) -> int:
    """An upper bound of the UTF-8 size of ``metadata``'s compact JSON, for metadata
    :func:`_plain_scalars` accepts (ASCII keys and strings: a character escapes to at most
    6; an int has at most ``bit_length // 3 + 2`` characters with its sign; a finite
    float's repr at most 24; ``false`` 5, ``null`` 4). Within a limit, the metadata is
    within it; above, it must be measured."""
    size = 1  # "{" (each item below counts its separator: "," or the closing "}")
    for key, value in metadata.items():
        size += 6 * len(key) + 4  # quotes, colon, separator
        t = type(value)
        if t is str:
            size += 6 * len(value) + 2
        elif t is int:
            size += value.bit_length() // 3 + 2
        else:
            size += 24  # float, bool or None
    return size if metadata else 2


def _check_unicode(s: str, what: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode (a lone surrogate)") from None


def json_safe_metadata(metadata: Mapping[str, Any], doc_id: str) -> dict[str, Any]:
    """Check metadata is a JSON object of JSON values; returns a plain dict copy."""
    if not isinstance(metadata, Mapping):
        raise InvalidInput(f"metadata of document {doc_id!r} must be an object")
    try:
        out: dict[str, Any] = json.loads(json.dumps(dict(metadata), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"metadata of document {doc_id!r} is not JSON-serializable: {e}") from e
    return out


def validate_records(
    spec: NamespaceSpec,
    records: Sequence[Record],
    capabilities: Capabilities | None = None,
    backend: str = "backend",
) -> Matrix:
    """Check a batch against a namespace (and the backend's declared limits) before
    anything is written.

    Raises ``InvalidId``, ``DuplicateIds``, ``DimensionMismatch``, ``NonFiniteVector``,
    ``ZeroVector`` (cosine), ``StampMismatch``, ``UnsupportedMetadata``, ``LimitExceeded``
    or ``InvalidInput``. Returns the vectors stacked as a contiguous float32 matrix.
    """
    caps = capabilities or _DEFAULT_CAPABILITIES
    for r in records:
        if not isinstance(r, Record):
            raise InvalidInput(f"expected Record objects, got {type(r).__name__}")
    validate_ids([r.id for r in records])
    if not records:
        return np.zeros((0, spec.dimension), dtype=np.float32)
    rows = []
    kinds = frozenset(caps.metadata_kinds)
    max_md = caps.max_metadata_bytes
    max_text = caps.max_text_bytes
    # metadata of plain scalars is checked inline (the usual case: no call per record),
    # its size (where the backend limits it) by an upper bound; anything else, or a bound
    # above the limit, goes through check_metadata
    inline_md = kinds >= _SCALAR_KINDS
    dim = spec.dimension
    for r in records:
        stamp = r.stamp
        if not isinstance(stamp, Stamp):
            raise InvalidInput(f"record {r.id!r} has no Stamp")
        if stamp.fingerprint != spec.fingerprint:
            raise StampMismatch(spec.name, spec.fingerprint, stamp.fingerprint, r.id)
        if stamp.doc_id != r.id:
            raise InvalidInput(f"record {r.id!r} carries a stamp for document {stamp.doc_id!r}")
        if r.vector is None:
            raise InvalidInput(f"record {r.id!r} has no vector")
        text = r.text
        if text is not None:
            if not isinstance(text, str):
                raise InvalidInput(f"text of record {r.id!r} must be a string or None")
            if not text.isascii():
                _check_unicode(text, f"text of record {r.id!r}")
            if max_text is not None:
                size = len(text.encode("utf-8"))
                if size > max_text:
                    raise LimitExceeded("text", r.id, size, max_text, backend)
        md = r.metadata
        if not (inline_md and type(md) is dict and _plain_scalars(md)
                and (max_md is None or _json_size_bound(md) <= max_md)):
            check_metadata(md, r.id, kinds=kinds, max_bytes=max_md, backend=backend)
        v = r.vector
        if type(v) is not np.ndarray:
            v = np.asarray(v)
        if v.ndim != 1 or v.shape[0] != dim:
            got = int(v.shape[-1]) if v.ndim else 0
            raise DimensionMismatch(spec.dimension, got, r.id, spec.name)
        rows.append(v)
    try:
        mat = np.ascontiguousarray(np.stack(rows), dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"vectors of the batch are not numeric: {e}") from e
    finite = np.isfinite(mat).all(axis=1)
    if not finite.all():
        raise NonFiniteVector(records[int(np.argmin(finite))].id)
    if spec.metric == "cosine":
        zero = ~mat.any(axis=1)
        if zero.any():
            raise ZeroVector(records[int(np.argmax(zero))].id, spec.metric)
    return mat


def validate_k(k: object) -> int:
    """``k`` if it is an ``int`` (not a ``bool``) of at least 1; else ``InvalidInput``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    return int(k)


def validate_limit(limit: object) -> None:
    """Raise ``InvalidInput`` unless ``limit`` (a scan page size) is a positive integer."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"limit must be a positive integer, got {limit!r}")


def validate_queries(spec: NamespaceSpec, queries: Matrix, k: int) -> Matrix:
    """Check a query matrix (and ``k``); returns it as contiguous float32 of shape (q, d).

    Raises ``DimensionMismatch``, ``NonFiniteVector``, ``ZeroVector`` (a cosine query of
    all zeros) or ``InvalidInput`` (bad ``k``, not numeric)."""
    if type(queries) is np.ndarray and queries.dtype == _F32:
        q = queries  # the common case: no conversion, no copy
    else:
        try:
            q = np.asarray(queries, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"queries must be a numeric matrix: {e}") from e
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != spec.dimension:
        raise DimensionMismatch(spec.dimension, int(q.shape[-1]) if q.ndim else 0, None, spec.name)
    if q.shape[0] == 1:
        # one query (the common case): on its values as Python floats, which costs less
        # than two numpy reductions when the caches are cold (as after a network wait);
        # the sum of float32 values as floats is finite exactly when every value is
        row = q[0].tolist()
        if not math.isfinite(sum(row)):
            raise NonFiniteVector(None)
        validate_k(k)
        if spec.metric == "cosine" and not any(row):
            raise ZeroVector(None, spec.metric)
        return q if q.flags.c_contiguous else np.ascontiguousarray(q)
    # the float64 sum of float32 values is finite exactly when every value is
    if not math.isfinite(q.sum(dtype=np.float64)):
        raise NonFiniteVector(None)
    validate_k(k)
    if spec.metric == "cosine" and q.shape[0] and not q.any(axis=1).all():
        raise ZeroVector(None, spec.metric)
    return q if q.flags.c_contiguous else np.ascontiguousarray(q)


def filter_operators(flt: Filter) -> frozenset[str]:
    """The portable operators a filter uses (``eq``, ``in``, ``range``)."""
    ops: set[str] = set()
    for c in flt.conditions:
        if isinstance(c, Eq):
            ops.add("eq")
        elif isinstance(c, In):
            ops.add("in")
        elif isinstance(c, Range):
            ops.add("range")
        else:  # pragma: no cover - Filter only builds the three
            raise InvalidFilter(f"unknown filter condition {c!r}")
    return frozenset(ops)


def check_filter(
    flt: object, capabilities: Capabilities | None = None, backend: str = "backend"
) -> Filter | None:
    """The filter to pass on: ``None`` for no filter or an empty one; ``InvalidFilter`` for
    something that is not a :class:`Filter`; ``UnsupportedFilter`` for an operator the
    backend does not declare."""
    if flt is None:
        return None
    if not isinstance(flt, Filter):
        raise InvalidFilter(
            f"filter must be a vecver.filters.Filter, got {type(flt).__name__}",
            hint="build one with vecver.filters.F or Filter.parse({...})",
        )
    if not flt:
        return None
    caps = capabilities or _DEFAULT_CAPABILITIES
    missing = filter_operators(flt) - set(caps.filter_ops)
    if missing:
        raise UnsupportedFilter(sorted(missing), sorted(caps.filter_ops), backend)
    return flt
