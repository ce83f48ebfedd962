"""The backfill keeps the objects alive at its start out of the collector's full
collections while it copies and verifies (``gc.freeze``), and always gives the heap back
as it found it: unfrozen after the run (also after a failure), an application's own
freeze left alone, nothing done with the switch off."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import vecver
import vecver.ops.backfill as backfill_mod
from vecver.errors import BackendError
from vecver.ops.backfill import backfill, start_migration
from vecver.testing.faults import FaultyBackend
from vecver.testing.workflow import WORKFLOW_SPACES, workflow_docs, workspace_factory_for

N = 30
BATCH = 10


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[vecver.Workspace, FaultyBackend]]:
    wrapped: list[FaultyBackend] = []

    def wrap(name: str, b: vecver.backends.base.Backend) -> FaultyBackend:
        wrapped.append(FaultyBackend(b))
        return wrapped[-1]

    table = {"name": "local", "path": str(tmp_path / "local")}
    assert gc.get_freeze_count() == 0
    with workspace_factory_for(tmp_path, {"default": table}, wrap=wrap) as make:
        ws = make({"spaces": {k: dict(v) for k, v in WORKFLOW_SPACES.items()},
                   "collections": {"c": {"space": "v1"}},
                   "backfill": {"batch_size": BATCH}})  # fmt: skip
        ws.collection("c").upsert(workflow_docs(N))
        start_migration(ws, "c", "v2")
        yield ws, wrapped[0]
    gc.unfreeze()  # whatever a failing test left


def test_frozen_during_the_copy_and_unfrozen_after(
    setup: tuple[vecver.Workspace, FaultyBackend],
) -> None:
    ws, _ = setup
    during: list[int] = []
    rep = backfill(ws, "c", space="v2", on_batch=lambda r: during.append(gc.get_freeze_count()))
    assert rep.state == "ready"
    assert during and min(during) > 0, during
    assert gc.get_freeze_count() == 0


def test_unfrozen_after_a_failure(setup: tuple[vecver.Workspace, FaultyBackend]) -> None:
    ws, faulty = setup
    row = ws.manifest.namespace_for("c", "v2")
    assert row is not None
    faulty.fail("upsert", nth=2, error="permanent", namespace=row.name)
    with pytest.raises(BackendError):
        backfill(ws, "c", space="v2")
    assert gc.get_freeze_count() == 0
    faulty.clear_faults()
    assert backfill(ws, "c", space="v2").state == "ready"


def test_an_application_freeze_is_left_alone(
    setup: tuple[vecver.Workspace, FaultyBackend],
) -> None:
    ws, _ = setup
    gc.freeze()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert backfill(ws, "c", space="v2").state == "ready"
    # (frozen objects that died since are no longer counted; an undone freeze counts 0)
    assert gc.get_freeze_count() > frozen // 2, "the application's freeze was undone"


def test_switched_off(setup: tuple[vecver.Workspace, FaultyBackend],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    ws, _ = setup
    monkeypatch.setattr(backfill_mod, "FREEZE_HEAP", False)
    during: list[int] = []
    rep = backfill(ws, "c", space="v2", on_batch=lambda r: during.append(gc.get_freeze_count()))
    assert rep.state == "ready"
    assert during and max(during) == 0, during
