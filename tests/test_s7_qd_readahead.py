"""The backfill's copy reads and embeds the next page in a background thread only where a
thread can overlap something (a server on either side, a source that is not a namespace,
an embedder that does not declare ``gil_bound``), and in turn in the caller's thread
otherwise (Qdrant's local mode with the hash embedder). Both ways must write the same
records, checkpoint the same batches (never one whose write failed) and resume the same;
``ReadAhead(background=False)`` must behave as the threaded one does, items and errors.
The Qdrant point ids are computed by a faster route that must equal ``uuid5``."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vecver
import vecver.ops.backfill as backfill_mod
from vecver.backends._remote import VECVER_ID_NAMESPACE, uuid_for
from vecver.backends.base import Backend
from vecver.backends.memory import MemoryBackend
from vecver.backends.qdrant._codec import point_id
from vecver.embedders.hashing import HashEmbedder
from vecver.errors import BackendError
from vecver.ops.backfill import backfill, start_migration
from vecver.runtime.readahead import ReadAhead
from vecver.runtime.sources import JsonlSource
from vecver.testing.faults import FaultyBackend
from vecver.testing.workflow import (
    WORKFLOW_SPACES,
    records_by_id,
    workflow_docs,
    workspace_factory_for,
)

N = 45
BATCH = 10
THREAD = "vecver-backfill-embed"


# -- ReadAhead in the consumer's thread ------------------------------------------------


@pytest.mark.parametrize("background", [True, False])
def test_read_ahead_items_and_where_they_are_made(background: bool) -> None:
    made_in: set[str] = set()

    def produce() -> Iterator[int]:
        for i in range(7):
            made_in.add(threading.current_thread().name)
            yield i

    with ReadAhead(produce, name="t7", background=background) as items:
        got = list(items)
    assert got == list(range(7))
    assert made_in == ({"vecver-t7"} if background else {threading.current_thread().name})


@pytest.mark.parametrize("background", [True, False])
def test_read_ahead_raises_the_producers_error_after_its_items(background: bool) -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 is unreadable")

    got: list[int] = []
    with pytest.raises(ValueError, match="page 3"):  # noqa: SIM117 - the error is the block's
        with ReadAhead(produce, background=background) as items:
            for i in items:
                got.append(i)
    assert got == [1, 2]


def test_inline_read_ahead_closes_a_generator_left_early() -> None:
    closed: list[bool] = []

    def produce() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.append(True)

    with ReadAhead(produce, background=False) as items:
        assert next(iter(items)) == 0
    assert closed == [True]


# -- where the backfill embeds ------------------------------------------------------------


def _open(tmp_path: Path, table: dict[str, Any], wrap: Any = None) -> Any:
    return workspace_factory_for(tmp_path, {"default": table}, wrap=wrap)


def _sections() -> dict[str, Any]:
    return {"spaces": {k: dict(v) for k, v in WORKFLOW_SPACES.items()},
            "collections": {"c": {"space": "v1"}},
            "backfill": {"batch_size": BATCH}}  # fmt: skip


@pytest.fixture
def embedded_in(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Names of the threads the hash embedder ran in (cleared by the test after setup)."""
    seen: set[str] = set()
    real = HashEmbedder.embed

    def spy(self: HashEmbedder, texts: Any) -> Any:
        seen.add(threading.current_thread().name)
        return real(self, texts)

    monkeypatch.setattr(HashEmbedder, "embed", spy)
    return seen


@pytest.mark.parametrize(
    ("gil_bound", "remote", "jsonl", "forced", "threaded"),
    [
        (True, False, False, None, False),  # all in this process: in turn
        (False, False, False, None, True),  # an embedder that may release the lock
        (True, True, False, None, True),  # a server on the way
        (True, False, True, None, True),  # a file source
        (True, False, False, True, True),  # forced on
        (False, False, False, False, False),  # forced off
    ],
)
def test_the_copy_reads_ahead_only_where_a_thread_overlaps_something(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    embedded_in: set[str],
    gil_bound: bool,
    remote: bool,
    jsonl: bool,
    forced: bool | None,
    threaded: bool,
) -> None:
    monkeypatch.setattr(HashEmbedder, "gil_bound", gil_bound, raising=False)
    monkeypatch.setattr(backfill_mod, "READ_AHEAD", forced)
    caps = dataclasses.replace(MemoryBackend.capabilities, remote_reads=remote)
    monkeypatch.setattr(MemoryBackend, "capabilities", caps)
    docs = workflow_docs(N)
    with _open(tmp_path, {"name": "memory"}) as make:
        ws = make(_sections())
        ws.collection("c").upsert(docs)
        start_migration(ws, "c", "v2")
        source = None
        if jsonl:
            path = tmp_path / "docs.jsonl"
            path.write_text("".join(json.dumps({"id": d.id, "text": d.text,
                                                "metadata": dict(d.metadata)}) + "\n"
                                    for d in docs), encoding="utf-8")  # fmt: skip
            source = JsonlSource(path)
        embedded_in.clear()
        rep = backfill(ws, "c", space="v2", source=source)
        assert rep.state == "ready" and rep.written == N, rep.to_dict()
        assert embedded_in == ({THREAD} if threaded else {threading.current_thread().name})


