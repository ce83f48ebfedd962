"""The drift reference samples: a bounded, seeded reservoir per space, captured from the
write path and the backfill, persisted in the manifest in batches (vecver.drift.reservoir).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from vvcore import config, make_docs

import vecver
from vecver.config import DriftSettings
from vecver.drift import reservoir as rs
from vecver.ops.backfill import migrate
from vecver.store.sqlite import Manifest


def _stream(n: int, dim: int = 4, start: int = 0) -> np.ndarray:
    """Vectors whose first coordinate is their stream position."""
    v = np.zeros((n, dim), dtype=np.float32)
    v[:, 0] = np.arange(start, start + n)
    return v


def _offer_in_batches(r: rs.Reservoir, vecs: np.ndarray, sizes: list[int]) -> None:
    i, j = 0, 0
    while i < vecs.shape[0]:
        b = sizes[j % len(sizes)]
        r.offer(vecs[i : i + b])
        i += b
        j += 1


@pytest.mark.parametrize("sizes", [[1], [7, 1, 33], [60, 40]])
def test_every_vector_is_kept_with_the_same_probability(sizes: list[int]) -> None:
    """Algorithm L keeps each of N offered vectors with probability capacity/N, whatever
    the batch sizes of the writes. 2,000 seeded runs, capacity 10 of 100: each position's
    count is Binomial(2000, 0.1) (mean 200, sd 13.4); all 100 must lie within 5 sd, and
    the first and last tenth of the stream are kept as often as each other."""
    runs, cap, n = 2000, 10, 100
    vecs = _stream(n)
    counts = np.zeros(n)
    for seed in range(runs):
        r = rs.Reservoir("fp", 4, capacity=cap, window=5, seed=seed)
        _offer_in_batches(r, vecs, sizes)
        v = r.view()
        assert v.sample.shape[0] == cap
        kept = v.sample[:, 0].astype(int)
        assert len(set(kept.tolist())) == cap  # no vector twice
        assert np.array_equal(v.sample_seq, np.sort(kept))  # positions recorded
        counts[kept] += 1
    assert np.abs(counts - runs * cap / n).max() < 5 * 13.4, counts
    assert abs(counts[:10].mean() - counts[-10:].mean()) < 25


def test_sample_and_window_stay_bounded() -> None:
    """However many vectors are offered, the sample holds at most ``capacity`` and the
    window exactly the last ``window`` (in order); the stored blob does not grow."""
    r = rs.Reservoir("fp", 4, capacity=50, window=20, seed=1)
    r.offer(_stream(30))
    v = r.view()
    assert v.sample.shape[0] == 30 and v.recent.shape[0] == 20
    assert v.recent[:, 0].tolist() == list(range(10, 30))
    size_small = len(r.to_artifact()[0])
    for start in range(30, 20_030, 1000):
        r.offer(_stream(1000, start=start))
    v = r.view()
    assert v.seen == 20_030
    assert v.sample.shape[0] == 50
    assert v.recent[:, 0].tolist() == list(range(20_010, 20_030))
    assert np.array_equal(v.recent_seq, np.arange(20_010, 20_030))
    assert len(r.to_artifact()[0]) == size_small


def test_same_seed_same_sample_and_restart_continues_the_stream() -> None:
    """The sample depends only on the seed and the stream: a state stored and loaded
    midway (a restart) continues exactly as if the process had never stopped."""
    a = rs.Reservoir("fp", 4, capacity=16, window=8, seed=7)
    b = rs.Reservoir("fp", 4, capacity=16, window=8, seed=7)
    other = rs.Reservoir("fp", 4, capacity=16, window=8, seed=8)
    first, second = _stream(500), _stream(700, start=500)
    a.offer(first)
    b.offer(first)
    other.offer(first)
    data, meta = b.to_artifact()
    restarted = rs.Reservoir.from_artifact(data, meta, capacity=16, window=8)
    a.offer(second)
    restarted.offer(second)
    other.offer(second)
    va, vr = a.view(), restarted.view()
    assert np.array_equal(va.sample, vr.sample)
    assert np.array_equal(va.recent, vr.recent)
    assert va.seen == vr.seen == 1200
    assert not np.array_equal(va.sample, other.view().sample)


def test_vectors_of_another_dimension_are_ignored() -> None:
    r = rs.Reservoir("fp", 4, capacity=8, window=4)
    r.offer(np.ones((3, 5), dtype=np.float32))
    r.offer(np.ones((0, 4), dtype=np.float32))
    assert r.view().seen == 0


# ----------------------------------------------------------------- the write-path hook


def _cfg(root: Path, backend: str = "memory", **drift: object) -> vecver.Config:
    """A hash-embedder config whose ``[drift]`` is ``drift`` (no time-based flushes
    unless asked: a slow machine must not change what the tests see)."""
    base = config(root, backend)
    drift.setdefault("flush_seconds", 1e9)
    return dataclasses.replace(base, drift=DriftSettings(**drift))  # type: ignore[arg-type]


def _puts(ws: vecver.Workspace) -> int:
    return sum(1 for e in ws.manifest.events("c")
               if e["kind"] == "artifact.put" and e["detail"].get("of") == rs.KIND)


def test_writes_are_sampled_and_flushed_in_batches_not_per_write(tmp_path: Path) -> None:
    """Each upsert offers its vectors; the manifest is written only once
    ``flush_every`` vectors are pending (not per write), and keeps two versions."""
    with vecver.open(_cfg(tmp_path, reservoir_size=40, window=10, flush_every=100),
                     progress=False) as ws:
        c = ws.collection("c")
        for i in range(9):
            c.upsert(make_docs(10, start=10 * i))
        assert _puts(ws) == 0  # 90 pending vectors: nothing written yet
        assert ws.manifest.artifact(rs.KIND, "c", "v1") is None
        c.upsert(make_docs(10, start=90))
        assert _puts(ws) == 1
        for i in range(10, 40):
            c.upsert(make_docs(10, start=10 * i))
        assert _puts(ws) == 4
        stored = [a for a in ws.manifest.artifacts(rs.KIND, "c") if a.name == "v1"]
        assert len(stored) <= 2
        view = rs.stored_view(ws.manifest, "c", "v1")
        assert view is not None and view.seen == 400 and view.sample.shape[0] == 40
        # what was written is what is sampled: the vector kept at stream position p is
        # the stored vector of the p-th document written (up to the float16 it is kept in)
        ids = [f"d{int(p):04d}" for p in view.sample_seq]
        stored = ws.backend.fetch(ws.manifest.active_namespace("c"), ids, with_vectors=True)
        want = np.stack([stored[i].vector for i in ids])  # type: ignore[misc]
        assert np.abs(view.sample - want).max() < 1e-2


def test_reservoir_survives_a_restart(tmp_path: Path) -> None:
    """A new workspace on the same files continues the stored reservoir (seen count,
    sample) rather than starting over."""
    cfg = _cfg(tmp_path, "local", reservoir_size=30, window=10, flush_every=1000)
    with vecver.open(cfg, progress=False) as ws:
        ws.collection("c").upsert(make_docs(50))
        assert rs.flush_all(ws) == 1
        first = rs.stored_view(ws.manifest, "c", "v1")
    assert first is not None and first.seen == 50
    with vecver.open(cfg, progress=False) as ws:
        ws.collection("c").upsert(make_docs(25, start=50))
        rs.flush_all(ws)
        again = rs.stored_view(ws.manifest, "c", "v1")
    assert again is not None and again.seen == 75
    assert again.sample.shape[0] == 30
    # the recent window holds the 10 newest writes, all from the second session
    assert again.recent_seq.tolist() == list(range(65, 75))


def test_pending_vectors_are_stored_when_a_closed_workspace_is_dropped(
        tmp_path: Path) -> None:
    """Fewer writes than a flush needs, then close: the vectors are stored when the
    workspace object goes away (as at the end of a CLI command), not lost."""
    import gc

    cfg = _cfg(tmp_path, "local", reservoir_size=30, window=10, flush_every=1000)
    ws = vecver.open(cfg, progress=False)
    ws.collection("c").upsert(make_docs(20))
    path = ws.manifest.path

    def stored() -> rs.SampleView | None:
        m = Manifest(path)
        try:
            return rs.stored_view(m, "c", "v1")
        finally:
            m.close()

    assert stored() is None  # fewer than a flush needs: still pending
    ws.close()  # Workspace.close() flushes the samples before the manifest closes
    view = stored()
    assert view is not None and view.seen == 20
    # a workspace dropped without close(): the finalizer keeps its pending vectors
    cfg2 = _cfg(tmp_path / "dropped", "local", reservoir_size=30, window=10,
                flush_every=1000)
    ws2 = vecver.open(cfg2, progress=False)
    ws2.collection("c").upsert(make_docs(20))
    path = ws2.manifest.path
    assert stored() is None
    del ws2
    gc.collect()
    view = stored()
    assert view is not None and view.seen == 20


def test_two_writers_merge_their_samples(tmp_path: Path) -> None:
    """Two workspaces (two processes' worth of state) writing the same space: each flush
    merges with what the other stored, so no writer's vectors are dropped from the count."""
    cfg = _cfg(tmp_path, "local", reservoir_size=20, window=10, flush_every=10_000)
    with vecver.open(cfg, progress=False) as a, vecver.open(cfg, progress=False) as b:
        a.collection("c").upsert(make_docs(60))
        b.collection("c").upsert(make_docs(40, start=60))
        rs.flush_all(a)
        rs.flush_all(b)
        view = rs.stored_view(b.manifest, "c", "v1")
    assert view is not None and view.seen == 100
    assert view.sample.shape[0] == 20


def test_backfill_writes_are_sampled_for_the_new_space(tmp_path: Path) -> None:
    """A migration's backfill offers what it writes to the new space's reservoir."""
    with vecver.open(_cfg(tmp_path, reservoir_size=25, window=10, flush_every=1000),
                     progress=False) as ws:
        ws.collection("c").upsert(make_docs(60))
        migrate(ws, "c", "v2", progress=False)
        rs.flush_all(ws)
        v2 = rs.stored_view(ws.manifest, "c", "v2")
        v1 = rs.stored_view(ws.manifest, "c", "v1")
        fp2 = ws.manifest.namespace_for("c", "v2")
    assert v1 is not None and v1.seen == 60
    assert v2 is not None and v2.seen == 60 and fp2 is not None
    assert v2.fingerprint == fp2.fingerprint != v1.fingerprint


def test_sampling_can_be_turned_off(tmp_path: Path) -> None:
    with vecver.open(_cfg(tmp_path, sample_writes=False), progress=False) as ws:
        ws.collection("c").upsert(make_docs(20))
        assert rs.flush_all(ws) == 0
        assert ws.manifest.artifact(rs.KIND, "c", "v1") is None


def test_drift_config_is_checked() -> None:
    """A wrong kind or range in ``[drift]`` is a ConfigError naming the key."""
    for bad in ({"alpha": 1.5}, {"reservoir_size": 1}, {"sample_writes": "yes"},
                {"unknown_key": 1}, {"max_recall_drop": -0.1}):
        with pytest.raises(vecver.errors.ConfigError, match="drift"):
            vecver.Config.from_mapping({"drift": bad})
    assert vecver.Config.from_mapping({"drift": {"alpha": 0.01}}).drift.alpha == 0.01
