"""The one reconcile operation and the one "needs (re-)embedding" predicate.

``reconcile(ws, collection, ns, ids)`` makes a space agree with the active space (minus
tombstones) for ``ids``; ``needs_embedding(stored, truth, ns)`` is the single rule the
write path, the backfill and verify use to decide that a stored copy is missing or stale.
"""

from __future__ import annotations

import dataclasses

import pytest
from vvcore import assert_all_live_match, assert_verify_clean, contents, make_docs, model_of, ns_of

import vecver
from vecver.runtime import reconcile as rc
from vecver.runtime.collection import Collection
from vecver.types import Document, Record, Stamp


@pytest.fixture
def two(make_ws):
    """Collection ``c``: 12 documents in v1 (active) and in v2 (ready)."""
    ws = make_ws("memory")
    c = ws.collection("c")
    docs = make_docs(12)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    v2 = ws.manifest.namespace_for("c", "v2")
    assert v2 is not None
    return ws, c, v2, model_of(docs)


def _record(ws: vecver.Workspace, label: str, doc: Document) -> Record:
    row = ws.manifest.namespace_for("c", label)
    assert row is not None
    (rec,) = rc.records_for(ws, row, [doc])
    return rec


# ------------------------------------------------------------------- the predicate


def test_needs_embedding_is_true_for_each_kind_of_difference(two) -> None:
    ws, c, v2, _ = two
    doc = Document("d0001", "d0001 text", {"n": 1})
    truth = _record(ws, "v1", doc)
    good = _record(ws, "v2", doc)
    assert not rc.needs_embedding(good, truth, v2)
    assert not rc.needs_embedding(good, doc, v2)  # a source document works as the truth
    assert rc.needs_embedding(None, truth, v2)  # missing
    other_text = _record(ws, "v2", Document("d0001", "d0001 other", {"n": 1}))
    assert rc.needs_embedding(other_text, truth, v2)  # stale text
    assert rc.needs_embedding(other_text, doc, v2)
    other_meta = dataclasses.replace(good, metadata={"n": 2})
    assert rc.needs_embedding(other_meta, truth, v2)  # stale metadata
    assert rc.needs_embedding(other_meta, doc, v2)
    foreign = dataclasses.replace(good, stamp=dataclasses.replace(good.stamp,
                                                                  fingerprint=truth.stamp.fingerprint))
    assert rc.needs_embedding(foreign, truth, v2)  # another space's vector
    misfiled = dataclasses.replace(good, stamp=Stamp.now(v2.fingerprint, "d0002", doc.text))
    assert rc.needs_embedding(misfiled, truth, v2)  # another document's stamp


def test_one_predicate_is_used_by_the_write_path_the_backfill_and_verify() -> None:
    """The old checks (and their names) are gone; every module reaches the same one."""
    from vecver.ops import backfill, verify

    assert backfill.needs_embedding is rc.needs_embedding
    assert verify.needs_embedding is rc.needs_embedding
    for gone in ("sync", "converge", "_settle", "_records", "_write"):
        assert not hasattr(Collection, gone), gone
    assert not hasattr(backfill, "_after_write")
    assert "refreshed" not in backfill.BackfillReport("c", "v2", "ns", "src").to_dict()


# ------------------------------------------------------------------- reconcile


def test_reconcile_fixes_missing_stale_extra_and_tombstoned(two) -> None:
    ws, c, v2, model = two
    be = ws.backend
    # missing, stale text, stale metadata, present but absent from the active space
    be.delete(v2.name, ["d0001"])
    be.upsert(v2.name, [_record(ws, "v2", Document("d0002", "an old text", {"n": 2}))])
    be.upsert(v2.name, [_record(ws, "v2", Document("d0003", model["d0003"], {"n": 99}))])
    be.upsert(v2.name, [_record(ws, "v2", Document("zz", "never in v1"))])
    # tombstoned (a delete that reached the active space only)
    c_ids = ["d0004"]
    ws.manifest.begin_write("c", "delete", c_ids)
    be.delete(ns_of(ws, "c", "v1"), c_ids)
    del model["d0004"]
    fixed = rc.reconcile(ws, "c", v2, ["d0001", "d0002", "d0003", "zz", "d0004", "d0005"])
    assert fixed == 5
    assert rc.reconcile(ws, "c", v2, ["d0001", "d0002", "d0003", "zz", "d0004"]) == 0
    have = contents(ws, v2.name)
    assert set(have) == set(model)
    assert have["d0003"].metadata == {"n": 3, "odd": 1}
    assert_all_live_match(ws, "c", model)


def test_reconcile_of_the_active_space_applies_the_tombstones(two) -> None:
    ws, c, v2, model = two
    v1 = ws.manifest.namespace_for("c", "v1")
    assert v1 is not None
    ws.manifest.begin_write("c", "delete", ["d0007"])  # tombstone recorded, nothing deleted
    assert rc.reconcile(ws, "c", v1, ["d0007", "d0008"]) == 1
    assert "d0007" not in contents(ws, v1.name)
    assert rc.reconcile(ws, "c", v2, ["d0007"]) == 1
    del model["d0007"]
    assert_all_live_match(ws, "c", model)


def test_reconcile_told_what_was_written_does_not_read_it_back(two) -> None:
    """``written``: the caller's own copy is trusted for the first round (the backfill's
    per-batch check costs no extra read of the space being built)."""
    from vecver.testing.faults import FaultyBackend

    ws, c, v2, model = two
    doc = Document("d0009", "d0009 a newer text", {"n": 9})
    c.upsert([doc])  # both spaces hold the newer text
    model["d0009"] = doc.text
    stale = _record(ws, "v2", Document("d0009", "d0009 an outdated copy", {"n": 9}))
    ws.backend.upsert(v2.name, [stale])  # what a backfill batch just wrote
    faulty = FaultyBackend(ws.backend, close_inner=False)
    real = ws.backend_for
    ws.backend_for = lambda ns: faulty  # type: ignore[method-assign, assignment]
    try:
        assert rc.reconcile(ws, "c", v2, ["d0009"], written={"d0009": stale}) == 1
    finally:
        ws.backend_for = real  # type: ignore[method-assign]
    fetched = faulty.calls["fetch"]
    assert fetched == 2, faulty.calls  # the truth, twice (the fix is checked); v2 never
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


def test_recover_reports_what_it_reconciled(two) -> None:
    ws, c, v2, model = two
    intent = ws.manifest.begin_write("c", "upsert", ["d0010"])
    ws.manifest.fail_write(intent)
    ws.backend.delete(v2.name, ["d0010"])  # the write reached v1 only
    rep = ws.recover("c")
    assert (rep.intents, rep.documents, rep.failed) == (1, 1, [])
    assert rep.to_dict()["intents"] == 1
    assert ws.recover("c").intents == 0
    assert_all_live_match(ws, "c", model)
