"""The migration lifecycle end to end: ingest, migrate, verify, evaluate, cutover (gated),
rollback; states, alias history, event log; fingerprints; resume; sources; leases."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from vvcore import (
    SPACES,
    active_label,
    assert_all_live_match,
    assert_space_matches,
    assert_verify_clean,
    contents,
    foreign_owner,
    make_docs,
    model_of,
    ns_of,
    state_of,
    states,
)

import vecver
from vecver import command
from vecver.embedders import SpaceEmbedder
from vecver.errors import (
    GateFailed,
    LeaseHeld,
    NoPreviousSpace,
    NotEvaluated,
    NotReady,
    SpaceConflict,
    StateError,
)
from vecver.ops.evaluate import Judgment
from vecver.space import SpaceSpec


class Boom(Exception):
    """Raised from on_batch to interrupt a backfill."""


def interrupt_after(n: int):
    calls = [0]

    def hook(rep: vecver.ops.backfill.BackfillReport) -> None:
        calls[0] += 1
        if calls[0] >= n:
            raise Boom(f"interrupted after {n} batches")

    return hook


# ------------------------------------------------------------------------ the full cycle


def test_full_lifecycle(make_ws, backend_name: str) -> None:
    ws = make_ws(backend_name)
    c = ws.collection("c")
    assert states(ws) == {"v1": "active"}
    docs = make_docs(60)
    res = c.upsert(docs)
    assert res.documents == 60 and res.spaces == ["v1"]
    model = model_of(docs)
    assert_space_matches(ws, "c", "v1", model)

    # migrate: building while the backfill runs, ready after
    seen: list[str | None] = []
    rep = vecver.migrate(ws, "c", "v2", batch_size=16, progress=False,
                         on_batch=lambda r: seen.append(state_of(ws, "c", "v2")))
    assert seen and set(seen) == {"building"}
    assert rep.state == "ready" and not rep.resumed
    assert rep.scanned == 60 and rep.written == 60 and rep.skipped == 0
    assert rep.verify is not None and rep.verify.clean
    assert states(ws) == {"v1": "active", "v2": "ready"}
    assert_all_live_match(ws, "c", model)

    # verify: clean in both spaces, every document accounted for
    reports = vecver.verify(ws, "c")
    assert [r.space for r in reports] == ["v1", "v2"]
    for r in reports:
        assert r.clean and r.expected == 60 and r.present == 60 and r.stored == 60

    # dual-write: a write now reaches both spaces
    extra = make_docs(5, start=60)
    assert c.upsert(extra).spaces == ["v1", "v2"]
    model.update(model_of(extra))
    assert_all_live_match(ws, "c", model)

    # evaluate, then the gated cutover
    ev = vecver.evaluate(ws, "c")
    assert {s.space: s.state for s in ev.spaces} == {"v1": "active", "v2": "ready"}
    for s in ev.spaces:
        assert s.documents == 65 and s.ann_recall is not None and s.ann_recall >= 0.9
    query = docs[7].text
    assert c.search(query, k=3)[0].space == "v1"
    cut = vecver.cutover(ws, "c")
    assert (cut.from_space, cut.to_space, cut.forced) == ("v1", "v2", False)
    assert cut.gate is not None and cut.gate.passed
    assert [(g.name, g.status) for g in cut.gate.checks if g.required] == [("ann_recall", "passed")]
    assert states(ws) == {"v1": "retired", "v2": "active"}
    hits = c.search(query, k=5)
    v2_fp = ws.space("v2").fingerprint
    assert hits and hits[0].id == docs[7].id
    assert all(h.space == "v2" and h.stamp is not None and h.stamp.fingerprint == v2_fp
               for h in hits)

    # the retired space keeps receiving writes, so a rollback is exact
    c.delete([docs[0].id])
    del model[docs[0].id]
    upd = make_docs(1, start=1, version=1)
    c.upsert(upd)
    model.update(model_of(upd))
    assert_all_live_match(ws, "c", model)

    rb = vecver.rollback(ws, "c")
    assert (rb.from_space, rb.to_space) == ("v2", "v1")
    assert states(ws) == {"v1": "active", "v2": "ready"}
    hits = c.search(query, k=5)
    v1_fp = ws.space("v1").fingerprint
    assert all(h.space == "v1" and h.stamp.fingerprint == v1_fp for h in hits)  # type: ignore[union-attr]
    assert docs[0].id not in {h.id for h in c.search(docs[0].text, k=65)}
    assert_all_live_match(ws, "c", model)
    with pytest.raises(NoPreviousSpace):
        vecver.rollback(ws, "c")

    # cutover again: v2 is ready (its evaluation still stands)
    again = vecver.cutover(ws, "c")
    assert (again.from_space, again.to_space) == ("v1", "v2")
    assert states(ws) == {"v1": "retired", "v2": "active"}
    assert c.search(query, k=1)[0].space == "v2"
    assert_verify_clean(ws)

    # alias history: every switch, in order, with its reason
    v1_ns, v2_ns = ns_of(ws, "c", "v1"), ns_of(ws, "c", "v2")
    hist = ws.manifest.alias_history("c")
    assert [(h["from"], h["to"], h["reason"]) for h in hist] == [
        (None, v1_ns, "create"),
        (v1_ns, v2_ns, "cutover"),
        (v2_ns, v1_ns, "rollback"),
        (v1_ns, v2_ns, "cutover"),
    ]
    assert all(h["actor"] and h["at"] > 0 for h in hist)

    # event log: the story of the collection, append-only and in order
    kinds = [e["kind"] for e in ws.manifest.events("c")]
    expected = ["collection.created", "namespace.added", "migration.started",
                "namespace.state", "backfill.finished", "evaluated", "alias.cutover",
                "alias.rollback", "alias.cutover"]
    it = iter(kinds)
    assert all(k in it for k in expected), kinds  # a subsequence, in this order
    ids = [e["id"] for e in ws.manifest.events()]
    assert ids == sorted(ids)
    state_events = [e["detail"] for e in ws.manifest.events("c") if e["kind"] == "namespace.state"]
    assert {"from_state": "building", "to_state": "ready", "namespace": v2_ns} in [
        {k: d[k] for k in ("from_state", "to_state", "namespace")} for d in state_events
    ]
    cut_events = [e for e in ws.manifest.events("c") if e["kind"] == "alias.cutover"]
    assert cut_events[0]["detail"]["from_namespace"] == v1_ns
    assert cut_events[0]["detail"]["to_namespace"] == v2_ns
    assert cut_events[0]["detail"]["forced"] is False
    spaces = [e["detail"]["label"] for e in ws.manifest.events() if e["kind"] == "space.registered"]
    assert sorted(spaces) == ["v1", "v2"]

    if backend_name == "local":  # status opens its own workspace: needs a persistent backend
        st = command.status(ws.config)
        (coll,) = st["collections"]
        assert coll["name"] == "c" and coll["active"] == "v2"
        assert {s["label"]: (s["state"], s["count"]) for s in coll["spaces"]} == {
            "v1": ("retired", 64), "v2": ("active", 64)}
        assert coll["tombstones"] == 1 and coll["pending_writes"] == 0


def test_migrate_to_same_fingerprint_is_refused(make_ws) -> None:
    spaces = dict(SPACES, v1copy=dict(SPACES["v1"]))
    ws = make_ws(spaces=spaces)
    c = ws.collection("c")
    c.upsert(make_docs(5))
    assert ws.space("v1copy").fingerprint == ws.space("v1").fingerprint
    with pytest.raises(StateError, match="same fingerprint"):
        vecver.migrate(ws, "c", "v1copy", progress=False)
    with pytest.raises(StateError, match="already the active"):
        vecver.migrate(ws, "c", "v1", progress=False)
    assert states(ws) == {"v1": "active"}
    assert len(ws.backend.list_namespaces()) == 1


def test_migrate_is_idempotent_and_ready_backfill_is_a_noop(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(10))
    vecver.migrate(ws, "c", "v2", progress=False)
    again = vecver.migrate(ws, "c", "v2", progress=False)
    assert again.state == "ready" and again.written == 0
    assert again.verify is not None and again.verify.clean
    assert states(ws) == {"v1": "active", "v2": "ready"}


# ------------------------------------------------------------------------ fingerprints


def _fp(label: str, **table: object) -> str:
    data = {"embedder": "hash", "dimension": 64}
    data.update(table)  # type: ignore[arg-type]
    return SpaceEmbedder.for_spec(SpaceSpec.from_mapping(label, data)).space.fingerprint


def test_fingerprint_ignores_the_label() -> None:
    assert _fp("v1") == _fp("renamed") == _fp("x.y-z_1")
    assert _fp("a", options={"seed": 3}) == _fp("b", options={"seed": 3})


@pytest.mark.parametrize(
    "change",
    [
        {"query_prefix": "query: "},
        {"document_prefix": "passage: "},
        {"max_length": 8},
        {"normalize": False},
        {"metric": "dot"},
        {"metric": "l2"},
        {"dimension": 32},
        {"options": {"seed": 1}},
        {"options": {"bigrams": True}},
        {"chunking": "sentences-v1"},
    ],
    ids=lambda c: next(iter(c)) + "=" + str(next(iter(c.values()))),
)
def test_fingerprint_changes_with_geometry(change: dict[str, object]) -> None:
    assert _fp("v1", **change) != _fp("v1")
    assert _fp("v1", **change) == _fp("other", **change)


def test_fingerprint_ignores_unknown_embedder_options() -> None:
    # options the embedder does not declare as geometry do not force a re-embed
    assert _fp("v1", options={"batch": 32}) == _fp("v1")


def test_changed_geometry_under_a_registered_label_is_a_conflict(fast_dir: Path) -> None:
    from vvcore import config

    with vecver.open(config(fast_dir)) as ws:
        c = ws.collection("c")
        c.upsert(make_docs(5))
        start = vecver.start_migration(ws, "c", "v2")
        assert start.state == "building"
    for label, change in (("v2", {"options": {"seed": 9}}), ("v1", {"query_prefix": "q: "})):
        spaces = {k: dict(v) for k, v in SPACES.items()}
        spaces[label].update(change)
        with vecver.open(config(fast_dir, spaces=spaces)) as ws:
            with pytest.raises(SpaceConflict) as err:
                ws.space(label)
            assert err.value.label == label
            assert "needs a new label" in str(err.value)
            if label == "v1":
                with pytest.raises(SpaceConflict):
                    ws.collection("c").search("alpha1", k=3)
            else:
                with pytest.raises(SpaceConflict):
                    vecver.backfill(ws, "c", progress=False)
                with pytest.raises(SpaceConflict):
                    ws.collection("c").upsert(make_docs(1, start=50))
    # the registered fingerprints are untouched
    with vecver.open(config(fast_dir)) as ws:
        assert ws.manifest.space("v2").fingerprint == ws.space("v2").fingerprint  # type: ignore[union-attr]


# ------------------------------------------------------------------------ resume


def test_interrupted_backfill_resumes(make_ws, backend_name: str) -> None:
    ws = make_ws(backend_name)
    c = ws.collection("c")
    docs = make_docs(100)
    c.upsert(docs)
    model = model_of(docs)
    with pytest.raises(Boom):
        vecver.migrate(ws, "c", "v2", batch_size=10, progress=False,
                       on_batch=interrupt_after(3))
    assert state_of(ws, "c", "v2") == "building"
    ck = ws.manifest.checkpoint(ns_of(ws, "c", "v2"))
    assert ck is not None and ck.done == 30 and not ck.finished
    partial = contents(ws, ns_of(ws, "c", "v2"))
    assert 30 <= len(partial) < 100
    assert_space_matches(ws, "c", "v2", model, subset=True)
    # the lease was released: the resume is not refused
    rep = vecver.backfill(ws, "c", batch_size=10, progress=False)
    assert rep.resumed and rep.state == "ready"
    assert rep.scanned == 70  # it went on from the checkpoint, not from the start
    assert rep.done == 100
    assert states(ws) == {"v1": "active", "v2": "ready"}
    assert_all_live_match(ws, "c", model)
    v1 = contents(ws, ns_of(ws, "c", "v1"))
    v2 = contents(ws, ns_of(ws, "c", "v2"))
    assert set(v1) == set(v2) == set(model)
    assert all(v2[i].stamp.source_hash == v1[i].stamp.source_hash for i in v1)
    assert_verify_clean(ws)


def test_interrupted_backfill_resumes_after_writes_in_between(ws) -> None:
    c = ws.collection("c")
    docs = make_docs(50)
    c.upsert(docs)
    model = model_of(docs)
    with pytest.raises(Boom):
        vecver.migrate(ws, "c", "v2", batch_size=10, progress=False,
                       on_batch=interrupt_after(2))
    # between the crash and the resume: deletes on both sides of the cursor, updates
    c.delete(["d0003", "d0044"])
    for i in ("d0003", "d0044"):
        del model[i]
    upd = [d for d in make_docs(50, version=2) if d.id in ("d0005", "d0040")]
    c.upsert(upd)
    model.update(model_of(upd))
    rep = vecver.backfill(ws, "c", batch_size=10, progress=False)
    assert rep.resumed and rep.state == "ready"
    assert_all_live_match(ws, "c", model)


def test_restart_starts_over(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(30))
    with pytest.raises(Boom):
        vecver.migrate(ws, "c", "v2", batch_size=10, progress=False,
                       on_batch=interrupt_after(1))
    rep = vecver.backfill(ws, "c", batch_size=10, progress=False, restart=True)
    assert not rep.resumed and rep.scanned == 30 and rep.skipped >= 10
    assert rep.state == "ready"


_CRASHER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {tests!r})
    import vecver
    from vvcore import config
    from pathlib import Path
    ws = vecver.open(config(Path({root!r}), "local"))
    calls = [0]
    def hook(rep):
        calls[0] += 1
        if calls[0] == 3:
            os._exit(17)  # a crash: no finally, no lease release
    vecver.migrate(ws, "c", "v2", batch_size=10, progress=False, on_batch=hook)
    """
)


