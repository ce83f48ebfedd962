"""The ``canary:P`` route: a fraction P of routing keys read the candidate, sticky per
key (one user sees one geometry), deterministic across handles and processes, refused
without a key or a candidate, and with P outside [0, 1]."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from vvcore import make_docs, ns_of

import vecver
from vecver.config import ReadSettings
from vecver.errors import InvalidArgument, InvalidInput, RoutingKeyRequired, StateError
from vecver.read import Canary, SearchEvent, canary_bucket, parse_route

KEYS = [f"user-{i}" for i in range(10_000)]


@pytest.fixture
def migrating(make_ws, backend_name: str) -> vecver.Workspace:
    ws = make_ws(backend_name)
    ws.collection("c").upsert(make_docs(30))
    vecver.migrate(ws, "c", "v2", progress=False)
    return ws


def served_by(ws: vecver.Workspace, route: str, key: str) -> str:
    return ws.collection("c").route(route, routing_key=key).space_label


@pytest.mark.parametrize("p", [0.05, 0.1, 0.3, 0.5])
def test_the_canary_fraction_over_ten_thousand_keys(make_ws, p: float) -> None:
    ws = make_ws("memory")
    ws.collection("c").upsert(make_docs(5))
    vecver.migrate(ws, "c", "v2", progress=False)
    searcher = ws.collection("c").searcher
    on_candidate = sum(searcher.route(f"canary:{p}", routing_key=k).space_label == "v2"
                       for k in KEYS)
    # five standard deviations of a binomial(10 000, p)
    tol = 5 * math.sqrt(p * (1 - p) / len(KEYS))
    assert abs(on_candidate / len(KEYS) - p) <= tol, (on_candidate, p)


def test_a_key_always_reads_the_same_space(migrating: vecver.Workspace) -> None:
    first = {k: served_by(migrating, "canary:0.3", k) for k in KEYS[:300]}
    assert set(first.values()) == {"v1", "v2"}
    for _ in range(3):  # again, through new handles
        assert {k: served_by(migrating, "canary:0.3", k) for k in KEYS[:300]} == first
    # the choice is a pure function of (collection, key): the same in any process
    assert all((canary_bucket("c", k) < 0.3) == (s == "v2") for k, s in first.items())


def test_search_results_come_from_the_chosen_space_only(migrating: vecver.Workspace) -> None:
    c = migrating.collection("c")
    q = make_docs(30)[4].text
    seen = set()
    for key in KEYS[:40]:
        want = served_by(migrating, "canary:0.5", key)
        hits = c.search(q, 5, route="canary:0.5", routing_key=key)
        assert {h.space for h in hits} == {want} and hits[0].id == "d0004"
        assert {h.namespace for h in hits} == {ns_of(migrating, "c", want)}
        seen.add(want)
    assert seen == {"v1", "v2"}


def test_raising_the_fraction_only_moves_keys_to_the_candidate(
        migrating: vecver.Workspace) -> None:
    at = {p: {k for k in KEYS[:2000] if served_by(migrating, f"canary:{p}", k) == "v2"}
          for p in (0.0, 0.1, 0.4, 1.0)}
    assert at[0.0] == set() and at[1.0] == set(KEYS[:2000])
    assert at[0.0] <= at[0.1] <= at[0.4] <= at[1.0]


def test_collections_split_their_users_independently() -> None:
    a = {k for k in KEYS if canary_bucket("news", k) < 0.5}
    b = {k for k in KEYS if canary_bucket("docs", k) < 0.5}
    assert a != b and 0.4 < len(a & b) / len(a) < 0.6


def test_the_event_names_the_canary_and_the_space_served(migrating: vecver.Workspace) -> None:
    events: list[SearchEvent] = []

    class Rec:
        def on_search(self, e: SearchEvent) -> None:
            events.append(e)

    migrating.read_observers.append(Rec())
    key = next(k for k in KEYS if canary_bucket("c", k) < 0.2)
    migrating.collection("c").search("alpha1", 3, route="canary:0.2", routing_key=key)
    (e,) = events
    assert e.route == "canary:0.2" and e.routing_key == key
    assert [leg.namespace.space_label for leg in e.plan.legs] == ["v2"]


def test_bare_canary_uses_the_configured_fraction(migrating: vecver.Workspace) -> None:
    migrating.config = replace(migrating.config, read=ReadSettings(canary_p=1.0))
    assert parse_route("canary") == Canary()
    assert {served_by(migrating, "canary", k) for k in KEYS[:50]} == {"v2"}
    migrating.config = replace(migrating.config, read=ReadSettings(canary_p=0.0))
    assert {served_by(migrating, "canary", k) for k in KEYS[:50]} == {"v1"}


# ------------------------------------------------------------------------ refusals


def test_a_canary_without_a_routing_key_is_refused(migrating: vecver.Workspace) -> None:
    events: list[Any] = []

    class Rec:
        def on_search(self, e: SearchEvent) -> None:
            events.append(e)

    migrating.read_observers.append(Rec())
    c = migrating.collection("c")
    for route in ("canary:0.5", Canary(0.5), "canary"):
        with pytest.raises(RoutingKeyRequired, match="routing key") as e:
            c.search("alpha1", 3, route=route)
        assert isinstance(e.value, InvalidInput) and "routing_key" in str(e.value)
    with pytest.raises(RoutingKeyRequired):
        c.read_plan("canary:0.5")
    for bad in ("", 12):
        with pytest.raises(InvalidArgument, match="routing_key"):
            c.search("alpha1", 3, route="canary:0.5", routing_key=bad)  # type: ignore[arg-type]
    assert events == []


@pytest.mark.parametrize("p", ["1.01", "-0.5", "nan", "inf", "2"])
def test_a_fraction_outside_zero_and_one_is_refused(p: str) -> None:
    with pytest.raises(InvalidArgument, match="between 0 and 1"):
        parse_route(f"canary:{p}")


def test_a_canary_without_a_candidate_is_refused_for_every_key(ws: vecver.Workspace) -> None:
    c = ws.collection("c")
    c.upsert(make_docs(3))
    for key in KEYS[:20]:  # whichever side the key falls on
        with pytest.raises(StateError, match="no candidate"):
            c.search("alpha1", 3, route="canary:0.5", routing_key=key)


def test_a_configured_fraction_outside_zero_and_one_is_a_config_error() -> None:
    from vecver.errors import ConfigError

    for bad in (1.5, -0.1, "half", True):
        with pytest.raises(ConfigError, match="canary_p"):
            ReadSettings.from_mapping({"canary_p": bad})
