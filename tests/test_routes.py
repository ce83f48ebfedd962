"""The routes of the searcher during a migration (vecver.read): their string forms, what
``dual`` returns on the reference (memory) and the local (hnswlib) backends, the
extension point for new routes, adapter legs, the observer hook, the re-rank hook, and
the refusals (each a typed error, with nothing recorded)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from vvcore import make_docs, ns_of

import vecver
from vecver.errors import (
    FingerprintMismatch,
    InvalidArgument,
    InvalidInput,
    RerankHookError,
    StateError,
    UnknownRoute,
)
from vecver.read import (
    Canary,
    CollectionView,
    Dual,
    Leg,
    ReadPlan,
    Rerank,
    Route,
    SearchEvent,
    Shadow,
    parse_route,
    register_route,
)
from vecver.read.fusion import RankedList, dual_depth, fuse
from vecver.read.routes import route_forms, unregister_route

N = 40
HALF = 20  # documents d0000..d0019 are in the candidate too


class Recorder:
    """A read observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[SearchEvent] = []

    def on_search(self, event: SearchEvent) -> None:
        self.events.append(event)


@pytest.fixture
def partial(make_ws, backend_name: str) -> vecver.Workspace:
    """Collection ``c``: 40 documents in v1 (active); v2 building, holding the first 20
    (written again after the migration started: dual-write)."""
    ws = make_ws(backend_name)
    c = ws.collection("c")
    docs = make_docs(N)
    c.upsert(docs)
    vecver.start_migration(ws, "c", "v2")
    c.upsert(docs[:HALF])
    return ws


# ------------------------------------------------------------------------ string forms


@pytest.mark.parametrize("text, route", [
    ("dual", Dual()), ("dual:rrf", Dual("rrf")), ("dual:zscore", Dual("zscore")),
    ("dual:minmax", Dual("minmax")), ("shadow", Shadow()), ("canary:0.25", Canary(0.25)),
    ("canary", Canary()), ("rerank", Rerank()), ("rerank:30", Rerank(30)),
])
def test_parse_route_reads_the_migration_routes(text: str, route: Route) -> None:
    assert parse_route(text) == route
    assert parse_route(str(route)) == route  # the string form round-trips


@pytest.mark.parametrize("bad, err", [
    ("dual:max", InvalidArgument), ("canary:2", InvalidArgument),
    ("canary:-0.1", InvalidArgument), ("canary:nan", InvalidArgument),
    ("canary:often", UnknownRoute), ("rerank:1", InvalidArgument), ("rerank:x", UnknownRoute),
    ("rerank:-5", UnknownRoute), ("shadow:v2", UnknownRoute), ("duel", UnknownRoute),
    ("adapterx", UnknownRoute),
])
def test_bad_route_strings_are_typed_errors(bad: str, err: type[Exception]) -> None:
    with pytest.raises(err) as e:
        parse_route(bad)
    assert isinstance(e.value, InvalidInput)
    if isinstance(e.value, UnknownRoute):
        assert e.value.route == bad and "dual[:rrf|zscore|minmax]" in e.value.forms


@pytest.mark.parametrize("make", [lambda: Canary(1.5), lambda: Canary(True),
                                  lambda: Rerank(0), lambda: Dual("sum")])
def test_bad_route_values_are_typed_errors(make: Any) -> None:
    with pytest.raises(InvalidArgument):
        make()


# ------------------------------------------------------------------------ dual


def test_dual_fuses_both_spaces_each_with_its_own_embedder(partial: vecver.Workspace) -> None:
    c = partial.collection("c")
    docs = make_docs(N)
    v1, v2 = ns_of(partial, "c", "v1"), ns_of(partial, "c", "v2")
    plan = c.read_plan("dual")
    assert [(leg.namespace.name, leg.role) for leg in plan.legs] == [(v1, "serve"),
                                                                     (v2, "serve")]
    assert plan.fusion == "rrf" and plan.single is None
    for qi in (3, 30):  # in both spaces; in the active space only
        q = docs[qi].text
        hits = c.search(q, 5, route="dual")
        ids = [h.id for h in hits]
        assert len(ids) == len(set(ids)) == 5
        top = hits[0]
        assert top.id == docs[qi].id
        for h in hits:
            assert (h.space, h.namespace) in {("v1", v1), ("v2", v2)}
            assert h.fused_score is not None and h.ranks and h.text and h.metadata
        if qi < HALF:  # found first by both: scored twice, attributed to the candidate
            assert top.ranks == {"v1": 1, "v2": 1} and top.space == "v2"
            assert top.fused_score == pytest.approx(2 / 61)
        else:  # v2 does not hold it yet: its absence there is imputed, not a vote against
            assert top.ranks == {"v1": 1} and top.space == "v1"
            assert top.fused_score == pytest.approx(2 / 61)


