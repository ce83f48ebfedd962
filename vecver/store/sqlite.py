"""The manifest in one SQLite file: the embedded :class:`~vecver.store.base.ManifestStore`.

It holds collections, spaces, namespaces and their lifecycle states, the alias history,
backfill checkpoints, tombstones, write intents, evaluation results, owners and leases, a
work queue and an append-only event log. Every step is one transaction (``BEGIN
IMMEDIATE``), so a crash leaves either the old or the new state, never a mix. The
lifecycle rules themselves are :mod:`vecver.lifecycle`; this module only stores.

Several processes may share one manifest file (WAL mode, busy timeout). A file that is
readable but not writable here is opened read-only: reads work, the first write raises
:class:`~vecver.errors.ManifestReadOnly`. Every SQLite failure is reported as a
:class:`~vecver.errors.ManifestError` that names the cause (full, read-only, corrupt,
cannot be opened); no ``sqlite3`` type leaves this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .. import lifecycle
from ..errors import (
    AlreadyRecorded,
    InvalidArgument,
    InvalidId,
    InvalidInput,
    LeaseLost,
    ManifestCorrupt,
    ManifestEmpty,
    ManifestError,
    ManifestForeign,
    ManifestFull,
    ManifestReadOnly,
    ManifestUnavailable,
    ManifestVersionError,
    QueueFull,
    SpaceConflict,
    StateError,
    UnknownCollection,
)
from ..lifecycle import LIVE_STATES, STATES
from ._signal import MAX_AGE as SIGNAL_MAX_AGE
from ._signal import ChangeSignal
from ._signal import now as _signal_now
from .base import (
    DEFAULT_BACKEND,
    AliasChange,
    Artifact,
    Checkpoint,
    Evaluation,
    Event,
    Intent,
    Lease,
    NamespaceRow,
    QueueStats,
    SpaceRow,
    WorkItem,
)
from .leases import actor, local_verdict, owner_alive, owner_id, parse_owner

__all__ = [
    "APPLICATION_ID", "LIVE_STATES", "SCHEMA_VERSION", "STATES", "Checkpoint", "Intent",
    "Manifest", "NamespaceRow", "SpaceRow", "actor", "owner_alive", "owner_id",
]

log = logging.getLogger(__name__)

APPLICATION_ID = 0x76655652  # "veVR"
#: 1: the first layout; 2: namespaces.backend and .reason, owners, work queue;
#: 3: namespaces.layout, artifacts, read counts, counters
SCHEMA_VERSION = 3

#: how long an owner counts as alive after its last heartbeat (seconds)
OWNER_TTL = 30.0
#: items not yet completed that one kind of work may hold
QUEUE_LIMIT = 100_000

_T = TypeVar("_T")

# Each statement on its own: ``executescript`` would commit the enclosing transaction.
_SCHEMA_V1 = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS spaces (
        label TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        revision TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS collections (
        name TEXT PRIMARY KEY,
        active_namespace TEXT,
        generation INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS namespaces (
        name TEXT PRIMARY KEY,
        collection TEXT NOT NULL REFERENCES collections(name),
        space_label TEXT NOT NULL REFERENCES spaces(label),
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        ready_at REAL,
        UNIQUE (collection, space_label))""",
    """CREATE TABLE IF NOT EXISTS alias_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collection TEXT NOT NULL,
        from_namespace TEXT,
        to_namespace TEXT NOT NULL,
        reason TEXT NOT NULL,
        at REAL NOT NULL,
        actor TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        namespace TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        cursor TEXT,
        done INTEGER NOT NULL DEFAULT 0,
        stats TEXT NOT NULL DEFAULT '{}',
        finished INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tombstones (
        collection TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        at REAL NOT NULL,
        applied INTEGER NOT NULL DEFAULT 0,
        owner TEXT NOT NULL,
        PRIMARY KEY (collection, doc_id))""",
    """CREATE TABLE IF NOT EXISTS intents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collection TEXT NOT NULL,
        op TEXT NOT NULL,
        doc_ids TEXT NOT NULL,
        owner TEXT NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0,
        at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS evaluations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collection TEXT NOT NULL,
        run TEXT NOT NULL,
        namespace TEXT NOT NULL,
        space_label TEXT NOT NULL,
        at REAL NOT NULL,
        results TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS adapters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        collection TEXT NOT NULL,
        from_label TEXT NOT NULL,
        to_label TEXT NOT NULL,
        kind TEXT NOT NULL,
        location TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pending_cutovers (
        collection TEXT PRIMARY KEY,
        from_namespace TEXT,
        to_namespace TEXT NOT NULL,
        reason TEXT NOT NULL,
        at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        collection TEXT,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL)""",
    """CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
]

#: what version 2 adds to version 1 (run in order by the upgrade, in one transaction)
_UPGRADE_V2 = [
    "ALTER TABLE namespaces ADD COLUMN backend TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE namespaces ADD COLUMN reason TEXT",
    """CREATE TABLE IF NOT EXISTS owners (
        owner TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        expires_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS work_items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        dedup_key TEXT,
        owner TEXT,
        lease_expires_at REAL NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        enqueued_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS work_items_claim ON work_items (kind, priority DESC, id)",
    "CREATE INDEX IF NOT EXISTS work_items_dedup ON work_items (kind, dedup_key)"
    " WHERE dedup_key IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS work_counts (
        kind TEXT PRIMARY KEY,
        completed INTEGER NOT NULL DEFAULT 0)""",
]

#: what version 3 adds to version 2
_UPGRADE_V3 = [
    "ALTER TABLE namespaces ADD COLUMN layout TEXT",
    """CREATE TABLE IF NOT EXISTS artifacts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        collection TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        meta TEXT NOT NULL,
        data BLOB NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        UNIQUE (kind, collection, name, version))""",
    """CREATE TABLE IF NOT EXISTS read_counts (
        collection TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        reads INTEGER NOT NULL,
        last_read_at REAL NOT NULL,
        PRIMARY KEY (collection, doc_id))""",
    "CREATE INDEX IF NOT EXISTS read_counts_hot ON read_counts (collection, reads DESC, doc_id)",
    """CREATE TABLE IF NOT EXISTS counters (
        collection TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (collection, name))""",
]

_NS_COLS = ("name, collection, space_label, fingerprint, state, created_at, updated_at,"
            " ready_at, backend, reason, layout")
_NS_COLS_V2 = ("name, collection, space_label, fingerprint, state, created_at, updated_at,"
               " ready_at, backend, reason, NULL")
_NS_COLS_V1 = ("name, collection, space_label, fingerprint, state, created_at, updated_at,"
               " ready_at, 'default', NULL, NULL")
_ART_COLS = "id, kind, collection, name, version, meta, data, enabled, created_at"
_WORK_COLS = ("id, kind, payload, priority, dedup_key, attempts, owner, lease_expires_at,"
              " enqueued_at, last_error")

# SQLite primary result codes (the low byte of an extended code)
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 3, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26
_BY_MESSAGE = (  # Python < 3.11 has no sqlite_errorcode
    ("database or disk is full", _SQLITE_FULL),
    ("readonly database", _SQLITE_READONLY),
    ("unable to open database", _SQLITE_CANTOPEN),
    ("disk i/o error", _SQLITE_IOERR),
    ("malformed", _SQLITE_CORRUPT),
    ("file is not a database", _SQLITE_NOTADB),
)
_CHUNK = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit


def _code(e: sqlite3.Error) -> int | None:
    code = getattr(e, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    msg = str(e).lower()
    for needle, c in _BY_MESSAGE:
        if needle in msg:
            return c
    return None


def _translate(path: str, e: sqlite3.Error) -> ManifestError | None:
    """The typed error for a failure of the manifest file itself (None: not one, such
    as a constraint, which the caller handles)."""
    code = _code(e)
    if code == _SQLITE_FULL:
        return ManifestFull(path, str(e))
    if code in (_SQLITE_IOERR, _SQLITE_CANTOPEN) and _no_room(path):
        # a full disk also shows as an I/O error (growing the WAL index, a journal)
        return ManifestFull(path, f"{e}; the file system has no space left")
    if code in (_SQLITE_READONLY, _SQLITE_PERM):
        return ManifestReadOnly(path, str(e))
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return ManifestCorrupt(path, str(e))
    if code in (_SQLITE_CANTOPEN, _SQLITE_IOERR):
        return ManifestUnavailable(path, str(e))
    if type(e) is sqlite3.DatabaseError:  # a bare DatabaseError is a damaged file
        return ManifestCorrupt(path, str(e))
    return None


#: free bytes below which a failing write is put down to a full disk
_LOW_SPACE = 1 << 20


def _no_room(path: str) -> bool:
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _LOW_SPACE


def _chunks(items: Sequence[_T], n: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _check_ids(ids: Iterable[object]) -> list[str]:
    """Ids as given, refused (before anything is written) when the store could not
    return them exactly: not a string, or not encodable as UTF-8 (a lone surrogate)."""
    out: list[str] = []
    for i in ids:
        if not isinstance(i, str):
            raise InvalidId(i)
        try:
            i.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidId(i, "it does not encode as UTF-8 (a lone surrogate)") from None
        out.append(i)
    return out


def _encodable(i: str) -> bool:
    try:
        i.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _heartbeat_loop(ref: weakref.ref[Manifest], stop: threading.Event,
                    wake: threading.Event) -> None:
    """Beat every third of the shortest TTL this handle keeps alive; ``wake`` makes it
    recompute that interval (a lease with a shorter TTL was taken) without delaying the
    next beat; ``stop`` ends it. Holds the handle only weakly: a handle dropped unclosed
    ends its thread."""
    next_beat: float | None = None
    while not stop.is_set():
        m = ref()
        if m is None:
            return
        every = m._hb_every = m._beat_interval()  # what a shorter TTL is compared with
        del m
        now = time.monotonic()
        next_beat = now + every if next_beat is None else min(next_beat, now + every)
        if wake.wait(max(0.0, next_beat - now)):
            wake.clear()
            continue
        m = ref()
        if m is None or stop.is_set():
            return
        try:
            m.heartbeat()
        except Exception as e:  # noqa: BLE001 - a missed beat is retried; expiry is the limit
            log.debug("manifest heartbeat failed: %s", e)
        del m
        next_beat = None


class Manifest:
    """One manifest file (the SQLite :class:`~vecver.store.base.ManifestStore`).

    Thread-safe; safe to share between processes and hosts that see the same file system
    with working locks (not NFS). ``create=False`` refuses a missing file;
    ``read_only=True`` opens read-only even when the file is writable (None: read-only
    when the file or its directory is not writable here). ``owner_ttl`` is how long this
    process counts as alive for other hosts after its last heartbeat; ``queue_limit`` the
    items not yet completed one kind of work may hold. ``owner`` is the owner id this
    handle acts as (default: this process's :func:`~vecver.store.leases.owner_id`; another
    one makes it a separate holder of leases and work, for workers and tests), ``clock``
    the time source of every expiry decision (epoch seconds).

    Raises :class:`ManifestEmpty` for a 0-byte file, :class:`ManifestUnavailable` when the
    path cannot be opened, :class:`ManifestCorrupt`, :class:`ManifestForeign`,
    :class:`ManifestVersionError`, and :class:`ManifestReadOnly` when a missing manifest
    cannot be created here.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        read_only: bool | None = None,
        owner_ttl: float = OWNER_TTL,
        queue_limit: int = QUEUE_LIMIT,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self._owner = owner if owner is not None else owner_id()
        self._clock = clock
        self.owner_ttl = float(owner_ttl)
        self.queue_limit = int(queue_limit)
        self._lock = threading.RLock()
        self._in_tx = False
        self._closed = False
        self._leases: dict[str, float] = {}  # held through this handle: name -> ttl
        self._registered: tuple[str, float] | None = None  # (owner id, expires_at)
        self._hb_stop = threading.Event()
        self._hb_wake = threading.Event()
        self._hb_every = 0.0
        self._hb_thread: threading.Thread | None = None
        #: the change counters beside the file (None: every generation read is a read;
        #: mapped once the file is open and upgraded)
        self._signal: ChangeSignal | None = None
        #: collection -> (counter value, monotonic time, generation) of the last read
        self._gen_seen: dict[str, tuple[int, float, int]] = {}
        try:
            size: int | None = os.stat(self.path).st_size
        except FileNotFoundError:
            size = None
        except OSError as e:
            raise ManifestUnavailable(self.path, e.strerror or str(e)) from e
        if os.path.isdir(self.path):
            raise ManifestUnavailable(self.path, "it is a directory")
        if size == 0:
            raise ManifestEmpty(self.path)
        if size is None:
            if not create:
                raise ManifestCorrupt(self.path, "no such file")
            self._create_file()
        if read_only is None:
            read_only = not self._writable()
        self._read_only = read_only
        self._db = self._connect(read_only)
        try:
            self._version = self._check_and_upgrade()
        except BaseException:
            self._db.close()
            raise
        self._ns_cols = (_NS_COLS if self._version >= 3 else
                         _NS_COLS_V2 if self._version >= 2 else _NS_COLS_V1)
        self._signal = ChangeSignal.open(self.path, writable=not read_only)

    # -- opening --------------------------------------------------------------------

    def _writable(self) -> bool:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.access(self.path, os.W_OK):
            return False
        if os.access(directory, os.W_OK):
            return True
        # a directory that is not writable still works when the WAL files exist and are
        # writable (SQLite need not create them)
        wal, shm = self.path + "-wal", self.path + "-shm"
        return all(os.path.exists(p) and os.access(p, os.W_OK) for p in (wal, shm))

    def _create_file(self) -> None:
        """Create a new, complete manifest file at ``path`` atomically: it is built under
        a temporary name and linked into place, so no other process ever sees a half
        created (or 0-byte) manifest, even when the disk fills up meanwhile."""
        parent = Path(self.path).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ManifestUnavailable(self.path, f"cannot create its directory: {e}") from e
        if not os.access(parent, os.W_OK):
            raise ManifestReadOnly(self.path, f"it does not exist and {parent} is not writable")
        tmp = f"{self.path}.{uuid.uuid4().hex[:12]}.new"
        try:
            try:
                db = sqlite3.connect(tmp, isolation_level=None)
                try:
                    db.execute("BEGIN IMMEDIATE")
                    for stmt in _SCHEMA_V1 + _UPGRADE_V2 + _UPGRADE_V3:
                        db.execute(stmt)
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                               (str(SCHEMA_VERSION),))
                    db.execute("INSERT INTO meta VALUES ('created_at', ?)", (repr(self._clock()),))
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    db.execute("COMMIT")
                    db.execute("PRAGMA journal_mode = WAL")
                finally:
                    db.close()
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            except sqlite3.Error as e:
                raise (_translate(self.path, e) or ManifestUnavailable(self.path, str(e))) from e
            except OSError as e:
                raise ManifestUnavailable(self.path, str(e)) from e
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process created it first: use theirs
            except OSError:  # a file system without hard links
                if not os.path.exists(self.path):
                    os.replace(tmp, self.path)
        finally:
            for p in (tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        def open_(uri: str) -> sqlite3.Connection:
            db = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None,
                                 check_same_thread=False)
            try:
                db.execute("PRAGMA busy_timeout = 60000")
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except BaseException:
                db.close()
                raise
            return db

        quoted = Path(os.path.abspath(self.path)).as_uri()
        try:
            if not read_only:
                try:
                    return open_(quoted)
                except sqlite3.Error as e:
                    if _code(e) not in (_SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_PERM):
                        raise
                    self._read_only = True  # fall back to reading
            try:
                db = open_(quoted + "?mode=ro")
            except sqlite3.Error as e:
                if _code(e) != _SQLITE_CANTOPEN:
                    raise
                # a WAL file in a directory we cannot write, without its -shm: only an
                # immutable open can read it (no other writer can be there either)
                db = open_(quoted + "?mode=ro&immutable=1")
            db.execute("PRAGMA query_only = 1")
            return db
        except sqlite3.Error as e:
            err = _translate(self.path, e)
            if isinstance(err, ManifestReadOnly):
                err = ManifestUnavailable(self.path, str(e))
            raise (err or ManifestUnavailable(self.path, str(e))) from e

    def _check_and_upgrade(self) -> int:
        db = self._db
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.Error as e:
            raise (_translate(self.path, e) or ManifestCorrupt(self.path, str(e))) from e
        if app_id != APPLICATION_ID or "meta" not in tables:
            if app_id in (0, APPLICATION_ID) and not tables:
                raise ManifestCorrupt(self.path, "it holds no tables")
            raise ManifestForeign(self.path)
        version = self._schema_version()
        if version > SCHEMA_VERSION:
            raise ManifestVersionError(self.path, version, SCHEMA_VERSION)
        if not self._read_only:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = FULL")
                db.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error as e:
                raise (_translate(self.path, e) or ManifestCorrupt(self.path, str(e))) from e
            if version < SCHEMA_VERSION:
                version = self._upgrade()
        return version

    def _schema_version(self) -> int:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.Error as e:
            raise (_translate(self.path, e) or ManifestCorrupt(self.path, str(e))) from e
        if row is None:
            raise ManifestCorrupt(self.path, "no schema version")
        try:
            return int(row[0])
        except ValueError:
            raise ManifestCorrupt(self.path, f"schema version {row[0]!r}") from None

    def _upgrade(self) -> int:
        """Bring an older file to the current schema in place, in one transaction
        (concurrent openers serialize on it; the second finds it done)."""
        with self.transaction() as db:
            version = self._schema_version()
            if version < SCHEMA_VERSION:
                steps = {1: _UPGRADE_V2 + _UPGRADE_V3, 2: _UPGRADE_V3}[version]
                for stmt in steps:
                    db.execute(stmt)
                db.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                           (str(SCHEMA_VERSION),))
                self.log("manifest.upgraded", None, from_version=version,
                         to_version=SCHEMA_VERSION)
                version = SCHEMA_VERSION
        return version

    # -- plumbing -------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether this handle can only read (writes raise :class:`ManifestReadOnly`)."""
        return self._read_only

    def require_writable(self) -> None:
        """Raise :class:`ManifestReadOnly` when this handle can only read."""
        if self._read_only:
            raise ManifestReadOnly(self.path, "opened read-only: the file or its directory "
                                   "is not writable")

    @property
    def schema_version(self) -> int:
        return self._version

    def close(self) -> None:
        """Stop heartbeats and close the file. Leases and intents stay recorded (they are
        taken over once their TTL passes, as after a crash): release leases first."""
        self._hb_stop.set()
        self._hb_wake.set()
        t = self._hb_thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=10)
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
                if self._signal is not None:
                    self._signal.close()
                    self._signal = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, e: sqlite3.Error) -> ManifestError | None:
        err = _translate(self.path, e)
        if isinstance(err, ManifestReadOnly) and self._read_only:
            err = ManifestReadOnly(self.path, "opened read-only: the file or its directory "
                                   "is not writable")
        return err

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Failures of the file itself as typed :class:`ManifestError`; others (a
        constraint) unchanged, for the caller to handle."""
        try:
            yield
        except sqlite3.Error as e:
            err = self._fail(e)
            if err is None:
                raise
            raise err from e

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested uses join the outer one. SQLite-specific (not
        part of :class:`~vecver.store.base.ManifestStore`): for tests and tools."""
        with self._lock:
            if self._in_tx:
                yield self._db
                return
            if self._read_only:
                raise ManifestReadOnly(self.path, "opened read-only: the file or its "
                                       "directory is not writable")
            with self._guard():
                self._db.execute("BEGIN IMMEDIATE")
                self._in_tx = True
                try:
                    # the counters move before the commit and after it (see _signal)
                    self._signal_begin()
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back already
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
                    raise
                else:
                    try:
                        self._db.execute("COMMIT")
                    except BaseException:
                        if self._db.in_transaction:
                            with contextlib.suppress(sqlite3.Error):
                                self._db.execute("ROLLBACK")
                        raise
                finally:
                    self._in_tx = False
                    if self._signal is not None:
                        self._signal.end()

    def _signal_begin(self) -> None:
        sig = self._signal
        if sig is None:
            return
        try:
            sig.begin()
        except OSError:
            # no lock on this file system: the counters are left unequal for good (every
            # reader then reads the manifest), and this handle stops using them
            with contextlib.suppress(OSError, ValueError):
                sig.poison()
            sig.close()
            self._signal = None

    @contextlib.contextmanager
    def _relaxed(self) -> Iterator[None]:
        """Commit the enclosed transaction without an fsync (see :meth:`save_checkpoint`)."""
        with self._lock:
            if self._in_tx:
                yield
                return
            with self._guard():
                self._db.execute("PRAGMA synchronous = NORMAL")
            try:
                yield
            finally:
                with self._guard():
                    self._db.execute("PRAGMA synchronous = FULL")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._guard():
            return list(self._db.execute(sql, args).fetchall())

    def _has_v2(self) -> bool:
        return self._version >= 2

    def log(self, kind: str, collection: str | None = None, **detail: Any) -> None:
        """Append an event (who, when, what). Joins an open transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events (at, actor, collection, kind, detail) VALUES (?,?,?,?,?)",
                (self._clock(), actor(), collection, kind, json.dumps(detail, sort_keys=True)),
            )

    def events(self, collection: str | None = None) -> list[Event]:
        """The event log, oldest first (of one collection, or all). Append-only: no step
        of any store updates or deletes an event."""
        sql = "SELECT id, at, actor, collection, kind, detail FROM events"
        args: tuple[Any, ...] = ()
        if collection is not None:
            sql += " WHERE collection = ?"
            args = (collection,)
        return [
            {"id": r[0], "at": r[1], "actor": r[2], "collection": r[3], "kind": r[4],
             "detail": json.loads(r[5])}
            for r in self._query(sql + " ORDER BY id", args)
        ]

    # -- spaces ---------------------------------------------------------------------

    def register_space(
        self, label: str, fingerprint: str, revision: str, spec: dict[str, Any]
    ) -> None:
        """Record a space (a no-op when it is recorded with this fingerprint, which needs
        no write). Raises ``SpaceConflict`` if the label has another fingerprint."""
        known = self.space(label)
        if known is not None:
            if known.fingerprint != fingerprint:
                raise SpaceConflict(label, known.fingerprint, fingerprint)
            return
        with self.transaction() as db:
            row = db.execute("SELECT fingerprint FROM spaces WHERE label=?", (label,)).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise SpaceConflict(label, row[0], fingerprint)
                return
            db.execute(
                "INSERT INTO spaces VALUES (?,?,?,?,?)",
                (label, fingerprint, revision, json.dumps(spec, sort_keys=True), self._clock()),
            )
            self.log("space.registered", None, label=label, fingerprint=fingerprint)

    def space(self, label: str) -> SpaceRow | None:
        rows = self._query("SELECT * FROM spaces WHERE label=?", (label,))
        if not rows:
            return None
        r = rows[0]
        return SpaceRow(r[0], r[1], r[2], json.loads(r[3]), r[4])

    def spaces(self) -> list[SpaceRow]:
        return [
            SpaceRow(r[0], r[1], r[2], json.loads(r[3]), r[4])
            for r in self._query("SELECT * FROM spaces ORDER BY label")
        ]

    # -- collections and namespaces -------------------------------------------------

    def collections(self) -> list[str]:
        return [r[0] for r in self._query("SELECT name FROM collections ORDER BY name")]

    def has_collection(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM collections WHERE name=?", (name,)))

    def require_collection(self, name: str) -> None:
        """Raise :class:`UnknownCollection` unless the collection exists."""
        if not self.has_collection(name):
            raise UnknownCollection(name, self.collections())

    def _existing_namespace(self, db: sqlite3.Connection, ns: str, collection: str,
                            space_label: str) -> None:
        got = db.execute("SELECT collection, space_label FROM namespaces WHERE name=?",
                         (ns,)).fetchone()
        if got is not None:
            raise AlreadyRecorded("namespace", ns, f"space {got[1]!r} of {got[0]!r}")
        got = db.execute("SELECT name FROM namespaces WHERE collection=? AND space_label=?",
                         (collection, space_label)).fetchone()
        if got is not None:
            raise AlreadyRecorded("namespace", got[0],
                                  f"space {space_label!r} of {collection!r} is already there")

    def _require_space(self, db: sqlite3.Connection, label: str) -> None:
        if db.execute("SELECT 1 FROM spaces WHERE label=?", (label,)).fetchone() is None:
            raise StateError(f"space {label!r} is not registered in the manifest",
                             hint="register it (load its embedder) first")

    def create_collection(
        self, name: str, space_label: str, fingerprint: str, ns: str, *,
        backend: str = DEFAULT_BACKEND, layout: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a collection whose first space is active from the start, its namespace
        on backend instance ``backend``. Raises :class:`AlreadyRecorded` if the collection
        (or the namespace) exists."""
        layout_json = _layout_json(layout)
        now = self._clock()
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM collections WHERE name=?", (name,)).fetchone():
                raise AlreadyRecorded("collection", name)
            self._require_space(db, space_label)
            self._existing_namespace(db, ns, name, space_label)
            db.execute("INSERT INTO collections VALUES (?,?,0,?)", (name, ns, now))
            self._insert_namespace(db, ns, name, space_label, fingerprint, "active", now, now,
                                   backend, layout_json)
            db.execute(
                "INSERT INTO alias_history (collection, from_namespace, to_namespace, reason, at,"
                " actor) VALUES (?,?,?,?,?,?)",
                (name, None, ns, "create", now, actor()),
            )
            self.log("collection.created", name, space=space_label, namespace=ns,
                     backend=backend)

    def _insert_namespace(self, db: sqlite3.Connection, ns: str, collection: str,
                          space_label: str, fingerprint: str, state: str, now: float,
                          ready_at: float | None, backend: str,
                          layout_json: str | None = None) -> None:
        if self._version >= 3:
            db.execute(
                "INSERT INTO namespaces (name, collection, space_label, fingerprint, state,"
                " created_at, updated_at, ready_at, backend, layout)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (ns, collection, space_label, fingerprint, state, now, now, ready_at, backend,
                 layout_json),
            )
        else:  # pragma: no cover - a v1 file is upgraded before any write
            raise ManifestReadOnly(self.path, "schema version 1 opened without upgrade")

    def add_namespace(
        self, collection: str, space_label: str, fingerprint: str, ns: str, state: str, *,
        backend: str = DEFAULT_BACKEND, layout: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a new namespace of ``collection`` for ``space_label`` in ``state``, on
        backend instance ``backend``. Raises :class:`AlreadyRecorded` when the namespace
        (or another one for this space of this collection) exists, and
        :class:`UnknownCollection` when the collection does not."""
        if state not in STATES:
            raise StateError(f"unknown state {state!r}; states are: {', '.join(STATES)}")
        if not isinstance(backend, str) or not backend:
            raise InvalidArgument("backend", backend, "a backend instance name")
        layout_json = _layout_json(layout)
        now = self._clock()
        with self.transaction() as db:
            if not db.execute("SELECT 1 FROM collections WHERE name=?", (collection,)).fetchone():
                raise UnknownCollection(collection, self.collections())
            self._require_space(db, space_label)
            self._existing_namespace(db, ns, collection, space_label)
            self._insert_namespace(db, ns, collection, space_label, fingerprint, state, now,
                                   None, backend, layout_json)
            db.execute(
                "UPDATE collections SET generation = generation + 1 WHERE name=?", (collection,)
            )
            self.log("namespace.added", collection, space=space_label, namespace=ns, state=state,
                     backend=backend)

    def replan_namespace(
        self, collection: str, space_label: str, fingerprint: str, ns: str, *,
        backend: str = DEFAULT_BACKEND,
    ) -> None:
        """Start an abandoned migration again: the ``dropped`` namespace of
        ``space_label`` in ``collection`` becomes ``planned`` under the name ``ns`` on
        backend instance ``backend`` (both may differ from before: the space may be placed
        elsewhere this time). Its old reason is cleared; the event log keeps the history.
        Raises :class:`StateError` unless that namespace exists and is ``dropped``, and
        :class:`AlreadyRecorded` when ``ns`` names another namespace."""
        if not isinstance(backend, str) or not backend:
            raise InvalidArgument("backend", backend, "a backend instance name")
        now = self._clock()
        with self.transaction() as db:
            got = db.execute(
                "SELECT name, state FROM namespaces WHERE collection=? AND space_label=?",
                (collection, space_label),
            ).fetchone()
            if got is None or got[1] != "dropped":
                state = "not recorded" if got is None else got[1]
                raise StateError(
                    f"space {space_label!r} of {collection!r} is {state}, not dropped: only an "
                    "abandoned migration is planned again"
                )
            old = str(got[0])
            if ns != old and db.execute(
                "SELECT 1 FROM namespaces WHERE name=?", (ns,)
            ).fetchone():
                raise AlreadyRecorded("namespace", ns, "another space holds that name")
            db.execute(
                "UPDATE namespaces SET name=?, fingerprint=?, state='planned', created_at=?,"
                " updated_at=?, ready_at=NULL, backend=?, reason=NULL WHERE name=?",
                (ns, fingerprint, now, now, backend, old),
            )
            db.execute("DELETE FROM checkpoints WHERE namespace IN (?, ?)", (old, ns))
            db.execute(
                "UPDATE collections SET generation = generation + 1 WHERE name=?", (collection,)
            )
            self.log("namespace.replanned", collection, space=space_label, namespace=ns,
                     previous=old, backend=backend)

    def _ns_rows(self, where: str, args: Sequence[Any]) -> list[NamespaceRow]:
        rows = self._query(f"SELECT {self._ns_cols} FROM namespaces WHERE {where}", args)
        return [NamespaceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                             json.loads(r[10]) if r[10] else {}) for r in rows]

    def namespaces(self, collection: str) -> list[NamespaceRow]:
        """Every namespace of ``collection`` (dropped and failed ones included), oldest
        first."""
        return self._ns_rows("collection=? ORDER BY created_at, name", (collection,))

    def namespace(self, name: str) -> NamespaceRow | None:
        rows = self._ns_rows("name=?", (name,))
        return rows[0] if rows else None

    def namespace_for(self, collection: str, space_label: str) -> NamespaceRow | None:
        rows = self._ns_rows("collection=? AND space_label=?", (collection, space_label))
        return rows[0] if rows else None

    def live_namespaces(self, collection: str) -> tuple[int, list[NamespaceRow]]:
        """(generation, live namespaces in :func:`vecver.lifecycle.live_order`), read
        together: the generation changes whenever the live set does."""
        with self._lock:
            gen = self._query("SELECT generation FROM collections WHERE name=?", (collection,))
            if not gen:
                raise UnknownCollection(collection, self.collections())
            rows = self.namespaces(collection)
        return int(gen[0][0]), lifecycle.live_order(rows)

    def generation(self, collection: str) -> int:
        # the searcher's read on every call: the last value read, while the change
        # counters beside the file say nothing was committed since (vecver.store._signal;
        # at most MAX_AGE old), else one cached statement, no context managers
        sig = self._signal
        if sig is not None:
            begun, done = sig.read()
            seen = self._gen_seen.get(collection)
            if (seen is not None and begun == done == seen[0]
                    and _signal_now() - seen[1] < SIGNAL_MAX_AGE):  # fmt: skip
                return seen[2]
            at = _signal_now()
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT generation FROM collections WHERE name=?", (collection,)
                ).fetchone()
            except sqlite3.Error as e:
                err = self._fail(e)
                if err is None:
                    raise
                raise err from e
        if row is None:
            raise UnknownCollection(collection, self.collections())
        gen = int(row[0])
        if sig is not None and begun == done and sig.read() == (begun, done):
            self._gen_seen[collection] = (begun, at, gen)
        return gen

    def active_namespace(self, collection: str) -> str:
        rows = self._query("SELECT active_namespace FROM collections WHERE name=?", (collection,))
        if not rows:
            raise UnknownCollection(collection, self.collections())
        return str(rows[0][0])

    def set_state(
        self, ns: str, to: str, *, expect: Iterable[str] | None = None,
        reason: str | None = None,
    ) -> None:
        """Move a namespace to state ``to``, if it is in one of ``expect`` (default: any)
        and the lifecycle allows it (:func:`vecver.lifecycle.check_transition`); else
        :class:`StateError` and nothing changes. ``reason`` (why: for ``failed``, what
        broke) is kept on the row until its next transition, and logged."""
        now = self._clock()
        with self.transaction() as db:
            got = db.execute("SELECT state, collection FROM namespaces WHERE name=?",
                             (ns,)).fetchone()
            if got is None:
                raise StateError(f"unknown namespace {ns!r}")
            state, collection = got
            if expect is not None and state not in set(expect):
                raise StateError(f"namespace {ns!r} cannot go from {state} to {to}",
                                 hint="expected it to be " + " or ".join(sorted(set(expect))))
            lifecycle.check_transition(state, to, namespace=ns)
            ready_at = now if to == "ready" else None
            db.execute(
                "UPDATE namespaces SET state=?, updated_at=?, ready_at=COALESCE(?, ready_at),"
                " reason=? WHERE name=?",
                (to, now, ready_at, reason, ns),
            )
            db.execute(
                "UPDATE collections SET generation = generation + 1 WHERE name=?", (collection,)
            )
            detail: dict[str, Any] = {"namespace": ns, "from_state": state, "to_state": to}
            if reason is not None:
                detail["reason"] = reason
            self.log("namespace.state", collection, **detail)

    def switch_active(self, collection: str, to_ns: str, reason: str, **detail: Any) -> str:
        """Point the collection's alias at ``to_ns`` in one transaction.

        The previous active namespace takes :func:`vecver.lifecycle.state_after_switch`
        (``ready`` when ``reason`` is ``rollback``, else ``retired``); the switch is added
        to the alias history and any pending cutover is cleared. Returns the previous
        active namespace. Raises :class:`StateError` when ``to_ns`` is already active or
        its state cannot become active."""
        now = self._clock()
        with self.transaction() as db:
            row = db.execute(
                "SELECT active_namespace FROM collections WHERE name=?", (collection,)
            ).fetchone()
            if row is None:
                raise UnknownCollection(collection, self.collections())
            prev = str(row[0])
            if prev == to_ns:
                raise StateError(f"{to_ns!r} is already the active namespace of {collection!r}")
            prev_to = lifecycle.state_after_switch(reason)
            to_state = db.execute(
                "SELECT state FROM namespaces WHERE name=? AND collection=?", (to_ns, collection)
            ).fetchone()
            if to_state is None or not lifecycle.can_become_active(to_state[0]):
                raise StateError(f"namespace {to_ns!r} cannot become active")
            db.execute(
                "UPDATE namespaces SET state=?, updated_at=?, reason=NULL WHERE name=?",
                (prev_to, now, prev),
            )
            db.execute(
                "UPDATE namespaces SET state='active', updated_at=?, reason=NULL WHERE name=?",
                (now, to_ns),
            )
            db.execute(
                "UPDATE collections SET active_namespace=?, generation=generation+1 WHERE name=?",
                (to_ns, collection),
            )
            db.execute(
                "INSERT INTO alias_history (collection, from_namespace, to_namespace, reason, at,"
                " actor) VALUES (?,?,?,?,?,?)",
                (collection, prev, to_ns, reason, now, actor()),
            )
            db.execute("DELETE FROM pending_cutovers WHERE collection=?", (collection,))
            self.log(f"alias.{reason}", collection, from_namespace=prev, to_namespace=to_ns,
                     **detail)
        return prev

    def alias_history(self, collection: str) -> list[AliasChange]:
        """Every switch of the collection's alias, oldest first."""
        rows = self._query(
            "SELECT id, from_namespace, to_namespace, reason, at, actor FROM alias_history"
            " WHERE collection=? ORDER BY id",
            (collection,),
        )
        return [
            {"id": r[0], "from": r[1], "to": r[2], "reason": r[3], "at": r[4], "actor": r[5]}
            for r in rows
        ]

    def previous_active(self, collection: str) -> str | None:
        """The namespace a rollback returns to (:func:`vecver.lifecycle.rollback_target`),
        or None."""
        with self._lock:
            current = self.active_namespace(collection)
            target = lifecycle.rollback_target(
                current, self.alias_history(collection), self.namespaces(collection)
            )
        return target.name if target is not None else None

    # -- pending cutovers (native aliases) ------------------------------------------

    def begin_cutover(self, collection: str, from_ns: str, to_ns: str, reason: str) -> None:
        """Record that a native alias is about to move (replaces an earlier record)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO pending_cutovers VALUES (?,?,?,?,?)",
                (collection, from_ns, to_ns, reason, self._clock()),
            )

    def pending_cutover(self, collection: str) -> tuple[str, str, str] | None:
        """(from, to, reason) of a cutover begun and not finished, or None."""
        rows = self._query(
            "SELECT from_namespace, to_namespace, reason FROM pending_cutovers WHERE collection=?",
            (collection,),
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def clear_cutover(self, collection: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM pending_cutovers WHERE collection=?", (collection,))

    # -- owners ---------------------------------------------------------------------

    @property
    def owner(self) -> str:
        """The owner id this handle acts as (``uuid@host:pid``)."""
        return self._owner

    def _register_owner(self, db: sqlite3.Connection) -> None:
        """Record (or refresh) this process as an owner, inside the caller's transaction,
        and keep it alive with a heartbeat thread while this handle is open."""
        if not self._has_v2():
            return
        me, now = self._owner, self._clock()
        reg = self._registered
        if reg is None or reg[0] != me or reg[1] - now < self.owner_ttl / 2:
            p = parse_owner(me)
            db.execute(
                "INSERT INTO owners (owner, host, pid, started_at, heartbeat_at, expires_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(owner) DO UPDATE SET"
                " heartbeat_at=excluded.heartbeat_at, expires_at=excluded.expires_at",
                (me, p.host, p.pid, now, now, now + self.owner_ttl),
            )
            # owners whose heartbeat stopped long ago: their rows are no longer needed
            # (an owner without a row is dead, see owner_alive)
            db.execute("DELETE FROM owners WHERE expires_at < ?", (now - 86400.0,))
            self._registered = (me, now + self.owner_ttl)
        self._start_heartbeats()

    def _beat_interval(self) -> float:
        return max(0.05, min([self.owner_ttl, *self._leases.values()]) / 3)

    def _start_heartbeats(self) -> None:
        t = self._hb_thread
        if self._closed:
            return
        if t is not None and t.is_alive():
            if self._beat_interval() < self._hb_every:
                self._hb_wake.set()  # a shorter TTL needs more frequent beats
            return
        self._hb_every = self._beat_interval()
        self._hb_stop = threading.Event()
        self._hb_wake = threading.Event()
        self._hb_thread = threading.Thread(
            target=_heartbeat_loop, args=(weakref.ref(self), self._hb_stop, self._hb_wake),
            name="vecver-manifest-heartbeat", daemon=True,
        )
        self._hb_thread.start()

    def heartbeat(self) -> None:
        """Renew this process's owner record and every lease held through this handle
        (each by its own TTL). Called by a daemon thread while the handle is open and
        this process owns something in it; callable directly. Leases found taken over
        are forgotten (the next :meth:`renew_lease` raises :class:`LeaseLost`)."""
        if self._closed or self._read_only or not self._has_v2():
            return
        me, now = self._owner, self._clock()
        with self._lock, self.transaction() as db:
            p = parse_owner(me)
            db.execute(
                "INSERT INTO owners (owner, host, pid, started_at, heartbeat_at, expires_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(owner) DO UPDATE SET"
                " heartbeat_at=excluded.heartbeat_at, expires_at=excluded.expires_at",
                (me, p.host, p.pid, now, now, now + self.owner_ttl),
            )
            self._registered = (me, now + self.owner_ttl)
            for name, ttl in list(self._leases.items()):
                cur = db.execute("UPDATE leases SET expires_at=? WHERE name=? AND owner=?",
                                 (now + ttl, name, me))
                if cur.rowcount == 0:
                    self._leases.pop(name, None)

    def owner_alive(self, owner: str) -> bool:
        """Whether ``owner`` (of an intent, tombstone, lease or work item) may still be
        running, on any host.

        This host's processes are checked directly (a gone or zombie pid is dead at
        once). Another host's owner is alive while its heartbeat record has not expired
        (``owner_ttl`` after its last beat); an owner id of this version with no record
        is dead. An id of an older version (``host:pid``) of another host cannot be
        judged and counts as alive."""
        if owner == self._owner:
            return True
        verdict = local_verdict(owner)
        if verdict is not None:
            return verdict
        if self._has_v2():
            rows = self._query("SELECT expires_at FROM owners WHERE owner=?", (owner,))
            if rows:
                return float(rows[0][0]) > self._clock()
        return parse_owner(owner).uuid is None

    # -- write intents and tombstones -----------------------------------------------

    def begin_write(self, collection: str, op: str, ids: Sequence[str]) -> int:
        """Record the intent to write ``ids`` (before any backend write); returns its id.

        For an upsert this also clears the ids' tombstones (the newest write wins); for a
        delete it records tombstones, so a running backfill can never resurrect them. Ids
        come back exactly as given; one the store cannot keep exactly (a lone surrogate)
        raises :class:`InvalidId` before anything is recorded."""
        if op not in ("upsert", "delete"):
            raise InvalidArgument("op", op, "'upsert' or 'delete'")
        ids = _check_ids(ids)
        now = self._clock()
        me = self._owner
        with self.transaction() as db:
            self._register_owner(db)
            cur = db.execute(
                "INSERT INTO intents (collection, op, doc_ids, owner, failed, at)"
                " VALUES (?,?,?,?,0,?)",
                (collection, op, json.dumps(ids), me, now),
            )
            if op == "upsert":
                db.executemany(
                    "DELETE FROM tombstones WHERE collection=? AND doc_id=?",
                    [(collection, i) for i in ids],
                )
            else:
                db.executemany(
                    "INSERT OR REPLACE INTO tombstones VALUES (?,?,?,0,?)",
                    [(collection, i, now, me) for i in ids],
                )
            return int(cur.lastrowid or 0)

    def end_write(self, intent: int, collection: str, generation: int) -> bool:
        """Close an intent. Returns False (and keeps it) if the collection's set of live
        namespaces changed since ``generation``: the caller must write the new ones too."""
        with self.transaction() as db:
            gen = db.execute(
                "SELECT generation FROM collections WHERE name=?", (collection,)
            ).fetchone()
            if gen is not None and int(gen[0]) != generation:
                return False
            row = db.execute("SELECT op, doc_ids FROM intents WHERE id=?", (intent,)).fetchone()
            if row is not None and row[0] == "delete":
                db.executemany(
                    "UPDATE tombstones SET applied=1 WHERE collection=? AND doc_id=?",
                    [(collection, i) for i in json.loads(row[1])],
                )
            db.execute("DELETE FROM intents WHERE id=?", (intent,))
            return True

    def fail_write(self, intent: int) -> None:
        """Mark an intent failed: recovery may finish it without waiting for its owner."""
        with self.transaction() as db:
            db.execute("UPDATE intents SET failed=1 WHERE id=?", (intent,))

    def write_epoch(self, collection: str) -> tuple[int, int]:
        """(the highest write-intent id ever issued, the intents of ``collection`` open
        now). Every upsert and delete opens an intent before its first backend write, so
        an unchanged id with nothing open means no write happened in between."""
        with self._lock, self._guard():
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name='intents'"
            ).fetchone()
            n = self._db.execute(
                "SELECT count(*) FROM intents WHERE collection=?", (collection,)
            ).fetchone()
        return (int(row[0]) if row else 0, int(n[0]))

    def intents(self, collection: str) -> list[Intent]:
        """The open intents of ``collection``, oldest first."""
        rows = self._query(
            "SELECT id, collection, op, doc_ids, owner, failed, at FROM intents"
            " WHERE collection=? ORDER BY id",
            (collection,),
        )
        return [Intent(r[0], r[1], r[2], json.loads(r[3]), r[4], bool(r[5]), r[6]) for r in rows]

    def drop_intent(self, intent: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM intents WHERE id=?", (intent,))

    def tombstoned(self, collection: str, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` that are tombstoned (exact matches only)."""
        out: set[str] = set()
        keep = [i for i in ids if isinstance(i, str) and _encodable(i)]
        for chunk in _chunks(keep):
            marks = ",".join("?" * len(chunk))
            out |= {
                r[0]
                for r in self._query(
                    f"SELECT doc_id FROM tombstones WHERE collection=? AND doc_id IN ({marks})",
                    (collection, *chunk),
                )
            }
        return out

    def tombstones(self, collection: str, after: str | None = None, limit: int = 1000) -> list[str]:
        """Up to ``limit`` tombstoned ids of ``collection`` greater than ``after``, in id
        order (a page; pass the last id back as ``after`` for the next)."""
        if after is None:
            rows = self._query(
                "SELECT doc_id FROM tombstones WHERE collection=? ORDER BY doc_id LIMIT ?",
                (collection, limit),
            )
        else:
            rows = self._query(
                "SELECT doc_id FROM tombstones WHERE collection=? AND doc_id > ?"
                " ORDER BY doc_id LIMIT ?",
                (collection, after, limit),
            )
        return [r[0] for r in rows]

    def tombstone_count(self, collection: str) -> int:
        return int(
            self._query("SELECT count(*) FROM tombstones WHERE collection=?", (collection,))[0][0]
        )

    # -- checkpoints ----------------------------------------------------------------

    def checkpoint(self, ns: str) -> Checkpoint | None:
        rows = self._query(
            "SELECT namespace, source, cursor, done, stats, finished, updated_at"
            " FROM checkpoints WHERE namespace=?", (ns,))
        if not rows:
            return None
        r = rows[0]
        return Checkpoint(r[0], r[1], r[2], int(r[3]), json.loads(r[4]), bool(r[5]), r[6])

    def save_checkpoint(
        self,
        ns: str,
        source: str,
        cursor: str | None,
        done: int,
        stats: dict[str, Any],
        *,
        finished: bool = False,
        lease: str | None = None,
        lease_ttl: float = 120.0,
    ) -> None:
        """Record backfill progress (and renew ``lease`` in the same transaction; raises
        :class:`LeaseLost`, recording nothing, when another owner holds it now).

        Committed without waiting for the disk (SQLite ``synchronous=NORMAL`` in WAL mode):
        a kill -9 loses nothing, a power loss may lose the latest checkpoints, which only
        makes a resume redo batches that are already written (writes are idempotent and
        the final verification checks every document)."""
        now = self._clock()
        with self._lock, self._relaxed(), self.transaction() as db:
            if lease is not None:
                self._renew_in(db, lease, lease_ttl, now)
            db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?,?)",
                (ns, source, cursor, done, json.dumps(stats, sort_keys=True), int(finished), now),
            )

    def clear_checkpoint(self, ns: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM checkpoints WHERE namespace=?", (ns,))

    # -- leases ---------------------------------------------------------------------

    def acquire_lease(self, name: str, ttl: float = 120.0) -> str | None:
        """Take the lease ``name`` for ``ttl`` seconds, renewed by heartbeats while this
        handle is open. Returns None on success, else the holder that keeps it: this
        process's own id when another thread or call of this process holds it (a lease is
        exclusive per holder, not merely per process).

        A lease is taken over when its TTL has passed without a renewal (an owner that
        died on any host), or at once when its owner was a process of this host that is
        gone; never while it is unexpired and its owner may be alive."""
        ttl = _positive("ttl", ttl)
        now = self._clock()
        me = self._owner
        with self._lock, self.transaction() as db:
            row = db.execute("SELECT owner, expires_at FROM leases WHERE name=?",
                             (name,)).fetchone()
            if row is not None and float(row[1]) > now:
                holder = str(row[0])
                if holder == me or local_verdict(holder) is not False:
                    return holder
            db.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?)", (name, me, now + ttl))
            if row is not None and str(row[0]) != me:
                self.log("lease.taken_over", None, lease=name, from_owner=str(row[0]),
                         expired=float(row[1]) <= now)
            self._leases[name] = ttl
            self._register_owner(db)
        return None

    def _renew_in(self, db: sqlite3.Connection, name: str, ttl: float, now: float) -> None:
        me = self._owner
        cur = db.execute("UPDATE leases SET expires_at=? WHERE name=? AND owner=?",
                         (now + ttl, name, me))
        if cur.rowcount == 0:
            self._leases.pop(name, None)
            row = db.execute("SELECT owner FROM leases WHERE name=?", (name,)).fetchone()
            raise LeaseLost(name, str(row[0]) if row else None)
        self._leases[name] = ttl

    def renew_lease(self, name: str, ttl: float = 120.0) -> None:
        """Extend a lease this process holds to ``ttl`` seconds from now (a lease that
        expired but was not taken over is renewed too). Raises :class:`LeaseLost` when
        another owner holds it, or nobody does."""
        ttl = _positive("ttl", ttl)
        with self._lock, self.transaction() as db:
            self._renew_in(db, name, ttl, self._clock())

    def release_lease(self, name: str) -> None:
        """Give up a lease this process holds (a no-op when another owner holds it)."""
        with self._lock, self.transaction() as db:
            db.execute("DELETE FROM leases WHERE name=? AND owner=?", (name, self._owner))
            self._leases.pop(name, None)

    def lease(self, name: str) -> Lease | None:
        """The recorded holder of ``name`` (possibly expired), or None."""
        rows = self._query("SELECT name, owner, expires_at FROM leases WHERE name=?", (name,))
        return Lease(rows[0][0], rows[0][1], float(rows[0][2])) if rows else None

    # -- work queue -----------------------------------------------------------------

    def enqueue(
        self, kind: str, payload: Any, *, priority: int = 0, dedup_key: str | None = None
    ) -> int | None:
        """Add a unit of work of ``kind``; returns its id, or None when an item of this
        kind with ``dedup_key`` is pending (not yet claimed, or its lease expired) - the
        pending one will do. An item being worked on does not deduplicate: what it read
        may already be out of date.

        ``payload`` is any JSON value (stored as JSON; refused with
        :class:`InvalidInput` when it is not one). Durable once this returns. Raises
        :class:`QueueFull` when ``kind`` holds ``queue_limit`` items not yet completed."""
        _check_kind(kind)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidArgument("priority", priority, "an integer")
        if dedup_key is not None and (not isinstance(dedup_key, str) or not
                                      _encodable(dedup_key)):
            raise InvalidArgument("dedup_key", dedup_key, "a string or None")
        try:
            data = json.dumps(payload, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"work payload is not a JSON value: {e}",
                               hint="pass dicts, lists, strings, numbers, booleans, None") from e
        now = self._clock()
        with self._lock, self.transaction() as db:
            if dedup_key is not None and db.execute(
                "SELECT 1 FROM work_items WHERE kind=? AND dedup_key=?"
                " AND (owner IS NULL OR lease_expires_at <= ?) LIMIT 1",
                (kind, dedup_key, now),
            ).fetchone():
                return None
            (n,) = db.execute("SELECT count(*) FROM work_items WHERE kind=?", (kind,)).fetchone()
            if int(n) >= self.queue_limit:
                raise QueueFull(kind, self.queue_limit)
            cur = db.execute(
                "INSERT INTO work_items (kind, payload, priority, dedup_key, enqueued_at)"
                " VALUES (?,?,?,?,?)",
                (kind, data, priority, dedup_key, now),
            )
            return int(cur.lastrowid or 0)

    def claim(self, kind: str, *, limit: int = 1, ttl: float = 60.0) -> list[WorkItem]:
        """Lease up to ``limit`` claimable items of ``kind`` to this owner for ``ttl``
        seconds: highest priority first, then first in, first out. Claimable: never
        claimed, released, or leased with a lease that expired (handed out again; its
        ``attempts`` grows). While its lease holds, an item is handed to nobody else.
        Work items are not renewed by heartbeats: call :meth:`renew_work`."""
        _check_kind(kind)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgument("limit", limit, "a positive integer")
        ttl = _positive("ttl", ttl)
        now = self._clock()
        me = self._owner
        with self._lock, self.transaction() as db:
            rows = db.execute(
                f"SELECT {_WORK_COLS} FROM work_items WHERE kind=?"
                " AND (owner IS NULL OR lease_expires_at <= ?)"
                " ORDER BY priority DESC, id LIMIT ?",
                (kind, now, limit),
            ).fetchall()
            if not rows:
                return []
            out: list[WorkItem] = []
            for r in rows:
                attempts = int(r[5]) + (1 if r[6] is not None else 0)  # an expired lease
                db.execute(
                    "UPDATE work_items SET owner=?, lease_expires_at=?, attempts=? WHERE id=?",
                    (me, now + ttl, attempts, r[0]),
                )
                out.append(WorkItem(
                    id=int(r[0]), kind=r[1], payload=json.loads(r[2]), priority=int(r[3]),
                    dedup_key=r[4], attempts=attempts, owner=me, lease_expires_at=now + ttl,
                    enqueued_at=float(r[8]), last_error=r[9],
                ))
            self._register_owner(db)
            return out

    def complete(self, ids: Sequence[int]) -> list[int]:
        """Remove finished items this owner holds (its lease may have expired, as long as
        nobody claimed the item since). Returns the ids completed; an id held by another
        owner now, or no longer queued, is left out (that work may be done twice, never
        lost)."""
        done: list[int] = []
        me = self._owner
        with self._lock, self.transaction() as db:
            for chunk in _chunks(_int_ids(ids)):
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT id, kind FROM work_items WHERE owner=? AND id IN ({marks})",
                    (me, *chunk),
                ).fetchall()
                for item_id, kind in rows:
                    db.execute("DELETE FROM work_items WHERE id=?", (item_id,))
                    db.execute(
                        "INSERT INTO work_counts (kind, completed) VALUES (?, 1)"
                        " ON CONFLICT(kind) DO UPDATE SET completed = completed + 1",
                        (kind,),
                    )
                    done.append(int(item_id))
        return sorted(done)

    def release(self, id: int, *, error: str | None = None) -> bool:
        """Give an item this owner holds back to the queue (claimable at once, its
        ``attempts`` + 1, ``error`` kept as its ``last_error``). Returns False when this
        owner does not hold it."""
        (item,) = _int_ids([id])
        with self._lock, self.transaction() as db:
            cur = db.execute(
                "UPDATE work_items SET owner=NULL, lease_expires_at=0, attempts=attempts+1,"
                " last_error=COALESCE(?, last_error) WHERE id=? AND owner=?",
                (error, item, self._owner),
            )
            return cur.rowcount > 0

    def renew_work(self, ids: Sequence[int], ttl: float = 60.0) -> list[int]:
        """Extend the leases of items this owner holds to ``ttl`` seconds from now.
        Returns the ids renewed; a missing one was claimed by another owner (stop working
        on it) or is no longer queued."""
        ttl = _positive("ttl", ttl)
        now = self._clock()
        me = self._owner
        renewed: list[int] = []
        with self._lock, self.transaction() as db:
            for chunk in _chunks(_int_ids(ids)):
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT id FROM work_items WHERE owner=? AND id IN ({marks})", (me, *chunk)
                ).fetchall()
                for (item_id,) in rows:
                    db.execute("UPDATE work_items SET lease_expires_at=? WHERE id=?",
                               (now + ttl, item_id))
                    renewed.append(int(item_id))
        return sorted(renewed)

    def queue_stats(self, kind: str) -> QueueStats:
        """Counts of ``kind``'s items now (see :class:`~vecver.store.base.QueueStats`)."""
        _check_kind(kind)
        if not self._has_v2():
            return QueueStats(kind, 0, 0, 0, self.queue_limit)
        now = self._clock()
        with self._lock:
            (pending, leased, oldest, retried) = self._query(
                "SELECT"
                " coalesce(sum(owner IS NULL OR lease_expires_at <= ?), 0),"
                " coalesce(sum(owner IS NOT NULL AND lease_expires_at > ?), 0),"
                " min(CASE WHEN owner IS NULL OR lease_expires_at <= ? THEN enqueued_at END),"
                " coalesce(sum(attempts > 0), 0)"
                " FROM work_items WHERE kind=?",
                (now, now, now, kind),
            )[0]
            done = self._query("SELECT completed FROM work_counts WHERE kind=?", (kind,))
        return QueueStats(
            kind=kind, pending=int(pending), leased=int(leased),
            completed=int(done[0][0]) if done else 0, limit=self.queue_limit,
            oldest_pending_age=max(0.0, now - float(oldest)) if oldest is not None else 0.0,
            retried=int(retried),
        )

    # -- evaluations ----------------------------------------------------------------

    def record_evaluation(
        self, collection: str, run: str, ns: str, space_label: str, results: dict[str, Any]
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO evaluations (collection, run, namespace, space_label, at, results)"
                " VALUES (?,?,?,?,?,?)",
                (collection, run, ns, space_label, self._clock(), json.dumps(results)),
            )

    def evaluations(self, collection: str, ns: str | None = None) -> list[Evaluation]:
        """Recorded evaluations of ``collection`` (of one namespace), oldest first."""
        sql = "SELECT run, namespace, space_label, at, results FROM evaluations WHERE collection=?"
        args: list[Any] = [collection]
        if ns is not None:
            sql += " AND namespace=?"
            args.append(ns)
        return [
            {"run": r[0], "namespace": r[1], "space": r[2], "at": r[3],
             "results": json.loads(r[4])}
            for r in self._query(sql + " ORDER BY id", args)
        ]

    # -- artifacts --------------------------------------------------------------------

    def _require_v3(self, what: str) -> None:
        if self._version < 3:  # only a read-only, never-upgraded file
            raise ManifestReadOnly(self.path, f"schema version {self._version} has no {what}; "
                                   "open it writable once to upgrade it")

    def put_artifact(
        self, kind: str, collection: str, name: str, data: bytes,
        meta: Mapping[str, Any] | None = None, *, enable: bool = False, keep: int | None = None,
    ) -> Artifact:
        """Store a new version of the artifact ``(kind, collection, name)`` (versions count
        from 1) in one transaction. ``enable`` makes it the one enabled version of that
        name. ``keep`` removes older versions beyond the newest ``keep`` (never the
        enabled one). ``meta`` must be a JSON object. Logged as ``artifact.put``."""
        _check_kind(kind)
        for what, value in (("collection", collection), ("name", name)):
            if not isinstance(value, str) or not _encodable(value):
                raise InvalidArgument(what, value, "a string")
        if not name:
            raise InvalidArgument("name", name, "a non-empty string")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument("data", type(data).__name__, "bytes")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int)
                                 or keep < 1):
            raise InvalidArgument("keep", keep, "a positive integer or None")
        meta_json = _json_object("meta", meta)
        self._require_v3("artifacts")
        now = self._clock()
        with self.transaction() as db:
            (top,) = db.execute(
                "SELECT coalesce(max(version), 0) FROM artifacts WHERE kind=? AND collection=?"
                " AND name=?", (kind, collection, name)).fetchone()
            version = int(top) + 1
            if enable:
                db.execute("UPDATE artifacts SET enabled=0 WHERE kind=? AND collection=?"
                           " AND name=?", (kind, collection, name))
            cur = db.execute(
                "INSERT INTO artifacts (kind, collection, name, version, meta, data, enabled,"
                " created_at) VALUES (?,?,?,?,?,?,?,?)",
                (kind, collection, name, version, meta_json, bytes(data), int(bool(enable)),
                 now))
            art_id = int(cur.lastrowid or 0)
            if keep is not None:
                db.execute(
                    "DELETE FROM artifacts WHERE kind=? AND collection=? AND name=?"
                    " AND enabled=0 AND version <= ?",
                    (kind, collection, name, version - keep))
            self.log("artifact.put", collection or None, of=kind, name=name, version=version,
                     size=len(data), enabled=bool(enable))
        got = self._artifact_rows("id=?", (art_id,))
        return got[0]

    def _artifact_rows(self, where: str, args: Sequence[Any]) -> list[Artifact]:
        if self._version < 3:
            return []
        rows = self._query(f"SELECT {_ART_COLS} FROM artifacts WHERE {where}", args)
        return [Artifact(int(r[0]), r[1], r[2], r[3], int(r[4]), json.loads(r[5]),
                         bytes(r[6]), bool(r[7]), float(r[8])) for r in rows]

    def artifact(self, kind: str, collection: str, name: str,
                 version: int | None = None) -> Artifact | None:
        """A version of an artifact (the newest when ``version`` is None), or None."""
        if version is None:
            rows = self._artifact_rows(
                "kind=? AND collection=? AND name=? ORDER BY version DESC LIMIT 1",
                (kind, collection, name))
        else:
            rows = self._artifact_rows("kind=? AND collection=? AND name=? AND version=?",
                                       (kind, collection, name, version))
        return rows[0] if rows else None

    def enabled_artifact(self, kind: str, collection: str, name: str) -> Artifact | None:
        """The enabled version of an artifact, or None when none is enabled."""
        rows = self._artifact_rows("kind=? AND collection=? AND name=? AND enabled=1",
                                   (kind, collection, name))
        return rows[0] if rows else None

    def artifacts(self, kind: str, collection: str | None = None) -> list[Artifact]:
        """Every stored version of artifacts of ``kind`` (of one collection), oldest
        first."""
        if collection is None:
            return self._artifact_rows("kind=? ORDER BY id", (kind,))
        return self._artifact_rows("kind=? AND collection=? ORDER BY id", (kind, collection))

    def _set_enabled(self, art_id: int, enabled: bool) -> Artifact:
        if isinstance(art_id, bool) or not isinstance(art_id, int):
            raise InvalidArgument("id", art_id, "an artifact id (an integer)")
        self._require_v3("artifacts")
        with self.transaction() as db:
            row = db.execute("SELECT kind, collection, name, version FROM artifacts WHERE id=?",
                             (art_id,)).fetchone()
            if row is None:
                raise InvalidArgument("id", art_id, "the id of a stored artifact")
            kind, collection, name, version = row
            if enabled:
                db.execute("UPDATE artifacts SET enabled=0 WHERE kind=? AND collection=?"
                           " AND name=?", (kind, collection, name))
            db.execute("UPDATE artifacts SET enabled=? WHERE id=?", (int(enabled), art_id))
            self.log("artifact.enabled" if enabled else "artifact.disabled", collection or None,
                     of=kind, name=name, version=int(version))
        return self._artifact_rows("id=?", (art_id,))[0]

    def enable_artifact(self, id: int) -> Artifact:
        """Make artifact ``id`` the enabled version of its name (others are disabled in
        the same transaction). Unknown id: ``InvalidArgument``."""
        return self._set_enabled(id, True)

    def disable_artifact(self, id: int) -> Artifact:
        """Disable artifact ``id``. Unknown id: ``InvalidArgument``."""
        return self._set_enabled(id, False)

    # -- read counts and counters -----------------------------------------------------

    def record_reads(self, collection: str, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (document id -> reads, each >= 0) to the collection's read counts,
        in one transaction."""
        items = _count_items(counts, int)
        if not items:
            return
        self._require_v3("read counts")
        now = self._clock()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO read_counts (collection, doc_id, reads, last_read_at)"
                " VALUES (?,?,?,?) ON CONFLICT (collection, doc_id) DO UPDATE SET"
                " reads = reads + excluded.reads, last_read_at = excluded.last_read_at",
                [(collection, k, int(v), now) for k, v in items])

    def read_counts(self, collection: str, *, limit: int | None = None,
                    offset: int = 0) -> list[tuple[str, int]]:
        """(document id, reads), most read first, ties by id (a stable order to page
        through with ``offset``)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise InvalidArgument("limit", limit, "a non-negative integer or None")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidArgument("offset", offset, "a non-negative integer")
        if self._version < 3:
            return []
        rows = self._query(
            "SELECT doc_id, reads FROM read_counts WHERE collection=? AND reads > 0"
            " ORDER BY reads DESC, doc_id LIMIT ? OFFSET ?",
            (collection, -1 if limit is None else limit, offset))
        return [(str(r[0]), int(r[1])) for r in rows]

    def read_totals(self, collection: str) -> tuple[int, int]:
        """(documents read at least once, total reads) of ``collection``."""
        if self._version < 3:
            return 0, 0
        (n, total), = self._query(
            "SELECT count(*), coalesce(sum(reads), 0) FROM read_counts WHERE collection=?"
            " AND reads > 0", (collection,))
        return int(n), int(total)

    def bump_counters(self, collection: str, deltas: Mapping[str, float]) -> None:
        """Add ``deltas`` (counter name -> finite amount) to the collection's counters, in
        one transaction."""
        items = _count_items(deltas, float)
        if not items:
            return
        self._require_v3("counters")
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO counters (collection, name, value) VALUES (?,?,?)"
                " ON CONFLICT (collection, name) DO UPDATE SET value = value + excluded.value",
                [(collection, k, float(v)) for k, v in items])

    def counters(self, collection: str, prefix: str = "") -> dict[str, float]:
        """The collection's counters whose names start with ``prefix``."""
        if self._version < 3:
            return {}
        rows = self._query(
            "SELECT name, value FROM counters WHERE collection=? AND substr(name, 1, ?) = ?"
            " ORDER BY name", (collection, len(prefix), prefix))
        return {str(r[0]): float(r[1]) for r in rows}

    def reset_counters(self, collection: str, prefix: str = "") -> int:
        """Remove the collection's counters whose names start with ``prefix``; returns how
        many were removed."""
        self._require_v3("counters")
        with self.transaction() as db:
            cur = db.execute("DELETE FROM counters WHERE collection=? AND substr(name, 1, ?) = ?",
                             (collection, len(prefix), prefix))
            return int(cur.rowcount)

    # -- namespace layout -------------------------------------------------------------

    def set_layout(self, ns: str, layout: Mapping[str, Any]) -> None:
        """Replace the layout of namespace ``ns`` (a JSON object; see
        :attr:`NamespaceRow.layout`). Unknown namespace: ``StateError``."""
        if layout is None:
            raise InvalidArgument("layout", layout, "a JSON object ({} for none)")
        layout_json = _layout_json(layout)
        self._require_v3("namespace layouts")
        with self.transaction() as db:
            row = db.execute("SELECT collection FROM namespaces WHERE name=?", (ns,)).fetchone()
            if row is None:
                raise StateError(f"namespace {ns!r} is not recorded in the manifest",
                                 hint="run `vecver status` to see the namespaces")
            db.execute("UPDATE namespaces SET layout=? WHERE name=?", (layout_json, ns))
            db.execute("UPDATE collections SET generation = generation + 1 WHERE name=?",
                       (row[0],))
            self.log("namespace.layout", row[0], namespace=ns, layout=dict(layout))


