"""Qdrant's named-vector layout (``layout = "named"``): the spaces of one vecver collection
are named vectors of ONE shared Qdrant collection, a document one point holding a vector
per space.

Where a namespace lives (:func:`locate`, a pure function of its name, the same in every
process): a name of the form ``vv_{C}__{rest}`` — what
:meth:`QdrantBackend.physical_name <vecver.backends.qdrant.QdrantBackend.physical_name>`
gives, ``vv_{collection}__{label}_{fingerprint[:8]}`` — is the vector ``rest`` of the Qdrant
collection ``vv_{C}``, split at the first ``__`` that is followed by a letter or digit
(space labels start with a letter, so a collection name with ``_`` in it, or ending in
``_``, is kept whole; a collection name holding ``__`` followed by a letter shares its
Qdrant collection with its siblings of the same prefix, which is harmless: every space
keeps a vector of its own). A ``rest`` that is not plain (letters, digits, ``_``, ``-``,
starting with a letter or digit; at most 200 bytes, Qdrant's limit) is replaced by ``_`` and
16 hex digits of its BLAKE2b hash. Any other name is the vector :data:`FALLBACK_VECTOR` of a
Qdrant collection of its own name. Distinct names always map to distinct (collection,
vector) pairs (the split is a function of the name; plain, hashed and fallback vector
names never equal each other), and each namespace's metadata entry records its full name,
so a hash collision is refused instead of sharing a vector.

What the shared collection holds:

- its metadata: ``vecver`` = ``{"format": 1, "layout": "named", "collection": NAME}`` and,
  per namespace, ``vecver:ns:{vector}`` = the namespace's name and spec (each namespace
  its own top-level key, so that concurrent creators of different spaces never overwrite
  each other's entries; a drop sets it to null, which removes it);
- one named vector per namespace (its dimension and distance);
- one point per document (``uuid5(id)``, as in the collection layout) whose payload holds,
  per namespace, one top-level key named like the vector: an object with that
  namespace's stamp, text, metadata and list-field names (the collection layout's
  payload, nested). Filters of a namespace address ``{vector}.{field}``.

Membership: a point is a record of a namespace when it holds the namespace's vector AND
its payload object (``HasVector`` plus a non-empty ``{vector}._vv_id``; qdrant-client's
local mode supports both in filters, counts and scrolls). Count, scan, fetch and search
filter by it.

Write order (what a kill -9 can leave behind is a state the core's reconcile repairs):

- a document no namespace holds yet is inserted whole (vector and payload object in one
  point, ``update_mode=insert_only`` so that a point another namespace created meanwhile
  is never replaced; such points are found by reading back and written as below);
- a point that exists gets, in ONE ``batch_update_points`` request applied in order, its
  vector (``update_vectors``, other vectors untouched) and THEN its payload object
  (``set_payload`` of that one top-level key, other keys untouched). The stamp is written
  last: a crash between the two leaves the new vector under the old stamp (stale: verify
  and reconcile re-write it) or, for a document new to the namespace, a vector without a
  payload object (not a record: reconcile writes it). Never a new stamp over an old vector.
  ``upsert`` (which replaces a whole point) is never sent for an existing point.
- delete: payload object first (membership ends), then the vector, then the point if it
  holds no vector any more — one request, in that order.
- drop: every payload object of the namespace, the points left holding no other vector,
  the metadata entry, the vector name, and the Qdrant collection once it holds no
  namespace. A drop interrupted by a crash leaves the namespace existing with part of its
  records (drop it again); a vector left without an entry is reused or replaced by the
  next create of that name.

Native aliases cannot switch a vector (an alias names a collection): this layout declares
``native_alias=False`` and vecver's manifest alias is the switch.

Limits, compared with the collection layout:

- a record's vector and its payload object are two operations, not one point replaced
  whole: after a crash in the middle of a write to the ACTIVE space, a record can hold its
  new vector under its old text, metadata and stamp until the write is sent again (the
  stamp says which write it is; verify of a candidate against the active space sees it as
  stale and repairs it);
- the spec cache is checked on every failure and on every read that finds nothing (a
  filter on a vector dropped by another process matches nothing rather than failing), so
  a dropped namespace is ``NamespaceNotFound``, never "empty";
- a write to a point that another space deleted whole between this call's read and its
  write is a ``TransientBackendError`` (the core retries; the retry inserts it);
- on a Qdrant server this needs the named-vector API (``create_vector_name``, collection
  metadata) and is verified only against qdrant-client's local mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client.http import models

from ...errors import (
    BackendError,
    ForeignNamespace,
    NamespaceExists,
    NamespaceNotFound,
    TransientBackendError,
    VecverError,
)
from ...filters import Filter
from ...types import Hit, Matrix, Metric, NamespaceSpec, Record, ScanPage
from .._remote import KEY_AT, KEY_HASH, KEY_ID
from ._codec import point_id

if TYPE_CHECKING:
    from ._backend import QdrantBackend

__all__ = [
    "DISTANCE",
    "FALLBACK_VECTOR",
    "META_KEY",
    "METRIC",
    "NS_META_PREFIX",
    "NamedLayout",
    "locate",
    "member_filter",
    "vector_name",
]

#: The key of vecver's entry in a collection's metadata.
META_KEY = "vecver"
#: The metadata key of one namespace of a shared collection: this and its vector name.
NS_META_PREFIX = "vecver:ns:"
#: The vector of a namespace whose name is not of the form ``vv_{C}__{rest}``.
FALLBACK_VECTOR = "_vv"
_FORMAT = 1
_LAYOUT = "named"

DISTANCE: dict[Metric, models.Distance] = {
    "cosine": models.Distance.COSINE,
    "dot": models.Distance.DOT,
    "l2": models.Distance.EUCLID,
}
METRIC = {v: k for k, v in DISTANCE.items()}

_SPLIT = re.compile(r"__(?=[A-Za-z0-9])")
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_VECTOR_MAX_BYTES = 200
_SCROLL_MAX = 1000
_QUERY_BATCH = 64
_CREATE_TRIES = 3


def vector_name(rest: str) -> str:
    """The Qdrant vector (and payload key) name of the part of a namespace name after its
    collection: ``rest`` itself when plain, otherwise ``_`` + 16 hex digits of its hash."""
    if _PLAIN.fullmatch(rest) and len(rest) <= _VECTOR_MAX_BYTES:
        return rest
    return "_" + hashlib.blake2b(rest.encode("utf-8"), digest_size=8).hexdigest()


def locate(name: str) -> tuple[str, str]:
    """``(qdrant collection, vector name)`` of the namespace ``name`` (see the module
    docstring): deterministic, and distinct for distinct names."""
    if name.startswith("vv_"):
        m = _SPLIT.search(name, 4)  # at least one character of collection after "vv_"
        if m is not None:
            return name[: m.start()], vector_name(name[m.end() :])
    return name, FALLBACK_VECTOR


def member_filter(vector: str) -> models.Filter:
    """The points that are records of the namespace whose vector is ``vector``: they hold
    the vector and its payload object."""
    return models.Filter(
        must=[models.HasVectorCondition(has_vector=vector)],
        must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=f"{vector}.{KEY_ID}"))],
    )


#: A filter no point matches (an empty id list).
_NO_POINT = models.Filter(must=[models.HasIdCondition(has_id=[])])


def _vectors(info: models.CollectionInfo) -> dict[str, models.VectorParams]:
    v = info.config.params.vectors
    return dict(v) if isinstance(v, dict) else {}


class NamedLayout:
    """The namespace and data methods of a :class:`QdrantBackend` in the named-vector
    layout; the backend's ``_methods`` delegate here. Uses the backend's client, lock,
    error translation, payload codec, filter translation and spec cache."""

    def __init__(self, backend: QdrantBackend) -> None:
        self.b = backend

    # -- namespaces -------------------------------------------------------------------

    def _info(self, group: str, name: str) -> models.CollectionInfo:
        with self.b._call("get collection", name):
            return self.b._client.get_collection(group)

    @staticmethod
    def _head(group: str, name: str, info: models.CollectionInfo) -> dict[str, Any]:
        """The metadata of a shared collection of this layout; ``ForeignNamespace`` when
        ``group`` is a collection vecver did not create in this layout,
        ``NamespaceNotFound`` when it is an alias of another collection."""
        meta = dict(info.config.metadata or {})
        head = meta.get(META_KEY)
        if not isinstance(head, dict) or head.get("layout") != _LAYOUT:
            raise ForeignNamespace(name, "qdrant")
        if head.get("collection") != group:
            raise NamespaceNotFound(name)  # Qdrant resolved an alias to its collection
        return meta

    def describe(self, name: str) -> NamespaceSpec:
        group, vec = locate(name)
        info = self._info(group, name)
        meta = self._head(group, name, info)
        entry = meta.get(NS_META_PREFIX + vec)
        if not isinstance(entry, dict) or entry.get("name") != name:
            raise NamespaceNotFound(name)
        try:
            spec = NamespaceSpec(
                name, int(entry["dimension"]), entry["metric"], str(entry["fingerprint"])
            )
        except (KeyError, TypeError, ValueError) as e:
            raise BackendError(
                f"qdrant collection {group!r} has unreadable vecver metadata for {name!r} ({e})"
            ) from e
        params = _vectors(info).get(vec)
        if params is None or params.size != spec.dimension or METRIC.get(params.distance) != (
            spec.metric
        ):
            raise BackendError(
                f"qdrant collection {group!r} no longer has the vector {vec!r} of namespace "
                f"{name!r} ({spec.dimension} dimensions, {spec.metric}); was it changed "
                "outside vecver?"
            )
        self.b._specs[name] = spec
        return spec

    def create(self, spec: NamespaceSpec) -> NamespaceSpec:
        name = spec.name
        group, vec = locate(name)
        for _ in range(_CREATE_TRIES):
            with contextlib.suppress(NamespaceNotFound):
                return self.describe(name)
            try:
                self._create_in(spec, group, vec)
            except NamespaceNotFound:
                continue  # the shared collection vanished (its last namespace dropped): again
            return self.describe(name)
        raise TransientBackendError(
            f"qdrant: creating namespace {name!r} in collection {group!r} did not settle "
            "(the collection was dropped and created concurrently); retry"
        )

    def _create_in(self, spec: NamespaceSpec, group: str, vec: str) -> None:
        b, name = self.b, spec.name
        info = self._ensure_group(group, name)
        try:
            meta = self._head(group, name, info)
        except NamespaceNotFound:
            raise NamespaceExists(
                name, f"an alias named {group!r}, the Qdrant collection it would live in"
            ) from None
        entry = meta.get(NS_META_PREFIX + vec)
        if isinstance(entry, dict) and entry.get("name") != name:
            raise BackendError(
                f"qdrant: namespace {name!r} maps to vector {vec!r} of collection {group!r}, "
                f"which holds namespace {entry.get('name')!r} (a hash collision)",
                hint="choose another space label or collection name",
            )
        params = _vectors(info).get(vec)
        if params is not None and (
            params.size != spec.dimension or METRIC.get(params.distance) != spec.metric
        ):
            # a vector no namespace owns (a create or drop that did not finish): replace it
            with b._call("delete vector", name):
                b._client.delete_vector_name(group, vec)
        with b._call("create vector", name):
            b._client.create_vector_name(
                group,
                vec,
                models.DenseVectorNameConfig(
                    dense=models.DenseVectorConfig(
                        size=spec.dimension, distance=DISTANCE[spec.metric]
                    )
                ),
            )
        entry = {
            "name": name,
            "vector": vec,
            "dimension": spec.dimension,
            "metric": spec.metric,
            "fingerprint": spec.fingerprint,
        }
        with b._call("update collection metadata", name):
            b._client.update_collection(group, metadata={NS_META_PREFIX + vec: entry})

    def _ensure_group(self, group: str, name: str) -> models.CollectionInfo:
        with contextlib.suppress(NamespaceNotFound):
            return self._info(group, name)
        head = {"format": _FORMAT, "layout": _LAYOUT, "collection": group}
        # failing: a concurrent creator (or an alias of that name); read what is there
        with contextlib.suppress(VecverError), self.b._call("create collection", name):
            self.b._client.create_collection(group, vectors_config={}, metadata={META_KEY: head})
        return self._info(group, name)

    def names(self) -> list[str]:
        b = self.b
        with b._call("list collections"):
            groups = [c.name for c in b._client.get_collections().collections]
        out: list[str] = []
        for group in groups:
            try:
                meta = self._head(group, group, self._info(group, group))
            except (NamespaceNotFound, ForeignNamespace):
                continue
            for key, entry in meta.items():
                if key.startswith(NS_META_PREFIX) and isinstance(entry, dict):
                    n = entry.get("name")
                    if isinstance(n, str):
                        with contextlib.suppress(NamespaceNotFound, BackendError):
                            self.describe(n)
                            out.append(n)
        return out

    def drop(self, name: str) -> None:
        b = self.b
        b._specs.pop(name, None)
        group, vec = locate(name)
        try:
            info = self._info(group, name)
            meta = self._head(group, name, info)
        except NamespaceNotFound:
            return  # absent, or an alias
        key = NS_META_PREFIX + vec
        entry = meta.get(key)
        if isinstance(entry, dict) and entry.get("name") != name:
            return  # the vector is another namespace's
        vectors = _vectors(info)
        if vec in vectors:
            others = [v for v in vectors if v != vec]
            ops: list[models.UpdateOperation] = [
                # membership ends first: the payload objects
                models.DeletePayloadOperation(
                    delete_payload=models.DeletePayload(
                        keys=[vec],
                        filter=models.Filter(
                            must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=vec))]
                        ),
                    )
                ),
                # then the points holding no other vector
                models.DeleteOperation(
                    delete=models.FilterSelector(
                        filter=models.Filter(
                            must_not=[models.HasVectorCondition(has_vector=v) for v in others]
                        )
                    )
                ),
            ]
            with b._call("drop namespace", name):
                b._client.batch_update_points(group, update_operations=ops, wait=True)
        if entry is not None:
            with b._call("update collection metadata", name):
                b._client.update_collection(group, metadata={key: None})
        if vec in vectors:
            with b._call("delete vector", name):
                b._client.delete_vector_name(group, vec)
        b._specs.pop(name, None)
        self._drop_group_if_empty(group, name)

    def _drop_group_if_empty(self, group: str, name: str) -> None:
        try:
            info = self._info(group, name)
            meta = self._head(group, name, info)
        except NamespaceNotFound:
            return
        if _vectors(info) or any(
            k.startswith(NS_META_PREFIX) and v is not None for k, v in meta.items()
        ):
            return
        with self.b._call("delete collection", name):
            self.b._client.delete_collection(group)

    # -- data -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _data(self, what: str, name: str) -> Iterator[None]:
        """One data call on namespace ``name``. A failure is looked at again with the
        namespace re-described: gone -> ``NamespaceNotFound`` (its vector was dropped); a
        point the call addressed being missing (a concurrent delete of the whole point)
        -> ``TransientBackendError`` (the retry inserts it)."""
        try:
            with self.b._call(what, name):
                try:
                    yield
                except KeyError as e:  # local mode: a point id the collection does not hold
                    raise NamespaceNotFound(name) from e
        except TransientBackendError:
            raise
        except ForeignNamespace:
            raise
        except BackendError as e:
            self.b._specs.pop(name, None)
            self.describe(name)  # NamespaceNotFound when the namespace is gone
            if isinstance(e, NamespaceNotFound):
                raise TransientBackendError(
                    f"qdrant {what} on {name!r}: a point it addressed was deleted meanwhile "
                    "(a concurrent delete in another space); retry"
                ) from e
            raise

    def _confirm(self, name: str) -> None:
        """After a read that found nothing: the namespace still exists (a filter on a
        vector dropped since the spec was cached matches nothing instead of failing), or
        ``NamespaceNotFound``."""
        self.b._specs.pop(name, None)
        self.describe(name)

    def upsert(self, name: str, records: Sequence[Record], vectors: Matrix) -> None:
        b = self.b
        b._input_spec(name)
        group, vec = locate(name)
        ids: list[str] = [point_id(r.id) for r in records]
        slots = [b._payload(r) for r in records]
        rows = vectors.tolist()
        with self._data("retrieve", name):
            present = {
                str(p.id)
                for p in b._client.retrieve(group, ids=list(ids), with_payload=False,
                                            with_vectors=False)
            }  # fmt: skip
        new = [i for i, pid in enumerate(ids) if pid not in present]
        if new:
            self._insert(name, group, vec, [ids[i] for i in new], [slots[i] for i in new],
                         [rows[i] for i in new])  # fmt: skip
            # a point another space created after the read was left alone by insert_only
            mine = {ids[i]: slots[i] for i in new}
            with self._data("retrieve", name):
                got = b._client.retrieve(group, ids=list(mine), with_payload=[vec],
                                         with_vectors=False)  # fmt: skip
            written = {str(p.id) for p in got if _same_write((p.payload or {}).get(vec),
                                                             mine[str(p.id)])}  # fmt: skip
            new = [i for i in new if ids[i] not in written]
        update = [i for i in range(len(ids)) if ids[i] in present] + new
        if update:
            self._update(name, group, vec, [ids[i] for i in update], [slots[i] for i in update],
                         [rows[i] for i in update], vectors.shape[1])  # fmt: skip

    def _insert(self, name: str, group: str, vec: str, ids: list[str],
                slots: list[dict[str, Any]], rows: list[list[float]]) -> None:  # fmt: skip
        b = self.b
        payloads = [{vec: s} for s in slots]
        for start, stop in b._request_slices(payloads, len(rows[0])):
            points = [
                models.PointStruct(id=ids[i], vector={vec: rows[i]}, payload=payloads[i])
                for i in range(start, stop)
            ]
            with self._data("insert", name):
                # a point that exists (another space's) is left alone: insert_only, and an
                # update filter no point matches (for a server that predates update_mode)
                b._client.upsert(
                    group, points=points, update_mode=models.UpdateMode.INSERT_ONLY,
                    update_filter=_NO_POINT, wait=True,
                )

    def _update(
        self, name: str, group: str, vec: str, ids: list[str], slots: list[dict[str, Any]],
        rows: list[list[float]], dim: int,
    ) -> None:
        b = self.b
        for start, stop in b._request_slices([{vec: s} for s in slots], dim):
            ops: list[models.UpdateOperation] = [
                models.UpdateVectorsOperation(
                    update_vectors=models.UpdateVectors(
                        points=[models.PointVectors(id=ids[i], vector={vec: rows[i]})
                                for i in range(start, stop)]  # fmt: skip
                    )
                )
            ]
            # the stamps last: see the module docstring
            ops.extend(
                models.SetPayloadOperation(
                    set_payload=models.SetPayload(payload={vec: slots[i]}, points=[ids[i]])
                )
                for i in range(start, stop)
            )
            with self._data("update points", name):
                b._client.batch_update_points(group, update_operations=ops, wait=True)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        b = self.b
        b._input_spec(name)
        group, vec = locate(name)
        pids: list[models.ExtendedPointId] = [point_id(i) for i in ids]
        info = self._info(group, name)
        these = models.Filter(must=[models.HasIdCondition(has_id=pids)])
        ops: list[models.UpdateOperation] = [
            # membership ends first (the payload object), then the vector, then the point
            # when it holds no vector any more
            models.DeletePayloadOperation(
                delete_payload=models.DeletePayload(keys=[vec], filter=these)
            ),
            models.DeleteVectorsOperation(
                delete_vectors=models.DeleteVectors(vector=[vec], filter=these)
            ),
            models.DeleteOperation(
                delete=models.FilterSelector(
                    filter=models.Filter(
                        must=[models.HasIdCondition(has_id=pids)],
                        must_not=[models.HasVectorCondition(has_vector=v) for v in _vectors(info)],
                    )
                )
            ),
        ]
        with self._data("delete", name):
            b._client.batch_update_points(group, update_operations=ops, wait=True)

    def _record(self, vec: str, p: Any, with_vectors: bool) -> Record:
        v = None
        if with_vectors:
            got = p.vector.get(vec) if isinstance(p.vector, dict) else None
            v = None if got is None else np.asarray(got, dtype=np.float32)
        return self.b._codec.to_record((p.payload or {}).get(vec) or {}, v)

    def fetch(self, name: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        b = self.b
        b._input_spec(name)
        group, vec = locate(name)
        wanted = {point_id(i): i for i in ids}
        # by id (no filter): membership is checked here, on the payload object (which the
        # write order never leaves without the vector) and, when read, the vector
        with self._data("retrieve", name):
            points = b._client.retrieve(
                group, ids=list(wanted), with_payload=[vec],
                with_vectors=[vec] if with_vectors else False,
            )  # fmt: skip
        out: dict[str, Record] = {}
        for p in points:
            doc = wanted.get(str(p.id))
            slot = (p.payload or {}).get(vec) or {}
            if doc is None or not b._codec.check_id(doc, slot):
                continue  # not a record of this space, or a UUID collision: absent
            if with_vectors and not (isinstance(p.vector, dict) and vec in p.vector):
                continue
            out[doc] = self._record(vec, p, with_vectors)
        if not out:
            self._confirm(name)
        return out

    def scan(self, name: str, cursor: str | None, limit: int, with_vectors: bool) -> ScanPage:
        from ._backend import _point_of_cursor

        b = self.b
        b._input_spec(name)
        group, vec = locate(name)
        offset = None if cursor is None else _point_of_cursor(cursor)
        with self._data("scroll", name):
            points, nxt = b._client.scroll(
                group, scroll_filter=member_filter(vec), limit=min(limit, _SCROLL_MAX),
                offset=offset, with_payload=[vec],
                with_vectors=[vec] if with_vectors else False,
            )  # fmt: skip
        if not points and cursor is None:
            self._confirm(name)
        return ScanPage([self._record(vec, p, with_vectors) for p in points],
                        None if nxt is None else str(nxt))  # fmt: skip

    def count(self, name: str) -> int:
        b = self.b
        b._input_spec(name)
        group, vec = locate(name)
        with self._data("count", name):
            n = int(b._client.count(group, count_filter=member_filter(vec), exact=True).count)
        if n == 0:
            self._confirm(name)
        return n

    def _query(
        self, name: str, group: str, vec: str, rows: list[Any], k: int,
        flt: models.Filter | None,
    ) -> list[models.QueryResponse]:
        requests = [
            models.QueryRequest(query=q, using=vec, limit=k, filter=flt,
                                params=self.b._search_params, with_payload=[vec],
                                with_vector=False)  # fmt: skip
            for q in rows
        ]
        with self._data("query", name):
            return list(self.b._client.query_batch_points(group, requests=requests))

    def search(self, name: str, queries: Matrix, k: int, flt: Filter | None) -> list[list[Hit]]:
        from ._backend import _NOTHING

        b = self.b
        metric = b._input_spec(name).metric
        group, vec = locate(name)
        native = b._native_filter(name, flt, collection=group, vector=vec)
        if native is _NOTHING:
            return [[] for _ in range(queries.shape[0])]
        member = member_filter(vec)
        full = member if native is None else models.Filter(must=[member, native])
        rows = queries.tolist()
        out: list[list[Hit]] = []
        for start in range(0, len(rows), _QUERY_BATCH):
            batch = rows[start : start + _QUERY_BATCH]
            # first without the membership filter (``using`` already restricts the search
            # to the points holding the vector): exact whenever every hit is a record; a
            # query that met a vector without its payload object (a write cut by a crash)
            # is asked again with the filter
            answers = self._query(name, group, vec, batch, k, native)
            again = [i for i, a in enumerate(answers)
                     if not all(_is_record(p.payload, vec) for p in a.points)]  # fmt: skip
            if again:
                redo = self._query(name, group, vec, [batch[i] for i in again], k, full)
                for i, a in zip(again, redo, strict=True):
                    answers[i] = a
            for answer in answers:
                out.append([
                    b._codec.hit((p.payload or {}).get(vec) or {},
                                 float(b.score_from_distance(metric, float(p.score))))
                    for p in answer.points
                ])
        if not any(out):
            self._confirm(name)
        return out


def _is_record(payload: dict[str, Any] | None, vec: str) -> bool:
    """The point (found by a search of ``vec``) holds the payload object of ``vec``."""
    slot = (payload or {}).get(vec)
    return isinstance(slot, dict) and isinstance(slot.get(KEY_ID), str)


def _same_write(stored: Any, mine: dict[str, Any]) -> bool:
    """The payload object read back is the one this call wrote (id, source hash, time)."""
    return isinstance(stored, dict) and all(
        stored.get(k) == mine.get(k) for k in (KEY_ID, KEY_HASH, KEY_AT)
    )
