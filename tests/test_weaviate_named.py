"""The weaviate backend's in-place named-vector layout (``layout = "named"``): the spaces
of one vecver collection are named vectors of ONE Weaviate collection. Against the
in-process emulator through the official ``weaviate-client``: the shared compliance,
congruence and workflow suites unchanged (every compliance namespace in one shared
Weaviate collection, so isolation is tested for real), the layout as the raw client sees
it, deletes and drops that leave the other namespaces intact, a migration to another
dimension with cutover and rollback (vecver's manifest alias, not a Weaviate alias), a
``kill -9`` inside the backfill through the command line, and crash leftovers of
namespace creation and drop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "weaviate", reason="the weaviate backend needs weaviate-client (vecver[weaviate])"
)

from vecver.backends._remote import uuid_for  # noqa: E402
from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.registry import open_backend  # noqa: E402
from vecver.backends.weaviate import WeaviateBackend  # noqa: E402
from vecver.backends.weaviate._named import (  # noqa: E402
    WeaviateNamedBackend,
    shared_collection,
    vector_base,
)
from vecver.errors import ConfigError, ForeignNamespace, NamespaceNotFound  # noqa: E402
from vecver.filters import F  # noqa: E402
from vecver.ops.backfill import migrate  # noqa: E402
from vecver.ops.cutover import cutover, rollback  # noqa: E402
from vecver.ops.verify import verify  # noqa: E402
from vecver.testing import BackendComplianceSuite  # noqa: E402
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair  # noqa: E402
from vecver.testing.data import make_records, make_spec  # noqa: E402
from vecver.testing.emulators.weaviate import WeaviateEmulator  # noqa: E402
from vecver.testing.workflow import (  # noqa: E402
    WorkflowSuite,
    WorkspaceFactory,
    workflow_docs,
    workspace_factory_for,
)


@pytest.fixture(scope="session")
def emulator() -> Iterator[WeaviateEmulator]:
    emu = WeaviateEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator: WeaviateEmulator) -> WeaviateEmulator:
    emulator.reset()
    return emulator


def _open(emu: WeaviateEmulator, **kw: Any) -> WeaviateBackend:
    return WeaviateBackend(emu.url, grpc_port=emu.grpc_port, layout="named", **kw)


def _table(emu: WeaviateEmulator) -> dict[str, Any]:
    return {"name": "weaviate", "url": emu.url, "grpc_port": emu.grpc_port, "layout": "named"}


def _kill_inside_the_backfill(ws: Any, proc: Any, label: str, min_done: int) -> str:
    """SIGKILL ``proc`` (a ``migrate``) once ``label`` is building with ``min_done``
    documents checkpointed; where it was killed (or how it ended, had it finished)."""
    import os
    import re
    import signal
    import time

    from test_crash import phase

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        where = phase(ws, label)
        m = re.match(r"building done=(\d+)", where)
        if m and int(m.group(1)) >= min_done:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            return f"killed at [{where}]"
        time.sleep(0.05)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    return f"exited {proc.returncode} at [{phase(ws, label)}]"


# -- the shared suites ----------------------------------------------------------------------


class TestNamedCompliance(BackendComplianceSuite):
    """The whole contract with every namespace of the suite a named vector of the one
    Weaviate collection ``Vvn_suite`` (the prefix ends with ``__``)."""

    scale_count = 600
    namespace_prefix = "suite__"

    @pytest.fixture
    def backend(self, emu: WeaviateEmulator) -> Iterator[Backend]:
        self.emu = emu
        b = _open(emu)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return _open(self.emu)

    def open_second(self, backend: Backend) -> Backend:
        return _open(self.emu)


class TestNamedCongruence(BackendCongruenceSuite):
    steps = 25

    @pytest.fixture
    def pair(self, emu: WeaviateEmulator) -> Iterator[CongruencePair]:
        def reopen(b: Backend) -> Backend:
            b.close()
            return _open(emu)

        p = CongruencePair(_open(emu), reopen=reopen)
        yield p
        p.close()


class TestNamedWorkflow(WorkflowSuite):
    """Migrate, dual-write, cutover with vecver's manifest alias, rollback, recover: v1
    and v2 are two named vectors of one Weaviate collection."""

    @pytest.fixture
    def workspace_factory(
        self, tmp_path: Path, emu: WeaviateEmulator
    ) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {"default": _table(emu)}) as make:
            yield make


# -- the layout -----------------------------------------------------------------------------


def _two_spaces(b: WeaviateBackend, n: int = 12) -> tuple[Any, Any, list[Any], list[Any]]:
    s1 = make_spec("Vv_docs__v1_aaaaaaaa", 8, "cosine")
    s2 = make_spec("Vv_docs__v2_bbbbbbbb", 12, "dot")
    b.create_namespace(s1)
    b.create_namespace(s2)
    r1 = make_records(s1, n, seed=1)
    r2 = make_records(s2, n, seed=2)
    b.upsert(s1.name, r1)
    b.upsert(s2.name, r2)
    return s1, s2, r1, r2


def test_two_spaces_share_one_weaviate_collection(emu: WeaviateEmulator) -> None:
    """Both namespaces are named vectors (with their own distances) of ONE Weaviate
    collection; an object holds both vectors and both namespaces' properties; no
    Weaviate alias is made and the capabilities say so."""
    with _open(emu) as b:
        assert isinstance(b, WeaviateNamedBackend) and b.layout == "named"
        assert b.capabilities.native_alias is False
        assert WeaviateBackend(emu.url, grpc_port=emu.grpc_port).capabilities.native_alias
        s1, s2, r1, r2 = _two_spaces(b)
        raw = b.client
        names = sorted(raw.collections.list_all())
        assert names == ["Vvn_docs"], names
        assert b.location(s1.name) == ("Vvn_docs", "v_v1_aaaaaaaa")
        assert b.location(s2.name) == ("Vvn_docs", "v_v2_bbbbbbbb")
        cfg = raw.collections.get("Vvn_docs").config.get()
        dist = {k: v.vector_index_config.distance_metric.value  # type: ignore[union-attr]
                for k, v in cfg.vector_config.items()}  # fmt: skip
        assert dist == {"v_v1_aaaaaaaa": "cosine", "v_v2_bbbbbbbb": "dot"}
        obj = raw.collections.get("Vvn_docs").query.fetch_object_by_id(
            uuid_for(r1[0].id), include_vector=True
        )
        assert obj is not None
        assert sorted(obj.vector) == ["v_v1_aaaaaaaa", "v_v2_bbbbbbbb"]
        assert len(obj.vector["v_v1_aaaaaaaa"]) == 8 and len(obj.vector["v_v2_bbbbbbbb"]) == 12
        assert obj.properties["v_v1_aaaaaaaa_text"] == r1[0].text
        assert obj.properties["v_v2_bbbbbbbb_text"] == r2[0].text
        agg = raw.collections.get("Vvn_docs").aggregate.over_all(total_count=True)
        assert agg.total_count == 12  # one object per document, not per space
        assert raw.alias.list_all() == {}
        assert b.count(s1.name) == 12 and b.count(s2.name) == 12
        assert b.list_namespaces() == sorted([s1.name, s2.name])
        with pytest.raises(NotImplementedError):
            b.set_alias("docs", s1.name)


def test_delete_in_v2_keeps_v1(emu: WeaviateEmulator) -> None:
    """Deleting ids from v2 removes only v2's vector and properties from their objects
    (v1's records are untouched, byte for byte); an object that held only v2 goes."""
    with _open(emu) as b:
        s1, s2, r1, r2 = _two_spaces(b)
        only2 = make_records(s2, 2, seed=5, id_prefix="only2")
        b.upsert(s2.name, only2)
        gone = [r.id for r in r2[:4]] + [only2[0].id]
        before = b.fetch(s1.name, [r.id for r in r1], with_vectors=True)
        b.delete(s2.name, gone)
        assert set(b.fetch(s2.name, gone)) == set()
        assert b.count(s2.name) == 12 - 4 + 1 and b.count(s1.name) == 12
        after = b.fetch(s1.name, [r.id for r in r1], with_vectors=True)
        assert sorted(after) == sorted(before)
        for i, rec in before.items():
            got = after[i]
            assert got.text == rec.text and got.metadata == rec.metadata
            assert got.stamp == rec.stamp
            np.testing.assert_array_equal(got.vector, rec.vector)
        handle = b.client.collections.get("Vvn_docs")
        obj = handle.query.fetch_object_by_id(uuid_for(r1[0].id), include_vector=True)
        assert obj is not None and sorted(obj.vector) == ["v_v1_aaaaaaaa"]
        assert not any(k.startswith("v_v2_bbbbbbbb_") for k in obj.properties)
        assert handle.query.fetch_object_by_id(uuid_for(only2[0].id)) is None
        assert handle.query.fetch_object_by_id(uuid_for(only2[1].id)) is not None
        hits = b.search(s2.name, np.asarray(r2[0].vector)[None, :], 20)[0]
        assert {h.id for h in hits} == {r.id for r in r2[4:]} | {only2[1].id}


def test_dropping_v2_leaves_v1_intact(emu: WeaviateEmulator) -> None:
    """Weaviate cannot remove a named vector, so a drop marks the namespace gone (it
    disappears at once), strips its vector and properties from every object and deletes
    the objects left with none; v1 reads exactly as before. Recreating the name (another
    dimension) takes the next vector name and starts empty; dropping the last namespace
    deletes the Weaviate collection."""
    with _open(emu) as b:
        s1, s2, r1, r2 = _two_spaces(b)
        only2 = make_records(s2, 3, seed=6, id_prefix="only2")
        b.upsert(s2.name, only2)
        before = b.fetch(s1.name, [r.id for r in r1], with_vectors=True)
        b.drop_namespace(s2.name)
        assert b.list_namespaces() == [s1.name]
        with pytest.raises(NamespaceNotFound):
            b.count(s2.name)
        after = b.fetch(s1.name, [r.id for r in r1], with_vectors=True)
        assert {i: (r.text, r.metadata, r.stamp) for i, r in after.items()} == \
            {i: (r.text, r.metadata, r.stamp) for i, r in before.items()}  # fmt: skip
        handle = b.client.collections.get("Vvn_docs")
        objs = handle.query.fetch_objects(limit=100, include_vector=True).objects
        assert len(objs) == 12  # the objects only v2 held are deleted
        for o in objs:
            assert sorted(o.vector) == ["v_v1_aaaaaaaa"]
            assert not any(k.startswith("v_v2_bbbbbbbb_") for k in o.properties)
        cfg = handle.config.get()
        assert "v_v2_bbbbbbbb" in cfg.vector_config  # Weaviate keeps the vector's config
        assert "v_v2_bbbbbbbb_gone" in {p.name for p in cfg.properties}
        again = make_spec(s2.name, 5, "l2", s2.fingerprint)
        b.create_namespace(again)
        assert b.describe_namespace(s2.name) == again
        assert b.location(s2.name) == ("Vvn_docs", "v_v2_bbbbbbbb_g2")
        assert b.count(s2.name) == 0
        b.drop_namespace(s2.name)
        b.drop_namespace(s1.name)
        assert b.list_namespaces() == []
        assert "Vvn_docs" not in b.client.collections.list_all()


def test_upsert_replaces_only_its_own_namespace(emu: WeaviateEmulator) -> None:
    """Re-writing a record of v1 (fewer metadata fields, no text) removes v1's stale
    properties (a numeric filter no longer matches it) and leaves v2's untouched."""
    from vecver.types import Record

    with _open(emu) as b:
        s1, s2, r1, r2 = _two_spaces(b)
        rec = r1[0]
        assert b.search(s1.name, np.asarray(rec.vector)[None, :], 50,
                        filter=F.range("rank", gte=-10**6))[0]  # fmt: skip
        plain = Record(rec.id, rec.vector, None, {"tag": "new"}, rec.stamp)
        b.upsert(s1.name, [plain])
        got = b.fetch(s1.name, [rec.id])[rec.id]
        assert got.text is None and got.metadata == {"tag": "new"}
        assert rec.id not in {h.id for h in b.search(
            s1.name, np.asarray(rec.vector)[None, :], 50, filter=F.range("rank", gte=-10**6))[0]}
        assert [h.id for h in b.search(s1.name, np.asarray(rec.vector)[None, :], 1,
                                       filter=F.eq("tag", "new"))[0]] == [rec.id]  # fmt: skip
        other = b.fetch(s2.name, [rec.id], with_vectors=True)[rec.id]
        assert other.text == r2[0].text and other.metadata == r2[0].metadata
        np.testing.assert_array_equal(other.vector, r2[0].vector)


def test_filters_use_the_namespaces_own_properties(emu: WeaviateEmulator) -> None:
    """A filter on v2 is translated to v2's properties: records of v1 with matching
    metadata never come back from v2, and vice versa."""
    from vecver.types import Record

    with _open(emu) as b:
        s1 = make_spec("grp__a", 4, "cosine")
        s2 = make_spec("grp__b", 4, "cosine")
        for s in (s1, s2):
            b.create_namespace(s)
        recs1 = [r for r in make_records(s1, 6, seed=3)]
        recs1 = [Record(r.id, r.vector, r.text, {"side": "one", "k": i}, r.stamp)
                 for i, r in enumerate(recs1)]  # fmt: skip
        recs2 = [Record(f"b{i}", r.vector, r.text, {"side": "two", "k": i},
                        r.stamp.__class__.now(s2.fingerprint, f"b{i}", r.text or ""))
                 for i, r in enumerate(recs1)]  # fmt: skip
        b.upsert(s1.name, recs1)
        b.upsert(s2.name, recs2)
        q = np.asarray(recs1[0].vector)[None, :]
        assert b.search(s2.name, q, 10, filter=F.eq("side", "one"))[0] == []
        assert {h.id for h in b.search(s2.name, q, 10, filter=F.range("k", gte=3))[0]} == \
            {"b3", "b4", "b5"}  # fmt: skip
        assert {h.id for h in b.search(s1.name, q, 10, filter=F.eq("side", "one"))[0]} == \
            {r.id for r in recs1}  # fmt: skip


def test_migrate_to_another_dimension_cutover_and_rollback(
    tmp_path: Path, emu: WeaviateEmulator
) -> None:
    """v1 (32 dimensions) -> v2 (48 dimensions, another embedder geometry) in place: v2
    is a new named vector of the same Weaviate collection; cutover switches vecver's
    manifest alias (searches served by v2), rollback switches it back; verify is clean;
    Weaviate holds no alias."""
    spaces = {"v1": {"embedder": "hash", "dimension": 32},
              "v2": {"embedder": "hash", "dimension": 48, "options": {"seed": 7}}}  # fmt: skip
    with workspace_factory_for(tmp_path, {"default": _table(emu)}) as make:
        ws = make({"spaces": spaces, "collections": {"c": {"space": "v1"}},
                   "backfill": {"batch_size": 16}})  # fmt: skip
        docs = workflow_docs(60)
        ws.collection("c").upsert(docs)
        rep = migrate(ws, "c", "v2")
        assert rep.state == "ready", rep.to_dict()
        rows = {r.space_label: r for r in ws.manifest.namespaces("c")}
        be = ws.backend_for(rows["v1"])
        assert isinstance(be, WeaviateNamedBackend)
        loc1, loc2 = be.location(rows["v1"].name), be.location(rows["v2"].name)
        assert loc1[0] == loc2[0] and loc1[1] != loc2[1]
        assert be.describe_namespace(rows["v2"].name).dimension == 48
        assert be.count(rows["v2"].name) == be.count(rows["v1"].name) == 60
        for r in verify(ws, "c"):
            assert r.clean, r.to_dict()
        cutover(ws, "c", force=True)
        coll = ws.collection("c")
        hits = coll.search(docs[3].text, k=3)
        assert hits and {h.space for h in hits} == {"v2"} and hits[0].id == docs[3].id
        coll.upsert(workflow_docs(2, start=60, version=3))
        assert be.count(rows["v1"].name) == be.count(rows["v2"].name) == 62
        rollback(ws, "c")
        hits = ws.collection("c").search(docs[5].text, k=3)
        assert {h.space for h in hits} == {"v1"} and hits[0].id == docs[5].id
        for r in verify(ws, "c"):
            assert r.clean, r.to_dict()
        assert be.client.alias.list_all() == {}
        assert sorted(be.client.collections.list_all()) == [loc1[0]]


def test_migrate_killed_inside_the_backfill_resumes_clean(
    emu: WeaviateEmulator, tmp_path: Path
) -> None:
    """``vecver migrate --to v3`` (96 dimensions, a named vector added in place) SIGKILLed
    inside the backfill; ``vecver backfill`` resumes; verify is clean; every document is
    once in v3 with v3's stamps; cutover and rollback switch the manifest alias."""
    from test_crash import phase, scan_all
    from vvcli import CliWorkspace, hash_config, make_docs

    from vecver import command
    from vecver.config import Config

    n = 120
    ws = CliWorkspace(tmp_path)
    ws.write_config(hash_config(backend="weaviate").replace(
        'path = "vectors"',
        f'url = "{emu.url}"\ngrpc_port = {emu.grpc_port}\nlayout = "named"',
    ))  # fmt: skip
    cfg = Config.load(ws.config)
    docs = make_docs(n)
    command.ingest(cfg, "docs", str(ws.jsonl("docs.jsonl", docs)), progress=False)
    emu.latency = 0.01
    proc = ws.popen("-q", "migrate", "docs", "--to", "v3", "--batch-size", "8")
    where = _kill_inside_the_backfill(ws, proc, "v3", n // 4)
    emu.latency = 0.0
    assert where.startswith("killed"), where
    res = ws.run("-q", "backfill", "docs", ok=True)
    assert "state ready" in res.out, str(res)
    assert phase(ws, "v3").startswith("ready"), phase(ws, "v3")
    assert command.verify(cfg, "docs").to_dict()["clean"] is True
    with ws.open() as w:
        rows = {r.space_label: r for r in w.manifest.namespaces("docs")}
        v1, v3 = scan_all(w.backend, rows["v1"].name), scan_all(w.backend, rows["v3"].name)
        assert sorted(v1) == sorted(v3) == sorted(d["id"] for d in docs)
        assert all(r.stamp.fingerprint == rows["v3"].fingerprint for r in v3.values())
        assert isinstance(w.backend, WeaviateNamedBackend)
        assert w.backend.location(rows["v1"].name)[0] == w.backend.location(rows["v3"].name)[0]
    command.cutover(cfg, "docs", force=True)
    with ws.open() as w:
        assert w.collection("docs").search(docs[5]["text"], k=1)[0].id == docs[5]["id"]
    command.rollback(cfg, "docs")
    with ws.open() as w:
        assert w.collection("docs").search(docs[6]["text"], k=1)[0].id == docs[6]["id"]


# -- crash leftovers, naming, config ----------------------------------------------------------


def test_a_create_interrupted_after_its_claim_is_resumed(emu: WeaviateEmulator) -> None:
    """A crash between claiming a vector name (its ``_id`` property) and adding the
    vector leaves no namespace; creating it again with the same spec finishes the claim,
    with another spec takes the next vector name."""
    from weaviate.classes.config import Configure

    with _open(emu) as b:
        s1 = make_spec("crash__a", 4, "cosine")
        b.create_namespace(s1)
        s2 = make_spec("crash__b", 6, "l2")
        handle = b.client.collections.get("Vvn_crash")
        for prop in b._slot_properties("v_b", s2)[:3]:  # the claim and two more, no vector
            handle.config.add_property(prop)
        assert b.list_namespaces() == [s1.name]
        with pytest.raises(NamespaceNotFound):
            b.describe_namespace(s2.name)
        b.create_namespace(s2)
        assert b.location(s2.name) == ("Vvn_crash", "v_b")
        b.upsert(s2.name, make_records(s2, 3, seed=1))
        assert b.count(s2.name) == 3 and b.count(s1.name) == 0
        # a claim of another spec is skipped: the name takes the next incarnation
        s3 = make_spec("crash__c", 4, "dot")
        for prop in b._slot_properties("v_c", make_spec("crash__c", 9, "dot"))[:1]:
            handle.config.add_property(prop)
        handle.config.add_vector(vector_config=Configure.Vectors.self_provided(name="v_zz"))
        b.create_namespace(s3)
        assert b.location(s3.name) == ("Vvn_crash", "v_c_g2")
        assert b.describe_namespace(s3.name) == s3


def test_a_drop_interrupted_after_its_mark_is_finished_by_the_next(
    emu: WeaviateEmulator,
) -> None:
    """A crash after a drop marked the namespace gone, before its data were stripped:
    the namespace is gone already, its leftovers are invisible to the others, and the
    next drop in the collection strips them."""
    from weaviate.classes.config import DataType, Property

    with _open(emu) as b:
        s1, s2, r1, r2 = _two_spaces(b)
        s3 = make_spec("Vv_docs__v3_cccccccc", 4, "cosine")
        b.create_namespace(s3)
        handle = b.client.collections.get("Vvn_docs")
        handle.config.add_property(Property(name="v_v2_bbbbbbbb_gone", data_type=DataType.BOOL))
        assert b.list_namespaces() == sorted([s1.name, s3.name])
        assert b.count(s1.name) == 12 and b.count(s3.name) == 0
        leftovers = handle.query.fetch_objects(limit=100, include_vector=True).objects
        assert all("v_v2_bbbbbbbb" in o.vector for o in leftovers)
        b.drop_namespace(s3.name)
        for o in handle.query.fetch_objects(limit=100, include_vector=True).objects:
            assert sorted(o.vector) == ["v_v1_aaaaaaaa"]
            assert not any(k.startswith("v_v2_") for k in o.properties)
        assert len(b.fetch(s1.name, [r.id for r in r1])) == 12


def test_a_foreign_collection_of_that_name_is_refused(emu: WeaviateEmulator) -> None:
    """A Weaviate collection vecver did not make for this layout is never taken over."""
    with _open(emu) as b:
        b.client.collections.create("Vvn_theirs")
        with pytest.raises(ForeignNamespace):
            b.create_namespace(make_spec("theirs__v1", 4, "cosine"))
        assert b.list_namespaces() == []


def test_location_from_the_name() -> None:
    """The shared collection is ``Vvn_`` + the part before the first ``__`` (without
    ``Vv_``); the vector ``v_`` + the rest, or a hashed name when the rest is not plain
    lowercase; physical names are the collection layout's."""
    pn = WeaviateNamedBackend.physical_name("docs", "minilm-v1.5", "ab" * 32)
    assert pn == WeaviateBackend.physical_name("docs", "minilm-v1.5", "ab" * 32)
    assert shared_collection(pn) == "Vvn_docs"
    assert WeaviateNamedBackend.planned_location("Vv_docs__v1_12345678") == \
        ("Vvn_docs", "v_v1_12345678")  # fmt: skip
    assert shared_collection("plain") == "Vvn_plain" and vector_base("plain") == "v_plain"
    odd = vector_base("g__Mixed_Case")
    assert odd.startswith("h_mixed_case_") and odd != vector_base("g__mixed_case")
    assert len(vector_base("g__" + "x" * 200)) < 60
    assert len(shared_collection("y" * 255 + "__a")) <= 255


def test_an_unknown_layout_is_a_config_error(emu: WeaviateEmulator) -> None:
    """``layout`` other than "collection" or "named" is refused before connecting, also
    through the backend registry as a config would open it."""
    with pytest.raises(ConfigError, match="layout"):
        WeaviateBackend("http://127.0.0.1:9", layout="nested")
    with pytest.raises(ConfigError, match="layout"):
        open_backend("weaviate", {"url": emu.url, "grpc_port": emu.grpc_port,
                                  "layout": "Named"})  # fmt: skip
    with pytest.raises(ConfigError, match="named layout"):
        WeaviateNamedBackend(emu.url, grpc_port=emu.grpc_port, layout="collection")
    b = open_backend("weaviate", {"url": emu.url, "grpc_port": emu.grpc_port, "layout": "named"})
    try:
        assert isinstance(b, WeaviateNamedBackend)
    finally:
        b.close()


def test_objects_of_other_namespaces_are_invisible_to_scan_and_count(
    emu: WeaviateEmulator,
) -> None:
    """A sparse namespace (3 of 300 objects) scans page by page to exactly its records."""
    with _open(emu) as b:
        s1 = make_spec("sp__big", 4, "cosine")
        s2 = make_spec("sp__small", 4, "cosine")
        b.create_namespace(s1)
        b.create_namespace(s2)
        b.upsert(s1.name, make_records(s1, 300, seed=1))
        small = make_records(s2, 3, seed=2, id_prefix="s")
        b.upsert(s2.name, small)
        seen: list[str] = []
        cursor = None
        while True:
            page = b.scan(s2.name, cursor=cursor, limit=2)
            seen.extend(r.id for r in page.records)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(r.id for r in small)
        assert b.count(s2.name) == 3 and b.count(s1.name) == 300
        raw = json.loads(b.client.collections.get("Vvn_sp").config.get().description or "{}")
        assert raw == {"vecver_named": {"format": 1, "layout": "named"}}
