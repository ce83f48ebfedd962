"""One namespace of the local backend: a SQLite store (the durable truth) and an hnswlib
index (an in-memory cache of it, snapshotted to disk now and then).

Layout of a namespace directory::

    store.sqlite (+ -wal, -shm)   the truth, WAL mode
    hnsw-<seq>.bin                the newest index snapshot, complete up to write <seq>

Tables of ``store.sqlite``:

- ``meta(key, value)``: ``spec`` (the NamespaceSpec as JSON) and ``format``.
- ``counter(k = 0, seq)``: the namespace's write sequence number. Every write transaction
  that changes rows takes the next value (under ``BEGIN IMMEDIATE``, so commit order is
  seq order) and stamps every row it touches with it.
- ``rows(label, id, deleted, seq, fingerprint, source_hash, written_at, metadata)``: one row
  per document id ever written. ``label`` is the rowid and the hnswlib label; rows are never
  removed, only flagged ``deleted``. Every write of an id gives its row a *new* label, above
  every label used so far (so labels are never reused), and retires the old one: adding a
  new element to an HNSW graph is several times faster than hnswlib's in-place update.
- ``retired(label, seq)``: the labels that writes at ``seq`` moved rows away from; replaying
  the store marks them deleted in the index. Needed only by an index that is older than
  ``seq`` (a snapshot, or another process's in-memory index), so it is pruned when a
  snapshot is written: the rows up to that snapshot's seq go, and ``meta.retired_floor``
  records the highest seq pruned. An index older than the floor (a lagging process, an
  older snapshot put back) cannot learn its retired labels from the table, and is instead
  reconciled against the store's live labels (every label it holds that no live row has is
  marked deleted): slower, but as exact.
- ``blobs(label, vector, text)``: the float32 vector bytes and the text of each live row,
  kept apart so that scanning ``rows`` (filters, counts) does not page through vectors.

Invariant: the in-memory index holds exactly the live rows of the store as of write
``applied_seq``. Opening loads the newest loadable snapshot (seq S) and replays every row
with ``seq > S``; before every operation ``PRAGMA data_version`` tells whether another
connection committed, and if so the rows written since ``applied_seq`` are replayed.
Retired labels stay in the graph, marked deleted, until they outnumber the live ones; then
the index is rebuilt from its live elements (compaction, in memory; the store is untouched).

Crash safety of the pruning: it runs in its own transaction only after the snapshot that
covers it is durable (fsynced, renamed, directory fsynced). A kill before it leaves the rows
(merely not pruned); after it, the snapshot holds every pruned label marked deleted (or
compacted away), and any older index is reconciled as above.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vecver.backends.base import exact_scores
from vecver.errors import (
    DimensionMismatch,
    InvalidId,
    InvalidInput,
    NamespaceNotFound,
    StampMismatch,
)
from vecver.filters import Filter
from vecver.types import Hit, Matrix, Metric, NamespaceSpec, Record, ScanPage, Stamp

from ._sqlfilter import to_sql

__all__ = [
    "Namespace",
    "Params",
    "create_store",
    "hnsw_scores",
    "is_disk_full",
    "read_spec",
    "STORE_FILE",
]

log = logging.getLogger("vecver_local")

STORE_FILE = "store.sqlite"
FORMAT = 1
_SNAPSHOT_RE = re.compile(r"^hnsw-(\d+)\.bin$")
_TMP_PREFIX = ".hnsw-tmp-"
_HNSW_SPACE = {"cosine": "cosine", "dot": "ip", "l2": "l2"}
_INITIAL_CAPACITY = 1024
_REPLAY_CHUNK = 8192
#: namespaces with at most this many live documents are searched exhaustively (exact):
#: cheap at that size, and an HNSW graph updated in place loses recall (``dot`` most)
_EXHAUSTIVE_MAX = 2000
#: filtered searches over at most this many allowed documents are exact brute force
_BRUTE_MIN = 2000
#: ... and so are those over less than 5% of the namespace, up to this many documents
_BRUTE_MAX = 20_000
#: the index is compacted when it holds more retired/deleted elements than live ones, and
#: at least this many
_COMPACT_MIN = 1024
#: hit payloads (id, text, metadata, stamp) kept in memory per namespace, by label: a
#: label's row never changes while it is live (every write takes a fresh label), so an
#: entry stays right for as long as the index can return its label. Bounded by an
#: estimate of their size in bytes (text, metadata JSON, id, plus a fixed overhead per
#: entry), not by a count, so that short payloads are all kept and long ones cannot
#: take more than this
_PAYLOAD_BYTES = 48 * 1024 * 1024
#: ... the estimated fixed cost of an entry (dict slot, tuples, Stamp, small strings)
_PAYLOAD_ENTRY = 480
#: ... for texts of at most this many characters
_PAYLOAD_TEXT_MAX = 4096
#: hits of at most this many labels are read with one ``IN (?, ...)`` statement (cached by
#: SQLite per count); more go through ``json_each``
_HITS_PLACEHOLDERS_MAX = 256
#: the page cache of a store connection, in KiB (SQLite's default is 2 MiB: searches then
#: re-read the pages of their hits from the OS)
_CACHE_KIB = 32_768

_RETIRED_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS retired (label INTEGER PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS retired_seq ON retired (seq)",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counter ("
    " k INTEGER PRIMARY KEY CHECK (k = 0), seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rows ("
    " label INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " seq INTEGER NOT NULL,"
    " fingerprint TEXT NOT NULL,"
    " source_hash TEXT NOT NULL,"
    " written_at REAL NOT NULL,"
    " metadata TEXT)",
    "CREATE TABLE IF NOT EXISTS blobs (label INTEGER PRIMARY KEY, vector BLOB NOT NULL, text TEXT)",
    "CREATE INDEX IF NOT EXISTS rows_seq ON rows (seq, deleted)",
    "INSERT OR IGNORE INTO counter (k, seq) VALUES (0, 0)",
    *_RETIRED_SCHEMA,
)

_UPSERT_ROWS = (
    "INSERT INTO rows (label, id, fingerprint, source_hash, written_at, metadata, deleted, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, 0, ?)"
    " ON CONFLICT (id) DO UPDATE SET label = excluded.label,"
    " fingerprint = excluded.fingerprint,"
    " source_hash = excluded.source_hash, written_at = excluded.written_at,"
    " metadata = excluded.metadata, deleted = 0, seq = excluded.seq"
)
_UPSERT_BLOBS = "INSERT OR REPLACE INTO blobs (label, vector, text) VALUES (?, ?, ?)"
_IDS_IN = "(SELECT value FROM json_each(?))"
_RECORD_COLS = "r.id, r.fingerprint, r.source_hash, r.written_at, r.metadata, b.text"
#: the columns of a record read without its text (a NULL in the text's place) from
#: ``rows`` alone: every live row has its blob (both are written and deleted together)
_STAMP_COLS = "r.id, r.fingerprint, r.source_hash, r.written_at, r.metadata, NULL"


def _select(with_vectors: bool, with_text: bool) -> str:
    """What a fetch or scan selects, and from where (``_RECORD_COLS`` and the vector
    blob; without text or vectors the blobs are not joined)."""
    if not with_text and not with_vectors:
        return f"{_STAMP_COLS} FROM rows r"
    cols = _RECORD_COLS + (", b.vector" if with_vectors else "")
    return f"{cols} FROM rows r JOIN blobs b ON b.label = r.label"


_HITS_SELECT = (
    f"SELECT r.label, {_RECORD_COLS} FROM rows r JOIN blobs b ON b.label = r.label"
    " WHERE r.deleted = 0 AND r.label IN "
)

#: what a hit needs of a row: id, text, metadata (a dict of scalars, or JSON), stamp; and
#: the estimated bytes the entry holds in the payload cache
_Payload = tuple[str, "str | None", "dict[str, Any] | str", Stamp, int]

_json_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Params:
    """hnswlib parameters and the snapshot threshold, from the backend's constructor."""

    ef_construction: int
    M: int
    ef_search: int
    snapshot_every: int
    #: the former write path, kept as the baseline of ``bench/local_update_bench.py``: a
    #: rewritten id keeps its label and hnswlib updates the element in place (slow)
    in_place_updates: bool = False


