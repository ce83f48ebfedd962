"""The manifest: vecver's durable record, one SQLite file by default.

It holds collections, spaces, namespaces and their lifecycle states, the alias history,
backfill checkpoints, tombstones, write intents, evaluation results, leases and an
append-only event log. Every state transition is one transaction (``BEGIN IMMEDIATE``),
so a crash leaves either the old or the new state, never a mix.

Several processes may share one manifest file (WAL mode, busy timeout).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    ManifestCorrupt,
    ManifestForeign,
    ManifestVersionError,
    SpaceConflict,
    StateError,
    UnknownCollection,
)

APPLICATION_ID = 0x76655652  # "veVR"
SCHEMA_VERSION = 1

#: lifecycle states of a namespace (one space inside one collection)
STATES = ("planned", "building", "ready", "active", "retired", "dropped")
#: states whose namespaces receive every write (dual-write)
LIVE_STATES = ("building", "ready", "active", "retired")

_TRANSITIONS: dict[str, set[str]] = {
    "planned": {"building", "active", "dropped"},
    "building": {"ready", "dropped"},
    "ready": {"active", "building", "dropped"},
    "active": {"retired", "ready"},
    "retired": {"active", "dropped"},
    "dropped": set(),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spaces (
    label TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    revision TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    active_namespace TEXT,
    generation INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS namespaces (
    name TEXT PRIMARY KEY,
    collection TEXT NOT NULL REFERENCES collections(name),
    space_label TEXT NOT NULL REFERENCES spaces(label),
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ready_at REAL,
    UNIQUE (collection, space_label)
);
CREATE TABLE IF NOT EXISTS alias_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    from_namespace TEXT,
    to_namespace TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    actor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    namespace TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    cursor TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    stats TEXT NOT NULL DEFAULT '{}',
    finished INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tombstones (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    at REAL NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id)
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    op TEXT NOT NULL,
    doc_ids TEXT NOT NULL,
    owner TEXT NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    run TEXT NOT NULL,
    namespace TEXT NOT NULL,
    space_label TEXT NOT NULL,
    at REAL NOT NULL,
    results TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS adapters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    from_label TEXT NOT NULL,
    to_label TEXT NOT NULL,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_cutovers (
    collection TEXT PRIMARY KEY,
    from_namespace TEXT,
    to_namespace TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    collection TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"""


#: leases this process holds, by (manifest file, lease name); the manifest records the
#: holder as ``host:pid``, which cannot tell two threads (or a nested call) apart
_HELD: set[tuple[str, str]] = set()
_HELD_LOCK = threading.Lock()


def owner_id() -> str:
    """``host:pid`` of this process — the owner of leases, intents and tombstones."""
    return f"{socket.gethostname()}:{os.getpid()}"


def actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """False when ``owner`` is a process of this host that no longer exists."""
    host, _, pid_s = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # cannot tell; leases expire instead
    try:
        pid = int(pid_s)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed child not yet reaped) counts as dead
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class NamespaceRow:
    name: str
    collection: str
    space_label: str
    fingerprint: str
    state: str
    created_at: float
    updated_at: float
    ready_at: float | None


@dataclass(frozen=True)
class SpaceRow:
    label: str
    fingerprint: str
    revision: str
    spec: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class Checkpoint:
    namespace: str
    source: str
    cursor: str | None
    done: int
    stats: dict[str, Any]
    finished: bool
    updated_at: float


@dataclass(frozen=True)
class Intent:
    id: int
    collection: str
    op: str
    doc_ids: list[str]
    owner: str
    failed: bool
    at: float


