"""The qdrant backend's named-vector layout (``layout = "named"``): every space of a vecver
collection is a named vector of ONE shared Qdrant collection. The shared compliance suite
(all its namespaces in one Qdrant collection), congruence with the memory reference and
the workflow suite run on it in qdrant-client's local mode; the specific tests read the
database with the raw client: one collection, per-space vectors and payload objects,
deletes and drops that touch one space only, the write order a crash relies on, and a
full migration (another dimension and metric) + cutover + rollback through the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("qdrant_client", reason="needs qdrant-client (pip install 'vecver[qdrant]')")

from qdrant_client import QdrantClient  # noqa: E402
from qdrant_client.http import models  # noqa: E402

from vecver.backends._remote import KEY_HASH, KEY_ID, uuid_for  # noqa: E402
from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.qdrant import QdrantBackend  # noqa: E402
from vecver.backends.qdrant._named import FALLBACK_VECTOR, locate, vector_name  # noqa: E402
from vecver.errors import (  # noqa: E402
    ConfigError,
    ForeignNamespace,
    NamespaceExists,
    NamespaceNotFound,
)
from vecver.filters import F  # noqa: E402
from vecver.testing import (  # noqa: E402
    BackendComplianceSuite,
    ConsistencyTests,
    LifecycleTests,
    NamespaceTests,
    PersistenceTests,
    ReadTests,
    WriteTests,
)
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair  # noqa: E402
from vecver.testing.data import make_records, make_vectors  # noqa: E402
from vecver.testing.workflow import (  # noqa: E402
    WorkflowSuite,
    WorkspaceFactory,
    workspace_factory_for,
)
from vecver.types import NamespaceSpec, Record, Stamp  # noqa: E402


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """Local-mode storage in /dev/shm where there is one (local mode commits every point
    in its own SQLite transaction; see tests/test_backend_qdrant.py)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="vecver-qnamed-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def named(**kw: Any) -> QdrantBackend:
    return QdrantBackend(layout="named", **kw)


# -- the shared suites ----------------------------------------------------------------------


class TestNamedMemoryCompliance(BackendComplianceSuite):
    """The whole suite, every namespace it creates (``vv_cmp__...``) a named vector of the
    one Qdrant collection ``vv_cmp``: isolation between namespaces is isolation between
    vectors and payload objects of the same points."""

    namespace_prefix = "vv_cmp__"

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = named(location=":memory:")
        yield b
        b.close()


