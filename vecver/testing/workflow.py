"""The workflow suite: migrate, dual-write, cutover, rollback and recover on any backend.

Where the compliance suite (:mod:`vecver.testing.compliance`) checks one backend's
contract, this suite runs the migration workflow of the core over it, end to end through
the Python API: the same tests whether both spaces sit on one backend instance or on two
(a cross-provider migration). Subclass :class:`WorkflowSuite` and give it one fixture,
``workspace_factory``, that opens workspaces::

    # tests/test_workflow_mydb.py
    import pytest
    from vecver.testing.workflow import WorkflowSuite, workspace_factory_for

    class TestMyDBWorkflow(WorkflowSuite):
        @pytest.fixture
        def workspace_factory(self, tmp_path):
            with workspace_factory_for(
                tmp_path, {"default": {"name": "mydb", "url": "..."}}
            ) as make:
                yield make

    class TestLocalToMyDB(WorkflowSuite):
        migrate_on = "target"   # place the new space on the instance called "target"

        @pytest.fixture
        def workspace_factory(self, tmp_path):
            with workspace_factory_for(tmp_path, {
                "default": {"name": "local", "path": str(tmp_path / "a")},
                "target": {"name": "mydb", "url": "..."},
            }) as make:
                yield make

The factory takes the config sections the suite needs (``spaces``, ``collections``) and
returns an open :class:`~vecver.Workspace` whose backend instances are the fixture's
choice; it closes what it opened at teardown. ``workspace_factory_for`` builds one from
backend tables (as in ``vecver.toml``), optionally wrapping each opened instance (a
:class:`vecver.testing.faults.FaultyBackend`, for instance). Every test uses one open
workspace, so a backend that lives in one process (``memory-aliased``) runs it too.

Each test's docstring says what it checks and where to look when it fails. The data are
deterministic; the embedder is the built-in ``hash`` embedder (no model files).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ..backends.base import Backend
from ..config import DEFAULT_INSTANCE, Config
from ..ops.backfill import BackfillReport, backfill, migrate, start_migration
from ..ops.cutover import cutover, rollback
from ..ops.verify import verify
from ..runtime.workspace import Workspace
from ..store.sqlite import NamespaceRow
from ..types import Document, Record, source_hash
from .checks import scan_all

#: the spaces the suite declares: one embedder, two geometries (same dimension, another seed)
WORKFLOW_SPACES: dict[str, dict[str, Any]] = {
    "v1": {"embedder": "hash", "dimension": 32},
    "v2": {"embedder": "hash", "dimension": 32, "options": {"seed": 7}},
}

WorkspaceFactory = Callable[[Mapping[str, Any]], Workspace]
"""Opens a workspace on the given config sections (``spaces``, ``collections``, ...)."""


@contextlib.contextmanager
def workspace_factory_for(
    root: Path,
    backends: Mapping[str, Mapping[str, Any]],
    *,
    wrap: Callable[[str, Backend], Backend] | None = None,
) -> Iterator[WorkspaceFactory]:
    """A :data:`WorkspaceFactory` over the backend tables ``backends`` (instance name ->
    table with the plugin ``name`` and its options; ``"default"`` is the default
    instance), with the manifest and relative paths under ``root``. ``wrap(instance,
    backend)`` may wrap each instance as it is opened. Closes every workspace at exit."""
    opened: list[Workspace] = []
    count = [0]

    def make(sections: Mapping[str, Any]) -> Workspace:
        count[0] += 1
        base = root / f"workflow-{count[0]}"
        base.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {"manifest": {"path": "manifest.db"}, **sections}
        data["backends"] = {k: dict(v) for k, v in backends.items()}
        cfg = Config.from_mapping(data, base=base)
        given: dict[str, Backend] | None = None
        if wrap is not None:
            from ..backends.registry import open_backend

            given = {
                name: wrap(name, open_backend(bc.name, dict(bc.options)))
                for name, bc in cfg.backends.items()
            }
        ws = Workspace(cfg, backends=given, progress=False)
        opened.append(ws)
        return ws

    try:
        yield make
    finally:
        for ws in reversed(opened):
            with contextlib.suppress(Exception):
                ws.close()


def records_by_id(backend: Backend, namespace: str) -> dict[str, Record]:
    """Every record of ``namespace`` by id, from a full scan; asserts that no id is
    scanned twice and that ``count`` agrees with the scan."""
    out: dict[str, Record] = {}
    for r in scan_all(backend, namespace, 97):
        assert r.id not in out, f"{namespace}: {r.id} scanned twice"
        out[r.id] = r
    assert backend.count(namespace) == len(out), f"{namespace}: count disagrees with a scan"
    return out


def workflow_docs(n: int, *, version: int = 0, start: int = 0) -> list[Document]:
    """``n`` documents ``w000000``...: distinct texts (each finds itself first with the
    hash embedder), a version word (so a new version changes the source hash) and
    metadata."""
    return [
        Document(
            f"w{i:06d}",
            f"doc{i} topic{i % 5} alpha{i * 7 % 13} v{version} unique{i}x",
            {"n": i, "version": version},
        )
        for i in range(start, start + n)
    ]


class WorkflowSuite:
    """The migration workflow over one ``workspace_factory`` fixture (see the module).

    Class attributes: :attr:`migrate_on` (the backend instance a migration places the new
    space on; None: the active space's own), :attr:`documents` (corpus size) and
    :attr:`batch_size` (backfill batch, small so that writes interleave with batches)."""

    migrate_on: ClassVar[str | None] = None
    documents: ClassVar[int] = 120
    batch_size: ClassVar[int] = 16

    # -- helpers ----------------------------------------------------------------------

    @pytest.fixture
    def ws(self, workspace_factory: WorkspaceFactory) -> Workspace:
        """A workspace whose collection ``c`` holds :attr:`documents` documents in v1."""
        ws = workspace_factory({
            "spaces": {k: dict(v) for k, v in WORKFLOW_SPACES.items()},
            "collections": {"c": {"space": "v1"}},
            "backfill": {"batch_size": self.batch_size},
        })
        ws.collection("c").upsert(workflow_docs(self.documents))
        return ws

    def row(self, ws: Workspace, label: str) -> NamespaceRow:
        row = ws.manifest.namespace_for("c", label)
        assert row is not None, f"no namespace of {label} in c"
        return row

    def contents(self, ws: Workspace, label: str) -> dict[str, Record]:
        """Every record of a space, read from the instance its namespace lives on (each
        id exactly once)."""
        row = self.row(ws, label)
        return records_by_id(ws.backend_for(row), row.name)

    def assert_holds(self, ws: Workspace, label: str, truth: Mapping[str, Document]) -> None:
        """Space ``label`` holds exactly ``truth``, each record with its text, metadata and
        a stamp of this space's fingerprint and the text's source hash."""
        row = self.row(ws, label)
        got = self.contents(ws, label)
        lost, extra = sorted(set(truth) - set(got)), sorted(set(got) - set(truth))
        assert not lost and not extra, f"{label}: lost {lost[:5]}, extra {extra[:5]}"
        for i, d in truth.items():
            r = got[i]
            assert r.text == d.text and r.metadata == dict(d.metadata), f"{label}: {i} stale"
            assert r.stamp.fingerprint == row.fingerprint, f"{label}: {i} wrongly stamped"
            assert r.stamp.source_hash == source_hash(d.text) and r.stamp.doc_id == i

    def assert_clean(self, ws: Workspace) -> None:
        for rep in verify(ws, "c"):
            assert rep.clean, rep.to_dict()

    def expected_instance(self, ws: Workspace) -> str:
        return self.migrate_on or self.row(ws, "v1").backend

    def migrated(self, ws: Workspace) -> BackfillReport:
        rep = migrate(ws, "c", "v2", on=self.migrate_on)
        assert rep.state == "ready", rep.to_dict()
        return rep

    # -- tests ------------------------------------------------------------------------

    def test_migrate_copies_every_document_once(self, ws: Workspace) -> None:
        """``migrate`` places v2 on the chosen instance, copies every document exactly
        once, correctly stamped, and ends ``ready`` with ``verify`` clean. If it fails:
        look at which instance the namespace row names (``NamespaceRow.backend``) and at
        the backend's ``scan``/``count`` on that instance."""
        self.migrated(ws)
        row = self.row(ws, "v2")
        assert row.backend == self.expected_instance(ws)
        assert row.name in ws.backend_for(row).list_namespaces()
        truth = {d.id: d for d in workflow_docs(self.documents)}
        self.assert_holds(ws, "v1", truth)
        self.assert_holds(ws, "v2", truth)
        self.assert_clean(ws)

    def test_writes_during_the_backfill_win(self, ws: Workspace) -> None:
        """Upserts (new and updated documents) and deletes issued between backfill batches
        reach both spaces (dual-write), and the backfill never brings back a deleted
        document nor an old text. If it fails: the write path writes every live space on
        its own instance (``ws.backend_for(ns)``); deletes record tombstones first."""
        start_migration(ws, "c", "v2", on=self.migrate_on)
        coll = ws.collection("c")
        truth = {d.id: d for d in workflow_docs(self.documents)}
        rounds = [0]

        def write_meanwhile(_: BackfillReport) -> None:
            n = rounds[0]
            rounds[0] += 1
            if n > 4:
                return
            new = workflow_docs(3, start=self.documents + 3 * n)
            upd = workflow_docs(2, start=self.documents - 2 * (n + 1), version=n + 1)
            gone = [f"w{5 * n:06d}", f"w{5 * n + 1:06d}"]
            coll.upsert(new + upd)
            coll.delete(gone)
            truth.update({d.id: d for d in new + upd})
            for i in gone:
                truth.pop(i, None)

        rep = backfill(ws, "c", space="v2", on_batch=write_meanwhile)
        assert rounds[0] > 1, "the backfill ran in one batch: nothing interleaved"
        assert rep.state == "ready", rep.to_dict()
        self.assert_holds(ws, "v1", truth)
        self.assert_holds(ws, "v2", truth)
        self.assert_clean(ws)

    def test_cutover_then_rollback(self, ws: Workspace) -> None:
        """``cutover`` makes v2 active (searches are served by v2, labelled so); writes
        after it reach both spaces (v1 is retired, still written); ``rollback`` makes v1
        active again with those writes, v2 ``ready``. If it fails across instances: the
        switch is the manifest's alias there (no native alias spans two databases)."""
        self.migrated(ws)
        rep = cutover(ws, "c", force=True)
        assert (rep.from_space, rep.to_space) == ("v1", "v2")
        coll = ws.collection("c")
        hits = coll.search(workflow_docs(1, start=3)[0].text, k=3)
        assert hits and {h.space for h in hits} == {"v2"}
        assert hits[0].id == "w000003"
        later = workflow_docs(4, start=self.documents, version=9)
        coll.upsert(later)
        coll.delete(["w000000"])
        truth = {d.id: d for d in workflow_docs(self.documents) + later}
        del truth["w000000"]
        states = {n.space_label: n.state for n in ws.manifest.namespaces("c")}
        assert states == {"v1": "retired", "v2": "active"}
        self.assert_holds(ws, "v1", truth)
        self.assert_holds(ws, "v2", truth)
        back = rollback(ws, "c")
        assert (back.from_space, back.to_space) == ("v2", "v1")
        states = {n.space_label: n.state for n in ws.manifest.namespaces("c")}
        assert states == {"v1": "active", "v2": "ready"}
        assert {h.space for h in coll.search("doc7 topic2", k=3)} == {"v1"}
        self.assert_holds(ws, "v1", truth)
        self.assert_clean(ws)

    def test_native_alias_follows_the_active_space(self, ws: Workspace) -> None:
        """Where the active space's instance has native aliases, the database alias names
        the active namespace after cutover and after rollback; an instance that no longer
        holds the active space keeps no alias of the collection. If it fails: look at
        ``_switch`` in :mod:`vecver.ops.cutover`."""
        self.migrated(ws)
        v1, v2 = self.row(ws, "v1"), self.row(ws, "v2")
        for target, other in ((v2, v1), (v1, v2)):
            if target is v2:
                cutover(ws, "c", force=True)
            else:
                rollback(ws, "c")
            be, other_be = ws.backend_for(target), ws.backend_for(other)
            if be.capabilities.native_alias:
                assert be.get_alias("c") == target.name
            if other_be is not be and other_be.capabilities.native_alias:
                assert other_be.get_alias("c") is None

    def test_recover_an_interrupted_write(self, ws: Workspace) -> None:
        """A write that reached the active space but not the candidate (a writer killed
        between the two) is finished by ``recover``: the candidate then agrees with the
        active space. If it fails: ``recover`` must reconcile the intent's ids on the
        candidate's own instance."""
        self.migrated(ws)
        active = self.row(ws, "v1")
        docs = workflow_docs(3, start=self.documents, version=4)
        intent = ws.manifest.begin_write("c", "upsert", [d.id for d in docs])
        coll = ws.collection("c")
        emb = ws.embedder("v1")
        vecs = emb.embed_documents([d.text for d in docs])
        from ..types import Stamp

        ws.backend_for(active).upsert(active.name, [
            Record(d.id, v, d.text, dict(d.metadata), Stamp.now(active.fingerprint, d.id, d.text))
            for d, v in zip(docs, vecs)
        ])
        ws.manifest.fail_write(intent)  # as a killed writer's intent is found
        rep = ws.recover("c")
        assert rep.intents == 1
        truth = {d.id: d for d in workflow_docs(self.documents) + docs}
        self.assert_holds(ws, "v2", truth)
        assert coll.get([f"w{self.documents:06d}"], route="space:v2")
        self.assert_clean(ws)

    def test_recover_an_interrupted_cutover(self, ws: Workspace) -> None:
        """A cutover interrupted before the manifest commit is cleared by ``recover`` when
        the database alias did not move (v1 stays active), finished when it did (a native
        alias within one instance), and a cutover run again then completes. If it fails:
        ``recover`` must ask the instance the pending cutover switched
        (``ws.backend_for``)."""
        self.migrated(ws)
        v1, v2 = self.row(ws, "v1"), self.row(ws, "v2")
        ws.manifest.begin_cutover("c", v1.name, v2.name, "cutover")
        rep = ws.recover("c")
        assert rep.cutovers == 1
        assert ws.manifest.active_namespace("c") == v1.name
        assert ws.manifest.pending_cutover("c") is None
        be = ws.backend_for(v2)
        if be is ws.backend_for(v1) and be.capabilities.native_alias:
            # interrupted after the database alias moved: recover finishes it
            ws.manifest.begin_cutover("c", v1.name, v2.name, "cutover")
            be.set_alias("c", v2.name)
            assert ws.recover("c").cutovers == 1
            assert ws.manifest.active_namespace("c") == v2.name
            rollback(ws, "c")
        cutover(ws, "c", force=True)
        assert ws.manifest.active_namespace("c") == v2.name
        assert ws.manifest.pending_cutover("c") is None
        self.assert_clean(ws)

    def test_migration_to_an_unknown_instance_is_refused(self, ws: Workspace) -> None:
        """``migrate(on=NAME)`` for an instance the config does not declare raises
        ``UnknownBackendInstance`` naming the declared ones, and records nothing."""
        from ..errors import UnknownBackendInstance

        with pytest.raises(UnknownBackendInstance) as e:
            migrate(ws, "c", "v2", on="no_such_instance")
        assert DEFAULT_INSTANCE in e.value.known
        assert ws.manifest.namespace_for("c", "v2") is None

    # -- reading during a migration (the routes of vecver.read) ------------------------

    def test_dual_reads_both_spaces_during_a_migration(self, ws: Workspace) -> None:
        """While v2 is building with part of the corpus, ``dual`` answers from both
        spaces — each hit once, labelled with the namespace (on its own instance) that
        served it, a document's own text finding it first whether v2 holds it or not.
        If it fails: check ``search`` on each instance alone (``route="active"`` and
        ``"candidate"``), then :func:`vecver.read.fusion.fuse`."""
        start_migration(ws, "c", "v2", on=self.migrate_on)
        coll = ws.collection("c")
        half = self.documents // 2
        docs = workflow_docs(self.documents)
        coll.upsert(docs[:half])  # dual-write: these are in v2 too
        v1, v2 = self.row(ws, "v1"), self.row(ws, "v2")
        for d in (docs[3], docs[half + 3]):
            hits = coll.search(d.text, 5, route="dual")
            ids = [h.id for h in hits]
            assert len(ids) == len(set(ids)) == 5, ids
            assert hits[0].id == d.id, (d.id, ids)
            assert {(h.space, h.namespace) for h in hits} <= {("v1", v1.name),
                                                             ("v2", v2.name)}
            expected = {"v1": 1, "v2": 1} if d in docs[:half] else {"v1": 1}
            assert hits[0].ranks == expected and hits[0].fused_score is not None

    def test_canary_and_shadow_after_a_migration(self, ws: Workspace) -> None:
        """With v2 ready: ``canary:0.5`` sends each routing key to one space, always the
        same, and serves from that space only; ``shadow`` serves exactly what ``active``
        serves and records one comparison per query in the manifest. If it fails: the
        canary choice is :func:`vecver.read.routes.canary_bucket`; shadow counters are
        written by the background worker (``Searcher.flush``)."""
        from ..read.routes import canary_bucket
        from ..read.shadow import counter_prefix

        self.migrated(ws)
        coll = ws.collection("c")
        docs = workflow_docs(self.documents)
        served: set[str] = set()
        for i in range(12):
            key = f"user-{i}"
            want = "v2" if canary_bucket("c", key) < 0.5 else "v1"
            for _ in range(2):
                hits = coll.search(docs[i].text, 3, route="canary:0.5", routing_key=key)
                assert {h.space for h in hits} == {want} and hits[0].id == docs[i].id
            served.add(want)
        assert served == {"v1", "v2"}
        queries = [d.text for d in docs[:6]]
        active = coll.search_many(queries, 4)
        shadow = coll.search_many(queries, 4, route="shadow")
        assert [[(h.id, h.space) for h in hs] for hs in shadow] == \
            [[(h.id, h.space) for h in hs] for hs in active]
        assert coll.searcher.flush()
        prefix = counter_prefix(self.row(ws, "v2").name)
        got = ws.manifest.counters("c", prefix)
        assert got.get(prefix + "queries") == len(queries), got
        assert got.get(prefix + "top1_agree") == len(queries), got  # own text first in both

    def test_adapter_route_and_derived_space(self, workspace_factory: WorkspaceFactory,
                                             tmp_path: Path) -> None:
        """A derived space (``derive = {from = "v1", truncate = 32}``: v1's geometry under
        a new fingerprint) is migrated from v1's STORED vectors on this backend; a query
        adapter fitted from it into v1 (pairs from stored vectors) is refused by the gate
        until judged queries measure it, then the ``adapter`` route serves v1's namespace.
        If it fails: the derived copy uses ``fetch(..., with_vectors=True)`` of v1's
        namespace (:func:`vecver.embedders.derived.from_stored`); the adapter's pairs use
        ``scan`` and ``fetch`` with vectors (:mod:`vecver.adapters.pairs`); the route is
        :mod:`vecver.read.adapter_route`."""
        import json

        from .. import adapters
        from ..errors import AdapterGateFailed

        ws = workspace_factory({
            "spaces": {"v1": dict(WORKFLOW_SPACES["v1"]),
                       "v1x": {"derive": {"from": "v1", "truncate": 32}}},
            "collections": {"c": {"space": "v1"}},
            "backfill": {"batch_size": self.batch_size},
        })
        docs = workflow_docs(self.documents)
        coll = ws.collection("c")
        coll.upsert(docs)
        rep = migrate(ws, "c", "v1x", on=self.migrate_on)
        assert rep.state == "ready", rep.to_dict()
        assert set(self.contents(ws, "v1x")) == {d.id for d in docs}
        ids = [d.id for d in docs]
        r1, rx = self.row(ws, "v1"), self.row(ws, "v1x")
        v1 = ws.backend_for(r1).fetch(r1.name, ids, with_vectors=True)
        v1x = ws.backend_for(rx).fetch(rx.name, ids, with_vectors=True)
        for i, r in v1x.items():
            src = v1[i].vector
            assert r.vector is not None and src is not None
            want = src / max(float((src * src).sum()) ** 0.5, 1e-12)
            assert float(abs(r.vector - want).max()) < 1e-5, f"{i}: not v1's stored vector"
        fit = adapters.fit(ws, "c", "v1x", "v1", pairs=self.documents)
        assert fit.evaluation["retention"] is None  # too few held-out documents here
        with pytest.raises(AdapterGateFailed):
            coll.search_many([docs[0].text], 3, route="adapter:v1x->v1")
        qfile = tmp_path / "adapter-queries.jsonl"
        qfile.write_text("".join(json.dumps({"query": d.text, "relevant": [d.id]}) + "\n"
                                 for d in docs[:30]))
        _, ret = adapters.evaluate(ws, "c", queries=str(qfile))
        assert ret.method == "namespace" and ret.retention is not None, ret
        assert ret.retention >= 0.95, ret
        hits = coll.search_many([d.text for d in docs[:5]], 3, route="adapter:v1x->v1")
        assert [h[0].id for h in hits] == [d.id for d in docs[:5]]
        assert {h.namespace for hs in hits for h in hs} == {self.row(ws, "v1").name}