class Manifest:
    """Access to one manifest file. Thread-safe; safe to share between processes."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._in_tx = False
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if not exists and not create:
            raise ManifestCorrupt(self.path, "no such file")
        if not exists:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 60000")
            app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
            tables = {
                r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as e:
            raise ManifestCorrupt(self.path, str(e)) from e
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
            self._db.close()
            raise ManifestForeign(self.path)
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            if app_id == 0:
                self._db.executescript(
                    "BEGIN IMMEDIATE;"
                    + _SCHEMA
                    + f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
                    + f"INSERT OR IGNORE INTO meta VALUES ('created_at', '{time.time()}');"
                    + f"PRAGMA application_id = {APPLICATION_ID};"
                    + "COMMIT;"
                )
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise ManifestCorrupt(self.path, str(e)) from e
        if row is None:
            raise ManifestCorrupt(self.path, "no schema version")
        if int(row[0]) > SCHEMA_VERSION:
            raise ManifestVersionError(self.path, int(row[0]), SCHEMA_VERSION)

    # -- plumbing ---------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _corruption(self) -> Iterator[None]:
        """A damaged file found after opening it (SQLite raises a bare ``DatabaseError``
        for SQLITE_CORRUPT and SQLITE_NOTADB) as ``ManifestCorrupt``."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            if type(e) is not sqlite3.DatabaseError:  # busy, integrity, ...: subclasses
                raise
            raise ManifestCorrupt(self.path, str(e)) from e

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested uses join the outer one."""
        with self._lock:
            if self._in_tx:
                yield self._db
                return
            with self._corruption():
                self._db.execute("BEGIN IMMEDIATE")
                self._in_tx = True
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back already
                        self._db.execute("ROLLBACK")
                    raise
                else:
                    self._db.execute("COMMIT")
                finally:
                    self._in_tx = False

    @contextlib.contextmanager
    def _relaxed(self) -> Iterator[None]:
        """Commit the enclosed transaction without an fsync (see :meth:`save_checkpoint`)."""
        with self._lock:
            if self._in_tx:
                yield
                return
            self._db.execute("PRAGMA synchronous = NORMAL")
            try:
                yield
            finally:
                self._db.execute("PRAGMA synchronous = FULL")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._corruption():
            return list(self._db.execute(sql, args).fetchall())

    def log(self, kind: str, collection: str | None = None, **detail: Any) -> None:
        """Append an event (who, when, what). Joins an open transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO events (at, actor, collection, kind, detail) VALUES (?,?,?,?,?)",
                (time.time(), actor(), collection, kind, json.dumps(detail, sort_keys=True)),
            )

    def events(self, collection: str | None = None) -> list[dict[str, Any]]:
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

    # -- spaces -----------------------------------------------------------------------

    def register_space(
        self, label: str, fingerprint: str, revision: str, spec: dict[str, Any]
    ) -> None:
        """Record a space. Raises ``SpaceConflict`` if the label has another fingerprint."""
        with self.transaction() as db:
            row = db.execute("SELECT fingerprint FROM spaces WHERE label=?", (label,)).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise SpaceConflict(label, row[0], fingerprint)
                return
            db.execute(
                "INSERT INTO spaces VALUES (?,?,?,?,?)",
                (label, fingerprint, revision, json.dumps(spec, sort_keys=True), time.time()),
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

    # -- collections and namespaces ---------------------------------------------------

    def collections(self) -> list[str]:
        return [r[0] for r in self._query("SELECT name FROM collections ORDER BY name")]

    def has_collection(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM collections WHERE name=?", (name,)))

    def require_collection(self, name: str) -> None:
        if not self.has_collection(name):
            raise UnknownCollection(name, self.collections())

    def create_collection(self, name: str, space_label: str, fingerprint: str, ns: str) -> None:
        """Create a collection whose first space is active from the start."""
        now = time.time()
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM collections WHERE name=?", (name,)).fetchone():
                raise StateError(f"collection {name!r} already exists")
            db.execute("INSERT INTO collections VALUES (?,?,0,?)", (name, ns, now))
            db.execute(
                "INSERT INTO namespaces VALUES (?,?,?,?,'active',?,?,?)",
                (ns, name, space_label, fingerprint, now, now, now),
            )
            db.execute(
                "INSERT INTO alias_history (collection, from_namespace, to_namespace, reason, at,"
                " actor) VALUES (?,?,?,?,?,?)",
                (name, None, ns, "create", now, actor()),
            )
            self.log("collection.created", name, space=space_label, namespace=ns)

    def add_namespace(
        self, collection: str, space_label: str, fingerprint: str, ns: str, state: str
    ) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO namespaces VALUES (?,?,?,?,?,?,?,NULL)",
                (ns, collection, space_label, fingerprint, state, now, now),
            )
            db.execute(
                "UPDATE collections SET generation = generation + 1 WHERE name=?", (collection,)
            )
            self.log("namespace.added", collection, space=space_label, namespace=ns, state=state)

    def namespaces(self, collection: str) -> list[NamespaceRow]:
        rows = self._query(
            "SELECT * FROM namespaces WHERE collection=? ORDER BY created_at, name", (collection,)
        )
        return [NamespaceRow(*r) for r in rows]

    def namespace(self, name: str) -> NamespaceRow | None:
        rows = self._query("SELECT * FROM namespaces WHERE name=?", (name,))
        return NamespaceRow(*rows[0]) if rows else None

    def namespace_for(self, collection: str, space_label: str) -> NamespaceRow | None:
        rows = self._query(
            "SELECT * FROM namespaces WHERE collection=? AND space_label=?",
            (collection, space_label),
        )
        return NamespaceRow(*rows[0]) if rows else None

    def live_namespaces(self, collection: str) -> tuple[int, list[NamespaceRow]]:
        """(generation, live namespaces with the active one first)."""
        with self._lock:
            gen = self._query("SELECT generation FROM collections WHERE name=?", (collection,))
            if not gen:
                raise UnknownCollection(collection, self.collections())
            rows = [n for n in self.namespaces(collection) if n.state in LIVE_STATES]
        rows.sort(key=lambda n: (n.state != "active", n.created_at))
        return int(gen[0][0]), rows

    def generation(self, collection: str) -> int:
        rows = self._query("SELECT generation FROM collections WHERE name=?", (collection,))
        if not rows:
            raise UnknownCollection(collection, self.collections())
        return int(rows[0][0])

    def active_namespace(self, collection: str) -> str:
        rows = self._query("SELECT active_namespace FROM collections WHERE name=?", (collection,))
        if not rows:
            raise UnknownCollection(collection, self.collections())
        return str(rows[0][0])

    def set_state(self, ns: str, to: str, *, expect: Iterable[str] | None = None) -> None:
        """Move a namespace to another state; refuses transitions the lifecycle forbids."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT state, collection FROM namespaces WHERE name=?", (ns,))
            got = row.fetchone()
            if got is None:
                raise StateError(f"unknown namespace {ns!r}")
            state, collection = got
            allowed = set(expect) if expect is not None else {state}
            if state not in allowed or to not in _TRANSITIONS[state]:
                raise StateError(f"namespace {ns!r} cannot go from {state} to {to}")
            ready_at = now if to == "ready" else None
            db.execute(
                "UPDATE namespaces SET state=?, updated_at=?, ready_at=COALESCE(?, ready_at)"
                " WHERE name=?",
                (to, now, ready_at, ns),
            )
            db.execute(
                "UPDATE collections SET generation = generation + 1 WHERE name=?", (collection,)
            )
            self.log("namespace.state", collection, namespace=ns, from_state=state, to_state=to)

    def switch_active(self, collection: str, to_ns: str, reason: str, **detail: Any) -> str:
        """Point the collection's alias at ``to_ns`` in one transaction.

        The previous active namespace becomes ``retired`` (``ready`` when ``reason`` is
        ``rollback``). Returns the previous active namespace.
        """
        now = time.time()
        with self.transaction() as db:
            row = db.execute(
                "SELECT active_namespace FROM collections WHERE name=?", (collection,)
            ).fetchone()
            if row is None:
                raise UnknownCollection(collection, self.collections())
            prev = str(row[0])
            if prev == to_ns:
                raise StateError(f"{to_ns!r} is already the active namespace of {collection!r}")
            prev_to = "ready" if reason == "rollback" else "retired"
            to_state = db.execute(
                "SELECT state FROM namespaces WHERE name=?", (to_ns,)
            ).fetchone()
            if to_state is None or "active" not in _TRANSITIONS[to_state[0]]:
                raise StateError(f"namespace {to_ns!r} cannot become active")
            db.execute(
                "UPDATE namespaces SET state=?, updated_at=? WHERE name=?", (prev_to, now, prev)
            )
            db.execute(
                "UPDATE namespaces SET state='active', updated_at=? WHERE name=?", (now, to_ns)
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

    def alias_history(self, collection: str) -> list[dict[str, Any]]:
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
        """The namespace a rollback returns to: the latest retired one still kept."""
        current = self.active_namespace(collection)
        for h in reversed(self.alias_history(collection)):
            if h["to"] == current and h["from"]:
                ns = self.namespace(h["from"])
                if ns is not None and ns.state == "retired":
                    return ns.name
                break
        retired = [n for n in self.namespaces(collection) if n.state == "retired"]
        retired.sort(key=lambda n: n.updated_at)
        return retired[-1].name if retired else None

    # -- pending cutovers (native aliases) --------------------------------------------

    def begin_cutover(self, collection: str, from_ns: str, to_ns: str, reason: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO pending_cutovers VALUES (?,?,?,?,?)",
                (collection, from_ns, to_ns, reason, time.time()),
            )

    def pending_cutover(self, collection: str) -> tuple[str, str, str] | None:
        rows = self._query(
            "SELECT from_namespace, to_namespace, reason FROM pending_cutovers WHERE collection=?",
            (collection,),
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def clear_cutover(self, collection: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM pending_cutovers WHERE collection=?", (collection,))

    # -- write intents and tombstones -------------------------------------------------

    def begin_write(self, collection: str, op: str, ids: Sequence[str]) -> int:
        """Record the intent to write ``ids`` (before any backend write).

        For an upsert this also clears the ids' tombstones (the newest write wins); for a
        delete it records tombstones, so a running backfill can never resurrect them.
        """
        now = time.time()
        me = owner_id()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO intents (collection, op, doc_ids, owner, failed, at)"
                " VALUES (?,?,?,?,0,?)",
                (collection, op, json.dumps(list(ids)), me, now),
            )
            if op == "upsert":
                db.executemany(
                    "DELETE FROM tombstones WHERE collection=? AND doc_id=?",
                    [(collection, i) for i in ids],
                )
            elif op == "delete":
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
        with self.transaction() as db:
            db.execute("UPDATE intents SET failed=1 WHERE id=?", (intent,))

    def write_epoch(self, collection: str) -> tuple[int, int]:
        """(the highest write-intent id ever issued, the intents of ``collection`` open
        now). Every upsert and delete opens an intent before its first backend write, so
        an unchanged id with nothing open means no write happened in between."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name='intents'"
            ).fetchone()
            n = self._db.execute(
                "SELECT count(*) FROM intents WHERE collection=?", (collection,)
            ).fetchone()
        return (int(row[0]) if row else 0, int(n[0]))

    def intents(self, collection: str) -> list[Intent]:
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
        """The subset of ``ids`` that are tombstoned."""
        out: set[str] = set()
        ids = list(ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
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
        rows = self._query(
            "SELECT doc_id FROM tombstones WHERE collection=? AND doc_id > ? ORDER BY doc_id"
            " LIMIT ?",
            (collection, after or "", limit),
        )
        return [r[0] for r in rows]

    def tombstone_count(self, collection: str) -> int:
        return int(
            self._query("SELECT count(*) FROM tombstones WHERE collection=?", (collection,))[0][0]
        )

    # -- checkpoints and leases ---------------------------------------------------------

    def checkpoint(self, ns: str) -> Checkpoint | None:
        rows = self._query("SELECT * FROM checkpoints WHERE namespace=?", (ns,))
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
        """Record backfill progress (and renew ``lease`` in the same transaction).

        Committed without waiting for the disk (SQLite ``synchronous=NORMAL`` in WAL mode):
        a kill -9 loses nothing, a power loss may lose the latest checkpoints, which only
        makes a resume redo batches that are already written (writes are idempotent and
        the final verification checks every document)."""
        now = time.time()
        with self._lock, self._relaxed(), self.transaction() as db:
            if lease is not None:
                row = db.execute("SELECT owner FROM leases WHERE name=?", (lease,)).fetchone()
                if row is None or row[0] != owner_id():
                    raise StateError(f"lost the lease {lease!r} to {row[0] if row else 'nobody'}")
                db.execute(
                    "UPDATE leases SET expires_at=? WHERE name=?", (now + lease_ttl, lease)
                )
            db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?,?)",
                (ns, source, cursor, done, json.dumps(stats, sort_keys=True), int(finished), now),
            )

    def clear_checkpoint(self, ns: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM checkpoints WHERE namespace=?", (ns,))

    def acquire_lease(self, name: str, ttl: float = 120.0) -> str | None:
        """Take the lease ``name``. Returns None on success, else the live holder (this
        process's own id when another thread or call of this process holds it: a lease
        is exclusive per holder, not merely per process)."""
        now = time.time()
        me = owner_id()
        key = (os.path.realpath(self.path), name)
        with _HELD_LOCK:
            if key in _HELD:
                return me
            with self.transaction() as db:
                row = db.execute(
                    "SELECT owner, expires_at FROM leases WHERE name=?", (name,)
                ).fetchone()
                if row is not None and row[0] != me and row[1] > now and owner_alive(row[0]):
                    return str(row[0])
                db.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?,?,?)", (name, me, now + ttl)
                )
            _HELD.add(key)
            return None

    def release_lease(self, name: str) -> None:
        with _HELD_LOCK, self.transaction() as db:
            db.execute("DELETE FROM leases WHERE name=? AND owner=?", (name, owner_id()))
            _HELD.discard((os.path.realpath(self.path), name))

    # -- evaluations --------------------------------------------------------------------

    def record_evaluation(
        self, collection: str, run: str, ns: str, space_label: str, results: dict[str, Any]
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO evaluations (collection, run, namespace, space_label, at, results)"
                " VALUES (?,?,?,?,?,?)",
                (collection, run, ns, space_label, time.time(), json.dumps(results)),
            )

    def evaluations(self, collection: str, ns: str | None = None) -> list[dict[str, Any]]:
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
