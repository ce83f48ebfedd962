"""Deferred visibility in the backfill (eventually consistent backends): batch n+1 is
written while batch n waits to be confirmed visible, and the checkpoint only ever points
past confirmed batches, so a run that dies with writes unconfirmed resumes before them
and ends exact.

The in-process tests use :class:`~vecver.testing.faults.FaultyBackend` in read-lag mode
(writes become visible only after reads; it declares ``consistency="eventual"``) over the
local backend; a write it has not made visible yet is lost when the test "crashes" the
run, the strongest failure model. The Pinecone tests use the emulator's consistency lag
and the official SDK."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecver.backends.base import PendingWrite
from vecver.ops.backfill import VISIBILITY_WINDOW, backfill, start_migration
from vecver.ops.verify import verify
from vecver.testing.checks import scan_all
from vecver.testing.data import make_records, make_spec
from vecver.testing.faults import FaultyBackend, InjectedFault
from vecver.testing.workflow import (
    WORKFLOW_SPACES,
    records_by_id,
    workflow_docs,
    workspace_factory_for,
)

N = 120
BATCH = 10


@pytest.fixture
def make_setup(tmp_path: Path) -> Iterator[Any]:
    """``make(**lag)``: a workspace on a FaultyBackend over the local backend (``lag``: its
    read-lag options; none: strongly consistent), collection ``c`` of N documents in v1,
    the migration to v2 started. Returns (ws, wrapper, v1 namespace, v2 namespace)."""
    wrapped: dict[str, FaultyBackend] = {}
    table = {"name": "local", "path": str(tmp_path / "local")}
    with workspace_factory_for(tmp_path, {"default": table},
                               wrap=lambda name, b: wrapped.setdefault(
                                   name, FaultyBackend(b, **options))) as make:  # fmt: skip
        options: dict[str, Any] = {}

        def setup(**lag: Any) -> tuple[Any, FaultyBackend, str, str]:
            options.update(lag)
            ws = make({"spaces": {k: dict(v) for k, v in WORKFLOW_SPACES.items()},
                       "collections": {"c": {"space": "v1"}},
                       "backfill": {"batch_size": BATCH}})  # fmt: skip
            ws.collection("c").upsert(workflow_docs(N))
            start_migration(ws, "c", "v2")
            v1 = ws.manifest.namespace_for("c", "v1")
            v2 = ws.manifest.namespace_for("c", "v2")
            assert v1 is not None and v2 is not None
            return ws, wrapped["default"], v1.name, v2.name

        yield setup


@pytest.fixture
def lagging(make_setup: Any) -> tuple[Any, FaultyBackend, str, str]:
    return make_setup(lag_reads=2, visibility_timeout=5.0)  # type: ignore[no-any-return]


@pytest.fixture
def slow(make_setup: Any) -> tuple[Any, FaultyBackend, str, str]:
    """Writes become visible 0.3 s after they were made (and not sooner, whatever reads
    happen meanwhile)."""
    return make_setup(lag_seconds=0.3, visibility_timeout=10.0)  # type: ignore[no-any-return]


@pytest.fixture
def strong(make_setup: Any) -> tuple[Any, FaultyBackend, str, str]:
    return make_setup()  # type: ignore[no-any-return]


def _count_upserts(faulty: FaultyBackend, namespace: str) -> list[int]:
    sent = [0]
    faulty.before("upsert", lambda call: sent.__setitem__(0, sent[0] + 1)
                  if call.namespace == namespace else None)  # fmt: skip
    return sent


def _checkpointed_ids_visible(ws: Any, faulty: FaultyBackend, v1: str, v2: str) -> int:
    """Assert that every document the checkpoint of v2 counts as done (the first ``done``
    of the source's order) is visible in v2 (held by the inner backend, which the wrapper
    feeds only once a write became visible); returns ``done``."""
    ck = ws.manifest.checkpoint(v2)
    done = ck.done if ck is not None else 0
    order = [r.id for r in scan_all(faulty.inner, v1, 50)]
    visible = set(records_by_id(faulty.inner, v2))
    missing = [i for i in order[:done] if i not in visible]
    assert not missing, f"checkpoint at {done} counts {len(missing)} unconfirmed: {missing[:5]}"
    return done


# -- the backend API --------------------------------------------------------------------------


def test_upsert_deferred_is_confirmed_later_on_an_eventual_backend(tmp_path: Path) -> None:
    from vecver.backends.memory import MemoryBackend

    spec = make_spec("vv_deferred", 4, "cosine")
    recs = make_records(spec, 5, seed=3)
    b = FaultyBackend(MemoryBackend(), lag_reads=3, visibility_timeout=5.0)
    with b:
        b.create_namespace(spec)
        w = b.upsert_deferred(spec.name, recs)
        assert isinstance(w, PendingWrite) and not w.confirmed and w.size == 5
        assert b.pending_writes == 1  # accepted, not visible yet
        w.confirm()
        assert w.confirmed and b.pending_writes == 0
        assert set(b.fetch(spec.name, [r.id for r in recs])) == {r.id for r in recs}
        w.confirm()  # idempotent, free
    with MemoryBackend() as m:
        assert isinstance(m, MemoryBackend)
        m.create_namespace(spec)
        assert m.upsert_deferred(spec.name, recs).confirmed  # strong: confirmed at once


# -- the backfill pipeline --------------------------------------------------------------------


def test_an_eventual_backend_gets_the_next_batches_before_a_checkpoint(lagging) -> None:  # type: ignore[no-untyped-def]
    """Batches are written ahead of their confirmation (the window), and at every
    checkpoint the documents it counts are visible."""
    ws, faulty, v1, v2 = lagging
    sent = _count_upserts(faulty, v2)
    seen: list[tuple[int, int]] = []
    rep = backfill(ws, "c", space="v2", on_batch=lambda r: seen.append(
        (sent[0], _checkpointed_ids_visible(ws, faulty, v1, v2))))  # fmt: skip
    assert rep.state == "ready" and rep.written == N and rep.reconciled == 0
    # the window's batches were written before the first checkpoint, which counts them
    group = VISIBILITY_WINDOW + 1
    assert seen[0] == (group, group * BATCH), seen
    assert seen[-1] == (N // BATCH, N), seen
    for r in verify(ws, "c"):
        assert r.clean, r.to_dict()


def test_a_strong_backend_checkpoints_each_batch_as_before(strong) -> None:  # type: ignore[no-untyped-def]
    ws, faulty, v1, v2 = strong
    sent = _count_upserts(faulty, v2)
    seen: list[tuple[int, int]] = []
    rep = backfill(ws, "c", space="v2", on_batch=lambda r: seen.append((sent[0], r.done)))
    assert rep.state == "ready" and rep.written == N
    assert seen == [(i + 1, (i + 1) * BATCH) for i in range(N // BATCH)], seen


@pytest.mark.parametrize("fail_at", [2, 3, VISIBILITY_WINDOW + 2])
def test_a_crash_with_writes_unconfirmed_resumes_exact(slow, fail_at: int) -> None:  # type: ignore[no-untyped-def]
    """The run dies while writing batch ``fail_at`` (earlier batches written, some not
    confirmed visible). Then what was not visible is lost (as a crash may lose it). The
    checkpoint counted only visible documents, so the resumed run copies the rest and
    its verification has nothing to repair."""
    ws, faulty, v1, v2 = slow
    faulty.fail("upsert", nth=fail_at, error="permanent", namespace=v2)
    with pytest.raises(InjectedFault):
        backfill(ws, "c", space="v2")
    done = _checkpointed_ids_visible(ws, faulty, v1, v2)
    group = VISIBILITY_WINDOW + 1  # batches confirmed (and checkpointed) together
    assert done == (fail_at - 1) // group * group * BATCH, done
    faulty._forget_pending(v2)  # the crash: writes not yet visible are gone
    faulty.clear_faults()
    rep = backfill(ws, "c", space="v2")
    assert rep.resumed == (done > 0) and rep.state == "ready"
    assert rep.reconciled == 0, "the checkpoint had counted documents that were not visible"
    assert sorted(records_by_id(faulty.inner, v2)) == sorted(d.id for d in workflow_docs(N))
    for r in verify(ws, "c"):
        assert r.clean, r.to_dict()


def test_a_confirmation_that_fails_rewrites_the_batch(lagging) -> None:  # type: ignore[no-untyped-def]
    """The visibility probes of the first confirmation fail (transient): the batch is
    written again the synchronous way, and the run ends exact."""
    ws, faulty, v1, v2 = lagging
    sent = _count_upserts(faulty, v2)
    probing = [False]
    first = [True]

    def fail_first_probe(call: Any) -> None:
        # the first fetch of v2 once the window is full is the first confirmation's
        if call.namespace == v2 and sent[0] == VISIBILITY_WINDOW + 1 and first[0]:
            first[0] = False
            probing[0] = True
            from vecver.errors import TransientBackendError

            raise TransientBackendError("injected: the probe failed")

    faulty.before("fetch", fail_first_probe)
    rep = backfill(ws, "c", space="v2")
    assert probing[0], "no confirmation was probed"
    assert rep.state == "ready" and rep.reconciled == 0
    assert sent[0] == N // BATCH + 1  # one batch written twice
    assert sorted(records_by_id(faulty.inner, v2)) == sorted(d.id for d in workflow_docs(N))
    for r in verify(ws, "c"):
        assert r.clean, r.to_dict()


# -- Pinecone, through the SDK against the emulator's consistency lag -----------------------------

pytest.importorskip("pinecone", reason="needs the pinecone SDK (pip install 'vecver[pinecone]')")

from test_backend_pinecone import KEY, _end_to_end  # noqa: E402 - the suite's e2e run

_names = itertools.count()


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    from vecver.testing.emulators.pinecone import PineconeEmulator

    emu = PineconeEmulator(api_key=KEY)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def index_name(emulator: Any) -> Iterator[str]:
    emulator.faults.clear()
    yield f"pw{os.getpid() % 1000}-{next(_names)}"
    emulator.faults.clear()


def test_pinecone_checkpoints_only_what_queries_see(tmp_path: Path, emulator: Any,
                                                    index_name: str) -> None:  # fmt: skip
    """With a lag before writes reach Pinecone's queries, the backfill writes the
    window's batches before confirming them, and every checkpoint counts only documents
    a raw ``list`` (which lags as queries do) already shows."""
    from pinecone import Pinecone

    table = {"name": "pinecone", "index": index_name, "host": emulator.url, "api_key": KEY}
    with workspace_factory_for(tmp_path, {"default": table}) as make:
        ws = make({"spaces": {k: dict(v) for k, v in WORKFLOW_SPACES.items()},
                   "collections": {"c": {"space": "v1"}},
                   "backfill": {"batch_size": BATCH}})  # fmt: skip
        n = 60
        ws.collection("c").upsert(workflow_docs(n))
        start_migration(ws, "c", "v2")
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None
        client = Pinecone(api_key=KEY, host=emulator.url)
        raw = client.index(host=str(client.indexes.describe(index_name).host))
        source_order = [r.id for r in scan_all(ws.backend_for(v2),
                                               ws.manifest.active_namespace("c"), 50)]
        emulator.faults.lag = 0.05
        dones: list[int] = []

        def on_batch(rep: Any) -> None:
            ck = ws.manifest.checkpoint(v2.name)
            assert ck is not None
            listed = {getattr(i, "id", i) for page in raw.list(namespace=v2.name) for i in page}
            missing = [i for i in source_order[: ck.done] if i not in listed]
            assert not missing, (ck.done, missing[:5])
            dones.append(ck.done)

        rep = backfill(ws, "c", space="v2", on_batch=on_batch)
        emulator.faults.lag = 0.0
        assert rep.state == "ready" and rep.written == n and rep.reconciled == 0
        assert dones[0] == (VISIBILITY_WINDOW + 1) * BATCH, dones  # written ahead
        assert dones[-1] == n
        for r in verify(ws, "c"):
            assert r.clean, r.to_dict()


def test_pinecone_kill_with_writes_unconfirmed_then_resume(
    tmp_path: Path, emulator: Any, index_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 during a backfill whose writes wait for a consistency lag (so batches are
    in flight, unconfirmed), resume, verify clean, cutover under searches, rollback: the
    end-to-end run of the Pinecone suite, with a lag longer than writing a batch takes."""
    emulator.faults.lag = 0.15
    _end_to_end(tmp_path, emulator, index_name, 160, monkeypatch)


