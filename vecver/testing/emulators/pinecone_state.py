"""The state and semantics behind the Pinecone emulator (:mod:`.pinecone`): indexes,
namespaces, records, Pinecone's validation rules and limits, its metadata filter
language, exact search, and eventual consistency (a write log applied after a lag).

Everything here is plain Python over numpy, independent of HTTP: each operation takes the
decoded JSON request and returns ``(status, body, headers)`` or raises :class:`ApiError`
with the status and message Pinecone answers with. One lock guards the whole state.

Limits (from Pinecone's documented limits): 1,000 vectors per upsert, 2 MiB per request,
1,000 ids per fetch and delete, ids of at most 512 characters, 40 KiB (40,960 bytes) of
metadata per vector, metadata values that are strings, numbers, booleans or lists of
strings (no nulls, no nested objects), top_k of at most 10,000 (1,000 with values or
metadata), list pages of at most 100 ids (100 by default). Metadata size is measured as
compact JSON in UTF-8. Numbers are stored as doubles (an int comes back as a float), as
Pinecone does.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ApiError",
    "IndexState",
    "PineconeState",
    "matches_filter",
    "MAX_METADATA_BYTES",
    "MAX_REQUEST_BYTES",
]

MAX_UPSERT = 1000
MAX_IDS = 1000
MAX_ID_LEN = 512
MAX_METADATA_BYTES = 40_960
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_TOP_K = 10_000
MAX_TOP_K_WITH_DATA = 1000
MAX_LIST = 100
METRICS = ("cosine", "dotproduct", "euclidean")

# gRPC status codes Pinecone's data plane puts in its error bodies
INVALID_ARGUMENT = 3
NOT_FOUND = 5
ALREADY_EXISTS = 6
UNAUTHENTICATED = 16


class ApiError(Exception):
    """An error answer: HTTP ``status``, Pinecone's ``code`` and ``message``; ``plane``
    says which body shape (data plane: ``{"code", "message", "details"}``; control plane:
    ``{"error": {"code", "message"}, "status"}``)."""

    def __init__(self, status: int, code: int | str, message: str, plane: str = "data") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.plane = plane

    def body(self) -> dict[str, Any]:
        if self.plane == "control":
            return {"error": {"code": self.code, "message": self.message}, "status": self.status}
        return {"code": self.code, "message": self.message, "details": []}


def bad(message: str) -> ApiError:
    return ApiError(400, INVALID_ARGUMENT, message)


# -- the filter language ------------------------------------------------------------------

_NUM = (int, float)


def _is_num(v: object) -> bool:
    return isinstance(v, _NUM) and not isinstance(v, bool)


def _eq(stored: object, want: object) -> bool:
    if isinstance(stored, list):
        return any(_eq(s, want) for s in stored)
    if isinstance(stored, bool) or isinstance(want, bool):
        return isinstance(stored, bool) and isinstance(want, bool) and stored == want
    if _is_num(stored) and _is_num(want):
        return float(stored) == float(want)  # type: ignore[arg-type]
    return isinstance(stored, str) and isinstance(want, str) and stored == want


def _scalar(op: str, v: object) -> None:
    if not isinstance(v, (str, int, float, bool)):
        raise bad(f"the value for {op} must be a string, number or boolean, got {json.dumps(v)}")


def _check_filter(flt: object) -> None:
    """400 unless ``flt`` is a valid Pinecone filter."""
    if not isinstance(flt, dict):
        raise bad("filter must be an object")
    for key, cond in flt.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise bad(f"{key} takes a non-empty list of filters")
            for sub in cond:
                _check_filter(sub)
            continue
        if key.startswith("$"):
            raise bad(f"unknown top-level operator {key}")
        if not isinstance(cond, dict):
            _scalar("$eq", cond)
            continue
        for op, v in cond.items():
            if op in ("$eq", "$ne"):
                _scalar(op, v)
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                if not _is_num(v):
                    raise bad(f"the value for {op} must be a number, got {json.dumps(v)}")
            elif op in ("$in", "$nin"):
                if not isinstance(v, list):
                    raise bad(f"the value for {op} must be a list")
                for x in v:
                    _scalar(op, x)
            elif op == "$exists":
                if not isinstance(v, bool):
                    raise bad("the value for $exists must be a boolean")
            else:
                raise bad(f"unknown operator {op} on field {key}")


def matches_filter(flt: Mapping[str, Any], metadata: Mapping[str, Any]) -> bool:
    """Pinecone's semantics: fields AND-ed; ``$eq``/``$in`` on a list field match when the
    list holds the value; ``$gt`` and friends compare numbers; a condition on an absent
    field is false except ``$ne``, ``$nin`` and ``$exists: false``."""
    for key, cond in flt.items():
        if key == "$and":
            if not all(matches_filter(s, metadata) for s in cond):
                return False
            continue
        if key == "$or":
            if not any(matches_filter(s, metadata) for s in cond):
                return False
            continue
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        present = key in metadata
        v = metadata.get(key)
        for op, want in ops.items():
            if op == "$exists":
                ok = present == want
            elif op == "$eq":
                ok = present and _eq(v, want)
            elif op == "$ne":
                ok = not (present and _eq(v, want))
            elif op == "$in":
                ok = present and any(_eq(v, w) for w in want)
            elif op == "$nin":
                ok = not (present and any(_eq(v, w) for w in want))
            else:
                ok = present and _is_num(v) and _cmp(op, float(v), float(want))  # type: ignore[arg-type]
            if not ok:
                return False
    return True


def _cmp(op: str, v: float, w: float) -> bool:
    if op == "$gt":
        return v > w
    if op == "$gte":
        return v >= w
    if op == "$lt":
        return v < w
    return v <= w


# -- validation -----------------------------------------------------------------------------


def _check_metadata(vid: str, md: object) -> dict[str, Any]:
    if md is None:
        return {}
    if not isinstance(md, dict):
        raise bad(f"Metadata of vector {vid} must be an object")
    out: dict[str, Any] = {}
    for k, v in md.items():
        if v is None:
            raise bad(
                f"Metadata value for field '{k}' of vector {vid} is null; metadata values "
                "must be a string, number, boolean or list of strings"
            )
        if isinstance(v, (bool, str)):
            out[k] = v
        elif _is_num(v):
            if not math.isfinite(float(v)):
                raise bad(f"Metadata value for field '{k}' of vector {vid} is not finite")
            out[k] = float(v)
        elif isinstance(v, list):
            if not all(isinstance(x, str) for x in v):
                raise bad(
                    f"Metadata value for field '{k}' of vector {vid} is a list holding a "
                    "non-string; only lists of strings are supported"
                )
            out[k] = list(v)
        else:
            raise bad(
                f"Metadata value for field '{k}' of vector {vid} must be a string, number, "
                "boolean or list of strings, got an object"
            )
    size = len(json.dumps(md, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise bad(
            f"Metadata size is {size} bytes, which exceeds the limit of {MAX_METADATA_BYTES} "
            f"bytes per vector (vector {vid})"
        )
    return out


def _check_id(vid: object) -> str:
    if not isinstance(vid, str) or not vid:
        raise bad("Vector ID must be a non-empty string")
    if len(vid) > MAX_ID_LEN:
        raise bad(f"Vector ID exceeds the maximum length of {MAX_ID_LEN} characters")
    return vid


def _check_values(vid: str, values: object, dim: int, metric: str) -> np.ndarray:
    if not isinstance(values, list) or not all(_is_num(x) for x in values):
        raise bad(f"Values of vector {vid} must be a list of numbers")
    if len(values) != dim:
        raise bad(
            f"Vector dimension {len(values)} does not match the dimension of the index {dim}"
        )
    arr = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise bad(f"Values of vector {vid} must be finite")
    if metric == "cosine" and not np.any(arr):
        raise bad(f"Dense vector {vid} must contain at least one non-zero value")
    return arr


# -- records, namespaces, indexes -------------------------------------------------------------


@dataclass
class _Rec:
    values: np.ndarray
    metadata: dict[str, Any]


@dataclass
class _Namespace:
    """The visible records of one namespace, with what queries and lists need kept up to
    date as writes are applied (the search matrix in insertion order, row norms, the
    sorted ids) instead of rebuilt per request."""

    records: dict[str, _Rec] = field(default_factory=dict)
    _ids: list[str] | None = None
    _pos: dict[str, int] | None = None
    _mat: np.ndarray | None = None  # rows beyond len(_ids) are spare capacity
    _norms: np.ndarray | None = None
    _sorted: list[str] | None = None

    def touch(self) -> None:
        """Forget everything derived (after a delete)."""
        self._ids = self._pos = self._mat = self._norms = None
        self._sorted = None

    def put(self, vid: str, rec: _Rec) -> None:
        """Insert or replace one record (its position in insertion order is kept)."""
        new = vid not in self.records
        self.records[vid] = rec
        self._norms = None
        if new:
            self._sorted = None
        if self._ids is None or self._pos is None or self._mat is None:
            return
        if not new:
            self._mat[self._pos[vid]] = rec.values
            return
        n = len(self._ids)
        if n == self._mat.shape[0]:
            grown = np.zeros((max(64, 2 * n), self._mat.shape[1]), np.float32)
            grown[:n] = self._mat[:n]
            self._mat = grown
        self._mat[n] = rec.values
        self._ids.append(vid)
        self._pos[vid] = n

    def matrix(self, dim: int) -> tuple[list[str], np.ndarray]:
        """The ids in insertion order and their vectors, one row each."""
        if self._ids is None or self._pos is None or self._mat is None:
            ids = list(self.records)
            mat = np.zeros((max(64, len(ids)), dim), np.float32)
            for j, i in enumerate(ids):
                mat[j] = self.records[i].values
            self._ids, self._pos, self._mat = ids, {i: j for j, i in enumerate(ids)}, mat
        return self._ids, self._mat[: len(self._ids)]

    def norms(self, dim: int) -> np.ndarray:
        """The euclidean norm of each row of :meth:`matrix`."""
        if self._norms is None:
            self._norms = np.linalg.norm(self.matrix(dim)[1], axis=1)
        return self._norms

    def sorted_ids(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.records)
        return self._sorted


@dataclass
class _Op:
    lsn: int
    due: float
    namespace: str
    kind: str  # upsert | delete | delete_all | update | drop
    payload: Any


class IndexState:
    """One index: its spec, the visible namespaces, and the log of writes not yet
    visible to queries (applied in LSN order once their lag has passed)."""

    def __init__(self, name: str, dimension: int, metric: str, host: str) -> None:
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.host = host
        self.created = time.time()
        self.namespaces: dict[str, _Namespace] = {}
        self.lsn = 0
        self.reconciled = 0
        self.log: deque[_Op] = deque()

    # writes go through the log; reads first apply what is due
    def write(self, namespace: str, kind: str, payload: Any, lag: float) -> int:
        self.lsn += 1
        self.log.append(_Op(self.lsn, time.monotonic() + max(0.0, lag), namespace, kind, payload))
        if lag <= 0:
            self.catch_up()
        return self.lsn

    def catch_up(self) -> None:
        now = time.monotonic()
        while self.log and self.log[0].due <= now:
            self._apply(self.log.popleft())

    def _apply(self, op: _Op) -> None:
        self.reconciled = op.lsn
        if op.kind == "drop":
            self.namespaces.pop(op.namespace, None)
            return
        ns = self.namespaces.setdefault(op.namespace, _Namespace())
        if op.kind == "upsert":
            for vid, rec in op.payload:
                ns.put(vid, rec)
        elif op.kind == "delete":
            for vid in op.payload:
                ns.records.pop(vid, None)
            ns.touch()
        elif op.kind == "delete_all":
            ns.records.clear()
            ns.touch()
        elif op.kind == "update":
            for vid, values, set_md in op.payload:
                rec = ns.records.get(vid)
                if rec is None:
                    continue
                md = dict(rec.metadata)
                md.update(set_md or {})
                ns.put(vid, _Rec(rec.values if values is None else values, md))

    def model(self) -> dict[str, Any]:
        """The index description (control plane, API 2026-07; the 2025 top-level fields
        ``dimension``/``metric``/``spec`` too, for older clients)."""
        return {
            "name": self.name,
            "host": self.host,
            "status": {"ready": True, "state": "Ready"},
            "schema": {
                "fields": {
                    "_values": {
                        "type": "dense_vector", "dimension": self.dimension, "metric": self.metric,
                    }
                }
            },
            "deployment": {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"},
            "deletion_protection": "disabled",
            "tags": None,
            "dimension": self.dimension,
            "metric": self.metric,
            "vector_type": "dense",
            "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
        }  # fmt: skip


def _token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode("utf-8", "surrogatepass")).decode("ascii")


def _untoken(tok: str) -> str:
    try:
        return base64.urlsafe_b64decode(tok.encode("ascii")).decode("utf-8", "surrogatepass")
    except (ValueError, UnicodeError):
        raise bad("Invalid pagination token") from None


Answer = tuple[int, Any, dict[str, str]]


class PineconeState:
    """Every index of one emulated project. ``lag`` (seconds, settable at any time) delays
    the visibility of writes to queries, lists, stats and namespace reads;
    ``fetch_lag`` delays fetch (0 by default: Pinecone's fetch sees a write before its
    search does)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.indexes: dict[str, IndexState] = {}
        self.lag = 0.0
        self.fetch_lag = 0.0

    # -- control plane -------------------------------------------------------------

    def create_index(self, name: str, dimension: int, metric: str, host: str) -> IndexState:
        with self.lock:
            if name in self.indexes:
                raise ApiError(409, "ALREADY_EXISTS", f"Resource {name} already exists", "control")
            idx = IndexState(name, dimension, metric, host)
            self.indexes[name] = idx
            return idx

    def index(self, name: str, plane: str = "control") -> IndexState:
        idx = self.indexes.get(name)
        if idx is None:
            raise ApiError(404, "NOT_FOUND" if plane == "control" else NOT_FOUND,
                           f"Resource {name} not found", plane)  # fmt: skip
        return idx

    def delete_index(self, name: str) -> None:
        with self.lock:
            self.index(name)
            del self.indexes[name]

    # -- data plane -----------------------------------------------------------------

    def upsert(self, idx: IndexState, body: dict[str, Any]) -> Answer:
        vectors = body.get("vectors")
        ns = _namespace(body)
        if not isinstance(vectors, list) or not vectors:
            raise bad("vectors must be a non-empty list")
        if len(vectors) > MAX_UPSERT:
            raise bad(
                f"Upsert request can contain at most {MAX_UPSERT} vectors, got {len(vectors)}"
            )
        batch: list[tuple[str, _Rec]] = []
        for v in vectors:
            if not isinstance(v, dict):
                raise bad("each vector must be an object")
            vid = _check_id(v.get("id"))
            if v.get("sparseValues"):
                raise bad("Sparse vectors are not supported by this dense index")
            values = _check_values(vid, v.get("values"), idx.dimension, idx.metric)
            batch.append((vid, _Rec(values, _check_metadata(vid, v.get("metadata")))))
        with self.lock:
            lsn = idx.write(ns, "upsert", batch, self.lag)
        return 200, {"upsertedCount": len(batch)}, _committed(lsn)

    def update(self, idx: IndexState, body: dict[str, Any]) -> Answer:
        ns = _namespace(body)
        set_md = body.get("setMetadata")
        md = _check_metadata(str(body.get("id", "")), set_md) if set_md is not None else None
        flt = body.get("filter")
        values = None
        if body.get("values") is not None:
            values = _check_values(str(body.get("id")), body.get("values"), idx.dimension,
                                   idx.metric)  # fmt: skip
        with self.lock:
            if flt is not None:
                _check_filter(flt)
                if values is not None:
                    raise bad("values cannot be updated by filter")
                idx.catch_up()
                space = idx.namespaces.get(ns)
                hit = [i for i, r in (space.records.items() if space else [])
                       if matches_filter(flt, r.metadata)]  # fmt: skip
                lsn = idx.write(ns, "update", [(i, None, md) for i in hit], self.lag)
                return 200, {"matchedRecords": len(hit)}, _committed(lsn)
            vid = _check_id(body.get("id"))
            lsn = idx.write(ns, "update", [(vid, values, md)], self.lag)
        return 200, {}, _committed(lsn)

    def delete(self, idx: IndexState, body: dict[str, Any]) -> Answer:
        ns = _namespace(body)
        ids, flt, everything = body.get("ids"), body.get("filter"), body.get("deleteAll")
        given = sum(x is not None and x is not False for x in (ids, flt, everything))
        if given != 1:
            raise bad("Exactly one of ids, filter and deleteAll must be given")
        with self.lock:
            idx.catch_up()
            if ns not in idx.namespaces and not any(o.namespace == ns for o in idx.log):
                raise ApiError(404, NOT_FOUND, "Namespace not found")
            if ids is not None:
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    raise bad("ids must be a list of strings")
                if len(ids) > MAX_IDS:
                    raise bad(f"Delete request can contain at most {MAX_IDS} ids, got {len(ids)}")
                lsn = idx.write(ns, "delete", list(ids), self.lag)
            elif flt is not None:
                _check_filter(flt)
                space = idx.namespaces.get(ns)
                hit = [i for i, r in (space.records.items() if space else [])
                       if matches_filter(flt, r.metadata)]  # fmt: skip
                lsn = idx.write(ns, "delete", hit, self.lag)
            else:
                lsn = idx.write(ns, "delete_all", None, self.lag)
        return 200, {}, _committed(lsn)

    def fetch(self, idx: IndexState, ids: list[str], ns: str) -> Answer:
        if not ids:
            raise bad("ids must hold at least one id")
        if len(ids) > MAX_IDS:
            raise bad(f"Fetch request can contain at most {MAX_IDS} ids, got {len(ids)}")
        with self.lock:
            space = self._fetch_view(idx, ns)
            out = {}
            for vid in ids:
                rec = space.get(vid)
                if rec is not None:
                    out[vid] = {"id": vid, "values": rec.values.tolist(),
                                "metadata": dict(rec.metadata)}  # fmt: skip
        return 200, {"vectors": out, "namespace": ns, "usage": {"readUnits": 1}}, {}

    def _fetch_view(self, idx: IndexState, ns: str) -> dict[str, _Rec]:
        """Records as fetch sees them: the visible state plus logged writes older than
        ``fetch_lag``."""
        idx.catch_up()
        base = idx.namespaces.get(ns)
        if not any(op.namespace == ns for op in idx.log):
            return base.records if base else {}  # nothing in flight: the visible state
        view = dict(base.records) if base else {}
        cutoff = time.monotonic() - self.fetch_lag
        for op in idx.log:
            if op.namespace != ns or op.due - self.lag > cutoff:
                continue
            if op.kind == "upsert":
                view.update(op.payload)
            elif op.kind == "delete":
                for vid in op.payload:
                    view.pop(vid, None)
            elif op.kind in ("delete_all", "drop"):
                view.clear()
            elif op.kind == "update":
                for vid, values, set_md in op.payload:
                    rec = view.get(vid)
                    if rec is not None:
                        view[vid] = _Rec(rec.values if values is None else values,
                                         {**rec.metadata, **(set_md or {})})  # fmt: skip
        return view

    def query(self, idx: IndexState, body: dict[str, Any]) -> Answer:
        ns = _namespace(body)
        top_k = body.get("topK")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise bad(f"topK must be an integer between 1 and {MAX_TOP_K}")
        k = top_k
        with_values = bool(body.get("includeValues"))
        with_md = bool(body.get("includeMetadata"))
        if (with_values or with_md) and k > MAX_TOP_K_WITH_DATA:
            raise bad(
                f"topK must be at most {MAX_TOP_K_WITH_DATA} when includeValues or "
                "includeMetadata is true"
            )
        vec, by_id = body.get("vector"), body.get("id")
        if (vec is None) == (by_id is None):
            raise bad("Exactly one of vector and id must be given")
        flt = body.get("filter")
        if flt is not None:
            _check_filter(flt)
        with self.lock:
            idx.catch_up()
            space = idx.namespaces.get(ns) or _Namespace()
            if by_id is not None:
                rec = space.records.get(str(by_id))
                if rec is None:
                    return 200, {"matches": [], "namespace": ns}, _reconciled(idx)
                q = rec.values
            else:
                q = _check_values("query", vec, idx.dimension, idx.metric)
            ids, mat = space.matrix(idx.dimension)
            keep: list[int] | None = None
            if flt:
                recs = space.records
                keep = [j for j, i in enumerate(ids) if matches_filter(flt, recs[i].metadata)]
            matches = []
            if ids and (keep is None or keep):
                sub = mat if keep is None else mat[keep]
                norms = space.norms(idx.dimension) if idx.metric == "cosine" else None
                if norms is not None and keep is not None:
                    norms = norms[keep]
                scores, order = _rank(idx.metric, q, sub, k, norms)
                for j in order:
                    vid = ids[j if keep is None else keep[j]]
                    m: dict[str, Any] = {"id": vid, "score": float(scores[j])}
                    if with_values:
                        m["values"] = space.records[vid].values.tolist()
                    if with_md:
                        m["metadata"] = dict(space.records[vid].metadata)
                    matches.append(m)
            answer = {"matches": matches, "namespace": ns, "usage": {"readUnits": 1}}
            return 200, answer, _reconciled(idx)

    def list_ids(self, idx: IndexState, ns: str, prefix: str | None, limit: int | None,
                 token: str | None) -> Answer:  # fmt: skip
        n = MAX_LIST if limit is None else limit
        if not 1 <= n <= MAX_LIST:
            raise bad(f"limit must be between 1 and {MAX_LIST}")
        after = _untoken(token) if token else None
        with self.lock:
            idx.catch_up()
            space = idx.namespaces.get(ns)
            ids = space.sorted_ids() if space else []
        if prefix:
            ids = [i for i in ids if i.startswith(prefix)]
        if after is not None:
            import bisect

            ids = ids[bisect.bisect_right(ids, after):]
        page = ids[:n]
        out: dict[str, Any] = {"vectors": [{"id": i} for i in page], "namespace": ns,
                               "usage": {"readUnits": 1}}  # fmt: skip
        if len(ids) > n:
            out["pagination"] = {"next": _token(page[-1])}
        return 200, out, _reconciled(idx)

    def stats(self, idx: IndexState, body: dict[str, Any]) -> Answer:
        flt = body.get("filter")
        if flt is not None:
            _check_filter(flt)
        with self.lock:
            idx.catch_up()
            spaces = {}
            total = 0
            for name, space in idx.namespaces.items():
                n = sum(1 for r in space.records.values()
                        if flt is None or matches_filter(flt, r.metadata))  # fmt: skip
                spaces[name] = {"vectorCount": n}
                total += n
        return 200, {
            "namespaces": spaces, "dimension": idx.dimension, "indexFullness": 0.0,
            "totalVectorCount": total, "metric": idx.metric, "vectorType": "dense",
        }, _reconciled(idx)  # fmt: skip

    def namespaces(self, idx: IndexState, limit: int | None, token: str | None,
                   prefix: str | None) -> Answer:  # fmt: skip
        n = 100 if limit is None else limit
        if not 1 <= n <= 1000:
            raise bad("limit must be between 1 and 1000")
        after = _untoken(token) if token else None
        with self.lock:
            idx.catch_up()
            names = sorted(idx.namespaces)
            counts = {k: len(v.records) for k, v in idx.namespaces.items()}
        if prefix:
            names = [x for x in names if x.startswith(prefix)]
        total = len(names)
        if after is not None:
            names = [x for x in names if x > after]
        page = names[:n]
        out: dict[str, Any] = {
            "namespaces": [{"name": x, "record_count": str(counts[x])} for x in page],
            "total_count": total,
        }
        if len(names) > n:
            out["pagination"] = {"next": _token(page[-1])}
        return 200, out, {}

    def describe_namespace(self, idx: IndexState, ns: str) -> Answer:
        with self.lock:
            idx.catch_up()
            space = idx.namespaces.get(ns)
            if space is None:
                raise ApiError(404, NOT_FOUND, "Namespace not found")
            return 200, {"name": ns, "record_count": str(len(space.records))}, {}

    def create_namespace(self, idx: IndexState, body: dict[str, Any]) -> Answer:
        ns = body.get("name")
        if not isinstance(ns, str) or not ns:
            raise bad("name must be a non-empty string")
        with self.lock:
            idx.catch_up()
            if ns in idx.namespaces:
                raise ApiError(409, ALREADY_EXISTS, f"Namespace {ns} already exists")
            idx.namespaces[ns] = _Namespace()
        return 201, {"name": ns, "record_count": "0"}, {}

    def delete_namespace(self, idx: IndexState, ns: str) -> Answer:
        with self.lock:
            idx.catch_up()
            if ns not in idx.namespaces and not any(o.namespace == ns for o in idx.log):
                raise ApiError(404, NOT_FOUND, "Namespace not found")
            lsn = idx.write(ns, "drop", None, self.lag)
        return 202, {}, _committed(lsn)