# -- store files ----------------------------------------------------------------------


def connect(db_path: str, *, create: bool) -> sqlite3.Connection:
    """Open a store. ``create=False`` never creates the file (a missing one raises
    ``sqlite3.OperationalError``)."""
    uri = "file:" + urllib.parse.quote(db_path) + ("?mode=rwc" if create else "?mode=rw")
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30.0
    )
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """``BEGIN <mode>`` ... ``COMMIT``; rolled back when the body raises."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _spec_to_json(spec: NamespaceSpec) -> str:
    return json.dumps(
        {
            "name": spec.name,
            "dimension": spec.dimension,
            "metric": spec.metric,
            "fingerprint": spec.fingerprint,
        }
    )


def _spec_from_json(text: str) -> NamespaceSpec:
    d = json.loads(text)
    return NamespaceSpec(str(d["name"]), int(d["dimension"]), d["metric"], str(d["fingerprint"]))


def read_spec(conn: sqlite3.Connection) -> NamespaceSpec | None:
    """The spec stored in an open store, or None for a store still being created."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return None
        raise
    return None if row is None else _spec_from_json(row[0])


def create_store(db_path: str, spec: NamespaceSpec) -> tuple[sqlite3.Connection, NamespaceSpec]:
    """Create (or open) the store at ``db_path`` and record ``spec`` unless one is there.

    Returns the open connection and the spec the store holds (``spec`` itself when it was
    created by this call; compare them to detect a conflict). Safe against concurrent
    creators in other processes: the check and the insert are one write transaction.
    """
    conn = connect(db_path, create=True)
    try:
        with transaction(conn):
            for stmt in _SCHEMA:
                conn.execute(stmt)
            have = read_spec(conn)
            if have is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('spec', ?), ('format', ?)",
                    (_spec_to_json(spec), str(FORMAT)),
                )
                have = spec
    except BaseException:
        conn.close()
        raise
    return conn, have


def _ensure_retired_table(conn: sqlite3.Connection) -> None:
    """Stores written before labels were retired (format 1) lack the ``retired`` table."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'retired'"
    ).fetchone()
    if row is None:
        with transaction(conn):
            for stmt in _RETIRED_SCHEMA:
                conn.execute(stmt)


def file_identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_disk_full(e: BaseException) -> bool:
    """True for "no space left" from SQLite (``SQLITE_FULL``) or the OS (ENOSPC, EDQUOT)."""
    if isinstance(e, sqlite3.Error):
        code = getattr(e, "sqlite_errorcode", None)
        return code == getattr(sqlite3, "SQLITE_FULL", 13) or "disk is full" in str(e).lower()
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    return False


def hnsw_scores(metric: Metric, distance: Any) -> Any:
    """hnswlib's distances (``1 - cos``, ``1 - <q, v>``, squared euclidean) as vecver's
    scores (higher is closer); ``distance`` is a float or a numpy array."""
    if metric == "cosine" or metric == "dot":
        return 1.0 - distance
    return -distance


def _ids_json(ids: Sequence[str]) -> str | None:
    """Ids (checked by the base: non-empty strings of valid Unicode, no NUL) as a JSON array
    for ``json_each``; None when there are none."""
    return json.dumps(list(ids), ensure_ascii=False) if ids else None


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: the C encoder ``_json_encode`` builds on every call (``JSONEncoder.encode`` makes a new
#: one each time), built once: the same output. No circular-reference check (the base
#: refuses metadata nested more than 64 deep before a backend sees it)
_c_encode: Any = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, json.JSONEncoder().default, json.encoder.encode_basestring,
        None, ":", ",", False, False, False,
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def _metadata_json(md: Any) -> str:
    """Metadata as compact JSON (non-ASCII kept), ``{}`` when empty."""
    if not md:
        return "{}"
    if type(md) is not dict:
        md = dict(md)
    if _c_encode is not None:
        return "".join(_c_encode(md, 0))
    return _json_encode(md)


def _loads(md: str | None) -> dict[str, Any]:
    if not md or md == "{}":
        return {}
    out: dict[str, Any] = json.loads(md)
    return out


def _stack(blobs: Sequence[bytes], dim: int) -> Matrix:
    """float32 matrix (writable) from raw vector blobs."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    buf = bytearray(b"".join(blobs))
    return np.frombuffer(buf, dtype=np.float32).reshape(len(blobs), dim)


