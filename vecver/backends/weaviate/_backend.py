"""The ``weaviate`` backend: one Weaviate collection per namespace, through the official
``weaviate-client`` v4 (REST for schema and aliases, gRPC for data)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter as WFilter
from weaviate.classes.query import MetadataQuery

from ...errors import (
    AdoptedRowRefused,
    BackendError,
    BatchObjectsFailed,
    ConfigError,
    FilterNotExpressible,
    ForeignNamespace,
    InvalidInput,
    InvalidNamespaceName,
    NamespaceExists,
    NamespaceNotFound,
    VecverError,
)
from ...filters import Filter
from ...types import Hit, Matrix, Metric, NamespaceSpec, Record, ScanPage, Stamp
from .._remote import (
    KEY_AT,
    KEY_FP,
    KEY_HASH,
    KEY_ID,
    KEY_TEXT,
    RESERVED_PREFIX,
    PayloadCodec,
    classify,
    translate,
    uuid_for,
)
from .._ties import TieRate
from .._ties import near_tie as _near_tie
from ..base import Backend, Capabilities, exact_scores
from ..external import ExternalCollection, Key, Layout, RawPoint
from ._filters import KEYS_PROPERTY, adopted_filter, numeric_fields, tokens_of, translate_filter

__all__ = ["LAYOUTS", "VECTOR", "WeaviateBackend"]

#: The named vector of a namespace's collection.
VECTOR = "vv"
#: The values of the ``layout`` option: ``collection`` (one Weaviate collection per
#: namespace, the default) or ``named`` (:mod:`._named`: a namespace is a named vector of
#: a collection shared by the spaces of one vecver collection).
LAYOUTS = ("collection", "named")
_META_KEY = "vecver"
_META_FORMAT = 1
_DISTANCE: dict[Metric, VectorDistances] = {
    "cosine": VectorDistances.COSINE,
    "dot": VectorDistances.DOT,
    "l2": VectorDistances.L2_SQUARED,
}
_METRIC = {v.value: k for k, v in _DISTANCE.items()}
#: vecver's payload keys -> Weaviate properties (a property may not start with "_vv").
_PROPS = {KEY_ID: "vv_id", KEY_FP: "vv_fp", KEY_HASH: "vv_hash", KEY_AT: "vv_at",
          KEY_TEXT: "vv_text"}  # fmt: skip
P_META = "vv_meta"
_RETURN = [*_PROPS.values(), P_META]
#: the properties a read without the text returns (``with_text=False``)
_RETURN_NO_TEXT = [p for p in _RETURN if p != _PROPS[KEY_TEXT]]
_DISTANCE_ONLY = MetadataQuery(distance=True)
_JSON = json.JSONDecoder()
_WITH_VECTOR = [VECTOR]
_NAME_RE = re.compile(r"[A-Za-z][_0-9A-Za-z]*")
_UNSAFE = re.compile(r"[^_0-9A-Za-z]")
_NAME_MAX = 255
_MAX_RESOLVED = 100_000
#: objects read to learn an adopted collection's vector lengths
_DIM_SAMPLE = 32
_KIB = 1024

#: compact ASCII JSON (an encoder built once: json.dumps with options builds one per call)
_COMPACT = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))

_CAPABILITIES = Capabilities(
    native_alias=True,
    namespace_kind="Weaviate collection",
    max_batch=128,
    max_fetch_ids=1000,
    max_delete_ids=1000,
    max_metadata_bytes=256 * _KIB,
    max_text_bytes=256 * _KIB,
    consistency="strong",
    persistent=True,
    shared_between_processes=True,
    remote_reads=True,
)


def class_name(name: str) -> str:
    """The Weaviate class (collection) name of a vecver namespace or alias: Weaviate
    upper-cases the first letter of every class name."""
    return name[:1].upper() + name[1:]


class WeaviateBackend(Backend):
    """Namespaces as Weaviate collections (server 1.32 or later, for aliases).

    Where it connects: ``url`` (``http://host:8080``; gRPC on ``grpc_port``, default
    50051, at ``grpc_host``, default the URL's host). The API key is read from the
    environment variable named by ``api_key_env`` (default ``WEAVIATE_API_KEY``; unset or
    empty: no authentication); it is sent to the server only and kept out of ``repr``,
    logs and error messages.

    Mapping:

    - One collection per namespace, named :func:`class_name` of the namespace
      (Weaviate capitalises class names, so two namespaces differing only in the case of
      their first letter cannot coexist: ``NamespaceExists``). Its description holds
      vecver's spec as JSON, so a collection vecver did not create is never taken for a
      namespace (``ForeignNamespace``). One named vector ``vv`` (vectorizer ``none``:
      vectors come from vecver) with the space's distance (cosine -> ``cosine``, dot ->
      ``dot``, l2 -> ``l2-squared``).
    - A record is one object with id ``uuid5(id)``; properties ``vv_id``, ``vv_fp``,
      ``vv_hash``, ``vv_at`` (the stamp), ``vv_text``, ``vv_meta`` (the metadata as
      JSON, kept exactly) and the filterable copy (:mod:`._filters`).
    - Writes are gRPC batches of at most 128 objects; the objects Weaviate refuses become
      :class:`~vecver.errors.BatchObjectsFailed` naming their ids (the rest of such a
      batch is written: retry it whole). Text and metadata are limited to 256 KiB each.
    - ``scan`` is Weaviate's cursor (``after``) in UUID order; the cursor is the last UUID.
    - Scores: cosine similarity is 1 - distance, dot is -distance, l2 is -distance
      (Weaviate returns squared euclidean distance).
    - Aliases are Weaviate aliases (``client.alias``): re-pointing is one update call,
      atomic on the server. Alias names are mapped like namespace names; a name Weaviate
      would refuse is stored under a deterministic valid name.

    ``rescore`` (default True): near ties order as vecver's reference
    (:func:`~vecver.backends.base.exact_scores`, ties by id) orders them. A search asks
    for distances only and scores hits from them (within float32 rounding of the exact
    score); when two hits of a list are so close that the rounding of Weaviate's
    arithmetic or of the exact score could swap them (:func:`_near_tie`; exact ties
    included), that query is asked again with the hits' vectors and the list re-scored
    with ``exact_scores`` (its scores are then exact); once more than 15% of a
    namespace's recent searches had near ties, its searches ask for the vectors with the
    first request instead (the same results, one request). ``dot`` lists are always asked
    with vectors and re-scored (a dot product's rounding depends on the stored vector's
    norm, which the distance does not tell). ``rescore = false`` takes Weaviate's
    distances as they are, always (near ties may then order differently from the
    reference, by float rounding). Both assume Weaviate's distances are computed from the
    uncompressed vectors, as in the collections vecver creates.

    ``layout`` (default ``"collection"``, the mapping above): ``"named"`` makes this a
    :class:`~vecver.backends.weaviate._named.WeaviateNamedBackend` instead, where the
    spaces of one vecver collection are named vectors of one shared Weaviate collection
    (no native aliases then); any other value is a ``ConfigError``.

    Errors: connection failures, timeouts, HTTP 429/5xx and gRPC UNAVAILABLE are
    ``TransientBackendError``; a missing collection ``NamespaceNotFound``; the rest
    ``BackendError`` naming the operation.
    """

    name = "weaviate"
    capabilities = _CAPABILITIES

    def __new__(cls, *args: Any, layout: Any = "collection", **kwargs: Any) -> WeaviateBackend:
        if cls is WeaviateBackend and layout == "named":
            from ._named import WeaviateNamedBackend

            cls = WeaviateNamedBackend
        return super().__new__(cls)

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
        layout: str = "collection",
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ConfigError(
                f"weaviate backend: layout must be one of {', '.join(map(repr, LAYOUTS))}, "
                f"got {layout!r}",
                hint='layout = "collection" (one Weaviate collection per space, the default) '
                'or layout = "named" (the spaces of a collection as named vectors of one '
                "Weaviate collection)",
            )
        self._layout = layout
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"weaviate backend: url must be http(s)://HOST[:PORT], got {url!r}",
                hint='url = "http://localhost:8080" (and grpc_port = 50051)',
            )
        if (
            isinstance(grpc_port, bool)
            or not isinstance(grpc_port, int)
            or not 0 < grpc_port < 65536
        ):
            raise ConfigError(
                f"weaviate backend: grpc_port must be a port number, got {grpc_port!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"weaviate backend: timeout must be a number > 0, got {timeout!r}")
        self._url = url
        self._rescore = bool(rescore)
        secure = parts.scheme == "https"
        http_port = parts.port or (443 if secure else 80)
        self._api_key = os.environ.get(api_key_env) or None if api_key_env else None
        self._codec = PayloadCodec()
        self._specs: dict[str, NamespaceSpec] = {}
        self._numbers: dict[str, set[str]] = {}
        self._external: dict[str, dict[str, tuple[str, str | None]]] = {}
        self._ext_vectors_of: dict[str, list[str]] = {}
        self._handles: dict[str, Any] = {}
        #: per namespace: the share of recent searches with near ties (``_search``)
        self._ties = TieRate()
        self._lock = threading.Lock()
        with self._call("connect"):
            self._client = weaviate.connect_to_custom(
                http_host=parts.hostname,
                http_port=http_port,
                http_secure=secure,
                grpc_host=grpc_host or parts.hostname,
                grpc_port=grpc_port,
                grpc_secure=secure,
                auth_credentials=Auth.api_key(self._api_key) if self._api_key else None,
                skip_init_checks=bool(skip_init_checks),
                additional_config=AdditionalConfig(
                    timeout=Timeout(init=timeout, query=timeout, insert=timeout)
                ),
            )
        try:
            with self._call("connect"):
                if not self._client.is_ready():
                    raise BackendError(f"weaviate at {self.url} is not ready")
                version = self._client.get_meta().get("version", "0")
            if tuple(int(x) for x in re.findall(r"\d+", str(version))[:2]) < (1, 32):
                raise BackendError(
                    f"weaviate at {self.url} is version {version}; vecver needs 1.32 or later",
                    hint="collection aliases (which vecver switches at cutover) came in 1.32",
                )
        except BaseException:
            with contextlib.suppress(Exception):
                self._client.close()
            raise

    # -- what the backend knows about Weaviate ------------------------------------------

    @classmethod
    def physical_name(cls, collection: str, space_label: str, fingerprint: str) -> str:
        """``Vv_{collection}__{label}_{fingerprint[:8]}`` with every character other than
        letters, digits and ``_`` replaced by ``_``; when that changed something, or the
        name would pass 255 characters, a hash of the exact inputs is appended so that
        distinct inputs keep distinct names."""
        coll, label = _UNSAFE.sub("_", collection), _UNSAFE.sub("_", space_label)
        fp = _UNSAFE.sub("_", fingerprint[:8])
        name = f"Vv_{coll}__{label}_{fp}"
        if coll != collection or label != space_label or len(name) > _NAME_MAX:
            digest = uuid_for(f"{collection}\x00{space_label}\x00{fingerprint}")[:8]
            name = f"{name[: _NAME_MAX - 9]}_{digest}"
        return name

    @classmethod
    def check_namespace_name(cls, name: object) -> None:
        """Weaviate's class-name rule: a letter, then letters, digits and ``_``, at most
        255 characters (the first letter is stored upper-cased)."""
        super().check_namespace_name(name)
        assert isinstance(name, str)
        if len(name) > _NAME_MAX or not _NAME_RE.fullmatch(name):
            raise InvalidNamespaceName(
                name,
                cls.name,
                "Weaviate collection names are a letter followed by letters, "
                "digits and '_' (at most 255 characters)",
            )

    @classmethod
    def score_from_distance(cls, metric: Metric, distance: Any) -> Any:
        """cosine: 1 - distance; dot and l2 (squared): -distance."""
        return 1.0 - distance if metric == "cosine" else -distance

    @staticmethod
    def _alias_class(alias: str) -> str:
        if len(alias) <= _NAME_MAX and _NAME_RE.fullmatch(alias):
            return class_name(alias)
        digest = hashlib.blake2b(alias.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        return f"Vv_alias_{_UNSAFE.sub('_', alias)[:100]}_{digest}"

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._client.close()
        super().close()

    def __repr__(self) -> str:
        key = ", api_key=<hidden>" if self._api_key else ""
        return f"WeaviateBackend(url={self.url!r}{key})"

    @property
    def layout(self) -> str:
        """The ``layout`` option: ``"collection"`` or ``"named"``."""
        return self._layout

    @property
    def url(self) -> str:
        """The server's URL without credentials or query string."""
        return _redacted(self._url)

    @property
    def client(self) -> weaviate.WeaviateClient:
        """The underlying ``weaviate-client`` client (for hooks such as adopt)."""
        return self._client

    # -- namespaces ---------------------------------------------------------------------

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        with contextlib.suppress(NamespaceNotFound):
            return self._describe_namespace(spec.name)
        meta = {_META_KEY: {"format": _META_FORMAT, "name": spec.name,
                            "dimension": spec.dimension, "metric": spec.metric,
                            "fingerprint": spec.fingerprint}}  # fmt: skip
        text = {"data_type": DataType.TEXT, "index_searchable": False}
        props = [
            Property(name="vv_id", tokenization=Tokenization.FIELD, **text),  # type: ignore[arg-type]
            Property(name="vv_fp", tokenization=Tokenization.FIELD, **text),  # type: ignore[arg-type]
            Property(name="vv_hash", index_filterable=False, **text),  # type: ignore[arg-type]
            Property(name="vv_at", data_type=DataType.NUMBER, index_filterable=False),
            Property(name="vv_text", index_filterable=False, **text),  # type: ignore[arg-type]
            Property(name=P_META, index_filterable=False, **text),  # type: ignore[arg-type]
            Property(
                name=KEYS_PROPERTY,
                data_type=DataType.TEXT_ARRAY,
                tokenization=Tokenization.FIELD,
                index_searchable=False,
            ),  # fmt: skip
        ]
        try:
            with self._call("create collection", spec.name):
                self._client.collections.create(
                    class_name(spec.name),
                    description=json.dumps(meta),
                    properties=props,
                    vector_config=Configure.Vectors.self_provided(
                        name=VECTOR,
                        vector_index_config=Configure.VectorIndex.hnsw(
                            distance_metric=_DISTANCE[spec.metric]
                        ),
                    ),
                )
        except VecverError:
            have = self._describe_or_none(spec.name)
            if have is None:
                target = self._get_alias_class(class_name(spec.name))
                if target is not None:
                    raise NamespaceExists(
                        spec.name, f"an alias of that name (-> {target!r})"
                    ) from None
                raise
            return have
        return self._describe_namespace(spec.name)

    def _handle(self, name: str) -> Any:
        """The client's handle of the collection of ``name`` (cached: building one costs
        the client about 0.1 ms)."""
        cls = class_name(name)
        got = self._handles.get(cls)
        if got is None:
            got = self._handles[cls] = self._client.collections.get(cls)
        return got

    def _describe_or_none(self, name: str) -> NamespaceSpec | None:
        try:
            return self._describe_namespace(name)
        except NamespaceNotFound:
            return None

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        cls = class_name(name)
        with self._call("get collection", name):
            cfg = self._client.collections.get(cls).config.get()
        if cfg.name != cls:
            raise NamespaceNotFound(name)  # an alias resolves to its collection
        spec = self._spec_of(cfg, name)
        self._specs[name] = spec
        self._numbers[name] = {p.name for p in cfg.properties if p.name.startswith("vn_")}
        return spec

    def _spec_of(self, cfg: Any, name: str | None) -> NamespaceSpec:
        try:
            meta = json.loads(cfg.description or "")[_META_KEY]
        except (ValueError, TypeError, KeyError):
            raise ForeignNamespace(name or cfg.name, self.name) from None
        if name is not None and meta.get("name") != name:
            raise NamespaceExists(
                name, f"a namespace {meta.get('name')!r} that Weaviate names the same ({cfg.name})"
            )
        try:
            spec = NamespaceSpec(str(meta["name"]), int(meta["dimension"]), meta["metric"],
                                 str(meta["fingerprint"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise BackendError(
                f"weaviate collection {cfg.name!r} has unreadable vecver metadata ({e})"
            ) from e
        vec = (cfg.vector_config or {}).get(VECTOR)
        dist = getattr(getattr(vec, "vector_index_config", None), "distance_metric", None)
        if vec is None or _METRIC.get(str(getattr(dist, "value", dist))) != spec.metric:
            raise BackendError(
                f"weaviate collection {cfg.name!r} no longer has the vector of its space "
                f"({spec.metric}); was it changed outside vecver?"
            )
        return spec

    def _list_namespaces(self) -> list[str]:
        with self._call("list collections"):
            configs = self._client.collections.list_all(simple=False)
        out = []
        for cfg in configs.values():
            with contextlib.suppress(ForeignNamespace, BackendError):
                out.append(self._spec_of(cfg, None).name)
        return out

    def _drop_namespace(self, name: str) -> None:
        self._specs.pop(name, None)
        self._ties.forget(name)
        try:
            self._describe_namespace(name)
        except NamespaceNotFound:
            return
        with self._call("delete collection", name):
            self._client.collections.delete(class_name(name))
        self._specs.pop(name, None)

    def _input_spec(self, namespace: str) -> NamespaceSpec:
        """The spec from a cache filled by every describe (a namespace's name carries its
        fingerprint; Weaviate itself refuses a vector of another length; a collection
        deleted behind vecver's back answers "not found", which evicts it)."""
        spec = self._specs.get(namespace)
        return spec if spec is not None else self._spec(namespace)

    # -- data ---------------------------------------------------------------------------

    def _properties(self, record: Record) -> dict[str, Any]:
        payload = self._codec.encode(record)
        props: dict[str, Any] = {
            p: payload[k] for k, p in _PROPS.items() if payload.get(k) is not None
        }
        props[P_META] = _COMPACT.encode(record.metadata)
        props[KEYS_PROPERTY] = tokens_of(record.metadata)
        props.update(numeric_fields(record.metadata))
        return props

    def _ensure_numbers(self, namespace: str, wanted: set[str]) -> None:
        known = self._numbers.setdefault(namespace, set())
        missing = wanted - known
        if not missing:
            return
        self._describe_namespace(namespace)
        collection = self._handle(namespace)
        for prop in sorted(missing - self._numbers[namespace]):
            try:
                with self._call("add property", namespace):
                    collection.config.add_property(
                        Property(name=prop, data_type=DataType.NUMBER, index_range_filters=True)
                    )
            except BackendError:
                self._describe_namespace(namespace)  # another writer added it first?
                if prop not in self._numbers[namespace]:
                    raise
            self._numbers[namespace].add(prop)

    @staticmethod
    def _payload(props: Any) -> dict[str, Any]:
        """The flat payload (:class:`PayloadCodec`'s form) of an object's properties."""
        payload: dict[str, Any] = json.loads(props.get(P_META) or "{}")
        for key, prop in _PROPS.items():
            payload[key] = props.get(prop)
        return payload

    def _record(self, props: Any, vector: Any) -> Record:
        """What ``PayloadCodec.to_record(_payload(props), vector)`` gives (by
        :meth:`_hit_fields`)."""
        doc, text, metadata, stamp = self._hit_fields(props)
        vec = None if vector is None else np.asarray(vector, dtype=np.float32).copy()
        return Record(doc, vec, text, metadata, stamp)

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        self._input_spec(namespace)
        rows = vectors.tolist()
        objects = []
        numbers: set[str] = set()
        for r, row in zip(records, rows, strict=True):
            props = self._properties(r)
            numbers.update(k for k in props if k.startswith("vn_"))
            objects.append(DataObject(properties=props, uuid=uuid_for(r.id), vector={VECTOR: row}))
        self._ensure_numbers(namespace, numbers)
        with self._call("insert", namespace):
            result = self._handle(namespace).data.insert_many(objects)
        if result.errors:
            raise BatchObjectsFailed(
                namespace, {records[i].id: self._scrub(e.message) for i, e in result.errors.items()}
            )

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        self._input_spec(namespace)
        with self._call("delete", namespace):
            self._handle(namespace).data.delete_many(
                where=WFilter.by_id().contains_any([uuid_for(i) for i in ids])
            )

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        return self._fetch_props(namespace, ids, with_vectors, _RETURN)

    def _fetch_without_text(
        self, namespace: str, ids: Sequence[str], with_vectors: bool
    ) -> dict[str, Record]:
        """The text property not among those returned."""
        return self._fetch_props(namespace, ids, with_vectors, _RETURN_NO_TEXT)

    def _fetch_props(self, namespace: str, ids: Sequence[str], with_vectors: bool,
                     properties: list[str]) -> dict[str, Record]:
        self._input_spec(namespace)
        wanted = {uuid_for(i): i for i in ids}
        with self._call("fetch", namespace):
            res = self._handle(namespace).query.fetch_objects(
                filters=WFilter.by_id().contains_any(list(wanted)),
                limit=len(wanted),
                return_properties=properties,
                include_vector=[VECTOR] if with_vectors else False,
            )
        out: dict[str, Record] = {}
        for o in res.objects:
            doc = wanted.get(str(o.uuid))
            if doc is None or o.properties.get("vv_id") != doc:
                continue  # a UUID collision: not the record asked for
            out[doc] = self._record(
                dict(o.properties), o.vector.get(VECTOR) if with_vectors else None
            )
        return out

    def _scan(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool) -> ScanPage:
        return self._scan_props(namespace, cursor, limit, with_vectors, _RETURN)

    def _scan_without_text(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        """As :meth:`_fetch_without_text`; the same cursor iteration, so the same order."""
        return self._scan_props(namespace, cursor, limit, with_vectors, _RETURN_NO_TEXT)

    def _scan_props(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool,
                    properties: list[str]) -> ScanPage:
        self._input_spec(namespace)
        after = None if cursor is None else _uuid_of_cursor(cursor)
        with self._call("scan", namespace):
            res = self._handle(namespace).query.fetch_objects(
                after=after,
                limit=limit + 1,
                return_properties=properties,
                include_vector=[VECTOR] if with_vectors else False,
            )
        objs = res.objects[:limit]
        records = [
            self._record(dict(o.properties), o.vector.get(VECTOR) if with_vectors else None)
            for o in objs
        ]
        more = len(res.objects) > limit
        return ScanPage(records, str(objs[-1].uuid) if more and objs else None)

    def _count(self, namespace: str) -> int:
        self._input_spec(namespace)
        with self._call("count", namespace):
            agg = self._handle(namespace).aggregate.over_all(total_count=True)
        return int(agg.total_count or 0)

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        metric = self._input_spec(namespace).metric
        native = self._native_filter(namespace, flt)
        if native is _NOTHING:
            return [[] for _ in range(queries.shape[0])]
        collection = self._handle(namespace)
        out: list[list[Hit]] = []
        if not self._rescore:
            for row in queries:
                out.append(self._distance_hits(metric, self._near(
                    collection, namespace, row, k, native, False)))  # fmt: skip
            return out
        ties = self._ties
        hit_fields = self._hit_fields
        for row in queries:
            # dot: how far Weaviate's arithmetic may be from the exact score depends on the
            # norm of the stored vector, which the distance does not tell: always re-scored
            if metric == "dot":
                objs = self._near(collection, namespace, row, k, native, True)
                out.append(self._rescored_hits(metric, row, objs))
                continue
            upfront = ties.upfront(namespace)
            objs = self._near(collection, namespace, row, k, native, upfront)
            fields = [hit_fields(o.properties) for o in objs]
            hits = self._ranked(_distance_scores(metric, objs), fields)
            tie = _near_tie(metric, row, hits)
            if tie:
                if not upfront:  # asked again, with the vectors
                    objs = self._near(collection, namespace, row, k, native, True)
                    fields = [hit_fields(o.properties) for o in objs]
                hits = self._rescored_hits(metric, row, objs, fields)
            ties.record(namespace, int(tie))
            out.append(hits)
        return out

    def _near(
        self, collection: Any, namespace: str, row: Any, k: int, native: Any, vectors: bool
    ) -> list[Any]:
        """The objects of one near-vector query (with their ``vv`` vectors if asked)."""
        with self._call("search", namespace):
            res = collection.query.near_vector(
                near_vector=row.tolist(),
                limit=k,
                target_vector=VECTOR,
                filters=native,
                return_metadata=_DISTANCE_ONLY,
                return_properties=_RETURN,
                include_vector=_WITH_VECTOR if vectors else False,
            )
        objs: list[Any] = res.objects
        return objs

    def _rescored_hits(
        self, metric: Metric, row: Any, objs: list[Any], fields: list[_Fields] | None = None
    ) -> list[Hit]:
        """Hits scored by :func:`~vecver.backends.base.exact_scores` from the returned
        vectors (objects without one are left out), best first, ties by id. ``fields``:
        the objects' :meth:`_hit_fields`, when already decoded."""
        if fields is None:
            fields = [self._hit_fields(o.properties) for o in objs]
        keep = [j for j, o in enumerate(objs) if o.vector.get(VECTOR) is not None]
        if not keep:
            return []
        # re-scored from the stored vectors: scores and the order of near ties do not
        # depend on the server's arithmetic (or its approximate index's)
        mat = np.asarray([objs[j].vector[VECTOR] for j in keep], dtype=np.float32)
        scores = exact_scores(metric, row[None, :], mat)[0].tolist()
        return self._ranked(scores, [fields[j] for j in keep])

    def _distance_hits(self, metric: Metric, objs: list[Any]) -> list[Hit]:
        """Hits scored from Weaviate's distances (:meth:`score_from_distance`, in
        float32), best first, ties by id."""
        return self._ranked(_distance_scores(metric, objs),
                            [self._hit_fields(o.properties) for o in objs])  # fmt: skip

    @staticmethod
    def _ranked(scores: list[float], fields: list[_Fields]) -> list[Hit]:
        """Hits of ``fields`` with ``scores`` (Python floats), sorted by (-score, id)."""
        order = sorted(range(len(fields)), key=lambda j: (-scores[j], fields[j][0]))
        return [Hit(fields[j][0], scores[j], fields[j][1], fields[j][2], fields[j][3])
                for j in order]  # fmt: skip

    def _hit_fields(self, props: Any) -> _Fields:
        """(id, text, metadata, stamp) of an object's properties: what
        ``PayloadCodec.decode(_payload(props))`` gives, without building the payload;
        anything unusual (a reserved key in the metadata, missing stamp fields) takes
        that path itself, so its errors are the same."""
        raw = props.get(P_META)
        md: Any = {}
        if raw and raw != "{}":  # "{}": what a record without metadata holds
            try:
                md, end = _JSON.raw_decode(raw)
            except ValueError:
                md, end = None, -1
            if end != len(raw):
                md = json.loads(raw)  # whitespace around it, or not JSON: json's own errors
        at = props.get("vv_at")
        if type(md) is dict and type(at) is float:
            plain = True
            for key in md:
                if key.startswith(RESERVED_PREFIX):
                    plain = False
                    break
            if plain:
                doc = str(props.get("vv_id"))
                stamp = Stamp(str(props.get("vv_fp")), doc, str(props.get("vv_hash")), at)
                return doc, props.get("vv_text"), md, stamp
        d = self._codec.decode(self._payload(props))
        return d.id, d.text, d.metadata, d.stamp

    def _native_filter(self, namespace: str, flt: Filter | None) -> Any:
        """The Weaviate filter for ``flt`` (None: none), or :data:`_NOTHING`. String ranges
        are resolved here (a scan) to the ids of the records that satisfy them."""
        if flt is None:
            return None
        wf = translate_filter(flt)
        if wf.matches_nothing:
            return _NOTHING
        if wf.needs - self._numbers.get(namespace, set()):
            self._describe_namespace(namespace)
            if wf.needs - self._numbers.get(namespace, set()):
                return _NOTHING  # no record ever held a number in that field
        if wf.client_side is None:
            return wf.native
        return self._resolved_on_client(namespace, wf)

    def _resolved_on_client(self, namespace: str, wf: Any) -> Any:
        """``wf`` with its client-side part (string ranges) resolved by a scan of
        ``namespace`` to the ids of the records that satisfy it, or :data:`_NOTHING`."""
        assert wf.client_side is not None
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = self._scan(namespace, cursor, 1000, False)
            ids.extend(uuid_for(r.id) for r in page.records if wf.client_side.matches(r.metadata))
            if len(ids) > _MAX_RESOLVED:
                raise FilterNotExpressible(
                    self.name, wf.client_side.conditions[0].field,
                    f"a string range is resolved on the client and this one admits more "
                    f"than {_MAX_RESOLVED} records",
                    hint="narrow it with eq, in or numeric range conditions",
                )  # fmt: skip
            cursor = page.next_cursor
            if cursor is None:
                break
        if not ids:
            return _NOTHING
        by_id = WFilter.by_id().contains_any(ids)
        return by_id if wf.native is None else WFilter.all_of([by_id, wf.native])

    # -- adopted collections (vecver adopt) -----------------------------------------------

    def _ext_props(self, name: str, *, refresh: bool = False) -> dict[str, tuple[str, str | None]]:
        """The properties of collection ``name``: name -> (data type, tokenization)."""
        got = self._external.get(name)
        if got is None or refresh:
            with self._call("get collection", name):
                cfg = self._handle(name).config.get()
            got = {
                p.name: (str(getattr(p.data_type, "value", p.data_type)),
                         None if p.tokenization is None
                         else str(getattr(p.tokenization, "value", p.tokenization)))
                for p in cfg.properties
            }  # fmt: skip
            self._external[name] = got
        return got

    def _describe_external(self, name: str) -> ExternalCollection:
        cls = class_name(name)
        with self._call("get collection", name):
            if self._client.alias.get(alias_name=cls) is not None:
                raise NamespaceNotFound(name)  # an alias, not a collection
            cfg = self._client.collections.get(cls).config.get()
        if cfg.name != cls:
            raise NamespaceNotFound(name)
        named = dict(cfg.vector_config or {})
        if len(named) > 1:
            return self._describe_several(name, cfg, named)
        index: Any
        vector_field: str | None = None
        if named:
            vector_field = next(iter(named))
            index = named[vector_field].vector_index_config
        else:
            index = cfg.vector_index_config
        metric = _METRIC.get(_distance_of(index))
        if metric is None:
            raise BackendError(
                f"weaviate collection {cls!r} uses distance {_distance_of(index)!r}; vecver "
                "adopts cosine, dot and l2-squared"
            )
        dims = self._sample_dimensions(name, [vector_field] if vector_field else None)
        return self._external_of(name, cfg, dims.get(vector_field or "default", 0), metric,
                                 vector_field, {})  # fmt: skip

    def _describe_several(self, name: str, cfg: Any, named: dict[str, Any]
                          ) -> ExternalCollection:
        """A collection with several named vectors: each one whose distance vecver knows
        is offered (``vectors``), the first by name standing for the collection until
        one is chosen (:meth:`ExternalCollection.with_vector`)."""
        dims = self._sample_dimensions(name, sorted(named))
        several: dict[str, tuple[int, Metric]] = {}
        for vname in sorted(named):
            metric = _METRIC.get(_distance_of(named[vname].vector_index_config))
            if metric is not None:
                several[vname] = (dims.get(vname, 0), metric)
        if not several:
            raise BackendError(
                f"weaviate collection {class_name(name)!r} has no named vector with a "
                "cosine, dot or l2-squared distance; vecver adopts those"
            )
        first = next(iter(several))
        return self._external_of(name, cfg, several[first][0], several[first][1], first,
                                 several)  # fmt: skip

    def _sample_dimensions(self, name: str, vectors: list[str] | None) -> dict[str, int]:
        """The length of each vector (``vectors``: named ones; None: the default) on the
        first objects holding it, among a sample of the collection's first objects."""
        with self._call("fetch", name):
            res = self._client.collections.get(class_name(name)).query.fetch_objects(
                limit=_DIM_SAMPLE, include_vector=vectors if vectors else True
            )
        dims: dict[str, int] = {}
        for o in res.objects:
            for vname, vec in (o.vector or {}).items():
                if vec is not None and vname not in dims:
                    dims[vname] = len(vec)
        return dims

    def _external_of(self, name: str, cfg: Any, dim: int, metric: Metric,
                     vector_field: str | None, several: dict[str, tuple[int, Metric]]
                     ) -> ExternalCollection:
        props = self._ext_props(name, refresh=True)
        count = self._count_external_name(name)
        vecver_made = False
        with contextlib.suppress(ForeignNamespace, BackendError):
            self._spec_of(cfg, None)
            vecver_made = True
        return ExternalCollection(
            name, dim, metric, count, {k: t for k, (t, _) in props.items()}, "uuid",
            vector_field=vector_field, schemaless=False, text_slot=False, vecver=vecver_made,
            vectors=several,
        )  # fmt: skip

    def _count_external_name(self, name: str) -> int:
        with self._call("count", name):
            agg = self._handle(name).aggregate.over_all(total_count=True)
        return int(agg.total_count or 0)

    def _raw_point(self, layout: Layout, o: Any, with_vectors: bool) -> RawPoint:
        vec = None
        if with_vectors:
            v = o.vector.get(layout.vector_field or "default")
            vec = None if v is None else np.asarray(v, dtype=np.float32)
        payload = {k: v for k, v in dict(o.properties).items() if v is not None}
        return RawPoint(str(o.uuid), vec, payload)

    def _ext_vectors(self, layout: Layout, with_vectors: bool) -> bool | list[str]:
        if not with_vectors:
            return False
        return [layout.vector_field] if layout.vector_field else True

    def _scan_external(
        self, layout: Layout, cursor: str | None, limit: int, with_vectors: bool
    ) -> tuple[list[RawPoint], str | None]:
        after = None if cursor is None else _uuid_of_cursor(cursor)
        with self._call("scan", layout.name):
            res = self._handle(layout.name).query.fetch_objects(
                after=after, limit=limit + 1,
                include_vector=self._ext_vectors(layout, with_vectors),
            )  # fmt: skip
        objs = res.objects[:limit]
        more = len(res.objects) > limit and bool(objs)
        return ([self._raw_point(layout, o, with_vectors) for o in objs],
                str(objs[-1].uuid) if more else None)  # fmt: skip

    def _get_external(
        self, layout: Layout, keys: Sequence[Key], with_vectors: bool
    ) -> list[RawPoint]:
        with self._call("fetch", layout.name):
            res = self._handle(layout.name).query.fetch_objects(
                filters=WFilter.by_id().contains_any([str(k) for k in keys]), limit=len(keys),
                include_vector=self._ext_vectors(layout, with_vectors),
            )  # fmt: skip
        return [self._raw_point(layout, o, with_vectors) for o in res.objects]

    def _find_external(
        self, layout: Layout, field: str, values: Sequence[str], with_vectors: bool
    ) -> list[RawPoint]:
        dtype, tok = self._ext_props(layout.name).get(field, ("", None))
        wanted: list[Any]
        if dtype == "text" and tok == "field" and all(v == v.strip() for v in values):
            wanted = list(dict.fromkeys(values))
        elif dtype == "int":
            wanted = [int(v) for v in values if re.fullmatch(r"-?[0-9]{1,18}", v)]
            if not wanted:
                return []
        else:
            return super()._find_external(layout, field, values, with_vectors)
        out: list[RawPoint] = []
        with self._call("find", layout.name):
            res = self._handle(layout.name).query.fetch_objects(
                filters=WFilter.by_property(field).contains_any(wanted),
                limit=self.capabilities.max_fetch_ids * 2,
                include_vector=self._ext_vectors(layout, with_vectors),
            )  # fmt: skip
        out.extend(self._raw_point(layout, o, with_vectors) for o in res.objects)
        return out

    def _put_external(self, layout: Layout, points: Sequence[RawPoint]) -> None:
        props = self._ext_props(layout.name)
        objects = []
        for p in points:
            extra = [f for f in p.payload if f not in props]
            if extra:
                doc = p.payload.get(layout.id_field) if layout.id_field else p.key
                raise AdoptedRowRefused(
                    str(doc), layout.name, [], extra,
                    [f for f in props if f not in layout.own_fields],
                )  # fmt: skip
            vec = np.asarray(p.vector, dtype=np.float32).tolist()
            objects.append(DataObject(
                properties=dict(p.payload), uuid=str(p.key),
                vector={layout.vector_field: vec} if layout.vector_field else vec,
            ))  # fmt: skip
        others = self._other_vectors(layout)
        if others:
            self._put_keeping_vectors(layout, objects, others)
            return
        self._insert_external(layout, objects)

    def _insert_external(self, layout: Layout, objects: list[Any]) -> None:
        """``insert_many`` (whole objects: what they held before is replaced)."""
        with self._call("insert", layout.name):
            result = self._handle(layout.name).data.insert_many(objects)
        if result.errors:
            raise BatchObjectsFailed(
                layout.name,
                {str(objects[i].uuid): self._scrub(e.message) for i, e in result.errors.items()},
            )

    def _other_vectors(self, layout: Layout) -> list[str]:
        """The named vectors of an adopted collection besides the adopted one (asked once
        per collection and backend object: named vectors are never removed)."""
        if layout.vector_field is None:
            return []
        got = self._ext_vectors_of.get(layout.name)
        if got is None:
            with self._call("get collection", layout.name):
                cfg = self._handle(layout.name).config.get()
            got = sorted(n for n in (cfg.vector_config or {}) if n != layout.vector_field)
            self._ext_vectors_of[layout.name] = got
        return got

    def _put_keeping_vectors(self, layout: Layout, objects: list[Any], others: list[str]
                             ) -> None:
        """Write the adopted vector and the properties of each object, keeping its other
        named vectors: a new object is inserted with the adopted vector only; an existing
        one is replaced (PUT) with its other vectors as read just before, unchanged. (A
        write of another vector by other code between that read and the PUT is lost:
        Weaviate has no request that sets one named vector and replaces the properties.)"""
        ids = [str(o.uuid) for o in objects]
        with self._call("fetch", layout.name):
            res = self._handle(layout.name).query.fetch_objects(
                filters=WFilter.by_id().contains_any(ids), limit=len(ids),
                include_vector=others, return_properties=[],
            )  # fmt: skip
        held = {str(o.uuid): dict(o.vector or {}) for o in res.objects}
        fresh = [o for o in objects if str(o.uuid) not in held]
        if fresh:
            self._insert_external(layout, fresh)
        handle = self._handle(layout.name)
        for o in objects:
            kept = held.get(str(o.uuid))
            if kept is None:
                continue
            vectors = {n: v for n, v in kept.items() if n in others and v is not None}
            vectors.update(o.vector)
            with self._call("replace", layout.name):
                handle.data.replace(uuid=o.uuid, properties=o.properties, vector=vectors)

    def _delete_external(self, layout: Layout, keys: Sequence[Key]) -> None:
        with self._call("delete", layout.name):
            self._handle(layout.name).data.delete_many(
                where=WFilter.by_id().contains_any([str(k) for k in keys])
            )

    def _search_external(
        self, layout: Layout, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[tuple[RawPoint, float]]]:
        native = None
        if flt is not None:
            wf = adopted_filter(flt, self._ext_props(layout.name))
            if wf.matches_nothing:
                return [[] for _ in range(queries.shape[0])]
            native = wf.native
        collection = self._handle(layout.name)
        out: list[list[tuple[RawPoint, float]]] = []
        for row in queries:
            with self._call("search", layout.name):
                res = collection.query.near_vector(
                    near_vector=row.tolist(), limit=k, target_vector=layout.vector_field,
                    filters=native, return_metadata=MetadataQuery(distance=True),
                )  # fmt: skip
            out.append([
                (self._raw_point(layout, o, False),
                 float(self.score_from_distance(layout.metric,
                                                np.float32(o.metadata.distance or 0.0))))
                for o in res.objects
            ])  # fmt: skip
        return out

    def _count_external(self, layout: Layout) -> int:
        return self._count_external_name(layout.name)

    # -- aliases ------------------------------------------------------------------------

    def _get_alias_class(self, alias_cls: str) -> str | None:
        with self._call("get alias"):
            got = self._client.alias.get(alias_name=alias_cls)
        return None if got is None else got.collection

    def _set_alias(self, alias: str, namespace: str) -> None:
        acls = self._alias_class(alias)
        target = class_name(namespace)
        with self._call("set alias", namespace):
            if self._client.alias.get(alias_name=acls) is None:
                self._client.alias.create(alias_name=acls, target_collection=target)
            else:
                self._client.alias.update(alias_name=acls, new_target_collection=target)

    def _get_alias(self, alias: str) -> str | None:
        target = self._get_alias_class(self._alias_class(alias))
        if target is None:
            return None
        for name in list(vars(self).get("_layouts") or {}):
            if class_name(name) == target:
                return str(name)  # an adopted collection
        with self._call("get collection"):
            cfg = self._client.collections.get(target).config.get()
        try:
            return self._spec_of(cfg, None).name
        except ForeignNamespace:
            return None

    def _drop_alias(self, alias: str) -> None:
        with self._call("delete alias"):
            self._client.alias.delete(alias_name=self._alias_class(alias))

    # -- plumbing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _call(self, what: str, namespace: str | None = None) -> Iterator[None]:
        """One client call; its failures as vecver errors, with the API key scrubbed."""
        try:
            yield
        except VecverError:
            raise
        except Exception as e:  # noqa: BLE001 - translated, never swallowed
            where = f"weaviate {what}" + (f" on {namespace!r}" if namespace else "")
            err = translate(_cause(e), where, namespace=namespace)
            if isinstance(err, NamespaceNotFound) and namespace is not None:
                self._specs.pop(namespace, None)
            err.message = self._scrub(err.message)
            err.args = (err.message,)
            raise err from None

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "<hidden>") if self._api_key else text


#: A hit's (id, text, metadata, stamp).
_Fields = tuple[str, str | None, dict[str, Any], Stamp]


def _distance_of(index: Any) -> str:
    """The distance word of a vector index config (``""`` when it has none)."""
    return str(getattr(getattr(index, "distance_metric", None), "value", ""))


def _distance_scores(metric: Metric, objs: Sequence[Any]) -> list[float]:
    """Scores from Weaviate's distances, computed in float32 as
    :meth:`WeaviateBackend.score_from_distance` on a float32 array."""
    if not objs:
        return []
    dist = np.asarray([o.metadata.distance or 0.0 for o in objs], dtype=np.float32)
    scores: list[float] = WeaviateBackend.score_from_distance(metric, dist).tolist()
    return scores


#: Marks a filter no record can match (no database call needed).
_NOTHING: Any = object()


def _cause(exc: BaseException) -> BaseException:
    """The most telling exception of a client error: weaviate-client wraps gRPC and HTTP
    errors in its own (an ``UnexpectedStatusCodeError`` carries the status itself); the
    first exception along the chain that says "retry" or "not found" wins."""
    seen: BaseException | None = exc
    hops = 0
    while seen is not None and hops < 10:
        if classify(seen) != "permanent":
            return seen
        seen = seen.__cause__ or seen.__context__
        hops += 1
    return exc


def _uuid_of_cursor(cursor: str) -> str:
    try:
        return str(uuid.UUID(cursor))
    except ValueError:
        raise InvalidInput(
            f"{cursor!r} is not a scan cursor of the weaviate backend",
            hint="pass the next_cursor of a previous page",
        ) from None


def _redacted(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "<hidden>@" + netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