def _namespace(body: Mapping[str, Any]) -> str:
    ns = body.get("namespace", "")
    if ns is None:
        return ""
    if not isinstance(ns, str):
        raise bad("namespace must be a string")
    return ns


def _committed(lsn: int) -> dict[str, str]:
    return {"x-pinecone-lsn-committed": str(lsn)}


def _reconciled(idx: IndexState) -> dict[str, str]:
    return {"x-pinecone-lsn-reconciled": str(idx.reconciled)}


def _rank(metric: str, q: np.ndarray, mat: np.ndarray, k: int,
          row_norms: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:  # fmt: skip
    """Scores by Pinecone's convention (cosine similarity, dot product, squared euclidean
    distance) and the order of the best ``k`` (highest first; lowest distance first; ties
    by insertion order). ``row_norms``: the norms of ``mat``'s rows, when known."""
    q32 = np.asarray(q, dtype=np.float32)
    if metric == "cosine":
        qn = q32 / max(float(np.linalg.norm(q32)), 1e-30)
        norms = np.maximum(np.linalg.norm(mat, axis=1) if row_norms is None else row_norms,
                           1e-30)
        scores = (mat @ qn) / norms
        key = -scores
    elif metric == "dotproduct":
        scores = mat @ q32
        key = -scores
    else:
        diff = mat - q32
        scores = np.einsum("ij,ij->i", diff, diff)
        key = scores
    n = len(key)
    if k < n:
        part = np.argpartition(key, k - 1)[:k]
        cut = key[part].max()
        cand = np.flatnonzero(key <= cut)  # every tie at the cut, so ties keep their order
    else:
        cand = np.arange(n)
    order = cand[np.lexsort((cand, key[cand]))][:k]
    return scores.astype(np.float64), [int(j) for j in order]
