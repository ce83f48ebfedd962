"""Tests specific to the local backend (hnswlib over SQLite): persistence, crash safety,
snapshots + replay, sharing a directory, label reuse, index growth, filter exactness.

Generic CRUD behaviour is covered by the shared compliance suite (test_compliance_local.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecver.backends.local import LocalBackend  # noqa: E402
from vecver.errors import BackendClosed, BackendNotInstalled, NamespaceNotFound
from vecver.filters import F, Filter, In, Range
from vecver.types import NamespaceSpec, Record, Stamp

NS = "docs"
DIM = 16
FP = "fp-local-test"


def vec(i: int, dim: int = DIM) -> np.ndarray:
    """A deterministic vector per document number (the crash test's child uses the same)."""
    return np.random.default_rng(i).standard_normal(dim).astype(np.float32)


def rec(i: int, *, v: np.ndarray | None = None, meta: dict[str, Any] | None = None) -> Record:
    doc = f"doc-{i:05d}"
    return Record(
        doc,
        vec(i) if v is None else v,
        f"text {i}",
        {"n": i} if meta is None else meta,
        Stamp(FP, doc, f"hash-{i}", 1000.0 + i),
    )


def spec(metric: str = "cosine", dim: int = DIM, name: str = NS) -> NamespaceSpec:
    return NamespaceSpec(name, dim, metric, FP)  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "db")


@pytest.fixture
def backend(root: str) -> Iterator[LocalBackend]:
    b = LocalBackend(root)
    b.create_namespace(spec())
    yield b
    b.close()


def top1(b: LocalBackend, i: int, *, v: np.ndarray | None = None) -> str | None:
    hits = b.search(NS, vec(i) if v is None else v, 1)[0]
    return hits[0].id if hits else None


def exact_top(vectors: dict[str, np.ndarray], q: np.ndarray, k: int) -> list[str]:
    ids = sorted(vectors)
    mat = np.stack([vectors[i] for i in ids])
    mat = mat / np.linalg.norm(mat, axis=1, keepdims=True)
    s = mat @ (q / np.linalg.norm(q))
    order = sorted(range(len(ids)), key=lambda j: (-float(s[j]), ids[j]))
    return [ids[j] for j in order[:k]]


# -- persistence ----------------------------------------------------------------------


def test_data_survives_close_and_reopen(root: str) -> None:
    b = LocalBackend(root)
    b.create_namespace(spec())
    b.upsert(NS, [rec(i) for i in range(300)])
    b.delete(NS, [f"doc-{i:05d}" for i in range(0, 300, 3)])
    b.close()
    assert any(n.startswith("hnsw-") for d in os.listdir(root) for n in os.listdir(f"{root}/{d}"))

    b = LocalBackend(root)
    try:
        assert b.list_namespaces() == [NS]
        assert b.describe_namespace(NS) == spec()
        assert b.count(NS) == 200
        got = b.fetch(NS, [f"doc-{i:05d}" for i in range(300)], with_vectors=True)
        assert sorted(got) == [f"doc-{i:05d}" for i in range(300) if i % 3]
        r = got["doc-00001"]
        assert r.vector is not None and np.array_equal(r.vector, vec(1))
        assert (r.text, r.metadata, r.stamp) == ("text 1", {"n": 1}, rec(1).stamp)
        for i in (1, 2, 4, 299):
            assert top1(b, i) == f"doc-{i:05d}"
        assert top1(b, 3) != "doc-00003"
        page = b.scan(NS, limit=1000)
        assert len(page.records) == 200 and page.next_cursor is None
    finally:
        b.close()


