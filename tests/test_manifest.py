"""The manifest: append-only events, lifecycle transitions, leases, write intents and
recovery of half-done writes and cutovers."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from vvcore import (
    assert_all_live_match,
    assert_verify_clean,
    config,
    contents,
    dead_owner,
    foreign_owner,
    make_docs,
    model_of,
    ns_of,
    states,
)

import vecver
from vecver.backends.memory import AliasedMemoryBackend, MemoryBackend
from vecver.errors import (
    BackendError,
    InvalidInput,
    StateError,
    TransientBackendError,
    WriteFailed,
)
from vecver.store.sqlite import Manifest, owner_alive, owner_id
from vecver.testing.faults import Call, FaultyBackend
from vecver.types import Document, Record

# ------------------------------------------------------------------------ event log


def test_events_are_append_only(ws: vecver.Workspace) -> None:
    ws.collection("c").upsert(make_docs(3))
    vecver.migrate(ws, "c", "v2", progress=False)
    events = ws.manifest.events()
    assert len(events) >= 4
    for sql in ("UPDATE events SET kind='forged'", "DELETE FROM events",
                "UPDATE events SET detail='{}' WHERE id=1", "DELETE FROM events WHERE id=1"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"), \
                ws.manifest.transaction() as db:
            db.execute(sql)
    # another connection (another process) cannot either
    other = sqlite3.connect(ws.config.manifest_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        other.execute("DELETE FROM events")
    other.close()
    assert ws.manifest.events() == events
    # appending still works and ids keep growing
    ws.manifest.log("note", "c", text="hello")
    after = ws.manifest.events()
    assert after[:-1] == events and after[-1]["kind"] == "note"
    assert after[-1]["id"] > events[-1]["id"] and after[-1]["actor"]


def test_events_record_actor_and_detail(ws: vecver.Workspace) -> None:
    vecver.start_migration(ws, "c", "v2")
    (ev,) = [e for e in ws.manifest.events("c") if e["kind"] == "migration.started"]
    assert ev["detail"]["space"] == "v2" and ev["detail"]["from_space"] == "v1"
    assert str(sys.modules["os"].getpid()) in ev["actor"]


# ------------------------------------------------------------------------ lifecycle


def test_forbidden_transitions_raise(ws: vecver.Workspace) -> None:
    row = vecver.start_migration(ws, "c", "v2")
    v1 = ns_of(ws, "c", "v1")
    gen = ws.manifest.generation("c")
    n_events = len(ws.manifest.events())
    forbidden = [
        (row.name, "active"),  # building -> active skips ready
        (row.name, "retired"),
        (row.name, "planned"),
        (v1, "building"),  # the active space is never rebuilt in place
        (v1, "dropped"),  # nor dropped
    ]
    for ns, to in forbidden:
        with pytest.raises(StateError, match="cannot go from"):
            ws.manifest.set_state(ns, to)
    with pytest.raises(StateError, match="cannot go from"):
        ws.manifest.set_state(row.name, "ready", expect=["ready"])  # it is building
    with pytest.raises(StateError, match="unknown namespace"):
        ws.manifest.set_state("vv_nope", "ready")
    with pytest.raises(StateError, match="cannot become active"):
        ws.manifest.switch_active("c", row.name, "cutover")  # building
    with pytest.raises(StateError, match="already the active"):
        ws.manifest.switch_active("c", v1, "cutover")
    # refused transitions change nothing and log nothing
    assert states(ws) == {"v1": "active", "v2": "building"}
    assert ws.manifest.generation("c") == gen
    assert len(ws.manifest.events()) == n_events
    # the allowed path
    ws.manifest.set_state(row.name, "ready", expect=["building"])
    ws.manifest.switch_active("c", row.name, "cutover")
    assert states(ws) == {"v1": "retired", "v2": "active"}
    ws.manifest.set_state(v1, "dropped")
    for to in ("active", "ready", "retired", "building"):
        with pytest.raises(StateError):
            ws.manifest.set_state(v1, to)  # dropped is final
    with pytest.raises(StateError):
        ws.manifest.switch_active("c", v1, "rollback")


def test_create_collection_twice(ws: vecver.Workspace) -> None:
    with pytest.raises(StateError, match="already exists"):
        ws.create_collection("c", "v1")


def test_manifest_is_shared_by_two_handles(ws: vecver.Workspace) -> None:
    other = Manifest(ws.config.manifest_path)
    try:
        vecver.start_migration(ws, "c", "v2")
        assert {n.space_label: n.state for n in other.namespaces("c")} == {
            "v1": "active", "v2": "building"}
        other.log("from.other", "c")
        assert ws.manifest.events("c")[-1]["kind"] == "from.other"
    finally:
        other.close()


# ------------------------------------------------------------------------ leases


def test_lease_is_exclusive_between_live_owners(fast_dir: Path) -> None:
    m = Manifest(fast_dir / "m.db")
    try:
        assert m.acquire_lease("job") is None
        assert m.acquire_lease("job") == owner_id()  # not even to another call of ours
        owner = foreign_owner()
        with m.transaction() as db:
            db.execute("INSERT INTO leases VALUES ('other', ?, ?)", (owner, time.time() + 60))
        assert m.acquire_lease("other") == owner
        m.release_lease("other")  # not ours: release is a no-op
        assert m.acquire_lease("other") == owner
        m.release_lease("job")
        assert m._query("SELECT name FROM leases ORDER BY name") == [("other",)]
    finally:
        m.close()


def test_lease_of_a_dead_owner_is_taken_over(fast_dir: Path) -> None:
    m = Manifest(fast_dir / "m.db")
    try:
        dead = dead_owner()
        assert not owner_alive(dead)
        with m.transaction() as db:
            db.execute("INSERT INTO leases VALUES ('job', ?, ?)", (dead, time.time() + 3600))
        assert m.acquire_lease("job") is None
        assert m._query("SELECT owner FROM leases WHERE name='job'") == [(owner_id(),)]
    finally:
        m.close()


def test_lease_of_a_zombie_is_taken_over(fast_dir: Path) -> None:
    m = Manifest(fast_dir / "m.db")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = f"{socket.gethostname()}:{proc.pid}"
        with m.transaction() as db:
            db.execute("INSERT INTO leases VALUES ('job', ?, ?)", (owner, time.time() + 3600))
        assert m.acquire_lease("job") == owner  # alive
        proc.kill()
        deadline = time.time() + 30
        while owner_alive(owner):  # killed, not yet reaped: a zombie
            assert time.time() < deadline
            time.sleep(0.02)
        assert m.acquire_lease("job") is None
    finally:
        proc.kill()
        proc.wait()
        m.close()


def test_expired_lease_is_taken_over(fast_dir: Path) -> None:
    m = Manifest(fast_dir / "m.db")
    try:
        with m.transaction() as db:
            db.execute("INSERT INTO leases VALUES ('job', ?, ?)",
                       (foreign_owner(), time.time() - 1))
        assert m.acquire_lease("job") is None
    finally:
        m.close()


def test_a_lost_lease_stops_checkpointing(fast_dir: Path) -> None:
    m = Manifest(fast_dir / "m.db")
    try:
        assert m.acquire_lease("job") is None
        with m.transaction() as db:
            db.execute("UPDATE leases SET owner=? WHERE name='job'", (foreign_owner(),))
        with pytest.raises(StateError, match="lost the lease"):
            m.save_checkpoint("ns", "src", "cur", 1, {}, lease="job")
        assert m.checkpoint("ns") is None
    finally:
        m.close()


# ------------------------------------------------------------------------ failed writes


_DISK_FULL = BackendError("disk full")
_REFUSED = InvalidInput("this database refuses such metadata")


@pytest.fixture
def flaky(fast_dir: Path):
    """A workspace over the memory reference wrapped in the fault injector, collection
    ``c`` with 20 documents migrated to v2 (ready)."""
    be = FaultyBackend(MemoryBackend())
    ws = vecver.Workspace(config(fast_dir), backend=be, progress=False)
    c = ws.collection("c")
    docs = make_docs(20)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    yield ws, be, model_of(docs)
    ws.close()


def test_failed_upsert_is_recovered(flaky) -> None:
    ws, be, model = flaky
    c = ws.collection("c")
    be.fail("upsert", namespace_contains="__v2_", times=1, error=_DISK_FULL)
    new = make_docs(3, start=100) + make_docs(2, start=0, version=5)
    with pytest.raises(WriteFailed) as err:
        c.upsert(new)
    assert err.value.failed == "v2" and err.value.written == ["v1"]
    assert "'v2'" in str(err.value) and "written to: v1" in str(err.value)
    assert isinstance(err.value.cause, BackendError)
    (intent,) = ws.manifest.intents("c")
    assert intent.failed and intent.op == "upsert" and sorted(intent.doc_ids) == sorted(
        d.id for d in new)
    model.update(model_of(new))
    # the divergence is visible
    (v1, v2) = vecver.verify(ws, "c")
    assert v1.clean and not v2.clean and v2.missing == 3 and v2.stale == 2
    rep = ws.recover("c")
    assert rep.intents == 1 and rep.documents == 5
    assert ws.manifest.intents("c") == []
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)
    assert any(e["kind"] == "recovered" for e in ws.manifest.events("c"))


def test_failed_delete_is_recovered_and_never_resurrected(flaky) -> None:
    ws, be, model = flaky
    c = ws.collection("c")
    be.fail("delete", namespace_contains="__v2_", times=1, error=_DISK_FULL)
    with pytest.raises(WriteFailed) as err:
        c.delete(["d0001", "d0002"])
    assert err.value.failed == "v2" and err.value.written == ["v1"]
    for i in ("d0001", "d0002"):
        del model[i]
    assert set(contents(ws, ns_of(ws, "c", "v2"))) >= {"d0001", "d0002"}
    # the next write-capable command converges first: here, a cutover
    vecver.cutover(ws, "c", force=True)
    assert ws.manifest.intents("c") == []
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_failed_write_to_the_active_space_writes_nothing(flaky) -> None:
    ws, be, model = flaky
    c = ws.collection("c")
    be.fail("upsert", namespace_contains="__v1_", times=1, error=_DISK_FULL)
    with pytest.raises(WriteFailed) as err:
        c.upsert(make_docs(2, start=50))
    assert err.value.failed == "v1" and err.value.written == []
    ws.recover("c")
    assert_all_live_match(ws, "c", model)


def test_backend_refusing_input_after_a_partial_write(flaky) -> None:
    """A later space refusing the batch (InvalidInput) after an earlier one took it: the
    caller is told the write is partial, and recover converges."""
    ws, be, model = flaky
    c = ws.collection("c")
    be.fail("upsert", namespace_contains="__v2_", times=1, error=_REFUSED)
    new = make_docs(2, start=70)
    with pytest.raises(WriteFailed) as err:
        c.upsert(new)
    assert err.value.failed == "v2" and err.value.written == ["v1"]
    (intent,) = ws.manifest.intents("c")
    assert intent.failed
    model.update(model_of(new))
    ws.recover("c")
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_backend_refusing_input_first_writes_nothing(flaky) -> None:
    ws, be, model = flaky
    c = ws.collection("c")
    be.fail("upsert", namespace_contains="__v1_", times=1, error=_REFUSED)
    with pytest.raises(InvalidInput, match="refuses"):
        c.upsert(make_docs(2, start=70))
    ws.recover("c")
    assert ws.manifest.intents("c") == []
    assert_all_live_match(ws, "c", model)


def test_transient_errors_are_retried(flaky, monkeypatch: pytest.MonkeyPatch) -> None:
    from vecver.runtime import retry

    ws, be, model = flaky
    monkeypatch.setitem(retry.with_retry.__kwdefaults__, "sleep", lambda s: None)
    be.fail("upsert", namespace_contains="__v2_", times=2, error=TransientBackendError("busy"))
    new = make_docs(2, start=80)
    assert ws.collection("c").upsert(new).spaces == ["v1", "v2"]
    model.update(model_of(new))
    assert_all_live_match(ws, "c", model)
    assert ws.manifest.intents("c") == []


# ------------------------------------------------------------------------ dead writers


def test_intents_of_a_dead_process_are_converged(flaky) -> None:
    ws, be, model = flaky
    # a process recorded its intent, wrote the active space, and died
    new = make_docs(2, start=300) + make_docs(1, start=4, version=3)
    v1 = ns_of(ws, "c", "v1")
    emb = ws.embedder("v1")
    from vecver.types import Stamp

    vecs = emb.embed_documents([d.text for d in new])
    fp = emb.space.fingerprint
    ws.backend.upsert(v1, [Record(d.id, v, d.text, dict(d.metadata),
                                  Stamp.now(fp, d.id, d.text)) for d, v in zip(new, vecs)])
    dead = dead_owner()
    with ws.manifest.transaction() as db:
        db.execute("INSERT INTO intents (collection, op, doc_ids, owner, failed, at)"
                   " VALUES ('c', 'upsert', ?, ?, 0, ?)",
                   (sys.modules["json"].dumps([d.id for d in new]), dead, time.time()))
    model.update(model_of(new))
    (_, v2) = vecver.verify(ws, "c")
    assert v2.missing == 2 and v2.stale == 1  # dead intents are not "in flight"
    rep = ws.recover("c")
    assert rep.intents == 1
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_intents_of_a_live_process_are_left_alone(flaky) -> None:
    ws, be, model = flaky
    with ws.manifest.transaction() as db:
        db.execute("INSERT INTO intents (collection, op, doc_ids, owner, failed, at)"
                   " VALUES ('c', 'delete', '[\"d0003\"]', ?, 0, ?)",
                   (foreign_owner(), time.time()))
        db.execute("INSERT INTO tombstones VALUES ('c', 'd0003', ?, 0, ?)",
                   (time.time(), foreign_owner()))
    # another live process is deleting d0003 right now: not ours to finish
    assert ws.recover("c").intents == 0
    assert "d0003" in contents(ws, ns_of(ws, "c", "v2"))
    (v1, v2) = vecver.verify(ws, "c")
    assert v1.clean and v2.clean  # in flight, not divergent
    # unless forced
    assert ws.recover("c", force=True).intents == 1
    del model["d0003"]
    assert_all_live_match(ws, "c", model)


_DYING_WRITER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    import vecver
    from vvcore import config, make_docs
    ws = vecver.open(config(Path({root!r}), "local"))
    c = ws.collection("c")
    real = ws.backend.upsert
    def upsert(namespace, records):
        real(namespace, records)
        if "__v1_" in namespace:
            os._exit(9)  # killed between the active space's write and the others'
    ws.backend.upsert = upsert
    c.upsert(make_docs(4, start=500) + make_docs(2, start=0, version=7))
    """
)


