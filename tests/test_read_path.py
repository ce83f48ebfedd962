"""The read path: typed routes and their read plans, the one searcher (embedding, the
fingerprint rule, labelled hits, no stale route after a cutover), and the input rules of
search (``k``, filters, ids)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from vvcore import make_docs, ns_of

import vecver
from vecver.embedders import SpaceEmbedder
from vecver.errors import (
    FingerprintMismatch,
    InvalidArgument,
    InvalidFilter,
    InvalidInput,
    StateError,
    UnknownSpace,
)
from vecver.filters import F, Filter
from vecver.read import (
    ACTIVE,
    Active,
    Candidate,
    CollectionView,
    Leg,
    ReadPlan,
    Route,
    SpaceRoute,
    parse_route,
)
from vecver.space import SpaceSpec


@pytest.fixture
def migrating(make_ws):  # -> vecver.Workspace
    """Collection ``c``: 30 documents, v1 active, v2 ready (a candidate)."""
    ws = make_ws("memory")
    ws.collection("c").upsert(make_docs(30))
    vecver.migrate(ws, "c", "v2", progress=False)
    return ws


# ------------------------------------------------------------------------ routes


def test_parse_route_accepts_todays_strings() -> None:
    assert parse_route("active") == Active() == ACTIVE
    assert parse_route("candidate") == Candidate()
    assert parse_route("space:v2") == SpaceRoute("v2")
    for r in (Active(), Candidate(), SpaceRoute("v9")):
        assert parse_route(r) is r
        assert parse_route(str(r)) == r  # the string form round-trips
    assert {Active(), Active(), SpaceRoute("a"), SpaceRoute("a")} == {Active(), SpaceRoute("a")}


@pytest.mark.parametrize("bad", ["sideways", "", "Active", "space", 3, None])
def test_parse_route_refuses_anything_else(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="unknown route") as err:
        parse_route(bad)
    assert "space:<label>" in str(err.value)


def test_routes_resolve_to_read_plans(migrating: vecver.Workspace) -> None:
    c = migrating.collection("c")
    v1, v2 = ns_of(migrating, "c", "v1"), ns_of(migrating, "c", "v2")
    for route, ns in (("active", v1), (Active(), v1), ("candidate", v2), (Candidate(), v2),
                      ("space:v1", v1), (SpaceRoute("v2"), v2)):
        plan = c.read_plan(route)
        assert isinstance(plan, ReadPlan) and plan.route == parse_route(route)
        assert [(leg.namespace.name, leg.role) for leg in plan.legs] == [(ns, "serve")]
        assert plan.single is not None and plan.single.name == ns and plan.fusion is None
        assert c.route(route).name == ns
    with pytest.raises(UnknownSpace) as err:
        c.read_plan("space:nope")
    assert set(err.value.known) == {"v1", "v2"}


def test_candidate_route_without_a_candidate(ws: vecver.Workspace) -> None:
    with pytest.raises(StateError, match="no candidate") as err:
        ws.collection("c").search("alpha1", route=Candidate())
    assert "vecver migrate c --to SPACE" in str(err.value)


def test_read_plan_invariants(migrating: vecver.Workspace) -> None:
    """A plan serves from at least one leg, and names a fusion exactly when several do:
    the shape dual, shadow and canary routes will fill."""
    view = migrating.collection("c").searcher.view()
    a, b = view.active, view.candidate()
    with pytest.raises(ValueError, match="no serving leg"):
        ReadPlan(Active(), (Leg(a, "shadow"),))
    with pytest.raises(ValueError, match="fusion"):
        ReadPlan(Active(), (Leg(a), Leg(b)))
    with pytest.raises(ValueError, match="fusion"):
        ReadPlan(Active(), (Leg(a),), fusion="rrf")
    dual = ReadPlan(Active(), (Leg(a), Leg(b)), fusion="rrf")
    assert dual.single is None and [n.name for n in dual.namespaces()] == [a.name, b.name]
    shadow = ReadPlan(Active(), (Leg(a), Leg(b, "shadow")))
    assert shadow.serving == (Leg(a),) and shadow.shadows == (Leg(b, "shadow"),)
    assert shadow.single is None
    adapted = Leg(a, query_space="v2", adapter="procrustes")
    assert adapted.embed_space == "v2" and Leg(a).embed_space == "v1"
    assert ReadPlan(Active(), (adapted,)).single is None


@dataclass(frozen=True)
class Newest(Route):
    """A route defined outside vecver: the newest live space."""

    def plan(self, view: CollectionView) -> ReadPlan:
        return ReadPlan(self, (Leg(max(view.live(), key=lambda n: n.created_at)),))


@dataclass(frozen=True)
class Both(Route):
    """A two-leg route defined outside vecver (the shape of ``dual``)."""

    def plan(self, view: CollectionView) -> ReadPlan:
        return ReadPlan(self, (Leg(view.active), Leg(view.candidate())), fusion="rrf")


def test_a_new_route_needs_no_change_to_the_callers(migrating: vecver.Workspace) -> None:
    c = migrating.collection("c")
    docs = make_docs(30)
    hits = c.search(docs[4].text, 3, route=Newest())
    assert hits[0].id == docs[4].id
    assert {(h.space, h.namespace) for h in hits} == {("v2", ns_of(migrating, "c", "v2"))}
    assert c.count(route=Newest()) == 30 and set(c.get(["d0001"], route=Newest())) == {"d0001"}
    # a plan of two serving legs is executed by the searcher as it stands: fused
    hits = c.search(docs[4].text, 3, route=Both())
    assert hits[0].id == docs[4].id and hits[0].fused_score is not None
    assert hits[0].ranks == {"v1": 1, "v2": 1}
    with pytest.raises(InvalidInput, match="not one"):
        c.route(Both())


# ------------------------------------------------------------------------ the searcher


def test_every_hit_is_labelled_on_every_read(migrating: vecver.Workspace) -> None:
    c = migrating.collection("c")
    docs = make_docs(30)
    for label in ("v1", "v2"):
        ns = ns_of(migrating, "c", label)
        q = migrating.embedder(label).embed_queries([docs[2].text, docs[9].text])
        for results in (c.search_vectors(q, 4, space=label),
                        c.search_many([docs[2].text, docs[9].text], 4, route=f"space:{label}"),
                        [c.search(docs[2].text, 4, route=SpaceRoute(label))]):
            assert results and all(results)
            assert {(h.space, h.namespace) for hits in results for h in hits} == {(label, ns)}


def _drifted(ws: vecver.Workspace, label: str) -> SpaceEmbedder:
    """The embedder ``label`` would resolve to if its geometry changed under the same
    label (here: another seed), as after swapped weights."""
    spec = ws.space_spec(label)
    return SpaceEmbedder.for_spec(SpaceSpec(label=label, embedder=spec.embedder,
                                            dimension=spec.dimension, options={"seed": 99}))


def test_fingerprint_rule_for_text_and_precomputed_vectors(
    migrating: vecver.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query is never compared with vectors of another geometry: searching with text
    or with precomputed vectors of a space whose current fingerprint is not its
    namespace's is refused (precomputed vectors used to skip the check)."""
    c = migrating.collection("c")
    q = migrating.embedder("v2").embed_queries(["alpha1"])
    drifted = _drifted(migrating, "v2")
    real = migrating.embedder
    monkeypatch.setattr(migrating, "embedder",
                        lambda label: drifted if label == "v2" else real(label))
    fresh = migrating.collection("c")  # a handle that has not searched yet
    with pytest.raises(FingerprintMismatch) as err:
        fresh.search_vectors(q, 3, space="v2")
    assert err.value.label == "v2" and err.value.namespace == ns_of(migrating, "c", "v2")
    assert err.value.held == migrating.manifest.namespace(err.value.namespace).fingerprint
    assert err.value.current == drifted.space.fingerprint != err.value.held
    with pytest.raises(FingerprintMismatch):
        fresh.search("alpha1", 3, route="candidate")
    assert c is not fresh and fresh.search("alpha1", 3)[0].space == "v1"  # v1 unaffected
    # evaluate's approximate searches go through the same rule
    with pytest.raises(FingerprintMismatch):
        vecver.evaluate(migrating, "c", record=False)