class TestNamedFallbackNames(NamespaceTests, WriteTests, ReadTests):
    """Names not of the form ``vv_C__rest`` (the suite's default prefix ``vv_``): each its
    own Qdrant collection, with the vector ``_vv``."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = named(location=":memory:")
        yield b
        b.close()


class TestNamedPathCompliance(
    NamespaceTests, WriteTests, ReadTests, LifecycleTests, PersistenceTests, ConsistencyTests
):
    """Local mode in a directory: the layout survives closing and reopening."""

    namespace_prefix = "vv_cmp__"

    @pytest.fixture
    def backend(self, fast_dir: Path) -> Iterator[Backend]:
        self.path = fast_dir / "qdrant"
        b = named(path=self.path)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return named(path=self.path)


class TestNamedCongruence(BackendCongruenceSuite):
    """Random operations against the memory reference, every namespace in one Qdrant
    collection, the candidate closed and reopened now and then."""

    steps = 50
    namespace_prefix = "vv_cong__"

    @pytest.fixture
    def pair(self, fast_dir: Path) -> Iterator[CongruencePair]:
        path = fast_dir / "qdrant"

        def reopen(b: Backend) -> Backend:
            b.close()
            return named(path=path)

        p = CongruencePair(named(path=path), reopen=reopen)
        yield p
        p.close()


class TestNamedWorkflow(WorkflowSuite):
    """Migrate, dual-write, cutover, rollback and recover with both spaces as vectors of
    one Qdrant collection; the manifest alias is the switch."""

    @pytest.fixture
    def workspace_factory(self, fast_dir: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(
            fast_dir, {"default": {"name": "qdrant", "path": str(fast_dir / "q"),
                                   "layout": "named"}}
        ) as make:  # fmt: skip
            yield make


# -- the layout, read with the raw client ------------------------------------------------------

FP1, FP2 = "a" * 64, "b" * 64
V1 = NamespaceSpec(QdrantBackend.physical_name("docs", "v1", FP1), 4, "cosine", FP1)
V2 = NamespaceSpec(QdrantBackend.physical_name("docs", "v2", FP2), 6, "l2", FP2)


def _recs(spec: NamespaceSpec, n: int, seed: int = 1, text: str = "t") -> list[Record]:
    out = []
    for i, r in enumerate(make_records(spec, n, seed=seed)):
        doc = f"doc-{i}"
        body = f"{text}-{i}"
        out.append(Record(doc, r.vector, body, {"n": i, "tags": ["x"] if i == 0 else "y"},
                          Stamp.now(spec.fingerprint, doc, body)))  # fmt: skip
    return out


@pytest.fixture
def two() -> Iterator[QdrantBackend]:
    """v1 (4-d cosine) and v2 (6-d l2) of collection ``docs``, five documents in each."""
    b = named(location=":memory:")
    for spec in (V1, V2):
        b.create_namespace(spec)
        b.upsert(spec.name, _recs(spec, 5, text=spec.name[-8:]))
    yield b
    b.close()


def test_the_mapping_of_names() -> None:
    """``vv_{C}__{rest}``: collection ``vv_C`` (split at the first ``__`` before a letter
    or digit), vector ``rest`` (hashed when not plain); other names: their own collection,
    vector ``_vv``. Underscores in labels and collection names are kept whole."""
    assert locate(V1.name) == ("vv_docs", f"v1_{FP1[:8]}")
    assert locate(QdrantBackend.physical_name("my_docs", "v2_1", FP1)) == (
        "vv_my_docs", f"v2_1_{FP1[:8]}")  # fmt: skip
    assert locate(QdrantBackend.physical_name("docs_", "v1", FP1))[0] == "vv_docs_"
    assert locate(QdrantBackend.physical_name("docs__", "v1", FP1))[0] == "vv_docs__"
    dotted = QdrantBackend.physical_name("docs", "v2.1", FP1)  # sanitized + a hash suffix
    assert locate(dotted)[0] == "vv_docs" and locate(dotted)[1] == dotted[len("vv_docs__"):]
    assert locate("vv_items") == ("vv_items", FALLBACK_VECTOR)
    assert locate("plain") == ("plain", FALLBACK_VECTOR)
    odd = locate("vv_x__1ünï")
    assert odd[0] == "vv_x" and odd[1].startswith("_") and len(odd[1]) == 17
    assert vector_name("a" * 201) != vector_name("a" * 202)
    # distinct names never share a (collection, vector)
    names = ["vv_a__b", "vv_a__b_c", "vv_a", "vv_a__B", "vv_a_b__c", "vv_a__b__c", "vv_a__ü"]
    assert len({locate(n) for n in names}) == len(names)


def test_two_spaces_share_one_qdrant_collection(two: QdrantBackend) -> None:
    """Both spaces are named vectors of the one collection ``vv_docs``; a document is one
    point holding both vectors and a payload object per space."""
    raw = two.client
    assert [c.name for c in raw.get_collections().collections] == ["vv_docs"]
    info = raw.get_collection("vv_docs")
    vectors = info.config.params.vectors
    assert isinstance(vectors, dict)
    v1, v2 = locate(V1.name)[1], locate(V2.name)[1]
    assert vectors[v1].size == 4 and vectors[v1].distance == models.Distance.COSINE
    assert vectors[v2].size == 6 and vectors[v2].distance == models.Distance.EUCLID
    meta = info.config.metadata or {}
    assert meta["vecver"]["layout"] == "named"
    assert meta[f"vecver:ns:{v2}"]["fingerprint"] == FP2
    assert raw.count("vv_docs").count == 5
    (p,) = raw.retrieve("vv_docs", [uuid_for("doc-0")], with_vectors=True)
    assert isinstance(p.vector, dict) and set(p.vector) == {v1, v2}
    payload = p.payload or {}
    assert set(payload) == {v1, v2}
    assert payload[v1][KEY_ID] == "doc-0" and payload[v1]["_vv_lists"] == ["tags"]
    assert payload[v1]["_vv_fp"] == FP1 and payload[v2]["_vv_fp"] == FP2
    assert sorted(two.list_namespaces()) == sorted([V1.name, V2.name])
    assert two.describe_namespace(V2.name) == V2
    assert not two.capabilities.native_alias
    with pytest.raises(NotImplementedError):
        two.set_alias("docs", V1.name)


def test_an_update_in_one_space_leaves_the_other_alone(two: QdrantBackend) -> None:
    """A write to v1 that has not reached v2 yet: v1 shows the new text, metadata and
    stamp, v2 still its own, and v2's vector is the one it had."""
    before = two.fetch(V2.name, ["doc-1"], with_vectors=True)["doc-1"]
    rec = Record("doc-1", np.array([0, 0, 1, 0], np.float32), "new", {"n": 99, "k": "z"},
                 Stamp.now(FP1, "doc-1", "new"))  # fmt: skip
    two.upsert(V1.name, [rec])
    got1 = two.fetch(V1.name, ["doc-1"], with_vectors=True)["doc-1"]
    got2 = two.fetch(V2.name, ["doc-1"], with_vectors=True)["doc-1"]
    assert (got1.text, got1.metadata) == ("new", {"n": 99, "k": "z"})
    assert got1.stamp.source_hash == rec.stamp.source_hash
    assert np.allclose(got1.vector, [0, 0, 1, 0])  # type: ignore[arg-type]
    assert (got2.text, got2.metadata, got2.stamp) == (before.text, before.metadata, before.stamp)
    assert np.array_equal(got2.vector, before.vector)  # type: ignore[arg-type]
    # filters address each space's own fields
    q1, q2 = make_vectors(1, 4, 3), make_vectors(1, 6, 3)
    assert [h.id for h in two.search(V1.name, q1, 5, filter=F.eq("n", 99))[0]] == ["doc-1"]
    assert two.search(V2.name, q2, 5, filter=F.eq("n", 99))[0] == []
    assert [h.id for h in two.search(V2.name, q2, 5, filter=F.eq("n", 1))[0]] == ["doc-1"]
    assert two.search(V1.name, q1, 5, filter=F.eq("k", "z") & F.range("n", gte=1))[0][0].id == (
        "doc-1")  # fmt: skip
    assert {h.id for h in two.search(V1.name, q1, 5, filter=F.range("_vv_id", gte="a"))[0]} \
        == set()  # vecver's own fields are not metadata  # fmt: skip
    # doc-0's "tags" is a list in v1 and v2: never matched; doc-1..4 hold the string "y"
    assert {h.id for h in two.search(V2.name, q2, 5, filter=F.eq("tags", "y"))[0]} == {
        "doc-2", "doc-3", "doc-4", "doc-1"}  # fmt: skip
    assert {h.id for h in two.search(V2.name, q2, 5, filter=F.range("tags", gte="x"))[0]} == {
        "doc-2", "doc-3", "doc-4", "doc-1"}  # a string range, resolved on the client  # fmt: skip