def test_a_writer_killed_mid_write_is_converged(make_ws, fast_dir: Path) -> None:
    root = fast_dir / "dying"
    root.mkdir()
    ws = make_ws("local", root=root)
    c = ws.collection("c")
    docs = make_docs(10)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    code = _DYING_WRITER.format(tests=str(Path(__file__).parent), root=str(root))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 9, proc.stderr
    (intent,) = ws.manifest.intents("c")
    assert not owner_alive(intent.owner)
    model = model_of(docs)
    model.update(model_of(make_docs(4, start=500) + make_docs(2, start=0, version=7)))
    assert ws.recover("c").intents == 1
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


# ------------------------------------------------------------------------ interrupted cutovers


@pytest.fixture
def aliased(fast_dir: Path):
    """The aliased reference backend in the fault injector; ``c`` migrated to v2."""
    be = FaultyBackend(AliasedMemoryBackend())
    ws = vecver.Workspace(config(fast_dir), backend=be, progress=False)
    ws.collection("c").upsert(make_docs(10))
    vecver.migrate(ws, "c", "v2", progress=False)
    yield ws, be
    ws.close()


def test_native_alias_follows_cutover_and_rollback(aliased) -> None:
    ws, be = aliased
    assert be.get_alias("c") == ns_of(ws, "c", "v1")
    vecver.cutover(ws, "c", force=True)
    assert be.get_alias("c") == ns_of(ws, "c", "v2")
    vecver.rollback(ws, "c")
    assert be.get_alias("c") == ns_of(ws, "c", "v1")
    assert ws.manifest.pending_cutover("c") is None


