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


class HookedBackend(MemoryBackend):
    """A memory backend that runs ``hook`` once, just before the first ``fetch`` of a
    namespace containing ``on`` (the moment a verify compares it with the active space)."""

    def __init__(self) -> None:
        super().__init__()
        self.on: str | None = None
        self.hook: Callable[[], None] | None = None

    def fetch(self, namespace: str, ids: Sequence[str], *,
              with_vectors: bool = False) -> dict[str, Record]:
        if self.hook is not None and self.on is not None and self.on in namespace:
            hook, self.hook = self.hook, None
            hook()
        return super().fetch(namespace, ids, with_vectors=with_vectors)


@pytest.fixture
def hooked(fast_dir: Path):
    be = HookedBackend()
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

    be.on, be.hook = "__v2_", race
    vecver.verify(ws, "c", repair=True)
    model["d0006"] = new.text
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_delete_racing_a_repair_is_not_resurrected(hooked) -> None:
    ws, be, c, model = hooked

    def race() -> None:
        c.delete(["d0006"])

    be.on, be.hook = "__v2_", race
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
    real_delete = be.delete
    raced = [False]

    def delete(namespace: str, ids: Sequence[str]) -> None:
        if "__v2_" in namespace and "zz" in ids and not raced[0]:
            raced[0] = True
            # ... but a writer creates it for real between the check and the delete
            c.upsert([Document("zz", "zz for real")])
        real_delete(namespace, ids)

    be.delete = delete  # type: ignore[method-assign]
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


def test_two_threads_start_the_same_migration(make_ws) -> None:
    ws = make_ws()
    c = ws.collection("c")
    c.upsert(make_docs(10))
    barrier = threading.Barrier(2)
    real = ws.backend.create_namespace

    def create_namespace(spec):  # type: ignore[no-untyped-def]
        real(spec)
        barrier.wait(10)  # both passed the "not started yet" check

    ws.backend.create_namespace = create_namespace  # type: ignore[method-assign]
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