def test_a_document_new_to_one_space_joins_the_existing_point(two: QdrantBackend) -> None:
    """A document only v2 holds, then written to v1: one point, both vectors, v2's payload
    object untouched (never a whole-point replacement)."""
    only = _recs(V2, 7, seed=5, text="late")[6]
    two.upsert(V2.name, [only])
    assert two.count(V1.name) == 5 and two.count(V2.name) == 6
    assert two.fetch(V1.name, [only.id]) == {}
    rec = Record(only.id, np.array([1, 2, 3, 4], np.float32), "v1 text", {},
                 Stamp.now(FP1, only.id, "v1 text"))  # fmt: skip
    two.upsert(V1.name, [rec])
    assert two.count(V1.name) == 6
    (p,) = two.client.retrieve("vv_docs", [uuid_for(only.id)], with_vectors=True)
    assert isinstance(p.vector, dict) and len(p.vector) == 2
    assert two.fetch(V2.name, [only.id])[only.id].stamp == only.stamp


def test_deleting_in_v2_keeps_the_v1_vector(two: QdrantBackend) -> None:
    """Delete in v2 removes v2's vector and payload object only; the point (with v1) stays.
    Deleted in v1 too, the point is gone."""
    v1 = locate(V1.name)[1]
    two.delete(V2.name, ["doc-2", "never-written"])
    assert two.count(V2.name) == 4 and two.count(V1.name) == 5
    assert two.fetch(V2.name, ["doc-2"]) == {}
    assert "doc-2" in two.fetch(V1.name, ["doc-2"])
    assert all(h.id != "doc-2" for h in two.search(V2.name, make_vectors(1, 6, 1), 10)[0])
    assert any(h.id == "doc-2" for h in two.search(V1.name, make_vectors(1, 4, 1), 10)[0])
    (p,) = two.client.retrieve("vv_docs", [uuid_for("doc-2")], with_vectors=True)
    assert isinstance(p.vector, dict) and set(p.vector) == {v1}
    assert set(p.payload or {}) == {v1}
    two.delete(V1.name, ["doc-2"])
    assert two.client.retrieve("vv_docs", [uuid_for("doc-2")]) == []
    assert two.client.count("vv_docs").count == 4


