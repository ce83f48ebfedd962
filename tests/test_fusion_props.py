"""Properties of the fusion of ``dual`` (vecver.read.fusion), with hypothesis.

What is checked, for random ranked lists of two (or three) spaces:

- one hit per document; the fused list is the top k of the union under the documented
  total order (fused score desc, best rank asc, id asc) — so ties are broken the same
  way every time, whatever order the inputs' ties come in;
- RRF scores are the sum of 1/(c + rank); a document no worse than another in every list
  is never fused below it; a document is fused no lower than 1 + the number of documents
  that beat it in at least one list; a document first in every list is fused first; with
  one list, fusion is that list;
- the literal "fused rank never worse than the best single rank" is false for any fusion
  of two lists with different leaders (only one can be first): shown by an example;
- the depth rule: truncating each list at ``dual_depth`` loses no document of the full
  fused top k;
- attribution: a hit carries the space, raw score and namespace of the list where its
  rank is best (ties: the later list), and its rank in each list.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecver.errors import InvalidArgument
from vecver.read.fusion import RankedList, dual_depth, fuse
from vecver.types import Hit

SPACES = ("v1", "v2", "v3")
IDS = [f"d{i:02d}" for i in range(40)]


def hits_of(space: str, ids: list[str], scores: list[float]) -> list[Hit]:
    return [Hit(i, s, f"text {i}", {"i": i}, None, space, f"ns_{space}")
            for i, s in zip(ids, scores, strict=True)]


@st.composite
def ranked_lists(draw: st.DrawFn, n_lists: int = 2, max_len: int = 25) -> list[RankedList]:
    out = []
    for li in range(n_lists):
        ids = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=max_len))
        # scores descending, with ties allowed (drawn from a coarse grid)
        raw = draw(st.lists(st.integers(0, 5), min_size=len(ids), max_size=len(ids)))
        scores = sorted((float(x) for x in raw), reverse=True)
        out.append(RankedList(SPACES[li], hits_of(SPACES[li], ids, scores)))
    return out


def rank_maps(lists: list[RankedList]) -> list[dict[str, int]]:
    return [{h.id: r for r, h in enumerate(rl.hits, 1)} for rl in lists]


def beats_somewhere(e: str, d: str, maps: list[dict[str, int]]) -> bool:
    """``e`` is ranked better than ``d`` in at least one list (absent = worst)."""
    return any(m.get(e, math.inf) < m.get(d, math.inf) for m in maps)


methods = st.sampled_from(["rrf", "zscore", "minmax"])


@settings(max_examples=200, deadline=None)
@given(ranked_lists(), st.integers(1, 60), methods, st.sampled_from([1.0, 10.0, 60.0]))
def test_one_hit_per_document_in_the_documented_order(lists: list[RankedList], k: int,
                                                      method: str, c: float) -> None:
    out = fuse(lists, k, method, rrf_k=c)
    ids = [h.id for h in out]
    assert len(ids) == len(set(ids))
    union = {h.id for rl in lists for h in rl.hits}
    assert len(out) == min(k, len(union)) and set(ids) <= union
    maps = rank_maps(lists)
    key = [(-(h.fused_score or 0.0), min(m[h.id] for m in maps if h.id in m), h.id)
           for h in out]
    assert key == sorted(key)
    # nothing left out scores above the last hit kept
    if out and len(union) > k:
        everything = fuse(lists, len(union), method, rrf_k=c)
        assert [h.id for h in everything[:k]] == ids
    # the same inputs, the same answer; the inputs are untouched
    again = fuse(lists, k, method, rrf_k=c)
    assert [(h.id, h.fused_score, h.space) for h in again] == \
        [(h.id, h.fused_score, h.space) for h in out]
    assert all(h.fused_score is None and h.ranks is None for rl in lists for h in rl.hits)


@settings(max_examples=200, deadline=None)
@given(ranked_lists(), st.integers(1, 60), st.sampled_from([1.0, 10.0, 60.0]))
def test_rrf_scores_and_rank_guarantees(lists: list[RankedList], k: int, c: float) -> None:
    out = fuse(lists, 1000, "rrf", rrf_k=c)
    maps = rank_maps(lists)
    pos = {h.id: n for n, h in enumerate(out, 1)}
    for h in out:
        expected = sum(1.0 / (c + m[h.id]) for m in maps if h.id in m)
        assert h.fused_score == pytest.approx(expected)
        assert h.ranks == {rl.space: m[h.id] for rl, m in zip(lists, maps, strict=True)
                           if h.id in m}
        # fused no lower than 1 + the documents that beat it somewhere
        better = sum(1 for e in pos if e != h.id and beats_somewhere(e, h.id, maps))
        assert pos[h.id] <= 1 + better
    for d in pos:
        for e in pos:
            dominated = d != e and all(
                m.get(d, math.inf) <= m.get(e, math.inf) for m in maps)
            if dominated:  # d at least as good as e everywhere: never below it
                assert pos[d] < pos[e], (d, e, maps)


@settings(max_examples=100, deadline=None)
@given(ranked_lists(n_lists=1), st.integers(1, 30), methods)
def test_fusing_one_list_is_that_list(lists: list[RankedList], k: int, method: str) -> None:
    out = fuse(lists, k, method)
    assert [h.id for h in out] == [h.id for h in lists[0].hits[:k]]
    assert [h.ranks for h in out] == [{"v1": r} for r in range(1, len(out) + 1)]


@settings(max_examples=100, deadline=None)
@given(ranked_lists(n_lists=3), methods)
def test_a_document_first_everywhere_is_fused_first(lists: list[RankedList],
                                                    method: str) -> None:
    lead = "d39"
    rebuilt = []
    for rl in lists:
        ids = [lead] + [h.id for h in rl.hits if h.id != lead]
        top = rl.hits[0].score + 1.0 if rl.hits else 1.0
        scores = [top] + [h.score for h in rl.hits if h.id != lead]
        rebuilt.append(RankedList(rl.space, hits_of(rl.space, ids, scores)))
    assert fuse(rebuilt, 5, method)[0].id == lead


def test_best_single_rank_is_not_a_bound_with_two_leaders() -> None:
    a = RankedList("v1", hits_of("v1", ["x", "y"], [0.9, 0.8]))
    b = RankedList("v2", hits_of("v2", ["y", "z"], [0.9, 0.8]))
    out = fuse([a, b], 3, "rrf")
    # x is first in v1 but fused second: y (2nd and 1st) beats it; still within 1 + beaters
    assert [h.id for h in out] == ["y", "x", "z"]
    assert out[1].ranks == {"v1": 1}


@settings(max_examples=150, deadline=None)
@given(ranked_lists(max_len=40), st.integers(1, 8), st.sampled_from([1.0, 3.0, 5.0]))
def test_the_depth_rule_loses_no_document_of_the_top_k(lists: list[RankedList], k: int,
                                                       c: float) -> None:
    depth = dual_depth(k, "rrf", c, None)
    full = fuse(lists, k, "rrf", rrf_k=c)
    kept = {h.id for rl in lists for h in rl.hits[:depth]}
    assert {h.id for h in full} <= kept
    cut = fuse([RankedList(rl.space, rl.hits[:depth]) for rl in lists], k, "rrf", rrf_k=c)
    tail = 1.0 / (c + depth + 1)
    got = {h.id: h.fused_score for h in cut}
    for h in full:
        if h.id in got:
            assert (h.fused_score or 0.0) - (got[h.id] or 0.0) <= len(lists) * tail + 1e-12


@settings(max_examples=150, deadline=None)
@given(ranked_lists(), methods)
def test_a_hit_comes_from_its_best_list(lists: list[RankedList], method: str) -> None:
    maps = rank_maps(lists)
    by = [{h.id: h for h in rl.hits} for rl in lists]
    for h in fuse(lists, 100, method):
        ranks = [m.get(h.id, math.inf) for m in maps]
        best = min(ranks)
        li = max(i for i, r in enumerate(ranks) if r == best)  # ties: the later list
        src = by[li][h.id]
        assert (h.space, h.namespace, h.score) == (src.space, src.namespace, src.score)


def test_how_the_score_fusions_score_a_document() -> None:
    a = RankedList("v1", hits_of("v1", ["p", "q", "r"], [0.9, 0.5, 0.1]))
    b = RankedList("v2", hits_of("v2", ["q", "s", "p"], [0.8, 0.7, 0.6]))
    m = {h.id: h.fused_score for h in fuse([a, b], 10, "minmax")}
    # each list onto [0, 1], summed; a list not holding a document adds 0
    assert m == pytest.approx({"p": 1.0 + 0.0, "q": 0.5 + 1.0, "r": 0.0, "s": 0.5})
    assert [h.id for h in fuse([a, b], 10, "minmax")] == ["q", "p", "s", "r"]

    def z(xs: list[float]) -> list[float]:
        mu = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / len(xs))
        return [(x - mu) / sd for x in xs]

    za, zb = z([0.9, 0.5, 0.1]), z([0.8, 0.7, 0.6])
    got = {h.id: h.fused_score for h in fuse([a, b], 10, "zscore")}
    # absent from a list: that list's lowest z-score (never better than being listed)
    assert got == pytest.approx({"p": za[0] + zb[2], "q": za[1] + zb[0],
                                 "r": za[2] + min(zb), "s": min(za) + zb[1]})


def test_equal_scores_normalise_without_dividing_by_zero() -> None:
    flat = RankedList("v1", hits_of("v1", ["a", "b"], [0.5, 0.5]))
    assert [h.fused_score for h in fuse([flat], 2, "minmax")] == [1.0, 1.0]
    assert [h.fused_score for h in fuse([flat], 2, "zscore")] == [0.0, 0.0]
    assert fuse([RankedList("v1", [])], 3, "zscore") == []


@pytest.mark.parametrize("bad", [
    {"method": "max"}, {"k": 0}, {"k": True}, {"rrf_k": 0.0}, {"rrf_k": float("nan")},
    {"rrf_k": -1.0},
])
def test_bad_arguments_are_refused(bad: dict[str, object]) -> None:
    args: dict[str, object] = {"method": "rrf", "k": 3, "rrf_k": 60.0, **bad}
    with pytest.raises(InvalidArgument):
        fuse([RankedList("v1", hits_of("v1", ["a"], [1.0]))], args["k"],  # type: ignore[arg-type]
             args["method"], rrf_k=args["rrf_k"])  # type: ignore[arg-type]


def test_the_depth_rule() -> None:
    assert dual_depth(10, "rrf", 60.0, None) == 80
    assert dual_depth(10, "rrf", 0.5, None) == 21
    assert dual_depth(10, "zscore", 60.0, None) == 30 and dual_depth(20, "minmax", 60, None) == 60
    assert dual_depth(10, "rrf", 60.0, 5) == 10 and dual_depth(10, "rrf", 60.0, 200) == 200
