"""Adopted collections: a collection some other code filled, used as a vecver namespace.

An adopted collection has no stamps and its own id and text fields. It stays in the
layout it has: vecver reads it, and writes it only as that layout says (see
:class:`Layout`). Three kinds of plain data describe it, and one codec (the functions of
this module) translates between them and vecver's :class:`~vecver.types.Record`, for
every backend alike:

- :class:`ExternalCollection` — what a backend reports of a physical collection
  (:meth:`vecver.backends.base.Backend.describe_external`);
- :class:`Layout` — how vecver reads and writes one adopted collection (kept as the
  namespace row's ``layout`` in the manifest);
- :class:`RawPoint` — one stored object as the database holds it.

The codec's rules (one rule for every backend):

- Reading: the id is ``str(payload[id_field])`` (without an id field: the native key
  as a string), the text ``payload[text_field]`` (without a text field: the database's
  own text slot), the metadata the rest of the payload. The stamp is *synthesized*:
  ``Stamp(layout.fingerprint, id, source_hash(text), 0.0)``. The text field is the
  truth of an adopted object, so a copy in another space is fresh exactly when it was
  embedded from that text, and :func:`vecver.runtime.reconcile.needs_embedding` stays the
  only rule.
- Writing: the payload is the metadata plus ``{text_field: text}`` (plus ``{id_field:
  id}``); no vecver field, no stamp, never a schema change. The key is the key of the
  object that already holds the id, else the id itself as the native key type (without
  an id field), else a deterministic key derived from the id (:func:`new_key`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..errors import (
    AdoptedFieldClash,
    AdoptedFieldMissing,
    AdoptedReadOnly,
    AdoptError,
    InvalidId,
    InvalidInput,
)
from ..types import METRICS, Metric, NamespaceSpec, Record, Stamp, Vector, source_hash
from ._remote import uint64_for, uuid_for

__all__ = [
    "ExternalCollection",
    "check_adopted_writes",
    "IdType",
    "Key",
    "Layout",
    "RawPoint",
    "Writes",
    "decode",
    "encode",
    "native_key",
    "new_key",
]

IdType = Literal["int", "uuid", "str"]
Writes = Literal["layout", "refuse"]
Key = int | str
ID_TYPES: tuple[IdType, ...] = ("int", "uuid", "str")
WRITES: tuple[Writes, ...] = ("layout", "refuse")

_DIGITS = re.compile(r"0|[1-9][0-9]*")
#: the largest native integer key vecver writes or addresses (a signed int64: Milvus)
INT_KEY_MAX = 2**63 - 1


@dataclass(frozen=True)
class ExternalCollection:
    """A physical collection as its database describes it.

    ``fields``: field name -> the database's type word (for a schemaless payload, the
    keys seen on a sample of objects, typed ``"any"``). ``id_type``: the type of the
    native keys (``int``, ``uuid`` or ``str``). ``vector_field``: the vector used (None:
    the collection's single unnamed vector). ``schemaless``: any payload key can be
    written. ``text_slot``: the database has a text slot of its own besides the payload
    (then a layout may leave ``text_field`` out). ``vecver``: the collection is already
    a vecver namespace. ``key_field``: the field holding the native key, where the
    database names one. ``auto_key``: the database assigns keys itself (vecver cannot
    write new objects there)."""

    name: str
    dimension: int
    metric: Metric
    count: int
    fields: dict[str, str]
    id_type: IdType
    vector_field: str | None = None
    schemaless: bool = True
    text_slot: bool = False
    vecver: bool = False
    key_field: str | None = None
    auto_key: bool = False
    vectors: dict[str, tuple[int, Metric]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_vector(self, vector_field: str | None) -> ExternalCollection:
        """This collection as adopted through its vector ``vector_field``.

        ``vectors`` lists a collection's named dense vectors (name -> dimension, metric)
        when it has several; then ``dimension``/``metric``/``vector_field`` describe only
        one of them, and a vector must be chosen. ``None`` keeps the collection's single
        vector. Raises :class:`~vecver.errors.AdoptError` when the collection has several
        vectors and none is named, or the one named is not among them."""
        if vector_field is None:
            if len(self.vectors) > 1:
                raise AdoptError(
                    f"collection {self.name!r} has {len(self.vectors)} vectors "
                    f"({', '.join(sorted(self.vectors))}); say which one the space filled",
                    hint="pass --vector-field NAME (vector_field= in Python)",
                )
            return self
        if vector_field in self.vectors:
            dim, metric = self.vectors[vector_field]
            return replace(self, dimension=dim, metric=metric, vector_field=vector_field)
        if not self.vectors and vector_field == self.vector_field:
            return self
        names = sorted(self.vectors) or ([self.vector_field] if self.vector_field else [])
        raise AdoptError(
            f"collection {self.name!r} has no vector {vector_field!r} (its vectors: "
            f"{', '.join(names) if names else 'one unnamed vector'})",
            hint="pass one of its vector names with --vector-field, or leave it out for "
            "a collection with a single vector",
        )


@dataclass(frozen=True)
class Layout:
    """How vecver reads and writes one adopted collection ``name``.

    ``dimension``, ``metric`` and ``fingerprint`` are those of the space it was adopted
    as (the namespace's spec). ``text_field`` / ``id_field``: the payload fields holding
    the document's text and id (None: the database's text slot / the native key).
    ``id_type``: the native key type. ``vector_field``: the vector used (None: the
    unnamed one). ``writes``: ``"layout"`` — writes of the collection (dual-write,
    deletes) go into it in its own layout; ``"refuse"`` — they are refused
    (:class:`~vecver.errors.AdoptedReadOnly`) and it is never written. ``fields``: the
    collection's fields (name -> the database's type word; for a schemaless payload the
    keys seen when it was adopted). ``key_field``: the field of the native key, where the
    database names one. ``schemaless``: fields outside ``fields`` can be written."""

    name: str
    dimension: int
    metric: Metric
    fingerprint: str
    text_field: str | None
    id_field: str | None
    id_type: IdType
    vector_field: str | None = None
    writes: Writes = "layout"
    fields: dict[str, str] = field(default_factory=dict)
    key_field: str | None = None
    schemaless: bool = True

    @staticmethod
    def of(ext: ExternalCollection, fingerprint: str, *, text_field: str | None,
           id_field: str | None, writes: Writes = "layout") -> Layout:
        """The layout adopting ``ext`` as the space of ``fingerprint``. An id field that
        is the native key's own field means no id field."""
        if id_field is not None and id_field == ext.key_field:
            id_field = None
        return Layout(ext.name, ext.dimension, ext.metric, fingerprint, text_field, id_field,
                      ext.id_type, vector_field=ext.vector_field, writes=writes,
                      fields=dict(ext.fields), key_field=ext.key_field,
                      schemaless=ext.schemaless)  # fmt: skip

    @property
    def spec(self) -> NamespaceSpec:
        """The namespace spec vecver sees for the adopted collection."""
        return NamespaceSpec(self.name, self.dimension, self.metric, self.fingerprint)

    @property
    def own_fields(self) -> tuple[str, ...]:
        """The payload fields that are not metadata (the text and id fields)."""
        return tuple(f for f in (self.text_field, self.id_field) if f is not None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object kept as the namespace row's ``layout``."""
        out = asdict(self)
        out["kind"] = "adopted"
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Layout:
        """The layout a namespace row's ``layout`` holds; ``InvalidInput`` when it is
        not one (a damaged or foreign manifest entry)."""
        try:
            metric = data["metric"]
            id_type = data["id_type"]
            writes = data.get("writes", "layout")
            if metric not in METRICS or id_type not in ID_TYPES or writes not in WRITES:
                raise ValueError(f"metric {metric!r}, id_type {id_type!r}, writes {writes!r}")
            return Layout(
                name=str(data["name"]),
                dimension=int(data["dimension"]),
                metric=metric,
                fingerprint=str(data["fingerprint"]),
                text_field=_opt_str(data.get("text_field")),
                id_field=_opt_str(data.get("id_field")),
                id_type=id_type,
                vector_field=_opt_str(data.get("vector_field")),
                writes=writes,
                fields={str(k): str(v) for k, v in dict(data.get("fields") or {}).items()},
                key_field=_opt_str(data.get("key_field")),
                schemaless=bool(data.get("schemaless", True)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(
                f"the manifest's layout of an adopted namespace is unreadable ({e})",
                hint="adopt the collection again under a new collection name",
            ) from e


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


@dataclass
class RawPoint:
    """One stored object as its database holds it: ``key`` its native id, ``vector``
    (float32, or None when not read), ``payload`` its fields, ``text`` the database's own
    text slot where it has one."""

    key: Key
    vector: Vector | None
    payload: dict[str, Any]
    text: str | None = None


# -- keys ------------------------------------------------------------------------------


def native_key(layout: Layout, doc_id: str) -> Key | None:
    """The native key that document ``doc_id`` is stored under in a collection without
    an id field, or None when no object of that type of key can be it (a non-numeric id
    in a collection keyed by integers)."""
    if layout.id_type == "str":
        return doc_id
    if layout.id_type == "int":
        if _DIGITS.fullmatch(doc_id) and int(doc_id) <= INT_KEY_MAX:
            return int(doc_id)
        return None
    try:
        canonical = str(uuid.UUID(doc_id))
    except ValueError:
        return None
    return canonical if canonical == doc_id else None


def write_key(layout: Layout, doc_id: str) -> Key:
    """:func:`native_key` for a write: ``InvalidId`` (nothing written) when ``doc_id``
    cannot be a key of the collection."""
    key = native_key(layout, doc_id)
    if key is None:
        kind = ("a decimal integer (0 to 2**63-1)" if layout.id_type == "int"
                else "a UUID in canonical form")  # fmt: skip
        raise InvalidId(
            doc_id,
            f"the adopted collection {layout.name!r} keys its objects by their own ids, "
            f"so an id there must be {kind}; adopt it with --id-field to use any ids",
        )
    return key


def new_key(layout: Layout, doc_id: str) -> Key:
    """The key of a new object for ``doc_id`` in a collection with an id field:
    deterministic (the same id always gets the same key), of the collection's key type."""
    if layout.id_type == "int":
        return uint64_for(doc_id, bits=63)
    if layout.id_type == "uuid":
        return uuid_for(doc_id)
    return doc_id


# -- payload ---------------------------------------------------------------------------


def doc_id_of(layout: Layout, point: RawPoint) -> str | None:
    """The document id of a stored object; None when it lacks the id field (or holds a
    value that is not a string or an integer there)."""
    if layout.id_field is None:
        return str(point.key)
    v = point.payload.get(layout.id_field)
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        return None
    s = str(v)
    return s or None


def text_of(layout: Layout, point: RawPoint) -> str | None:
    """The text of a stored object; None when it has none (missing, not a string, blank)."""
    t = point.text if layout.text_field is None else point.payload.get(layout.text_field)
    return t if isinstance(t, str) and t.strip() else None


def decode(layout: Layout, point: RawPoint) -> Record:
    """The record a stored object stands for (see the module docstring for the rule).
    Raises ``AdoptedFieldMissing`` when the object lacks the id field."""
    doc_id = doc_id_of(layout, point)
    if doc_id is None:
        assert layout.id_field is not None
        raise AdoptedFieldMissing(layout.name, layout.id_field, "id", [point.key])
    text = text_of(layout, point)
    own = layout.own_fields
    metadata = {k: v for k, v in point.payload.items() if k not in own}
    stamp = Stamp(layout.fingerprint, doc_id, source_hash(text) if text is not None else "", 0.0)
    vec = None if point.vector is None else np.asarray(point.vector, dtype=np.float32)
    return Record(doc_id, vec, text, metadata, stamp)


def check_metadata(layout: Layout, record: Record) -> None:
    """``AdoptedFieldClash`` when a metadata key of ``record`` is the collection's text
    or id field (writing it would overwrite them)."""
    for f in layout.own_fields:
        if f in record.metadata:
            raise AdoptedFieldClash(record.id, f, layout.name)


def encode(layout: Layout, record: Record, key: Key, vector: Vector) -> RawPoint:
    """The object to store for ``record`` under ``key`` (see the module docstring)."""
    payload: dict[str, Any] = dict(record.metadata)
    text = record.text
    if layout.text_field is not None:
        payload[layout.text_field] = text
        text = None
    if layout.id_field is not None:
        payload[layout.id_field] = record.id
    return RawPoint(key, np.asarray(vector, dtype=np.float32), payload, text)


def check_adopted_writes(
    layouts: Iterable[Mapping[str, Any] | None], ids: Sequence[str], op: str
) -> None:
    """Refuse, before anything is written, a write of ``ids`` (``op``: ``"upsert"`` or
    ``"delete"``) that an adopted collection among ``layouts`` (the ``layout`` of each
    live namespace row; others are ignored) would refuse: ``AdoptedReadOnly`` for one
    adopted read-only, ``InvalidId`` for an upsert of an id that cannot be a key of one
    without an id field."""
    for raw in layouts:
        if not raw or raw.get("kind") != "adopted":
            continue
        layout = Layout.from_dict(raw)
        if layout.writes == "refuse":
            raise AdoptedReadOnly(layout.name)
        if op == "upsert" and layout.id_field is None:
            for i in ids:
                write_key(layout, i)