# -- the emulator keeps its query matrix and sorted ids current as writes apply ----------------


def test_emulator_namespace_caches_match_a_rebuild() -> None:
    """Random upserts (new ids and overwrites), updates and deletes applied through the
    emulator's write log: after each, the kept search matrix, row norms and sorted ids are
    those a rebuild from the records gives (insertion order), so queries rank as before."""
    import random

    import numpy as np

    from vecver.testing.emulators.pinecone_state import IndexState, _Namespace, _Rec

    rng = random.Random(7)
    idx = IndexState("i", 4, "cosine", "h")
    for step in range(300):
        ns = idx.namespaces.get("n")
        if ns is not None and step % 3 == 0:
            ns.matrix(4), ns.norms(4), ns.sorted_ids()  # caches in use while writes apply
        op = rng.random()
        ids = [f"id{rng.randrange(40)}" for _ in range(rng.randrange(1, 6))]
        if op < 0.6:
            payload = [(i, _Rec(np.asarray([rng.random() + 0.1 for _ in range(4)], np.float32),
                                {"s": step})) for i in dict.fromkeys(ids)]  # fmt: skip
            idx.write("n", "upsert", payload, 0.0)
        elif op < 0.8:
            vals = np.asarray([rng.random() + 0.1 for _ in range(4)], np.float32)
            idx.write("n", "update", [(ids[0], vals if op < 0.7 else None, {"u": step})], 0.0)
        else:
            idx.write("n", "delete", list(dict.fromkeys(ids)), 0.0)
        ns = idx.namespaces["n"]
        fresh = _Namespace(dict(ns.records))
        got_ids, got_mat = ns.matrix(4)
        want_ids, want_mat = fresh.matrix(4)
        assert got_ids == want_ids == list(ns.records)
        assert np.array_equal(got_mat, want_mat)
        assert np.allclose(ns.norms(4), np.linalg.norm(want_mat, axis=1))
        assert ns.sorted_ids() == sorted(ns.records)