def test_no_stale_route_after_a_cutover_in_another_workspace(make_ws) -> None:
    """The plan is cached, but never across a cutover or rollback: not one made through
    this workspace, nor one made by another process on the same manifest."""
    ws = make_ws("local")
    c = ws.collection("c")
    docs = make_docs(20)
    c.upsert(docs)
    vecver.migrate(ws, "c", "v2", progress=False)
    other = vecver.open(ws.config, progress=False)
    try:
        for _ in range(3):
            assert {h.space for h in c.search(docs[1].text, 3)} == {"v1"}
            assert c.route().space_label == "v1" and c.count() == 20
            vecver.cutover(other, "c", force=True)
            assert {h.space for h in c.search(docs[1].text, 3)} == {"v2"}
            assert c.route().space_label == "v2" and c.route("space:v1").state == "retired"
            vecver.rollback(ws, "c")
            assert {h.space for h in c.search(docs[1].text, 3)} == {"v1"}
    finally:
        other.close()


def test_a_new_migration_is_seen_by_a_handle_that_searched(ws: vecver.Workspace) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(10))
    with pytest.raises(StateError):
        c.search("alpha1", route="candidate")
    vecver.migrate(ws, "c", "v2", progress=False)
    assert {h.space for h in c.search("alpha1", 3, route="candidate")} == {"v2"}


# ------------------------------------------------------------------------ input rules


