"""Verification and the backfill's "already there?" check read ids, stamps and metadata
only (``with_text=False``), on the local backend (SQLite: ``rows`` without the blobs),
and still see every divergence a full read sees: a copy embedded from another text
(source hash), other metadata, another space's stamp, a missing copy, an extra one."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vecver
from vecver.backends.local import LocalBackend
from vecver.ops.backfill import backfill, start_migration
from vecver.ops.verify import verify
from vecver.testing.workflow import (
    WORKFLOW_SPACES,
    records_by_id,
    workflow_docs,
    workspace_factory_for,
)
from vecver.types import Record, Stamp

N = 40
BATCH = 10
READS = ("_fetch", "_scan", "_fetch_without_text", "_scan_without_text")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Calls of the local backend's read hooks (each runs the real one)."""
    seen: collections.Counter[str] = collections.Counter()
    for name in READS:
        real = getattr(LocalBackend, name)

        def spy(self: Any, *a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
            seen[_name] += 1
            return _real(self, *a, **k)

        monkeypatch.setattr(LocalBackend, name, spy)
    return seen


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[vecver.Workspace]:
    table = {"name": "local", "path": str(tmp_path / "local")}
    with workspace_factory_for(tmp_path, {"default": table}) as make:
        w = make({"spaces": {k: dict(v) for k, v in WORKFLOW_SPACES.items()},
                  "collections": {"c": {"space": "v1"}},
                  "backfill": {"batch_size": BATCH}})  # fmt: skip
        w.collection("c").upsert(workflow_docs(N))
        yield w


def _v2(ws: vecver.Workspace) -> str:
    row = ws.manifest.namespace_for("c", "v2")
    assert row is not None
    return row.name


def test_verify_reads_no_text(ws: vecver.Workspace, reads: collections.Counter[str]) -> None:
    start_migration(ws, "c", "v2")
    assert backfill(ws, "c", space="v2").state == "ready"
    reads.clear()
    reports = verify(ws, "c")
    assert all(r.clean for r in reports), [r.to_dict() for r in reports]
    assert reads["_fetch"] == reads["_scan"] == 0, reads
    assert reads["_fetch_without_text"] + reads["_scan_without_text"] > 0, reads


def _report(ws: vecver.Workspace) -> dict[str, Any]:
    (rep,) = [r for r in verify(ws, "c") if r.space == "v2"]
    return rep.to_dict()


def test_lean_verify_sees_every_divergence(ws: vecver.Workspace) -> None:
    start_migration(ws, "c", "v2")
    assert backfill(ws, "c", space="v2").state == "ready"
    name = _v2(ws)
    be = ws.backend_for(ws.manifest.namespace(name))  # type: ignore[arg-type]
    held = records_by_id(be, name)
    ids = sorted(held)
    full = be.fetch(name, ids[:5], with_vectors=True)

    def put(r: Record) -> None:
        be.upsert(name, [r])

    # another text's hash (the text itself unchanged), other metadata, a copy missing,
    # and one the active space does not have
    r0 = full[ids[0]]
    put(dataclasses.replace(r0, stamp=dataclasses.replace(r0.stamp, source_hash="0" * 32)))
    r1 = full[ids[1]]
    put(dataclasses.replace(r1, metadata={**r1.metadata, "extra": 1}))
    be.delete(name, [ids[2]])
    r3 = full[ids[3]]
    put(Record("zz-not-in-v1", r3.vector, "t", {}, Stamp(r3.stamp.fingerprint, "zz-not-in-v1",
                                                          r3.stamp.source_hash, 1.0)))
    got = _report(ws)
    assert not got["clean"]
    assert got["stale"] == 2 and sorted(got["samples"]["stale"]) == sorted(ids[:2]), got
    assert got["missing"] == 1 and got["samples"]["missing"] == [ids[2]], got
    assert got["unexpected"] == 1 and got["samples"]["unexpected"] == ["zz-not-in-v1"], got
    (rep,) = vecver.verify(ws, "c", repair=True, spaces=["v2"])
    assert rep.repaired == 4, rep.to_dict()
    assert _report(ws)["clean"]


def test_a_resumed_backfill_asks_the_target_without_text(
    ws: vecver.Workspace, reads: collections.Counter[str]
) -> None:
    start_migration(ws, "c", "v2")
    # the first pages are in the target already (as a killed run leaves them)
    from vecver.runtime.reconcile import reconcile

    first = [d.id for d in workflow_docs(N)[: 2 * BATCH]]
    reconcile(ws, "c", ws.manifest.namespace_for("c", "v2"), first)  # type: ignore[arg-type]
    reads.clear()
    rep = backfill(ws, "c", space="v2")
    assert rep.state == "ready" and rep.skipped >= 2 * BATCH, rep.to_dict()
    # the source pages are read with their text (they are embedded); every other read
    # (the target's "already there?", the final verification) goes without it
    assert reads["_fetch"] == 0, reads
    assert reads["_fetch_without_text"] > 0, reads
    name = _v2(ws)
    be = ws.backend_for(ws.manifest.namespace(name))  # type: ignore[arg-type]
    assert sorted(records_by_id(be, name)) == sorted(d.id for d in workflow_docs(N))
