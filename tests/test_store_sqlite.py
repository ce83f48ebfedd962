"""The manifest store on SQLite: the store compliance suite, plus what only the SQLite
file has (upgrade of old files, faults of the file itself, processes killed with -9)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from vvcli import CliWorkspace, hash_config

from vecver.errors import (
    ManifestCorrupt,
    ManifestEmpty,
    ManifestError,
    ManifestFull,
    ManifestReadOnly,
    ManifestUnavailable,
)
from vecver.store.sqlite import APPLICATION_ID, Manifest
from vecver.testing.store_suite import ManifestStoreSuite


class TestSQLiteStore(ManifestStoreSuite):
    @pytest.fixture
    def open_store(self, fast_dir: Path) -> Callable[..., Manifest]:
        fast_dir.mkdir(parents=True, exist_ok=True)

        def open_(*, owner: str | None = None, clock: Any = None,
                  queue_limit: int | None = None) -> Manifest:
            kw: dict[str, Any] = {"owner": owner}
            if clock is not None:
                kw["clock"] = clock
            if queue_limit is not None:
                kw["queue_limit"] = queue_limit
            return Manifest(fast_dir / "manifest.db", **kw)

        return open_


# =============================================================== helpers

def _mount_allowed() -> bool:
    """Whether this process may mount file systems (root with CAP_SYS_ADMIN)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    d = tempfile.mkdtemp(prefix="vv-mnt-probe-")
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", d],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", d], check=True)
        return ok
    finally:
        os.rmdir(d)


MOUNT = _mount_allowed()


