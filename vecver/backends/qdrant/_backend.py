"""The ``qdrant`` backend through ``qdrant-client``: one Qdrant collection per namespace
(the default ``collection`` layout), or one shared collection per vecver collection whose
spaces are named vectors (``layout = "named"``, see :mod:`._named`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http import models
from qdrant_client.http.exceptions import ResponseHandlingException

from ...errors import (
    BackendError,
    BackendInUse,
    ConfigError,
    FilterNotExpressible,
    ForeignNamespace,
    InvalidInput,
    InvalidNamespaceName,
    NamespaceExists,
    NamespaceNotFound,
    TransientBackendError,
    VecverError,
)
from ...filters import Filter
from ...types import Hit, Matrix, Metric, NamespaceSpec, Record, ScanPage
from .._remote import KEY_TEXT, translate, uuid_for
from ..base import Backend, Capabilities
from ..external import ExternalCollection, IdType, Key, Layout, RawPoint
from ._codec import QdrantCodec, point_id
from ._filters import KEY_LISTS, MAX_RESOLVED_IDS, QdrantFilter, translate_filter
from ._named import DISTANCE as _DISTANCE
from ._named import META_KEY, NamedLayout, member_filter
from ._named import METRIC as _METRIC

__all__ = ["LAYOUTS", "LayoutName", "QdrantBackend"]

Mode = Literal["server", "memory", "path"]
LayoutName = Literal["collection", "named"]
#: The layouts a backend instance can be configured with (``layout = ...``).
LAYOUTS: tuple[LayoutName, ...] = ("collection", "named")

_META_FORMAT = 1

#: Qdrant refuses these characters in collection names (and "", ".", "..").
_FORBIDDEN = '<>:"/\\|?*\x00\x1f'
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_NAME_MAX = 255
_QUERY_BATCH = 64
_SCROLL_MAX = 1000
#: Per upsert request to a server (its default limit is 32 MiB).
_REQUEST_BYTES = 16 * 1024 * 1024
_MIB = 1024 * 1024

_CAPABILITIES = Capabilities(
    native_alias=True,
    namespace_kind="Qdrant collection",
    max_batch=256,
    max_fetch_ids=1000,
    max_delete_ids=1000,
    max_metadata_bytes=4 * _MIB,
    max_text_bytes=4 * _MIB,
    consistency="strong",
    persistent=True,
    shared_between_processes=True,
    remote_reads=True,
)


class QdrantBackend(Backend):
    """Vectors in Qdrant: each namespace is one collection (its single, unnamed vector of
    the space's dimension and distance), each record one point.

    Where it connects — exactly one of:

    - ``url`` (with ``api_key``): a Qdrant server. The key is sent to the server only; it
      is kept out of ``repr``, logs and error messages.
    - ``location=":memory:"``: qdrant-client's local mode in memory (nothing persisted).
    - ``path``: local mode in a directory (persistent; one client per directory at a
      time, so not shared between processes: a second one raises ``BackendInUse``).

    Local mode is qdrant-client's Python re-implementation of Qdrant's behaviour (exact
    search, the same filter rules), not the server; vecver's tests run against it. In a
    directory it commits every point in its own SQLite transaction, so filling one is
    slow (about a disk sync per record).

    Mapping:

    - A record's id becomes the point id ``uuid5(id)`` (deterministic across processes);
      the original id, the stamp, the text and the metadata are the point's payload (user
      metadata at the top level, so that filters run in Qdrant; vecver's fields under
      ``_vv_``). The namespace's spec is kept in the collection's metadata, so a collection
      vecver did not create is never taken for a namespace (``ForeignNamespace``).
    - Writes are sent with ``wait=True``: reads issued after a write returned see it.
      ``upsert`` goes in requests of at most 256 points (fewer when they would exceed
      16 MiB: such a chunk is then not all-or-nothing, a retry completes it); text and
      metadata are limited to 4 MiB each.
    - ``scan`` is Qdrant's scroll in point-id order; the cursor is the next point's id.
    - Scores: cosine similarity, dot product, and for ``l2`` the negative squared distance
      (Qdrant returns the distance).
    - Filters: see :mod:`vecver.backends.qdrant._filters` (eq, in and numeric ranges
      natively, string ranges resolved by a payload scan, nothing widened).
    - Aliases are Qdrant aliases, switched in one ``update_collection_aliases`` request
      (delete and create together: atomic on the server); dropping a collection drops
      its aliases.

    Errors: timeouts, connection failures, HTTP 429 (with its ``Retry-After``) and 5xx,
    gRPC UNAVAILABLE and the like are ``TransientBackendError`` (the core retries them); a
    missing collection is ``NamespaceNotFound``; the rest (an auth refusal, a value the
    server rejects) ``BackendError`` naming the operation and the namespace.

    Options besides the location: ``timeout`` (seconds per request to a server),
    ``prefer_grpc``, ``hnsw_ef`` (search beam width; None: the collection's default),
    ``exact`` (search without the HNSW index) and ``layout``:

    - ``"collection"`` (the default): what this docstring describes, a Qdrant collection
      per namespace.
    - ``"named"``: the spaces of one vecver collection are named vectors of ONE shared
      Qdrant collection (``vv_{collection}``), a document is one point holding a vector per
      space, each space's stamp/text/metadata under the payload key named like its vector.
      Such an instance declares ``native_alias=False`` (an alias names a collection, not a
      vector): vecver's manifest alias is the switch. Mapping, membership, write order and
      crash behaviour: :mod:`vecver.backends.qdrant._named`. The layout of an instance
      must not change once it holds collections (its namespaces would not be found).
    """

    name = "qdrant"
    capabilities = _CAPABILITIES

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        location: str | None = None,
        path: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        prefer_grpc: bool = False,
        hnsw_ef: int | None = None,
        exact: bool = False,
        layout: str = "collection",
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ConfigError(
                f"qdrant backend: layout must be one of {', '.join(map(repr, LAYOUTS))}, "
                f"got {layout!r}",
                hint='layout = "collection" (a Qdrant collection per space, the default) or '
                'layout = "named" (the spaces of a collection as named vectors of one '
                "Qdrant collection)",
            )
        given = [k for k, v in (("url", url), ("location", location), ("path", path)) if v]
        if len(given) != 1:
            raise ConfigError(
                "qdrant backend: give exactly one of url, location or path"
                + (f" (got {', '.join(given)})" if given else ""),
                hint='url = "http://host:6333" for a server, location = ":memory:" or '
                'path = "DIR" for qdrant-client\'s local mode',
            )
        if location is not None and location != ":memory:":
            raise ConfigError(
                f"qdrant backend: location must be ':memory:', got {location!r}",
                hint="give a server as url = ..., a directory as path = ...",
            )
        if hnsw_ef is not None and (
            isinstance(hnsw_ef, bool) or not isinstance(hnsw_ef, int) or hnsw_ef < 1
        ):
            raise ConfigError(f"qdrant backend: hnsw_ef must be an integer >= 1, got {hnsw_ef!r}")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigError(f"qdrant backend: timeout must be a number > 0, got {timeout!r}")
        self._api_key = api_key or None
        self._url = url
        self._path = os.path.abspath(os.fspath(path)) if path else None
        self.mode: Mode = "server" if url else ("path" if path else "memory")
        self._codec = QdrantCodec()
        self._search_params = (
            models.SearchParams(hnsw_ef=hnsw_ef, exact=True if exact else None)
            if (hnsw_ef or exact)
            else None
        )
        self._specs: dict[str, NamespaceSpec] = {}
        # local mode is not thread-safe: one call at a time; a server client is
        self._lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if self.mode == "server" else threading.RLock()
        )
        self.layout: LayoutName = "named" if layout == "named" else "collection"
        self._named: NamedLayout | None = NamedLayout(self) if self.layout == "named" else None
        if self.mode != "server" or self._named is not None:
            # instance capabilities (a ClassVar on the class): local mode is one process's,
            # and a named vector has no native alias
            vars(self)["capabilities"] = _instance_capabilities(self.mode, self.layout)
        with self._call("connect"):
            if self.mode == "server":
                self._client = QdrantClient(
                    url=url,
                    api_key=self._api_key,
                    timeout=max(1, round(timeout)),
                    prefer_grpc=bool(prefer_grpc),
                    check_compatibility=False,
                )
            elif self.mode == "memory":
                self._client = QdrantClient(location=":memory:")
            else:
                assert self._path is not None
                try:
                    self._client = QdrantClient(
                        path=self._path, force_disable_check_same_thread=True
                    )
                except RuntimeError as e:
                    if "already accessed" in str(e):
                        raise BackendInUse("qdrant", self._path, str(e)) from None
                    raise

    # -- what the backend knows about Qdrant ------------------------------------------

    @classmethod
    def physical_name(cls, collection: str, space_label: str, fingerprint: str) -> str:
        """``vv_{collection}__{label}_{fingerprint[:8]}``, with every character other than
        letters, digits, ``_`` and ``-`` replaced by ``_``; when that changed the name, or
        it is longer than 255 characters, a short hash of the exact inputs is appended
        (after cutting) so that distinct inputs keep distinct names."""
        coll = _NAME_CHARS.sub("_", collection)
        label = _NAME_CHARS.sub("_", space_label)
        name = f"vv_{coll}__{label}_{fingerprint[:8]}"
        if coll != collection or label != space_label or len(name) > _NAME_MAX:
            digest = uuid_for(f"{collection}\x00{space_label}\x00{fingerprint}")[:8]
            name = f"{name[: _NAME_MAX - 9]}_{digest}"
        return name

    @classmethod
    def check_namespace_name(cls, name: object) -> None:
        """The base rule, plus Qdrant's collection-name rule: none of ``< > : " / \\ | ?
        *``, not ``.`` or ``..``."""
        super().check_namespace_name(name)
        assert isinstance(name, str)
        bad = sorted({c for c in name if c in _FORBIDDEN})
        if bad:
            raise InvalidNamespaceName(
                name, cls.name, f"Qdrant collection names may not contain {''.join(bad)!r}"
            )
        if name in (".", ".."):
            raise InvalidNamespaceName(name, cls.name, "Qdrant refuses '.' and '..'")

    @classmethod
    def score_from_distance(cls, metric: Metric, distance: Any) -> Any:
        """Qdrant's cosine and dot scores are vecver's; for ``l2`` it returns the euclidean
        distance, whose negative square is vecver's score."""
        if metric == "l2":
            return -(distance * distance)
        return distance

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        if not self.closed:
            with self._lock, contextlib.suppress(Exception):
                self._client.close()
        super().close()

    def __repr__(self) -> str:
        lay = ", layout='named'" if self._named is not None else ""
        if self.mode == "server":
            key = ", api_key=<hidden>" if self._api_key else ""
            return f"QdrantBackend(url={_redacted(self._url or '')!r}{key}{lay})"
        if self.mode == "path":
            return f"QdrantBackend(path={self._path!r}{lay})"
        return f"QdrantBackend(location=':memory:'{lay})"

    @property
    def url(self) -> str | None:
        """The server's URL (credentials in it redacted), or None in local mode."""
        return _redacted(self._url) if self._url else None

    @property
    def path(self) -> str | None:
        """The local-mode directory, or None."""
        return self._path

    @property
    def client(self) -> QdrantClient:
        """The underlying ``qdrant-client`` client (for tools and tests reading the
        database as it is; writing through it bypasses every rule of vecver's)."""
        return self._client

    # -- namespaces -------------------------------------------------------------------

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        if self._named is not None:
            return self._named.create(spec)
        with contextlib.suppress(NamespaceNotFound):
            return self._describe_namespace(spec.name)
        meta = {
            META_KEY: {
                "format": _META_FORMAT,
                "name": spec.name,
                "dimension": spec.dimension,
                "metric": spec.metric,
                "fingerprint": spec.fingerprint,
            }
        }
        try:
            with self._call("create collection", spec.name):
                self._client.create_collection(
                    spec.name,
                    vectors_config=models.VectorParams(
                        size=spec.dimension, distance=_DISTANCE[spec.metric]
                    ),
                    metadata=meta,
                )
        except VecverError:
            # a concurrent creator, or a name taken by an alias: see what is there now
            have = self._describe_or_none(spec.name)
            if have is None:
                alias = self._get_alias(spec.name)
                if alias is not None:
                    raise NamespaceExists(
                        spec.name, f"an alias of that name (pointing at {alias!r})"
                    ) from None
                raise
            return have
        have = self._describe_namespace(spec.name)
        if have != spec:
            raise BackendError(
                f"qdrant collection {spec.name!r} was created but its metadata did not "
                "keep vecver's spec",
                hint="vecver needs a Qdrant server that keeps collection metadata "
                "(Qdrant 1.16 or later)",
            )
        return have

    def _describe_or_none(self, name: str) -> NamespaceSpec | None:
        try:
            return self._describe_namespace(name)
        except NamespaceNotFound:
            return None

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        if self._named is not None:
            return self._named.describe(name)
        with self._call("get collection", name):
            info = self._client.get_collection(name)
        meta = (info.config.metadata or {}).get(META_KEY)
        if not isinstance(meta, dict):
            raise ForeignNamespace(name, self.name)
        if meta.get("name") != name:
            # Qdrant resolves an alias to its collection: an alias is not a namespace
            raise NamespaceNotFound(name)
        try:
            spec = NamespaceSpec(
                name, int(meta["dimension"]), meta["metric"], str(meta["fingerprint"])
            )
        except (KeyError, TypeError, ValueError) as e:
            raise BackendError(
                f"qdrant collection {name!r} has unreadable vecver metadata ({e})"
            ) from e
        params = info.config.params.vectors
        if not isinstance(params, models.VectorParams) or (
            params.size != spec.dimension or _METRIC.get(params.distance) != spec.metric
        ):
            raise BackendError(
                f"qdrant collection {name!r} no longer has the vector of its space "
                f"({spec.dimension} dimensions, {spec.metric}); was it changed outside vecver?"
            )
        self._specs[name] = spec
        return spec

    def _list_namespaces(self) -> list[str]:
        if self._named is not None:
            return self._named.names()
        with self._call("list collections"):
            names = [c.name for c in self._client.get_collections().collections]
        out = []
        for n in names:
            with contextlib.suppress(NamespaceNotFound, ForeignNamespace):
                self._describe_namespace(n)
                out.append(n)
        return out

    def _drop_namespace(self, name: str) -> None:
        if self._named is not None:
            return self._named.drop(name)
        self._specs.pop(name, None)
        try:
            self._describe_namespace(name)
        except NamespaceNotFound:
            return  # absent, or an alias (dropping it would drop what it points at)
        with self._call("delete collection", name):
            self._client.delete_collection(name)
        self._specs.pop(name, None)

    def _input_spec(self, namespace: str) -> NamespaceSpec:
        """The spec of a namespace vecver created, from a cache filled by every describe.
        Every data call asks it first, so a collection vecver did not create is never
        read or written (``ForeignNamespace``). The cache is safe: a namespace's name
        carries its fingerprint, Qdrant itself refuses vectors of another dimension, and
        a collection deleted behind vecver's back answers "not found" (which evicts it)."""
        spec = self._specs.get(namespace)
        return spec if spec is not None else self._spec(namespace)

    # -- data -------------------------------------------------------------------------

    def _payload(self, record: Record) -> dict[str, Any]:
        payload = self._codec.encode(record)
        lists = [k for k, v in record.metadata.items() if isinstance(v, list)]
        if lists:
            payload[KEY_LISTS] = lists
        return payload

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        if self._named is not None:
            return self._named.upsert(namespace, records, vectors)
        ids: list[models.ExtendedPointId] = [point_id(r.id) for r in records]
        payloads = [self._payload(r) for r in records]
        rows = vectors.tolist()
        for start, stop in self._request_slices(payloads, vectors.shape[1]):
            with self._call("upsert", namespace):
                self._client.upsert(
                    namespace,
                    points=models.Batch(
                        ids=ids[start:stop],
                        vectors=rows[start:stop],
                        payloads=payloads[start:stop],
                    ),
                    wait=True,
                )

    def _request_slices(
        self, payloads: Sequence[dict[str, Any]], dimension: int
    ) -> Iterator[tuple[int, int]]:
        """Slices of the batch whose requests stay within the server's size limit (local
        mode has none: the whole batch)."""
        if self.mode != "server":
            yield 0, len(payloads)
            return
        start, size = 0, 0
        for i, p in enumerate(payloads):
            est = 24 * dimension + 64 + len(json.dumps(p, ensure_ascii=False, default=str))
            if i > start and size + est > _REQUEST_BYTES:
                yield start, i
                start, size = i, 0
            size += est
        yield start, len(payloads)

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        if self._named is not None:
            return self._named.delete(namespace, ids)
        self._input_spec(namespace)
        with self._call("delete", namespace):
            self._client.delete(
                namespace,
                points_selector=models.PointIdsList(points=[point_id(i) for i in ids]),
                wait=True,
            )

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        if self._named is not None:
            return self._named.fetch(namespace, ids, with_vectors)
        return self._retrieve(namespace, ids, with_vectors, True)

    def _fetch_without_text(
        self, namespace: str, ids: Sequence[str], with_vectors: bool
    ) -> dict[str, Record]:
        """The payload without the text (a payload selector; the named layout reads it
        whole)."""
        if self._named is not None:
            return self._named.fetch(namespace, ids, with_vectors)
        return self._retrieve(namespace, ids, with_vectors, _NO_TEXT)

    def _retrieve(self, namespace: str, ids: Sequence[str], with_vectors: bool,
                  selector: bool | models.PayloadSelectorExclude) -> dict[str, Record]:
        self._input_spec(namespace)
        wanted = {point_id(i): i for i in ids}
        with self._call("retrieve", namespace):
            points = self._client.retrieve(
                namespace, ids=list(wanted), with_payload=selector, with_vectors=with_vectors
            )
        out: dict[str, Record] = {}
        for p in points:
            doc = wanted.get(str(p.id))
            payload = p.payload or {}
            if doc is None or not self._codec.check_id(doc, payload):
                continue  # not the record asked for (a UUID collision): absent
            out[doc] = self._codec.to_record(payload, _vector(p.vector) if with_vectors else None)
        return out

    def _scan(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool) -> ScanPage:
        if self._named is not None:
            return self._named.scan(namespace, cursor, limit, with_vectors)
        return self._scroll(namespace, cursor, limit, with_vectors, True)

    def _scan_without_text(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        """As :meth:`_fetch_without_text` (the same scroll, so the same order)."""
        if self._named is not None:
            return self._named.scan(namespace, cursor, limit, with_vectors)
        return self._scroll(namespace, cursor, limit, with_vectors, _NO_TEXT)

    def _scroll(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool,
                selector: bool | models.PayloadSelectorExclude) -> ScanPage:
        self._input_spec(namespace)
        offset = None if cursor is None else _point_of_cursor(cursor)
        with self._call("scroll", namespace):
            points, nxt = self._client.scroll(
                namespace,
                limit=min(limit, _SCROLL_MAX),
                offset=offset,
                with_payload=selector,
                with_vectors=with_vectors,
            )
        records = [
            self._codec.to_record(p.payload or {}, _vector(p.vector) if with_vectors else None)
            for p in points
        ]
        return ScanPage(records, None if nxt is None else str(nxt))

    def _count(self, namespace: str) -> int:
        if self._named is not None:
            return self._named.count(namespace)
        self._input_spec(namespace)
        with self._call("count", namespace):
            return int(self._client.count(namespace, exact=True).count)

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        if self._named is not None:
            return self._named.search(namespace, queries, k, flt)
        l2 = self._input_spec(namespace).metric == "l2"
        native = self._native_filter(namespace, flt)
        if native is _NOTHING:
            return [[] for _ in range(queries.shape[0])]
        hit = self._codec.hit
        rows = queries.tolist()
        out: list[list[Hit]] = []
        for start in range(0, len(rows), _QUERY_BATCH):
            chunk = rows[start : start + _QUERY_BATCH]
            if len(chunk) == 1:
                # one query: the plain call (a batch of one costs a request copy more)
                with self._call("query", namespace):
                    answers = [self._client.query_points(
                        namespace, query=chunk[0], limit=k, query_filter=native,
                        search_params=self._search_params, with_payload=True,
                        with_vectors=False,
                    )]  # fmt: skip
            else:
                requests = [
                    models.QueryRequest(
                        query=q,
                        limit=k,
                        filter=native,
                        params=self._search_params,
                        with_payload=True,
                        with_vector=False,
                    )
                    for q in chunk
                ]
                with self._call("query", namespace):
                    answers = self._client.query_batch_points(namespace, requests=requests)
            for answer in answers:
                if l2:
                    out.append([hit(p.payload or {}, _neg_square(p.score)) for p in answer.points])
                else:
                    out.append([hit(p.payload or {}, float(p.score)) for p in answer.points])
        return out

    def _native_filter(
        self,
        namespace: str,
        flt: Filter | None,
        *,
        collection: str | None = None,
        vector: str | None = None,
    ) -> models.Filter | None:
        """The Qdrant filter for ``flt`` (None: none), or :data:`_NOTHING` when no record
        can match. String ranges are resolved here to the point ids that satisfy them.
        Named layout: ``vector`` names the namespace's vector (its fields are nested under
        the payload key of that name) in the Qdrant collection ``collection``."""
        if flt is None:
            return None
        qf: QdrantFilter = translate_filter(flt, prefix=vector or "")
        if qf.matches_nothing:
            return _NOTHING
        if qf.client_side is None:
            return qf.native
        field = qf.client_side.conditions[0].field
        where = collection or namespace
        scroll_filter = qf.native
        if vector is not None:
            must: list[models.Condition] = [member_filter(vector)]
            if qf.native is not None:
                must.append(qf.native)
            scroll_filter = models.Filter(must=must)
        ids: list[models.ExtendedPointId] = []
        offset: models.ExtendedPointId | None = None
        while True:
            with self._call("scroll", namespace):
                points, offset = self._client.scroll(
                    where,
                    scroll_filter=scroll_filter,
                    limit=_SCROLL_MAX,
                    offset=offset,
                    with_payload=[vector] if vector is not None else True,
                    with_vectors=False,
                )
            ids.extend(
                p.id
                for p in points
                if qf.client_side.matches(_fields(p.payload, vector))
            )
            if len(ids) > MAX_RESOLVED_IDS:
                raise FilterNotExpressible(
                    self.name,
                    field,
                    f"a string range is resolved on the client and this one admits more than "
                    f"{MAX_RESOLVED_IDS} records",
                    hint="narrow it with eq, in or numeric range conditions",
                )
            if offset is None:
                break
        if not ids:
            return _NOTHING
        return models.Filter(must=[models.HasIdCondition(has_id=ids)])

    # -- adopted collections ----------------------------------------------------------
    # A collection other code filled: its points keep their own ids (ints or UUIDs) and
    # payload; vecver writes points there in that layout only (see vecver.backends.external).

    def _describe_external(self, name: str) -> ExternalCollection:
        if name in self._aliases():
            raise NamespaceNotFound(name)  # an alias, not a collection
        with self._call("get collection", name):
            info = self._client.get_collection(name)
        vectors = info.config.params.vectors
        vector_field: str | None = None
        params: models.VectorParams | None
        several: dict[str, tuple[int, Metric]] = {}
        if isinstance(vectors, dict):
            if not vectors:
                raise BackendError(f"qdrant collection {name!r} has no dense vector vecver "
                                   "can use")  # fmt: skip
            usable = {k: v for k, v in vectors.items() if _METRIC.get(v.distance) is not None}
            if len(vectors) > 1:
                # the base picks the vector adopted; writes keep the others
                several = {k: (int(v.size), _METRIC[v.distance]) for k, v in usable.items()}
            vector_field, params = sorted(usable.items())[0] if usable else \
                next(iter(vectors.items()))
        else:
            params = vectors
        if params is None or _METRIC.get(params.distance) is None:
            raise BackendError(f"qdrant collection {name!r} has no dense vector vecver can use")
        with self._call("count", name):
            count = int(self._client.count(name, exact=True).count)
        with self._call("scroll", name):
            sample, _ = self._client.scroll(name, limit=256, with_payload=True,
                                            with_vectors=False)
        fields: dict[str, str] = {}
        for p in sample:
            for key in p.payload or {}:
                fields.setdefault(key, "any")
        id_type: IdType = "int" if sample and isinstance(sample[0].id, int) else "uuid"
        meta = (info.config.metadata or {}).get(META_KEY)
        return ExternalCollection(
            name, int(params.size), _METRIC[params.distance], count, fields, id_type,
            vector_field=vector_field, schemaless=True, text_slot=False,
            vecver=isinstance(meta, dict), vectors=several,
        )

    def _raw(self, layout: Layout, p: Any, with_vectors: bool) -> RawPoint:
        vec = None
        if with_vectors:
            v = p.vector
            if isinstance(v, dict):
                v = v.get(layout.vector_field or "")
            vec = None if v is None else np.asarray(v, dtype=np.float32)
        return RawPoint(p.id, vec, dict(p.payload or {}))

    def _with_vectors(self, layout: Layout, with_vectors: bool) -> bool | list[str]:
        if not with_vectors:
            return False
        return [layout.vector_field] if layout.vector_field else True

    def _scan_external(
        self, layout: Layout, cursor: str | None, limit: int, with_vectors: bool
    ) -> tuple[list[RawPoint], str | None]:
        offset = None if cursor is None else _key_of_cursor(cursor)
        with self._call("scroll", layout.name):
            points, nxt = self._client.scroll(
                layout.name, limit=min(limit, _SCROLL_MAX), offset=offset, with_payload=True,
                with_vectors=self._with_vectors(layout, with_vectors),
            )
        return ([self._raw(layout, p, with_vectors) for p in points],
                None if nxt is None else _cursor_of_key(nxt))  # fmt: skip

    def _get_external(
        self, layout: Layout, keys: Sequence[Key], with_vectors: bool
    ) -> list[RawPoint]:
        with self._call("retrieve", layout.name):
            points = self._client.retrieve(
                layout.name, ids=list(keys), with_payload=True,
                with_vectors=self._with_vectors(layout, with_vectors),
            )
        return [self._raw(layout, p, with_vectors) for p in points]

    def _find_external(
        self, layout: Layout, field: str, values: Sequence[str], with_vectors: bool
    ) -> list[RawPoint]:
        strs = list(dict.fromkeys(values))
        ints = [int(v) for v in strs if re.fullmatch(r"-?[0-9]{1,18}", v)]
        should: list[models.Condition] = [
            models.FieldCondition(key=field, match=models.MatchAny(any=strs))
        ]
        if ints:
            should.append(models.FieldCondition(key=field, match=models.MatchAny(any=ints)))
        flt = models.Filter(should=should)
        out: list[RawPoint] = []
        offset: models.ExtendedPointId | None = None
        while True:
            with self._call("scroll", layout.name):
                points, offset = self._client.scroll(
                    layout.name, scroll_filter=flt, limit=_SCROLL_MAX, offset=offset,
                    with_payload=True, with_vectors=self._with_vectors(layout, with_vectors),
                )
            out.extend(self._raw(layout, p, with_vectors) for p in points)
            if offset is None:
                return out

    def _put_external(self, layout: Layout, points: Sequence[RawPoint]) -> None:
        rows = [np.asarray(p.vector, dtype=np.float32).tolist() for p in points]
        payloads = [p.payload for p in points]
        ids: list[models.ExtendedPointId] = [p.key for p in points]
        if layout.vector_field is not None and self._other_vectors(layout):
            self._put_one_vector(layout, ids, rows, payloads)
            return
        for start, stop in self._request_slices(payloads, layout.dimension):
            batch_vectors = ({layout.vector_field: rows[start:stop]} if layout.vector_field
                             else rows[start:stop])  # fmt: skip
            with self._call("upsert", layout.name):
                self._client.upsert(
                    layout.name,
                    points=models.Batch(ids=ids[start:stop], vectors=batch_vectors,
                                        payloads=payloads[start:stop]),
                    wait=True,
                )

    def _other_vectors(self, layout: Layout) -> bool:
        """Whether the adopted collection holds vectors besides the one adopted (asked
        once per collection and backend object: a collection's vectors are fixed)."""
        cache: dict[str, bool] = vars(self).setdefault("_multi_vector", {})
        if layout.name not in cache:
            with self._call("get collection", layout.name):
                vectors = self._client.get_collection(layout.name).config.params.vectors
            cache[layout.name] = isinstance(vectors, dict) and len(vectors) > 1
        return cache[layout.name]

    def _put_one_vector(
        self, layout: Layout, ids: list[models.ExtendedPointId], rows: list[list[float]],
        payloads: list[dict[str, Any]],
    ) -> None:
        """Write the adopted vector of each point and replace its payload, keeping the
        point's other vectors: existing points get ``update_vectors`` then
        ``overwrite_payload`` (one ordered request per slice); new points are inserted
        with only this vector (an ``upsert`` would drop the other vectors)."""
        vname = layout.vector_field
        assert vname is not None
        for start, stop in self._request_slices(payloads, layout.dimension):
            chunk = ids[start:stop]
            with self._call("retrieve", layout.name):
                have = {p.id for p in self._client.retrieve(
                    layout.name, chunk, with_payload=False, with_vectors=False)}
            ops: list[Any] = []
            new_ids: list[models.ExtendedPointId] = []
            new_rows: list[Any] = []
            new_payloads: list[dict[str, Any]] = []
            for i in range(start, stop):
                if ids[i] in have:
                    ops.append(models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(
                        points=[models.PointVectors(id=ids[i], vector={vname: rows[i]})])))
                    ops.append(models.OverwritePayloadOperation(
                        overwrite_payload=models.SetPayload(payload=payloads[i],
                                                            points=[ids[i]])))
                else:
                    new_ids.append(ids[i])
                    new_rows.append(rows[i])
                    new_payloads.append(payloads[i])
            if new_ids:
                ops.append(models.UpsertOperation(upsert=models.PointsBatch(
                    batch=models.Batch(ids=new_ids, vectors={vname: list(new_rows)},
                                       payloads=new_payloads))))
            if ops:
                with self._call("batch update", layout.name):
                    self._client.batch_update_points(layout.name, ops, wait=True)

    def _delete_external(self, layout: Layout, keys: Sequence[Key]) -> None:
        with self._call("delete", layout.name):
            self._client.delete(
                layout.name, points_selector=models.PointIdsList(points=list(keys)), wait=True
            )

    def _search_external(
        self, layout: Layout, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[tuple[RawPoint, float]]]:
        native = self._native_filter(layout.name, flt)
        if native is _NOTHING:
            return [[] for _ in range(queries.shape[0])]
        rows = queries.tolist()
        out: list[list[tuple[RawPoint, float]]] = []
        for start in range(0, len(rows), _QUERY_BATCH):
            requests = [
                models.QueryRequest(
                    query=q, using=layout.vector_field, limit=k, filter=native,
                    params=self._search_params, with_payload=True, with_vector=False,
                )
                for q in rows[start : start + _QUERY_BATCH]
            ]
            with self._call("query", layout.name):
                answers = self._client.query_batch_points(layout.name, requests=requests)
            for answer in answers:
                out.append([
                    (self._raw(layout, p, False),
                     float(self.score_from_distance(layout.metric, float(p.score))))
                    for p in answer.points
                ])
        return out

    def _count_external(self, layout: Layout) -> int:
        with self._call("count", layout.name):
            return int(self._client.count(layout.name, exact=True).count)

    # -- aliases ----------------------------------------------------------------------

    def _aliases(self) -> dict[str, str]:
        with self._call("get aliases"):
            got = self._client.get_aliases().aliases
        return {a.alias_name: a.collection_name for a in got}

    def _set_alias(self, alias: str, namespace: str) -> None:
        ops: list[models.AliasOperations] = []
        if alias in self._aliases():
            ops.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        ops.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=namespace, alias_name=alias)
            )
        )
        with self._call("update aliases", namespace):
            self._client.update_collection_aliases(change_aliases_operations=ops)

    def _get_alias(self, alias: str) -> str | None:
        return self._aliases().get(alias)

    def _drop_alias(self, alias: str) -> None:
        if alias not in self._aliases():
            return
        with self._call("update aliases"):
            self._client.update_collection_aliases(
                change_aliases_operations=[
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
                ]
            )

    # -- plumbing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _call(self, what: str, namespace: str | None = None) -> Iterator[None]:
        """One client call: serialized in local mode, its failures as vecver errors
        (transient: timeouts, connection failures, HTTP 429/5xx, gRPC UNAVAILABLE...;
        a missing collection as ``NamespaceNotFound``; the rest ``BackendError``), with
        the API key scrubbed from every message."""
        try:
            with self._lock:
                yield
        except VecverError:
            raise
        except Exception as e:  # noqa: BLE001 - translated, never swallowed
            err = self._translate(e, what, namespace)
            if isinstance(err, NamespaceNotFound) and namespace is not None:
                self._specs.pop(namespace, None)
            raise err from e

    def _translate(self, exc: Exception, what: str, namespace: str | None) -> VecverError:
        where = f"qdrant {what}" + (f" on {namespace!r}" if namespace else "")
        if self.mode != "server" and isinstance(exc, ValueError):
            # local mode reports everything as ValueError
            if namespace is not None and re.search(r"Collection .* not found", str(exc)):
                return NamespaceNotFound(namespace)
            return BackendError(self._scrub(f"{where} failed: {exc}"))
        if isinstance(exc, ResourceExhaustedResponse):  # HTTP 429 with a Retry-After
            return TransientBackendError(
                self._scrub(f"{where} failed: rate limited by the server (HTTP 429): {exc}"),
                retry_after=float(exc.retry_after_s),
            )
        source = exc.source if isinstance(exc, ResponseHandlingException) else exc
        err = translate(source if isinstance(source, BaseException) else exc, where,
                        namespace=namespace)  # fmt: skip
        if self._api_key and self._api_key in err.message:
            err.message = self._scrub(err.message)
            err.args = (err.message,)
        return err

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "<hidden>") if self._api_key else text