def test_killed_backfill_process_is_resumed(make_ws, fast_dir: Path) -> None:
    root = fast_dir / "crash"
    root.mkdir()
    ws = make_ws("local", root=root)
    c = ws.collection("c")
    docs = make_docs(80)
    c.upsert(docs)
    code = _CRASHER.format(tests=str(Path(__file__).parent), root=str(root))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 17, proc.stderr
    assert state_of(ws, "c", "v2") == "building"
    # the dead process's lease is taken over, the checkpoint resumed
    rep = vecver.backfill(ws, "c", batch_size=10, progress=False)
    assert rep.resumed and rep.state == "ready" and rep.scanned == 50
    assert_all_live_match(ws, "c", model_of(docs))


# ------------------------------------------------------------------------ sources


def test_backfill_from_jsonl_source(ws, tmp_path: Path) -> None:
    c = ws.collection("c")
    docs = make_docs(40)
    c.upsert(docs)
    model = model_of(docs)
    path = tmp_path / "src.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d.id, "text": d.text, "metadata": dict(d.metadata)}) + "\n")
            if d.id == "d0010":
                f.write("\n")  # blank lines are ignored
    src = vecver.JsonlSource(path)
    with pytest.raises(Boom):
        vecver.migrate(ws, "c", "v2", source=src, batch_size=7, progress=False,
                       on_batch=interrupt_after(2))
    rep = vecver.backfill(ws, "c", source=vecver.JsonlSource(path), batch_size=7,
                          progress=False)
    assert rep.resumed and rep.source.startswith("jsonl:") and rep.state == "ready"
    assert rep.scanned == 40 - 14
    assert_all_live_match(ws, "c", model)
    v2 = contents(ws, ns_of(ws, "c", "v2"))
    assert v2["d0003"].metadata == {"n": 3, "odd": 1}