def test_dropping_v2_leaves_v1_intact(two: QdrantBackend) -> None:
    """Dropping v2 drops its vector name, its payload objects and the points only it held;
    v1 keeps every record. Dropping v1 as well removes the Qdrant collection."""
    only = _recs(V2, 7, seed=5)[6]
    two.upsert(V2.name, [only])
    before = {r.id: r for r in two.scan(V1.name, limit=100, with_vectors=True).records}
    two.drop_namespace(V2.name)
    v1 = locate(V1.name)[1]
    raw = two.client
    vectors = raw.get_collection("vv_docs").config.params.vectors
    assert isinstance(vectors, dict) and set(vectors) == {v1}
    assert raw.count("vv_docs").count == 5  # the point only v2 held is gone
    for p in raw.scroll("vv_docs", limit=100, with_vectors=True)[0]:
        assert set(p.payload or {}) == {v1}
    assert V2.name not in two.list_namespaces()
    with pytest.raises(NamespaceNotFound):
        two.count(V2.name)
    after = {r.id: r for r in two.scan(V1.name, limit=100, with_vectors=True).records}
    assert set(after) == set(before)
    for i, r in after.items():
        assert r.stamp == before[i].stamp and np.array_equal(r.vector, before[i].vector)  # type: ignore[arg-type]
    # re-created, v2 is empty: nothing of the dropped records comes back
    two.create_namespace(V2)
    assert two.count(V2.name) == 0 and two.fetch(V2.name, ["doc-0"]) == {}
    two.drop_namespace(V2.name)
    two.drop_namespace(V1.name)
    assert raw.get_collections().collections == []
    two.drop_namespace(V1.name)  # idempotent