@contextlib.contextmanager
def tiny_tmpfs(size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` (a real file system that fills up)."""
    if not MOUNT:
        pytest.skip("needs permission to mount a tmpfs (root with CAP_SYS_ADMIN)")
    d = Path(tempfile.mkdtemp(prefix="vv-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(d)],
                   check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        os.rmdir(d)


@contextlib.contextmanager
def read_only_view(src: Path) -> Iterator[Path]:
    """``src`` seen read-only, in a way that holds even for root: a read-only bind mount
    where mounting is allowed, else (not root) the permission bits of the directory and
    its files. Skips when neither can be enforced (root without mount permission)."""
    if MOUNT:
        view = Path(tempfile.mkdtemp(prefix="vv-ro-"))
        subprocess.run(["mount", "--bind", str(src), str(view)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
            yield view
        finally:
            subprocess.run(["umount", "-l", str(view)], check=False)
            os.rmdir(view)
    elif os.geteuid() != 0:
        files = [p for p in src.iterdir() if p.is_file()]
        for p in files:
            p.chmod(0o444)
        src.chmod(0o555)
        try:
            yield src
        finally:
            src.chmod(0o755)
            for p in files:
                p.chmod(0o644)
    else:
        pytest.skip("root without mount permission: no read-only file system to test on")


def _cli_workspace(root: Path, manifest: Path) -> CliWorkspace:
    ws = CliWorkspace(root)
    root.mkdir(parents=True, exist_ok=True)
    ws.write_config(hash_config().replace('path = "vecver.db"', f'path = "{manifest}"'))
    return ws


def _docs(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"d{i:05d}", "text": f"document number {i} about topic {i % 7}"}
            for i in range(start, start + n)]


def _ns_count(m: Manifest) -> int:
    return len(m.namespaces("c"))


# =============================================================== schema upgrade

#: the schema of version 1 (vecver before the ManifestStore protocol), as it wrote it
_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE spaces (label TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
    revision TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE collections (name TEXT PRIMARY KEY, active_namespace TEXT,
    generation INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE namespaces (name TEXT PRIMARY KEY,
    collection TEXT NOT NULL REFERENCES collections(name),
    space_label TEXT NOT NULL REFERENCES spaces(label), fingerprint TEXT NOT NULL,
    state TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, ready_at REAL,
    UNIQUE (collection, space_label));
CREATE TABLE alias_history (id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL,
    from_namespace TEXT, to_namespace TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
    actor TEXT NOT NULL);
CREATE TABLE checkpoints (namespace TEXT PRIMARY KEY, source TEXT NOT NULL, cursor TEXT,
    done INTEGER NOT NULL DEFAULT 0, stats TEXT NOT NULL DEFAULT '{}',
    finished INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL);
CREATE TABLE tombstones (collection TEXT NOT NULL, doc_id TEXT NOT NULL, at REAL NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL, PRIMARY KEY (collection, doc_id));
CREATE TABLE intents (id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL,
    op TEXT NOT NULL, doc_ids TEXT NOT NULL, owner TEXT NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0, at REAL NOT NULL);
CREATE TABLE evaluations (id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL,
    run TEXT NOT NULL, namespace TEXT NOT NULL, space_label TEXT NOT NULL, at REAL NOT NULL,
    results TEXT NOT NULL);
CREATE TABLE adapters (id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL,
    from_label TEXT NOT NULL, to_label TEXT NOT NULL, kind TEXT NOT NULL,
    location TEXT NOT NULL, metrics TEXT NOT NULL DEFAULT '{}', at REAL NOT NULL);
CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE pending_cutovers (collection TEXT PRIMARY KEY, from_namespace TEXT,
    to_namespace TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
    actor TEXT NOT NULL, collection TEXT, kind TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO meta VALUES ('created_at', '1700000000.0');
PRAGMA application_id = @APPLICATION_ID@;
INSERT INTO spaces VALUES ('v1', 'fp1', 'r', '{"dim": 4}', 1700000000.0);
INSERT INTO spaces VALUES ('v2', 'fp2', 'r', '{"dim": 4}', 1700000000.0);
INSERT INTO collections VALUES ('c', 'c__v1', 3, 1700000000.0);
INSERT INTO namespaces VALUES ('c__v1', 'c', 'v1', 'fp1', 'active', 1700000000.0,
    1700000000.0, 1700000000.0);
INSERT INTO namespaces VALUES ('c__v2', 'c', 'v2', 'fp2', 'building', 1700000001.0,
    1700000001.0, NULL);
INSERT INTO alias_history (collection, from_namespace, to_namespace, reason, at, actor)
    VALUES ('c', NULL, 'c__v1', 'create', 1700000000.0, 'ada@old:1');
INSERT INTO tombstones VALUES ('c', 'gone''s "id" 100%', 1700000002.0, 1, 'old-host:12');
INSERT INTO intents (collection, op, doc_ids, owner, failed, at)
    VALUES ('c', 'upsert', '["a", "b"]', 'old-host:12', 0, 1700000003.0);
INSERT INTO checkpoints VALUES ('c__v2', 'active', 'd0007', 7, '{}', 0, 1700000004.0);
INSERT INTO events (at, actor, collection, kind, detail)
    VALUES (1700000000.0, 'ada@old:1', 'c', 'collection.created', '{"space": "v1"}');
"""


def _v1_manifest(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(_V1_SCHEMA.replace("@APPLICATION_ID@", str(APPLICATION_ID)))
    db.execute("PRAGMA journal_mode = WAL")
    db.close()


def test_a_version_1_manifest_is_upgraded_in_place(fast_dir: Path) -> None:
    """A manifest written by the version before (schema 1) opens, is upgraded once, in
    place, and keeps every row; its namespaces live on the default backend instance."""
    fast_dir.mkdir(parents=True, exist_ok=True)
    path = fast_dir / "v1.db"
    _v1_manifest(path)
    with Manifest(path) as m:
        assert m.schema_version == 3
        rows = {n.name: (n.state, n.backend, n.reason) for n in m.namespaces("c")}
        assert rows == {"c__v1": ("active", "default", None),
                        "c__v2": ("building", "default", None)}
        assert m.generation("c") == 3 and m.active_namespace("c") == "c__v1"
        assert m.tombstoned("c", ['gone\'s "id" 100%']) == {'gone\'s "id" 100%'}
        (intent,) = m.intents("c")
        assert intent.doc_ids == ["a", "b"] and intent.owner == "old-host:12"
        ck = m.checkpoint("c__v2")
        assert ck is not None and ck.cursor == "d0007"
        kinds = [e["kind"] for e in m.events()]
        assert kinds == ["collection.created", "manifest.upgraded"]
        # what version 2 adds works on the upgraded file
        m.register_space("v3", "fp3", "r", {})
        m.add_namespace("c", "v3", "fp3", "c__v3", "planned", backend="second")
        m.set_state("c__v2", "failed", reason="embedder broke")
        assert m.enqueue("k", {"x": 1}) is not None
        # ... and what version 3 adds
        assert all(n.layout == {} for n in m.namespaces("c"))
        m.set_layout("c__v1", {"text_field": "body"})
        assert m.put_artifact("adapter", "c", "a", b"x").version == 1
        m.record_reads("c", {"d1": 2})
        m.bump_counters("c", {"q": 1.0})
    with Manifest(path) as m:  # opened again: nothing to upgrade
        assert [e["kind"] for e in m.events()].count("manifest.upgraded") == 1
        row = m.namespace("c__v3")
        assert row is not None and row.backend == "second"
        row = m.namespace("c__v2")
        assert row is not None and row.state == "failed" and row.reason == "embedder broke"
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("3",)
    db.close()
    with Manifest(path) as m:
        row = m.namespace("c__v1")
        assert row is not None and row.layout == {"text_field": "body"}
        assert m.read_counts("c") == [("d1", 2)] and m.counters("c") == {"q": 1.0}


def test_a_version_2_manifest_is_upgraded_to_3(fast_dir: Path) -> None:
    """A schema-2 file (namespaces with backend and reason, the work queue) gains the
    layout column, artifacts, read counts and counters, keeping its rows and queue."""
    from vecver.store.sqlite import _UPGRADE_V2

    fast_dir.mkdir(parents=True, exist_ok=True)
    path = fast_dir / "v2.db"
    _v1_manifest(path)
    db = sqlite3.connect(path, isolation_level=None)
    for stmt in _UPGRADE_V2:
        db.execute(stmt)
    db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    db.execute("UPDATE namespaces SET backend='second', reason='why' WHERE name='c__v2'")
    db.execute("INSERT INTO work_items (kind, payload, enqueued_at) VALUES ('k', '1', 0)")
    db.close()
    with Manifest(path, read_only=True) as m:  # read as it is, nothing of v3 yet
        assert m.schema_version == 2
        assert [n.layout for n in m.namespaces("c")] == [{}, {}]
        assert m.artifacts("adapter") == [] and m.read_counts("c") == []
        assert m.counters("c") == {} and m.read_totals("c") == (0, 0)
    with Manifest(path) as m:
        assert m.schema_version == 3
        row = m.namespace("c__v2")
        assert row is not None and (row.backend, row.reason, row.layout) == (
            "second", "why", {})
        assert m.queue_stats("k").pending == 1
        upgraded = [e for e in m.events() if e["kind"] == "manifest.upgraded"]
        assert [e["detail"]["from_version"] for e in upgraded] == [2]


def test_a_version_1_manifest_opened_read_only_is_read_as_it_is(fast_dir: Path) -> None:
    fast_dir.mkdir(parents=True, exist_ok=True)
    path = fast_dir / "v1.db"
    _v1_manifest(path)
    with Manifest(path, read_only=True) as m:
        assert m.read_only and m.schema_version == 1
        assert [n.backend for n in m.namespaces("c")] == ["default", "default"]
        assert m.queue_stats("k").pending == 0
        with pytest.raises(ManifestReadOnly):
            m.log("note")
    with Manifest(path) as m:
        assert m.schema_version == 3


# =============================================================== faults of the file

def test_disk_full_during_a_write_is_manifest_full(fast_dir: Path) -> None:
    """A write that finds no room raises ManifestFull (a ManifestError naming the cause,
    exit 4), records nothing, and the store keeps working once there is room again."""
    fast_dir.mkdir(parents=True, exist_ok=True)
    m = Manifest(fast_dir / "m.db")
    try:
        m.register_space("v1", "fp1", "r", {})
        m.create_collection("c", "v1", "fp1", "c__v1")
        (pages,) = m._query("PRAGMA page_count")[0]
        m._db.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is full now
        big = [f"doc-{i:06d}-" + "x" * 200 for i in range(2000)]
        with pytest.raises(ManifestFull) as e:
            m.begin_write("c", "delete", big)
        assert isinstance(e.value, ManifestError) and e.value.path == str(fast_dir / "m.db")
        assert "no space left" in str(e.value) and "free disk space" in str(e.value)
        assert m.intents("c") == [] and m.tombstone_count("c") == 0  # reads still work
        m._db.execute("PRAGMA max_page_count = 1073741823")
        m.begin_write("c", "delete", big)
        assert m.tombstone_count("c") == len(big)
    finally:
        m.close()


def _fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` with one file (returned)."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def test_disk_full_on_a_real_file_system_through_the_cli(tmp_path: Path) -> None:
    """`vecver ingest` with the manifest on a full file system exits 4 with one line that
    says the disk is full (not a traceback); after room is made, a re-run completes."""
    with tiny_tmpfs("4m") as mdir:
        ws = _cli_workspace(tmp_path / "ws", mdir / "vecver.db")
        ws.run("ingest", "docs", ws.jsonl("docs.jsonl", _docs(40)), ok=True)
        filler = _fill(mdir)
        more = ws.jsonl("more.jsonl", _docs(400, start=1000))
        res = ws.run("ingest", "docs", more, ok=False)
        assert res.rc == 4, str(res)
        assert "no space left" in res.err and "manifest" in res.err, str(res)
        filler.unlink()
        ws.run("ingest", "docs", more, ok=True)
        st = ws.collection_status("docs")
        assert st is not None


def test_a_new_manifest_on_a_full_disk_leaves_no_file(tmp_path: Path) -> None:
    """Creating a manifest where there is no room raises ManifestFull and leaves nothing
    behind (not a 0-byte file that the next run would have to refuse)."""
    with tiny_tmpfs("64k") as d:
        _fill(d)
        with pytest.raises(ManifestFull):
            Manifest(d / "vecver.db")
        assert sorted(p.name for p in d.iterdir()) == ["filler"]


def _filled_manifest(d: Path) -> Path:
    path = d / "vecver.db"
    with Manifest(path) as m:
        m.register_space("v1", "fp1", "r", {})
        m.create_collection("c", "v1", "fp1", "c__v1")
        m.begin_write("c", "delete", ["x"])
    return path


def test_a_read_only_manifest_is_read_and_refuses_writes(fast_dir: Path) -> None:
    """A manifest on a read-only file system (or without write permission) opens
    read-only: reads work, the first write raises ManifestReadOnly (not ManifestCorrupt
    with backup advice) and nothing is changed."""
    src = fast_dir / "ro"
    src.mkdir(parents=True)
    _filled_manifest(src)
    before = (src / "vecver.db").read_bytes()
    with read_only_view(src) as view:
        m = Manifest(view / "vecver.db")
        try:
            assert m.read_only
            assert m.collections() == ["c"] and m.tombstone_count("c") == 1
            assert [n.name for n in m.live_namespaces("c")[1]] == ["c__v1"]
            assert m.owner_alive(m.owner)
            with pytest.raises(ManifestReadOnly) as e:
                m.begin_write("c", "upsert", ["y"])
            assert "read-only" in str(e.value) and "corrupt" not in str(e.value)
            with pytest.raises(ManifestReadOnly):
                m.acquire_lease("job")
            m.register_space("v1", "fp1", "r", {})  # already there: no write needed
        finally:
            m.close()
        with pytest.raises(ManifestReadOnly):  # cannot be created there either
            Manifest(view / "new.db")
    assert (src / "vecver.db").read_bytes() == before


def test_a_read_only_manifest_through_the_cli(tmp_path: Path) -> None:
    """`vecver status`, `history` and `search` work on a read-only manifest; `vecver
    ingest` exits 4 saying it is read-only."""
    src = tmp_path / "mdir"
    src.mkdir()
    ws = _cli_workspace(tmp_path / "ws", src / "vecver.db")
    ws.run("ingest", "docs", ws.jsonl("docs.jsonl", _docs(10)), ok=True)
    with read_only_view(src) as view:
        ro = _cli_workspace(tmp_path / "ws", view / "vecver.db")
        st = ro.run("status", ok=True)
        assert "docs" in st.out
        assert ro.run("history", "docs", ok=True).out
        hits = ro.run("search", "docs", "document number 3", "--json", ok=True).json()
        assert hits and hits[0]["space"] == "v1"
        res = ro.run("ingest", "docs", ro.jsonl("more.jsonl", _docs(5, start=50)), ok=False)
        assert res.rc == 4 and "read-only" in res.err and "corrupt" not in res.err, str(res)


def test_an_empty_manifest_file_is_refused(fast_dir: Path, tmp_path: Path) -> None:
    """A 0-byte manifest is refused with ManifestEmpty saying what to do (it was
    silently treated as a new manifest), and is left as it is."""
    fast_dir.mkdir(parents=True, exist_ok=True)
    path = fast_dir / "vecver.db"
    path.write_bytes(b"")
    with pytest.raises(ManifestEmpty) as e:
        Manifest(path)
    assert "empty" in str(e.value) and "delete it" in str(e.value)
    assert isinstance(e.value, ManifestError) and path.stat().st_size == 0
    ws = _cli_workspace(tmp_path / "ws", path)
    res = ws.run("status", ok=False)
    assert res.rc == 4 and "empty" in res.err, str(res)
    assert path.stat().st_size == 0


def test_a_manifest_that_cannot_be_opened(fast_dir: Path) -> None:
    """A path that cannot hold a manifest (a directory; below a regular file) raises
    ManifestUnavailable naming the cause, not ManifestCorrupt."""
    fast_dir.mkdir(parents=True, exist_ok=True)
    (fast_dir / "adir").mkdir()
    with pytest.raises(ManifestUnavailable, match="directory"):
        Manifest(fast_dir / "adir")
    (fast_dir / "afile").write_text("x")
    with pytest.raises(ManifestUnavailable):
        Manifest(fast_dir / "afile" / "vecver.db")
    with pytest.raises(ManifestCorrupt, match="no such file"):
        Manifest(fast_dir / "missing.db", create=False)
    assert not (fast_dir / "missing.db").exists()


def test_concurrent_creation_gives_one_manifest(fast_dir: Path) -> None:
    """Many handles creating the same new manifest at once end with one valid file."""
    fast_dir.mkdir(parents=True, exist_ok=True)
    path = fast_dir / "race.db"
    errors: list[BaseException] = []
    made: list[Manifest] = []
    lock = threading.Lock()

    def create() -> None:
        try:
            m = Manifest(path)
            m.log("hello")
            with lock:
                made.append(m)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert [e["kind"] for e in made[0].events()] == ["hello"] * 6
        assert sorted(p.name for p in fast_dir.iterdir() if ".new" in p.name) == []
    finally:
        for m in made:
            m.close()


# =============================================================== leases across processes

_FOREIGN_HOLDER = textwrap.dedent("""
    import sys, uuid
    from vecver.store.sqlite import APPLICATION_ID, Manifest
    owner = f"{uuid.uuid4().hex}@host-elsewhere.invalid:{__import__('os').getpid()}"
    m = Manifest(sys.argv[1], owner=owner)
    m.begin_write("c", "upsert", ["a"])  # heartbeats start, at the owner TTL's pace
    assert m.acquire_lease("job", ttl=float(sys.argv[2])) is None  # a shorter TTL
    print(owner, flush=True)
    sys.stdin.read()  # hold it (heartbeats renew it) until killed
""")


def _start_holder(db: Path, ttl: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", _FOREIGN_HOLDER, str(db), str(ttl)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    owner = proc.stdout.readline().strip()
    assert owner, "the holder did not start"
    return proc, owner


def test_lease_of_a_killed_process_on_another_host_is_taken_over_after_its_ttl(
    fast_dir: Path,
) -> None:
    """A process "on another host" takes a lease and is killed with -9. Its pid means
    nothing here, so the lease is refused until its TTL has passed without renewals -
    not before - and then taken over."""
    fast_dir.mkdir(parents=True, exist_ok=True)
    db = fast_dir / "m.db"
    Manifest(db).close()
    proc, owner = _start_holder(db, ttl=60)
    try:
        with Manifest(db) as m:
            assert m.acquire_lease("job") == owner
            assert m.owner_alive(owner)
    finally:
        proc.kill()
        proc.wait()
    with Manifest(db) as m:
        lease = m.lease("job")
        assert lease is not None and lease.owner == owner
        assert m.acquire_lease("job") == owner  # dead, but that cannot be known yet
        expires = lease.expires_at
    with Manifest(db, clock=lambda: expires - 1.0) as m:
        assert m.acquire_lease("job") == owner  # a second before its TTL ends
    with Manifest(db, clock=lambda: expires + 0.01) as m:
        assert m.acquire_lease("job") is None  # after it
        taken = m.lease("job")
        assert taken is not None and taken.owner == m.owner
        assert any(e["kind"] == "lease.taken_over" and e["detail"]["from_owner"] == owner
                   for e in m.events())
        assert not m.owner_alive(owner) or m.owner_alive(owner)  # both legal at this point
    with Manifest(db, clock=lambda: expires + 3600) as m:
        assert not m.owner_alive(owner)  # its heartbeats stopped an hour ago


def test_heartbeats_keep_the_lease_of_a_live_process(fast_dir: Path) -> None:
    """While the holder lives, its heartbeats extend the lease: a lease with a 1 s TTL
    is still held, and renewed, seconds later."""
    fast_dir.mkdir(parents=True, exist_ok=True)
    db = fast_dir / "m.db"
    Manifest(db).close()
    proc, owner = _start_holder(db, ttl=1.0)
    try:
        with Manifest(db) as m:
            first = m.lease("job")
            assert first is not None and first.owner == owner
            deadline = time.time() + 60
            while True:  # renewed at least twice past the first expiry
                now = m.lease("job")
                assert now is not None and now.owner == owner
                if now.expires_at > first.expires_at + 2.0:
                    break
                assert time.time() < deadline, "the holder's heartbeats did not renew it"
                time.sleep(0.1)
            assert m.acquire_lease("job") == owner
    finally:
        proc.kill()
        proc.wait()


# =============================================================== queue across kill -9

_WORKER = textwrap.dedent("""
    import json, random, sys, time
    from vecver.store.sqlite import APPLICATION_ID, Manifest
    db, log_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    m = Manifest(db)
    with open(log_path, "a", encoding="utf-8") as log:
        while True:
            items = m.claim("work", limit=rng.randint(1, 4), ttl=float(sys.argv[4]))
            for w in items:
                log.write(json.dumps({"op": "claim", "id": w.id, "owner": w.owner,
                                      "from": w.lease_expires_at - float(sys.argv[4]),
                                      "until": w.lease_expires_at}) + "\\n")
            log.flush()
            if not items:
                time.sleep(0.01)
                continue
            time.sleep(rng.random() * 0.05)  # "work"
            done = m.complete([w.id for w in items])
            log.write(json.dumps({"op": "complete", "ids": done}) + "\\n")
            log.flush()
""")


def test_queue_loses_nothing_and_hands_nothing_out_twice_across_kill_9(
    fast_dir: Path,
) -> None:
    """Workers claim and complete in a loop and are killed with -9 at random points.
    Every item enqueued is completed or still queued (nothing lost), each completed once,
    and no item was handed out while another worker's lease on it held."""
    fast_dir.mkdir(parents=True, exist_ok=True)
    db = fast_dir / "q.db"
    ttl = 0.5
    rng = random.Random(5)
    with Manifest(db) as m:
        enqueued = {m.enqueue("work", {"n": n}, priority=n % 3) for n in range(1500)}
    assert None not in enqueued
    logs: list[Path] = []
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(seed: int) -> tuple[subprocess.Popen[bytes], Path]:
        log = fast_dir / f"worker{seed}.log"
        logs.append(log)
        proc = subprocess.Popen([sys.executable, "-c", _WORKER, str(db), str(log), str(seed),
                                 str(ttl)])
        return proc, log

    def working(log: Path, deadline: float) -> None:
        """Wait until the worker has claimed something (it is past its start-up)."""
        while not (log.exists() and log.stat().st_size > 0):
            assert time.time() < deadline, "a worker never claimed anything"
            time.sleep(0.02)

    kills, seed = 0, 0
    deadline = time.time() + 180
    try:
        for _ in range(3):
            procs.append(start(seed))
            seed += 1
        with Manifest(db) as m:
            while kills < 10:
                victim, log = procs.pop(rng.randrange(len(procs)))
                working(log, deadline)
                time.sleep(rng.uniform(0.0, 0.3))  # a random point of its loop
                victim.kill()  # SIGKILL
                victim.wait()
                kills += 1
                if m.queue_stats("work").pending + m.queue_stats("work").leased == 0:
                    break
                procs.append(start(seed))
                seed += 1
    finally:
        for proc, _ in procs:
            proc.kill()
            proc.wait()
    later = time.time() + ttl + 1
    with Manifest(db, clock=lambda: later) as m:  # after every lease ran out
        stats = m.queue_stats("work")
        left = {w.id for w in m.claim("work", limit=len(enqueued))}
        assert stats.leased == 0 and stats.pending == len(left)
        assert stats.completed + len(left) == len(enqueued)  # nothing lost
        assert left <= enqueued
    claims: dict[int, list[dict[str, Any]]] = {}
    completed: list[int] = []
    for log in logs:
        if not log.exists():
            continue
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the worker was killed
            if rec["op"] == "claim":
                claims.setdefault(rec["id"], []).append(rec)
            else:
                completed.extend(rec["ids"])
    assert len(completed) == len(set(completed))  # completed once each
    assert not set(completed) & left and set(completed) <= enqueued
    handed_again = 0
    for item, cs in claims.items():
        cs.sort(key=lambda c: c["from"])
        for a, b in zip(cs, cs[1:]):
            assert b["from"] >= a["until"], (item, a, b)  # never two live leases
            handed_again += 1
    # the run exercised what it checks: kills, and leases of killed workers handed out
    assert kills >= 3 and len(completed) > 100 and handed_again > 0, (
        kills, len(completed), handed_again)


@pytest.mark.parametrize("name", ["a b.db", "ü%20#x?.db", "100%.db"])
def test_manifest_paths_with_awkward_characters(fast_dir: Path, name: str) -> None:
    """A manifest path with spaces, percent signs, '#' or '?' opens read-write and
    read-only as the same file (the read-only open goes through a file: URI)."""
    path = fast_dir / "sub dir" / name
    with Manifest(path) as m:
        m.log("hello")
    with Manifest(path, read_only=True) as m:
        assert m.read_only and [e["kind"] for e in m.events()] == ["hello"]
        with pytest.raises(ManifestReadOnly):
            m.log("refused")  # refused even for root, who could write the file
    assert sorted(p.name for p in (fast_dir / "sub dir").iterdir()
                  if p.suffix == Path(name).suffix) == [name]