def test_backfill_from_a_different_source_is_refused_on_resume(ws, tmp_path: Path) -> None:
    c = ws.collection("c")
    docs = make_docs(20)
    c.upsert(docs)
    with pytest.raises(Boom):
        vecver.migrate(ws, "c", "v2", batch_size=5, progress=False,
                       on_batch=interrupt_after(1))
    with pytest.raises(StateError, match="started from"):
        vecver.backfill(ws, "c", source=vecver.IterableSource(docs), progress=False)


def test_backfill_from_jsonl_that_disagrees_with_the_active_space(ws, tmp_path: Path) -> None:
    """The file lacks some documents and has one the collection does not: the space
    still ends equal to the active space (the active space is the truth)."""
    c = ws.collection("c")
    docs = make_docs(30)
    c.upsert(docs)
    path = tmp_path / "src.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for d in docs[5:]:
            f.write(json.dumps({"id": d.id, "text": d.text}) + "\n")
        f.write(json.dumps({"id": "stranger", "text": "not in the collection"}) + "\n")
    rep = vecver.migrate(ws, "c", "v2", source=vecver.JsonlSource(path), progress=False)
    assert rep.state == "ready"
    assert_all_live_match(ws, "c", model_of(docs))


def test_backfill_from_iterable_source(make_ws, backend_name: str) -> None:
    ws = make_ws(backend_name)
    c = ws.collection("c")
    docs = make_docs(25)
    c.upsert(docs)
    c.delete(["d0002"])
    model = model_of(docs)
    del model["d0002"]
    rows = [{"id": d.id, "text": d.text, "metadata": dict(d.metadata)} for d in docs]
    src = vecver.IterableSource(rows, name="rows")
    rep = vecver.migrate(ws, "c", "v2", source=src, batch_size=4, progress=False)
    assert rep.source == "iterable:rows" and rep.state == "ready"
    # the deleted document in the source is not resurrected
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


