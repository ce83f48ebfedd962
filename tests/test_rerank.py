"""The ``rerank`` route: the active space's top K' rescored by their vectors in the
candidate space — fetched where stored, embedded on the spot (within the per-query bound)
where missing or stale, and those ids handed to the lazy queue through the event."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from vvcore import make_docs, ns_of

import vecver
from vecver.config import ReadSettings
from vecver.errors import InvalidArgument, StateError
from vecver.read import SearchEvent
from vecver.types import Record, Stamp

N = 40
HALF = 20


class Recorder:
    def __init__(self) -> None:
        self.events: list[SearchEvent] = []

    def on_search(self, event: SearchEvent) -> None:
        self.events.append(event)


def open_partial(make_ws, backend: str, **read: int) -> vecver.Workspace:
    ws = make_ws(backend)
    if read:
        ws.config = replace(ws.config, read=ReadSettings(**read))  # type: ignore[arg-type]
    c = ws.collection("c")
    docs = make_docs(N)
    c.upsert(docs)
    vecver.start_migration(ws, "c", "v2")
    c.upsert(docs[:HALF])
    return ws


def candidate_scores(ws: vecver.Workspace, query: str) -> dict[str, float]:
    """What the candidate space itself scores each document it holds (exact search)."""
    return {h.id: h.score for h in ws.collection("c").search(query, N, route="candidate")}


def test_rerank_rescores_stored_vectors_in_the_candidate_space(make_ws,
                                                              backend_name: str) -> None:
    ws = open_partial(make_ws, backend_name, rerank_max_sync_embeds=0)
    rec = Recorder()
    ws.read_observers.append(rec)
    c = ws.collection("c")
    q = make_docs(N)[6].text
    depth = 25
    active = c.search(q, depth)
    hits = c.search(q, 10, route=f"rerank:{depth}")
    event = rec.events[-1]
    assert [leg.role for leg in event.plan.legs] == ["serve", "rescore"]
    truth = candidate_scores(ws, q) if backend_name == "memory" else None
    act_rank = {h.id: n for n, h in enumerate(active, 1)}
    in_v2 = [h for h in hits if h.space == "v2"]
    assert in_v2 and all(int(h.id[1:]) < HALF for h in in_v2)
    assert all(h.namespace == ns_of(ws, "c", "v2") for h in in_v2)
    # the rescored come first, best candidate score first; the rest keep their active order
    spaces = [h.space for h in hits]
    assert spaces == sorted(spaces, key=lambda s: s != "v2")
    assert [h.score for h in in_v2] == sorted((h.score for h in in_v2), reverse=True)
    rest = [h for h in hits if h.space == "v1"]
    assert [act_rank[h.id] for h in rest] == sorted(act_rank[h.id] for h in rest)
    for n, h in enumerate(in_v2, 1):
        assert h.ranks == {"v1": act_rank[h.id], "v2": n}
        if truth is not None:
            assert h.score == pytest.approx(truth[h.id], abs=1e-5)
    # candidates only ever come from the active top K'
    assert {h.id for h in hits} <= set(act_rank)
    missing = event.missing[ns_of(ws, "c", "v2")]
    assert set(missing) == {i for i in act_rank if int(i[1:]) >= HALF}


def test_missing_documents_are_embedded_on_the_spot_within_the_bound(make_ws) -> None:
    ws = open_partial(make_ws, "memory", rerank_max_sync_embeds=3)
    rec = Recorder()
    ws.read_observers.append(rec)
    c = ws.collection("c")
    q = make_docs(N)[33].text  # not in the candidate yet
    hits = c.search(q, 10, route="rerank:30")
    stored = set(c.get([h.id for h in hits], route="candidate"))
    made_here = [h for h in hits if h.space == "v2" and h.id not in stored]
    assert 1 <= len(made_here) <= 3 and all(h.stamp is None for h in made_here)
    assert "d0033" in {h.id for h in made_here} or hits[0].id == "d0033"
    # their score is what the candidate gives once the document is written there
    c.upsert([d for d in make_docs(N) if d.id in {h.id for h in made_here}])
    truth = candidate_scores(ws, q)
    for h in made_here:
        assert h.score == pytest.approx(truth[h.id], abs=1e-5)
    # nothing was written by the read itself: the ids went to the event for the queue
    assert set(rec.events[0].missing[ns_of(ws, "c", "v2")]) >= {h.id for h in made_here}


def test_the_on_the_spot_bound_is_per_query(make_ws) -> None:
    ws = open_partial(make_ws, "memory", rerank_max_sync_embeds=2)
    c = ws.collection("c")
    queries = [make_docs(N)[i].text for i in (25, 30, 35)]
    results = c.search_many(queries, 10, route="rerank:20")
    stored = set(c.get([f"d{i:04d}" for i in range(N)], route="candidate"))
    for hits in results:
        assert sum(1 for h in hits if h.space == "v2" and h.id not in stored) <= 2


def test_a_stale_candidate_vector_is_not_used(make_ws) -> None:
    ws = open_partial(make_ws, "memory", rerank_max_sync_embeds=0)
    rec = Recorder()
    ws.read_observers.append(rec)
    v2 = ws.manifest.namespace_for("c", "v2")
    assert v2 is not None
    # d0002's candidate record was embedded from another text (an update it missed)
    vec = ws.embedder("v2").embed_documents(["something else entirely"])[0]
    ws.backend.upsert(v2.name, [Record("d0002", np.asarray(vec), "old text", {},
                                       Stamp.now(v2.fingerprint, "d0002", "old text"))])
    ws.collection("c").search(make_docs(N)[2].text, 5, route="rerank:10")
    rescored = rec.events[0].legs[1].results[0]  # all K' candidates, before the cut to k
    assert len(rescored) == 10
    top = next(h for h in rescored if h.id == "d0002")
    assert top.space == "v1" and top.ranks == {"v1": 1}  # the stale vector was not used
    assert "d0002" in rec.events[0].missing[v2.name]


def test_rerank_refusals(make_ws, ws: vecver.Workspace) -> None:
    ws.collection("c").upsert(make_docs(5))
    with pytest.raises(StateError, match="no candidate"):
        ws.collection("c").search("alpha1", 3, route="rerank")
    part = open_partial(make_ws, "memory")
    c = part.collection("c")
    with pytest.raises(InvalidArgument, match="more than k=10"):
        c.search("alpha1", 10, route="rerank:10")
    with pytest.raises(InvalidArgument, match="more than k=60"):
        c.search("alpha1", 60, route="rerank")  # the configured K' is 50
    assert len(c.search("alpha1", 60, route="rerank:61")) == N


def test_rerank_with_a_hook_scores_the_rescored_list(make_ws) -> None:
    ws = open_partial(make_ws, "memory")
    c = ws.collection("c")
    q = make_docs(N)[8].text
    base = c.search(q, 10, route="rerank:20")
    hooked = c.search(q, 10, route="rerank:20",
                      rerank_hook=lambda q, texts: [-float(i) for i in range(len(texts))],
                      hook_top_n=10)
    # the hook prefers what it was shown first: the rerank order is kept
    assert [h.id for h in hooked] == [h.id for h in base]
    assert [h.rerank_score for h in hooked] == [-float(i) for i in range(10)]