#: The payload of a read that needs no text (``with_text=False``): all but the text.
_NO_TEXT = models.PayloadSelectorExclude(exclude=[KEY_TEXT])

#: Marks a filter no record can match (no database call needed).
_NOTHING = models.Filter(must=[models.HasIdCondition(has_id=[])])


def _instance_capabilities(mode: Mode, layout: LayoutName) -> Capabilities:
    caps = _CAPABILITIES
    if mode != "server":
        caps = dataclasses.replace(  # local mode: qdrant-client's engine in this process
            caps, persistent=(mode == "path"), shared_between_processes=False,
            remote_reads=False,
        )
    if layout == "named":
        caps = dataclasses.replace(
            caps, native_alias=False, namespace_kind="named vector of a shared Qdrant collection"
        )
    return caps


def _fields(payload: dict[str, Any] | None, vector: str | None) -> dict[str, Any]:
    """The metadata fields a filter sees: the payload, or its object ``vector`` (named
    layout)."""
    payload = payload or {}
    if vector is None:
        return payload
    inner = payload.get(vector)
    return inner if isinstance(inner, dict) else {}


def _neg_square(distance: Any) -> float:
    """vecver's ``l2`` score of a Euclidean distance Qdrant returned (see
    ``score_from_distance``)."""
    d = float(distance)
    return -(d * d)


def _vector(v: Any) -> Any:
    """The unnamed vector of a point as returned by the client."""
    if isinstance(v, dict):
        v = v.get("")
    return None if v is None else np.asarray(v, dtype=np.float32)


def _point_of_cursor(cursor: str) -> str:
    try:
        return str(uuid.UUID(cursor))
    except ValueError:
        raise InvalidInput(
            f"{cursor!r} is not a scan cursor of the qdrant backend",
            hint="pass the next_cursor of a previous page",
        ) from None


def _cursor_of_key(key: Any) -> str:
    """A scan cursor of an adopted collection: its next point id, typed."""
    return f"i:{key}" if isinstance(key, int) else f"u:{key}"


def _key_of_cursor(cursor: str) -> Key:
    kind, _, value = cursor.partition(":")
    try:
        if kind == "i":
            return int(value)
        if kind == "u":
            return str(uuid.UUID(value))
    except ValueError:
        pass
    raise InvalidInput(
        f"{cursor!r} is not a scan cursor of an adopted qdrant collection",
        hint="pass the next_cursor of a previous page",
    )


def _redacted(url: str) -> str:
    """``url`` without a password or a query string (which may carry credentials)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "<hidden>@" + netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
