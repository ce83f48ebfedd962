"""The ``weaviate`` backend's in-place named-vector layout (``layout = "named"``).

Every space of one vecver collection lives in ONE Weaviate collection: each namespace is a
named vector of it (Weaviate 1.31 and later add a named vector to an existing collection;
``collection.config.add_vector`` of weaviate-client 4.23.1 reads the class and ``PUT``\\ s
it back with the new ``vectorConfig`` entry), and an object (one document, UUID5 of its
id) holds the vector and properties of each namespace it is in.

Where a namespace lives (:meth:`WeaviateNamedBackend.location`): the namespace name is cut
at its first ``__`` into a group and a rest (vecver's physical names are
``Vv_{collection}__{label}_{fingerprint[:8]}``, so the group is the vecver collection);
the Weaviate collection is ``Vvn_`` + the group (without its ``Vv_``), the vector is
``v_`` + the rest (``h_...`` + a hash when the rest is not lowercase letters, digits and
``_`` of at most 48 characters), or that name + ``_g2``, ``_g3``... when it is already
taken: Weaviate cannot remove a named vector (a class update leaving one out is refused
with ``missing config for vector``; weaviate-client 4.23.1 has no call for it), so a
dropped namespace keeps its vector name for good and a recreated one gets the next.

Per namespace (vector ``V``), properties ``V_id``, ``V_fp``, ``V_hash``, ``V_at`` (the
stamp), ``V_text``, ``V_meta`` (metadata as JSON), ``V_keys`` and ``V_vn_...`` (the
filterable copy, :mod:`._filters`, renamed). The description of ``V_id`` holds the
namespace's spec (it is the namespace's *claim*); the namespace exists when the vector
``V`` exists too and no ``V_gone`` property (its drop marker) does. Every schema change
is an append Weaviate makes atomically, so a crash between two of them leaves either no
namespace or a whole one: creating again resumes a claim with the same spec.

Writes are per object and atomic on the server: an upsert is a ``PATCH`` (merge: the
namespace's properties and vector replace theirs, the other namespaces' are kept, a stale
property of this namespace is sent as null, which removes it) or, for a new document, a
``POST`` (an id created meanwhile falls back to the merge). A delete ``PUT``\\ s the object
back without the namespace's vector and properties, or deletes it when that was its last
vector; this read-modify-write is the one step that is not atomic on the server: a write
of the same document to ANOTHER namespace of the collection at the same moment may be
undone (run ``vecver verify`` / ``reconcile`` after such a race). Dropping a namespace
marks it gone first (it disappears at once), then strips its vectors and properties from
every object (deleting those left with no vector) and deletes the Weaviate collection
once no namespace is left; a drop interrupted half-way is finished by the next drop in
that collection.

Reads see only the namespace's objects: ``fetch`` checks ``V_id``, ``scan`` walks the
collection's cursor and keeps the objects holding ``V_id``, ``count`` aggregates with
``V_fp`` = the fingerprint, ``search`` is ``near_vector`` with ``target_vector=V`` (which
only objects holding ``V`` take part in) and the filter on ``V``'s properties.

Aliases: Weaviate aliases name a collection, not a vector, so this layout declares
``native_alias = False`` and vecver keeps the collection's alias in its manifest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.query import Filter as WFilter
from weaviate.classes.query import MetadataQuery
from weaviate.exceptions import UnexpectedStatusCodeError

from ...errors import (
    BackendError,
    BatchObjectsFailed,
    ConfigError,
    ForeignNamespace,
    NamespaceNotFound,
    VecverError,
)
from ...filters import Filter
from ...types import Hit, Matrix, NamespaceSpec, Record, ScanPage
from .._remote import KEY_AT, KEY_FP, KEY_HASH, KEY_ID, KEY_TEXT, uuid_for
from ..base import Backend, exact_scores
from ._backend import _CAPABILITIES, _DISTANCE, _METRIC, _NOTHING, WeaviateBackend, _uuid_of_cursor
from ._filters import KEYS_PROPERTY, numeric_fields, tokens_of, translate_filter

__all__ = ["NAMED_CAPABILITIES", "Slot", "WeaviateNamedBackend", "shared_collection",
           "vector_base"]  # fmt: skip

#: The named layout's capabilities: those of the collection layout without native aliases.
NAMED_CAPABILITIES = dataclasses.replace(
    _CAPABILITIES,
    native_alias=False,
    namespace_kind="named vector of a shared Weaviate collection",
)

_MARKER = "vecver_named"
_FORMAT = 1
_SPACE_KEY = "vecver_space"
_PLAIN_REST = re.compile(r"[a-z0-9_]{1,48}")
_SLOT_OF = re.compile(r"(.+)_(id|fp|hash|at|text|meta|keys|gone|vn_[0-9a-f]{20})")
_NAME_MAX = 255
_PAGE = 500
_TRIES = 4


def _digest(text: str, n: int) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()[:n]


def _split(name: str) -> tuple[str, str]:
    head, sep, rest = name.partition("__")
    if not sep or not head or not rest:
        return name, name
    return head, rest


def shared_collection(namespace: str) -> str:
    """The Weaviate collection holding namespace ``namespace`` in the named layout:
    ``Vvn_`` + the part of the name before its first ``__`` (without a leading ``Vv_``)."""
    group, _ = _split(namespace)
    if group.startswith("Vv_") and len(group) > 3:
        group = group[3:]
    cls = f"Vvn_{group}"
    if len(cls) > _NAME_MAX:
        cls = f"{cls[:200]}_{_digest(group, 16)}"
    return cls


def vector_base(namespace: str) -> str:
    """The first vector name namespace ``namespace`` may take in its shared collection
    (a later incarnation of the name takes ``{base}_g2``, ``_g3``, ...)."""
    _, rest = _split(namespace)
    if _PLAIN_REST.fullmatch(rest):
        return f"v_{rest}"
    clean = re.sub(r"[^a-z0-9_]", "", rest.lower())[:24]
    return f"h_{clean}_{_digest(namespace, 16)}"


def _candidates(base: str) -> Any:
    yield base
    n = 2
    while True:
        yield f"{base}_g{n}"
        n += 1


@dataclass(frozen=True)
class Slot:
    """Where one namespace lives: Weaviate collection ``cls``, named vector ``vector``
    (also the prefix of its properties), and its spec."""

    cls: str
    vector: str
    spec: NamespaceSpec

    def prop(self, suffix: str) -> str:
        return f"{self.vector}_{suffix}"

    @property
    def returned(self) -> list[str]:
        return [self.prop(s) for s in ("id", "fp", "hash", "at", "text", "meta")]


@dataclass
class _ClassState:
    """What a shared collection's schema says."""

    cls: str
    live: dict[str, Slot]
    claims: dict[str, NamespaceSpec]  # vector name -> spec, committed or not
    dead: set[str]
    vectors: set[str]
    props: set[str]  # lower-cased

    def taken(self, vector: str) -> bool:
        return vector in self.vectors or vector in self.claims or f"{vector}_id" in self.props


