"""A broken candidate model never takes production writes down.

A space being built (or ready) whose embedder breaks — another dimension, NaN or inf, an
exception, one row too few, a 1-D array — is marked ``failed``: it stops receiving
writes, the event is logged with the reason, and the write that hit it succeeds for the
active space (``WriteResult.failed`` says so). A broken *active* space still refuses the
write before anything is written; a refused first ingest creates nothing. ``abort``
abandons a migration and drops its namespace.

The models are ``tests/broken_models.py``: each breaks on a text holding ``POISON``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import broken_models
import pytest
from broken_models import BREAKAGES, TRIGGER
from vvcore import (
    SPACES,
    assert_all_live_match,
    assert_verify_clean,
    config,
    contents,
    make_docs,
    model_of,
    ns_of,
    snapshot,
    state_of,
    states,
)

import vecver
from vecver import command
from vecver.errors import (
    CandidateFailed,
    LeaseHeld,
    NotAbortable,
    SourceError,
    StateError,
    UnknownSpace,
)
from vecver.ops.abort import abort
from vecver.types import Document


def _spaces(bad: str) -> dict[str, dict[str, object]]:
    return {**SPACES, "bad": broken_models.space(bad)}


def _poison(doc_id: str = "p0001") -> Document:
    return Document(doc_id, f"{doc_id} {TRIGGER} pill", {"n": -1, "odd": 1})


@pytest.fixture
def bad_ws(make_ws, request: pytest.FixtureRequest):
    """A memory workspace whose collection ``c`` (v1) holds 20 documents, with a space
    ``bad`` whose model breaks the way ``request.param`` names."""
    ws = make_ws("memory", spaces=_spaces(request.param))
    c = ws.collection("c")
    docs = make_docs(20)
    c.upsert(docs)
    return ws, c, model_of(docs)


@pytest.fixture
def faulty_ws(fast_dir: Path):
    """A workspace (collection ``c`` in v1) on a FaultyBackend over the memory backend."""
    from vecver.backends.memory import MemoryBackend
    from vecver.testing.faults import FaultyBackend

    be = FaultyBackend(MemoryBackend())
    ws = vecver.Workspace(config(fast_dir), backend=be, progress=False)
    yield ws, be
    ws.close()


def _failed_events(ws: vecver.Workspace, label: str) -> list[dict[str, object]]:
    return [e for e in ws.manifest.events("c")
            if e["kind"] == "migration.failed" and e["detail"].get("space") == label]


# ------------------------------------------------------------------- a broken migration


@pytest.mark.parametrize("bad_ws", BREAKAGES, indirect=True)
def test_a_migration_whose_model_breaks_fails_cleanly(bad_ws) -> None:
    """The backfill meets a document the new model cannot embed: migrate raises
    ``CandidateFailed``, the space is ``failed`` with the reason, and every later write
    (upsert, delete, backfill, verify --repair) goes on for the active space."""
    ws, c, model = bad_ws
    c.upsert([_poison()])
    model.update(model_of([_poison()]))
    with pytest.raises(CandidateFailed) as err:
        vecver.migrate(ws, "c", "bad", batch_size=8, progress=False)
    assert err.value.space == "bad" and err.value.collection == "c"
    assert "abort" in str(err.value) and "migrate c --to bad" in str(err.value)
    row = ws.manifest.namespace_for("c", "bad")
    assert row is not None and row.state == "failed" and row.reason
    assert _failed_events(ws, "bad"), ws.manifest.events("c")
    # production writes go on
    new = make_docs(3, start=200)
    res = c.upsert(new)
    assert res.spaces == ["v1"] and res.failed == []
    model.update(model_of(new))
    c.delete(["d0001"])
    del model["d0001"]
    assert_all_live_match(ws, "c", model)
    (v1,) = vecver.verify(ws, "c", repair=True)
    assert v1.space == "v1" and v1.clean
    with pytest.raises(StateError, match="failed: bad"):
        vecver.backfill(ws, "c", progress=False)
    with pytest.raises(StateError, match="failed"):
        vecver.backfill(ws, "c", space="bad", progress=False)
    assert states(ws) == {"v1": "active", "bad": "failed"}


@pytest.mark.parametrize("bad_ws", BREAKAGES, indirect=True)
def test_a_candidate_breaking_on_a_dual_write_is_marked_failed(bad_ws, caplog) -> None:
    """The migration went well; a later production write holds what the new model cannot
    embed: the write succeeds for the active space and says which space failed."""
    ws, c, model = bad_ws
    rep = vecver.migrate(ws, "c", "bad", progress=False)
    assert rep.state == "ready"
    before_bad = contents(ws, ns_of(ws, "c", "bad"))
    with caplog.at_level(logging.WARNING, logger="vecver"):
        res = c.upsert([_poison(), *make_docs(2, start=300)])
    assert res.spaces == ["v1"], res
    assert res.failed == ["bad"] and TRIGGER not in res.reasons["bad"]
    assert res.reasons["bad"].split(":")[0] in ("EmbedderError", "DimensionMismatch",
                                                "NonFiniteVector")
    assert res.to_dict()["failed"] == ["bad"]
    assert any("stopped receiving writes" in r.getMessage() for r in caplog.records)
    model.update(model_of([_poison(), *make_docs(2, start=300)]))
    assert state_of(ws, "c", "bad") == "failed"
    assert contents(ws, ns_of(ws, "c", "bad")).keys() == before_bad.keys()  # nothing half-written
    assert ws.manifest.intents("c") == []
    assert_all_live_match(ws, "c", model)
    # the next writes do not touch it at all
    res = c.upsert(make_docs(1, start=400))
    assert res.spaces == ["v1"] and res.failed == []
    assert_verify_clean(ws)


@pytest.mark.parametrize("bad_ws", ["raises"], indirect=True)
def test_a_failing_active_space_still_refuses_the_write_whole(bad_ws, make_ws) -> None:
    ws = make_ws("memory", spaces=_spaces("raises"), collections={"c": "bad"})
    c = ws.collection("c")
    c.upsert(make_docs(5))
    vecver.start_migration(ws, "c", "v2")
    before = snapshot(ws)
    with pytest.raises(vecver.errors.EmbedderError):
        c.upsert([*make_docs(2, start=50), _poison()])
    assert snapshot(ws) == before
    assert ws.manifest.intents("c") == []
    assert states(ws) == {"bad": "active", "v2": "building"}


def test_space_becoming_live_mid_write_with_a_failing_embedder(faulty_ws, monkeypatch) -> None:
    """A space that becomes live while a write is under way is written too; when its
    embedder breaks, it is marked failed and the write completes for the others (the
    former behaviour, WriteFailed, took production writes down)."""
    ws, be = faulty_ws
    c = ws.collection("c")
    docs = make_docs(10)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    started = [False]

    def start_v3(call: object) -> None:
        if "__v1_" in str(getattr(call, "namespace", "")) and not started[0]:
            started[0] = True
            vecver.start_migration(ws, "c", "v3")  # v3 is live from now on
            emb = ws.embedder("v3")

            def broken(texts: object) -> object:
                raise RuntimeError("model crashed")

            monkeypatch.setattr(emb.embedder, "embed", broken)

    be.after("upsert", lambda call, _: start_v3(call))
    new = make_docs(2, start=40)
    res = c.upsert(new)
    assert started[0]
    assert res.spaces == ["v1", "v2"] and res.failed == ["v3"]
    assert states(ws) == {"v1": "active", "v2": "ready", "v3": "failed"}
    assert ws.manifest.intents("c") == []
    assert_all_live_match(ws, "c", {**model_of(docs), **model_of(new)})


@pytest.mark.parametrize("bad_ws", ["nan_values"], indirect=True)
def test_a_repair_that_breaks_the_candidate_reports_it(bad_ws) -> None:
    """``verify --repair`` re-embeds into a space being built: a broken model there is
    reported (the space is marked failed), the active space is still verified."""
    ws, c, model = bad_ws
    vecver.start_migration(ws, "c", "bad")  # building, nothing copied yet
    c.upsert([_poison()])  # dual-written: the candidate fails here already ...
    assert state_of(ws, "c", "bad") == "failed"
    ws.manifest.set_state(ns_of(ws, "c", "bad"), "building", expect=["failed"])
    # ... so make it building again with the poison only in the active space
    reps = {r.space: r for r in vecver.verify(ws, "c", repair=True)}
    assert reps["v1"].clean
    assert reps["bad"].state == "failed" and reps["bad"].failed and not reps["bad"].clean
    assert reps["bad"].to_dict()["failed"] == reps["bad"].failed
    assert state_of(ws, "c", "bad") == "failed"
    c.upsert(make_docs(1, start=90))  # writes go on


@pytest.mark.parametrize("bad_ws", ["one_row_short"], indirect=True)
def test_a_failed_migration_resumes_once_fixed(bad_ws) -> None:
    """failed -> building: the model is "fixed" (the poison document is gone), migrate
    again resumes it, and what was written meanwhile is reconciled: it ends ready and
    equal to the active space."""
    ws, c, model = bad_ws
    c.upsert([_poison()])
    with pytest.raises(CandidateFailed):
        vecver.migrate(ws, "c", "bad", batch_size=4, progress=False)
    # written while the space was failed: an update, an insert, a delete
    upd = [Document("d0003", "d0003 changed while failed", {"n": 3, "odd": 1})]
    c.upsert([*upd, *make_docs(2, start=500)])
    c.delete(["d0004", _poison().id])
    model.update(model_of([*upd, *make_docs(2, start=500)]))
    del model["d0004"]
    rep = vecver.migrate(ws, "c", "bad", batch_size=4, progress=False)
    assert rep.state == "ready", rep.verify.to_dict() if rep.verify else rep
    assert any(e["kind"] == "migration.resumed" for e in ws.manifest.events("c"))
    assert_all_live_match(ws, "c", model)
    assert_verify_clean(ws)


# ------------------------------------------------------------------- sources and ingest


def test_migrate_from_a_malformed_source_creates_nothing(ws, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n', encoding="utf-8")
    before = snapshot(ws)
    with pytest.raises(SourceError, match="has no 'text'"):
        vecver.migrate(ws, "c", "v2", source=vecver.JsonlSource(path), progress=False)
    assert ws.manifest.namespace_for("c", "v2") is None
    assert snapshot(ws) == before
    res = ws.collection("c").upsert(make_docs(2))
    assert res.spaces == ["v1"]


def test_a_refused_first_ingest_creates_nothing(fast_dir: Path, tmp_path: Path) -> None:
    """A first ingest into a new collection in a broken space is refused before the
    collection exists; retrying with a good space then works."""
    cfg = config(fast_dir, "local", spaces=_spaces("wrong_dimension"), collections={})
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(
        f'{{"id": "x{i}", "text": "doc {i} {TRIGGER if i == 1 else ""}"}}\n' for i in range(5)
    ), encoding="utf-8")
    with pytest.raises(vecver.errors.DimensionMismatch):
        command.ingest(cfg, "fresh", str(path), space="bad")
    with vecver.open(cfg) as ws:
        assert not ws.manifest.has_collection("fresh")
        assert ws.manifest.space("bad") is None  # not even registered
        assert ws.backend.list_namespaces() == []
    res = command.ingest(cfg, "fresh", str(path), space="v1")
    assert getattr(res, "documents", None) == 5 or res["documents"] == 5  # type: ignore[index]
    with vecver.open(cfg) as ws:
        row = ws.manifest.namespace(ws.manifest.active_namespace("fresh"))
        assert row is not None and row.space_label == "v1"
        assert ws.collection("fresh").count() == 5


# ------------------------------------------------------------------- abort


@pytest.mark.parametrize("bad_ws", ["raises"], indirect=True)
def test_abort_a_failed_migration(bad_ws) -> None:
    ws, c, model = bad_ws
    c.upsert([_poison()])
    model.update(model_of([_poison()]))
    with pytest.raises(CandidateFailed):
        vecver.migrate(ws, "c", "bad", batch_size=4, progress=False)
    name = ns_of(ws, "c", "bad")
    assert ws.manifest.checkpoint(name) is not None
    rep = abort(ws, "c")
    assert (rep.space, rep.from_state, rep.namespace) == ("bad", "failed", name)
    assert rep.dropped_namespace and rep.cleared_checkpoint
    assert rep.to_dict()["from_state"] == "failed"
    assert state_of(ws, "c", "bad") == "dropped"
    assert name not in ws.backend.list_namespaces()
    assert ws.manifest.checkpoint(name) is None
    assert any(e["kind"] == "migration.aborted" for e in ws.manifest.events("c"))
    c.upsert(make_docs(1, start=70))
    model.update(model_of(make_docs(1, start=70)))
    assert_all_live_match(ws, "c", model)


@pytest.mark.parametrize("label_state", ["building", "ready"])
def test_abort_a_migration_in_progress(ws, label_state: str) -> None:
    c = ws.collection("c")
    docs = make_docs(12)
    c.upsert(docs)
    if label_state == "ready":
        vecver.migrate(ws, "c", "v2", progress=False)
    else:
        vecver.start_migration(ws, "c", "v2")
    name = ns_of(ws, "c", "v2")
    assert name in ws.backend.list_namespaces()
    rep = abort(ws, "c", "v2")
    assert rep.from_state == label_state and rep.dropped_namespace
    assert name not in ws.backend.list_namespaces()
    # writes no longer go there, and nothing fails because the namespace is gone
    res = c.upsert(make_docs(2, start=40))
    assert res.spaces == ["v1"]
    with pytest.raises(NotAbortable, match="has no migration in progress"):
        abort(ws, "c")
    with pytest.raises(NotAbortable, match="nothing is left"):
        abort(ws, "c", "v2")
    assert_all_live_match(ws, "c", {**model_of(docs), **model_of(make_docs(2, start=40))})


def test_an_aborted_migration_can_be_started_again(ws) -> None:
    """Abort, keep writing, then migrate to the same space again: it is planned anew
    (same name, same instance), backfilled from scratch and ends ready and clean."""
    c = ws.collection("c")
    docs = make_docs(12)
    c.upsert(docs)
    vecver.start_migration(ws, "c", "v2")
    c.upsert(make_docs(3, start=20))
    abort(ws, "c", "v2")
    c.upsert(make_docs(2, start=40))
    c.delete([docs[0].id])
    rep = vecver.migrate(ws, "c", "v2", progress=False)
    assert rep.state == "ready" and rep.verify is not None and rep.verify.clean
    row = ws.manifest.namespace_for("c", "v2")
    assert row is not None and row.state == "ready" and row.reason is None
    assert ws.backend.count(row.name) == 12 - 1 + 3 + 2
    kinds = [e["kind"] for e in ws.manifest.events("c")]
    assert "namespace.replanned" in kinds
    # a space that is not dropped is not "planned again"
    with pytest.raises(vecver.errors.StateError, match="not dropped"):
        ws.manifest.replan_namespace("c", "v2", row.fingerprint, row.name)


def test_abort_is_refused_for_the_active_and_a_retired_space(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(6))
    vecver.migrate(ws, "c", "v2", progress=False)
    vecver.cutover(ws, "c", force=True)
    before = (states(ws), snapshot(ws))
    with pytest.raises(NotAbortable, match="is active") as err:
        abort(ws, "c", "v2")
    assert "cut over" in str(err.value)
    with pytest.raises(NotAbortable, match="is retired") as err:
        abort(ws, "c", "v1")
    assert "rollback" in str(err.value)
    with pytest.raises(UnknownSpace):
        abort(ws, "c", "v9")
    assert (states(ws), snapshot(ws)) == before


def test_abort_without_a_space_needs_a_single_candidate(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(4))
    vecver.start_migration(ws, "c", "v2")
    vecver.start_migration(ws, "c", "v3")
    with pytest.raises(StateError, match="several migrations"):
        abort(ws, "c")
    assert abort(ws, "c", "v3").space == "v3"
    assert abort(ws, "c").space == "v2"


def test_abort_waits_for_a_running_backfill(ws) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(30))
    seen: list[BaseException] = []

    def during(rep: object) -> None:
        if not seen:
            try:
                abort(ws, "c", "v2")
            except LeaseHeld as e:
                seen.append(e)

    rep = vecver.migrate(ws, "c", "v2", batch_size=5, progress=False, on_batch=during)
    assert seen and rep.state == "ready"
    assert abort(ws, "c", "v2").from_state == "ready"