@pytest.mark.parametrize("k", [True, False, 0, -1, 2.0, "3", None])
def test_k_is_a_positive_int_and_never_a_bool(ws: vecver.Workspace, k: Any) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(5))
    q = ws.embedder("v1").embed_queries(["alpha1"])
    for call in (lambda: c.search("alpha1", k=k), lambda: c.search_many(["alpha1"], k),
                 lambda: c.search_vectors(q, k, space="v1")):
        with pytest.raises(InvalidInput, match="k must be a positive integer"):
            call()
    assert len(c.search("alpha1", k=np.int64(2))) == 2


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_filter_value_is_refused(ws: vecver.Workspace, value: float) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(5))
    for spec in ({"n": value}, {"n": {"eq": value}}, {"n": {"in": [1, value]}},
                 {"n": {"gte": value}}, {"n": {"lt": 3, "gt": value}}):
        with pytest.raises(InvalidFilter, match="finite"):
            Filter.parse(spec)
        with pytest.raises(InvalidFilter, match="finite"):
            c.search("alpha1", filter=spec)
    for build in (lambda: F.eq("n", value), lambda: F.isin("n", [value]),
                  lambda: F.range("n", lte=value)):
        with pytest.raises(InvalidFilter, match="finite"):
            build()
    with pytest.raises(InvalidFilter):
        Filter.from_json('{"n": NaN}')


def test_no_filter_is_none_and_a_json_null_is_refused(ws: vecver.Workspace) -> None:
    """One rule: "no filter" is ``filter=None`` (or leaving ``--filter`` out); a filter that
    is given is a JSON object, so the text ``null`` is refused instead of searching
    everything."""
    c = ws.collection("c")
    c.upsert(make_docs(6))
    everything = [h.id for h in c.search("topic1", k=6)]
    assert [h.id for h in c.search("topic1", k=6, filter=None)] == everything
    assert [h.id for h in c.search("topic1", k=6, filter={})] == everything
    assert [h.id for h in c.search("topic1", k=6, filter=Filter())] == everything
    for text in ("null", "[]", "3", '"topic"', "true", "", "{"):
        with pytest.raises(InvalidFilter):
            Filter.from_json(text)
    with pytest.raises(InvalidFilter) as err:
        Filter.from_json("null")
    assert "leave --filter out" in str(err.value)
    assert Filter.from_json("{}") == Filter()
    odd = Filter.from_json('{"odd": 1}')
    assert odd == F.eq("odd", 1)
    assert {h.metadata["odd"] for h in c.search("topic1", k=6, filter=odd)} == {1}
    with pytest.raises(InvalidFilter):
        c.search("topic1", filter={"odd": None})  # a null value is no condition either


def test_get_takes_a_list_of_ids(ws: vecver.Workspace) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(5))
    assert set(c.get(["d0001", "d0003", "zz"])) == {"d0001", "d0003"}
    assert set(c.get(("d0001", "d0001"))) == {"d0001"}
    for bad in ("d0001", b"d0001", 7):
        with pytest.raises(InvalidArgument, match="a list of ids"):
            c.get(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"pass \['d0001'\]"):
        c.get("d0001")  # type: ignore[arg-type]


def test_bad_queries_and_spaces_embed_nothing(ws: vecver.Workspace) -> None:
    c = ws.collection("c")
    with pytest.raises(InvalidInput, match="list of queries"):
        c.search_many("alpha")  # type: ignore[arg-type]
    for bad in ([""], ["  "], [3], ["ok", None]):
        with pytest.raises(InvalidInput, match="non-empty string"):
            c.search_many(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="space label"):
        c.search_vectors(np.ones((1, 64), dtype=np.float32), 3, space=None)  # type: ignore[arg-type]
    with pytest.raises(UnknownSpace):
        c.search_vectors(np.ones((1, 64), dtype=np.float32), 3, space="v9")


def test_cli_search_filter_rules(cli_ws) -> None:  # cli_ws: vvcli.CliWorkspace
    """The command line applies the same rules: a JSON object or no ``--filter`` at all;
    ``null`` and non-finite values are refused (exit 2) instead of searching everything."""
    from vvcli import make_docs as cli_docs

    docs = cli_docs(10)
    cli_ws.run("ingest", "docs", cli_ws.jsonl("docs.jsonl", docs), ok=True)
    everything = cli_ws.run("search", "docs", "market", "-k", "10", "--json", ok=True).json()
    assert len(everything) == 10
    for bad in ("null", "[]", '{"n": NaN}', '{"n": {"gte": Infinity}}'):
        res = cli_ws.run("search", "docs", "market", "--filter", bad, ok=False)
        assert res.rc == 2 and len(res.err.strip().splitlines()) == 1, (bad, res.err)
    res = cli_ws.run("search", "docs", "market", "-k", "0", ok=False)
    assert res.rc == 2
