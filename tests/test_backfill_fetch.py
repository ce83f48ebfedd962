"""The backfill asks the target what it holds only where that can save work: a fresh run
into an empty target with no write issued skips the per-page fetch; a write during the
run, a resumed run, or a target that holds documents already bring it back. Either way
the result is exact (the race check, not the fetch, guards concurrent writes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vecver.backends.base import Backend
from vecver.errors import BackendError
from vecver.ops.backfill import backfill, start_migration
from vecver.ops.verify import verify
from vecver.testing.faults import FaultyBackend
from vecver.testing.workflow import (
    WORKFLOW_SPACES,
    records_by_id,
    workflow_docs,
    workspace_factory_for,
)
from vecver.types import Document

N = 60
BATCH = 10


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    wrapped: dict[str, FaultyBackend] = {}

    def wrap(name: str, b: Backend) -> Backend:
        wrapped[name] = FaultyBackend(b)
        return wrapped[name]

    table = {"name": "local", "path": str(tmp_path / "local")}
    with workspace_factory_for(tmp_path, {"default": table}, wrap=wrap) as make:
        ws = make({"spaces": {k: dict(v) for k, v in WORKFLOW_SPACES.items()},
                   "collections": {"c": {"space": "v1"}},
                   "backfill": {"batch_size": BATCH}})  # fmt: skip
        ws.collection("c").upsert(workflow_docs(N))
        start_migration(ws, "c", "v2")
        row = ws.manifest.namespace_for("c", "v2")
        assert row is not None
        fetched: list[int] = []
        faulty = wrapped["default"]
        faulty.before("fetch", lambda call: fetched.append(len(call.args[0]))
                      if call.namespace == row.name else None)  # fmt: skip
        yield ws, faulty, row.name, fetched


def _exact(ws, faulty: FaultyBackend, name: str, ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert sorted(records_by_id(faulty.inner, name)) == sorted(ids)
    for r in verify(ws, "c"):
        assert r.clean, r.to_dict()


def test_a_fresh_run_into_an_empty_target_does_not_ask_it(setup) -> None:  # type: ignore[no-untyped-def]
    ws, faulty, name, fetched = setup
    during: list[int] = []
    rep = backfill(ws, "c", space="v2", on_batch=lambda r: during.append(sum(fetched)))
    assert rep.state == "ready" and rep.written == N
    assert during and during[-1] == 0, "the copy fetched from the empty target"
    _exact(ws, faulty, name, [d.id for d in workflow_docs(N)])


def test_a_write_during_the_run_brings_the_fetch_back(setup) -> None:  # type: ignore[no-untyped-def]
    ws, faulty, name, fetched = setup
    col = ws.collection("c")
    during: list[int] = []

    def on_batch(rep) -> None:  # type: ignore[no-untyped-def]
        during.append(sum(fetched))
        if len(during) == 2:  # a dual-write lands in the target mid-run
            col.upsert([Document("w000055", "a newer text of w000055", {"n": 55}),
                        Document("zz-new", "a document written during the backfill")])

    rep = backfill(ws, "c", space="v2", on_batch=on_batch)
    assert rep.state == "ready"
    assert during[1] == 0 and during[-1] > 0, during
    got = records_by_id(faulty.inner, name)
    assert got["w000055"].text == "a newer text of w000055"
    _exact(ws, faulty, name, [*(d.id for d in workflow_docs(N)), "zz-new"])


def test_a_resumed_run_asks_the_target(setup) -> None:  # type: ignore[no-untyped-def]
    ws, faulty, name, fetched = setup
    faulty.fail("upsert", nth=3, error="permanent", namespace=name)
    with pytest.raises(BackendError):
        backfill(ws, "c", space="v2")
    faulty.clear_faults()
    fetched.clear()
    during: list[int] = []
    rep = backfill(ws, "c", space="v2", on_batch=lambda r: during.append(sum(fetched)))
    assert rep.state == "ready" and rep.resumed
    assert during and during[0] > 0, "a resumed run must ask what is there already"
    _exact(ws, faulty, name, [d.id for d in workflow_docs(N)])


def test_a_target_holding_documents_is_asked(setup) -> None:  # type: ignore[no-untyped-def]
    ws, faulty, name, fetched = setup
    # the first page's documents are in the target already (as a lazy re-embed leaves
    # them): the run fetches, and skips re-embedding them
    first = workflow_docs(N)[:BATCH]
    from vecver.runtime.reconcile import reconcile

    reconcile(ws, "c", ws.manifest.namespace_for("c", "v2"), [d.id for d in first])
    fetched.clear()
    rep = backfill(ws, "c", space="v2")
    assert rep.state == "ready"
    assert sum(fetched) > 0
    assert rep.skipped >= BATCH
    _exact(ws, faulty, name, [d.id for d in workflow_docs(N)])