# -- the namespace --------------------------------------------------------------------


class Namespace:
    """An open namespace. Every method must be called with ``self.lock`` held."""

    def __init__(
        self,
        hnswlib: Any,
        spec: NamespaceSpec,
        directory: str,
        conn: sqlite3.Connection,
        params: Params,
        identity: tuple[int, int],
    ) -> None:
        self.hnswlib = hnswlib
        self.spec = spec
        self.dir = directory
        self.db_path = os.path.join(directory, STORE_FILE)
        self.conn = conn
        self.params = params
        self.identity = identity
        self.lock = threading.RLock()
        self.closed = False
        self.space = _HNSW_SPACE[spec.metric]
        # the index cache, loaded lazily by sync()
        self.index: Any = None
        self.applied_seq = 0
        self.data_version = -1
        self.present = np.zeros(0, dtype=bool)  # label is in the index (live or marked deleted)
        self.alive = np.zeros(0, dtype=bool)  # label is in the index and not marked deleted
        self.live = 0
        self.since_snapshot = 0
        self.snapshot_seq = 0
        #: a cursor kept for ``PRAGMA data_version`` (checked before every operation)
        self.dv_cursor: sqlite3.Cursor | None = None
        #: a snapshot complete up to this seq was written inside a transaction: its
        #: ``retired`` rows are pruned once that transaction ends (0: nothing due)
        self.prune_due = 0
        self.executor: ThreadPoolExecutor | None = None
        # the index add an upsert left running (see settle): (future, index, labels added,
        # labels retired, seq of the write)
        self.pending: tuple[Future[None], Any, IntArray, IntArray, int] | None = None
        # label -> (id, text, metadata, stamp) of hits read before; the metadata is a dict
        # of scalars (handed out as a copy) or its JSON text (parsed for every hit)
        self.payload: dict[int, _Payload] = {}
        #: the estimated size of :attr:`payload` (see ``_PAYLOAD_BYTES``)
        self.payload_bytes = 0

    # -- lifecycle --------------------------------------------------------------------

    @staticmethod
    def open(hnswlib: Any, name: str, directory: str, params: Params) -> Namespace:
        """Open an existing namespace; ``NamespaceNotFound`` when there is none."""
        db_path = os.path.join(directory, STORE_FILE)
        try:
            # taken before connecting: if the file is replaced in between, the first
            # staleness check reopens (the safe direction)
            identity = file_identity(db_path)
        except (FileNotFoundError, NotADirectoryError):
            raise NamespaceNotFound(name) from None
        try:
            conn = connect(db_path, create=False)
        except sqlite3.OperationalError:
            if not os.path.exists(db_path):
                raise NamespaceNotFound(name) from None
            raise  # a real failure (disk full, permissions): reported as such
        try:
            spec = read_spec(conn)
            if spec is None or spec.name != name:
                raise NamespaceNotFound(name)
            _ensure_retired_table(conn)
            return Namespace(hnswlib, spec, directory, conn, params, identity)
        except BaseException:
            conn.close()
            raise

    def is_stale(self) -> bool:
        """True when the store this object has open was dropped (or replaced)."""
        try:
            return file_identity(self.db_path) != self.identity
        except OSError:
            return True

    def close(self, *, snapshot: bool) -> None:
        """Snapshot the index if it changed since the last snapshot (when ``snapshot``), then
        release everything. A failed snapshot is logged, never raised: the store is the
        truth and the next open replays what the snapshot would have held."""
        if self.closed:
            return
        self.closed = True
        try:
            if snapshot:
                self.settle()
            if snapshot and self.index is not None and self.since_snapshot > 0:
                try:
                    self.write_snapshot()
                except Exception as e:  # noqa: BLE001 - the store is durable anyway
                    log.warning("could not snapshot namespace %r: %s", self.spec.name, e)
        finally:
            self.index = None
            self.conn.close()
            if self.executor is not None:
                self.executor.shutdown(wait=True)
                self.executor = None

    # -- the index cache --------------------------------------------------------------

    def _new_index(self, capacity: int) -> Any:
        index = self.hnswlib.Index(space=self.space, dim=self.spec.dimension)
        index.init_index(
            max_elements=max(capacity, _INITIAL_CAPACITY),
            ef_construction=self.params.ef_construction,
            M=self.params.M,
        )
        index.set_ef(self.params.ef_search)
        return index

    def _snapshots(self) -> list[tuple[int, str]]:
        """(seq, path) of the snapshot files, newest first."""
        out: list[tuple[int, str]] = []
        try:
            names = os.listdir(self.dir)
        except OSError:
            return out
        for n in names:
            m = _SNAPSHOT_RE.match(n)
            if m:
                out.append((int(m.group(1)), os.path.join(self.dir, n)))
        out.sort(reverse=True)
        return out

    def _grow(self, size: int) -> None:
        if size > self.present.shape[0]:
            new = max(size, 2 * self.present.shape[0], _INITIAL_CAPACITY)
            for attr in ("present", "alive"):
                old = getattr(self, attr)
                arr = np.zeros(new, dtype=bool)
                arr[: old.shape[0]] = old
                setattr(self, attr, arr)

    def _try_snapshot(self, path: str, seq: int) -> bool:
        """Load the snapshot at ``path`` (complete up to ``seq``) if it is consistent with
        the store. Must run inside the read transaction of :meth:`_load`."""
        if not os.path.exists(path):
            return False  # removed by a newer snapshot's writer since we listed it
        index = self.hnswlib.Index(space=self.space, dim=self.spec.dimension)
        try:
            index.load_index(path)
        except Exception as e:  # noqa: BLE001 - a bad snapshot is skipped, never fatal
            log.warning("ignoring unreadable snapshot %s: %s", path, e)
            return False
        if int(index.dim) != self.spec.dimension:
            return False
        ids = np.asarray(index.get_ids_list(), dtype=np.int64)
        live = np.fromiter(
            (
                r[0]
                for r in self.conn.execute(
                    "SELECT label FROM rows WHERE seq <= ? AND deleted = 0", (seq,)
                )
            ),
            dtype=np.int64,
        )
        if ids.size and ids.min() < 0:
            return False
        top = int(max(ids.max() if ids.size else 0, live.max() if live.size else 0)) + 1
        self._grow(top)
        self.present[:] = False
        self.alive[:] = False
        self.present[ids] = True
        if live.size and not self.present[live].all():
            log.warning("ignoring snapshot %s: it lacks rows of the store", path)
            self.present[:] = False
            return False
        self.alive[live] = True
        self.live = int(live.size)
        index.set_ef(self.params.ef_search)
        self.index = index
        return True

    def _load(self) -> None:
        """Build the index cache: newest loadable snapshot + replay of the rows after it."""
        self.index = None
        self.present = np.zeros(0, dtype=bool)
        self.alive = np.zeros(0, dtype=bool)
        self.live = 0
        dv = self._data_version()
        with transaction(self.conn, "DEFERRED"):
            current = self._counter()
            base = 0
            for seq, path in self._snapshots():
                if seq <= current and self._try_snapshot(path, seq):
                    base = seq
                    break
            if self.index is None:
                n = self.conn.execute("SELECT count(*) FROM rows WHERE deleted = 0").fetchone()[0]
                self.index = self._new_index(int(n * 1.25) + 16)
                self.present = np.zeros(0, dtype=bool)
                self.alive = np.zeros(0, dtype=bool)
                self.live = 0
            self.snapshot_seq = base
            self.since_snapshot = 0
            self._replay_rows(base, after_snapshot=base > 0)
            if 0 < base < self._retired_floor():
                self._reconcile_snapshot()
            self.applied_seq = current
        self.data_version = dv
        self._maybe_snapshot()

    def _counter(self) -> int:
        seq: int = self.conn.execute("SELECT seq FROM counter WHERE k = 0").fetchone()[0]
        return seq

    def _retired_floor(self) -> int:
        """The highest seq whose ``retired`` rows were pruned (0: none ever were)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'retired_floor'").fetchone()
        return 0 if row is None else int(row[0])

    def _data_version(self) -> int:
        cur = self.dv_cursor
        if cur is None:
            cur = self.dv_cursor = self.conn.cursor()
        dv: int = cur.execute("PRAGMA data_version").fetchone()[0]
        return dv

    def _replay_rows(self, since: int, *, after_snapshot: bool = False) -> None:
        """Apply every row written after ``since`` to the index (inside a transaction).

        ``after_snapshot``: the index was just loaded from the snapshot of write ``since``;
        ``alive`` then only knows the rows written up to ``since``, and a row deleted after
        it may be live, marked deleted or absent in the snapshot."""
        dim = self.spec.dimension
        cur = self.conn.execute(
            "SELECT r.label, b.vector FROM rows r JOIN blobs b ON b.label = r.label"
            " WHERE r.seq > ? AND r.deleted = 0",
            (since,),
        )
        while True:
            chunk = cur.fetchmany(_REPLAY_CHUNK)
            if not chunk:
                break
            labels = np.fromiter((c[0] for c in chunk), dtype=np.int64, count=len(chunk))
            self._add(labels, _stack([c[1] for c in chunk], dim))
        dead = np.fromiter(
            (
                r[0]
                for r in self.conn.execute(
                    "SELECT label FROM rows WHERE seq > ? AND deleted = 1"
                    " UNION ALL SELECT label FROM retired WHERE seq > ?",
                    (since, since),
                )
            ),
            dtype=np.int64,
        )
        if after_snapshot and dead.size:
            unsure = dead[dead < self.present.shape[0]]
            unsure = unsure[self.present[unsure] & ~self.alive[unsure]]
            for label in unsure.tolist():
                with contextlib.suppress(RuntimeError):  # already marked in the snapshot
                    self.index.mark_deleted(label)
            self.since_snapshot += int(unsure.size)
        self._mark_deleted(dead)

    def _catch_up(self) -> None:
        """Replay everything committed after ``applied_seq`` (by anyone)."""
        dv = self._data_version()
        with transaction(self.conn, "DEFERRED"):
            current = self._counter()
            if current != self.applied_seq:
                self._replay_rows(self.applied_seq)
                if self.applied_seq < self._retired_floor():
                    self._reconcile_live()
                self.applied_seq = current
        self.data_version = dv

    def _store_live(self) -> npt.NDArray[np.bool_]:
        """A bitmap over the index's labels: True where a live row of the store has the
        label (inside the caller's read transaction)."""
        live = np.fromiter(
            (r[0] for r in self.conn.execute("SELECT label FROM rows WHERE deleted = 0")),
            dtype=np.int64,
        )
        keep = np.zeros(self.alive.shape[0], dtype=bool)
        keep[live[live < keep.shape[0]]] = True
        return keep

    def _reconcile_live(self) -> None:
        """Mark deleted every label the index holds alive that no live row of the store has
        (after a replay from a seq whose ``retired`` rows were pruned since)."""
        stale = np.flatnonzero(self.alive & ~self._store_live()).astype(np.int64)
        if stale.size:
            log.info("namespace %r: %d retired labels found by reconciling the index with "
                     "the store", self.spec.name, int(stale.size))
        self._mark_deleted(stale)

    def _reconcile_snapshot(self) -> None:
        """After loading (and replaying onto) a snapshot older than the retired floor: mark
        deleted every element of the graph that no live row has. The bitmaps were built
        from the store, so which of those the snapshot already holds as deleted is unknown;
        marking one twice is refused by hnswlib and ignored."""
        unsure = np.flatnonzero(self.present & ~self.alive & ~self._store_live())
        marked = 0
        for label in unsure.tolist():
            try:
                self.index.mark_deleted(label)
            except RuntimeError:  # already marked in the snapshot
                continue
            marked += 1
        self.since_snapshot += marked

    def sync(self, *, defer: bool = False) -> None:
        """Make the index reflect every committed write (cheap when nothing changed).

        ``defer`` (for an upsert, which settles right before it adds): an index add left
        running by the previous upsert may go on when no one else committed since."""
        if self.pending is not None and not defer:
            self.settle()
        if self.index is None:
            self.settle()
            self._invalidating(self._load)
        elif self._data_version() != self.data_version:
            self.settle()
            self._invalidating(self._catch_up)
        if self.pending is None:
            self._maybe_snapshot()

    def settle(self) -> None:
        """Finish the index add the last upsert left running (it overlaps whatever the
        caller does next: preparing the next batch, checkpointing): wait for it, then mark
        its labels added and the labels it retired deleted. Every operation that reads or
        changes the index settles first (through :meth:`sync`). When the add failed, the
        index is dropped: the store holds the write, the next sync rebuilds the index."""
        pending = self.pending
        if pending is None:
            return
        self.pending = None
        added, index, labels, old, seq = pending
        try:
            added.result()
        except Exception as e:  # noqa: BLE001 - the store is the truth; rebuilt from it
            log.warning("index update of namespace %r failed (%s); it is rebuilt from the "
                        "store", self.spec.name, e)
            self.index = None
            return
        except BaseException:
            self.index = None
            raise
        if self.index is not index:
            return  # replaced since (by an index loaded from the store, with this write)
        self._invalidating(lambda: self._retire(labels, old))
        self.applied_seq = seq
        self._maybe_compact()
        self._maybe_snapshot()

    def _invalidating(self, fn: Any) -> None:
        try:
            fn()
        except BaseException:
            # the cache may be half-updated; the next operation rebuilds it from the store
            self.index = None
            raise

    def _add(self, labels: IntArray, vectors: Matrix) -> None:
        if labels.size == 0:
            return
        self._reserve(labels)
        self.index.add_items(vectors, labels, num_threads=-1)
        self._added(labels)

    def _reserve(self, labels: IntArray) -> None:
        """Grow the label bitmaps and the index so that ``labels`` fit."""
        self._grow(int(labels.max()) + 1)
        new = int((~self.present[labels]).sum())
        index = self.index
        need = int(index.element_count) + new
        cap = int(index.get_max_elements())
        if need > cap:
            index.resize_index(max(need, 2 * cap))

    def _added(self, labels: IntArray) -> None:
        """Book-keeping once ``labels`` were added to the index."""
        self.present[labels] = True
        self.live += int((~self.alive[labels]).sum())
        self.alive[labels] = True
        self.since_snapshot += int(labels.size)

    def _worker(self) -> ThreadPoolExecutor:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="vecver-local-index")
        return self.executor

    def _mark_deleted(self, labels: IntArray) -> None:
        if labels.size == 0:
            return
        labels = labels[labels < self.alive.shape[0]]
        labels = labels[self.alive[labels]]
        for label in labels.tolist():
            self.index.mark_deleted(label)
        self.alive[labels] = False
        self.live -= int(labels.size)
        self.since_snapshot += int(labels.size)

    def _maybe_compact(self) -> None:
        """Rebuild the index from its live elements once it holds more dead (retired or
        deleted) elements than live ones, and at least ``_COMPACT_MIN``: an update then
        costs about two inserts, amortized, instead of hnswlib's slow in-place update."""
        index = self.index
        if index is None:
            return
        dead = int(index.element_count) - self.live
        if dead < _COMPACT_MIN or dead <= self.live:
            return
        self._invalidating(self.compact)

    def compact(self) -> None:
        """Replace the index by one holding only the live elements (same labels)."""
        self.settle()
        live = np.flatnonzero(self.alive).astype(np.int64)
        new = self._new_index(int(live.size * 1.25) + 16)
        step = 8192
        for start in range(0, int(live.size), step):
            part = live[start : start + step]
            new.add_items(np.asarray(self.index.get_items(part), dtype=np.float32), part, -1)
        self.index = new
        self.present[:] = False
        self.present[live] = True
        self.since_snapshot += int(live.size) + 1

    def _maybe_snapshot(self) -> None:
        if self.index is not None and self.since_snapshot > self.params.snapshot_every:
            try:
                self.write_snapshot()
            except Exception as e:  # noqa: BLE001 - the store is durable; retried later
                log.warning("could not snapshot namespace %r: %s", self.spec.name, e)

    def write_snapshot(self) -> None:
        """Write ``hnsw-<applied_seq>.bin`` atomically (temp file, fsync, rename), then
        remove older snapshots. Skipped when one at least as new exists."""
        self.settle()
        seq = self.applied_seq
        snaps = self._snapshots()
        if not snaps or snaps[0][0] < seq:
            tmp = os.path.join(self.dir, f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}")
            try:
                self.index.save_index(tmp)
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, os.path.join(self.dir, f"hnsw-{seq}.bin"))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(self.dir)
        self.snapshot_seq = max(seq, snaps[0][0] if snaps else 0)
        self.since_snapshot = 0
        for s, path in self._snapshots():
            if s < self.snapshot_seq:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        self._remove_stale_temps()
        self.prune_due = max(self.prune_due, seq)
        if not self.conn.in_transaction:  # else (an upsert's settle) once that commits
            self._prune_if_due()

    def _prune_if_due(self) -> None:
        """Prune the ``retired`` rows a written snapshot covers (outside any transaction).
        A failure is logged: the rows only cost space, and are pruned after the next one."""
        through = self.prune_due
        if through <= 0 or self.conn.in_transaction:
            return
        self.prune_due = 0
        try:
            self.prune_retired(through)
        except sqlite3.Error as e:
            log.warning("could not prune retired labels of namespace %r: %s", self.spec.name, e)

    def prune_retired(self, through: int) -> int:
        """Delete the ``retired`` rows of writes up to ``through`` and raise the floor to it;
        the number of rows deleted. Call only once a durable snapshot complete up to at
        least ``through`` exists (every label retired up to then is marked deleted in it),
        so the rows could serve only indexes older than that snapshot, which reconcile
        instead. Takes the write lock only when there is something to prune."""
        conn = self.conn
        row = conn.execute("SELECT 1 FROM retired WHERE seq <= ? LIMIT 1", (through,)).fetchone()
        if row is None:
            return 0
        with transaction(conn):
            n = conn.execute("DELETE FROM retired WHERE seq <= ?", (through,)).rowcount
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('retired_floor', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER),"
                " CAST(excluded.value AS INTEGER))",
                (str(through),),
            )
        return int(n)

    def _remove_stale_temps(self) -> None:
        """Temp files left by writers killed mid-snapshot (older than an hour)."""
        cutoff = time.time() - 3600
        with contextlib.suppress(OSError):
            for n in os.listdir(self.dir):
                if n.startswith(_TMP_PREFIX):
                    p = os.path.join(self.dir, n)
                    with contextlib.suppress(OSError):
                        if os.stat(p).st_mtime < cutoff:
                            os.unlink(p)

    # -- writes -----------------------------------------------------------------------

    def upsert(self, records: Sequence[Record], vectors: Matrix) -> None:
        """Write ``records`` (already validated; ``vectors`` is their stacked float32
        matrix) in one transaction, then apply them to the index."""
        n = len(records)
        if n == 0:
            return
        try:
            rows = [
                (
                    r.id,
                    r.stamp.fingerprint,
                    r.stamp.source_hash,
                    float(r.stamp.written_at),
                    _metadata_json(r.metadata),
                )
                for r in records
            ]
        except (TypeError, ValueError, RecursionError) as e:
            raise InvalidInput(f"metadata is not JSON-serializable: {e}") from e
        if vectors.shape[1] != self.spec.dimension:  # recreated since the base checked
            raise DimensionMismatch(
                self.spec.dimension, int(vectors.shape[1]), None, self.spec.name
            )
        fp = self.spec.fingerprint
        for r in records:
            if r.stamp.fingerprint != fp:
                raise StampMismatch(self.spec.name, fp, r.stamp.fingerprint, r.id)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        committed = False
        added: Future[None] | None = None
        try:
            seq: int = conn.execute(
                "UPDATE counter SET seq = seq + 1 WHERE k = 0 RETURNING seq"
            ).fetchone()[0]
            ids_json = json.dumps([r[0] for r in rows], ensure_ascii=False)
            # every write gets fresh labels above all used so far (rows are never removed,
            # so the largest label is the largest rowid); the old labels are retired
            top: int = conn.execute("SELECT coalesce(max(label), 0) FROM rows").fetchone()[0]
            existing: dict[str, int] = dict(
                conn.execute(f"SELECT id, label FROM rows WHERE id IN {_IDS_IN}", (ids_json,))
            )
            if self.params.in_place_updates:
                labels = np.fromiter(
                    (existing.get(r.id, -1) for r in records), dtype=np.int64, count=n
                )
                fresh = labels < 0
                labels[fresh] = np.arange(top + 1, top + 1 + int(fresh.sum()), dtype=np.int64)
                existing = {}
            else:
                labels = np.arange(top + 1, top + 1 + n, dtype=np.int64)
            old = np.fromiter(existing.values(), dtype=np.int64, count=len(existing))
            if old.size:
                old_list = old.tolist()
                conn.executemany(
                    "INSERT OR REPLACE INTO retired (label, seq) VALUES (?, ?)",
                    [(lab, seq) for lab in old_list],
                )
                conn.execute(
                    f"DELETE FROM blobs WHERE label IN {_IDS_IN}", (json.dumps(old_list),)
                )
            label_list = labels.tolist()
            conn.executemany(
                _UPSERT_ROWS,
                [(lab, *row, seq) for lab, row in zip(label_list, rows, strict=True)],
            )
            conn.executemany(
                _UPSERT_BLOBS,
                zip(
                    label_list,
                    [v.tobytes() for v in vectors],
                    [r.text for r in records],
                    strict=True,
                ),
            )
            self.settle()  # the add of the previous upsert overlapped all of the above
            fast = self.index is not None and self.applied_seq == seq - 1
            if fast:
                # the index add (GIL released, all cores) overlaps the commit (I/O bound)
                # and, once this returns, the caller's next batch (see settle)
                self._reserve(labels)
                added = self._worker().submit(self.index.add_items, vectors, labels, -1)
            conn.execute("COMMIT")
            committed = True
        except BaseException as e:
            if added is not None:
                # the index may hold rows the store does not (or lack rows it does): rebuild
                # it from the store on the next operation
                with contextlib.suppress(BaseException):
                    added.result()
                self.index = None
            if not committed and conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(e, UnicodeEncodeError):
                bad = next((r.id for r in records if not _encodable(r.id)), None)
                if bad is not None:
                    raise InvalidId(bad) from e
                raise InvalidInput(f"text or metadata is not valid Unicode: {e}") from e
            raise
        self._prune_if_due()  # after a snapshot written by the settle above
        if added is not None:
            self.pending = (added, self.index, labels, old, seq)
            return
        if self.index is None:
            return  # loaded (with this write) by the next sync
        self._invalidating(self._catch_up)
        self._maybe_compact()
        self._maybe_snapshot()

    def _retire(self, labels: IntArray, old: IntArray) -> None:
        self._added(labels)
        self._mark_deleted(old)

    def delete(self, ids: Sequence[str]) -> None:
        """Flag the rows of ``ids`` deleted in one transaction, then drop them from the
        index. Ids that are not present are ignored."""
        payload = _ids_json(ids)
        if payload is None:
            return
        conn = self.conn
        with transaction(conn):
            seq = self._counter() + 1
            cur = conn.execute(
                f"UPDATE rows SET deleted = 1, seq = ?, metadata = NULL"
                f" WHERE deleted = 0 AND id IN {_IDS_IN}",
                (seq, payload),
            )
            if cur.rowcount <= 0:
                return  # nothing to delete: commit the empty transaction, no seq used
            conn.execute("UPDATE counter SET seq = ? WHERE k = 0", (seq,))
            labels = np.fromiter(
                (r[0] for r in conn.execute("SELECT label FROM rows WHERE seq = ?", (seq,))),
                dtype=np.int64,
            )
            conn.execute(
                "DELETE FROM blobs WHERE label IN (SELECT label FROM rows WHERE seq = ?)", (seq,)
            )
        if self.index is None:
            return
        if self.applied_seq == seq - 1:
            self._invalidating(lambda: self._mark_deleted(labels))
            self.applied_seq = seq
        else:
            self._invalidating(self._catch_up)
        self._maybe_compact()
        self._maybe_snapshot()

    # -- reads ------------------------------------------------------------------------

    def _records(self, rows: list[Any], with_vectors: bool) -> list[Record]:
        """Records from rows of ``_RECORD_COLS`` (+ the vector blob)."""
        md = _MetadataReader()
        if not with_vectors:
            return [
                Record(doc_id, None, text, md.read(md_json), Stamp(fp, doc_id, sh, at))
                for doc_id, fp, sh, at, md_json, text in rows
            ]
        vecs = _stack([r[6] for r in rows], self.spec.dimension)
        return [
            Record(doc_id, v, text, md.read(md_json), Stamp(fp, doc_id, sh, at))
            for (doc_id, fp, sh, at, md_json, text, _), v in zip(rows, vecs, strict=True)
        ]

    def fetch(self, ids: Sequence[str], with_vectors: bool,
              with_text: bool = True) -> dict[str, Record]:
        """Records of the present ids, in one query (``with_text=False`` without vectors:
        ``rows`` alone, the blobs not read; the texts are None)."""
        payload = _ids_json(ids)
        if payload is None:
            return {}
        rows = self.conn.execute(
            f"SELECT {_select(with_vectors, with_text)}"
            f" WHERE r.deleted = 0 AND r.id IN {_IDS_IN}",
            (payload,),
        ).fetchall()
        return {rec.id: rec for rec in self._records(rows, with_vectors)}

    def scan(self, cursor: str | None, limit: int, with_vectors: bool,
             with_text: bool = True) -> ScanPage:
        """One page in id order after ``cursor`` (the last id of the previous page);
        ``with_text`` as for :meth:`fetch` (the same order and cursors)."""
        rows = self.conn.execute(
            f"SELECT {_select(with_vectors, with_text)}"
            " WHERE r.deleted = 0 AND r.id > ? ORDER BY r.id LIMIT ?",
            ("" if cursor is None else cursor, limit + 1),
        ).fetchall()
        more = len(rows) > limit
        records = self._records(rows[:limit], with_vectors)
        return ScanPage(records, records[-1].id if more else None)

    def find(self, field: str, values: Sequence[str], with_vectors: bool) -> list[Record]:
        """Live records whose metadata ``field`` holds one of ``values`` (a string, or an
        integer whose decimal form is one), in one query. ``field`` holds no ``"``."""
        keys: list[str | int] = list(dict.fromkeys(values))
        keys += [int(v) for v in values if re.fullmatch(r"-?[0-9]{1,18}", v)]
        cols = _RECORD_COLS + (", b.vector" if with_vectors else "")
        rows = self.conn.execute(
            f"SELECT {cols} FROM rows r JOIN blobs b ON b.label = r.label"
            " WHERE r.deleted = 0 AND json_extract(r.metadata, ?) IN"
            " (SELECT value FROM json_each(?))",
            (f'$."{field}"', json.dumps(keys)),
        ).fetchall()
        return self._records(rows, with_vectors)

    def count(self) -> int:
        if self.index is not None:
            return self.live
        n: int = self.conn.execute("SELECT count(*) FROM rows WHERE deleted = 0").fetchone()[0]
        return n

    # -- search -----------------------------------------------------------------------

    def _allowed(self, flt: Filter) -> IntArray:
        """Labels of the live rows whose metadata matches ``flt`` (exactly
        ``Filter.matches``) and that the index holds."""
        translated = to_sql(flt)
        if translated is not None:
            where, params = translated
            cur = self.conn.execute(
                f"SELECT label FROM rows WHERE deleted = 0 AND ({where})", params
            )
            labels = np.fromiter((r[0] for r in cur), dtype=np.int64)
        else:
            cur = self.conn.execute("SELECT label, metadata FROM rows WHERE deleted = 0")
            labels = np.fromiter((r[0] for r in cur if flt.matches(_loads(r[1]))), dtype=np.int64)
        # rows committed by others after our last sync are not in the index yet
        labels = labels[labels < self.alive.shape[0]]
        return labels[self.alive[labels]]

    def search(self, queries: Matrix, k: int, flt: Filter | None) -> list[list[Hit]]:
        if queries.shape[1] != self.spec.dimension:  # recreated since the base checked
            raise DimensionMismatch(
                self.spec.dimension, int(queries.shape[1]), None, self.spec.name
            )
        nq = int(queries.shape[0])
        if self.live == 0 or nq == 0:
            return [[] for _ in range(nq)]
        if flt:
            allowed = self._allowed(flt)
            n = int(allowed.size)
            if n == 0:
                return [[] for _ in range(nq)]
            if n <= _BRUTE_MIN or (n < 0.05 * self.live and n <= _BRUTE_MAX):
                return self._brute(queries, allowed, k)
            allowed_set = set(allowed.tolist())
            found = self._knn(queries, min(k, n), allowed_set.__contains__)
            if found is None:
                return self._brute(queries, allowed, k)
            return self._hits(*found, k)
        found = None
        if self.live > _EXHAUSTIVE_MAX:
            found = self._knn(queries, min(k, self.live), None)
        if found is None:
            return self._brute(queries, np.flatnonzero(self.alive).astype(np.int64), k)
        return self._hits(*found, k)

    def _knn(
        self, queries: Matrix, k: int, flt: Any
    ) -> tuple[list[list[int]], list[list[float]]] | None:
        """ANN search: per query its labels and scores (plain lists, best first); None when
        hnswlib cannot return ``k`` results (the caller falls back to brute force)."""
        index = self.index
        index.set_ef(max(self.params.ef_search, k))
        try:
            if flt is None:
                labels, dist = index.knn_query(queries, k=k, num_threads=-1)
            else:
                # a Python filter runs under the GIL: extra threads only contend
                labels, dist = index.knn_query(queries, k=k, num_threads=1, filter=flt)
        except RuntimeError:
            return None
        # float32 distances as Python floats are exact; 1 - d (or -d) in double precision
        # gives the same scores as hnsw_scores over a float64 array
        if self.spec.metric == "l2":
            scores = [[-d for d in row] for row in dist.tolist()]
        else:
            scores = [[1.0 - d for d in row] for row in dist.tolist()]
        return labels.tolist(), scores

    def _brute(self, queries: Matrix, labels: IntArray, k: int) -> list[list[Hit]]:
        """Exact scores against ``labels``; keeps every candidate tied with the k-th best so
        that ties are broken by id, like the reference backend."""
        per_q_labels: list[list[int]] = []
        per_q_scores: list[list[float]] = []
        step = 8192
        best: list[tuple[IntArray, npt.NDArray[np.float32]]] = [
            (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
            for _ in range(queries.shape[0])
        ]
        for start in range(0, int(labels.size), step):
            part = labels[start : start + step]
            vecs = np.asarray(self.index.get_items(part), dtype=np.float32)
            scores = exact_scores(self.spec.metric, queries, vecs)
            for qi in range(queries.shape[0]):
                lab = np.concatenate([best[qi][0], part])
                sc = np.concatenate([best[qi][1], scores[qi]])
                best[qi] = _top_with_ties(lab, sc, k)
        for lab, sc in best:
            per_q_labels.append(lab.tolist())
            per_q_scores.append(sc.astype(np.float64).tolist())
        return self._hits(per_q_labels, per_q_scores, k)

    def _hits(
        self,
        labels: list[list[int]],
        scores: list[list[float]],
        k: int,
    ) -> list[list[Hit]]:
        """Hits with text, metadata and stamp (from the payload cache, the rest read in one
        query); best first, ties by id. A row already strictly best first (hnswlib's order,
        when no scores tie) is not sorted again."""
        payload = self.payload
        missing = {x for row in labels for x in row if x not in payload}
        fresh = self._read_payload(missing) if missing else {}
        out: list[list[Hit]] = []
        for lab_row, sc_row in zip(labels, scores, strict=True):
            hits: list[Hit] = []
            for label, score in zip(lab_row, sc_row, strict=True):
                p = payload.get(label) or fresh.get(label)
                if p is None:
                    continue  # deleted by another process since our last sync
                md = p[2]
                meta = dict(md) if isinstance(md, dict) else _parse_object(md)
                hits.append(Hit(p[0], score, p[1], meta, p[3]))
            if len(hits) > 1 and not all(a.score > b.score for a, b in zip(hits, hits[1:])):
                hits.sort(key=_hit_order)
            out.append(hits[:k])
        return out

    def _read_payload(self, labels: set[int]) -> dict[int, _Payload]:
        """The payloads of ``labels`` whose rows are live, read in one query; kept in
        :attr:`payload` too (within its bounds)."""
        wanted = sorted(labels)
        if len(wanted) <= _HITS_PLACEHOLDERS_MAX:
            sql = _HITS_SELECT + "(" + ",".join("?" * len(wanted)) + ")"
            cur = self.conn.execute(sql, wanted)
        else:
            cur = self.conn.execute(_HITS_SELECT + _IDS_IN, (json.dumps(wanted),))
        fresh: dict[int, _Payload] = {}
        cache = not self.params.in_place_updates  # rewritten ids keep their labels there
        payload = self.payload
        size = self.payload_bytes
        for label, doc_id, fp, sh, at, md_json, text in cur:
            md: dict[str, Any] | str
            if not md_json or md_json == "{}":
                md = {}
            else:
                parsed = _parse_object(md_json)
                md = parsed if all(type(v) in _SCALAR_TYPES for v in parsed.values()) else md_json
            nbytes = _PAYLOAD_ENTRY + len(doc_id) + len(md_json or "") + len(text or "")
            p = fresh[label] = (doc_id, text, md, Stamp(fp, doc_id, sh, at), nbytes)
            if cache and (text is None or len(text) <= _PAYLOAD_TEXT_MAX):
                payload[label] = p
                size += nbytes
        if size > _PAYLOAD_BYTES:  # drop the oldest entries, down to 3/4 of the bound
            drop = []
            for label, p in payload.items():
                if size <= _PAYLOAD_BYTES * 3 // 4:
                    break
                drop.append(label)
                size -= p[4]
            for label in drop:
                del payload[label]
            if not payload:
                size = 0
        self.payload_bytes = size
        return fresh


class _MetadataReader:
    """Parses the metadata JSON of one page of rows. Metadata often repeats (a source, a
    category, a language): a repeated text of scalars only is parsed once, and each record
    gets its own copy of the dict. Gives up memoizing when the first texts do not repeat."""

    __slots__ = ("memo", "tries", "hits")

    def __init__(self) -> None:
        self.memo: dict[str, dict[str, Any]] = {}
        self.tries = 0
        self.hits = 0

    def read(self, md_json: str | None) -> dict[str, Any]:
        if not md_json or md_json == "{}":
            return {}
        memo = self.memo
        got = memo.get(md_json)
        if got is not None:
            self.hits += 1
            return dict(got)
        parsed = _parse_object(md_json)
        if self.tries < 64 or self.hits * 4 >= self.tries:  # memoize while it pays
            self.tries += 1
            if len(memo) < 4096 and all(type(v) in _SCALAR_TYPES for v in parsed.values()):
                memo[md_json] = parsed
                return dict(parsed)
        return parsed


_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))
_scan_once: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _parse_object(text: str) -> dict[str, Any]:
    """A JSON object written by this backend (compact, no surrounding space), parsed with
    the decoder's scanner directly (what ``json.loads`` ends in, minus its wrappers); any
    other text is parsed by ``json.loads``."""
    if text[:1] == "{":
        try:
            obj, end = _scan_once(text, 0)
        except (StopIteration, ValueError):
            obj, end = None, -1
        if end == len(text) and type(obj) is dict:
            return obj
    return _loads(text)


def _hit_order(h: Hit) -> tuple[float, str]:
    return (-h.score, h.id)


def _top_with_ties(
    labels: IntArray, scores: npt.NDArray[np.float32], k: int
) -> tuple[IntArray, npt.NDArray[np.float32]]:
    """The k best (by score) plus everything tied with the k-th."""
    if scores.size <= k:
        return labels, scores
    kth = np.partition(scores, scores.size - k)[scores.size - k]
    keep = scores >= kth
    return labels[keep], scores[keep]
