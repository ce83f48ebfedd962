"""The Weaviate backend's ``rescore`` (the default), on the emulator through the official
client: hits are scored from Weaviate's distances unless a list has near ties (or the
metric is ``dot``); then the list is re-scored from the returned vectors with
``exact_scores`` and ordered as vecver's reference orders it (ties by id)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "weaviate", reason="weaviate-client is not installed (pip install 'vecver[weaviate]')"
)

from vecver.backends.base import exact_scores  # noqa: E402
from vecver.backends.weaviate import WeaviateBackend  # noqa: E402
from vecver.backends.weaviate import _backend as wb  # noqa: E402
from vecver.testing.data import make_spec  # noqa: E402
from vecver.testing.emulators.weaviate import WeaviateEmulator  # noqa: E402
from vecver.testing.emulators.weaviate_store import distances  # noqa: E402
from vecver.types import Hit, Metric, NamespaceSpec, Record, Stamp  # noqa: E402


@pytest.fixture(scope="module")
def emu() -> Iterator[WeaviateEmulator]:
    e = WeaviateEmulator().start()
    yield e
    e.stop()


def _open(emu: WeaviateEmulator, **kw: Any) -> WeaviateBackend:
    return WeaviateBackend(emu.url, grpc_port=emu.grpc_port, **kw)


def _records(spec: NamespaceSpec, vecs: np.ndarray, prefix: str = "d") -> list[Record]:
    out = []
    for i, v in enumerate(vecs):
        rid = f"{prefix}{i:03d}"
        out.append(Record(rid, np.asarray(v, dtype=np.float32), f"text {i}", {"i": i},
                          Stamp.now(spec.fingerprint, rid, f"text {i}")))  # fmt: skip
    return out


def _reference(
    metric: Metric, q: np.ndarray, recs: list[Record], k: int
) -> list[tuple[str, float]]:
    mat = np.stack([r.vector for r in recs if r.vector is not None])
    sc = exact_scores(metric, q[None, :], mat)[0].tolist()
    order = sorted(range(len(recs)), key=lambda j: (-sc[j], recs[j].id))[:k]
    return [(recs[j].id, sc[j]) for j in order]


def _pairs(hits: list[Hit]) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]


def test_a_list_without_near_ties_is_scored_from_distances(emu: WeaviateEmulator) -> None:
    """Well separated hits: the reference's order, scores from Weaviate's distances
    (float32) and within float32 rounding of the exact scores."""
    rng = np.random.default_rng(3)
    cases: list[tuple[Metric, str]] = [("cosine", "cosine"), ("l2", "l2-squared")]
    for metric, wdist in cases:
        spec = make_spec(f"rs_sep_{metric}", 16, metric)
        vecs = rng.standard_normal((30, 16)).astype(np.float32)
        recs = _records(spec, vecs)
        q = rng.standard_normal(16).astype(np.float32)
        with _open(emu) as b:
            b.create_namespace(spec)
            b.upsert(spec.name, recs)
            hits = b.search(spec.name, q, 5)[0]
        ref = _reference(metric, q, recs, 5)
        assert not wb._near_tie(metric, q, hits)
        assert [h.id for h in hits] == [i for i, _ in ref]
        d = distances(wdist, q, vecs)
        by_id = {r.id: j for j, r in enumerate(recs)}
        from_d = WeaviateBackend.score_from_distance(metric, d)
        for h, (_, exact) in zip(hits, ref, strict=True):
            assert h.score == float(from_d[by_id[h.id]])
            assert abs(h.score - exact) <= 1e-5 * max(1.0, abs(exact))


def test_exact_ties_are_rescored_and_ordered_by_id(emu: WeaviateEmulator) -> None:
    """Vectors at the same distance from the query (and duplicates): the list is re-scored
    with exact_scores (scores equal to the reference's, bit for bit) and ties go by id."""
    spec = make_spec("rs_ties", 4, "cosine")
    vecs = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1], [1, 1, 0, 0],
                     [0, 1, 1, 1], [3, 0, 0, 0.1]], dtype=np.float32)  # fmt: skip
    recs = _records(spec, vecs, prefix="t")[::-1]  # written in reverse id order
    q = np.array([1, 0, 0, 0], dtype=np.float32)
    with _open(emu) as b:
        b.create_namespace(spec)
        b.upsert(spec.name, recs)
        hits = b.search(spec.name, q, 6)[0]
    assert _pairs(hits) == _reference("cosine", q, recs, 6)
    assert [h.id for h in hits[1:5]] == ["t000", "t001", "t002", "t003"]


def test_dot_is_always_rescored(emu: WeaviateEmulator) -> None:
    """``dot``: the scores are the exact scores, whatever the gaps."""
    rng = np.random.default_rng(5)
    spec = make_spec("rs_dot", 12, "dot")
    recs = _records(spec, (rng.standard_normal((25, 12)) * 7).astype(np.float32))
    q = rng.standard_normal(12).astype(np.float32)
    with _open(emu) as b:
        b.create_namespace(spec)
        b.upsert(spec.name, recs)
        assert _pairs(b.search(spec.name, q, 6)[0]) == _reference("dot", q, recs, 6)


def test_many_ties_ask_vectors_upfront_with_the_same_results(emu: WeaviateEmulator) -> None:
    """A namespace where most searches have near ties switches to asking the vectors with
    the first request; what a search returns does not depend on which way it was asked
    (k is the namespace's size: which of the tied objects at the cut Weaviate keeps is
    its own choice, by UUID)."""
    spec = make_spec("rs_upfront", 6, "cosine")
    base = np.eye(6, dtype=np.float32)
    vecs = np.concatenate([base, base, base + 0.5])  # every direction twice: exact ties
    recs = _records(spec, vecs)
    rng = np.random.default_rng(9)
    queries = rng.standard_normal((40, 6)).astype(np.float32)
    with _open(emu) as b, _open(emu) as fresh:
        b.create_namespace(spec)
        b.upsert(spec.name, recs)
        assert not b._ties.upfront(spec.name)  # a fresh backend asks without vectors
        got = [b.search(spec.name, q, 18)[0] for q in queries]
        assert isinstance(b, WeaviateBackend)
        assert b._ties.upfront(spec.name)  # now asking vectors upfront (TieRate)
        again = b.search(spec.name, queries, 18)
        first_way = fresh.search(spec.name, queries[:1], 18)  # a fresh one asks twice
    for q, g, a in zip(queries, got, again, strict=True):
        ref = _reference("cosine", q, recs, 18)
        assert [h.id for h in g] == [h.id for h in a] == [i for i, _ in ref]
        assert _pairs(a) == _pairs(g)
    assert _pairs(first_way[0]) == _pairs(again[0])
