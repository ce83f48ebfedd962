"""Concurrency: writes racing a backfill (and its final reconcile), searches racing
cutovers and rollbacks, and a second process writing while this one backfills."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from vvcore import (
    assert_all_live_match,
    assert_verify_clean,
    config,
    contents,
    make_docs,
    model_of,
    ns_of,
    states,
    text_of,
)

import vecver
from vecver.backends.memory import MemoryBackend
from vecver.testing.faults import Call, FaultyBackend
from vecver.types import Document, Record, Stamp

# ------------------------------------------------------------------------ writes from on_batch


def test_writes_from_on_batch_win_over_the_backfill(make_ws, backend_name: str) -> None:
    ws = make_ws(backend_name)
    c = ws.collection("c")
    docs = make_docs(100)
    c.upsert(docs)
    model = model_of(docs)
    batches = [0]

    def hook(rep: vecver.ops.backfill.BackfillReport) -> None:
        batches[0] += 1
        n = batches[0]
        if n == 2:
            # behind the cursor and ahead of it
            gone = ["d0003", "d0015", "d0050", "d0099"]
            c.delete(gone)
            for i in gone:
                model.pop(i)
            upd = [Document(i, text_of(i, 7)) for i in ("d0004", "d0060", "d0098")]
            c.upsert(upd)
            model.update(model_of(upd))
            new = make_docs(3, start=500)
            c.upsert(new)
            model.update(model_of(new))
        elif n == 4:
            # delete then re-create, update twice, delete what was just added
            c.delete(["d0070"])
            again = [Document("d0070", text_of("d0070", 9))]
            c.upsert(again)
            model["d0070"] = again[0].text
            for v in (1, 2):
                upd = [Document("d0080", text_of("d0080", v))]
                c.upsert(upd)
                model["d0080"] = upd[0].text
            c.delete(["d0500"])
            model.pop("d0500")

    rep = vecver.migrate(ws, "c", "v2", batch_size=10, progress=False, on_batch=hook)
    assert rep.state == "ready"
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)
    assert states(ws) == {"v1": "active", "v2": "ready"}


# ------------------------------------------------------------------------ a writer thread


def _writer(c: vecver.Collection, model: dict[str, str], stop: threading.Event,
            seed: int, ids: Sequence[str], errors: list[BaseException],
            pause: float = 0.0) -> None:
    rnd = random.Random(seed)
    version = 100
    try:
        while not stop.is_set():
            pick = rnd.sample(list(ids), rnd.randint(1, 4))
            if rnd.random() < 0.35:
                c.delete(pick)
                for i in pick:
                    model.pop(i, None)
            else:
                version += 1
                upd = [Document(i, text_of(i, version)) for i in pick]
                c.upsert(upd)
                model.update(model_of(upd))
            if pause:
                time.sleep(pause)
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get("VV_SEEDS", "1,2").split(",")])
def test_writer_thread_during_backfill(make_ws, backend_name: str, seed: int) -> None:
    ws = make_ws(backend_name)
    c = ws.collection("c")
    docs = make_docs(120)
    c.upsert(docs)
    model = model_of(docs)
    stop = threading.Event()
    errors: list[BaseException] = []
    ids = [d.id for d in docs] + [f"n{i:04d}" for i in range(20)]
    t = threading.Thread(target=_writer, args=(c, model, stop, seed, ids, errors))
    t.start()
    try:
        rep = vecver.migrate(ws, "c", "v2", batch_size=8, progress=False,
                             on_batch=lambda r: time.sleep(0.002))
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert rep.state == "ready", rep.verify.to_dict() if rep.verify else rep
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


# ------------------------------------------------------------------------ the reconcile race


def _once_before_fetch_of(be: FaultyBackend, on: str, hook: Callable[[], None]) -> None:
    """Run ``hook`` once, just before the first ``fetch`` of a namespace containing ``on``
    (the moment a verify compares it with the active space)."""
    pending = [hook]

    def before(call: Call) -> None:
        if pending and call.namespace is not None and on in call.namespace:
            pending.pop()()

    be.before("fetch", before)


@pytest.fixture
def hooked_ws(fast_dir: Path):
    """A workspace (collection ``c`` in v1) on a FaultyBackend over the memory backend,
    for hooks at exact moments."""
    be = FaultyBackend(MemoryBackend())
    ws = vecver.Workspace(config(fast_dir), backend=be, progress=False)
    yield ws, be
    ws.close()


@pytest.fixture
def hooked(fast_dir: Path):
    be = FaultyBackend(MemoryBackend())
    ws = vecver.Workspace(config(fast_dir), backend=be, progress=False)
    c = ws.collection("c")
    docs = make_docs(30)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    # d0006 missing in v2, so that a repair has work to do
    v2 = ns_of(ws, "c", "v2")
    ws.backend.delete(v2, ["d0006"])
    yield ws, be, c, model_of(docs)
    ws.close()


def test_update_racing_a_repair_is_not_overwritten(hooked) -> None:
    ws, be, c, model = hooked
    new = Document("d0006", text_of("d0006", 42))

    def race() -> None:  # after verify read the active page, before it repairs
        c.upsert([new])

    _once_before_fetch_of(be, "__v2_", race)
    vecver.verify(ws, "c", repair=True)
    model["d0006"] = new.text
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_delete_racing_a_repair_is_not_resurrected(hooked) -> None:
    ws, be, c, model = hooked

    def race() -> None:
        c.delete(["d0006"])

    _once_before_fetch_of(be, "__v2_", race)
    vecver.verify(ws, "c", repair=True)
    del model["d0006"]
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_insert_racing_a_repair_delete_is_not_lost(hooked) -> None:
    ws, be, c, model = hooked
    v2 = ns_of(ws, "c", "v2")
    # a document in v2 that the active space does not have: the repair deletes it ...
    emb = ws.embedder("v2")
    ws.backend.upsert(v2, [Record("zz", emb.embed_documents(["zz odd"])[0], "zz odd", {},
                                  Stamp.now(emb.space.fingerprint, "zz", "zz odd"))])
    raced = [False]

    def before_delete(call: Call) -> None:
        ids = call.args[0]
        if call.namespace and "__v2_" in call.namespace and "zz" in ids and not raced[0]:
            raced[0] = True
            # ... but a writer creates it for real between the check and the delete
            c.upsert([Document("zz", "zz for real")])

    be.before("delete", before_delete)
    vecver.verify(ws, "c", repair=True)
    assert raced[0]
    model["zz"] = "zz for real"
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


# ------------------------------------------------------------------------ readers vs cutovers


def test_searches_during_cutover_and_rollback(make_ws, backend_name: str) -> None:
    ws = make_ws(backend_name)
    c = ws.collection("c")
    docs = make_docs(60)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    fps = {label: ws.space(label).fingerprint for label in ("v1", "v2")}
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: dict[str, int] = {"v1": 0, "v2": 0}
    searches = [0]
    lock = threading.Lock()

    def reader(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            while not stop.is_set():
                d = rnd.choice(docs)
                hits = c.search(d.text, k=5)
                assert hits, "empty result"
                labels = {h.space for h in hits}
                assert len(labels) == 1 and labels <= {"v1", "v2"}, labels
                for h in hits:
                    assert h.stamp is not None and h.stamp.fingerprint == fps[h.space]  # type: ignore[index]
                with lock:
                    seen[hits[0].space] += 1  # type: ignore[index]
                    searches[0] += 1
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(25):
            vecver.cutover(ws, "c", force=True)
            time.sleep(0.002)
            vecver.rollback(ws, "c")
            time.sleep(0.002)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors[:3]
    assert searches[0] > 0 and seen["v1"] > 0
    assert states(ws) == {"v1": "active", "v2": "ready"}
    assert len(ws.manifest.alias_history("c")) == 1 + 50


def test_writes_during_cutover_and_rollback(make_ws) -> None:
    ws = make_ws("memory")
    c = ws.collection("c")
    docs = make_docs(40)
    c.upsert(docs)
    model = model_of(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    stop = threading.Event()
    errors: list[BaseException] = []
    ids = [d.id for d in docs]
    t = threading.Thread(target=_writer, args=(c, model, stop, 5, ids, errors, 0.001))
    t.start()
    try:
        for _ in range(15):
            vecver.cutover(ws, "c", force=True)
            vecver.rollback(ws, "c")
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


# ------------------------------------------------------------------------ a second process


_OTHER_WRITER = textwrap.dedent(
    """
    import json, random, sys, time
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    import vecver
    from vecver.types import Document
    from vvcore import config, text_of
    ws = vecver.open(config(Path({root!r}), "local"))
    c = ws.collection("c")
    rnd = random.Random(7)
    ids = ["d%04d" % i for i in range(80)] + ["p%04d" % i for i in range(10)]
    ops = []
    Path({started!r}).write_text("go")
    deadline = time.time() + 30
    version = 1000
    while not Path({stop!r}).exists() and time.time() < deadline:
        pick = rnd.sample(ids, 3)
        if rnd.random() < 0.3:
            c.delete(pick)
            ops.append(["delete", pick])
        else:
            version += 1
            c.upsert([Document(i, text_of(i, version)) for i in pick])
            ops.append(["upsert", pick, version])
        time.sleep(0.003)
    Path({out!r}).write_text(json.dumps(ops))
    ws.close()
    """
)


def test_second_process_writes_during_backfill(make_ws, fast_dir: Path) -> None:
    root = fast_dir / "shared"
    root.mkdir()
    ws = make_ws("local", root=root)
    c = ws.collection("c")
    docs = make_docs(80)
    c.upsert(docs)
    files = {k: str(fast_dir / k) for k in ("started", "stop", "out")}
    code = _OTHER_WRITER.format(tests=str(Path(__file__).parent), root=str(root), **files)
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not Path(files["started"]).exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.02)
        rep = vecver.migrate(ws, "c", "v2", batch_size=8, progress=False,
                             on_batch=lambda r: time.sleep(0.01))
    finally:
        Path(files["stop"]).write_text("stop")
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert rep.state == "ready", rep.verify.to_dict() if rep.verify else rep
    model = model_of(docs)
    for op in json.loads(Path(files["out"]).read_text()):
        if op[0] == "delete":
            for i in op[1]:
                model.pop(i, None)
        else:
            for i in op[1]:
                model[i] = text_of(i, op[2])
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)
    assert set(contents(ws, ns_of(ws, "c", "v2"))) == set(model)


def test_two_threads_start_the_same_migration(hooked_ws) -> None:
    ws, be = hooked_ws
    c = ws.collection("c")
    c.upsert(make_docs(10))
    barrier = threading.Barrier(2)
    # both passed the "not started yet" check
    be.after("create_namespace", lambda call, result: barrier.wait(10))
    rows: list[object] = []

    def start() -> None:
        try:
            rows.append(vecver.start_migration(ws, "c", "v2"))
        except BaseException as e:  # noqa: BLE001 - reported below
            rows.append(e)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, vecver.store.sqlite.NamespaceRow) for r in rows), rows
    assert states(ws) == {"v1": "active", "v2": "building"}
    started = [e for e in ws.manifest.events("c") if e["kind"] == "migration.started"]
    assert len(started) == 1


# ------------------------------------------------------------------ writes in flight during verify


class _BlockedWriter:
    """Another writer, caught in the middle of its write: it has written the active space
    (v1) and waits before writing v2 until something fetches from v2 — the moment a
    verify compares v2 with the page of v1 it read *after* the writer began."""

    def __init__(self, ws: vecver.Workspace, doc_id: str, version: int) -> None:
        self.doc = Document(doc_id, text_of(doc_id, version))
        self.wrote_active = threading.Event()
        self.release = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(ws.collection("c"),))

    def _run(self, c: vecver.Collection) -> None:
        try:
            c.upsert([self.doc])
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.errors.append(e)

    def start(self) -> None:
        self.thread.start()
        assert self.wrote_active.wait(10), "the writer never wrote the active space"


def _writers_caught_mid_write(ws: vecver.Workspace, be: FaultyBackend, *,
                              limit: int) -> list[_BlockedWriter]:
    """Before each scan of the active space's first page (up to ``limit`` times), start a
    :class:`_BlockedWriter` of another document and let the scan see its v1 write."""
    writers: list[_BlockedWriter] = []
    v1 = ns_of(ws, "c", "v1")

    def before_scan(call: Call) -> None:
        if call.namespace != v1 or call.args[0] is not None or len(writers) >= limit:
            return
        if any(w.thread is threading.current_thread() for w in writers):
            return
        w = _BlockedWriter(ws, f"d{len(writers) % 20:04d}", 1000 + len(writers))
        writers.append(w)
        w.start()

    def after_upsert(call: Call, _: object) -> None:
        for w in writers:
            if w.thread is threading.current_thread() and call.namespace == v1:
                w.wrote_active.set()

    def before_upsert(call: Call) -> None:
        for w in writers:
            if w.thread is threading.current_thread() and call.namespace != v1:
                w.release.wait(10)

    def after_fetch(call: Call, _: object) -> None:
        if call.namespace != v1:
            for w in writers:
                if w.wrote_active.is_set():
                    w.release.set()

    be.before("scan", before_scan)
    be.after("upsert", after_upsert)
    be.before("upsert", before_upsert)
    be.after("fetch", after_fetch)
    return writers


def test_a_write_in_flight_during_verify_is_not_counted(hooked_ws) -> None:
    """A writer that begins after verify started, writes the active space before verify
    reads it and the other space after: verify must not report the document as stale
    (it did: in-flight updates were counted unless their intent predated the verify)."""
    ws, be = hooked_ws
    c = ws.collection("c")
    docs = make_docs(30)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    writers = _writers_caught_mid_write(ws, be, limit=1)
    reps = {r.space: r for r in vecver.verify(ws, "c", spaces=["v2"])}
    for w in writers:
        w.release.set()
    be.clear_hooks()
    for w in writers:
        w.thread.join(30)
        assert not w.errors, w.errors
    assert len(writers) == 1
    assert reps["v2"].clean, reps["v2"].to_dict()
    model = {**model_of(docs), **model_of([w.doc for w in writers])}
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_migrate_ends_ready_with_writes_in_flight_in_every_final_round(hooked_ws) -> None:
    """Every verification at the end of a backfill meets a write in flight (the
    situation of a migrate under continuous production writes): it reconciles what
    changed and ends ``ready`` by itself (it ended ``building``, "did not verify clean")."""
    ws, be = hooked_ws
    c = ws.collection("c")
    docs = make_docs(40)
    c.upsert(docs)
    armed: list[list[_BlockedWriter]] = []

    def on_batch(rep: object) -> None:
        if not armed:  # from the first batch on, through the final verification
            armed.append(_writers_caught_mid_write(ws, be, limit=8))

    rep = vecver.migrate(ws, "c", "v2", batch_size=10, progress=False, on_batch=on_batch)
    (writers,) = armed
    for w in writers:
        w.release.set()
    be.clear_hooks()
    for w in writers:
        w.release.set()
        w.thread.join(30)
        assert not w.errors, w.errors
    assert writers, "the final verification met no write in flight"
    assert rep.state == "ready", rep.verify.to_dict() if rep.verify else rep
    model = model_of(docs)
    for w in writers:
        model[w.doc.id] = w.doc.text
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_verify_repair_waits_for_a_running_backfill(ws) -> None:
    """``verify --repair`` re-embeds: while a backfill of the space runs it is refused
    with LeaseHeld (it used to run, re-embedding in parallel with the backfill)."""
    c = ws.collection("c")
    c.upsert(make_docs(30))
    refused: list[BaseException] = []

    def during(rep: object) -> None:
        if not refused:
            with pytest.raises(vecver.errors.LeaseHeld) as err:
                vecver.verify(ws, "c", repair=True)
            refused.append(err.value)
            # a plain verify (no repair) still runs
            assert {r.space for r in vecver.verify(ws, "c")} == {"v1", "v2"}

    rep = vecver.migrate(ws, "c", "v2", batch_size=5, progress=False, on_batch=during)
    assert refused and "backfill of 'v2'" in str(refused[0])
    assert rep.state == "ready"
    assert all(r.clean for r in vecver.verify(ws, "c", repair=True))  # free again