def test_dual_names_the_served_documents_the_candidate_lacks(
        partial: vecver.Workspace) -> None:
    rec = Recorder()
    partial.read_observers.append(rec)
    hits = partial.collection("c").search("topic1 topic2 alpha33 alpha4", 10, route="dual")
    (e,) = rec.events
    lacking = sorted(h.id for h in hits if int(h.id[1:]) >= HALF)
    assert lacking, "the query should reach documents not yet in v2"
    assert sorted(e.missing[ns_of(partial, "c", "v2")]) == lacking
    assert ns_of(partial, "c", "v1") not in e.missing


@pytest.mark.parametrize("method", ["rrf", "zscore", "minmax"])
def test_dual_is_the_fusion_of_each_space_asked_for_its_depth(
        partial: vecver.Workspace, method: str) -> None:
    c = partial.collection("c")
    q = make_docs(N)[7].text
    k = 4
    depth = dual_depth(k, method, 60.0, None)
    a, b = c.search(q, depth, route="active"), c.search(q, depth, route="candidate")
    held = c.get([h.id for h in a + b], route="candidate")
    lacks = frozenset(h.id for h in a + b if h.id not in held)
    assert lacks  # half the documents are not in v2 yet
    expected = fuse([RankedList("v1", a), RankedList("v2", b)], k, method,
                    unheld=[None, lacks])
    got = c.search(q, k, route=f"dual:{method}")
    assert [(h.id, h.space) for h in got] == [(h.id, h.space) for h in expected]
    assert [h.fused_score for h in got] == pytest.approx([h.fused_score for h in expected])


def test_dual_applies_the_filter_in_both_spaces(partial: vecver.Workspace) -> None:
    hits = partial.collection("c").search("topic1 alpha3", 30, route="dual",
                                          filter={"odd": 1})
    assert hits and all(h.metadata["odd"] == 1 for h in hits)
    assert {h.space for h in hits} == {"v1", "v2"}


def test_single_space_routes_never_mix_spaces(partial: vecver.Workspace) -> None:
    c = partial.collection("c")
    q = make_docs(N)[2].text
    for route, space in (("active", "v1"), ("candidate", "v2"), ("shadow", "v1"),
                         ("space:v2", "v2")):
        hits = c.search(q, 10, route=route)
        assert hits and {h.space for h in hits} == {space}, route
        assert all(h.fused_score is None and h.ranks is None for h in hits)
    c.searcher.flush()


def test_rrf_constant_comes_from_the_config(make_ws) -> None:
    ws = make_ws("memory")
    ws.config = _with_read(ws.config, rrf_k=1.0)
    c = ws.collection("c")
    c.upsert(make_docs(10))
    vecver.migrate(ws, "c", "v2", progress=False)
    top = c.search(make_docs(10)[4].text, 3, route="dual")[0]
    assert top.ranks == {"v1": 1, "v2": 1} and top.fused_score == pytest.approx(2 / 2)


def _with_read(cfg: vecver.Config, **kw: Any) -> vecver.Config:
    from dataclasses import replace

    from vecver.config import ReadSettings

    return replace(cfg, read=ReadSettings(**kw))


# ------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("route", ["dual", "dual:zscore", "shadow", "rerank", "canary:0.5",
                                   "candidate"])
def test_routes_needing_a_candidate_refuse_without_one(ws: vecver.Workspace,
                                                       route: str) -> None:
    rec = Recorder()
    ws.read_observers.append(rec)
    c = ws.collection("c")
    c.upsert(make_docs(5))
    with pytest.raises(StateError, match="no candidate"):
        c.search("alpha1", 3, route=route, routing_key="user-1")
    assert rec.events == [] and ws.manifest.counters("c") == {}


@pytest.mark.parametrize("k", [0, -1, True, 1.5, "3", 1001, 10**9])
def test_bad_k_is_refused_before_anything_runs(partial: vecver.Workspace, k: Any) -> None:
    rec = Recorder()
    partial.read_observers.append(rec)
    for route in ("active", "dual", "rerank"):
        with pytest.raises(InvalidInput, match="k must be"):
            partial.collection("c").search("alpha1", k, route=route)
    assert rec.events == []


def test_max_k_is_configurable(make_ws) -> None:
    ws = make_ws("memory")
    ws.config = _with_read(ws.config, max_k=5)
    c = ws.collection("c")
    c.upsert(make_docs(10))
    assert len(c.search("alpha1", 5)) == 5
    with pytest.raises(InvalidArgument, match="max_k"):
        c.search("alpha1", 6)


@pytest.mark.parametrize("kw", [{"routing_key": ""}, {"routing_key": 7}, {"lazy": "later"},
                                {"rerank_hook": "cross-encoder"}, {"hook_top_n": 0}])