# -- both ways: the same copy, the same checkpoints -----------------------------------------


def _copy_then_fail_then_resume(
    tmp_path: Path, table: dict[str, Any]
) -> tuple[list[int], int, dict[str, tuple[Any, ...]]]:
    """A backfill whose third write into v2 fails, then the resumed one: the ``done`` of
    each checkpointed batch, the checkpoint the failure left, and what v2 holds (id ->
    source hash, metadata, fingerprint, text)."""
    wrapped: list[FaultyBackend] = []

    def wrap(_: str, b: Backend) -> FaultyBackend:
        wrapped.append(FaultyBackend(b))
        return wrapped[-1]

    with _open(tmp_path, table, wrap) as make:
        ws = make(_sections())
        ws.collection("c").upsert(workflow_docs(N))
        row = start_migration(ws, "c", "v2")
        done: list[int] = []
        wrapped[0].fail("upsert", nth=3, error="permanent", namespace=row.name)
        with pytest.raises(BackendError):
            backfill(ws, "c", space="v2", on_batch=lambda r: done.append(r.done))
        ck = ws.manifest.checkpoint(row.name)
        assert ck is not None
        left = ck.done
        wrapped[0].clear_faults()
        rep = backfill(ws, "c", space="v2", on_batch=lambda r: done.append(r.done))
        assert rep.state == "ready" and rep.resumed, rep.to_dict()
        assert rep.verify is not None and rep.verify.clean
        held = records_by_id(ws.backend_for(row), row.name)
        return done, left, {k: (r.stamp.source_hash, r.metadata, r.stamp.fingerprint, r.text)
                            for k, r in held.items()}  # fmt: skip


@pytest.mark.parametrize("backend", ["memory", "local"])
def test_in_turn_and_threaded_copy_checkpoint_and_resume_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    table: dict[str, Any] = {"name": backend}
    if backend == "local":
        table["path"] = "local"
    out = {}
    for forced in (True, False):
        monkeypatch.setattr(backfill_mod, "READ_AHEAD", forced)
        out[forced] = _copy_then_fail_then_resume(tmp_path / f"ra-{forced}", table)
    assert out[True] == out[False]
    done, left, held = out[False]
    # the failed third write: the checkpoint stays after the two batches written before it
    assert left == 2 * BATCH
    assert done == [10, 20, 30, 40, 45], done
    assert sorted(held) == sorted(d.id for d in workflow_docs(N))


# -- Qdrant local mode, in turn -------------------------------------------------------------


def test_qdrant_local_backfill_in_turn_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_in: set[str]
) -> None:
    monkeypatch.setattr(HashEmbedder, "gil_bound", True, raising=False)
    monkeypatch.setattr(backfill_mod, "READ_AHEAD", None)
    with _open(tmp_path, {"name": "qdrant", "location": ":memory:"}) as make:
        ws = make(_sections())
        ws.collection("c").upsert(workflow_docs(N))
        row = start_migration(ws, "c", "v2")
        embedded_in.clear()
        rep = backfill(ws, "c", space="v2")
        assert rep.state == "ready" and rep.written == N, rep.to_dict()
        assert rep.verify is not None and rep.verify.clean
        assert embedded_in == {threading.current_thread().name}
        client = ws.backend_for(row).client
        points, nxt = client.scroll(row.name, limit=1000, with_payload=True)
        assert nxt is None and len(points) == N
        for p in points:
            doc = (p.payload or {})["_vv_id"]
            assert str(p.id) == point_id(doc) == str(uuid.uuid5(VECVER_ID_NAMESPACE, doc))
        assert vecver.verify(ws, "c")[0].clean


# -- point ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc_id",
    [
        "a",
        "doc00000001",
        "é" * 50,
        "日本語",
        "🙂",
        "x" * 5000,
        "with space",
        "a\u0301",
        "\U0010ffff",
    ],
)
def test_point_id_is_uuid5(doc_id: str) -> None:
    want = str(uuid.uuid5(VECVER_ID_NAMESPACE, doc_id))
    assert point_id(doc_id) == uuid_for(doc_id) == want
    assert uuid.UUID(want).version == 5 and uuid.UUID(want).variant == uuid.RFC_4122


def test_point_id_refuses_a_lone_surrogate_as_uuid_for_does() -> None:
    with pytest.raises(UnicodeEncodeError):
        uuid_for("\ud800")
    with pytest.raises(UnicodeEncodeError):
        point_id("\ud800")


def test_point_id_from_threads_at_once() -> None:
    ids = [f"doc{i:06d}" for i in range(2000)]
    want = [uuid_for(i) for i in ids]
    got: dict[int, list[str]] = {}

    def work(k: int) -> None:
        got[k] = [point_id(i) for i in ids]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got[k] == want for k in range(4))