_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vecver.backends.local import LocalBackend
    from vecver.types import NamespaceSpec, Record, Stamp

    root, dim, fp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    b = LocalBackend(root, snapshot_every=150)
    b.create_namespace(NamespaceSpec("docs", dim, "cosine", fp))
    batch = 0
    while True:
        recs = []
        for i in range(batch * 50, batch * 50 + 50):
            doc = f"doc-{i:05d}"
            v = np.random.default_rng(i).standard_normal(dim).astype(np.float32)
            recs.append(Record(doc, v, f"text {i}", {"n": i}, Stamp(fp, doc, "h", 1.0)))
        b.upsert("docs", recs)
        if batch % 4 == 3:
            b.delete("docs", [f"doc-{batch * 50:05d}"])
        print(f"acked {batch}", flush=True)
        batch += 1
    """
)


def test_acknowledged_writes_survive_kill_9(root: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, root, str(DIM), FP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked = -1
    try:
        assert child.stdout is not None
        while acked < 11:  # past a few snapshots (every 150 rows), then kill mid-stream
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"child died: {child.stderr.read() if child.stderr else ''}")
            acked = int(line.split()[1])
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    b = LocalBackend(root)
    try:
        acked_ids = [f"doc-{i:05d}" for i in range((acked + 1) * 50)]
        deleted = {f"doc-{b_ * 50:05d}" for b_ in range(acked + 1) if b_ % 4 == 3}
        got = b.fetch(NS, acked_ids, with_vectors=True)
        assert set(got) == set(acked_ids) - deleted
        for doc, r in got.items():
            assert r.vector is not None and np.array_equal(r.vector, vec(int(doc[4:])))
        # batches the child wrote after the last line we read (pipes buffer), and the one
        # in flight at the kill, are each all there or not at all
        later = 0
        batch = acked + 1
        while True:
            ids = [f"doc-{i:05d}" for i in range(batch * 50, batch * 50 + 50)]
            n = len(b.fetch(NS, ids))
            assert n in (0, 49, 50)
            if n == 0:
                break
            later += n
            batch += 1
        for i in range(0, (acked + 1) * 50, 7):
            doc = f"doc-{i:05d}"
            if doc not in deleted:
                assert top1(b, i) == doc
        assert b.count(NS) == len(got) + later
    finally:
        b.close()


def test_snapshot_plus_replayed_tail_equals_fresh_rebuild(
    root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # search the HNSW graph
    monkeypatch.setattr("vecver.backends.local._namespace._EXHAUSTIVE_MAX", 0)
    nsdir = lambda r: os.path.join(r, os.listdir(r)[0])  # noqa: E731
    b = LocalBackend(root, ef_search=500, snapshot_every=10**9)
    b.create_namespace(spec())
    b.upsert(NS, [rec(i) for i in range(300)])
    b.close()  # writes the snapshot the tail is replayed onto
    (snap,) = [n for n in os.listdir(nsdir(root)) if n.startswith("hnsw-")]
    saved = tmp_path / "saved.bin"
    shutil.copy(os.path.join(nsdir(root), snap), saved)

    b = LocalBackend(root, ef_search=500, snapshot_every=10**9)
    b.upsert(NS, [rec(i) for i in range(300, 420)])  # new rows
    b.upsert(NS, [rec(i, v=vec(10_000 + i)) for i in range(0, 40)])  # updated rows
    b.delete(NS, [f"doc-{i:05d}" for i in range(40, 80)])
    b.upsert(NS, [rec(i, v=vec(20_000 + i)) for i in range(40, 50)])  # re-inserted
    b.close()
    # put the old snapshot back: the store now runs ahead of it by the whole tail
    for n in os.listdir(nsdir(root)):
        if n.startswith("hnsw-"):
            os.unlink(os.path.join(nsdir(root), n))
    shutil.copy(saved, os.path.join(nsdir(root), snap))

    fresh_root = str(tmp_path / "fresh")
    shutil.copytree(root, fresh_root)
    for n in os.listdir(nsdir(fresh_root)):
        if n.startswith("hnsw-"):
            os.unlink(os.path.join(nsdir(fresh_root), n))

    replayed = LocalBackend(root, ef_search=500)
    fresh = LocalBackend(fresh_root, ef_search=500)
    try:
        assert replayed.count(NS) == fresh.count(NS) == 420 - 30  # from the stores
        replayed.search(NS, vec(0), 1)  # loads the index caches
        fresh.search(NS, vec(0), 1)
        assert replayed.count(NS) == fresh.count(NS) == 420 - 30  # from the indexes
        assert replayed._ns[NS].snapshot_seq == int(snap[5:-4]) > 0
        assert fresh._ns[NS].snapshot_seq == 0
        for b in (replayed, fresh):  # the graphs hold exactly the live rows, none marked
            ns = b._ns[NS]
            labels, _ = ns.index.knn_query(vec(1), k=390)
            want = {r[0] for r in ns.conn.execute("SELECT label FROM rows WHERE deleted = 0")}
            assert set(labels[0].tolist()) == want
            assert set(np.flatnonzero(ns.alive).tolist()) == want
        vectors = {
            doc: r.vector
            for doc, r in replayed.fetch(
                NS, [f"doc-{i:05d}" for i in range(420)], with_vectors=True
            ).items()
            if r.vector is not None
        }
        assert len(vectors) == 390
        queries = np.stack([vec(50_000 + j) for j in range(20)] + [vec(10_005), vec(20_045)])
        a = replayed.search(NS, queries, 10)
        c = fresh.search(NS, queries, 10)
        for q, ha, hc in zip(queries, a, c, strict=True):
            assert [h.id for h in ha] == [h.id for h in hc] == exact_top(vectors, q, 10)
            assert np.allclose([h.score for h in ha], [h.score for h in hc], atol=1e-5)
    finally:
        replayed.close()
        fresh.close()


# -- sharing a directory ----------------------------------------------------------------


def test_two_instances_see_each_others_writes(root: str) -> None:
    a = LocalBackend(root)
    b = LocalBackend(root)
    try:
        a.create_namespace(spec())
        assert b.list_namespaces() == [NS]
        b.create_namespace(spec())  # idempotent across instances
        a.upsert(NS, [rec(i) for i in range(100)])
        assert b.count(NS) == 100
        assert top1(b, 7) == "doc-00007"
        assert sorted(b.fetch(NS, ["doc-00007", "doc-00008"])) == ["doc-00007", "doc-00008"]

        b.delete(NS, ["doc-00007"])
        assert a.count(NS) == 99
        assert "doc-00007" not in a.fetch(NS, ["doc-00007"])
        assert top1(a, 7) != "doc-00007"

        b.upsert(NS, [rec(7, v=vec(777))])  # re-inserted by the other instance
        assert top1(a, 0, v=vec(777)) == "doc-00007"
        got = a.fetch(NS, ["doc-00007"], with_vectors=True)["doc-00007"]
        assert got.vector is not None and np.array_equal(got.vector, vec(777))

        # interleaved writers keep both indexes complete
        for j in range(5):
            a.upsert(NS, [rec(1000 + 2 * j)])
            b.upsert(NS, [rec(1001 + 2 * j)])
        for i in range(1000, 1010):
            assert top1(a, i) == top1(b, i) == f"doc-{i:05d}"

        a.drop_namespace(NS)
        with pytest.raises(NamespaceNotFound):
            b.search(NS, vec(1), 1)
        assert b.list_namespaces() == []
        b.create_namespace(spec())
        assert a.count(NS) == 0
    finally:
        a.close()
        b.close()


def test_threads_share_one_backend(backend: LocalBackend) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for j in range(10):
                base = 10_000 * (t + 1) + 20 * j
                backend.upsert(NS, [rec(i) for i in range(base, base + 20)])
                backend.search(NS, np.stack([vec(base), vec(base + 1)]), 5)
                backend.fetch(NS, [f"doc-{base:05d}"])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert backend.count(NS) == 4 * 10 * 20


# -- labels and capacity --------------------------------------------------------------


def _label(b: LocalBackend, doc: str) -> int:
    row = b._ns[NS].conn.execute("SELECT label FROM rows WHERE id = ?", (doc,)).fetchone()
    return int(row[0])


def test_rewriting_an_id_moves_it_to_a_new_label(backend: LocalBackend, root: str) -> None:
    """A re-inserted (or replaced) id gets a fresh label, never one used before; its old
    label is retired: marked deleted in the index, so search never returns it."""
    backend.upsert(NS, [rec(i) for i in range(50)])
    label = _label(backend, "doc-00003")
    backend.delete(NS, ["doc-00003"])
    assert backend.count(NS) == 49
    assert top1(backend, 3) != "doc-00003"
    assert backend.fetch(NS, ["doc-00003"]) == {}

    backend.upsert(NS, [rec(3, v=vec(333))])
    assert backend.count(NS) == 50
    assert top1(backend, 0, v=vec(333)) == "doc-00003"
    new = _label(backend, "doc-00003")
    assert new > max(label, 50)
    ns = backend._ns[NS]
    assert ns.alive[new] and not ns.alive[label]
    backend.upsert(NS, [rec(4, v=vec(444))])  # a live id replaced: same rule
    assert _label(backend, "doc-00004") > new
    ns.settle()  # the index add of an upsert runs on after it returns (reads wait for it)
    labels, _ = ns.index.knn_query(vec(4), k=50)
    assert label not in labels[0].tolist() and _label(backend, "doc-00004") in labels[0].tolist()
    backend.close()
    b = LocalBackend(root)
    try:
        assert top1(b, 0, v=vec(333)) == "doc-00003"
        assert top1(b, 0, v=vec(444)) == "doc-00004"
        assert b.count(NS) == 50
    finally:
        b.close()


def test_updates_compact_the_index(
    backend: LocalBackend, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retired labels are dropped from the index once they outnumber the live ones; the
    namespace is unchanged (count, fetch, exact top-1 for every document) before and after
    reopening, and the index never holds more than about twice the live elements."""
    monkeypatch.setattr("vecver.backends.local._namespace._COMPACT_MIN", 10)
    backend.upsert(NS, [rec(i) for i in range(40)])
    for rnd in range(1, 6):
        backend.upsert(NS, [rec(i, v=vec(1000 * rnd + i)) for i in range(40)])
        backend._ns[NS].settle()  # the upsert's index add (and compaction) may still run
        index = backend._ns[NS].index
        assert index.element_count <= 2 * 40 + 40
    assert backend.count(NS) == 40
    for b in (backend, None):
        if b is None:
            backend.close()
            b = LocalBackend(root)
        try:
            for i in range(40):
                assert top1(b, 0, v=vec(5000 + i)) == f"doc-{i:05d}"
            got = b.fetch(NS, [f"doc-{i:05d}" for i in range(40)], with_vectors=True)
            assert all(np.array_equal(got[f"doc-{i:05d}"].vector, vec(5000 + i)) for i in range(40))
        finally:
            if b is not backend:
                b.close()