def _json_object(what: str, value: Mapping[str, Any] | None) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, Mapping):
        raise InvalidArgument(what, type(value).__name__, "a JSON object (a dict)")
    try:
        return json.dumps(dict(value), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(what, "...", f"a JSON object ({e})") from e


def _layout_json(layout: Mapping[str, Any] | None) -> str | None:
    return None if not layout else _json_object("layout", layout)


def _count_items(counts: Mapping[str, Any], typ: type) -> list[tuple[str, Any]]:
    if not isinstance(counts, Mapping):
        raise InvalidArgument("counts", type(counts).__name__, "a mapping of name -> amount")
    out: list[tuple[str, Any]] = []
    for k, v in counts.items():
        if not isinstance(k, str) or not k or not _encodable(k):
            raise InvalidArgument("counts", k, "non-empty string keys")
        ok = (not isinstance(v, bool) and isinstance(v, (int, float) if typ is float else int)
              and math.isfinite(v))
        if not ok or (typ is int and v < 0):
            raise InvalidArgument("counts", v, "finite amounts" if typ is float
                                  else "non-negative integer counts")
        if v:
            out.append((k, v))
    return out


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value > 0
    ):
        raise InvalidArgument(name, value, "a positive number of seconds")
    return float(value)


def _check_kind(kind: object) -> None:
    if not isinstance(kind, str) or not kind or not _encodable(kind):
        raise InvalidArgument("kind", kind, "a non-empty string")


def _int_ids(ids: Iterable[object]) -> list[int]:
    if isinstance(ids, (str, bytes)):
        raise InvalidArgument("ids", ids, "a list of work item ids")
    out: list[int] = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise InvalidArgument("ids", i, "integer work item ids")
        out.append(i)
    return out

