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
from typing import Any

from vecver.backends.base import (
    Backend,
    Capabilities,
    validate_ids,
    validate_limit,
    validate_queries,
    validate_records,
)
from vecver.errors import (
    BackendError,
    BackendNotInstalled,
    ConfigError,
    InvalidInput,
    NamespaceExists,
    NamespaceNotFound,
    TransientBackendError,
)
from vecver.filters import Filter
from vecver.types import METRICS, Hit, Matrix, NamespaceSpec, Record, ScanPage

from ._namespace import STORE_FILE, Namespace, Params, connect, create_store, read_spec

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


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """SQLite failures as vecver errors: lock contention is transient, the rest is not."""
    try:
        yield
    except sqlite3.OperationalError as e:
        msg = str(e).lower()
        if "locked" in msg or "busy" in msg:
            raise TransientBackendError(f"local store is busy: {e}") from e
        raise BackendError(f"local store failed: {e}") from e
    except sqlite3.Error as e:
        raise BackendError(f"local store failed: {e}") from e


class LocalBackend(Backend):
    """Persistent backend on the local file system: one directory per namespace holding a
    SQLite store (``store.sqlite``, WAL mode: the durable truth) and snapshots of an
    hnswlib HNSW index that is rebuilt in memory from the newest snapshot plus the rows
    written after it.

    - ``upsert`` and ``delete`` are one SQLite transaction each (all-or-nothing) and durable
      against a crash of the process once they return (``synchronous=NORMAL``: an OS crash
      or power loss may lose the last transactions).
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
                if not isinstance(name, str):
                    raise NamespaceNotFound(name)
                with _translated():
                    ns = Namespace.open(self._hnswlib, name, self._dir(name), self._params)
                self._ns[name] = ns
            return ns

    @contextlib.contextmanager
    def _use(self, name: str, *, index: bool) -> Iterator[Namespace]:
        """The namespace, locked, checked to still exist, and (``index=True``) with its index
        cache in sync with every committed write."""
        for _ in range(8):
            ns = self._get(name)
            with ns.lock:
                if not ns.closed:
                    self._check_open()
                    if not ns.is_stale():
                        with _translated():
                            if index:
                                ns.sync()
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

    # -- namespaces -------------------------------------------------------------------

    def create_namespace(self, spec: NamespaceSpec) -> None:
        """Create the namespace's directory and store. Idempotent for an identical spec;
        ``NamespaceExists`` when the name is taken with another one."""
        self._check_open()
        if not isinstance(spec.name, str):
            raise InvalidInput(f"namespace name must be a string, got {spec.name!r}")
        if (
            isinstance(spec.dimension, bool)
            or not isinstance(spec.dimension, int)
            or (spec.dimension < 1)
        ):
            raise InvalidInput(f"dimension must be a positive integer, got {spec.dimension!r}")
        if spec.metric not in METRICS:
            raise InvalidInput(f"metric must be one of {', '.join(METRICS)}, got {spec.metric!r}")
        with self._lock:
            self._check_open()
            try:
                with self._use(spec.name, index=False) as ns:
                    have = ns.spec
            except NamespaceNotFound:
                directory = self._dir(spec.name)
                try:
                    os.makedirs(directory, exist_ok=True)
                except OSError as e:
                    raise BackendError(f"cannot create {directory}: {e}") from e
                with _translated():
                    conn, have = create_store(os.path.join(directory, STORE_FILE), spec)
                    conn.close()
            if have != spec:
                raise NamespaceExists(
                    spec.name,
                    f"dimension {have.dimension}, metric {have.metric}, "
                    f"fingerprint {have.fingerprint[:12]}",
                )

    def describe_namespace(self, name: str) -> NamespaceSpec:
        with self._use(name, index=False) as ns:
            return ns.spec

    def list_namespaces(self) -> list[str]:
        """Names read from the stores on disk (so namespaces other processes created or
        dropped are seen), sorted."""
        self._check_open()
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
        return sorted(names)

    def drop_namespace(self, name: str) -> None:
        """Remove the namespace's directory (moved aside atomically first, so no process
        sees a half-removed namespace). Idempotent. Other processes that have it open get
        ``NamespaceNotFound`` on their next call."""
        with self._lock:
            self._check_open()
            ns = self._ns.pop(name, None)
            if ns is not None:
                with ns.lock:
                    ns.close(snapshot=False)
            if not isinstance(name, str):
                return
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

    # -- data -------------------------------------------------------------------------

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        """Insert or replace by id: one SQLite transaction for the whole batch (nothing is
        written when validation or the transaction fails), then the index is updated.
        Durable against a process crash when it returns."""
        with self._use(namespace, index=True) as ns:
            vectors = validate_records(ns.spec, records)
            ns.upsert(records, vectors)

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete by id in one transaction; absent ids are ignored."""
        with self._use(namespace, index=True) as ns:
            ids = list(ids)
            validate_ids(ids)
            ns.delete(ids)

    def fetch(
        self, namespace: str, ids: Sequence[str], *, with_vectors: bool = False
    ) -> dict[str, Record]:
        """Records of the present ids (one query). Vectors are the float32 values stored."""
        with self._use(namespace, index=False) as ns:
            return ns.fetch(list(ids), with_vectors)

    def scan(
        self,
        namespace: str,
        *,
        cursor: str | None = None,
        limit: int = 256,
        with_vectors: bool = False,
    ) -> ScanPage:
        """One page in id order; the cursor is the last id of the previous page."""
        validate_limit(limit)
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidInput(f"cursor must be a string from a previous page, got {cursor!r}")
        with self._use(namespace, index=False) as ns:
            return ns.scan(cursor, limit, with_vectors)

    def search(
        self, namespace: str, queries: Matrix, k: int, *, filter: Filter | None = None
    ) -> list[list[Hit]]:
        """ANN search, at most ``min(k, count)`` hits per query, best first (ties by id).
        A filter selects exactly what :meth:`Filter.matches` selects."""
        with self._use(namespace, index=True) as ns:
            q = validate_queries(ns.spec, queries, k)
            return ns.search(q, k, filter)

    def count(self, namespace: str) -> int:
        """Number of live (non-deleted) records."""
        with self._use(namespace, index=False) as ns:
            if ns.index is not None:
                ns.sync()
            return ns.count()