def test_bad_search_options_are_refused(partial: vecver.Workspace, kw: dict[str, Any]) -> None:
    rec = Recorder()
    partial.read_observers.append(rec)
    with pytest.raises(InvalidArgument):
        partial.collection("c").search("alpha1", 3, **kw)
    assert rec.events == []


# ------------------------------------------------------------------------ new routes


@dataclass(frozen=True)
class Oldest(Route):
    """A route from a plugin: the oldest live space (``oldest``, ``oldest:N`` ignored)."""

    tag: str = ""

    def plan(self, view: CollectionView) -> ReadPlan:
        return ReadPlan(self, (Leg(min(view.live(), key=lambda n: n.created_at)),))

    def __str__(self) -> str:
        return f"oldest:{self.tag}" if self.tag else "oldest"


def _oldest(spec: str) -> Route:
    _, _, tag = spec.partition(":")
    if tag == "bad":
        raise InvalidInput("bad oldest route")
    return Oldest(tag)


@pytest.fixture
def oldest_route():  # -> Iterator[None]
    register_route("oldest", _oldest)
    yield
    unregister_route("oldest")


def test_a_registered_route_is_parsed_and_searched(partial: vecver.Workspace,
                                                   oldest_route: None) -> None:
    assert parse_route("oldest") == Oldest() and parse_route("oldest:x") == Oldest("x")
    assert "oldest[:...]" in route_forms()
    with pytest.raises(InvalidInput, match="bad oldest"):
        parse_route("oldest:bad")
    hits = partial.collection("c").search(make_docs(N)[30].text, 3, route="oldest:x")
    assert hits[0].id == "d0030" and {h.space for h in hits} == {"v1"}
    register_route("oldest", _oldest)  # the same factory again: a no-op
    with pytest.raises(InvalidInput, match="already registered"):
        register_route("oldest", lambda s: Oldest())
    with pytest.raises(InvalidInput, match="built in"):
        register_route("dual", _oldest)
    with pytest.raises(InvalidArgument):
        register_route("has space", _oldest)


def test_unregistered_prefixes_are_unknown_again(oldest_route: None) -> None:
    unregister_route("oldest")
    with pytest.raises(UnknownRoute):
        parse_route("oldest")


# ------------------------------------------------------------------------ adapter legs