# ------------------------------------------------------------------------ leases


def test_concurrent_backfill_of_the_same_space_is_refused(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(20))
    row = vecver.start_migration(ws, "c", "v2")
    owner = foreign_owner()
    with ws.manifest.transaction() as db:
        db.execute("INSERT INTO leases VALUES (?,?,?)",
                   (f"backfill:{row.name}", owner, time.time() + 300))
    with pytest.raises(LeaseHeld) as err:
        vecver.backfill(ws, "c", progress=False)
    assert err.value.owner == owner and owner in str(err.value)
    with pytest.raises(LeaseHeld):
        vecver.migrate(ws, "c", "v2", progress=False)
    assert ws.backend.count(row.name) == 0  # nothing was written by the refused runs
    assert ws.manifest.checkpoint(row.name) is None
    # the holder's lease is untouched
    rows = ws.manifest._query("SELECT owner FROM leases WHERE name=?", (f"backfill:{row.name}",))
    assert rows == [(owner,)]


def test_lease_of_a_live_process_blocks_then_is_released(ws, tmp_path: Path) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(10))
    row = vecver.start_migration(ws, "c", "v2")
    ready = tmp_path / "ready"
    code = textwrap.dedent(f"""
        import sys, time, pathlib
        from vecver.store.sqlite import Manifest
        m = Manifest({ws.config.manifest_path!r})
        assert m.acquire_lease({"backfill:" + row.name!r}) is None
        pathlib.Path({str(ready)!r}).write_text("x")
        sys.stdin.read()
        m.release_lease({"backfill:" + row.name!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not ready.exists():
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.05)
        with pytest.raises(LeaseHeld, match=str(proc.pid)):
            vecver.backfill(ws, "c", progress=False)
    finally:
        proc.communicate("", timeout=60)
    assert proc.returncode == 0
    assert vecver.backfill(ws, "c", progress=False).state == "ready"


# ------------------------------------------------------------------------ the gate


def test_cutover_before_evaluate_is_refused(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(20))
    vecver.migrate(ws, "c", "v2", progress=False)
    with pytest.raises(NotEvaluated) as err:
        vecver.cutover(ws, "c")
    assert err.value.label == "v2" and "evaluate" in str(err.value)
    assert states(ws) == {"v1": "active", "v2": "ready"}
    forced = vecver.cutover(ws, "c", force=True)
    assert forced.forced and states(ws) == {"v1": "retired", "v2": "active"}
    assert ws.manifest.events("c")[-1]["detail"]["forced"] is True


def test_an_evaluation_from_before_ready_does_not_count(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(30))
    with pytest.raises(Boom):
        vecver.migrate(ws, "c", "v2", batch_size=10, progress=False,
                       on_batch=interrupt_after(1))
    ev = vecver.evaluate(ws, "c")
    assert {s.space: s.state for s in ev.spaces} == {"v1": "active", "v2": "building"}
    with pytest.raises(NotReady):
        vecver.cutover(ws, "c")
    assert vecver.backfill(ws, "c", progress=False).state == "ready"
    with pytest.raises(NotEvaluated):
        vecver.cutover(ws, "c")


def test_gate_that_cannot_pass(make_ws) -> None:
    ws = make_ws(gate={"min_ann_recall": 1.1})
    c = ws.collection("c")
    c.upsert(make_docs(30))
    vecver.migrate(ws, "c", "v2", progress=False)
    vecver.evaluate(ws, "c")
    with pytest.raises(GateFailed) as err:
        vecver.cutover(ws, "c")
    assert err.value.label == "v2"
    assert any("ANN recall" in r and "1.1" in r for r in err.value.reasons)
    assert "--force" in str(err.value)
    assert states(ws) == {"v1": "active", "v2": "ready"}
    refused = [e for e in ws.manifest.events("c") if e["kind"] == "cutover.refused"]
    assert len(refused) == 1 and refused[0]["detail"]["space"] == "v2"
    assert c.search("alpha3", k=1)[0].space == "v1"
    rep = vecver.cutover(ws, "c", force=True)
    assert rep.forced and rep.to_space == "v2"
    assert c.search("alpha3", k=1)[0].space == "v2"


def _judgments(n: int) -> list[Judgment]:
    return [Judgment(f"alpha{i} beta{i} gamma{i}", frozenset({f"d{i:04d}"})) for i in range(n)]


def test_relevance_gate_refuses_a_worse_space(make_ws, tmp_path: Path) -> None:
    spaces = dict(SPACES, tiny={"embedder": "hash", "dimension": 4, "options": {"seed": 1}})
    ws = make_ws(spaces=spaces, gate={"min_ann_recall": 0.0, "metric": "mrr",
                                      "max_regression": 0.02})
    c = ws.collection("c")
    c.upsert(make_docs(80))
    vecver.migrate(ws, "c", "tiny", progress=False)
    path = tmp_path / "judged.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for j in _judgments(40):
            f.write(json.dumps({"query": j.query, "relevant": sorted(j.relevant)}) + "\n")
    ev = vecver.evaluate(ws, "c", queries=str(path))
    by = {s.space: s for s in ev.spaces}
    assert by["v1"].relevance is not None and by["tiny"].relevance is not None
    assert by["v1"].relevance["mrr"] > by["tiny"].relevance["mrr"] + 0.1
    assert by["tiny"].overlap_with_active is not None
    with pytest.raises(GateFailed) as err:
        vecver.cutover(ws, "c")
    assert any(r.startswith("mrr") and "below the active" in r for r in err.value.reasons)
    assert active_label(ws) == "v1"


def test_relevance_gate_passes_an_equal_space(make_ws) -> None:
    ws = make_ws(gate={"min_ann_recall": 0.5, "metric": "ndcg"})
    c = ws.collection("c")
    c.upsert(make_docs(40))
    vecver.migrate(ws, "c", "v2", progress=False)
    vecver.evaluate(ws, "c", queries=_judgments(20))
    rep = vecver.cutover(ws, "c")
    assert rep.gate is not None and rep.gate.passed
    assert any(g.name == "relevance" and g.status == "passed" and g.detail.startswith("ndcg")
               for g in rep.gate.checks)


def test_cutover_to_a_building_space_is_refused(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(10))
    vecver.start_migration(ws, "c", "v2")
    for kw in ({}, {"to": "v2"}, {"to": "v2", "force": True}):
        with pytest.raises(NotReady) as err:
            vecver.cutover(ws, "c", **kw)  # type: ignore[arg-type]
        assert err.value.state == "building" and "backfill" in str(err.value)
    assert states(ws) == {"v1": "active", "v2": "building"}


def test_rollback_without_previous_space(ws) -> None:
    with pytest.raises(NoPreviousSpace) as err:
        vecver.rollback(ws, "c")
    assert err.value.collection == "c"
    assert active_label(ws) == "v1"
    assert [h["reason"] for h in ws.manifest.alias_history("c")] == ["create"]


def test_three_spaces_cutover_chain_and_rollback(ws) -> None:
    c = ws.collection("c")
    docs = make_docs(20)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    vecver.cutover(ws, "c", force=True)
    vecver.migrate(ws, "c", "v3", progress=False)
    assert states(ws) == {"v1": "retired", "v2": "active", "v3": "ready"}
    vecver.cutover(ws, "c", force=True)
    assert states(ws) == {"v1": "retired", "v2": "retired", "v3": "active"}
    rb = vecver.rollback(ws, "c")
    assert rb.to_space == "v2"  # the space active right before
    assert states(ws) == {"v1": "retired", "v2": "active", "v3": "ready"}
    assert_all_live_match(ws, "c", model_of(docs))
    with pytest.raises(StateError, match="retired"):
        vecver.migrate(ws, "c", "v1", progress=False)


def test_status_counts_spaces(make_ws) -> None:
    # local only: status opens a workspace of its own, and memory is per process
    ws = make_ws("local")
    c = ws.collection("c")
    c.upsert(make_docs(12))
    with pytest.raises(Boom):
        vecver.migrate(ws, "c", "v2", batch_size=4, progress=False, on_batch=interrupt_after(1))
    st = command.status(ws.config)
    (coll,) = st["collections"]
    by = {s["label"]: s for s in coll["spaces"]}
    assert by["v1"]["state"] == "active" and by["v1"]["count"] == 12
    assert by["v2"]["state"] == "building" and by["v2"]["backfill"]["done"] == 4
    assert not by["v2"]["backfill"]["finished"]
    assert by["v2"]["fingerprint"] == ws.space("v2").fingerprint


def test_nested_backfill_of_the_same_space_is_refused(ws) -> None:
    """The lease is per run, not per process: a second backfill of the same space from
    the same process (another thread, or a callback) is refused too."""
    c = ws.collection("c")
    c.upsert(make_docs(30))
    inner: list[BaseException] = []

    def hook(rep: vecver.ops.backfill.BackfillReport) -> None:
        if not inner:
            try:
                vecver.backfill(ws, "c", batch_size=5, progress=False)
            except LeaseHeld as e:
                inner.append(e)
            else:
                inner.append(AssertionError("a second backfill ran"))

    rep = vecver.migrate(ws, "c", "v2", batch_size=5, progress=False, on_batch=hook)
    assert len(inner) == 1 and isinstance(inner[0], LeaseHeld), inner
    assert rep.state == "ready"
    # released at the end: the next run is not refused
    assert vecver.backfill(ws, "c", space="v2", progress=False).state == "ready"
    assert ws.manifest._query("SELECT count(*) FROM leases") == [(0,)]


def test_concurrent_backfill_threads_one_runs(ws) -> None:
    import threading

    c = ws.collection("c")
    c.upsert(make_docs(40))
    vecver.start_migration(ws, "c", "v2")
    barrier = threading.Barrier(2)
    results: list[object] = []

    def run() -> None:
        try:
            barrier.wait(10)
            results.append(vecver.backfill(ws, "c", batch_size=4, progress=False,
                                           on_batch=lambda r: time.sleep(0.005)))
        except LeaseHeld as e:
            results.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["BackfillReport", "LeaseHeld"], results
    assert_all_live_match(ws, "c", model_of(make_docs(40)))


def test_backfill_event_records_its_duration(ws) -> None:
    ws.collection("c").upsert(make_docs(20))
    rep = vecver.migrate(ws, "c", "v2", batch_size=5, progress=False,
                         on_batch=lambda r: time.sleep(0.01))
    (ev,) = [e for e in ws.manifest.events("c") if e["kind"] == "backfill.finished"]
    assert ev["detail"]["scanned"] == 20 and ev["detail"]["written"] == 20
    assert ev["detail"]["seconds"] > 0 and rep.seconds >= ev["detail"]["seconds"]


def test_relevance_gate_needs_a_baseline(make_ws) -> None:
    """Judgments evaluated on the candidate alone cannot pass the relevance gate: there
    is nothing to compare with."""
    spaces = dict(SPACES, tiny={"embedder": "hash", "dimension": 4, "options": {"seed": 1}})
    ws = make_ws(spaces=spaces, gate={"min_ann_recall": 0.0})
    c = ws.collection("c")
    c.upsert(make_docs(60))
    vecver.migrate(ws, "c", "tiny", progress=False)
    vecver.evaluate(ws, "c", queries=_judgments(30), spaces=["tiny"])
    with pytest.raises(GateFailed) as err:
        vecver.cutover(ws, "c")
    assert any("active" in r and "mrr" in r for r in err.value.reasons), err.value.reasons
    # evaluated together, the comparison is made (and this space is worse)
    vecver.evaluate(ws, "c", queries=_judgments(30))
    with pytest.raises(GateFailed, match="below the active"):
        vecver.cutover(ws, "c")


def test_first_use_of_a_declared_collection_from_many_threads(make_ws) -> None:
    import threading

    ws = make_ws()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def use() -> None:
        try:
            barrier.wait(10)
            ws.collection("c").upsert(make_docs(2))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    orig = ws.manifest.has_collection
    seen = threading.Barrier(6)

    def slow_has_collection(name: str) -> bool:  # widen the check-then-create window
        got = orig(name)
        if not got:
            with contextlib.suppress(threading.BrokenBarrierError):
                seen.wait(2)
        return got

    ws.manifest.has_collection = slow_has_collection  # type: ignore[method-assign]
    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert states(ws) == {"v1": "active"}
    assert [h["reason"] for h in ws.manifest.alias_history("c")] == ["create"]


def _export(path: Path, docs: list) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d.id, "text": d.text, "metadata": dict(d.metadata)}) + "\n")


def test_backfill_from_an_outdated_export_ends_equal_to_the_active_space(ws,
                                                                          tmp_path: Path) -> None:
    """The file was exported before some updates: the active space is the truth, the
    space ends with the newest text (not the file's), and verify agrees it is clean."""
    c = ws.collection("c")
    docs = make_docs(30)
    c.upsert(docs)
    path = tmp_path / "export.jsonl"
    _export(path, docs)
    newer = make_docs(3, start=10, version=1)
    c.upsert(newer)
    model = model_of(docs)
    model.update(model_of(newer))
    rep = vecver.migrate(ws, "c", "v2", source=vecver.JsonlSource(path), batch_size=8,
                         progress=False)
    assert rep.state == "ready"
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_updates_during_a_backfill_from_an_external_source_win(ws, tmp_path: Path) -> None:
    c = ws.collection("c")
    docs = make_docs(40)
    c.upsert(docs)
    path = tmp_path / "export.jsonl"
    _export(path, docs)
    model = model_of(docs)
    calls = [0]

    def hook(rep: vecver.ops.backfill.BackfillReport) -> None:
        calls[0] += 1
        if calls[0] == 1:  # documents the file will deliver later, with their old text
            upd = make_docs(3, start=30, version=4)
            c.upsert(upd)
            model.update(model_of(upd))
            c.delete(["d0035"])
            model.pop("d0035")

    rep = vecver.migrate(ws, "c", "v2", source=vecver.JsonlSource(path), batch_size=8,
                         progress=False, on_batch=hook)
    assert rep.state == "ready"
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_interrupted_backfill_resumes_after_the_active_space_changed(ws) -> None:
    c = ws.collection("c")
    docs = make_docs(30)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    with pytest.raises(Boom):
        vecver.migrate(ws, "c", "v3", batch_size=5, progress=False,
                       on_batch=interrupt_after(2))
    vecver.cutover(ws, "c", to="v2", force=True)  # the default source is now v2
    c.delete(["d0001"])
    rep = vecver.backfill(ws, "c", progress=False)
    assert rep.state == "ready" and rep.space == "v3"
    assert rep.skipped >= 9  # what the first run wrote (less d0001) is not embedded again
    model = model_of(docs)
    del model["d0001"]
    assert_all_live_match(ws, "c", model)


def test_every_read_path_names_the_space_that_served_it(ws) -> None:
    c = ws.collection("c")
    docs = make_docs(20)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    for label in ("v1", "v2"):
        ns = ns_of(ws, "c", label)
        q = ws.embedder(label).embed_queries([docs[3].text])
        (hits,) = c.search_vectors(q, 3, space=label)
        assert hits[0].id == docs[3].id
        assert {(h.space, h.namespace) for h in hits} == {(label, ns)}
        (hits,) = c.search_many([docs[3].text], 3, route=f"space:{label}")
        assert {(h.space, h.namespace) for h in hits} == {(label, ns)}
    hits = c.search(docs[3].text, 3, route="candidate")
    assert {h.space for h in hits} == {"v2"}


def test_lifecycle_of_an_empty_collection(ws) -> None:
    rep = vecver.migrate(ws, "c", "v2", progress=False)
    assert rep.state == "ready" and rep.scanned == 0
    ev = vecver.evaluate(ws, "c")
    assert all(s.documents == 0 for s in ev.spaces)
    cut = vecver.cutover(ws, "c")  # nothing to measure, nothing to lose
    assert cut.to_space == "v2" and cut.gate is not None and cut.gate.passed, cut.gate
    assert all(g.status == "passed" for g in cut.gate.checks if g.required), cut.gate
    assert vecver.rollback(ws, "c").to_space == "v1"
    ws.collection("c").upsert(make_docs(3))
    assert_all_live_match(ws, "c", model_of(make_docs(3)))


def test_a_migration_is_planned_before_its_namespace_exists(tmp_path: Path) -> None:
    """A crash between recording the migration and creating the backend namespace leaves
    it `planned`; the next migrate picks it up (planned -> building -> ready)."""
    import vecver as _v

    cfg = _v.Config.from_mapping(
        {
            "manifest": {"path": "m.db"},
            "backend": {"name": "local", "path": "vec"},
            "spaces": {
                "v1": {"embedder": "hash", "dimension": 16},
                "v2": {"embedder": "hash", "dimension": 16, "options": {"seed": 9}},
            },
            "collections": {"c": {"space": "v1"}},
        },
        base=tmp_path,
    )
    with _v.open(cfg) as ws:
        ws.collection("c").upsert([{"id": f"d{i}", "text": f"t {i}"} for i in range(30)])
        space = ws.space("v2")
        ns = ws.namespace_name("c", space, ws.backend)
        ws.manifest.add_namespace("c", "v2", space.fingerprint, ns, "planned")  # "crash"
        assert ns not in ws.backend.list_namespaces()
        assert ws.manifest.namespace(ns).state == "planned"  # type: ignore[union-attr]
        rep = _v.migrate(ws, "c", "v2", progress=False)
        assert rep.state == "ready" and rep.written == 30
        kinds = [e["detail"].get("to_state") for e in ws.manifest.events("c")
                 if e["kind"] == "namespace.state"]
        assert kinds[:2] == ["building", "ready"]