def test_cutover_interrupted_after_the_alias_moved_is_finished(aliased) -> None:
    ws, be = aliased
    v1, v2 = ns_of(ws, "c", "v1"), ns_of(ws, "c", "v2")
    ws.manifest.begin_cutover("c", v1, v2, "cutover")
    be.set_alias("c", v2)  # ... and the process died before the manifest commit
    rep = ws.recover("c")
    assert rep.cutovers == 1
    assert states(ws) == {"v1": "retired", "v2": "active"}
    assert ws.manifest.pending_cutover("c") is None
    assert ws.manifest.alias_history("c")[-1]["reason"] == "cutover"


def test_cutover_interrupted_before_the_alias_moved_is_cleared(aliased) -> None:
    ws, be = aliased
    be.fail("set_alias", error=BackendError("alias switch failed"))
    with pytest.raises(BackendError):
        vecver.cutover(ws, "c", force=True)
    assert ws.manifest.pending_cutover("c") is not None
    be.clear_faults()
    rep = ws.recover("c")
    assert rep.cutovers == 1 and ws.manifest.pending_cutover("c") is None
    assert states(ws) == {"v1": "active", "v2": "ready"}
    assert be.get_alias("c") == ns_of(ws, "c", "v1")
    vecver.cutover(ws, "c", force=True)
    assert be.get_alias("c") == ns_of(ws, "c", "v2")


