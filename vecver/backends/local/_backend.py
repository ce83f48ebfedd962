"""The ``local`` backend: hnswlib indexes over SQLite stores in a directory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vecver.backends.base import Backend, Capabilities
from vecver.backends.external import ExternalCollection, Key, Layout, RawPoint
from vecver.errors import (
    BackendError,
    BackendNotInstalled,
    ConfigError,
    NamespaceNotFound,
    StorageFull,
    TransientBackendError,
)
from vecver.filters import Filter
from vecver.types import Hit, Matrix, Metric, NamespaceSpec, Record, ScanPage, Stamp

from ._namespace import (
    STORE_FILE,
    Namespace,
    Params,
    connect,
    create_store,
    hnsw_scores,
    is_disk_full,
    read_spec,
)

__all__ = ["LocalBackend"]

_TRASH_PREFIX = ".trash-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _import_hnswlib() -> Any:
    """hnswlib, imported on first use; ``BackendNotInstalled`` when it is missing."""
    try:
        import hnswlib
    except ImportError:
        raise BackendNotInstalled("local", "hnswlib", "local") from None
    return hnswlib


def _dir_name(namespace: str) -> str:
    """A file-system-safe, injective directory name for a namespace name: a readable
    prefix plus a hash of the exact name (so case-insensitive file systems, long names and
    odd characters cannot collide)."""
    digest = hashlib.blake2b(namespace.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()
    prefix = _UNSAFE.sub("_", namespace)[:40].strip("._") or "ns"
    return f"{prefix}-{digest}"


class _translated:  # noqa: N801 - used like the context-manager function it replaced
    """SQLite and file-system failures as vecver errors: lock contention is transient, a
    full disk is ``StorageFull`` (naming ``where``), the rest ``BackendError``.

    A class rather than a generator (it is entered on every call); ``where`` may be a
    (namespace, directory) pair, formatted only when something failed."""

    __slots__ = ("where",)

    def __init__(self, where: str | tuple[str, str]) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, tp: object, e: BaseException | None, tb: object) -> None:
        if e is None:
            return
        if isinstance(e, sqlite3.Error):
            if is_disk_full(e):
                raise StorageFull(self._where(), str(e)) from e
            msg = str(e).lower()
            if isinstance(e, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg):
                raise TransientBackendError(f"local store is busy: {e}") from e
            raise BackendError(f"local store failed: {e}") from e
        if isinstance(e, OSError) and is_disk_full(e):
            raise StorageFull(self._where(), str(e)) from e

    def _where(self) -> str:
        w = self.where
        return w if isinstance(w, str) else f"namespace {w[0]!r} in {w[1]}"


class LocalBackend(Backend):
    """Persistent backend on the local file system: one directory per namespace holding a
    SQLite store (``store.sqlite``, WAL mode: the durable truth) and snapshots of an
    hnswlib HNSW index that is rebuilt in memory from the newest snapshot plus the rows
    written after it.

    - Each chunk of ``upsert`` (10,000 records) and ``delete`` (10,000 ids) is one SQLite
      transaction (all-or-nothing), durable against a crash of the process once the call
      returns (``synchronous=NORMAL``: an OS crash or power loss may lose the last
      transactions).
    - An update costs about what an insert does: the new vector is added under a fresh
      hnswlib label and the old label is marked deleted (hnswlib's in-place update is
      several times slower); the index is compacted once dead labels outnumber live ones.
      The store's list of retired labels is pruned whenever a snapshot is written, so it
      holds at most the labels retired since the last snapshot (not one row per update).
      The index add of a chunk runs on in the background once it is committed, overlapping
      the caller's next batch; every later operation on the namespace waits for it first.
    - A full disk is reported as ``StorageFull`` naming the namespace, for writes and reads.
    - Several processes (or several instances in one process) may open the same ``path``:
      every operation first replays what others committed, so reads see their writes.
    - ``search`` is approximate (HNSW with ``ef = max(ef_search, k)``); filtered searches
      over few documents are exact brute force.

    Options: ``path`` (directory, created if missing), hnswlib's ``ef_construction``, ``M``
    and ``ef_search``, and ``snapshot_every`` (write an index snapshot once more than this
    many rows were applied since the last one; one is always written on ``close``).
    """

    name = "local"
    capabilities = Capabilities(
        native_alias=False,
        namespace_kind="hnswlib index directory",
        max_batch=10_000,
        max_fetch_ids=10_000,
        max_delete_ids=10_000,
        persistent=True,
        shared_between_processes=True,
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ef_construction: int = 200,
        M: int = 16,  # noqa: N803 - hnswlib's name for it
        ef_search: int = 100,
        snapshot_every: int = 50_000,
    ) -> None:
        super().__init__()
        self._hnswlib = _import_hnswlib()
        for opt, value, low in (
            ("ef_construction", ef_construction, 1),
            ("M", M, 2),
            ("ef_search", ef_search, 1),
            ("snapshot_every", snapshot_every, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"local backend: {opt} must be an integer >= {low}, got {value!r}"
                )
        self._params = Params(ef_construction, M, ef_search, snapshot_every)
        self._root = os.path.abspath(os.fspath(path))
        try:
            os.makedirs(self._root, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"local backend: cannot use directory {self._root}: {e}") from e
        if not os.path.isdir(self._root):
            raise ConfigError(f"local backend: {self._root} is not a directory")
        self._ns: dict[str, Namespace] = {}
        self._lock = threading.RLock()
        self._empty_trash()

    @classmethod
    def default_options(cls, base_dir: Path, instance: str = "default") -> dict[str, Any]:
        """``path``: ``vecver-data`` next to the config for the default instance,
        ``vecver-data-INSTANCE`` for any other."""
        leaf = "vecver-data" if instance == "default" else f"vecver-data-{instance}"
        return {"path": str(base_dir / leaf)}

    @property
    def path(self) -> str:
        """The backend's root directory."""
        return self._root

    def __repr__(self) -> str:
        return f"LocalBackend({self._root!r})"

    # -- plumbing ---------------------------------------------------------------------

    def _dir(self, namespace: str) -> str:
        return os.path.join(self._root, _dir_name(namespace))

    def _empty_trash(self) -> None:
        with contextlib.suppress(OSError):
            for n in os.listdir(self._root):
                if n.startswith(_TRASH_PREFIX):
                    shutil.rmtree(os.path.join(self._root, n), ignore_errors=True)

    def _get(self, name: str) -> Namespace:
        """The open namespace object (opening it if needed). Lock order: ``self._lock``
        before any namespace lock, never the reverse."""
        with self._lock:
            self._check_open()
            ns = self._ns.get(name)
            if ns is None:
                with _translated(f"namespace {name!r} in {self._root}"):
                    ns = Namespace.open(self._hnswlib, name, self._dir(name), self._params)
                self._ns[name] = ns
            return ns

    @contextlib.contextmanager
    def _use(self, name: str, *, index: bool, defer: bool = False) -> Iterator[Namespace]:
        """The namespace, locked, checked to still exist, and (``index=True``) with its index
        cache in sync with every committed write (``defer``: but for the index add of this
        object's previous upsert, which ``Namespace.upsert`` settles itself)."""
        for _ in range(8):
            ns = self._get(name)
            with ns.lock:
                if not ns.closed:
                    self._check_open()
                    if not ns.is_stale():
                        with _translated((name, ns.dir)):
                            if index:
                                ns.sync(defer=defer)
                            yield ns
                        return
                    ns.close(snapshot=False)  # dropped or replaced by someone else
            with self._lock:
                if self._ns.get(name) is ns:
                    del self._ns[name]
        raise NamespaceNotFound(name)

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Snapshot every index that changed since its last snapshot, close the stores.
        Idempotent; every later call raises ``BackendClosed``."""
        with self._lock:
            if self._closed:
                return
            super().close()
            for ns in list(self._ns.values()):
                with ns.lock:
                    ns.close(snapshot=True)
            self._ns.clear()

    # -- what the base calls ----------------------------------------------------------

    @classmethod
    def score_from_distance(cls, metric: Metric, distance: Any) -> Any:
        """hnswlib's distances: ``1 - cos`` (cosine), ``1 - <q, v>`` (ip) and the squared
        euclidean distance (l2)."""
        return hnsw_scores(metric, distance)

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        """The namespace's directory and store (safe against concurrent creators)."""
        with self._lock:
            self._check_open()
            try:
                with self._use(spec.name, index=False) as ns:
                    return ns.spec
            except NamespaceNotFound:
                pass
            directory = self._dir(spec.name)
            with _translated(f"new namespace {spec.name!r} in {self._root}"):
                try:
                    os.makedirs(directory, exist_ok=True)
                except OSError as e:
                    if is_disk_full(e):
                        raise
                    raise BackendError(f"cannot create {directory}: {e}") from e
                conn, have = create_store(os.path.join(directory, STORE_FILE), spec)
                conn.close()
            return have

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        with self._use(name, index=False) as ns:
            return ns.spec

    def _input_spec(self, namespace: str) -> NamespaceSpec:
        """The spec of the open namespace object, without checking the store on disk:
        ``_upsert`` and ``_search`` re-check dimension and fingerprint against the
        namespace they open (another process may have dropped and recreated it)."""
        ns = self._ns.get(namespace) if isinstance(namespace, str) else None
        if ns is not None and not ns.closed:
            return ns.spec
        return super()._input_spec(namespace)

    def _list_namespaces(self) -> list[str]:
        """Names read from the stores on disk (so namespaces other processes created or
        dropped are seen)."""
        names: list[str] = []
        try:
            entries = sorted(os.listdir(self._root))
        except OSError as e:
            raise BackendError(f"cannot list {self._root}: {e}") from e
        for entry in entries:
            if entry.startswith("."):
                continue
            db = os.path.join(self._root, entry, STORE_FILE)
            if not os.path.isfile(db):
                continue
            try:
                conn = connect(db, create=False)
            except sqlite3.Error:
                continue
            try:
                spec = read_spec(conn)
            except sqlite3.Error:
                spec = None
            finally:
                conn.close()
            if spec is not None and _dir_name(spec.name) == entry:
                names.append(spec.name)
        return names

    def _drop_namespace(self, name: str) -> None:
        """Remove the namespace's directory (moved aside atomically first, so no process
        sees a half-removed namespace). Other processes that have it open get
        ``NamespaceNotFound`` on their next call."""
        with self._lock:
            self._check_open()
            ns = self._ns.pop(name, None)
            if ns is not None:
                with ns.lock:
                    ns.close(snapshot=False)
            directory = self._dir(name)
            if not os.path.isdir(directory):
                return
            trash = os.path.join(self._root, f"{_TRASH_PREFIX}{uuid.uuid4().hex}")
            try:
                os.replace(directory, trash)
            except FileNotFoundError:
                return
            except OSError as e:
                raise BackendError(f"cannot drop namespace {name!r}: {e}") from e
            shutil.rmtree(trash, ignore_errors=True)

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        """One SQLite transaction for the chunk (nothing is written when it fails), then
        the index is updated. Durable against a process crash when it returns."""
        with self._use(namespace, index=True, defer=True) as ns:
            ns.upsert(records, vectors)

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        """One transaction; absent ids are ignored."""
        with self._use(namespace, index=True) as ns:
            ns.delete(ids)

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        """One query. Vectors are the float32 values stored."""
        with self._use(namespace, index=False) as ns:
            return ns.fetch(ids, with_vectors)

    def _scan(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        """One page in id order; the cursor is the last id of the previous page."""
        with self._use(namespace, index=False) as ns:
            return ns.scan(cursor, limit, with_vectors)

    def _fetch_without_text(
        self, namespace: str, ids: Sequence[str], with_vectors: bool
    ) -> dict[str, Record]:
        """Without vectors, the ``rows`` table alone (the blobs of vectors and texts are
        not read)."""
        with self._use(namespace, index=False) as ns:
            return ns.fetch(ids, with_vectors, with_text=False)

    def _scan_without_text(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        """As :meth:`_fetch_without_text`; the order and cursors of :meth:`_scan`."""
        with self._use(namespace, index=False) as ns:
            return ns.scan(cursor, limit, with_vectors, with_text=False)

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        """ANN search (``ef = max(ef_search, k)``), at most ``min(k, count)`` hits per query,
        best first (ties by id); small namespaces and selective filters are searched
        exactly. A filter selects exactly what :meth:`Filter.matches` selects."""
        ns = self._ns.get(namespace)
        if ns is not None:
            # the common case, without the generator of _use: what _use checks (open, not
            # closed, not dropped or replaced on disk, index in sync), in the same order
            with ns.lock:
                if not ns.closed and not self._closed and not ns.is_stale():
                    with _translated((namespace, ns.dir)):
                        ns.sync()
                        return ns.search(queries, k, flt)
        with self._use(namespace, index=True) as ns:
            return ns.search(queries, k, flt)

    def _count(self, namespace: str) -> int:
        """Number of live (non-deleted) records."""
        with self._use(namespace, index=False) as ns:
            if ns.index is not None:
                ns.sync()
            return ns.count()

    def _storage_estimate(self, namespace: str) -> int:
        """The size of the namespace's directory (store, write-ahead log, snapshots)."""
        with self._use(namespace, index=False) as ns:
            total = 0
            with contextlib.suppress(OSError):
                for entry in os.scandir(ns.dir):
                    with contextlib.suppress(OSError):
                        total += entry.stat().st_size
            return total

    # -- adopted collections ----------------------------------------------------------
    # A namespace directory some other program filled through this backend, outside any
    # workspace (its own fingerprint, stamps and metadata): records keep their ids, text
    # and metadata; what vecver writes there is stamped with the namespace's own
    # fingerprint, so it stays what that program expects.

    def _describe_external(self, name: str) -> ExternalCollection:
        spec = self._describe_namespace(name)
        sample = self._scan(name, None, 256, False).records
        fields: dict[str, str] = {}
        for r in sample:
            for key in r.metadata:
                fields.setdefault(key, "any")
        return ExternalCollection(name, spec.dimension, spec.metric, self._count(name), fields,
                                  "str", schemaless=True, text_slot=True)  # fmt: skip

    @staticmethod
    def _raw(r: Record) -> RawPoint:
        return RawPoint(r.id, r.vector, dict(r.metadata), r.text)

    def _scan_external(
        self, layout: Layout, cursor: str | None, limit: int, with_vectors: bool
    ) -> tuple[list[RawPoint], str | None]:
        page = self._scan(layout.name, cursor, limit, with_vectors)
        return [self._raw(r) for r in page.records], page.next_cursor

    def _get_external(
        self, layout: Layout, keys: Sequence[Key], with_vectors: bool
    ) -> list[RawPoint]:
        got = self._fetch(layout.name, [str(k) for k in keys], with_vectors)
        return [self._raw(r) for r in got.values()]

    def _find_external(
        self, layout: Layout, field: str, values: Sequence[str], with_vectors: bool
    ) -> list[RawPoint]:
        if '"' in field:
            return super()._find_external(layout, field, values, with_vectors)
        with self._use(layout.name, index=False) as ns:
            return [self._raw(r) for r in ns.find(field, values, with_vectors)]

    def _put_external(self, layout: Layout, points: Sequence[RawPoint]) -> None:
        own = self._describe_namespace(layout.name).fingerprint
        records = [
            Record(str(p.key), None, p.text, dict(p.payload),
                   Stamp.now(own, str(p.key), p.text or ""))
            for p in points
        ]  # fmt: skip
        vectors = np.stack([np.asarray(p.vector, dtype=np.float32) for p in points])
        self._upsert(layout.name, records, vectors)

    def _delete_external(self, layout: Layout, keys: Sequence[Key]) -> None:
        self._delete(layout.name, [str(k) for k in keys])

    def _search_external(
        self, layout: Layout, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[tuple[RawPoint, float]]]:
        return [
            [(RawPoint(h.id, None, dict(h.metadata), h.text), h.score) for h in row]
            for row in self._search(layout.name, queries, k, flt)
        ]

    def _count_external(self, layout: Layout) -> int:
        return self._count(layout.name)