class ShiftAdapter:
    """A stand-in for a trained adapter from v2 queries into v1 (the identity map, so
    that a v2 query vector is compared with v1 vectors: only the contract is tested)."""

    def __init__(self, source: str, target: str) -> None:
        self.source_fingerprint = source
        self.target_fingerprint = target
        self.calls = 0

    def transform(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(x, dtype=np.float32)


@dataclass(frozen=True)
class Adapted(Route):
    def plan(self, view: CollectionView) -> ReadPlan:
        return ReadPlan(self, (Leg(view.active, query_space="v2", adapter="fake"),))


def test_an_adapter_leg_embeds_with_its_query_space_and_checks_fingerprints(
        partial: vecver.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import vecver.adapters as adapters

    v1 = partial.manifest.namespace_for("c", "v1")
    assert v1 is not None
    fp2 = partial.space("v2").fingerprint
    good = ShiftAdapter(fp2, v1.fingerprint)
    asked: list[str] = []

    def query_adapter(ws: Any, name: str) -> ShiftAdapter:
        asked.append(name)
        return current[0]

    current = [good]
    monkeypatch.setattr(adapters, "query_adapter", query_adapter, raising=False)
    c = partial.collection("c")
    q = make_docs(N)[5].text
    hits = c.search(q, 3, route=Adapted())
    assert asked == ["fake"] and good.calls == 1
    assert {(h.space, h.namespace) for h in hits} == {("v1", v1.name)}
    # the hits are v1's neighbours of the (mapped) v2 query vector
    qv = partial.embedder("v2").embed_queries([q])
    direct = partial.backend_for(v1).search(v1.name, qv, 3)[0]
    assert [h.id for h in hits] == [h.id for h in direct]
    for wrong in (ShiftAdapter("0" * 64, v1.fingerprint), ShiftAdapter(fp2, "1" * 64)):
        current[0] = wrong
        with pytest.raises(FingerprintMismatch):
            c.search(q, 3, route=Adapted())
        assert wrong.calls == 0


# ------------------------------------------------------------------------ observers


def test_every_successful_search_tells_the_observers(partial: vecver.Workspace) -> None:
    rec = Recorder()
    partial.read_observers.append(rec)
    c = partial.collection("c")
    queries = [make_docs(N)[1].text, make_docs(N)[25].text]
    served = c.search_many(queries, 4, route="dual", routing_key="u7")
    (e,) = rec.events
    assert (e.collection, e.route, e.k, e.queries, e.routing_key, e.sync) == \
        ("c", "dual", 4, queries, "u7", False)
    assert e.results is served and e.plan.fusion == "rrf" and e.latency_s > 0
    assert [leg.leg.namespace.space_label for leg in e.legs] == ["v1", "v2"]
    assert all(len(leg.results) == 2 for leg in e.legs)
    assert not e.changed
    served_ids = {h.id for hits in served for h in hits}
    assert set(e.missing[ns_of(partial, "c", "v2")]) == {
        i for i in served_ids if int(i[1:]) >= HALF}
    c.search("alpha3", 2, lazy="async")
    assert rec.events[-1].sync is False and rec.events[-1].route == "active"


def test_an_observer_that_fails_never_fails_the_read(partial: vecver.Workspace,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def on_search(self, event: SearchEvent) -> None:
            raise RuntimeError("metrics are down")

    rec = Recorder()
    partial.read_observers.extend([Broken(), rec])
    with caplog.at_level(logging.WARNING, logger="vecver"):
        hits = partial.collection("c").search(make_docs(N)[3].text, 3)
    assert hits[0].id == "d0003" and len(rec.events) == 1  # the next observer still ran
    assert any("read observer" in r.message for r in caplog.records)


def test_sync_reads_again_after_an_observer_wrote(partial: vecver.Workspace) -> None:
    """The contract lazy re-embedding builds on: with lazy="sync", an observer that wrote
    the missing documents sets ``changed`` and the search returns the new reads."""
    docs = make_docs(N)
    c = partial.collection("c")

    class Writer:
        def __init__(self) -> None:
            self.calls = 0

        def on_search(self, event: SearchEvent) -> None:
            self.calls += 1
            if event.sync:
                c.upsert([d for d in docs if d.id == "d0031"])  # dual-write fills v2
                event.changed = True

    w = Writer()
    partial.read_observers.append(w)
    q = docs[31].text
    assert c.search(q, 3, route="candidate")[0].id != "d0031"  # async: not waited for
    assert w.calls == 1
    hits = c.search(q, 3, route="candidate", lazy="sync")
    assert hits[0].id == "d0031" and hits[0].space == "v2"
    assert w.calls == 2  # the second read tells no one


# ------------------------------------------------------------------------ re-rank hook


def by_length(query: str, texts: Any) -> list[float]:
    return [float(len(t)) for t in texts]


def test_a_rerank_hook_reorders_the_top_candidates(partial: vecver.Workspace) -> None:
    c = partial.collection("c")
    q = make_docs(N)[12].text
    plain = c.search(q, 30)
    hooked = c.search(q, 5, rerank_hook=by_length, hook_top_n=30)
    lengths = sorted(((len(h.text or ""), -i) for i, h in enumerate(plain)), reverse=True)
    want = [plain[-i].id for _, i in lengths[:5]]
    assert [h.id for h in hooked] == want
    assert [h.rerank_score for h in hooked] == sorted(
        (h.rerank_score for h in hooked if h.rerank_score is not None), reverse=True)
    # a hook on a fused route keeps the fusion fields and adds its score
    d = c.search(q, 3, route="dual", rerank_hook=by_length)
    assert all(h.fused_score is not None and h.rerank_score is not None for h in d)


def test_hook_on_fewer_than_k_keeps_the_rest_in_order(partial: vecver.Workspace) -> None:
    c = partial.collection("c")
    q = make_docs(N)[12].text
    plain = c.search(q, 6)
    hooked = c.search(q, 6, rerank_hook=lambda q, t: [0.0] * len(t), hook_top_n=2)
    assert [h.id for h in hooked] == [h.id for h in plain]  # ties: stable
    assert [h.rerank_score for h in hooked] == [0.0, 0.0, None, None, None, None]


@pytest.mark.parametrize("hook, why", [
    (lambda q, t: 1 / 0, "raised ZeroDivisionError"),
    (lambda q, t: [1.0] * (len(t) - 1), "scores for"),
    (lambda q, t: [float("nan")] * len(t), "non-finite"),
    (lambda q, t: "high", "not a sequence"),
    (lambda q, t: np.ones((len(t), 2)), "shape"),
    (lambda q, t: [None] * len(t), "type NoneType"),
    (lambda q, t: None, "not a sequence"),
])
def test_a_bad_hook_is_a_typed_error_with_nothing_recorded(
        partial: vecver.Workspace, hook: Any, why: str) -> None:
    rec = Recorder()
    partial.read_observers.append(rec)
    for route in ("active", "dual", "shadow"):
        with pytest.raises(RerankHookError, match=why) as e:
            partial.collection("c").search_many(["alpha1", "beta2"], 3, route=route,
                                                rerank_hook=hook)
        assert e.value.query == "alpha1"
    partial.collection("c").searcher.flush()
    assert rec.events == [] and partial.manifest.counters("c", "shadow/") == {}