def test_a_crash_between_the_vector_and_the_stamp(
    two: QdrantBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write order a kill -9 relies on, simulated by applying only the first operation
    of the update request (the vectors) and stopping there. An existing record keeps its
    OLD stamp over the new vector (stale: verify and reconcile re-write it); a document new
    to the space is no record at all (not counted, fetched, scanned or found). The retry
    then completes both."""
    raw = two.client
    real = raw.batch_update_points
    cut: list[int] = []

    def crash_after_first(collection_name: str, update_operations: Any, **kw: Any) -> Any:
        real(collection_name, update_operations=update_operations[:1], **kw)
        cut.append(len(update_operations))
        raise KeyboardInterrupt  # not an Exception: nothing in vecver handles it

    v1_only = Record("doc-v1only", np.array([1, 1, 1, 1], np.float32), "x", {},
                     Stamp.now(FP1, "doc-v1only", "x"))  # fmt: skip
    two.upsert(V1.name, [v1_only])
    old = two.fetch(V2.name, ["doc-3"])["doc-3"]
    new3 = Record("doc-3", np.ones(6, np.float32), "changed", {},
                  Stamp.now(FP2, "doc-3", "changed"))  # fmt: skip
    new_doc = Record("doc-v1only", np.full(6, 2, np.float32), "x", {},
                     Stamp.now(FP2, "doc-v1only", "x"))  # fmt: skip
    with monkeypatch.context() as m:
        m.setattr(raw, "batch_update_points", crash_after_first)
        with pytest.raises(KeyboardInterrupt):
            two.upsert(V2.name, [new3, new_doc])
    assert cut and cut[0] > 1
    got = two.fetch(V2.name, ["doc-3", "doc-v1only"], with_vectors=True)
    assert set(got) == {"doc-3"}
    assert got["doc-3"].stamp == old.stamp  # the old stamp: stale, not a lie
    assert np.allclose(got["doc-3"].vector, 1.0)  # type: ignore[arg-type]
    assert two.count(V2.name) == 5
    assert "doc-v1only" not in {r.id for r in two.scan(V2.name, limit=100).records}
    # the vector without its payload object is the nearest to this query: the search
    # passes over it (asked again with the membership filter) and finds the 5 records
    hits = two.search(V2.name, np.full((1, 6), 2.0), 10)[0]
    assert len(hits) == 5 and "doc-v1only" not in {h.id for h in hits}
    raw_hits = raw.query_points("vv_docs", query=[2.0] * 6, using=locate(V2.name)[1], limit=1)
    assert str(raw_hits.points[0].id) == uuid_for("doc-v1only")
    two.upsert(V2.name, [new3, new_doc])  # what reconcile does
    got = two.fetch(V2.name, ["doc-3", "doc-v1only"])
    assert got["doc-3"].stamp == new3.stamp and got["doc-v1only"].stamp == new_doc.stamp
    assert two.count(V2.name) == 6


def test_a_point_deleted_by_another_space_meanwhile_is_transient(
    two: QdrantBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The update of an existing point that another space deleted between the read and the
    write is a ``TransientBackendError`` (the core retries; the retry inserts it)."""
    from vecver.errors import TransientBackendError

    raw = two.client
    real = raw.retrieve

    def then_gone(collection_name: str, ids: Any, **kw: Any) -> Any:
        got = real(collection_name, ids=ids, **kw)
        raw.delete(collection_name, points_selector=models.PointIdsList(points=list(ids)))
        return got

    rec = _recs(V2, 1, seed=9, text="again")[0]
    with monkeypatch.context() as m:
        m.setattr(raw, "retrieve", then_gone)
        with pytest.raises(TransientBackendError, match="deleted meanwhile"):
            two.upsert(V2.name, [rec])
    two.upsert(V2.name, [rec])
    assert two.fetch(V2.name, [rec.id])[rec.id].stamp == rec.stamp


def test_a_space_dropped_elsewhere_is_never_read_as_empty(two: QdrantBackend) -> None:
    """v2 dropped through another backend object (another process) while this one has its
    spec cached: every read and write says ``NamespaceNotFound``, none answers "empty";
    v1 is untouched. A vector removed outside vecver is a ``BackendError`` saying so."""
    from vecver.errors import BackendError

    two.count(V2.name)  # the spec is cached now
    # the same database through a second object: local mode has one client, so share it
    other = named(location=":memory:")
    other._client.close()
    other._client = two.client
    other.drop_namespace(V2.name)
    for op in (
        lambda: two.count(V2.name),
        lambda: two.scan(V2.name),
        lambda: two.fetch(V2.name, ["doc-0"]),
        lambda: two.search(V2.name, make_vectors(1, 6, 1), 3),
        lambda: two.upsert(V2.name, _recs(V2, 1)),
        lambda: two.delete(V2.name, ["doc-0"]),
    ):
        two.describe_namespace(V1.name)
        two._specs[V2.name] = V2  # as cached before the drop
        with pytest.raises(NamespaceNotFound):
            op()
    assert two.count(V1.name) == 5
    v1 = locate(V1.name)[1]
    two.client.delete_vector_name("vv_docs", v1)
    with pytest.raises(BackendError, match="no longer has the vector"):
        two.count(V1.name)


def test_collections_it_did_not_make_are_left_alone() -> None:
    """A Qdrant collection of the same name that is not a shared collection of this
    layout (another program's, or the collection layout's) is ``ForeignNamespace``."""
    with closing(named(location=":memory:")) as b:
        b.client.create_collection("vv_docs", vectors_config=models.VectorParams(
            size=4, distance=models.Distance.COSINE))  # fmt: skip
        with pytest.raises(ForeignNamespace):
            b.create_namespace(V1)
        with pytest.raises(ForeignNamespace):
            b.drop_namespace(V1.name)
        assert b.list_namespaces() == []
        assert b.client.collection_exists("vv_docs")


def test_the_spec_is_checked_per_space() -> None:
    """The same name with another spec is ``NamespaceExists``; a vector left without its
    metadata entry (a create that did not finish) is replaced by the next create."""
    with closing(named(location=":memory:")) as b:
        b.create_namespace(V1)
        with pytest.raises(NamespaceExists):
            b.create_namespace(NamespaceSpec(V1.name, 8, "cosine", FP1))
        b.client.create_vector_name("vv_docs", locate(V2.name)[1], models.DenseVectorNameConfig(
            dense=models.DenseVectorConfig(size=3, distance=models.Distance.DOT)))  # fmt: skip
        assert V2.name not in b.list_namespaces()
        b.create_namespace(V2)
        assert b.describe_namespace(V2.name) == V2


def test_the_layout_option() -> None:
    """``layout`` is ``collection`` (the default: unchanged) or ``named``; anything else is
    a ``ConfigError`` that names the choices, before anything is opened."""
    with closing(QdrantBackend(location=":memory:")) as b:
        assert b.layout == "collection" and b.capabilities.native_alias
    with closing(named(location=":memory:")) as b:
        assert b.layout == "named" and "layout='named'" in repr(b)
        assert b.capabilities.namespace_kind.startswith("named vector")
    for bad in ("Named", "vectors", "", None, 1):
        with pytest.raises(ConfigError, match="layout must be one of 'collection', 'named'"):
            QdrantBackend(location=":memory:", layout=bad)  # type: ignore[arg-type]


def test_persists_across_reopen(fast_dir: Path) -> None:
    with closing(named(path=fast_dir / "q")) as b:
        for spec in (V1, V2):
            b.create_namespace(spec)
            b.upsert(spec.name, _recs(spec, 3))
        b.delete(V2.name, ["doc-0"])
    with closing(named(path=fast_dir / "q")) as b:
        assert sorted(b.list_namespaces()) == sorted([V1.name, V2.name])
        assert (b.count(V1.name), b.count(V2.name)) == (3, 2)
        assert b.fetch(V2.name, ["doc-1"])["doc-1"].stamp.fingerprint == FP2
    raw = QdrantClient(path=str(fast_dir / "q"))
    try:
        assert [c.name for c in raw.get_collections().collections] == ["vv_docs"]
    finally:
        raw.close()


# -- the command line ------------------------------------------------------------------------


def _named_config(extra: str = "", layout: str = "named") -> str:
    from vvcli import hash_config

    text = hash_config(backend="qdrant", extra=extra)
    return text.replace('path = "vectors"\n', f'path = "vectors"\nlayout = "{layout}"\n', 1)


V4 = '[spaces.v4]\nembedder = "hash"\ndimension = 48\nmetric = "l2"\n'


def test_cli_migrate_cutover_rollback_on_the_named_layout(cli_ws: object) -> None:
    """ingest in v1 (64-d cosine), ``migrate --to v4`` (48-d l2), ``cutover``, ``rollback``
    through the real command line: both spaces are vectors of the one Qdrant collection
    ``vv_docs`` all along, every document one point with both; the switch is the
    manifest's (no Qdrant alias is ever made)."""
    from vvcli import CliWorkspace, make_docs

    assert isinstance(cli_ws, CliWorkspace)
    cli_ws.write_config(_named_config(V4))
    cli_ws.run("-q", "ingest", "docs", cli_ws.jsonl("d.jsonl", make_docs(30)), ok=True)
    cli_ws.run("-q", "migrate", "docs", "--to", "v4", ok=True)
    cli_ws.run("-q", "cutover", "docs", "--force", ok=True)
    sp = cli_ws.spaces()
    assert (sp["v1"]["state"], sp["v1"]["count"]) == ("retired", 30)
    assert (sp["v4"]["state"], sp["v4"]["count"]) == ("active", 30)
    raw = QdrantClient(path=str(cli_ws.root / "vectors"))
    try:
        assert [c.name for c in raw.get_collections().collections] == ["vv_docs"]
        vectors = raw.get_collection("vv_docs").config.params.vectors
        assert isinstance(vectors, dict)
        v1, v4 = locate(sp["v1"]["namespace"])[1], locate(sp["v4"]["namespace"])[1]
        assert (vectors[v1].size, vectors[v1].distance) == (64, models.Distance.COSINE)
        assert (vectors[v4].size, vectors[v4].distance) == (48, models.Distance.EUCLID)
        assert raw.count("vv_docs").count == 30
        (p,) = raw.retrieve("vv_docs", [uuid_for("d000007")], with_vectors=True)
        assert isinstance(p.vector, dict) and set(p.vector) == {v1, v4}
        assert (p.payload or {})[v4][KEY_HASH] == (p.payload or {})[v1][KEY_HASH]
        assert raw.get_aliases().aliases == []
    finally:
        raw.close()
    cli_ws.run("-q", "rollback", "docs", ok=True)
    sp = cli_ws.spaces()
    assert sp["v1"]["state"] == "active" and sp["v4"]["state"] == "ready"
    text = make_docs(30)[7]["text"]
    for route in ("active", "space:v4"):
        hits = cli_ws.run("search", "docs", text, "-k", "3", "--route", route, "--json",
                          ok=True).json()  # fmt: skip
        assert hits[0]["id"] == "d000007", (route, hits)


def test_cli_refuses_an_unknown_layout(cli_ws: object) -> None:
    from vvcli import CliWorkspace, make_docs

    assert isinstance(cli_ws, CliWorkspace)
    cli_ws.write_config(_named_config(layout="vectors"))
    res = cli_ws.run("-q", "ingest", "docs", cli_ws.jsonl("d.jsonl", make_docs(3)), ok=False)
    assert "layout must be one of 'collection', 'named'" in res.err
    assert not (cli_ws.root / "vectors").exists()


# -- kill -9 in the middle of writes ---------------------------------------------------------

_WRITER = r"""
import sys
import numpy as np
from vecver.backends.qdrant import QdrantBackend
from vecver.types import Record, Stamp

path, name, fp, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
b = QdrantBackend(path=path, layout="named")
gen = 0
while True:
    gen += 1
    recs = [Record(f"doc-{i}", np.full(6, gen * 100 + i, np.float32), f"gen-{gen}", {"g": gen},
                   Stamp.now(fp, f"doc-{i}", f"gen-{gen}")) for i in range(n)]
    b.upsert(name, recs)
    print(gen, flush=True)
"""


def test_kill_9_during_writes_never_leaves_a_new_stamp_over_an_old_vector(fast_dir: Path) -> None:
    """A writer re-writing every document of v2 in a loop (text ``gen-K``, vector
    ``K*100+i``) is killed with SIGKILL at a random moment. Reopened, every v2 record's
    vector is the one of its stamp's generation or of the next (written before the stamp:
    stale, what verify and reconcile repair), never an older one; v1 is untouched; a
    re-write makes v2 whole. Repeated until one kill landed between a vector and its stamp
    (at most 8 kills)."""
    import random
    import signal
    import subprocess
    import sys
    import time

    path, n = fast_dir / "q", 20
    with closing(named(path=path)) as b:
        for spec in (V1, V2):
            b.create_namespace(spec)
        b.upsert(V1.name, _recs(V1, n))
        b.upsert(V2.name, _recs(V2, n, text="gen-0"))
        v1_before = {r.id: r.stamp for r in b.scan(V1.name, limit=100).records}
    rng = random.Random(7)
    mid_write = []
    for _attempt in range(8):
        p = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), V2.name, FP2, str(n)],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert p.stdout is not None
        p.stdout.readline()  # one generation done: the client is open and writing
        time.sleep(rng.uniform(0.0, 0.05))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        with closing(named(path=path)) as b:
            got = {r.id: r for r in b.scan(V2.name, limit=100, with_vectors=True).records}
            assert set(got) == {f"doc-{i}" for i in range(n)}
            stale = 0
            for doc, r in got.items():
                i, gen = int(doc.split("-")[1]), int((r.text or "").split("-")[1])
                vgen = (int(round(float(r.vector[0]))) - i) // 100  # type: ignore[index]
                assert vgen in (gen, gen + 1), (doc, gen, vgen)
                assert r.metadata.get("g", 0) == gen and r.stamp.source_hash == (
                    Stamp.now(FP2, doc, r.text or "").source_hash)  # fmt: skip
                stale += vgen == gen + 1
            assert {r.id: r.stamp for r in b.scan(V1.name, limit=100).records} == v1_before
            mid_write.append(stale)
            if stale:
                break
    assert any(mid_write), f"no kill landed between a vector and its stamp: {mid_write}"
    with closing(named(path=path)) as b:  # what reconcile does: write the truth again
        fixed = _recs(V2, n, text="final")
        b.upsert(V2.name, fixed)
        got = b.fetch(V2.name, [r.id for r in fixed], with_vectors=True)
        for r in fixed:
            assert got[r.id].stamp == r.stamp
            assert np.allclose(got[r.id].vector, r.vector)  # type: ignore[arg-type]
