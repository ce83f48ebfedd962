"""The Milvus backend: one Milvus collection per namespace, on a server or Milvus Lite."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.client.types import LoadState
from pymilvus.exceptions import MilvusException, MilvusUnavailableException

from ...errors import (
    AdoptedFieldMissing,
    AdoptedRowRefused,
    BackendError,
    BackendInUse,
    ConfigError,
    ForeignNamespace,
    InvalidNamespaceName,
    NamespaceNotFound,
    TransientBackendError,
    UnsupportedMetadata,
    VecverError,
)
from ...filters import Filter
from ...types import Hit, Matrix, Metric, NamespaceSpec, Record, ScanPage, Stamp
from .. import _remote
from .._ties import agrees, tied_positions
from ..base import Backend, exact_scores
from ..capabilities import Capabilities
from ..external import ExternalCollection, IdType, Key, Layout, RawPoint
from ._expr import (
    FILTER_FIELD,
    adopted_filter,
    filter_keys,
    literal_list,
    string_literal,
    translate_filter,
)

__all__ = ["MilvusBackend", "MilvusLiteBackend"]

T = TypeVar("T")

# -- the schema of a namespace's collection ----------------------------------------------
F_ID = "id"
F_VECTOR = "vector"
F_TEXT = "text"
F_HAS_TEXT = "has_text"
F_METADATA = "metadata"
F_FP = "stamp_fingerprint"
F_HASH = "stamp_source_hash"
F_AT = "stamp_written_at"
_VARCHAR_MAX = 65_535
_RECORD_FIELDS = [F_ID, F_TEXT, F_HAS_TEXT, F_METADATA, F_FP, F_HASH, F_AT]
#: what a search asks for besides the vector (the id comes with every hit)
_HIT_FIELDS = [f for f in _RECORD_FIELDS if f != F_ID]
#: ids per query when a search fetches its hits' vectors
_ID_CHUNK = 1024
#: what a read without the text asks for (``with_text=False``)
_STAMP_FIELDS = [f for f in _RECORD_FIELDS if f not in (F_TEXT, F_HAS_TEXT)]

# collection properties holding the namespace's spec
P_FORMAT = "vecver.format"
P_FINGERPRINT = "vecver.fingerprint"
P_METRIC = "vecver.metric"
P_DIMENSION = "vecver.dimension"
_FORMAT = "1"

_METRICS: dict[str, str] = {"cosine": "COSINE", "dot": "IP", "l2": "L2"}
_INDEX_DEFAULTS: dict[str, dict[str, Any]] = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 128},
}
_SEARCH_DEFAULTS: dict[str, dict[str, Any]] = {"HNSW": {"ef": 128}, "IVF_FLAT": {"nprobe": 16}}

#: Milvus' window for one query or search (offset + limit, topk).
_MAX_WINDOW = 16_384
_NAME_MAX = 255
_NAME_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_INT64 = 2**63

# Milvus status codes (server 2.3+) that say a retry may succeed: service unavailable,
# request limit, rate limit, time-tick delay, collection not fully loaded.
_TRANSIENT_CODES = frozenset({2, 4, 8, 11, 103})
_TRANSIENT_WORDS = ("unavailable", "rate limit", "timeout", "deadline", "not ready",
                    "connection refused", "connect", "too many requests")  # fmt: skip
_NOT_LOADED_CODE = 101


def _is_lite(uri: str) -> bool:
    return uri.endswith(".db") and "://" not in uri


class MilvusBackend(Backend):
    """Namespaces as Milvus collections, on a Milvus server (``uri="http://host:19530"``,
    optionally ``token``) or in a Milvus Lite file (``uri="./vecver.db"``: an instance of
    :class:`MilvusLiteBackend` is returned, whose capabilities say it is not shared between
    processes).

    One collection per namespace, with the schema ``id`` (VARCHAR primary key: the vecver
    id itself), ``vector`` (FLOAT_VECTOR of the space's dimension), ``text`` and
    ``has_text``, ``metadata`` (JSON, as given), the stamp as ``stamp_fingerprint``,
    ``stamp_source_hash`` and ``stamp_written_at``, and ``filter_keys`` (JSON: the
    filterable copy of the metadata, see :mod:`vecver.backends.milvus._expr`). The spec
    lives in the collection's properties (``vecver.fingerprint``, ``vecver.metric``,
    ``vecver.dimension``); a collection without them is foreign: not listed, never
    written nor dropped (:class:`~vecver.errors.ForeignNamespace`).

    Every collection is created with ``consistency_level="Strong"`` and reads use it, so
    they reflect every write acknowledged before them (on a server a read waits for the
    next time tick, ``proxy.timeTickInterval``, 200 ms by default). Scans are pages of the
    query iterator in primary-key order; the cursor is the last id (valid across
    processes). The vector index is ``index_type``
    (``"HNSW"`` or ``"IVF_FLAT"``) with the space's metric (cosine -> COSINE, dot -> IP,
    l2 -> L2) and ``index_params`` (defaults: HNSW ``M=16, efConstruction=200``;
    IVF_FLAT ``nlist=128``); ``search_params`` are passed to each search (defaults: HNSW
    ``ef=128``, raised to ``k`` when smaller; IVF_FLAT ``nprobe=16``). Scores follow
    vecver's convention: COSINE and IP as Milvus returns them, L2 negated (Milvus
    returns the squared distance). ``rescore`` (default True): near ties order as vecver's
    reference orders them. A search asks for no vectors and scores hits from Milvus'
    distances (within float32 rounding of :func:`~vecver.backends.base.exact_scores`);
    the hits of a list that are so close to a neighbour that the rounding of either
    computation could swap them (:func:`vecver.backends._ties.tied_positions`; exact
    ties included) get their stored vectors in one more request (one for all such hits
    of a batch, read without waiting for a new time tick and checked against the
    search's distances: see :meth:`_rescore_tied`), are re-scored with ``exact_scores``
    and the list sorted again (ties by id; the other hits keep Milvus' scores).
    ``dot`` is always asked with vectors and re-scored (a dot product's rounding
    depends on the stored norm, which the distance does not tell). ``rescore=False``
    takes Milvus' distances as they are, always (near ties in float rounding's order,
    exact ties by id). On a Milvus 2.3 server, returning the vectors with a search
    doubles its latency, and costs more than the second request even when every list
    has near ties (``bench/milvus_search_bench.py --corpus ties``), which is why they
    are read apart. Aliases are Milvus aliases
    (``create_alias`` /
    ``alter_alias``: re-pointing is one atomic call); an alias name Milvus does not
    accept (``my-docs``) is stored under a deterministic valid name.

    Limits (declared, enforced by the base): 256 records per write (a request stays under
    Milvus' 64 MiB), 1,000 ids per fetch and delete, metadata of at most 16 KiB of JSON
    (its filterable copy must fit Milvus' 64 KiB JSON field), text of at most 65,535
    bytes (a VARCHAR); ints in metadata must fit 64 bits (``UnsupportedMetadata``).

    ``timeout`` (seconds, default 30) bounds every call; ``db_name`` selects a database on
    a server. The token is never shown: not in ``repr`` (nor credentials in the uri), not
    in errors.
    """

    name = "milvus"
    capabilities = Capabilities(
        native_alias=True,
        namespace_kind="Milvus collection",
        max_batch=256,
        max_fetch_ids=1000,
        max_delete_ids=1000,
        max_metadata_bytes=16_384,
        max_text_bytes=_VARCHAR_MAX,
        consistency="strong",
        persistent=True,
        shared_between_processes=True,
        remote_reads=True,
    )

    def __new__(cls, uri: str = "", *args: Any, **kwargs: Any) -> MilvusBackend:
        if cls is MilvusBackend and isinstance(uri, str) and _is_lite(uri):
            cls = MilvusLiteBackend
        return super().__new__(cls)

    @classmethod
    def default_options(cls, base_dir: Path, instance: str = "default") -> dict[str, Any]:
        """``uri``: a Milvus Lite file next to the config (``milvus.db``, or
        ``milvus-INSTANCE.db`` for an instance other than the default one)."""
        leaf = "milvus.db" if instance == "default" else f"milvus-{instance}.db"
        return {"uri": str(base_dir / leaf)}

    def __init__(
        self,
        uri: str = "",
        *,
        token: str | None = None,
        db_name: str | None = None,
        timeout: float = 30.0,
        index_type: str = "HNSW",
        index_params: Mapping[str, Any] | None = None,
        search_params: Mapping[str, Any] | None = None,
        rescore: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(rescore, bool):
            raise ConfigError(f"milvus rescore must be true or false, got {rescore!r}",
                              hint="rescore = false takes Milvus' distances as scores")  # fmt: skip
        self._rescore = rescore
        if not isinstance(uri, str) or not uri:
            raise ConfigError(
                "the milvus backend needs a uri",
                hint='set uri = "http://HOST:19530" for a server or "./vecver.db" for Milvus Lite',
            )
        kind = str(index_type).upper()
        if kind not in _INDEX_DEFAULTS:
            raise ConfigError(
                f"milvus index_type {index_type!r} is not supported",
                hint="use " + " or ".join(sorted(_INDEX_DEFAULTS)),
            )
        self._uri = uri
        self._timeout = float(timeout)
        self._index_type = kind
        self._index_params = {**_INDEX_DEFAULTS[kind], **dict(index_params or {})}
        self._search_params = {**_SEARCH_DEFAULTS[kind], **dict(search_params or {})}
        self._specs: dict[str, NamespaceSpec] = {}
        client_kwargs: dict[str, Any] = {"uri": uri, "timeout": self._timeout}
        if token:
            client_kwargs["token"] = token
        if db_name:
            client_kwargs["db_name"] = db_name
        try:
            self._client = MilvusClient(**client_kwargs)
        except Exception as e:  # noqa: BLE001 - classified here
            if _is_lite(uri) and "local" in str(e).lower():
                raise BackendInUse(
                    self.name, uri, "Milvus Lite opens a file in one process at a time "
                    "(or the file is not a Milvus Lite database)",
                ) from e
            raise self._translate(e, "connect", None) from e

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri={self.uri!r})"

    @property
    def uri(self) -> str:
        """Where the backend connects, without credentials (never the token)."""
        return _USERINFO.sub(r"\1", self._uri)

    @property
    def client(self) -> MilvusClient:
        """The underlying ``pymilvus`` client (for tools and tests reading the database
        as it is; writing through it bypasses every rule of vecver's)."""
        return self._client

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):  # closing is best effort
                self._client.close()
        super().close()

    # -- naming ------------------------------------------------------------------------

    @classmethod
    def physical_name(cls, collection: str, space_label: str, fingerprint: str) -> str:
        """``vv_{collection}__{label}_{fingerprint[:8]}`` with every character Milvus does
        not allow in a collection name (anything but letters, digits and ``_``) replaced
        by ``_``; when something was replaced, or the name would pass Milvus' 255
        characters, the parts are shortened and a hash of the exact collection name and
        label is appended, so different collections never share a namespace."""
        safe_c, safe_l = _UNSAFE.sub("_", collection), _UNSAFE.sub("_", space_label)
        fp = _UNSAFE.sub("_", fingerprint[:8])
        name = f"vv_{safe_c}__{safe_l}_{fp}"
        if safe_c != collection or safe_l != space_label or len(name) > _NAME_MAX:
            digest = hashlib.blake2b(
                f"{collection}\x00{space_label}".encode("utf-8", "surrogatepass"), digest_size=5
            ).hexdigest()
            name = f"vv_{safe_c[:100]}__{safe_l[:100]}_{fp}_{digest}"
        return name

    @classmethod
    def check_namespace_name(cls, name: object) -> None:
        """Milvus' rule for collection names: a letter or ``_`` first, then letters,
        digits and ``_``, at most 255 characters."""
        super().check_namespace_name(name)
        assert isinstance(name, str)
        if len(name) > _NAME_MAX:
            raise InvalidNamespaceName(name, cls.name, f"it is longer than {_NAME_MAX} characters")
        if not _NAME_RULE.fullmatch(name):
            raise InvalidNamespaceName(
                name, cls.name, "Milvus allows only letters, digits and '_', starting with a "
                "letter or '_'",
            )

    @classmethod
    def score_from_distance(cls, metric: Metric, distance: Any) -> Any:
        """COSINE and IP are similarities already; L2 is the squared distance: negated."""
        return -distance if metric == "l2" else distance

    @staticmethod
    def _alias_name(alias: str) -> str:
        if len(alias) <= _NAME_MAX and _NAME_RULE.fullmatch(alias):
            return alias
        digest = hashlib.blake2b(alias.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        return f"vv_alias_{_UNSAFE.sub('_', alias)[:100]}_{digest}"

    # -- errors ------------------------------------------------------------------------

    def _translate(self, exc: BaseException, what: str, namespace: str | None) -> VecverError:
        if isinstance(exc, VecverError):
            return exc
        where = f"milvus {what}" + (f" on {namespace!r}" if namespace else "")
        if isinstance(exc, MilvusException):
            message = str(exc.message or exc)
            lowered = message.lower()
            detail = f"{where} failed: {type(exc).__name__}: {_scrub(message)}"
            if namespace is not None and (
                exc.code == 100 or ("collection" in lowered and "not" in lowered and (
                    "found" in lowered or "exist" in lowered))
            ):
                return NamespaceNotFound(namespace)
            if (
                isinstance(exc, MilvusUnavailableException)
                or exc.retriable
                or exc.code in _TRANSIENT_CODES
                or any(w in lowered for w in _TRANSIENT_WORDS)
            ):
                return TransientBackendError(detail)
            return BackendError(detail)
        err = _remote.translate(exc, where, namespace=namespace)
        if type(err) is BackendError or type(err) is TransientBackendError:
            err.message = _scrub(err.message)
        return err

    @contextmanager
    def _translated(self, what: str, namespace: str | None = None) -> Iterator[None]:
        try:
            yield
        except NamespaceNotFound:
            if namespace is not None:
                self._specs.pop(namespace, None)
            raise
        except VecverError:
            raise
        except Exception as e:  # noqa: BLE001 - classified, never swallowed
            err = self._translate(e, what, namespace)
            if isinstance(err, NamespaceNotFound) and namespace is not None:
                self._specs.pop(namespace, None)  # dropped behind vecver's back
            raise err from e

    def _call(self, what: str, namespace: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (a client call on ``namespace``), loading the collection once when
        Milvus says it is not loaded (after a server restart or a release)."""
        with self._translated(what, namespace):
            try:
                return fn()
            except MilvusException as e:
                if e.code != _NOT_LOADED_CODE and "not loaded" not in str(e.message).lower():
                    raise
                self._client.load_collection(namespace, timeout=self._timeout)
                return fn()

    # -- namespaces --------------------------------------------------------------------

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        c = self._client
        with self._translated("create collection", spec.name):
            if c.has_collection(spec.name, timeout=self._timeout):
                return self._describe_namespace(spec.name)
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field(F_ID, DataType.VARCHAR, is_primary=True, max_length=_VARCHAR_MAX)
            schema.add_field(F_VECTOR, DataType.FLOAT_VECTOR, dim=spec.dimension)
            schema.add_field(F_TEXT, DataType.VARCHAR, max_length=_VARCHAR_MAX)
            schema.add_field(F_HAS_TEXT, DataType.BOOL)
            schema.add_field(F_METADATA, DataType.JSON)
            schema.add_field(FILTER_FIELD, DataType.JSON)
            schema.add_field(F_FP, DataType.VARCHAR, max_length=_VARCHAR_MAX)
            schema.add_field(F_HASH, DataType.VARCHAR, max_length=_VARCHAR_MAX)
            schema.add_field(F_AT, DataType.DOUBLE)
            index = c.prepare_index_params()
            index.add_index(
                field_name=F_VECTOR,
                index_type=self._index_type,
                metric_type=_METRICS[spec.metric],
                params=dict(self._index_params),
            )
            properties = {
                P_FORMAT: _FORMAT,
                P_FINGERPRINT: spec.fingerprint,
                P_METRIC: spec.metric,
                P_DIMENSION: str(spec.dimension),
            }
            try:
                c.create_collection(
                    spec.name,
                    schema=schema,
                    consistency_level="Strong",
                    properties=properties,
                    timeout=self._timeout,
                )
            except MilvusException as e:
                if "exist" not in str(e.message).lower():
                    raise
                return self._describe_namespace(spec.name)  # a concurrent creator won
            # the client's own waits poll every 0.5 s; an empty collection is indexed and
            # loaded in milliseconds, so ask without waiting and poll faster here
            c.create_index(spec.name, index, timeout=self._timeout, sync=False)
            c.load_collection(spec.name, timeout=self._timeout, _async=True)
            self._await_loaded(spec.name)
        self._specs[spec.name] = spec
        return spec

    def _await_loaded(self, name: str) -> None:
        deadline = time.monotonic() + self._timeout
        delay = 0.005
        while True:
            state = self._client.get_load_state(name, timeout=self._timeout).get("state")
            if state == LoadState.Loaded:
                return
            if time.monotonic() > deadline:
                raise TransientBackendError(
                    f"milvus collection {name!r} was not loaded within {self._timeout:.0f} s",
                    hint="the server may be busy; retry",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        with self._translated("describe collection", name):
            info = self._client.describe_collection(name, timeout=self._timeout)
        props = info.get("properties") or {}
        if props.get(P_FORMAT) is None or P_FINGERPRINT not in props:
            raise ForeignNamespace(name, self.name)
        metric = props.get(P_METRIC)
        dims = [f.get("params", {}).get("dim") for f in info.get("fields", [])
                if f.get("name") == F_VECTOR]  # fmt: skip
        if metric not in _METRICS or not dims:
            raise BackendError(f"milvus collection {name!r} has a damaged vecver spec: {props}")
        spec = NamespaceSpec(name, int(dims[0]), metric, str(props[P_FINGERPRINT]))
        self._specs[name] = spec
        return spec

    def _input_spec(self, namespace: str) -> NamespaceSpec:
        """The spec ``upsert`` and ``search`` validate against, from the cache every
        create and describe fills (one ``describe_collection`` round trip less per call;
        a namespace vecver never described is described first, so a foreign collection
        is still refused). The cache is safe: a namespace's name carries its
        fingerprint, Milvus itself refuses vectors of another dimension, and a
        collection dropped behind vecver's back answers "not found", which evicts it."""
        spec = self._specs.get(namespace)
        return spec if spec is not None else self._spec(namespace)

    def _list_namespaces(self) -> list[str]:
        with self._translated("list collections"):
            names = self._client.list_collections(timeout=self._timeout)
        out = []
        for n in names:
            try:
                self._describe_namespace(n)
            except (ForeignNamespace, NamespaceNotFound):
                continue
            out.append(n)
        return out

    def _drop_namespace(self, name: str) -> None:
        try:
            self._describe_namespace(name)
        except NamespaceNotFound:
            self._specs.pop(name, None)
            return
        c = self._client
        with self._translated("drop collection", name):
            for alias in c.list_aliases(name, timeout=self._timeout).get("aliases", []):
                c.drop_alias(alias, timeout=self._timeout)
            c.drop_collection(name, timeout=self._timeout)
        self._specs.pop(name, None)

    # -- data --------------------------------------------------------------------------

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        rows = []
        for r, v in zip(records, vectors, strict=True):
            _check_int64(r.id, r.metadata)
            st = r.stamp
            rows.append({
                F_ID: r.id,
                F_VECTOR: v.tolist(),
                F_TEXT: r.text if r.text is not None else "",
                F_HAS_TEXT: r.text is not None,
                F_METADATA: r.metadata,
                FILTER_FIELD: filter_keys(r.metadata),
                F_FP: st.fingerprint,
                F_HASH: st.source_hash,
                F_AT: float(st.written_at),
            })
        self._call(
            "upsert", namespace,
            lambda: self._client.upsert(namespace, rows, timeout=self._timeout),
        )

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        self._describe_namespace(namespace)  # never delete from a foreign collection
        expr = _ids_expr(ids)
        self._call(
            "delete", namespace,
            lambda: self._client.delete(namespace, filter=expr, timeout=self._timeout),
        )

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        return self._query_ids(namespace, ids, with_vectors, _RECORD_FIELDS)

    def _fetch_without_text(
        self, namespace: str, ids: Sequence[str], with_vectors: bool
    ) -> dict[str, Record]:
        """Neither the text nor its flag among the output fields."""
        return self._query_ids(namespace, ids, with_vectors, _STAMP_FIELDS)

    def _query_ids(self, namespace: str, ids: Sequence[str], with_vectors: bool,
                   record_fields: list[str]) -> dict[str, Record]:
        fields = record_fields + ([F_VECTOR] if with_vectors else [])
        expr = _ids_expr(ids)
        rows = self._call("fetch", namespace, lambda: self._client.query(
            namespace, filter=expr, output_fields=fields, limit=len(ids),
            consistency_level="Strong", timeout=self._timeout,
        ))  # fmt: skip
        out = {}
        for row in rows:
            rec = _record(row, with_vectors)
            out[rec.id] = rec
        return out

    def _scan(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool) -> ScanPage:
        return self._query_page(namespace, cursor, limit, with_vectors, _RECORD_FIELDS)

    def _scan_without_text(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        """As :meth:`_fetch_without_text`; the same query, so the same order."""
        return self._query_page(namespace, cursor, limit, with_vectors, _STAMP_FIELDS)

    def _query_page(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool,
                    record_fields: list[str]) -> ScanPage:
        fields = record_fields + ([F_VECTOR] if with_vectors else [])
        expr = f"{F_ID} > {string_literal(cursor if cursor is not None else '')}"
        window = min(limit + 1, _MAX_WINDOW)
        # ``iterator`` asks for primary-key order (which a pk cursor needs) on both the
        # server and Milvus Lite; the page is sorted again here, as a guard.
        rows = self._call("scan", namespace, lambda: self._client.query(
            namespace, filter=expr, output_fields=fields, limit=window, iterator="True",
            consistency_level="Strong", timeout=self._timeout,
        ))  # fmt: skip
        if not rows:
            self._describe_namespace(namespace)  # an empty page of a dropped namespace
        records = sorted((_record(r, with_vectors) for r in rows), key=lambda r: r.id)
        page_size = min(limit, window - 1)
        more = len(records) > page_size
        records = records[:page_size]
        return ScanPage(records, records[-1].id if more and records else None)

    def _count(self, namespace: str) -> int:
        rows = self._call("count", namespace, lambda: self._client.query(
            namespace, filter="", output_fields=["count(*)"], consistency_level="Strong",
            timeout=self._timeout,
        ))  # fmt: skip
        return int(rows[0]["count(*)"]) if rows else 0

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        spec = self._specs.get(namespace) or self._describe_namespace(namespace)
        expr = translate_filter(flt)
        topk = min(k, _MAX_WINDOW)
        params = dict(self._search_params)
        if self._index_type == "HNSW":
            params["ef"] = max(int(params.get("ef", 0)), topk)
        search_params = {"metric_type": _METRICS[spec.metric], "params": params}
        metric = spec.metric
        rescore = self._rescore
        # dot: how far Milvus' arithmetic may be from the exact score depends on the
        # stored vector's norm, which the distance does not tell: always re-scored
        upfront = rescore and metric == "dot"
        fields = _HIT_FIELDS + ([F_VECTOR] if upfront else [])
        data = [q.tolist() for q in queries]
        results = self._call("search", namespace, lambda: self._client.search(
            namespace, data=data, filter=expr, limit=topk, output_fields=fields,
            search_params=search_params, anns_field=F_VECTOR, consistency_level="Strong",
            timeout=self._timeout,
        ))  # fmt: skip
        negate = metric == "l2"  # score_from_distance: L2 is the squared distance
        out: list[list[Hit]] = []
        tied: dict[int, list[int]] = {}  # query -> positions of its hits in near ties
        for qi, row in enumerate(results):
            hits: list[Hit] = []
            vectors: dict[str, Any] = {}
            for hit in row:
                e = hit.get("entity") or {}
                metadata = e.get(F_METADATA)
                if isinstance(metadata, (str, bytes)):
                    metadata = json.loads(metadata)
                metadata = metadata if isinstance(metadata, dict) else dict(metadata or {})
                # a guard against a 64-bit key-hash collision: never return a non-match
                if flt is not None and not flt.matches(metadata):
                    continue
                doc_id = str(hit.get("id", e.get(F_ID)))
                if upfront:
                    vec = e.get(F_VECTOR)
                    if vec is None:
                        continue
                    vectors[doc_id] = vec
                distance = float(hit.get("distance", 0.0))
                hits.append(Hit(
                    doc_id, -distance if negate else distance,
                    e.get(F_TEXT) if e.get(F_HAS_TEXT) else None, metadata,
                    Stamp(str(e.get(F_FP)), doc_id, str(e.get(F_HASH)),
                          float(e.get(F_AT) or 0.0)),
                ))  # fmt: skip
            if upfront and metric == "dot":
                every = range(len(hits))
                out.append(_with_scores(
                    hits, every, _exact_at(metric, queries[qi], hits, every, vectors)))  # fmt: skip
                continue
            # Milvus' own distances, in vecver's convention; ties ordered by id
            hits.sort(key=_rank_key)
            pos = tied_positions(metric, queries[qi], hits) if rescore else []
            if pos:
                tied[qi] = pos
            out.append(hits)
        if tied:
            # near ties: those lists are re-scored from their hits' stored vectors, in
            # float32 as exact_scores does, so that the order of near ties (and their
            # scores) does not depend on the engine's arithmetic
            self._rescore_tied(namespace, metric, queries, tied, out)
        return out

    def _rescore_tied(
        self, namespace: str, metric: Metric, queries: Matrix, tied: Mapping[int, list[int]],
        out: list[list[Hit]],
    ) -> None:
        """Re-score the hits in near ties (``tied``: query -> positions in ``out[qi]``, a
        list scored from Milvus' distances) from their stored vectors, and sort those
        lists again, in place (:func:`~vecver.backends._ties.tied_positions`: the other
        hits keep the engine's scores, the order is that of the exact scores). The
        vectors are read without waiting for a new timestamp (Strong waits for the
        server's next time tick: about 5x the cost of the read here); the search has just
        served those rows at Strong, so the read sees them unless a replica behind it
        answers or a write came between. A hit whose vector read back does not give back
        the score the search gave it (:func:`~vecver.backends._ties.agrees`), or that is
        missing, is read again at Strong and its list re-scored from that (a hit deleted
        since the search is dropped, as before)."""
        ids = sorted({out[qi][j].id for qi, pos in tied.items() for j in pos})
        vectors = self._vectors_of(namespace, ids, "Eventually")
        suspect: set[str] = {i for i in ids if i not in vectors}
        exact: dict[int, dict[int, float]] = {}
        for qi, pos in tied.items():
            exact[qi] = scores = _exact_at(metric, queries[qi], out[qi], pos, vectors)
            ok = agrees(metric, queries[qi], [out[qi][j].score for j in scores],
                        list(scores.values()))  # fmt: skip
            suspect.update(out[qi][j].id for j, good in zip(scores, ok) if not good)
        if suspect:
            for doc_id in suspect:
                vectors.pop(doc_id, None)
            vectors.update(self._vectors_of(namespace, sorted(suspect), "Strong"))
            for qi, pos in tied.items():
                if any(out[qi][j].id in suspect for j in pos):
                    exact[qi] = _exact_at(metric, queries[qi], out[qi], pos, vectors)
        for qi, pos in tied.items():
            out[qi] = _with_scores(out[qi], pos, exact[qi])

    def _vectors_of(
        self, namespace: str, ids: Sequence[str], consistency: str = "Strong"
    ) -> dict[str, np.ndarray]:
        """The stored vectors of those of ``ids`` that exist (at ``consistency``)."""
        out: dict[str, np.ndarray] = {}

        def query(chunk: Sequence[str]) -> Callable[[], Any]:
            return lambda: self._client.query(
                namespace, filter=_ids_expr(chunk), output_fields=[F_ID, F_VECTOR],
                limit=len(chunk), consistency_level=consistency, timeout=self._timeout)

        for lo in range(0, len(ids), _ID_CHUNK):
            for r in self._call("fetch", namespace, query(ids[lo : lo + _ID_CHUNK])):
                if r.get(F_VECTOR) is not None:
                    out[str(r[F_ID])] = np.asarray(r[F_VECTOR], dtype=np.float32)
        return out

    # -- adopted collections -----------------------------------------------------------
    # A collection other code created: its schema stays as it is (primary key, one float
    # vector field, scalar fields, the dynamic field if enabled); vecver writes rows of
    # that schema only (see vecver.backends.external).

    _META = "$meta"

    def _describe_external(self, name: str) -> ExternalCollection:
        if self._alias_name(name) in self._aliases() or name in self._aliases():
            raise NamespaceNotFound(name)  # an alias, not a collection
        c = self._client
        with self._translated("describe collection", name):
            info = c.describe_collection(name, timeout=self._timeout)
            indexes = c.list_indexes(name, timeout=self._timeout)
        fields: dict[str, str] = {}
        key_field = ""
        id_type: IdType = "str"
        vectors: list[tuple[str, int]] = []
        for f in info.get("fields", []):
            ftype = f.get("type")
            tname = getattr(ftype, "name", str(ftype))
            if f.get("is_primary"):
                key_field = str(f["name"])
                id_type = "int" if ftype == DataType.INT64 else "str"
                if f.get("auto_id") or info.get("auto_id"):
                    tname += ":auto_id"
            elif ftype == DataType.FLOAT_VECTOR:
                vectors.append((str(f["name"]), int(f.get("params", {}).get("dim", 0))))
            fields[str(f["name"])] = tname
        if len(vectors) != 1:
            raise BackendError(
                f"milvus collection {name!r} has {len(vectors)} float vector fields; vecver "
                "adopts a collection with exactly one",
            )
        vector_field, dimension = vectors[0]
        metric: Metric | None = None
        for index_name in indexes:
            with self._translated("describe index", name):
                desc = c.describe_index(name, index_name, timeout=self._timeout) or {}
            if desc.get("field_name", vector_field) == vector_field:
                metric = {v: k for k, v in _METRICS.items()}.get(
                    str(desc.get("metric_type", "")).upper())  # type: ignore[assignment]
        if metric is None:
            raise BackendError(
                f"milvus collection {name!r} has no index with a cosine, IP or L2 metric on "
                f"{vector_field!r}, so its metric is unknown",
                hint="create the collection's vector index first",
            )
        props = info.get("properties") or {}
        dynamic = bool(info.get("enable_dynamic_field"))
        layout = Layout(name, dimension, metric, "", None, None, id_type,
                        vector_field=vector_field, fields=fields, key_field=key_field,
                        schemaless=dynamic)  # fmt: skip
        count = self._count_external(layout)
        return ExternalCollection(
            name, dimension, metric, count, fields, id_type, vector_field=vector_field,
            schemaless=dynamic, text_slot=False, vecver=props.get(P_FORMAT) is not None,
            key_field=key_field,
            auto_key=fields.get(key_field, "").endswith(":auto_id"),
        )

    @classmethod
    def _schema(cls, layout: Layout) -> tuple[str, str, list[str], bool]:
        """(key field, vector field, scalar fields, dynamic) of an adopted collection."""
        key = layout.key_field or ""
        vf = layout.vector_field or ""
        scalars = [f for f in layout.fields if f not in (key, vf)]
        return key, vf, scalars, layout.schemaless

    def _output(self, layout: Layout, with_vectors: bool) -> list[str]:
        key, vf, scalars, dynamic = self._schema(layout)
        return [key, *scalars] + ([vf] if with_vectors else []) + ([self._META] if dynamic else [])

    def _raw(self, layout: Layout, row: Mapping[str, Any], with_vectors: bool) -> RawPoint:
        key, vf, _, _ = self._schema(layout)
        payload = {k: v for k, v in row.items() if k not in (key, vf, self._META)}
        meta = row.get(self._META)
        if isinstance(meta, Mapping):
            payload.update(meta)
        vec = None
        if with_vectors and row.get(vf) is not None:
            vec = np.asarray(row[vf], dtype=np.float32).copy()
        return RawPoint(row[key], vec, payload)

    def _keys_expr(self, layout: Layout, keys: Sequence[Key]) -> str:
        key = self._schema(layout)[0]
        return f"{key} in {literal_list(list(keys))}"

    def _query_external(self, layout: Layout, expr: str, limit: int,
                        with_vectors: bool, iterator: bool = False) -> list[RawPoint]:
        fields = self._output(layout, with_vectors)
        extra: dict[str, Any] = {"iterator": "True"} if iterator else {}
        rows = self._call("query", layout.name, lambda: self._client.query(
            layout.name, filter=expr, output_fields=fields, limit=limit,
            consistency_level="Strong", timeout=self._timeout, **extra,
        ))  # fmt: skip
        return [self._raw(layout, r, with_vectors) for r in rows]

    def _scan_external(
        self, layout: Layout, cursor: str | None, limit: int, with_vectors: bool
    ) -> tuple[list[RawPoint], str | None]:
        key = self._schema(layout)[0]
        if layout.id_type == "int":
            # the server's parser cannot read -2**63: an object keyed exactly so is not
            # scanned (vecver itself never writes negative keys)
            if cursor is not None and not re.fullmatch(r"-?[0-9]{1,19}", cursor):
                raise BackendError(f"{cursor!r} is not a scan cursor of {layout.name!r}",
                                   hint="pass the next_cursor of a previous page")
            expr = (f"{key} >= {-_INT64 + 1}" if cursor is None
                    else f"{key} > {int(cursor)}")  # fmt: skip
        else:
            expr = f"{key} > {string_literal(cursor if cursor is not None else '')}"
        window = min(limit + 1, _MAX_WINDOW)
        points = self._query_external(layout, expr, window, with_vectors, iterator=True)
        points.sort(key=lambda p: p.key)
        page_size = min(limit, window - 1)
        more = len(points) > page_size
        points = points[:page_size]
        return points, (str(points[-1].key) if more and points else None)

    def _get_external(
        self, layout: Layout, keys: Sequence[Key], with_vectors: bool
    ) -> list[RawPoint]:
        return self._query_external(layout, self._keys_expr(layout, keys), len(keys),
                                    with_vectors)  # fmt: skip

    def _find_external(
        self, layout: Layout, field: str, values: Sequence[str], with_vectors: bool
    ) -> list[RawPoint]:
        key, _, scalars, dynamic = self._schema(layout)
        if field == key:
            keys: list[Key] = [int(v) for v in values if re.fullmatch(r"-?[0-9]{1,19}", v)] \
                if layout.id_type == "int" else list(values)  # fmt: skip
            return self._get_external(layout, keys, with_vectors) if keys else []
        ftype = layout.fields.get(field)
        if (ftype is None and not dynamic) or not _NAME_RULE.fullmatch(field):
            raise AdoptedFieldMissing(layout.name, field, "id", [], fields=scalars)
        ints: list[Key] = [int(v) for v in values if re.fullmatch(r"-?[0-9]{1,18}", v)]
        terms = []
        if ftype is None or ftype == "VARCHAR":
            terms.append(f"{field} in {literal_list(list(values))}")
        if ints and (ftype is None or ftype.startswith("INT")):
            terms.append(f"{field} in {literal_list(ints)}")
        if not terms:
            return []
        expr = " or ".join(f"({t})" for t in terms)
        return self._query_external(layout, expr, _MAX_WINDOW, with_vectors)

    def _put_external(self, layout: Layout, points: Sequence[RawPoint]) -> None:
        key, vf, scalars, dynamic = self._schema(layout)
        rows = []
        for p in points:
            missing = [f for f in scalars if f not in p.payload]
            extra = [f for f in p.payload if f not in scalars]
            if missing or (extra and not dynamic):
                doc = p.payload.get(layout.id_field) if layout.id_field else p.key
                raise AdoptedRowRefused(
                    str(doc), layout.name, missing, [] if dynamic else extra,
                    [f for f in scalars if f not in layout.own_fields],
                )
            _check_int64(str(p.key), p.payload)
            rows.append({key: p.key, vf: np.asarray(p.vector).tolist(), **p.payload})
        self._call("upsert", layout.name,
                   lambda: self._client.upsert(layout.name, rows, timeout=self._timeout))

    def _delete_external(self, layout: Layout, keys: Sequence[Key]) -> None:
        expr = self._keys_expr(layout, keys)
        self._call("delete", layout.name,
                   lambda: self._client.delete(layout.name, filter=expr, timeout=self._timeout))

    def _search_external(
        self, layout: Layout, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[tuple[RawPoint, float]]]:
        key, vf, scalars, dynamic = self._schema(layout)
        expr = adopted_filter(flt, {f: layout.fields[f] for f in scalars}, key)
        topk = min(k, _MAX_WINDOW)
        params = dict(self._search_params)
        params["ef"] = max(int(params.get("ef", 0)), topk)
        search_params = {"metric_type": _METRICS[layout.metric], "params": params}
        fields = self._output(layout, True)
        results = self._call("search", layout.name, lambda: self._client.search(
            layout.name, data=[q.tolist() for q in queries], filter=expr, limit=topk,
            output_fields=fields, search_params=search_params, anns_field=vf,
            consistency_level="Strong", timeout=self._timeout,
        ))  # fmt: skip
        out: list[list[tuple[RawPoint, float]]] = []
        for qi, row in enumerate(results):
            pts = []
            for hit in row:
                entity = dict(hit.get("entity") or {})
                entity[key] = hit.get("id", entity.get(key))
                pts.append(self._raw(layout, entity, True))
            if not pts:
                out.append([])
                continue
            mat = np.stack([np.asarray(p.vector, dtype=np.float32) for p in pts])
            scores = exact_scores(layout.metric, queries[qi : qi + 1], mat)[0]
            order = sorted(range(len(pts)), key=lambda j: (-float(scores[j]), str(pts[j].key)))
            for j in order:
                pts[j].vector = None
            out.append([(pts[j], float(scores[j])) for j in order])
        return out

    def _count_external(self, layout: Layout) -> int:
        rows = self._call("count", layout.name, lambda: self._client.query(
            layout.name, filter="", output_fields=["count(*)"], consistency_level="Strong",
            timeout=self._timeout,
        ))  # fmt: skip
        return int(rows[0]["count(*)"]) if rows else 0

    # -- aliases -----------------------------------------------------------------------

    def _aliases(self) -> list[str]:
        with self._translated("list aliases"):
            return list(self._client.list_aliases(timeout=self._timeout).get("aliases", []))

    def _set_alias(self, alias: str, namespace: str) -> None:
        name = self._alias_name(alias)
        with self._translated("set alias", namespace):
            if name in self._aliases():
                self._client.alter_alias(namespace, name, timeout=self._timeout)
                return
            try:
                self._client.create_alias(namespace, name, timeout=self._timeout)
            except MilvusException as e:
                if "exist" not in str(e.message).lower() or "alias" not in str(e.message).lower():
                    raise
                self._client.alter_alias(namespace, name, timeout=self._timeout)

    def _get_alias(self, alias: str) -> str | None:
        name = self._alias_name(alias)
        if name not in self._aliases():
            return None
        with self._translated("describe alias"):
            try:
                info = self._client.describe_alias(name, timeout=self._timeout)
            except MilvusException as e:
                if "not" in str(e.message).lower():
                    return None  # dropped in between
                raise
        target = info.get("collection_name")
        return str(target) if target else None

    def _drop_alias(self, alias: str) -> None:
        name = self._alias_name(alias)
        if name not in self._aliases():
            return
        with self._translated("drop alias"):
            try:
                self._client.drop_alias(name, timeout=self._timeout)
            except MilvusException as e:
                if "not" not in str(e.message).lower():
                    raise


class MilvusLiteBackend(MilvusBackend):
    """:class:`MilvusBackend` on a Milvus Lite file (``uri`` ending in ``.db``): the same
    layout and behaviour, offline; one process at a time per file."""

    capabilities = dataclasses.replace(
        MilvusBackend.capabilities,
        namespace_kind="Milvus Lite collection",
        shared_between_processes=False,
    )


# -- helpers ----------------------------------------------------------------------------


def _rank_key(h: Hit) -> tuple[float, str]:
    """Best first, ties by id."""
    return (-h.score, h.id)


def _exact_at(
    metric: Metric, row: np.ndarray, hits: Sequence[Hit], positions: Iterable[int],
    vectors: Mapping[str, Any],
) -> dict[int, float]:
    """Position -> :func:`~vecver.backends.base.exact_scores` of the hit's vector, for the
    hits at ``positions`` that have one in ``vectors`` (by id)."""
    at = [j for j in positions if hits[j].id in vectors]
    if not at:
        return {}
    mat = np.asarray([vectors[hits[j].id] for j in at], dtype=np.float32)
    return dict(zip(at, exact_scores(metric, row[None, :], mat)[0].tolist()))


def _with_scores(
    hits: Sequence[Hit], positions: Iterable[int], scores: Mapping[int, float]
) -> list[Hit]:
    """``hits`` with the hits at ``positions`` given ``scores`` (by position; one at
    ``positions`` without a score is dropped: it had no vector, deleted since the
    search), best first, ties by id."""
    gone = {j for j in positions if j not in scores}
    out = [h if j not in scores else Hit(h.id, scores[j], h.text, h.metadata, h.stamp)
           for j, h in enumerate(hits) if j not in gone]  # fmt: skip
    out.sort(key=_rank_key)
    return out


def _ids_expr(ids: Sequence[str]) -> str:
    return f"{F_ID} in [" + ", ".join(string_literal(i) for i in ids) + "]"


def _record(row: Mapping[str, Any], with_vectors: bool) -> Record:
    doc_id = str(row[F_ID])
    vec = None
    if with_vectors and row.get(F_VECTOR) is not None:
        vec = np.asarray(row[F_VECTOR], dtype=np.float32).copy()
    text = row.get(F_TEXT) if row.get(F_HAS_TEXT) else None
    metadata = row.get(F_METADATA)
    if isinstance(metadata, (str, bytes)):
        metadata = json.loads(metadata)
    stamp = Stamp(str(row.get(F_FP)), doc_id, str(row.get(F_HASH)), float(row.get(F_AT) or 0.0))
    return Record(doc_id, vec, text, dict(metadata or {}), stamp)


def _check_int64(doc_id: str, value: Any, key: str = "") -> None:
    """``UnsupportedMetadata`` for an int Milvus' JSON cannot hold (beyond int64)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise UnsupportedMetadata(doc_id, key, "int beyond 64 bits", ["int64"], "milvus")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_int64(doc_id, v, key or str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_int64(doc_id, v, key)


_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")
_TOKEN_RE = re.compile(r"(token|password|authorization)([=:]\s*)\S+", re.IGNORECASE)


def _scrub(message: str) -> str:
    """A client message with anything that looks like a credential cut out."""
    return _TOKEN_RE.sub(r"\1\2***", re.sub(r"://[^/@\s]*@", "://", message))