def test_an_index_add_that_fails_after_the_commit_is_rebuilt_from_the_store(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index add of an upsert runs on after the call returned; when it fails, the
    committed write is not lost: the next operation rebuilds the index from the store,
    and reads (count, search, fetch) see the write."""
    from concurrent.futures import Future

    backend.upsert(NS, [rec(i) for i in range(10)])  # loads the index cache
    ns = backend._ns[NS]

    class FailingWorker:
        def submit(self, fn: Any, *args: Any) -> Future[None]:
            f: Future[None] = Future()
            f.set_exception(RuntimeError("index add failed"))
            return f

    monkeypatch.setattr(ns, "_worker", lambda: FailingWorker())
    backend.upsert(NS, [rec(i) for i in range(10, 20)])  # committed: returns normally
    monkeypatch.undo()
    assert backend.count(NS) == 20
    assert all(top1(backend, i) == f"doc-{i:05d}" for i in range(20))
    assert sorted(backend.fetch(NS, [f"doc-{i:05d}" for i in range(10, 20)])) == [
        f"doc-{i:05d}" for i in range(10, 20)
    ]
    assert backend._ns[NS].index is not None and backend._ns[NS].live == 20


def test_index_grows_past_its_initial_capacity(backend: LocalBackend, root: str) -> None:
    n = 2600  # the initial capacity is 1024
    for start in range(0, n, 500):
        backend.upsert(NS, [rec(i) for i in range(start, min(n, start + 500))])
    backend._ns[NS].settle()  # the last upsert's index add may still run
    index = backend._ns[NS].index
    assert index.element_count == n <= index.get_max_elements()
    assert backend.count(NS) == n
    for i in range(0, n, 97):
        assert top1(backend, i) == f"doc-{i:05d}"
    backend.close()
    b = LocalBackend(root)
    try:
        b.upsert(NS, [rec(i) for i in range(n, n + 600)])
        assert b.count(NS) == n + 600
        assert top1(b, n + 599) == f"doc-{n + 599:05d}"
    finally:
        b.close()


# -- plugin hygiene and lifecycle -------------------------------------------------------


def test_missing_hnswlib_raises_backend_not_installed(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "hnswlib", None)
    with pytest.raises(BackendNotInstalled) as err:
        LocalBackend(root)
    assert (err.value.name, err.value.package, err.value.extra) == ("local", "hnswlib", "local")


def test_importing_the_module_does_not_import_hnswlib() -> None:
    code = (
        "import sys; sys.modules['hnswlib'] = None; import vecver.backends.local; "
        "print(vecver.backends.local.LocalBackend.name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "local"


def test_closed_backend_raises(backend: LocalBackend) -> None:
    backend.upsert(NS, [rec(1)])
    backend.close()
    backend.close()  # idempotent
    calls = [
        lambda: backend.create_namespace(spec(name="other")),
        lambda: backend.describe_namespace(NS),
        lambda: backend.list_namespaces(),
        lambda: backend.drop_namespace(NS),
        lambda: backend.upsert(NS, [rec(2)]),
        lambda: backend.delete(NS, ["doc-00001"]),
        lambda: backend.fetch(NS, ["doc-00001"]),
        lambda: backend.scan(NS),
        lambda: backend.search(NS, vec(1), 1),
        lambda: backend.count(NS),
    ]
    for call in calls:
        with pytest.raises(BackendClosed):
            call()


# -- filters --------------------------------------------------------------------------

_VALUES: list[Any] = [None, True, False, 0, 1, 1.0, 2, 2.5, -3, "1", "a", "b", "é", [1], {"a": 1}]


def _filters() -> list[Filter]:
    return [
        F.eq("x", True),
        F.eq("x", False),
        F.eq("x", 1),
        F.eq("x", 1.0),
        F.eq("x", 0),
        F.eq("x", "1"),
        F.eq("x", "é"),
        F.isin("x", [1, "a", False]),
        F.isin("x", [2.5, "b"]),
        F.range("x", gte=1),
        F.range("x", gt=0, lt=2.5),
        F.range("x", gte="a"),
        F.range("x", lt="b"),
        F.range("z", gte=1),
        F.range("z", lte=8) & F.eq("y", "b"),
        F.eq("a.b", 1) & F.range("z", gte=2),
        F.eq('we"ird', 1),  # not quotable in a JSON path: evaluated in Python
        Filter((Range("x", gt=0, lt="z"),)),  # mixed bound kinds: never true
        Filter((Range("x"),)),  # no bounds: the field is present
        Filter((In("x", (None, 1)),)),  # a value of no filterable kind
        F.eq("absent", 1),
    ]


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("forced", ["default", "ann"])
def test_filtered_search_matches_filter_semantics_exactly(
    root: str, metric: str, forced: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if forced == "ann":  # use hnswlib's filter= path for every allowed set
        monkeypatch.setattr("vecver.backends.local._namespace._BRUTE_MIN", 0)
        monkeypatch.setattr("vecver.backends.local._namespace._BRUTE_MAX", 0)
    rng = np.random.default_rng(7)
    n = 2500
    metas: dict[str, dict[str, Any]] = {}
    records = []
    for i in range(n):
        m: dict[str, Any] = {}
        for key in ("x", "y", "a.b", 'we"ird'):
            pick = int(rng.integers(len(_VALUES) + 3))
            if pick < len(_VALUES):
                m[key] = _VALUES[pick]
        if rng.random() < 0.95:
            m["z"] = int(rng.integers(20))
        metas[f"doc-{i:05d}"] = m
        records.append(rec(i, v=rng.standard_normal(8).astype(np.float32), meta=m))
    b = LocalBackend(root, ef_search=64)
    try:
        b.create_namespace(spec(metric, dim=8))
        b.upsert(NS, records)
        q = rng.standard_normal((2, 8)).astype(np.float32)
        for flt in _filters():
            expected = {d for d, m in metas.items() if flt.matches(m)}
            hits = b.search(NS, q, n, filter=flt)
            for row in hits:
                assert {h.id for h in row} == expected, flt
                scores = [h.score for h in row]
                assert scores == sorted(scores, reverse=True)
                assert all(flt.matches(h.metadata) for h in row)
            small = b.search(NS, q, 5, filter=flt)
            for row in small:
                assert len(row) == min(5, len(expected))
                assert {h.id for h in row} <= expected
        # the z >= 1 filter allows ~90% of the namespace: hnswlib filter path by default
        flt = F.range("z", gte=1)
        vectors = {r.id: r.vector for r in records if flt.matches(r.metadata)}
        got = b.search(NS, q, 10, filter=flt)
        ids = sorted(vectors)
        mat = np.stack([vectors[i] for i in ids])
        from vecver.backends.base import exact_scores

        s = exact_scores(metric, q, mat)  # type: ignore[arg-type]
        for qi, row in enumerate(got):
            best = {ids[j] for j in np.argsort(-s[qi])[:10]}
            assert len(best & {h.id for h in row}) >= 9
    finally:
        b.close()


# -- ids that cannot round-trip, zero vectors -------------------------------------------


@pytest.mark.parametrize(
    ("bad", "why"), [("d7\x00x", "NUL"), ("d7\ud800", "surrogate"), ("\x00", "NUL")]
)
def test_ids_that_cannot_round_trip_are_refused(
    backend: LocalBackend, bad: str, why: str
) -> None:
    """SQLite cuts a string at NUL: ``delete(["d7\\x00x"])`` used to delete ``d7``. Such
    ids (and ids that do not encode as UTF-8) are refused with ``InvalidId`` naming the
    reason, by every operation, and nothing changes."""
    from vecver.errors import InvalidId

    backend.upsert(NS, [rec(7)])
    d7 = "doc-00007"
    bad_id = bad.replace("d7", d7)
    with pytest.raises(InvalidId, match=why):
        backend.delete(NS, [bad_id])
    with pytest.raises(InvalidId, match=why):
        backend.fetch(NS, [bad_id])
    r = rec(7)
    with pytest.raises(InvalidId, match=why):
        backend.upsert(NS, [Record(bad_id, r.vector, "t", {}, Stamp(FP, bad_id, "h", 1.0))])
    assert sorted(backend.fetch(NS, [d7])) == [d7]
    assert backend.count(NS) == 1


def test_nul_id_is_refused_through_the_collection(tmp_path: Path) -> None:
    """The same through the public API: ``collection.delete`` of a NUL id raises
    ``InvalidId`` and the unrelated document ``d7`` is still there; ``upsert`` of a NUL id
    writes nothing."""
    import vecver
    from vecver.errors import InvalidId

    cfg = vecver.Config.from_mapping(
        {
            "manifest": {"path": "m.db"},
            "backend": {"name": "local", "path": "vectors"},
            "spaces": {"v1": {"embedder": "hash", "dimension": 16}},
            "collections": {"c": {"space": "v1"}},
        },
        base=tmp_path,
    )
    with vecver.open(cfg) as ws:
        c = ws.collection("c")
        c.upsert([{"id": "d7", "text": "seven"}, {"id": "d8", "text": "eight"}])
        with pytest.raises(InvalidId, match="NUL"):
            c.delete(["d7\x00x"])
        with pytest.raises(InvalidId, match="NUL"):
            c.upsert([{"id": "d9\x00y", "text": "nine"}])
        assert sorted(c.get(["d7", "d8"])) == ["d7", "d8"]
        assert c.count() == 2


def test_zero_vectors_are_refused_under_cosine(root: str) -> None:
    """An all-zero vector has no direction: refused (``ZeroVector``, naming the document)
    in a cosine namespace, for records and queries; accepted under ``dot`` and ``l2``."""
    from vecver.errors import ZeroVector

    b = LocalBackend(root)
    try:
        for metric in ("cosine", "dot", "l2"):
            name = f"z_{metric}"
            b.create_namespace(spec(metric, name=name))
            zero = rec(1, v=np.zeros(DIM, dtype=np.float32))
            if metric == "cosine":
                with pytest.raises(ZeroVector) as err:
                    b.upsert(name, [rec(0), zero])
                assert err.value.doc_id == zero.id
                assert b.count(name) == 0
                with pytest.raises(ZeroVector):
                    b.search(name, np.zeros((2, DIM), dtype=np.float32), 3)
            else:
                b.upsert(name, [rec(0), zero])
                assert b.count(name) == 2
                assert len(b.search(name, np.zeros(DIM, dtype=np.float32), 3)[0]) == 2
    finally:
        b.close()


# -- a full disk ---------------------------------------------------------------------------


def test_disk_full_errors_are_recognised() -> None:
    """SQLite's "database or disk is full" and the OS's ENOSPC become ``StorageFull``
    naming the place; other failures stay what they are."""
    import errno
    import sqlite3

    from vecver.backends.local._backend import _translated
    from vecver.backends.local._namespace import is_disk_full
    from vecver.errors import BackendError, StorageFull

    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_disk_full(sqlite3.OperationalError("disk I/O error"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    for exc in (sqlite3.OperationalError("database or disk is full"),
                OSError(errno.ENOSPC, "No space left on device")):  # fmt: skip
        with pytest.raises(StorageFull) as err, _translated("namespace 'x' in /d"):
            raise exc
        assert err.value.where == "namespace 'x' in /d"
        assert err.value.cause == str(exc)
    with pytest.raises(BackendError) as err2, _translated("x"):
        raise sqlite3.OperationalError("disk I/O error")
    assert not isinstance(err2.value, StorageFull)


def _mount_tiny_tmpfs(path: Path, size: str) -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True)  # fmt: skip
    return res.returncode == 0


def test_full_disk_is_reported_as_such_and_reads_keep_working(tmp_path: Path) -> None:
    """On a really full file system (a 2 MB tmpfs; needs root to mount it): the write that
    does not fit raises ``StorageFull`` (not an sqlite3 traceback), leaves nothing behind,
    and reads — from this instance and from a new one — still see the namespace and every
    acknowledged write (they used to say "namespace ... does not exist")."""
    from vecver.errors import StorageFull

    mnt = tmp_path / "tiny"
    if not _mount_tiny_tmpfs(mnt, "2m"):
        pytest.skip("needs root and mount(8) to create a small file system")
    try:
        b = LocalBackend(str(mnt / "db"))
        b.create_namespace(spec())
        acked = 0
        with pytest.raises(StorageFull) as err:
            for j in range(10_000):
                batch = [rec(i) for i in range(acked, acked + 50)]
                for r in batch:
                    r.text = "x" * 4000
                b.upsert(NS, batch)
                acked += 50
                assert j < 9_999, "the file system never filled up"
        assert "docs" in err.value.where and acked > 0
        assert b.count(NS) == acked
        other = LocalBackend(str(mnt / "db"))
        try:
            assert other.describe_namespace(NS) == spec()
            assert other.count(NS) == acked
            got = other.fetch(NS, [f"doc-{i:05d}" for i in range(acked + 50)])
            assert len(got) == acked
        finally:
            other.close()
        b.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_store_without_the_retired_table_is_upgraded(root: str) -> None:
    """A store written before labels were retired (no ``retired`` table) opens, gains the
    table, and takes updates and searches as usual."""
    import sqlite3

    b = LocalBackend(root)
    b.create_namespace(spec())
    b.upsert(NS, [rec(i) for i in range(20)])
    b.close()
    (nsdir,) = [d for d in os.listdir(root) if not d.startswith(".")]
    conn = sqlite3.connect(os.path.join(root, nsdir, "store.sqlite"))
    conn.execute("DROP TABLE retired")
    conn.commit()
    conn.close()
    b = LocalBackend(root)
    try:
        b.upsert(NS, [rec(3, v=vec(333))])
        assert b.count(NS) == 20
        assert top1(b, 0, v=vec(333)) == "doc-00003"
        assert top1(b, 5) == "doc-00005"
    finally:
        b.close()


# -- the retired-label table is pruned --------------------------------------------------


def _graph_live(ns: Any) -> set[int]:
    """Labels the hnswlib graph holds and has not marked deleted (``get_items`` refuses a
    marked one)."""
    ns.settle()
    live: set[int] = set()
    for label in ns.index.get_ids_list():
        try:
            ns.index.get_items([label])
        except RuntimeError:
            continue
        live.add(int(label))
    return live


def _store_live(ns: Any) -> set[int]:
    return {int(r[0]) for r in ns.conn.execute("SELECT label FROM rows WHERE deleted = 0")}


def _retired_rows(ns: Any) -> int:
    return int(ns.conn.execute("SELECT count(*) FROM retired").fetchone()[0])


def _floor(ns: Any) -> int:
    row = ns.conn.execute("SELECT value FROM meta WHERE key = 'retired_floor'").fetchone()
    return 0 if row is None else int(row[0])


def _assert_newest_versions(b: LocalBackend, n: int, version: dict[int, int]) -> None:
    """Each document's newest vector finds it first, with its newest text; every hit of
    the graph search carries the text of the version it was found by."""
    queries = np.stack([vec(10_000 * version[i] + i) for i in range(n)])
    found = b.search(NS, queries, 5)
    ns = b._ns[NS]
    for i, hits in enumerate(found):
        assert hits[0].id == f"doc-{i:05d}" and hits[0].text == f"v{version[i]} {i}"
        for h in hits:
            j = int(h.id[4:])
            assert h.text == f"v{version[j]} {j}"
    assert _graph_live(ns) == _store_live(ns) == set(np.flatnonzero(ns.alive).tolist())


def _versioned(i: int, r: int) -> Record:
    doc = f"doc-{i:05d}"
    return Record(doc, vec(10_000 * r + i), f"v{r} {i}", {"n": i}, Stamp(FP, doc, f"h{r}", 1.0))


def test_many_updates_keep_the_retired_table_bounded(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every update retires a label (one ``retired`` row); the rows a snapshot covers are
    pruned when it is written, so 60 rewrites of 50 documents leave at most the rows since
    the last snapshot, and none after close. Search (through the graph) returns exactly the
    newest versions before and after reopening."""
    monkeypatch.setattr("vecver.backends.local._namespace._EXHAUSTIVE_MAX", 0)
    n, every = 50, 120
    b = LocalBackend(root, snapshot_every=every, ef_search=200)
    b.create_namespace(spec())
    b.upsert(NS, [_versioned(i, 0) for i in range(n)])
    most = 0
    for r in range(1, 61):
        b.upsert(NS, [_versioned(i, r) for i in range(n)])
        b._ns[NS].settle()
        most = max(most, _retired_rows(b._ns[NS]))
    assert most <= every + 2 * n  # unpruned, it would reach 60 * 50 = 3000
    assert _floor(b._ns[NS]) > 0
    _assert_newest_versions(b, n, dict.fromkeys(range(n), 60))
    b.close()
    b = LocalBackend(root, ef_search=200)
    try:
        b.count(NS)
        assert _retired_rows(b._ns[NS]) == 0  # close snapshotted and pruned everything
        _assert_newest_versions(b, n, dict.fromkeys(range(n), 60))
        b.upsert(NS, [_versioned(i, 61) for i in range(0, n, 2)])
        _assert_newest_versions(b, n, {i: 61 if i % 2 == 0 else 60 for i in range(n)})
    finally:
        b.close()


def test_an_instance_lagging_behind_a_pruned_snapshot_reconciles_its_index(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Instance ``b`` loaded its index, then ``a`` rewrote every document many times and
    pruned the retired labels ``b`` would have replayed; ``b`` still marks every old label
    deleted (it reconciles against the store's live labels) and finds the newest versions."""
    monkeypatch.setattr("vecver.backends.local._namespace._EXHAUSTIVE_MAX", 0)
    n = 50
    a = LocalBackend(root, snapshot_every=60, ef_search=200)
    b = LocalBackend(root, ef_search=200)
    try:
        a.create_namespace(spec())
        a.upsert(NS, [_versioned(i, 0) for i in range(n)])
        _assert_newest_versions(b, n, dict.fromkeys(range(n), 0))
        lag = b._ns[NS].applied_seq
        for r in range(1, 6):
            a.upsert(NS, [_versioned(i, r) for i in range(n)])
        a._ns[NS].settle()
        assert _floor(a._ns[NS]) > lag  # b's tail of retired rows is gone
        _assert_newest_versions(b, n, dict.fromkeys(range(n), 5))
        _assert_newest_versions(a, n, dict.fromkeys(range(n), 5))
    finally:
        a.close()
        b.close()


_UPDATER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vecver.backends.local import LocalBackend
    from vecver.types import NamespaceSpec, Record, Stamp

    root, dim, fp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n, start, every = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    b = LocalBackend(root, snapshot_every=every)
    b.create_namespace(NamespaceSpec("docs", dim, "cosine", fp))
    r = start
    while True:
        recs = []
        for i in range(n):
            doc = f"doc-{i:05d}"
            v = np.random.default_rng(10_000 * r + i).standard_normal(dim).astype(np.float32)
            recs.append(Record(doc, v, f"v{r} {i}", {"n": i}, Stamp(fp, doc, f"h{r}", 1.0)))
        for s in range(0, n, 25):  # two transactions per round
            b.upsert("docs", recs[s : s + 25])
        print(f"acked {r}", flush=True)
        r += 1
    """
)


@pytest.mark.parametrize("every", [40, 120])
def test_kill_9_while_updating_and_pruning_then_reopen_is_exact(
    root: str, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    """A process rewriting 50 documents over and over (snapshots, and so prunes, every
    ``every`` rows) is SIGKILLed at three different moments, reopening the namespace in
    between; each time the store holds whole versions, the retired table stays bounded,
    the reopened graph holds exactly the live labels, and search returns the newest
    version of every document."""
    monkeypatch.setattr("vecver.backends.local._namespace._EXHAUSTIVE_MAX", 0)
    n = 50
    start = 0
    for kill_after in (6, 13, 9):
        child = subprocess.Popen(
            [sys.executable, "-c", _UPDATER, root, str(DIM), FP, str(n), str(start), str(every)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        acked = start - 1
        try:
            assert child.stdout is not None
            while acked < start + kill_after:
                line = child.stdout.readline()
                if not line:
                    err = child.stderr.read() if child.stderr else ""
                    raise AssertionError(f"child died: {err}")
                acked = int(line.split()[1])
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        b = LocalBackend(root, ef_search=200)
        try:
            got = b.fetch(NS, [f"doc-{i:05d}" for i in range(n)], with_vectors=True)
            version = {int(d[4:]): int(r.text.split()[0][1:]) for d, r in got.items() if r.text}
            assert len(version) == n and min(version.values()) >= acked
            for i, r in version.items():
                v = got[f"doc-{i:05d}"].vector
                assert v is not None and np.array_equal(v, vec(10_000 * r + i))
            b.count(NS)
            ns = b._ns[NS]
            # bounded: rows since the last snapshot, plus at most one unpruned snapshot's
            assert _retired_rows(ns) <= 2 * every + 2 * n
            _assert_newest_versions(b, n, version)
            start = max(version.values()) + 1
        finally:
            b.close()


# -- the payload cache of search hits -----------------------------------------------------


def test_search_hits_from_the_payload_cache_are_right_and_bounded(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hits served from the in-memory payload cache equal those read from the store (id,
    text, metadata, stamp), mutating a hit's metadata changes no later hit, and the cache
    stays within its byte bound (oldest entries dropped) while every hit stays right."""
    import vecver.backends.local._namespace as lns

    monkeypatch.setattr(lns, "_PAYLOAD_BYTES", 40_000)
    n = 400
    b = LocalBackend(root)
    try:
        b.create_namespace(spec())
        nested = {"tags": ["a", "b"], "inner": {"x": 1}}
        records = [rec(i, meta=nested if i % 2 else {"n": i, "s": "é\u2603"}) for i in range(n)]
        b.upsert(NS, records)
        want = {r.id: r for r in records}
        for rnd in range(3):
            for i in range(0, n, 3):
                for h in b.search(NS, vec(i), 5)[0]:
                    r = want[h.id]
                    assert (h.text, h.metadata, h.stamp) == (r.text, r.metadata, r.stamp)
                    h.metadata["mutated"] = rnd  # must not reach the cache
                    if "tags" in h.metadata:
                        h.metadata["tags"].append("z")
            ns = b._ns[NS]
            size = sum(p[4] for p in ns.payload.values())
            assert ns.payload_bytes == size <= 40_000
            assert 0 < len(ns.payload) < n  # bounded: not every hit read is kept
    finally:
        b.close()