def test_space_becoming_live_mid_write_with_a_failing_embedder(flaky,
                                                                monkeypatch) -> None:
    """A space that becomes live while a write is under way is written too; when its
    embedder fails, that candidate is marked failed (with the reason) and stops receiving
    writes, while the write succeeds for the others and leaves no intent behind."""
    ws, be, model = flaky
    c = ws.collection("c")
    started = [False]

    def start_v3(call: Call, result: object) -> None:
        if "__v1_" in (call.namespace or "") and not started[0]:
            started[0] = True
            vecver.start_migration(ws, "c", "v3")  # v3 is live from now on
            emb = ws.embedder("v3")
            monkeypatch.setattr(emb.embedder, "embed", _broken_embed)

    be.after("upsert", start_v3)
    new = make_docs(2, start=40)
    res = c.upsert(new)
    assert res.spaces == ["v1", "v2"] and res.failed == ["v3"]
    assert "model crashed" in res.reasons["v3"]
    assert ws.manifest.intents("c") == []
    row = ws.manifest.namespace_for("c", "v3")
    assert row is not None and row.state == "failed" and "model crashed" in (row.reason or "")
    assert [n.space_label for n in ws.manifest.live_namespaces("c")[1]] == ["v1", "v2"]
    model.update(model_of(new))
    assert_all_live_match(ws, "c", model)
    c.upsert(make_docs(1, start=60))  # later writes no longer touch the failed space
    assert ws.manifest.intents("c") == []


