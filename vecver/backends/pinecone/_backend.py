"""The Pinecone backend: one Pinecone namespace per space, inside the user's index."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pinecone import Pinecone

from ...errors import (
    ConfigError,
    InvalidInput,
    InvalidNamespaceName,
    LimitExceeded,
    NamespaceNotFound,
    TransientBackendError,
    UnsupportedMetadata,
    VecverError,
    WriteNotVisible,
)
from ...filters import Filter
from ...types import Hit, Matrix, Metric, NamespaceSpec, Record, ScanPage, Stamp
from .. import _remote
from ..base import Backend
from ..capabilities import Capabilities
from ..external import ExternalCollection, Layout, RawPoint
from ._filters import JSON_PREFIX, NOTHING, json_key, translate_filter

__all__ = ["PineconeBackend"]

#: Pinecone's per-vector metadata limit, and what vecver leaves of it to the user.
METADATA_LIMIT = 40_960
_REQUEST_LIMIT = 2 * 1024 * 1024 - 64 * 1024  # 2 MiB per request, with room for the envelope
_LIST_PAGE = 100
#: ids per fetch request when a read of more ids is split into concurrent requests
_FETCH_CHUNK = 100
#: concurrent fetch requests of one backend object at most
_FETCH_WORKERS = 4
_MAX_TOP_K = 10_000
_ID_MAX = 512
_HASH_PREFIX = "vvh_"
#: An id no record has (document ids that are not printable ASCII are hashed to ``vvh_``).
_PROBE_ID = _HASH_PREFIX + "probe"
#: The namespace of each index holding one record per vecver namespace (its spec).
REGISTRY = "__vecver__"
_FORMAT = "1"
_METRICS: dict[str, str] = {"cosine": "cosine", "dot": "dotproduct", "l2": "euclidean"}
_SHORT: dict[str, str] = {"cosine": "cos", "dot": "dot", "l2": "l2"}
_FROM_PINECONE = {v: k for k, v in _METRICS.items()}
_INDEX_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_EXACT = 2**53
_RESERVED = _remote.RESERVED_PREFIX
_JSON_CUT = len(JSON_PREFIX)
_KEY_ID, _KEY_FP, _KEY_HASH = _remote.KEY_ID, _remote.KEY_FP, _remote.KEY_HASH
_KEY_AT, _KEY_TEXT = _remote.KEY_AT, _remote.KEY_TEXT
#: stamps kept for reuse by one backend object (:meth:`PineconeBackend._stamp`)
_STAMP_CACHE = 8192
#: vecver's own fields of a stored vector's metadata (left out of the user's)
_OWN_KEYS = frozenset({_remote.KEY_ID, _remote.KEY_FP, _remote.KEY_HASH, _remote.KEY_AT,
                       _remote.KEY_TEXT, _remote.KEY_INTS, "_vv_probe"})  # fmt: skip
#: compact JSON encoders (built once: json.dumps with options builds one per call)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"))
_KEY_RE = re.compile(r"(api[-_ ]?key|authorization)([\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+", re.I)


def _pid(doc_id: str) -> str:
    """The Pinecone id of a document id: the id itself when it is printable ASCII of at
    most 512 characters (and does not start with ``vvh_``), else ``vvh_`` + a BLAKE2b
    hash (the original id travels in the metadata and is checked on read)."""
    if (
        len(doc_id) <= _ID_MAX and doc_id.isascii() and doc_id.isprintable()
        and not doc_id.startswith(_HASH_PREFIX)
    ):  # fmt: skip
        return doc_id
    return _HASH_PREFIX + hashlib.blake2b(doc_id.encode("utf-8"), digest_size=20).hexdigest()


@dataclass
class _Where:
    """Where a namespace lives: its index (name and data-plane client) and spec; and,
    per namespace of that index, the highest log position a probe found reconciled
    (valid for as long as this location is: a namespace found again starts afresh)."""

    index: str
    client: Any
    spec: NamespaceSpec
    reconciled: dict[str, int] = field(default_factory=dict)


class PineconeBackend(Backend):
    """Namespaces as Pinecone namespaces, through the official ``pinecone`` SDK.

    Layout: every space whose dimension and metric are those of the user's index
    (``index``) is one Pinecone namespace inside it; a space with another dimension or
    metric lives in a separate index named ``{index}-{dimension}-{cos|dot|l2}`` (created
    on demand, serverless in ``cloud``/``region``; never deleted by vecver). The user's
    index itself is created on first use when it does not exist and ``create_index`` is
    true. Each index vecver uses holds a namespace ``__vecver__`` with one record per
    vecver namespace (its fingerprint, dimension and metric): that record is what makes a
    namespace exist for vecver (Pinecone namespaces appear and vanish with their records).

    Records: a document id is the Pinecone id when it is printable ASCII of at most 512
    characters, else a hash (the id travels in the metadata). Metadata holds the user's
    fields, the stamp and the text
    (:class:`~vecver.backends._remote.PayloadCodec`, ints restored from Pinecone's
    doubles). Pinecone takes at most 40 KiB of metadata per vector: a record whose user
    metadata, text and stamp together do not fit is **refused** with
    :class:`~vecver.errors.LimitExceeded` before anything of its call is sent (the text is
    not stored elsewhere). Strings, numbers and booleans are stored as Pinecone metadata;
    lists, objects and nulls (which Pinecone cannot hold, or filters with other
    semantics) as JSON text under a reserved key: they come back unchanged and, as
    vecver's filter semantics say, match no condition. Ints beyond 2**53 are refused
    (:class:`~vecver.errors.UnsupportedMetadata`): Pinecone keeps numbers as doubles.

    No aliases: the active space lives in vecver's manifest. Filters are translated to
    Pinecone's filter language (:func:`._filters.translate_filter`); a range with string
    bounds, which Pinecone cannot evaluate, is applied by the backend to Pinecone's
    results (asking for more of them, up to 10,000, then an exact scan). Scans page with
    ``list`` (100 ids per request) and ``fetch``; the cursor is Pinecone's pagination
    token. A read of more than 100 ids (a fetch, a scan page of several ``list`` pages)
    is sent as fetch requests of 100 ids, at most 4 at once per backend object (a scan
    fetches each ``list`` page while it lists the next); its result is that of one
    request, and any request failing fails the read. Scores: cosine and dot product as
    Pinecone returns them, euclidean negated (it returns the squared distance).

    Consistency: Pinecone is eventually consistent. After every write the backend waits
    until queries have caught up with it: each write answer carries the log position it
    committed at, each query answer how far the index has caught up
    (``x-pinecone-lsn-committed`` / ``-reconciled``); the wait polls a one-result query
    (the SDK's delete reports no position: a no-op update of an id vecver never writes
    follows it and does). Without those headers it falls back to the base class's fetch
    polling. A namespace another process dropped is noticed on the next describe, list,
    count, scan, or a search that finds nothing; a process that cached it earlier may
    still write into it (its records are then not listed by vecver).

    Adopting (``vecver adopt``): a namespace of the user's index that other code filled
    (ids, metadata) can become a space as it is; filters on it are checked on the
    payloads Pinecone returns (so a list keeps no "contains" meaning there either).

    Errors: 429 and 5xx become :class:`~vecver.errors.TransientBackendError` carrying the
    server's ``Retry-After`` (the official SDK itself retries up to 3 times first).
    A call over 2 MiB is sent as several requests, in order (each all-or-nothing; after a
    failure the earlier ones are written: writes are idempotent, retry the call).

    The API key comes from ``api_key`` or the environment variable named ``api_key_env``
    (``PINECONE_API_KEY``); it is never shown: not in ``repr``, logs or errors.
    ``host`` is the control-plane URL (the emulator's, or None for Pinecone's).
    """

    name = "pinecone"
    capabilities = Capabilities(
        native_alias=False,
        namespace_kind="Pinecone namespace (a separate index per dimension and metric)",
        max_batch=1000,
        max_fetch_ids=1000,
        max_delete_ids=1000,
        max_metadata_bytes=METADATA_LIMIT,
        max_text_bytes=METADATA_LIMIT,
        consistency="eventual",
        visibility_timeout=60.0,
        persistent=True,
        shared_between_processes=True,
        remote_reads=True,
    )

    def __init__(
        self,
        index: str = "",
        *,
        host: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "PINECONE_API_KEY",
        index_host: str | None = None,
        create_index: bool = True,
        cloud: str = "aws",
        region: str = "us-east-1",
        timeout: float = 30.0,
        visibility_timeout: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(index, str) or not _INDEX_NAME.fullmatch(index) or len(index) > 45:
            raise ConfigError(
                f"the pinecone backend needs the name of an index, got {index!r}",
                hint='set index = "my-index" (lowercase letters, digits and "-", at most 45)',
            )
        key = api_key or os.environ.get(api_key_env, "")
        if not key:
            raise ConfigError(
                "the pinecone backend has no API key",
                hint=f"set the environment variable {api_key_env} (or api_key_env to the "
                "variable holding it)",
            )
        self._index = index
        self._host = host
        self._cloud, self._region = cloud, region
        self._create = bool(create_index)
        self._timeout = float(timeout)
        default = self.capabilities.visibility_timeout
        self._vis_timeout = float(visibility_timeout) if visibility_timeout else default
        self._codec = _remote.PayloadCodec(record_ints=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._clients: dict[str, Any] = {}
        self._where: dict[str, _Where] = {}
        self._known: list[str] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._stamps: dict[tuple[str, str, str, float], Stamp] = {}
        with self._translated("connect"):
            kwargs: dict[str, Any] = {"api_key": key, "timeout": self._timeout}
            if host:
                kwargs["host"] = host
            self._pc = Pinecone(**kwargs)
            if index_host:
                self._clients[index] = self._pc.index(host=index_host)

    def __repr__(self) -> str:
        return f"PineconeBackend(index={self._index!r}, host={self._host!r})"

    def close(self) -> None:
        if not self.closed:
            with self._lock:
                pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            for c in list(self._clients.values()):
                with contextlib.suppress(Exception):  # closing is best effort
                    c.close()
            with contextlib.suppress(Exception):
                self._pc.close()
        super().close()

    # -- naming ------------------------------------------------------------------------

    @classmethod
    def check_namespace_name(cls, name: object) -> None:
        """The base rule; the registry namespace ``__vecver__`` is vecver's own."""
        super().check_namespace_name(name)
        if name == REGISTRY:
            raise InvalidNamespaceName(name, cls.name, "it is the name of vecver's registry")

    @classmethod
    def score_from_distance(cls, metric: Metric, distance: Any) -> Any:
        """Euclidean scores are squared distances: negated; others are similarities."""
        return -distance if metric == "l2" else distance

    def index_for(self, dimension: int, metric: str) -> str:
        """The index holding spaces of ``dimension`` and ``metric``: the user's index when
        they match it (or it does not exist yet), else ``{index}-{dimension}-{metric}``."""
        main = self._describe_index(self._index)
        if main is None or main == (dimension, metric):
            return self._index
        suffix = f"-{dimension}-{_SHORT[metric]}"
        name = self._index + suffix
        if len(name) > 45:
            digest = hashlib.blake2b(name.encode(), digest_size=3).hexdigest()
            name = f"{self._index[: 45 - len(suffix) - 7]}-{digest}{suffix}"
        return name

    # -- errors ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translated(self, what: str, namespace: str | None = None) -> Iterator[None]:
        try:
            yield
        except VecverError:
            raise
        except Exception as e:  # noqa: BLE001 - classified here, never swallowed
            raise self._error(e, what, namespace) from None

    @staticmethod
    def _error(e: Exception, what: str, namespace: str | None = None) -> Exception:
        """The vecver error a client exception of ``what`` becomes (API keys cut out)."""
        err = _remote.translate(e, f"pinecone {what}", namespace=namespace)
        if hasattr(err, "message") and isinstance(err.message, str):
            err.message = _scrub(err.message)
        return err

    # -- indexes -----------------------------------------------------------------------

    def _describe_index(self, name: str) -> tuple[int, str] | None:
        """(dimension, vecver metric) of index ``name``, or None when it does not exist;
        connects its data-plane client."""
        from pinecone.errors import NotFoundError

        with self._translated("describe index"):
            try:
                model = self._pc.indexes.describe(name)
            except NotFoundError:
                return None
        dense = [f for f in _fields(model) if getattr(f, "dimension", None)]
        if not dense:
            raise ConfigError(
                f"pinecone index {name!r} has no dense vector field",
                hint="point the pinecone backend at a dense index (or a new name)",
            )
        with self._lock:
            if name not in self._clients and model.host:
                self._clients[name] = self._pc.index(host=model.host)
        metric = _FROM_PINECONE.get(str(dense[0].metric), "cosine")
        return int(dense[0].dimension), metric

    def _client(self, name: str) -> Any:
        with self._lock:
            c = self._clients.get(name)
        if c is None:
            if self._describe_index(name) is None:
                raise NamespaceNotFound(name)
            c = self._clients[name]
        return c

    def _ensure_index(self, dimension: int, metric: str) -> str:
        name = self.index_for(dimension, metric)
        if self._describe_index(name) is not None:
            return name
        if name == self._index and not self._create:
            raise ConfigError(
                f"pinecone index {name!r} does not exist", hint="create it, or set create_index"
            )
        from pinecone.errors import ConflictError

        # a ConflictError: created concurrently
        with self._translated("create index"), contextlib.suppress(ConflictError):
            self._pc.indexes.create(
                name=name, dimension=dimension, metric=_METRICS[metric],
                deployment={"deployment_type": "managed", "cloud": self._cloud,
                            "region": self._region},
            )  # fmt: skip
        if self._describe_index(name) is None:
            raise NamespaceNotFound(name)
        return name

    def _indexes(self) -> list[str]:
        """The indexes vecver uses: the user's and the per-dimension ones."""
        with self._translated("list indexes"):
            names = [m.name for m in self._pc.indexes.list()]
        prefix = self._index + "-"
        mine = [n for n in names if n == self._index or (
            n.startswith(prefix) and n.rsplit("-", 1)[-1] in _SHORT.values())]  # fmt: skip
        with self._lock:
            self._known = list(mine)
        return mine

    # -- the registry ------------------------------------------------------------------

    def _registry_get(self, index: str, name: str) -> NamespaceSpec | None:
        client = self._client(index)
        with self._translated("fetch", REGISTRY):
            got = client.fetch(ids=[_pid(name)], namespace=REGISTRY)
        vec = got.vectors.get(_pid(name))
        if vec is None:
            return None
        md = vec.metadata or {}
        if md.get("_vv_ns") != name:
            return None
        return NamespaceSpec(
            name, int(md["_vv_dim"]), str(md["_vv_metric"]), str(md["_vv_fp"])  # type: ignore[arg-type]
        )

    def _find(self, name: str) -> _Where | None:
        """Where namespace ``name`` lives now, read from the registries (the indexes known
        to this object first; the index list is re-read only when those lack it)."""
        with self._lock:
            cached = self._where.get(name)
            known = list(self._known or [])
        order = ([cached.index] if cached else []) + [i for i in known if not cached
                                                       or i != cached.index]  # fmt: skip
        tried: set[str] = set()
        for fresh in (False, True):
            if fresh:
                order = [i for i in self._indexes() if i not in tried]
            for index in order:
                tried.add(index)
                try:
                    spec = self._registry_get(index, name)
                except NamespaceNotFound:
                    continue  # the index was deleted
                if spec is not None:
                    w = _Where(index, self._client(index), spec)
                    with self._lock:
                        self._where[name] = w
                    return w
        with self._lock:
            self._where.pop(name, None)
        return None

    def _located(self, name: str) -> _Where:
        with self._lock:
            w = self._where.get(name)
        if w is None:
            w = self._find(name)
        if w is None:
            raise NamespaceNotFound(name)
        return w

    # -- namespaces --------------------------------------------------------------------

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        have = self._find(spec.name)
        if have is not None:
            return have.spec
        index = self._ensure_index(spec.dimension, spec.metric)
        client = self._client(index)
        probe = np.zeros(spec.dimension, np.float32)
        probe[0] = 1.0
        md = {"_vv_ns": spec.name, "_vv_dim": spec.dimension, "_vv_metric": spec.metric,
              "_vv_fp": spec.fingerprint, "_vv_format": _FORMAT}  # fmt: skip
        with self._translated("create namespace", spec.name):
            r = client.upsert(vectors=[{"id": _pid(spec.name), "values": probe.tolist(),
                                        "metadata": md}], namespace=REGISTRY)  # fmt: skip
        w = _Where(index, client, spec)
        self._wait_lsn(w, REGISTRY, _lsn(r))
        with self._lock:
            self._where[spec.name] = w
        return spec

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        w = self._find(name)
        if w is None:
            raise NamespaceNotFound(name)
        return w.spec

    def _input_spec(self, namespace: str) -> NamespaceSpec:
        # the cached location (the server checks the dimension of what is written)
        return self._located(namespace).spec

    def _list_namespaces(self) -> list[str]:
        out: list[str] = []
        for index in self._indexes():
            client = self._client(index)
            token: str | None = None
            while True:
                with self._translated("list", REGISTRY):
                    try:
                        page = client.list_paginated(namespace=REGISTRY, limit=_LIST_PAGE,
                                                     pagination_token=token)  # fmt: skip
                    except Exception as e:  # noqa: BLE001 - an empty index has no registry
                        if _remote.classify(e) == "not_found":
                            break
                        raise
                ids = [v.id for v in page.vectors if v.id]
                if ids:
                    with self._translated("fetch", REGISTRY):
                        got = client.fetch(ids=ids, namespace=REGISTRY)
                    out.extend(
                        str(v.metadata["_vv_ns"]) for v in got.vectors.values()
                        if v.metadata and "_vv_ns" in v.metadata
                    )  # fmt: skip
                token = page.pagination.next if page.pagination else None
                if not token:
                    break
        return out

    def _drop_namespace(self, name: str) -> None:
        w = self._find(name)
        if w is None:
            return
        from pinecone.errors import NotFoundError

        # a NotFoundError: the namespace was never written
        with self._translated("delete namespace", name), contextlib.suppress(NotFoundError):
            w.client.delete_namespace(namespace=name)
        with self._translated("delete", REGISTRY):
            r = w.client.delete(ids=[_pid(name)], namespace=REGISTRY)
        with self._lock:
            self._where.pop(name, None)
        self._wait_lsn(w, REGISTRY, _lsn(r))
        self._wait_gone(w, name)

    def _wait_gone(self, w: _Where, name: str) -> None:
        """Until a list of the dropped namespace shows nothing (its deletion is
        asynchronous)."""
        start, delay = time.monotonic(), 0.002
        while True:
            with self._translated("list", name):
                try:
                    page = w.client.list_paginated(namespace=name, limit=1)
                except Exception as e:  # noqa: BLE001
                    if _remote.classify(e) == "not_found":
                        return
                    raise
            if not page.vectors:
                return
            waited = time.monotonic() - start
            if waited >= self._vis_timeout:
                raise WriteNotVisible(name, "drop", len(page.vectors), waited)
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    # -- data --------------------------------------------------------------------------

    def _encode(self, record: Record, vector: np.ndarray) -> tuple[dict[str, Any], int]:
        """The Pinecone vector of ``record`` and an upper bound of the bytes its metadata
        takes in a request (its compact JSON, non-ASCII escaped)."""
        md = self._codec.encode(record)
        if md.get(_remote.KEY_TEXT) is None:
            md.pop(_remote.KEY_TEXT, None)
        for k, v in list(md.items()):
            if k.startswith(_remote.RESERVED_PREFIX):
                continue
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > _EXACT:
                raise UnsupportedMetadata(record.id, k, "int beyond 2**53", ["int up to 2**53"],
                                          self.name)  # fmt: skip
            if v is None or isinstance(v, (list, dict)):
                md[json_key(k)] = json.dumps(md.pop(k), ensure_ascii=False, separators=(",", ":"))
        text = _COMPACT.encode(md)
        ascii_only = text.isascii()
        size = len(text) if ascii_only else len(text.encode("utf-8"))
        if size > METADATA_LIMIT:
            raise LimitExceeded("metadata, text and stamp", record.id, size, METADATA_LIMIT,
                                self.name)  # fmt: skip
        # the bytes a request may spend on it: escaped non-ASCII is the longest form (and
        # room for a space after each separator, as json.dumps' default puts there)
        wire = len(text) if ascii_only else len(_COMPACT_ASCII.encode(md))
        wire += 2 * len(md)
        return {"id": _pid(record.id), "values": vector.tolist(), "metadata": md}, wire

    def _unpack(
        self, stored: Mapping[str, Any] | None
    ) -> tuple[str, str | None, dict[str, Any], Stamp]:
        """The id, text, user metadata and stamp a vector's metadata holds, in one pass:
        what :meth:`PayloadCodec.decode` gives for it once the JSON-held fields
        (``_vv_json.<key>``) are restored (they follow the other fields). The codec
        itself raises the error for metadata that lacks vecver's fields.

        The hot path of every search and fetch: metadata holding vecver's fields alone
        (a document without user metadata) skips the loop over its keys, and the stamp
        of a vector read before is the same (immutable) object again
        (:meth:`_stamp`)."""
        md: Mapping[str, Any] = stored or {}
        try:
            doc_id = md[_KEY_ID]
            fp, sh, at = md[_KEY_FP], md[_KEY_HASH], md[_KEY_AT]
        except (KeyError, TypeError):
            d = self._codec.decode(md)  # raises BackendError, saying what is missing
            return d.id, d.text, d.metadata, d.stamp
        if type(doc_id) is not str or type(fp) is not str or type(sh) is not str or (
                type(at) is not float):  # fmt: skip
            # not as vecver writes them (an int time, a number as an id): converted
            try:
                doc_id = str(doc_id)
                fp, sh, at = str(fp), str(sh), float(at)
            except (TypeError, ValueError):
                d = self._codec.decode(md)
                return d.id, d.text, d.metadata, d.stamp
        stamp = self._stamp(fp, doc_id, sh, at)
        text = md.get(_KEY_TEXT)
        n = len(md)
        if n == (4 if text is None else 5):
            return doc_id, text, {}, stamp  # vecver's fields only: no user metadata
        ints = md.get(_remote.KEY_INTS) or ()
        metadata: dict[str, Any] = {}
        held: list[tuple[str, Any]] | None = None
        own, reserved = _OWN_KEYS, _RESERVED
        for k, v in md.items():
            if k in own:
                continue
            if k.startswith(reserved):
                if k.startswith(JSON_PREFIX):
                    if held is None:
                        held = []
                    held.append((k[_JSON_CUT:], v))
                continue
            if ints and k in ints and isinstance(v, float) and v.is_integer():
                v = int(v)
            metadata[k] = v
        if held is not None:
            for k, v in held:
                metadata[k] = json.loads(v)
        return doc_id, text, metadata, stamp

    def _stamp(self, fp: str, doc_id: str, source_hash: str, at: float) -> Stamp:
        """``Stamp(fp, doc_id, source_hash, at)``, the object made for the same four
        values before when there is one (a stamp is frozen: sharing it is safe; hot
        documents come back in many searches). At most :data:`_STAMP_CACHE` are kept;
        the cache is emptied when it is full. Unlocked: two threads making the same stamp
        at once keep one of two equal objects."""
        key = (fp, doc_id, source_hash, at)
        cache = self._stamps
        got = cache.get(key)
        if got is None:
            if len(cache) >= _STAMP_CACHE:
                cache.clear()
            got = cache[key] = Stamp(fp, doc_id, source_hash, at)
        return got

    def _decode(self, doc: Any, with_vectors: bool, requested: str | None = None) -> Record | None:
        md = doc.metadata
        if requested is not None and not self._codec.check_id(requested, md or {}):
            return None  # a hash collision: not this document
        vec = getattr(doc, "values", None) if with_vectors else None
        try:  # what _translated("decode") does, without a context manager per record
            doc_id, text, metadata, stamp = self._unpack(md)
            arr = np.asarray(vec, dtype=np.float32).copy() if vec else None
        except VecverError:
            raise
        except Exception as e:  # noqa: BLE001 - classified, never swallowed
            raise self._error(e, "decode") from None
        return Record(doc_id, arr, text, metadata, stamp)

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        w = self._located(namespace)
        items = [self._encode(r, vectors[i]) for i, r in enumerate(records)]
        batches: list[list[dict[str, Any]]] = [[]]
        size = 0
        per_value = 20
        for it, wire in items:
            est = per_value * len(it["values"]) + wire + 64
            if batches[-1] and size + est > _REQUEST_LIMIT:
                batches.append([])
                size = 0
            batches[-1].append(it)
            size += est
        top = 0
        for batch in batches:
            with self._translated("upsert", namespace):
                r = w.client.upsert(vectors=batch, namespace=namespace)
            top = max(top, _lsn(r) or 0)
        self._note_lsn(namespace, top or None)

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        from pinecone.errors import NotFoundError

        w = self._located(namespace)
        with self._translated("delete", namespace):
            try:
                r = w.client.delete(ids=[_pid(i) for i in ids], namespace=namespace)
            except NotFoundError:
                self._registry_or_gone(w, namespace)
                return  # a namespace never written holds nothing to delete
        lsn = _lsn(r)
        if lsn is None:
            # the SDK's delete reports no log position: a no-op update of an id vecver
            # never writes, in the same namespace, commits after it and reports one
            with self._translated("update", namespace):
                r = w.client.update(id=_PROBE_ID, set_metadata={"_vv_probe": 1.0},
                                    namespace=namespace)  # fmt: skip
            lsn = _lsn(r)
        self._note_lsn(namespace, lsn)

    def _registry_or_gone(self, w: _Where, namespace: str) -> None:
        """Check the cached location of ``namespace`` against the registry (another
        process may have dropped or re-created it): ``NamespaceNotFound`` when it is gone,
        ``TransientBackendError`` when it was re-created with another spec (a retry
        re-validates against the new one)."""
        spec = self._registry_get(w.index, namespace)
        if spec == w.spec:
            return
        with self._lock:
            self._where.pop(namespace, None)
        if spec is None and self._find(namespace) is None:
            raise NamespaceNotFound(namespace)
        raise TransientBackendError(
            f"pinecone namespace {namespace!r} was re-created with another spec meanwhile"
        )

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        w = self._located(namespace)
        pids = {_pid(i): i for i in ids}
        keys = list(pids)
        if len(keys) <= _FETCH_CHUNK:
            got = self._fetch_chunk(w.client, namespace, keys)
        else:
            chunks = [keys[s : s + _FETCH_CHUNK] for s in range(0, len(keys), _FETCH_CHUNK)]
            got = self._gather([self._submit(self._fetch_chunk, w.client, namespace, c)
                                for c in chunks])  # fmt: skip
        out: dict[str, Record] = {}
        for pid, doc in got.items():
            want = pids.get(pid)
            if want is None:
                continue
            rec = self._decode(doc, with_vectors, want)
            if rec is not None:
                out[want] = rec
        return out

    # -- concurrent fetches ------------------------------------------------------------
    #
    # A read of more than _FETCH_CHUNK ids (a fetch, or a scan page of several list pages)
    # is sent as fetch requests of at most _FETCH_CHUNK ids, up to _FETCH_WORKERS at once
    # on this object's pool, so that the client's decoding of one answer overlaps the
    # server's work on the next. The result is the same as one request's; a failure of
    # any request fails the read (after the others ended), as one request's would.

    def _fetch_chunk(self, client: Any, namespace: str, pids: list[str]) -> dict[str, Any]:
        """Pinecone's vectors of the present ids among ``pids`` (at most 1000), by id."""
        with self._translated("fetch", namespace):
            got = client.fetch(ids=pids, namespace=namespace)
        return dict(got.vectors)

    def _submit(self, fn: Callable[..., dict[str, Any]], *args: Any) -> Future[dict[str, Any]]:
        with self._lock:
            self._check_open()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_FETCH_WORKERS,
                                                thread_name_prefix="vecver-pinecone-fetch")
            return self._pool.submit(fn, *args)

    @staticmethod
    def _gather(futures: Sequence[Future[dict[str, Any]]]) -> dict[str, Any]:
        """The merged results of ``futures``, in order; the first failure (in order) is
        raised once all of them ended."""
        out: dict[str, Any] = {}
        error: BaseException | None = None
        for f in futures:
            try:
                part = f.result()
            except BaseException as e:  # noqa: BLE001 - re-raised below, after the rest
                error = error or e
                continue
            if error is None:
                out.update(part)
        if error is not None:
            raise error
        return out

    def _scan(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool) -> ScanPage:
        w = self._located(namespace)
        ids: list[str] = []
        token = cursor
        # the ids of each list page are fetched while the next page is listed (a page of
        # one list request is fetched here, after it)
        futures: list[Future[dict[str, Any]]] = []
        try:
            while len(ids) < limit:
                with self._translated("list", namespace):
                    try:
                        page = w.client.list_paginated(
                            namespace=namespace, limit=min(_LIST_PAGE, limit - len(ids)),
                            pagination_token=token,
                        )
                    except Exception as e:  # noqa: BLE001 - classified below
                        if token is not None and getattr(e, "status_code", None) == 400:
                            raise InvalidInput(
                                f"cursor {cursor!r} is not a cursor of a scan of {namespace!r}"
                            ) from None
                        if _remote.classify(e) == "not_found":
                            self._registry_or_gone(w, namespace)
                            return ScanPage([], None)
                        raise
                new = [v.id for v in page.vectors if v.id]
                ids.extend(new)
                token = page.pagination.next if page.pagination else None
                more = bool(token) and len(ids) < limit
                if new and (more or futures):
                    for s in range(0, len(new), _FETCH_CHUNK):
                        futures.append(self._submit(self._fetch_chunk, w.client, namespace,
                                                    new[s : s + _FETCH_CHUNK]))  # fmt: skip
                if not more:
                    break
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        if not ids:
            if cursor is None:
                self._registry_or_gone(w, namespace)
            return ScanPage([], None)
        got = self._gather(futures) if futures else self._fetch_chunk(w.client, namespace, ids)
        records: list[Record] = []
        for pid in ids:
            doc = got.get(pid)
            if doc is not None:
                rec = self._decode(doc, with_vectors)
                if rec is not None and _pid(rec.id) == pid:
                    records.append(rec)
        return ScanPage(records, token or None)

    def _count(self, namespace: str) -> int:
        w = self._located(namespace)
        n = 0
        token: str | None = None
        while True:
            with self._translated("list", namespace):
                try:
                    page = w.client.list_paginated(namespace=namespace, limit=_LIST_PAGE,
                                                   pagination_token=token)  # fmt: skip
                except Exception as e:  # noqa: BLE001
                    if _remote.classify(e) == "not_found":
                        self._registry_or_gone(w, namespace)
                        return 0
                    raise
            n += len(page.vectors)
            token = page.pagination.next if page.pagination else None
            if not token:
                if n == 0:
                    self._registry_or_gone(w, namespace)
                return n

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        w = self._located(namespace)
        pf, residual = translate_filter(flt)
        if pf is NOTHING:
            return [[] for _ in range(int(queries.shape[0]))]
        out: list[list[Hit]] = []
        for qi in range(int(queries.shape[0])):
            q = queries[qi]
            top = min(k, _MAX_TOP_K) if residual is None else min(max(4 * k, 100), _MAX_TOP_K)
            while True:
                hits, full = self._query(w, namespace, q, top, pf, flt)
                if residual is None or len(hits) >= k or not full:
                    break
                if top >= _MAX_TOP_K:
                    # more string-range candidates than one query returns: exact by scan
                    hits = super()._search(namespace, queries[qi : qi + 1], k, flt)[0]
                    break
                top = min(4 * top, _MAX_TOP_K)
            out.append(hits[:k])
        if not any(out):
            self._registry_or_gone(w, namespace)
        return out

    def _query(
        self, w: _Where, namespace: str, q: np.ndarray, top: int,
        pf: dict[str, Any] | None, flt: Filter | None,
    ) -> tuple[list[Hit], bool]:  # fmt: skip
        """The hits of one query of ``top`` results that satisfy ``flt``, and whether
        Pinecone returned ``top`` matches (more may exist)."""
        with_md = top <= 1000
        kwargs: dict[str, Any] = {"vector": q.tolist(), "top_k": top, "namespace": namespace,
                                  "include_metadata": with_md}  # fmt: skip
        if pf is not None:
            kwargs["filter"] = pf
        try:  # what _translated("query") does, without a generator per search
            res = w.client.query(**kwargs)
        except VecverError:
            raise
        except Exception as e:  # noqa: BLE001 - classified here, never swallowed
            raise self._error(e, "query", namespace) from None
        matches = res.matches  # a list (SDK 10.2), else copied into one
        if type(matches) is not list:
            matches = list(matches)
        hits: list[Hit] = []
        negate = w.spec.metric == "l2"  # score_from_distance, inlined on the hot path
        unpack = self._unpack
        if with_md:
            # the metadata came with the matches (the common case: nothing else to read)
            append = hits.append
            for m in matches:
                doc_id, text, metadata, stamp = unpack(m.metadata)
                if flt is not None and not flt.matches(metadata):
                    continue
                score = float(m.score)
                append(Hit(doc_id, -score if negate else score, text, metadata, stamp))
            return hits, len(matches) >= top
        docs = self._gather([self._submit(self._fetch_chunk, w.client, namespace,
                                          [m.id for m in matches[s : s + _FETCH_CHUNK]])
                             for s in range(0, len(matches), _FETCH_CHUNK)])  # fmt: skip
        for m in matches:
            doc = docs.get(m.id)
            if doc is None:
                continue
            doc_id, text, metadata, stamp = unpack(doc.metadata)
            if flt is not None and not flt.matches(metadata):
                continue
            score = float(m.score)
            hits.append(Hit(doc_id, -score if negate else score, text, metadata, stamp))
        return hits, len(matches) >= top

    # -- adopted namespaces (``vecver adopt``; see vecver.backends.external) -----------
    #
    # An adoptable collection is a namespace of the user's index that vecver did not
    # create (ids are Pinecone ids, the payload is the vector's metadata as it is).

    def _external_client(self, name: str) -> Any:
        from pinecone.errors import NotFoundError

        if self._describe_index(self._index) is None:
            raise NamespaceNotFound(name)
        client = self._client(self._index)
        with self._translated("describe namespace", name):
            try:
                client.describe_namespace(namespace=name)
            except NotFoundError:
                raise NamespaceNotFound(name) from None
        return client

    def _describe_external(self, name: str) -> ExternalCollection:
        if name == REGISTRY:
            raise NamespaceNotFound(name)
        client = self._external_client(name)
        dim, metric = self._describe_index(self._index) or (0, "cosine")
        points, _ = self._scan_raw(client, name, None, 100, False)
        fields: dict[str, str] = {}
        for pt in points:
            for key in pt.payload:
                fields.setdefault(key, "any")
        return ExternalCollection(
            name, dim, metric, self._count_raw(client, name), fields, "str",  # type: ignore[arg-type]
            schemaless=True, text_slot=False,
            vecver=self._registry_get(self._index, name) is not None,
        )  # fmt: skip

    def _scan_raw(self, client: Any, name: str, cursor: str | None, limit: int,
                  with_vectors: bool) -> tuple[list[RawPoint], str | None]:  # fmt: skip
        ids: list[str] = []
        token = cursor
        while len(ids) < limit:
            with self._translated("list", name):
                page = client.list_paginated(namespace=name, limit=min(_LIST_PAGE,
                                             limit - len(ids)), pagination_token=token)  # fmt: skip
            ids.extend(v.id for v in page.vectors if v.id)
            token = page.pagination.next if page.pagination else None
            if not token:
                break
        return self._get_raw(client, name, ids, with_vectors), token or None

    def _get_raw(self, client: Any, name: str, keys: Sequence[Any],
                 with_vectors: bool) -> list[RawPoint]:  # fmt: skip
        out: list[RawPoint] = []
        for s in range(0, len(keys), 1000):
            chunk = [str(k) for k in keys[s : s + 1000]]
            if not chunk:
                continue
            with self._translated("fetch", name):
                got = client.fetch(ids=chunk, namespace=name).vectors
            for key in chunk:
                doc = got.get(key)
                if doc is not None:
                    vec = (np.asarray(doc.values, dtype=np.float32)
                           if with_vectors and doc.values else None)  # fmt: skip
                    out.append(RawPoint(key, vec, dict(doc.metadata or {})))
        return out

    def _count_raw(self, client: Any, name: str) -> int:
        n, token = 0, None
        while True:
            with self._translated("list", name):
                page = client.list_paginated(namespace=name, limit=_LIST_PAGE,
                                             pagination_token=token)  # fmt: skip
            n += len(page.vectors)
            token = page.pagination.next if page.pagination else None
            if not token:
                return n

    def _scan_external(self, layout: Layout, cursor: str | None, limit: int,
                       with_vectors: bool) -> tuple[list[RawPoint], str | None]:  # fmt: skip
        return self._scan_raw(self._client(self._index), layout.name, cursor, limit,
                              with_vectors)  # fmt: skip

    def _get_external(self, layout: Layout, keys: Sequence[Any],
                      with_vectors: bool) -> list[RawPoint]:  # fmt: skip
        return self._get_raw(self._client(self._index), layout.name, keys, with_vectors)

    def _put_external(self, layout: Layout, points: Sequence[RawPoint]) -> None:
        client = self._client(self._index)
        items = [{"id": str(p.key), "values": np.asarray(p.vector, np.float32).tolist(),
                  "metadata": dict(p.payload)} for p in points]  # fmt: skip
        with self._translated("upsert", layout.name):
            client.upsert(vectors=items, namespace=layout.name)

    def _delete_external(self, layout: Layout, keys: Sequence[Any]) -> None:
        client = self._client(self._index)
        with self._translated("delete", layout.name):
            client.delete(ids=[str(k) for k in keys], namespace=layout.name)

    def _count_external(self, layout: Layout) -> int:
        return self._count_raw(self._client(self._index), layout.name)

    def _search_external(self, layout: Layout, queries: Matrix, k: int,
                         flt: Filter | None) -> list[list[tuple[RawPoint, float]]]:  # fmt: skip
        """Nearest objects by Pinecone's query; a filter is checked exactly on each
        returned payload, asking for more results until ``k`` match or no more exist
        (at most 10,000 results are asked for)."""
        client = self._client(self._index)
        # Pinecone's filter selects a superset here (its $eq on a list means "contains"):
        # the exact check is flt.matches on each payload
        pf, _ = translate_filter(flt)
        if pf is NOTHING:
            return [[] for _ in range(int(queries.shape[0]))]
        out: list[list[tuple[RawPoint, float]]] = []
        for q in queries:
            top = min(k if flt is None else max(4 * k, 100), _MAX_TOP_K)
            while True:
                kwargs: dict[str, Any] = {"vector": q.tolist(), "top_k": top,
                                          "namespace": layout.name,
                                          "include_metadata": top <= 1000}  # fmt: skip
                if pf is not None:
                    kwargs["filter"] = pf
                with self._translated("query", layout.name):
                    res = client.query(**kwargs)
                matches = list(res.matches)
                if top > 1000:
                    got = {p.key: p for p in self._get_raw(client, layout.name,
                                                            [m.id for m in matches], False)}
                    payloads = {str(key): p.payload for key, p in got.items()}
                else:
                    payloads = {m.id: dict(m.metadata or {}) for m in matches}
                row = [
                    (RawPoint(m.id, None, payloads[m.id]),
                     float(self.score_from_distance(layout.metric, float(m.score))))
                    for m in matches if m.id in payloads
                    and (flt is None or flt.matches(payloads[m.id]))
                ]  # fmt: skip
                if flt is None or len(row) >= k or len(matches) < top or top >= _MAX_TOP_K:
                    break
                top = min(4 * top, _MAX_TOP_K)
            out.append(row[:k])
        return out

    # -- read-your-writes --------------------------------------------------------------

    def _note_lsn(self, namespace: str, lsn: int | None) -> None:
        pending: dict[str, int | None] = getattr(self._local, "lsn", None) or {}
        if lsn is None:
            pending[namespace] = None
        elif namespace not in pending or pending[namespace] is not None:
            pending[namespace] = max(lsn, pending.get(namespace) or 0)
        self._local.lsn = pending

    def _visibility_mark(self, namespace: str) -> object:
        """The log position of this thread's writes to ``namespace`` since the last mark
        (None: unknown, the base's fetch polling confirms them)."""
        pending: dict[str, int | None] = getattr(self._local, "lsn", None) or {}
        return pending.pop(namespace, None)

    def _await_visible(self, namespace: str, op: str, written: dict[str, Any],
                       since: float, mark: object = None) -> None:  # fmt: skip
        """Wait until queries reflect the writes ``mark`` (their log position) stands
        for: by the log positions Pinecone reports when it reports them, else as the
        base does."""
        target = mark if isinstance(mark, int) else None
        if target is None:
            super()._await_visible(namespace, op, written, since)
            return
        with self._lock:
            w = self._where.get(namespace)
        if w is None:
            super()._await_visible(namespace, op, written, since)
            return
        if not self._wait_lsn(w, namespace, target):
            super()._await_visible(namespace, op, written, since)

    def _wait_lsn(self, w: _Where, namespace: str, target: int | None) -> bool:
        """Poll a one-result query of ``namespace`` until the index has caught up with log
        position ``target``. False when the server reports no positions."""
        if target is None:
            return False
        seen = w.reconciled
        with self._lock:
            if seen.get(namespace, -1) >= target:
                return True  # an earlier probe saw the index caught up past it
        probe = [1.0] + [0.0] * (w.spec.dimension - 1)
        start, delay = time.monotonic(), 0.002
        while True:
            with self._translated("query", namespace):
                res = w.client.query(vector=probe, top_k=1, namespace=namespace)
            info = res.response_info
            done = info.lsn_reconciled if info is not None else None
            if not isinstance(done, int):
                return False
            with self._lock:
                if done > seen.get(namespace, -1):
                    seen[namespace] = done
            if done >= target:
                return True
            waited = time.monotonic() - start
            if waited >= self._vis_timeout:
                raise WriteNotVisible(namespace, "write", 1, waited)
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _fields(model: Any) -> list[Any]:
    schema = getattr(model, "schema", None)
    fields = getattr(schema, "fields", None) or {}
    return list(fields.values()) if isinstance(fields, Mapping) else []


def _lsn(response: Any) -> int | None:
    info = getattr(response, "response_info", None)
    value = getattr(info, "lsn_committed", None) if info is not None else None
    return int(value) if isinstance(value, int) else None


def _scrub(message: str) -> str:
    """A client message with anything that looks like an API key cut out."""
    return _KEY_RE.sub(r"\1\2***", message)
