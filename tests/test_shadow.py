"""The ``shadow`` route: it serves exactly what ``active`` serves, runs the candidate off
the serving thread, and records overlap@k, top-1 agreement and rank shifts in the
manifest's counters, summarised by ``vecver shadow report`` with a recommendation."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from vvcore import make_docs, ns_of

import vecver
from vecver.config import ReadSettings
from vecver.errors import InvalidArgument, StateError, UnknownSpace
from vecver.read import SearchEvent
from vecver.read.shadow import compare, counter_prefix, runner_for, summarise
from vecver.read.shadow import report as shadow_report
from vecver.verbs import shadow as shadow_verbs

N = 40
HALF = 20


@pytest.fixture
def partial(make_ws, backend_name: str) -> vecver.Workspace:
    """40 documents in v1 (active); v2 building with the first 20."""
    ws = make_ws(backend_name)
    c = ws.collection("c")
    docs = make_docs(N)
    c.upsert(docs)
    vecver.start_migration(ws, "c", "v2")
    c.upsert(docs[:HALF])
    return ws


def counters(ws: vecver.Workspace) -> dict[str, float]:
    prefix = counter_prefix(ns_of(ws, "c", "v2"))
    return {k[len(prefix):]: v for k, v in ws.manifest.counters("c", prefix).items()}


def as_tuples(results: list[list[Any]]) -> list[list[tuple[Any, ...]]]:
    return [[(h.id, h.score, h.space, h.namespace, h.text, h.metadata) for h in hits]
            for hits in results]


QUERIES = [d.text for d in make_docs(N)[::3]] + ["topic1 alpha4", "beta7 gamma30"]


def test_shadow_serves_exactly_what_active_serves(partial: vecver.Workspace) -> None:
    c = partial.collection("c")
    for k in (1, 5, 12):
        active = c.search_many(QUERIES, k, route="active")
        shadow = c.search_many(QUERIES, k, route="shadow")
        assert as_tuples(shadow) == as_tuples(active)
        assert all(h.fused_score is None and h.ranks is None for hits in shadow for h in hits)
    assert c.searcher.flush()


def test_the_counters_are_the_comparisons_of_each_query(partial: vecver.Workspace) -> None:
    c = partial.collection("c")
    k = 5
    for q in QUERIES:
        c.search(q, k, route="shadow")
    assert c.searcher.flush()
    got = counters(partial)
    # the same comparisons, made by hand from the two spaces' own answers
    mine = [compare(c.search(q, k, route="active"), c.search(q, k, route="candidate"), k)
            for q in QUERIES]
    assert got["queries"] == len(QUERIES) and got["k_sum"] == k * len(QUERIES)
    assert got["overlap_sum"] == pytest.approx(sum(m.overlap for m in mine))
    assert got["top1_agree"] == sum(m.top1_agree for m in mine)
    assert got["common"] == sum(m.common for m in mine)
    assert got["rank_shift_sum"] == sum(m.rank_shift_sum for m in mine)
    assert got["low_overlap"] == sum(m.overlap < 0.5 for m in mine)
    assert got.get("errors", 0) == 0 and got.get("dropped", 0) == 0
    # half the corpus is in v2: documents 20.. are found by v1 only
    assert 0 < got["top1_agree"] < len(QUERIES)


def test_compare() -> None:
    from vecver.types import Hit

    def hits(*ids: str) -> list[Hit]:
        return [Hit(i, 1.0, None, {}, None) for i in ids]

    c = compare(hits("a", "b", "c", "d"), hits("b", "a", "x"), 4)
    assert (c.overlap, c.top1_agree, c.common, c.rank_shift_sum) == (0.5, False, 2, 2)
    assert compare(hits("a"), hits(), 3).candidate_empty
    assert compare(hits(), hits(), 3).overlap == 1.0
    assert compare(hits("a", "b"), hits("a", "b"), 1).top1_agree


def test_shadow_events_arrive_from_the_worker_with_the_shadow_leg(
        partial: vecver.Workspace) -> None:
    events: list[SearchEvent] = []
    threads: list[str] = []

    class Rec:
        def on_search(self, e: SearchEvent) -> None:
            events.append(e)
            threads.append(threading.current_thread().name)

    partial.read_observers.append(Rec())
    c = partial.collection("c")
    served = c.search(QUERIES[0], 4, route="shadow")
    assert c.searcher.flush()
    (e,) = events
    assert [(leg.leg.role, leg.leg.namespace.space_label) for leg in e.legs] == \
        [("serve", "v1"), ("shadow", "v2")]
    assert e.results[0] is served and threads == ["vecver-shadow-c"]
    # synchronous reads run the shadow leg inline, and tell the observers on this thread
    events.clear()
    threads.clear()
    c.search(QUERIES[1], 4, route="shadow", lazy="sync")
    assert len(events) == 1 and events[0].sync and len(events[0].legs) == 2
    assert threads == [threading.current_thread().name]


def test_a_failing_shadow_leg_never_touches_the_served_answer(
        partial: vecver.Workspace) -> None:
    c = partial.collection("c")
    expected = as_tuples(c.search_many(QUERIES[:3], 5, route="active"))
    v2 = partial.manifest.namespace_for("c", "v2")
    assert v2 is not None
    partial.backend_for(v2).drop_namespace(v2.name)  # the candidate's storage is gone
    assert as_tuples(c.search_many(QUERIES[:3], 5, route="shadow")) == expected
    assert c.searcher.flush()
    got = counters(partial)
    assert got["errors"] == 1 and got.get("queries", 0) == 0


def test_a_full_shadow_queue_drops_and_counts_never_waits(make_ws) -> None:
    ws = make_ws("memory")
    ws.config = replace(ws.config, read=ReadSettings(shadow_queue=1))
    c = ws.collection("c")
    c.upsert(make_docs(10))
    vecver.start_migration(ws, "c", "v2")
    runner = runner_for(ws, "c")
    started, release = threading.Event(), threading.Event()

    def blocker() -> None:
        started.set()
        release.wait(10)

    assert runner.submit(blocker, "x")
    assert started.wait(10)
    assert runner.submit(lambda: None, "x")  # fills the queue of one
    events: list[SearchEvent] = []

    class Rec:
        def on_search(self, e: SearchEvent) -> None:
            events.append(e)

    ws.read_observers.append(Rec())
    hits = c.search("alpha3", 3, route="shadow")  # returns at once: dropped
    assert hits and [h.space for h in hits] == ["v1"] * len(hits)
    assert len(events) == 1 and len(events[0].legs) == 1  # a read still told, no shadow
    release.set()
    assert runner.flush()
    assert counters(ws)["dropped"] == 1


def test_counters_are_flushed_in_batches_from_the_worker(make_ws) -> None:
    ws = make_ws("memory")
    ws.config = replace(ws.config, read=ReadSettings(shadow_flush_every=4))
    c = ws.collection("c")
    c.upsert(make_docs(10))
    vecver.migrate(ws, "c", "v2", progress=False)
    for q in QUERIES[:9]:
        c.search(q, 3, route="shadow")
    assert c.searcher.flush()
    assert counters(ws)["queries"] == 9


def test_a_shadow_without_a_candidate_is_refused(ws: vecver.Workspace) -> None:
    ws.collection("c").upsert(make_docs(3))
    with pytest.raises(StateError, match="no candidate"):
        ws.collection("c").search("alpha1", 3, route="shadow")


# ------------------------------------------------------------------------ the report


def test_summarise_recommends() -> None:
    base = {"queries": 100.0, "overlap_sum": 80.0, "top1_agree": 90.0, "common": 400.0,
            "rank_shift_sum": 200.0, "latency_sum": 0.5}
    kw: dict[str, Any] = {"coverage": 1.0, "min_overlap": 0.5, "min_top1": 0.5}
    s = summarise("ns", "v2", "ready", base, **kw)
    assert s.recommendation == "cut over" and s.overlap_at_k == 0.8 and s.top1_agreement == 0.9
    assert s.mean_rank_shift == 0.5 and s.mean_latency_ms == pytest.approx(5.0)
    assert summarise("ns", "v2", "building", base, **{**kw, "coverage": 0.3}
                     ).recommendation == "keep backfilling"
    assert summarise("ns", "v2", "building", base, **kw).recommendation == "cut over"
    low = {**base, "overlap_sum": 20.0}
    assert summarise("ns", "v2", "ready", low, **kw).recommendation == "investigate"
    assert summarise("ns", "v2", "ready", {**base, "errors": 5.0}, **kw
                     ).recommendation == "investigate"
    assert summarise("ns", "v2", "ready", {**base, "candidate_empty": 3.0}, **kw
                     ).recommendation == "investigate"
    assert summarise("ns", "v2", "ready", {}, **kw).recommendation == "no data"
    dropped = summarise("ns", "v2", "ready", {**base, "dropped": 7.0}, **kw)
    assert any("dropped" in r for r in dropped.reasons)


def test_shadow_report_on_a_building_then_a_ready_candidate(partial: vecver.Workspace) -> None:
    c = partial.collection("c")
    rep = shadow_report(partial, "c")
    assert rep.summary.recommendation == "no data" and rep.summary.queries == 0
    for q in QUERIES:
        c.search(q, 5, route="shadow")
    assert c.searcher.flush()
    rep = shadow_report(partial, "c")
    s = rep.summary
    assert rep.active == "v1" and s.space == "v2" and s.state == "building"
    assert s.queries == len(QUERIES) and s.coverage == pytest.approx(HALF / N)
    assert s.recommendation == "keep backfilling"
    d = rep.to_dict()
    assert d["recommendation"] == "keep backfilling" and d["queries"] == len(QUERIES)
    # complete the candidate, measure afresh
    vecver.backfill(partial, "c", space="v2", progress=False)
    assert shadow_verbs.reset(partial.config, "c").removed > 0
    for q in QUERIES:
        c.search(q, 5, route="shadow")
    assert c.searcher.flush()
    assert shadow_report(partial, "c", min_overlap=0.0, min_top1=0.0
                               ).summary.recommendation == "cut over"
    assert shadow_report(partial, "c", min_overlap=1.0, min_top1=1.0
                               ).summary.recommendation == "investigate"
    text = shadow_verbs.RENDERERS["shadow report"].text(rep)
    assert "recommendation: KEEP BACKFILLING" in text and "overlap@k" in text


def test_shadow_report_refusals(partial: vecver.Workspace) -> None:
    with pytest.raises(InvalidArgument, match="min_overlap"):
        shadow_report(partial, "c", min_overlap=1.5)
    with pytest.raises(UnknownSpace):
        shadow_report(partial, "c", space="v9")
    vecver.backfill(partial, "c", space="v2", progress=False)
    vecver.cutover(partial, "c", force=True)
    with pytest.raises(StateError, match="no candidate"):
        shadow_report(partial, "c")
    # a named space is still reported on after its cutover
    assert shadow_report(partial, "c", space="v2").summary.space == "v2"


def test_the_shadow_report_verb_reads_the_config(make_ws) -> None:
    ws = make_ws("local")
    c = ws.collection("c")
    c.upsert(make_docs(12))
    vecver.migrate(ws, "c", "v2", progress=False)
    for q in QUERIES[:4]:
        c.search(q, 3, route="shadow")
    assert c.searcher.flush()
    rep = shadow_verbs.report(ws.config, "c", min_overlap=0.0, min_top1=0.0)
    assert rep.summary.queries == 4 and rep.summary.coverage == 1.0
    assert rep.summary.recommendation == "cut over"
    assert shadow_verbs.reset(ws.config, "c", space="v2").removed > 0
    assert shadow_verbs.report(ws.config, "c").summary.recommendation == "no data"


def test_the_command_line_reads_through_every_route(cli_ws) -> None:  # vvcli.CliWorkspace
    """``vecver search --route ...`` shows where each hit came from, refuses what the API
    refuses (exit 2, one line), and ``vecver shadow report`` sums what shadow searches
    recorded, in other processes."""
    from vvcli import make_docs as cli_docs

    docs = cli_docs(30)
    cli_ws.run("-q", "ingest", "docs", cli_ws.jsonl("docs.jsonl", docs), ok=True)
    cli_ws.run("-q", "migrate", "docs", "--to", "v2", ok=True)
    q = docs[4]["text"]
    hits = cli_ws.run("search", "docs", q, "-k", "3", "--route", "dual", "--json",
                      ok=True).json()
    assert hits[0]["id"] == docs[4]["id"] and hits[0]["ranks"] == {"v1": 1, "v2": 1}
    assert all("fused_score" in h and h["namespace"] for h in hits)
    lines = cli_ws.run("search", "docs", q, "-k", "2", "--route", "dual", "--fusion",
                       "minmax", ok=True).out.splitlines()
    assert len(lines) == 2 and "fused" in lines[0] and "(v1 #1, v2 #1)" in lines[0]
    for argv in (["--route", "canary:0.5"], ["--fusion", "zscore"], ["--route", "dual:max"],
                 ["--route", "canary:2", "--routing-key", "u"], ["-k", "100000"]):
        res = cli_ws.run("search", "docs", q, *argv, ok=False)
        assert res.rc == 2 and len(res.err.strip().splitlines()) == 1, (argv, res.err)
    one = cli_ws.run("search", "docs", q, "--route", "canary:0.5", "--routing-key", "u-1",
                     "--json", ok=True).json()
    assert len({h["space"] for h in one}) == 1
    for _ in range(2):
        shadow = cli_ws.run("search", "docs", q, "-k", "3", "--route", "shadow", "--json",
                            ok=True).json()
        assert {h["space"] for h in shadow} == {"v1"}
    rep = cli_ws.run("shadow", "report", "docs", "--json", ok=True).json()
    assert rep["queries"] == 2 and rep["top1_agreement"] == 1.0 and rep["state"] == "ready"
    assert rep["recommendation"] in ("cut over", "investigate")
    assert "recommendation:" in cli_ws.run("shadow", "report", "docs", ok=True).out