def _broken_embed(texts: Sequence[str]):  # type: ignore[no-untyped-def]
    raise RuntimeError("model crashed")


def test_failed_metadata_only_update_is_recovered(flaky) -> None:
    """Same text, new metadata: the source hash does not change, the metadata must
    still converge (a filter on the other space would give other results)."""
    ws, be, model = flaky
    c = ws.collection("c")
    be.fail("upsert", namespace_contains="__v2_", times=1, error=_DISK_FULL)
    with pytest.raises(WriteFailed):
        c.upsert([Document("d0001", model["d0001"], {"n": 1, "odd": 1, "tag": "new"})])
    (_, v2) = vecver.verify(ws, "c")
    assert not v2.clean and v2.stale == 1
    ws.recover("c")
    for label in ("v1", "v2"):
        got = contents(ws, ns_of(ws, "c", label))["d0001"].metadata
        assert got == {"n": 1, "odd": 1, "tag": "new"}, label
    assert_verify_clean(ws)
    hits = c.search("alpha1", k=3, route="space:v2", filter={"tag": "new"})
    assert [h.id for h in hits] == ["d0001"]


def test_failed_delete_on_the_active_space_is_completed_by_recovery(flaky) -> None:
    """The tombstone is recorded before any delete, so a delete that failed everywhere is
    still a delete: recovery finishes it rather than losing it."""
    ws, be, model = flaky
    be.fail("delete", namespace_contains="__v1_", times=1, error=_DISK_FULL)
    with pytest.raises(WriteFailed) as err:
        ws.collection("c").delete(["d0007"])
    assert err.value.failed == "v1" and err.value.written == []
    ws.recover("c")
    del model["d0007"]
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)
