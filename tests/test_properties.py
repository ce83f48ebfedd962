"""Property-based: random interleavings of writes and migration steps against a plain
dict model of the collection (memory backend, small batches so backfills interleave)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import broken_models
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from vvcore import SPACES, active_label, assert_space_matches, config, contents, text_of

import vecver
from vecver.errors import (
    CandidateFailed,
    EmbedderError,
    NoPreviousSpace,
    NotAbortable,
    NotReady,
    StateError,
    UnknownSpace,
)
from vecver.ops.abort import abort
from vecver.store.sqlite import LIVE_STATES
from vecver.types import Document

IDS = [f"d{i:04d}" for i in range(14)]
LABELS = ["v1", "v2", "v3", "v4"]
#: v4's model breaks on a text holding broken_models.TRIGGER (see :meth:`poison`)
MACHINE_SPACES = {**SPACES, "v4": broken_models.space("raises")}
ids_st = st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True)
label_st = st.sampled_from(LABELS)


class Interrupted(Exception):
    pass


def _tmp_root() -> str:
    shm = Path("/dev/shm")
    return tempfile.mkdtemp(prefix="vv-prop-", dir=shm if shm.is_dir() else None)


class MigrationMachine(RuleBasedStateMachine):
    """The model: ``self.model`` {id: text} is what the collection holds. Every live
    space that finished its backfill must equal it; a space being built holds a subset
    of it, never a deleted document and never a stale text."""

    def __init__(self) -> None:
        super().__init__()
        self.root = _tmp_root()
        self.ws = vecver.open(config(Path(self.root), batch_size=3, spaces=MACHINE_SPACES),
                              progress=False)
        self.c = self.ws.collection("c")
        self.model: dict[str, str] = {}
        self.deleted: set[str] = set()
        self.version = 0

    def teardown(self) -> None:
        self.ws.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------

    def state(self, label: str) -> str | None:
        row = self.ws.manifest.namespace_for("c", label)
        return row.state if row is not None else None

    # -- rules -------------------------------------------------------------------------

    @initialize(ids=st.lists(st.sampled_from(IDS), min_size=0, max_size=12, unique=True))
    def ingest(self, ids: list[str]) -> None:
        if ids:
            self.upsert(ids)

    @rule(ids=ids_st)
    def upsert(self, ids: list[str]) -> None:
        self.version += 1
        docs = [Document(i, text_of(i, self.version)) for i in ids]
        res = self.c.upsert(docs)
        live = [n.space_label for n in self.ws.manifest.namespaces("c") if n.state in LIVE_STATES]
        assert sorted(res.spaces) == sorted(live)
        for d in docs:
            self.model[d.id] = d.text
            self.deleted.discard(d.id)

    @rule(ids=ids_st)
    def delete(self, ids: list[str]) -> None:
        self.c.delete(ids)
        for i in ids:
            if self.model.pop(i, None) is not None:
                self.deleted.add(i)

    @staticmethod
    def after_stop(label: str) -> tuple[str, ...]:
        """The states a backfill of ``label`` interrupted by ``on_batch`` may leave."""
        return ("building", "failed") if label == "v4" else ("building",)

    def labels_in(self, *wanted: str | None) -> list[str]:
        return [label for label in LABELS if self.state(label) in wanted]

    @precondition(lambda self: bool(self.labels_in(None, "building", "ready", "failed")))
    @rule(data=st.data())
    def start_migration(self, data: st.DataObject) -> None:
        label = data.draw(st.sampled_from(self.labels_in(None, "building", "ready", "failed")))
        before = self.state(label)
        try:
            row = vecver.start_migration(self.ws, "c", label)
        except CandidateFailed:  # resuming v4 re-embeds a poisoned document it holds
            assert label == "v4" and before == "failed" and self.state(label) == "failed"
            return
        assert row.state == ("building" if before in (None, "failed") else before)

    @rule(ids=ids_st)
    def poison(self, ids: list[str]) -> None:
        """Write documents v4's model cannot embed: a v4 being built (or ready) is marked
        failed and the write succeeds for the others; an active or retired v4 refuses the
        write whole."""
        self.version += 1
        docs = [Document(i, f"{text_of(i, self.version)} {broken_models.TRIGGER}") for i in ids]
        before = self.state("v4")
        if before in ("active", "retired"):
            with pytest.raises(EmbedderError):
                self.c.upsert(docs)
            return
        res = self.c.upsert(docs)
        assert res.failed == (["v4"] if before in ("building", "ready") else [])
        assert self.state("v4") == ("failed" if before in ("building", "ready") else before)
        for d in docs:
            self.model[d.id] = d.text
            self.deleted.discard(d.id)

    @precondition(lambda self: bool(self.labels_in("planned", "building", "ready", "failed")))
    @rule(data=st.data())
    def abort(self, data: st.DataObject) -> None:
        label = data.draw(st.sampled_from(self.labels_in("planned", "building", "ready",
                                                         "failed")))
        rep = abort(self.ws, "c", label)
        assert rep.space == label and self.state(label) == "dropped"
        row = self.ws.manifest.namespace_for("c", label)
        assert row is not None and row.name not in self.ws.backend.list_namespaces()
        with pytest.raises(NotAbortable):
            abort(self.ws, "c", label)

    @precondition(lambda self: bool(self.labels_in("building", "ready")))
    @rule(data=st.data(), stop_after=st.integers(min_value=0, max_value=4))
    def backfill(self, data: st.DataObject, stop_after: int) -> None:
        label = data.draw(st.sampled_from(self.labels_in("building", "ready")))
        before = self.state(label)
        calls = [0]

        def hook(rep: vecver.ops.backfill.BackfillReport) -> None:
            calls[0] += 1
            if calls[0] == stop_after:
                raise Interrupted()

        try:
            rep = vecver.backfill(self.ws, "c", space=label, on_batch=hook, progress=False)
        except Interrupted:
            # (the batch read ahead of the interrupted one may have broken v4's model)
            assert before == "building" and self.state(label) in self.after_stop(label)
            return
        except CandidateFailed:  # v4 met a poisoned document
            assert label == "v4" and self.state(label) == "failed"
            return
        except StateError as e:  # it was started from the export: not switched silently
            assert "was started from iterable:export" in str(e) and before == "building"
            return
        assert rep.state == "ready" == self.state(label), rep.verify
        assert_space_matches(self.ws, "c", label, self.model)

    @rule()
    def export(self) -> None:
        """Snapshot the collection, like a dump of the user's own database that later
        backfills read from (it goes stale as the collection changes)."""
        self.exported = dict(self.model)

    @precondition(lambda self: bool(self.labels_in("building", "ready")))
    @rule(data=st.data(), stop_after=st.integers(min_value=0, max_value=4))
    def backfill_from_export(self, data: st.DataObject, stop_after: int) -> None:
        label = data.draw(st.sampled_from(self.labels_in("building", "ready")))
        before = self.state(label)
        rows = [{"id": i, "text": t} for i, t in sorted(getattr(self, "exported", {}).items())]
        calls = [0]

        def hook(rep: vecver.ops.backfill.BackfillReport) -> None:
            calls[0] += 1
            if calls[0] == stop_after:
                raise Interrupted()

        try:
            rep = vecver.backfill(self.ws, "c", space=label, on_batch=hook, progress=False,
                                  source=vecver.IterableSource(rows, name="export"))
        except Interrupted:
            assert before == "building" and self.state(label) in self.after_stop(label)
            return
        except CandidateFailed:  # v4 met a poisoned document
            assert label == "v4" and self.state(label) == "failed"
            return
        except StateError as e:
            assert "was started from" in str(e) and before == "building"
            return
        # the export may be stale: the active space is the truth, and the space ends
        # equal to it
        assert rep.state == "ready" == self.state(label), rep.verify
        assert_space_matches(self.ws, "c", label, self.model)

    @precondition(lambda self: bool(self.labels_in("ready")))
    @rule(data=st.data())
    def cutover(self, data: st.DataObject) -> None:
        label = data.draw(st.sampled_from(self.labels_in("ready")))
        prev = active_label(self.ws)
        rep = vecver.cutover(self.ws, "c", to=label, force=True)
        assert (rep.from_space, rep.to_space) == (prev, label)
        assert self.state(prev) == "retired" and active_label(self.ws) == label

    @precondition(lambda self: bool(self.labels_in("retired")))
    @rule()
    def rollback(self) -> None:
        prev = active_label(self.ws)
        retired = self.labels_in("retired")
        rep = vecver.rollback(self.ws, "c")
        assert rep.from_space == prev and rep.to_space in retired
        assert active_label(self.ws) == rep.to_space and self.state(prev) == "ready"

    @rule(label=label_st, op=st.sampled_from(["migrate", "backfill", "cutover", "rollback"]))
    def refused(self, label: str, op: str) -> None:
        """Operations the lifecycle refuses here fail with a typed error and change
        nothing."""
        before = {lb: self.state(lb) for lb in LABELS}
        st_ = before[label]
        if op == "migrate" and st_ in ("active", "retired"):
            with pytest.raises(StateError):
                vecver.start_migration(self.ws, "c", label)
        elif op == "backfill" and st_ in (None, "active", "retired"):
            with pytest.raises(UnknownSpace if st_ is None else StateError):
                vecver.backfill(self.ws, "c", space=label, progress=False)
        elif op == "cutover" and st_ != "ready":
            err = {None: UnknownSpace, "active": StateError}.get(st_, NotReady)
            with pytest.raises(err):
                vecver.cutover(self.ws, "c", to=label, force=True)
        elif op == "rollback" and not self.labels_in("retired"):
            with pytest.raises(NoPreviousSpace):
                vecver.rollback(self.ws, "c")
        else:
            return
        assert {lb: self.state(lb) for lb in LABELS} == before

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data())
    def search(self, data: st.DataObject) -> None:
        doc_id = data.draw(st.sampled_from(sorted(self.model)))
        hits = self.c.search(self.model[doc_id], k=3)
        label = active_label(self.ws)
        assert hits and hits[0].id == doc_id
        assert all(h.space == label and h.id in self.model for h in hits)

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def spaces_agree_with_the_model(self) -> None:
        rows = self.ws.manifest.namespaces("c")
        active = [n for n in rows if n.state == "active"]
        assert len(active) == 1
        assert active[0].name == self.ws.manifest.active_namespace("c")
        for n in rows:
            if n.state not in LIVE_STATES:
                continue
            # every document once, stamped with the namespace's own fingerprint, fresh;
            # finished spaces hold exactly the model, one being built a subset of it
            assert_space_matches(self.ws, "c", n.space_label, self.model,
                                 subset=n.state == "building")
            have = contents(self.ws, n.name)
            assert not (set(have) & self.deleted), "a deleted document was resurrected"
        assert self.ws.manifest.intents("c") == []


MigrationMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("VV_PROP_EXAMPLES", "60")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMigrationMachine = MigrationMachine.TestCase


@pytest.mark.parametrize("seed", range(3))
def test_backfill_interrupted_anywhere_ends_equal(fast_dir: Path, seed: int) -> None:
    """Interrupt the same backfill after every possible number of batches, with writes
    in between: it always ends ready and equal to the model."""
    import random

    rnd = random.Random(seed)
    with vecver.open(config(fast_dir), progress=False) as ws:
        c = ws.collection("c")
        model = {i: text_of(i, 0) for i in IDS}
        c.upsert([Document(i, t) for i, t in model.items()])
        vecver.start_migration(ws, "c", "v2")
        for n in range(1, 20):
            pick = rnd.sample(IDS, 2)
            if rnd.random() < 0.5:
                c.delete(pick)
                for i in pick:
                    model.pop(i, None)
            else:
                c.upsert([Document(i, text_of(i, n)) for i in pick])
                model.update({i: text_of(i, n) for i in pick})

            def stop(rep: vecver.ops.backfill.BackfillReport) -> None:
                raise Interrupted()

            try:
                rep = vecver.backfill(ws, "c", batch_size=2, on_batch=stop, progress=False)
            except Interrupted:
                assert_space_matches(ws, "c", "v2", model, subset=True)
                continue
            assert rep.state == "ready"
            break
        else:
            rep = vecver.backfill(ws, "c", batch_size=2, progress=False)
        assert rep.state == "ready"
        assert_space_matches(ws, "c", "v2", model)
        assert_space_matches(ws, "c", "v1", model)