class WeaviateNamedBackend(WeaviateBackend):
    """The ``weaviate`` backend with ``layout = "named"`` (see the module docstring):
    the spaces of one vecver collection are named vectors of one Weaviate collection.

    Same options as :class:`~vecver.backends.weaviate.WeaviateBackend`; the same
    ``physical_name`` (the namespace names do not depend on the layout: the mapping to a
    collection and a vector is :meth:`location`). Each namespace behaves as an
    independent one (the shared compliance suite runs on it). Costs of sharing: writes
    are one REST call per record (Weaviate has no batch merge), ``scan`` of a namespace
    walks the whole collection, and dropping one rewrites every object holding it.
    """

    capabilities = NAMED_CAPABILITIES

    def __init__(
        self,
        url: str = "http://localhost:8080",
        *,
        grpc_port: int = 50051,
        grpc_host: str | None = None,
        api_key_env: str = "WEAVIATE_API_KEY",
        timeout: float = 30.0,
        skip_init_checks: bool = True,
        rescore: bool = True,
        layout: str = "named",
    ) -> None:
        if layout != "named":
            raise ConfigError(
                f"WeaviateNamedBackend is the named layout; got layout={layout!r}",
                hint='use WeaviateBackend(layout="collection") for the collection layout',
            )
        super().__init__(
            url, grpc_port=grpc_port, grpc_host=grpc_host, api_key_env=api_key_env,
            timeout=timeout, skip_init_checks=skip_init_checks, rescore=rescore,
            layout="named",
        )  # fmt: skip
        self._numbers_of: dict[tuple[str, str], set[str]] = {}

    # -- where a namespace lives --------------------------------------------------------

    @classmethod
    def planned_location(cls, namespace: str) -> tuple[str, str]:
        """``(Weaviate collection, first vector name)`` of ``namespace``, from its name
        alone (deterministic; :meth:`location` says which incarnation is live)."""
        return shared_collection(namespace), vector_base(namespace)

    def location(self, namespace: str) -> tuple[str, str]:
        """``(Weaviate collection, vector name)`` of the existing ``namespace``
        (``NamespaceNotFound`` when there is none)."""
        self._check_open()
        slot = self._slot(namespace)
        return slot.cls, slot.vector

    def _config(self, cls: str) -> Any | None:
        try:
            with self._call("get collection", cls):
                cfg = self._client.collections.get(cls).config.get()
        except NamespaceNotFound:
            return None
        return cfg if cfg.name == cls else None

    def _state(self, cfg: Any) -> _ClassState:
        """The namespaces a shared collection holds; ``ForeignNamespace`` when vecver did
        not make it for this layout."""
        try:
            marker = json.loads(cfg.description or "")[_MARKER]
            if int(marker["format"]) != _FORMAT:
                raise ValueError
        except (ValueError, TypeError, KeyError):
            raise ForeignNamespace(cfg.name, self.name) from None
        props = {p.name: p for p in cfg.properties}
        vectors = dict(cfg.vector_config or {})
        claims: dict[str, NamespaceSpec] = {}
        for p in cfg.properties:
            if not p.name.endswith("_id"):
                continue
            try:
                meta = json.loads(p.description or "")[_SPACE_KEY]
                vec = str(meta["vector"])
                spec = NamespaceSpec(str(meta["name"]), int(meta["dimension"]), meta["metric"],
                                     str(meta["fingerprint"]))  # fmt: skip
            except (ValueError, TypeError, KeyError):
                continue
            if f"{vec}_id" == p.name:
                claims[vec] = spec
        live: dict[str, Slot] = {}
        dead: set[str] = set()
        for vec in sorted(claims, key=lambda v: (len(v), v)):
            spec = claims[vec]
            if f"{vec}_gone" in props:
                dead.add(vec)
                continue
            vc = vectors.get(vec)
            if vc is None or spec.name in live:
                continue  # a claim not committed (yet), or a duplicate
            dist = getattr(vc.vector_index_config, "distance_metric", None)
            if _METRIC.get(str(getattr(dist, "value", dist))) != spec.metric:
                raise BackendError(
                    f"weaviate collection {cfg.name!r}: vector {vec!r} of namespace "
                    f"{spec.name!r} no longer has the distance of its space ({spec.metric}); "
                    "was it changed outside vecver?"
                )
            live[spec.name] = Slot(cfg.name, vec, spec)
        return _ClassState(cfg.name, live, claims, dead, set(vectors),
                           {p.lower() for p in props})  # fmt: skip

    def _slot(self, namespace: str) -> Slot:
        cfg = self._config(shared_collection(namespace))
        if cfg is None:
            raise NamespaceNotFound(namespace)
        try:
            state = self._state(cfg)
        except ForeignNamespace:
            raise NamespaceNotFound(namespace) from None
        slot = state.live.get(namespace)
        if slot is None:
            raise NamespaceNotFound(namespace)
        self._numbers_of[(slot.cls, slot.vector)] = {
            p.name for p in cfg.properties
            if _slot_of(p.name) == slot.vector and p.name.startswith(slot.prop("vn_"))
        }  # fmt: skip
        return slot

    # -- namespaces ---------------------------------------------------------------------

    def _slot_properties(self, vector: str, spec: NamespaceSpec) -> list[Property]:
        claim = json.dumps({_SPACE_KEY: {"format": _FORMAT, "name": spec.name,
                                         "dimension": spec.dimension, "metric": spec.metric,
                                         "fingerprint": spec.fingerprint,
                                         "vector": vector}})  # fmt: skip
        text: dict[str, Any] = {"data_type": DataType.TEXT, "index_searchable": False}
        return [
            Property(name=f"{vector}_id", tokenization=Tokenization.FIELD, description=claim,
                     **text),
            Property(name=f"{vector}_fp", tokenization=Tokenization.FIELD, **text),
            Property(name=f"{vector}_hash", index_filterable=False, **text),
            Property(name=f"{vector}_at", data_type=DataType.NUMBER, index_filterable=False),
            Property(name=f"{vector}_text", index_filterable=False, **text),
            Property(name=f"{vector}_meta", index_filterable=False, **text),
            Property(name=f"{vector}_keys", data_type=DataType.TEXT_ARRAY,
                     tokenization=Tokenization.FIELD, index_searchable=False),
        ]  # fmt: skip

    @staticmethod
    def _vector_config(vector: str, spec: NamespaceSpec) -> Any:
        return Configure.Vectors.self_provided(
            name=vector,
            vector_index_config=Configure.VectorIndex.hnsw(distance_metric=_DISTANCE[spec.metric]),
        )

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        cls = shared_collection(spec.name)
        last: VecverError | None = None
        for _ in range(_TRIES):
            cfg = self._config(cls)
            if cfg is None:
                vector = vector_base(spec.name)
                marker = json.dumps({_MARKER: {"format": _FORMAT, "layout": "named"}})
                try:
                    with self._call("create collection", spec.name):
                        self._client.collections.create(
                            cls, description=marker,
                            properties=self._slot_properties(vector, spec),
                            vector_config=self._vector_config(vector, spec),
                        )  # fmt: skip
                except VecverError as e:
                    last = e  # created by another writer meanwhile? read it again
                    continue
                return self._slot(spec.name).spec
            state = self._state(cfg)
            have = state.live.get(spec.name)
            if have is not None:
                return have.spec
            vector = next(
                v for v in _candidates(vector_base(spec.name))
                if not state.taken(v) or (state.claims.get(v) == spec and v not in state.dead
                                          and v not in state.vectors)
            )  # fmt: skip
            try:
                self._commit_slot(cls, vector, spec, state)
            except VecverError as e:
                last = e  # raced with another schema change: read it again
                continue
            with contextlib.suppress(NamespaceNotFound):
                return self._slot(spec.name).spec
        raise last or BackendError(f"weaviate: could not create namespace {spec.name!r}")

    def _commit_slot(self, cls: str, vector: str, spec: NamespaceSpec, state: _ClassState) -> None:
        """Claim ``vector`` for ``spec`` (its ``_id`` property first), add the other
        properties it lacks, then its vector: the namespace exists from that last step."""
        handle = self._client.collections.get(cls)
        for prop in self._slot_properties(vector, spec):
            if prop.name.lower() in state.props:
                continue
            with self._call("add property", spec.name):
                handle.config.add_property(prop)
        if vector not in state.vectors:
            with self._call("add vector", spec.name):
                handle.config.add_vector(vector_config=self._vector_config(vector, spec))

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        return self._slot(name).spec

    def _input_spec(self, namespace: str) -> NamespaceSpec:
        return self._spec(namespace)

    def _list_namespaces(self) -> list[str]:
        with self._call("list collections"):
            configs = self._client.collections.list_all(simple=False)
        out: list[str] = []
        for cfg in configs.values():
            with contextlib.suppress(ForeignNamespace, BackendError):
                state = self._state(cfg)
                out.extend(n for n, s in state.live.items() if shared_collection(n) == cfg.name)
        return out

    def _drop_namespace(self, name: str) -> None:
        try:
            slot = self._slot(name)
        except NamespaceNotFound:
            return
        handle = self._client.collections.get(slot.cls)
        try:
            with self._call("add property", name):
                handle.config.add_property(Property(
                    name=slot.prop("gone"), data_type=DataType.BOOL, index_filterable=False,
                    description=f"vecver: namespace {name!r} dropped",
                ))  # fmt: skip
        except BackendError:
            cfg = self._config(slot.cls)  # marked by a concurrent drop?
            if cfg is not None and slot.prop("gone") not in {p.name for p in cfg.properties}:
                raise
        self._numbers_of.pop((slot.cls, slot.vector), None)
        self._purge(slot.cls)

    def _purge(self, cls: str) -> None:
        """Strip the vectors and properties of every dropped namespace from the objects of
        ``cls`` (deleting those left with no vector); delete ``cls`` itself once it holds
        no namespace."""
        cfg = self._config(cls)
        if cfg is None:
            return
        state = self._state(cfg)
        if not state.live:
            with self._call("delete collection", cls):
                self._client.collections.delete(cls)
            return
        handle = self._client.collections.get(cls)
        after: Any = None
        while True:
            with self._call("scan", cls):
                res = handle.query.fetch_objects(after=after, limit=_PAGE, include_vector=True)
            doomed: list[str] = []
            for o in res.objects:
                self._strip(handle, o, state.dead, doomed)
            self._delete_uuids(handle, cls, doomed)
            if len(res.objects) < _PAGE:
                return
            after = res.objects[-1].uuid

    def _strip(self, handle: Any, o: Any, gone: set[str], doomed: list[str]) -> bool:
        """Remove the vectors and properties of the namespaces ``gone`` from object ``o``
        (PUT back), or mark it ``doomed`` when no other vector is left. True when the
        object held something of ``gone``."""
        props = dict(o.properties)
        vecs = dict(o.vector or {})
        hit = any(v in gone for v in vecs) or any(_slot_of(k) in gone for k in props)
        if not hit:
            return False
        keep_vecs = {k: v for k, v in vecs.items() if k not in gone}
        if not keep_vecs:
            doomed.append(str(o.uuid))
            return True
        keep = {k: v for k, v in props.items()
                if v is not None and _slot_of(k) not in gone}  # fmt: skip
        try:
            with self._call("replace", handle.name):
                handle.data.replace(uuid=o.uuid, properties=keep, vector=keep_vecs)
        except NamespaceNotFound:
            pass  # deleted meanwhile
        return True

    def _delete_uuids(self, handle: Any, where: str, uuids: list[str]) -> None:
        if uuids:
            with self._call("delete", where):
                handle.data.delete_many(where=WFilter.by_id().contains_any(uuids))

    # -- data ---------------------------------------------------------------------------

    def _properties_of(self, slot: Slot, record: Record) -> dict[str, Any]:
        payload = self._codec.encode(record)
        props: dict[str, Any] = {
            slot.prop("id"): payload[KEY_ID], slot.prop("fp"): payload[KEY_FP],
            slot.prop("hash"): payload[KEY_HASH], slot.prop("at"): payload[KEY_AT],
            slot.prop("text"): payload.get(KEY_TEXT),
            slot.prop("meta"): json.dumps(record.metadata, ensure_ascii=True,
                                          separators=(",", ":")),
            slot.prop("keys"): tokens_of(record.metadata),
        }  # fmt: skip
        props.update({slot.prop(k): v for k, v in numeric_fields(record.metadata).items()})
        return props

    def _ensure_slot_numbers(self, slot: Slot, wanted: set[str]) -> None:
        known = self._numbers_of.setdefault((slot.cls, slot.vector), set())
        handle = self._client.collections.get(slot.cls)
        for prop in sorted(wanted - known):
            try:
                with self._call("add property", slot.spec.name):
                    handle.config.add_property(
                        Property(name=prop, data_type=DataType.NUMBER, index_range_filters=True)
                    )
            except BackendError:
                self._slot(slot.spec.name)  # another writer added it first?
                if prop not in self._numbers_of[(slot.cls, slot.vector)]:
                    raise
            self._numbers_of[(slot.cls, slot.vector)].add(prop)

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        slot = self._slot(namespace)
        rows = vectors.tolist()
        all_props = [self._properties_of(slot, r) for r in records]
        numbers = {k for p in all_props for k in p if k.startswith(slot.prop("vn_"))}
        self._ensure_slot_numbers(slot, numbers)
        known = self._numbers_of.get((slot.cls, slot.vector), set())
        handle = self._client.collections.get(slot.cls)
        uuids = [uuid_for(r.id) for r in records]
        with self._call("fetch", namespace):
            res = handle.query.fetch_objects(
                filters=WFilter.by_id().contains_any(uuids), limit=len(uuids),
                return_properties=[slot.prop("id")],
            )  # fmt: skip
        present = {str(o.uuid) for o in res.objects}
        failed: dict[str, str] = {}
        for r, u, props, row in zip(records, uuids, all_props, rows, strict=True):
            merge = dict(props)
            merge.update({p: None for p in known if p not in props})  # stale: removed
            fresh = {k: v for k, v in props.items() if v is not None}
            err = self._write_one(handle, namespace, u, merge, fresh, {slot.vector: row},
                                  u in present)  # fmt: skip
            if err is not None:
                failed[r.id] = err
        if failed:
            raise BatchObjectsFailed(namespace, failed)

    def _write_one(
        self, handle: Any, namespace: str, u: str, merge: dict[str, Any],
        fresh: dict[str, Any], vector: dict[str, Any], exists: bool,
    ) -> str | None:  # fmt: skip
        """Merge into object ``u`` or create it (whichever applies now); the server's
        message for an object it refuses (4xx), None when written."""
        for _ in range(_TRIES):
            with self._call("write", namespace):
                try:
                    if exists:
                        handle.data.update(uuid=u, properties=merge, vector=vector)
                    else:
                        handle.data.insert(properties=fresh, uuid=u, vector=vector)
                    return None
                except UnexpectedStatusCodeError as e:
                    if exists and e.status_code == 404:
                        exists = False  # deleted meanwhile: create it
                        continue
                    if not exists and e.status_code == 422 and "already exists" in str(e):
                        exists = True  # created meanwhile: merge into it
                        continue
                    if e.status_code in (400, 422):
                        return self._scrub(str(e))
                    raise
        return "the object kept changing between create and merge; retry"

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        cfg = self._config(shared_collection(namespace))
        if cfg is None:
            raise NamespaceNotFound(namespace)
        state = self._state(cfg)
        slot = state.live.get(namespace)
        if slot is None:
            raise NamespaceNotFound(namespace)
        wanted = {uuid_for(i): i for i in ids}
        handle = self._client.collections.get(slot.cls)
        with self._call("fetch", namespace):
            res = handle.query.fetch_objects(
                filters=WFilter.by_id().contains_any(list(wanted)), limit=len(wanted),
                include_vector=True,
            )  # fmt: skip
        doomed: list[str] = []
        for o in res.objects:
            if o.properties.get(slot.prop("id")) != wanted.get(str(o.uuid)):
                continue  # not in this namespace (or a UUID collision)
            self._strip(handle, o, {slot.vector} | state.dead, doomed)
        self._delete_uuids(handle, namespace, doomed)

    def _record_of(self, slot: Slot, props: Any, vector: Any) -> Record:
        payload: dict[str, Any] = json.loads(props.get(slot.prop("meta")) or "{}")
        payload[KEY_ID] = props.get(slot.prop("id"))
        payload[KEY_FP] = props.get(slot.prop("fp"))
        payload[KEY_HASH] = props.get(slot.prop("hash"))
        payload[KEY_AT] = props.get(slot.prop("at"))
        payload[KEY_TEXT] = props.get(slot.prop("text"))
        return self._codec.to_record(payload, vector)

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        slot = self._slot(namespace)
        wanted = {uuid_for(i): i for i in ids}
        with self._call("fetch", namespace):
            res = self._client.collections.get(slot.cls).query.fetch_objects(
                filters=WFilter.by_id().contains_any(list(wanted)), limit=len(wanted),
                return_properties=slot.returned,
                include_vector=[slot.vector] if with_vectors else False,
            )  # fmt: skip
        out: dict[str, Record] = {}
        for o in res.objects:
            doc = wanted.get(str(o.uuid))
            if doc is None or o.properties.get(slot.prop("id")) != doc:
                continue  # not in this namespace, or a UUID collision
            vec = o.vector.get(slot.vector) if with_vectors else None
            if with_vectors and vec is None:
                continue
            out[doc] = self._record_of(slot, o.properties, vec)
        return out

    def _scan(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool) -> ScanPage:
        slot = self._slot(namespace)
        after: Any = None if cursor is None else _uuid_of_cursor(cursor)
        handle = self._client.collections.get(slot.cls)
        page = min(max(limit + 1, _PAGE), 10_000)
        found: list[Any] = []
        while len(found) <= limit:
            with self._call("scan", namespace):
                res = handle.query.fetch_objects(
                    after=after, limit=page, return_properties=slot.returned,
                    include_vector=[slot.vector] if with_vectors else False,
                )  # fmt: skip
            for o in res.objects:
                if o.properties.get(slot.prop("id")) is not None:
                    found.append(o)
                    if len(found) > limit:
                        break
            if len(res.objects) < page or not res.objects:
                break
            after = res.objects[-1].uuid
        objs = found[:limit]
        records = [
            self._record_of(slot, o.properties,
                            o.vector.get(slot.vector) if with_vectors else None)
            for o in objs
        ]  # fmt: skip
        more = len(found) > limit
        return ScanPage(records, str(objs[-1].uuid) if more and objs else None)

    def _fetch_without_text(
        self, namespace: str, ids: Sequence[str], with_vectors: bool
    ) -> dict[str, Record]:
        """The whole object (the collection layout's lean read does not apply here)."""
        return self._fetch(namespace, ids, with_vectors)

    def _scan_without_text(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        """The whole object, as :meth:`_fetch_without_text`."""
        return self._scan(namespace, cursor, limit, with_vectors)

    def _count(self, namespace: str) -> int:
        slot = self._slot(namespace)
        with self._call("count", namespace):
            agg = self._client.collections.get(slot.cls).aggregate.over_all(
                filters=WFilter.by_property(slot.prop("fp")).equal(slot.spec.fingerprint),
                total_count=True,
            )
        return int(agg.total_count or 0)

    def _storage_estimate(self, namespace: str) -> int:
        return Backend._storage_estimate(self, namespace)

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        slot = self._slot(namespace)
        metric = slot.spec.metric
        native = self._slot_filter(slot, flt)
        if native is _NOTHING:
            return [[] for _ in range(queries.shape[0])]
        handle = self._client.collections.get(slot.cls)
        out: list[list[Hit]] = []
        for row in queries:
            with self._call("search", namespace):
                res = handle.query.near_vector(
                    near_vector=row.tolist(), limit=k, target_vector=slot.vector,
                    filters=native, return_metadata=MetadataQuery(distance=True),
                    return_properties=slot.returned,
                    include_vector=[slot.vector] if self._rescore else False,
                )  # fmt: skip
            objs = [o for o in res.objects if o.properties.get(slot.prop("id")) is not None]
            if self._rescore:
                objs = [o for o in objs if o.vector.get(slot.vector) is not None]
            if not objs:
                out.append([])
                continue
            if self._rescore:
                mat = np.asarray([o.vector[slot.vector] for o in objs], dtype=np.float32)
                scores = exact_scores(metric, row[None, :], mat)[0]
            else:
                dist = np.asarray([o.metadata.distance or 0.0 for o in objs], dtype=np.float32)
                scores = self.score_from_distance(metric, dist)
            recs = [self._record_of(slot, o.properties, None) for o in objs]
            order = sorted(range(len(recs)), key=lambda j: (-float(scores[j]), recs[j].id))
            out.append([
                Hit(recs[j].id, float(scores[j]), recs[j].text, recs[j].metadata, recs[j].stamp)
                for j in order
            ])  # fmt: skip
        return out

    def _slot_filter(self, slot: Slot, flt: Filter | None) -> Any:
        """The Weaviate filter for ``flt`` on the namespace's own properties (None: none),
        or ``_NOTHING``; string ranges are resolved by a scan, as in the collection
        layout."""
        if flt is None:
            return None
        wf = translate_filter(flt, lambda p: slot.prop("keys") if p == KEYS_PROPERTY
                              else slot.prop(p))  # fmt: skip
        if wf.matches_nothing:
            return _NOTHING
        if wf.needs - self._numbers_of.get((slot.cls, slot.vector), set()):
            return _NOTHING  # no record of this namespace ever held a number there
        if wf.client_side is None:
            return wf.native
        return self._resolved_on_client(slot.spec.name, wf)


def _slot_of(prop: str) -> str | None:
    """The vector name (namespace) a property belongs to, or None."""
    m = _SLOT_OF.fullmatch(prop)
    return m.group(1) if m else None
