"""The compliance suite of :class:`vecver.store.base.ManifestStore`.

A store proves it keeps vecver's record correctly by subclassing
:class:`ManifestStoreSuite` and providing one fixture, ``open_store``::

    class TestPostgresStore(ManifestStoreSuite):
        @pytest.fixture
        def open_store(self, postgres_url):
            def open_(*, owner=None, clock=None, queue_limit=None):
                return PostgresManifest(postgres_url, owner=owner, clock=clock or time.time,
                                        queue_limit=queue_limit or 100_000)
            return open_

``open_store(owner=..., clock=..., queue_limit=...)`` opens a new handle on one store that
is empty when the test starts; every handle of a test sees the same data. ``owner`` is the
owner id the handle acts as (None: this process's), ``clock`` its time source for every
expiry (None: real time), ``queue_limit`` its bound on a queue kind (None: the default).
The suite closes the handles it opens.

Each test's docstring says what the store got wrong when it fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .. import lifecycle
from ..errors import (
    AlreadyRecorded,
    InvalidArgument,
    InvalidId,
    InvalidInput,
    LeaseLost,
    QueueFull,
    SpaceConflict,
    StateError,
    UnknownCollection,
)
from ..store.base import ManifestStore

#: an owner id of a process on another host (whose liveness only heartbeats can tell)
FOREIGN_OWNER = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f@host-elsewhere.invalid:4242"
OTHER_FOREIGN_OWNER = "1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e@host-elsewhere.invalid:4343"

#: document ids that must come back from the store exactly as given
AWKWARD_IDS = [
    "plain",
    "ünïcødé-文字-🙂",
    "it's \"quoted\"",
    "100% _under_ %s %d",
    "back\\slash/and/slash",
    "tab\tnew\nline",
    "  padded  ",
    "'; DROP TABLE tombstones; --",
    "x" * 5000,
    "\u200b\ufeffzero-width",
    "[\"json\", 1]",
]


class FakeClock:
    """A time source that moves only when told to (epoch seconds)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


OpenStore = Callable[..., ManifestStore]


class ManifestStoreSuite:
    """Mix into a test class that provides the ``open_store`` fixture (see the module)."""

    # ----------------------------------------------------------------- fixtures

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def handles(self, open_store: OpenStore, clock: FakeClock) -> Iterator[OpenStore]:
        """``handles(owner=None, **kw)``: a handle on the store under test on the fake
        clock; closed at teardown."""
        opened: list[ManifestStore] = []

        def open_(owner: str | None = None, **kw: Any) -> ManifestStore:
            kw.setdefault("clock", clock)
            s = open_store(owner=owner, **kw)
            opened.append(s)
            return s

        yield open_
        for s in reversed(opened):
            s.close()

    @pytest.fixture
    def store(self, handles: OpenStore) -> ManifestStore:
        return handles()

    @pytest.fixture
    def other(self, handles: OpenStore) -> ManifestStore:
        """A handle acting as a live owner on another host."""
        return handles(FOREIGN_OWNER)

    @staticmethod
    def collection(store: ManifestStore, name: str = "c", label: str = "v1") -> str:
        """Register space ``label`` and create collection ``name`` on it; returns the
        active namespace's name."""
        store.register_space(label, "fp-" + label, "rev", {"dim": 4})
        ns = f"{name}__{label}"
        store.create_collection(name, label, "fp-" + label, ns)
        return ns

    @staticmethod
    def candidate(store: ManifestStore, collection: str, label: str, state: str = "planned",
                  **kw: Any) -> str:
        store.register_space(label, "fp-" + label, "rev", {"dim": 4})
        ns = f"{collection}__{label}"
        store.add_namespace(collection, label, "fp-" + label, ns, state, **kw)
        return ns

    # ----------------------------------------------------------------- spaces

    def test_spaces_are_recorded_once(self, store: ManifestStore) -> None:
        """A space label keeps its first fingerprint; the same one again is a no-op, a
        different one a SpaceConflict."""
        store.register_space("v1", "fp1", "r1", {"dim": 4, "metric": "cosine"})
        store.register_space("v1", "fp1", "r1", {"dim": 4, "metric": "cosine"})
        with pytest.raises(SpaceConflict):
            store.register_space("v1", "fp2", "r1", {})
        row = store.space("v1")
        assert row is not None and row.fingerprint == "fp1"
        assert row.spec == {"dim": 4, "metric": "cosine"}
        assert [s.label for s in store.spaces()] == ["v1"]
        assert store.space("nope") is None

    # ----------------------------------------------------------------- collections

    def test_collection_and_its_first_namespace(self, store: ManifestStore) -> None:
        """create_collection records the collection, its active namespace (on the
        default backend instance) and the first alias history entry."""
        ns = self.collection(store)
        assert store.collections() == ["c"] and store.has_collection("c")
        store.require_collection("c")
        with pytest.raises(UnknownCollection):
            store.require_collection("nope")
        assert store.active_namespace("c") == ns
        (row,) = store.namespaces("c")
        assert (row.name, row.state, row.space_label, row.backend) == (
            ns, "active", "v1", "default")
        (h,) = store.alias_history("c")
        assert (h["from"], h["to"], h["reason"]) == (None, ns, "create")

    def test_rows_that_exist_are_refused_as_already_recorded(self, store: ManifestStore) -> None:
        """Creating a collection or a namespace twice raises AlreadyRecorded (never a
        driver exception), and changes nothing."""
        ns = self.collection(store)
        with pytest.raises(AlreadyRecorded) as e:
            store.create_collection("c", "v1", "fp-v1", "other_ns")
        assert e.value.key == "c"
        v2 = self.candidate(store, "c", "v2")
        gen = store.generation("c")
        with pytest.raises(AlreadyRecorded):
            store.add_namespace("c", "v2", "fp-v2", v2, "planned")
        with pytest.raises(AlreadyRecorded):  # another name for the same space
            store.add_namespace("c", "v2", "fp-v2", "c__v2_again", "planned")
        store.register_space("v3", "fp-v3", "rev", {})
        with pytest.raises(AlreadyRecorded):  # the name of another space's namespace
            store.add_namespace("c", "v3", "fp-v3", ns, "planned")
        with pytest.raises(UnknownCollection):
            store.add_namespace("nope", "v2", "fp-v2", "x", "planned")
        assert store.generation("c") == gen
        assert [n.name for n in store.namespaces("c")] == [ns, v2]
        assert isinstance(AlreadyRecorded("namespace", "x"), StateError)

    def test_namespace_records_its_backend_instance(self, store: ManifestStore) -> None:
        """The backend instance a namespace lives on is kept and returned."""
        self.collection(store)
        v2 = self.candidate(store, "c", "v2", backend="second")
        row = store.namespace(v2)
        assert row is not None and row.backend == "second"
        row = store.namespace_for("c", "v2")
        assert row is not None and row.backend == "second"
        assert store.namespace_for("c", "v9") is None and store.namespace("nope") is None

    # ----------------------------------------------------------------- transitions

    @pytest.mark.parametrize("start", [s for s in lifecycle.STATES if s != "active"])
    def test_transitions_follow_the_lifecycle(self, store: ManifestStore, start: str) -> None:
        """From every state, exactly the transitions of vecver.lifecycle are allowed; a
        refused one changes nothing (state, generation, event log)."""
        self.collection(store)
        for to in lifecycle.STATES:
            label = f"s{lifecycle.STATES.index(to)}"
            ns = self.candidate(store, "c", label, start)
            gen, n_events = store.generation("c"), len(store.events())
            if lifecycle.can_transition(start, to):
                store.set_state(ns, to)
                row = store.namespace(ns)
                assert row is not None and row.state == to
                assert store.generation("c") > gen
            else:
                with pytest.raises(StateError):
                    store.set_state(ns, to)
                row = store.namespace(ns)
                assert row is not None and row.state == start
                assert store.generation("c") == gen and len(store.events()) == n_events

    def test_expect_guards_the_transition(self, store: ManifestStore) -> None:
        """set_state(expect=...) refuses when the namespace is in another state."""
        self.collection(store)
        ns = self.candidate(store, "c", "v2", "building")
        with pytest.raises(StateError, match="cannot go from"):
            store.set_state(ns, "ready", expect=["planned"])
        store.set_state(ns, "ready", expect=["building"])
        with pytest.raises(StateError, match="unknown namespace"):
            store.set_state("nope", "ready")

    def test_a_failed_candidate_is_not_live_and_says_why(self, store: ManifestStore) -> None:
        """failed takes the namespace out of the live set (no more writes), keeps the
        reason readable, and allows a retry (building) or an abort (dropped)."""
        active = self.collection(store)
        ns = self.candidate(store, "c", "v2", "building")
        gen, live = store.live_namespaces("c")
        assert [n.name for n in live] == [active, ns]
        store.set_state(ns, "failed", reason="embedder returned NaN")
        gen2, live = store.live_namespaces("c")
        assert gen2 > gen and [n.name for n in live] == [active]
        row = store.namespace(ns)
        assert row is not None and row.state == "failed"
        assert row.reason == "embedder returned NaN"
        ev = store.events("c")[-1]
        assert ev["detail"]["reason"] == "embedder returned NaN"
        with pytest.raises(StateError):
            store.set_state(ns, "active")
        with pytest.raises(StateError):
            store.switch_active("c", ns, "cutover")
        store.set_state(ns, "building")  # a retry
        assert [n.name for n in store.live_namespaces("c")[1]] == [active, ns]
        store.set_state(ns, "failed", reason="again")
        store.set_state(ns, "dropped")
        assert [n.name for n in store.live_namespaces("c")[1]] == [active]

    def test_live_set_puts_the_active_namespace_first(self, store: ManifestStore,
                                                      clock: FakeClock) -> None:
        """live_namespaces: the active namespace first, then the others oldest first;
        planned, failed and dropped ones are not live."""
        v1 = self.collection(store)
        clock.advance(1)
        v2 = self.candidate(store, "c", "v2", "building")
        clock.advance(1)
        self.candidate(store, "c", "v3", "planned")
        clock.advance(1)
        v4 = self.candidate(store, "c", "v4", "ready")
        clock.advance(1)
        self.candidate(store, "c", "v5", "failed")
        store.set_state(v2, "ready")
        store.switch_active("c", v2, "cutover")
        _, live = store.live_namespaces("c")
        assert [n.name for n in live] == [v2, v1, v4]
        assert [n.state for n in live] == ["active", "retired", "ready"]

    # ----------------------------------------------------------------- alias

    def test_alias_switch_and_history(self, store: ManifestStore) -> None:
        """switch_active moves the alias in one step: the target becomes active, the
        previous one retired (ready after a rollback), and the history records it."""
        v1 = self.collection(store)
        v2 = self.candidate(store, "c", "v2", "ready")
        gen = store.generation("c")
        store.begin_cutover("c", v1, v2, "cutover")
        assert store.pending_cutover("c") == (v1, v2, "cutover")
        assert store.switch_active("c", v2, "cutover", forced=True) == v1
        assert store.pending_cutover("c") is None  # the switch clears it
        assert store.active_namespace("c") == v2 and store.generation("c") > gen
        states = {n.name: n.state for n in store.namespaces("c")}
        assert states == {v1: "retired", v2: "active"}
        with pytest.raises(StateError, match="already the active"):
            store.switch_active("c", v2, "cutover")
        assert store.switch_active("c", v1, "rollback") == v2
        states = {n.name: n.state for n in store.namespaces("c")}
        assert states == {v1: "active", v2: "ready"}
        hist = [(h["from"], h["to"], h["reason"]) for h in store.alias_history("c")]
        assert hist == [(None, v1, "create"), (v1, v2, "cutover"), (v2, v1, "rollback")]
        assert store.events("c")[-1]["kind"] == "alias.rollback"
        store.begin_cutover("c", v1, v2, "cutover")
        store.clear_cutover("c")
        assert store.pending_cutover("c") is None

    def test_building_namespace_cannot_become_active(self, store: ManifestStore) -> None:
        """The alias only moves to a namespace whose state may become active (ready,
        retired, planned at creation); a building one is refused."""
        self.collection(store)
        ns = self.candidate(store, "c", "v2", "building")
        with pytest.raises(StateError, match="cannot become active"):
            store.switch_active("c", ns, "cutover")

    def test_rollback_returns_to_the_namespace_the_alias_came_from(
        self, store: ManifestStore, clock: FakeClock
    ) -> None:
        """previous_active: where the alias last came from, if still retired; else the
        most recently retired namespace; None when there is none."""
        v1 = self.collection(store)
        assert store.previous_active("c") is None
        v2 = self.candidate(store, "c", "v2", "ready")
        v3 = self.candidate(store, "c", "v3", "ready")
        clock.advance(1)
        store.switch_active("c", v2, "cutover")
        assert store.previous_active("c") == v1
        clock.advance(1)
        store.switch_active("c", v3, "cutover")
        assert store.previous_active("c") == v2
        store.set_state(v2, "dropped")  # the direct predecessor is gone
        assert store.previous_active("c") == v1
        store.set_state(v1, "dropped")
        assert store.previous_active("c") is None

    # ----------------------------------------------------------------- intents

    def test_intents_and_tombstones(self, store: ManifestStore) -> None:
        """A delete intent records tombstones before any backend write; an upsert clears
        them; an intent closes only at the generation it was opened at."""
        self.collection(store)
        gen = store.generation("c")
        epoch0 = store.write_epoch("c")
        i1 = store.begin_write("c", "delete", ["a", "b"])
        assert store.tombstoned("c", ["a", "b", "z"]) == {"a", "b"}
        assert store.tombstone_count("c") == 2
        (intent,) = store.intents("c")
        assert (intent.id, intent.op, intent.doc_ids, intent.owner, intent.failed) == (
            i1, "delete", ["a", "b"], store.owner, False)
        assert store.write_epoch("c")[0] > epoch0[0] and store.write_epoch("c")[1] == 1
        assert store.end_write(i1, "c", gen)
        assert store.intents("c") == []
        i2 = store.begin_write("c", "upsert", ["a"])
        assert store.tombstoned("c", ["a", "b"]) == {"b"}  # the newest write wins
        self.candidate(store, "c", "v2", "building")  # the live set changed meanwhile
        assert not store.end_write(i2, "c", gen)
        assert [i.id for i in store.intents("c")] == [i2]
        store.fail_write(i2)
        assert store.intents("c")[0].failed
        store.drop_intent(i2)
        assert store.intents("c") == [] and store.write_epoch("c")[1] == 0
        with pytest.raises(InvalidArgument):
            store.begin_write("c", "merge", ["a"])

    def test_ids_round_trip_exactly(self, store: ManifestStore) -> None:
        """Intents and tombstones return every id exactly as given (unicode, quotes,
        percent signs, SQL, very long ids); pages of tombstones cover each id once."""
        self.collection(store)
        ids = list(AWKWARD_IDS)
        store.begin_write("c", "upsert", ids)
        assert store.intents("c")[0].doc_ids == ids
        store.begin_write("c", "delete", ids)
        assert store.tombstoned("c", ids) == set(ids)
        assert store.tombstoned("c", ["plai", "plain ", "PLAIN", "x" * 4999, "%"]) == set()
        seen: list[str] = []
        after: str | None = None
        while page := store.tombstones("c", after, 3):
            seen.extend(page)
            after = page[-1]
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))

    def test_ids_the_store_cannot_keep_are_refused_first(self, store: ManifestStore) -> None:
        """An id that cannot round-trip (a lone surrogate; NUL where the store cannot
        keep it) is refused with InvalidId before anything is recorded."""
        self.collection(store)
        for bad in (["ok", "bad \ud800 x"], ["ok", "nul\x00id"]):
            try:
                store.begin_write("c", "delete", bad)
            except InvalidId:
                assert store.intents("c") == [] and store.tombstone_count("c") == 0
            else:
                assert store.intents("c")[-1].doc_ids == bad
                assert store.tombstoned("c", bad) == set(bad)
                assert store.tombstoned("c", ["nul"]) == set()  # never cut at the NUL
                for i in store.intents("c"):
                    store.drop_intent(i.id)

    # ----------------------------------------------------------------- checkpoints

    def test_checkpoints(self, store: ManifestStore) -> None:
        """A checkpoint is stored, replaced and cleared as given (cursor, count, stats,
        finished)."""
        store.save_checkpoint("ns", "src", "cur1", 10, {"written": 10})
        ck = store.checkpoint("ns")
        assert ck is not None and (ck.source, ck.cursor, ck.done, ck.finished) == (
            "src", "cur1", 10, False)
        assert ck.stats == {"written": 10}
        store.save_checkpoint("ns", "src", None, 20, {}, finished=True)
        ck = store.checkpoint("ns")
        assert ck is not None and ck.finished and ck.cursor is None and ck.done == 20
        store.clear_checkpoint("ns")
        assert store.checkpoint("ns") is None

    def test_checkpoint_under_a_lost_lease_records_nothing(
        self, handles: OpenStore, other: ManifestStore, clock: FakeClock
    ) -> None:
        """save_checkpoint(lease=...) renews the lease with the checkpoint; once another
        owner took the lease over it raises LeaseLost and records nothing."""
        mine = OTHER_FOREIGN_OWNER
        first = handles(mine)
        assert first.acquire_lease("job", ttl=5) is None
        first.save_checkpoint("ns", "src", "c1", 1, {}, lease="job", lease_ttl=5)
        first.close()  # no more heartbeats: as if its process died
        clock.advance(6)
        assert other.acquire_lease("job", ttl=5) is None
        again = handles(mine)  # the old owner, come back
        with pytest.raises(LeaseLost) as e:
            again.save_checkpoint("ns", "src", "c2", 2, {}, lease="job")
        assert e.value.holder == FOREIGN_OWNER and "lost the lease" in str(e.value)
        ck = other.checkpoint("ns")
        assert ck is not None and ck.cursor == "c1"

    # ----------------------------------------------------------------- leases

    def test_lease_is_exclusive_per_holder(self, store: ManifestStore,
                                           other: ManifestStore) -> None:
        """A held lease is refused to everyone else, this owner's other calls included;
        release frees it; releasing another owner's lease is a no-op."""
        assert store.acquire_lease("job") is None
        assert store.acquire_lease("job") == store.owner
        assert other.acquire_lease("job") == store.owner
        other.release_lease("job")  # not its lease
        assert other.acquire_lease("job") == store.owner
        store.release_lease("job")
        assert other.acquire_lease("job") is None
        assert store.acquire_lease("job") == FOREIGN_OWNER
        lease = store.lease("job")
        assert lease is not None and lease.owner == FOREIGN_OWNER

    def test_dead_owner_of_another_host_is_taken_over_after_its_ttl_not_before(
        self, store: ManifestStore, other: ManifestStore, clock: FakeClock
    ) -> None:
        """A lease whose owner on another host stopped (no renewals) stays refused until
        its TTL has passed, then is taken over."""
        assert other.acquire_lease("job", ttl=10) is None
        other.close()  # it stops renewing: as after a kill -9 on its host
        assert store.acquire_lease("job", ttl=10) == FOREIGN_OWNER
        clock.advance(9.5)
        assert store.acquire_lease("job", ttl=10) == FOREIGN_OWNER
        clock.advance(1.0)
        assert store.acquire_lease("job", ttl=10) is None
        lease = store.lease("job")
        assert lease is not None and lease.owner == store.owner

    def test_renewals_keep_a_lease(self, store: ManifestStore, other: ManifestStore,
                                   clock: FakeClock) -> None:
        """renew_lease and heartbeats extend a lease, so a live owner keeps it past its
        first TTL; renewing a lease held by another owner raises LeaseLost."""
        assert other.acquire_lease("job", ttl=10) is None
        clock.advance(8)
        other.renew_lease("job", ttl=10)
        clock.advance(8)
        other.heartbeat()
        clock.advance(8)
        assert store.acquire_lease("job", ttl=10) == FOREIGN_OWNER
        with pytest.raises(LeaseLost):
            store.renew_lease("job")
        with pytest.raises(LeaseLost):
            store.renew_lease("never-taken")

    def test_owner_liveness_across_hosts(self, store: ManifestStore, other: ManifestStore,
                                         clock: FakeClock) -> None:
        """owner_alive: an owner of another host is alive while its heartbeats last and
        dead once they have stopped for the owner TTL; an owner that never recorded one
        is dead; this handle's owner is alive."""
        self.collection(store)
        assert store.owner_alive(store.owner)
        other.begin_write("c", "upsert", ["a"])  # an intent makes it an owner
        assert store.owner_alive(FOREIGN_OWNER)
        assert not store.owner_alive(OTHER_FOREIGN_OWNER)
        other.close()
        clock.advance(10)
        assert store.owner_alive(FOREIGN_OWNER)  # heartbeats stopped, within the TTL
        clock.advance(3600)
        assert not store.owner_alive(FOREIGN_OWNER)
        (intent,) = store.intents("c")
        assert intent.owner == FOREIGN_OWNER and not store.owner_alive(intent.owner)

    # ----------------------------------------------------------------- queue

    def test_queue_order_is_priority_then_fifo(self, store: ManifestStore) -> None:
        """claim hands out the highest priority first, then the oldest; only items of the
        kind asked for; each claimed item is leased to the claiming owner."""
        ids = [store.enqueue("k", {"n": n}, priority=p) for n, p in
               enumerate([0, 5, 0, 5, 1])]
        store.enqueue("other-kind", {"n": 99}, priority=100)
        got = store.claim("k", limit=10)
        assert [w.payload["n"] for w in got] == [1, 3, 4, 0, 2]
        assert [w.id for w in got] == [ids[1], ids[3], ids[4], ids[0], ids[2]]
        assert all(w.owner == store.owner and w.kind == "k" and w.attempts == 0 for w in got)
        assert store.claim("k") == []

    def test_queue_payloads_round_trip(self, store: ManifestStore) -> None:
        """A JSON payload comes back equal (awkward strings included); what is not JSON,
        a boolean priority and an empty kind are refused before anything is queued."""
        payload = {"ids": AWKWARD_IDS, "range": [None, "d0100"], "n": 3, "f": 0.5, "ok": True}
        store.enqueue("k", payload)
        (w,) = store.claim("k")
        assert w.payload == payload
        for bad in (float("nan"), {1, 2}, object()):
            with pytest.raises(InvalidInput):
                store.enqueue("k", bad)
        with pytest.raises(InvalidArgument):
            store.enqueue("k", {}, priority=True)
        with pytest.raises(InvalidArgument):
            store.enqueue("", {})

    def test_queue_dedup_against_pending_items(self, store: ManifestStore) -> None:
        """enqueue with a dedup key already pending returns None; once the item is
        claimed (being worked on), the same key is queued again."""
        first = store.enqueue("reembed", {"id": "a"}, dedup_key="a")
        assert first is not None
        assert store.enqueue("reembed", {"id": "a"}, dedup_key="a") is None
        assert store.enqueue("other", {"id": "a"}, dedup_key="a") is not None  # per kind
        (w,) = store.claim("reembed")
        second = store.enqueue("reembed", {"id": "a"}, dedup_key="a")
        assert second is not None and second != first
        assert store.complete([w.id]) == [w.id]

    def test_a_leased_item_goes_to_nobody_else_until_its_lease_expires(
        self, store: ManifestStore, other: ManifestStore, clock: FakeClock
    ) -> None:
        """While leased, an item is not handed out again; once its lease expired it is,
        with attempts + 1; its first holder can then no longer complete or renew it."""
        item = store.enqueue("k", {"x": 1})
        (w,) = store.claim("k", ttl=10)
        assert w.id == item and w.lease_expires_at == pytest.approx(clock() + 10)
        assert other.claim("k", ttl=10) == []
        clock.advance(9)
        assert other.claim("k", ttl=10) == []
        assert store.renew_work([item], ttl=10) == [item]
        clock.advance(9)
        assert other.claim("k", ttl=10) == []
        clock.advance(2)
        (w2,) = other.claim("k", ttl=10)
        assert w2.id == item and w2.attempts == 1 and w2.owner == FOREIGN_OWNER
        assert store.renew_work([item]) == []
        assert store.complete([item]) == []
        assert store.release(item) is False
        assert other.complete([item]) == [item]
        assert store.queue_stats("k").completed == 1

    def test_release_returns_an_item_with_its_error(self, store: ManifestStore) -> None:
        """release makes an item claimable at once with attempts + 1 and its error kept;
        complete returns only the ids it completed."""
        item = store.enqueue("k", {"x": 1})
        assert item is not None
        store.claim("k")
        assert store.release(item, error="embedder timed out")
        (w,) = store.claim("k")
        assert w.id == item and w.attempts == 1 and w.last_error == "embedder timed out"
        assert store.complete([item, item + 1000]) == [item]
        assert store.claim("k") == [] and store.release(item) is False

    def test_queue_stats(self, store: ManifestStore, clock: FakeClock) -> None:
        """queue_stats counts pending (expired leases included), leased and completed
        items of one kind, and the age of the oldest claimable one."""
        for n in range(4):
            store.enqueue("k", n)
        clock.advance(5)
        a, b = store.claim("k", limit=2, ttl=10)
        store.complete([a.id])
        s = store.queue_stats("k")
        assert (s.pending, s.leased, s.completed) == (2, 1, 1)
        assert s.oldest_pending_age == pytest.approx(5)
        clock.advance(11)  # b's lease expired: claimable again
        s = store.queue_stats("k")
        assert (s.pending, s.leased) == (3, 0)
        empty = store.queue_stats("nothing")
        assert (empty.pending, empty.leased, empty.completed) == (0, 0, 0)

    def test_queue_is_bounded(self, handles: OpenStore) -> None:
        """A kind holding queue_limit items not yet completed refuses more with
        QueueFull (the limit as attribute); completing one makes room."""
        store = handles(queue_limit=3)
        for n in range(3):
            store.enqueue("k", n)
        with pytest.raises(QueueFull) as e:
            store.enqueue("k", 3)
        assert e.value.limit == 3 and e.value.kind == "k" and e.value.hint
        store.enqueue("other", 0)  # per kind
        (w,) = store.claim("k")
        with pytest.raises(QueueFull):
            store.enqueue("k", 3)  # leased items count too
        store.complete([w.id])
        assert store.enqueue("k", 3) is not None
        with pytest.raises(InvalidArgument):
            store.claim("k", limit=0)

    # ----------------------------------------------------------------- events, evaluations

    def test_events_are_append_only(self, store: ManifestStore) -> None:
        """Every step appends events and none changes or removes an earlier one."""
        ns = self.collection(store)
        before = store.events()
        v2 = self.candidate(store, "c", "v2", "building")
        store.set_state(v2, "ready")
        store.switch_active("c", v2, "cutover")
        store.switch_active("c", ns, "rollback")
        store.log("note", "c", text="hello")
        store.log("global")
        after = store.events()
        assert after[: len(before)] == before and len(after) > len(before) + 3
        ids = [e["id"] for e in after]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert after[-2]["detail"] == {"text": "hello"} and after[-2]["actor"]
        assert all(e["collection"] == "c" for e in store.events("c"))
        assert after[-1]["collection"] is None

    def test_evaluations(self, store: ManifestStore) -> None:
        """Evaluations are kept per collection and namespace, in the order recorded."""
        store.record_evaluation("c", "run1", "ns1", "v1", {"recall": 0.9})
        store.record_evaluation("c", "run1", "ns2", "v2", {"recall": 0.95})
        store.record_evaluation("d", "run2", "ns3", "v1", {})
        assert [e["namespace"] for e in store.evaluations("c")] == ["ns1", "ns2"]
        (e,) = store.evaluations("c", "ns2")
        assert e["space"] == "v2" and e["results"] == {"recall": 0.95} and e["run"] == "run1"

    # ----------------------------------------------------------------- artifacts

    def test_artifacts_are_versioned_and_one_is_enabled(self, store: ManifestStore) -> None:
        """put_artifact numbers versions per name from 1; at most one version of a name is
        enabled; blobs and JSON meta round-trip; every step is an event."""
        a1 = store.put_artifact("adapter", "c", "v2->v1", b"\x00one", {"fp": "a"})
        a2 = store.put_artifact("adapter", "c", "v2->v1", b"two", {"fp": "b"}, enable=True)
        other = store.put_artifact("adapter", "d", "v2->v1", b"", None)
        assert (a1.version, a2.version, other.version) == (1, 2, 1)
        assert (a1.enabled, a2.enabled) == (False, True) and a1.data == b"\x00one"
        assert a2.meta == {"fp": "b"} and other.meta == {} and a2.size == 3
        newest = store.artifact("adapter", "c", "v2->v1")
        assert newest is not None and newest.id == a2.id
        first = store.artifact("adapter", "c", "v2->v1", version=1)
        assert first is not None and first.data == b"\x00one"
        assert store.artifact("adapter", "c", "v2->v1", version=9) is None
        assert store.artifact("adapter", "c", "nope") is None
        enabled = store.enabled_artifact("adapter", "c", "v2->v1")
        assert enabled is not None and enabled.id == a2.id
        again = store.enable_artifact(a1.id)
        assert again.enabled
        assert [a.enabled for a in store.artifacts("adapter", "c")] == [True, False]
        assert store.disable_artifact(a1.id).enabled is False
        assert store.enabled_artifact("adapter", "c", "v2->v1") is None
        assert [a.collection for a in store.artifacts("adapter")] == ["c", "c", "d"]
        assert store.artifacts("sample") == []
        kinds = [e["kind"] for e in store.events("c")]
        assert kinds.count("artifact.put") == 2 and "artifact.enabled" in kinds
        assert "artifact.disabled" in kinds

    def test_artifact_keep_prunes_old_versions_but_never_the_enabled_one(
        self, store: ManifestStore
    ) -> None:
        first = store.put_artifact("sample", "c", "v1", b"1", enable=True)
        for i in range(2, 6):
            store.put_artifact("sample", "c", "v1", str(i).encode(), keep=2)
        versions = [a.version for a in store.artifacts("sample", "c")]
        assert versions == [first.version, 4, 5]

    def test_bad_artifacts_are_refused_and_nothing_is_stored(self, store: ManifestStore) -> None:
        bad: list[dict[str, Any]] = [
            {"kind": "", "name": "n", "data": b""},
            {"kind": "k", "name": "", "data": b""},
            {"kind": "k", "name": "n", "data": "text, not bytes"},
            {"kind": "k", "name": "n", "data": b"", "meta": ["not", "an", "object"]},
            {"kind": "k", "name": "n", "data": b"", "meta": {"x": float("nan")}},
            {"kind": "k", "name": "n", "data": b"", "keep": 0},
        ]
        for args in bad:
            meta = args.pop("meta", None)
            keep = args.pop("keep", None)
            with pytest.raises(InvalidArgument):
                store.put_artifact(args["kind"], "c", args["name"], args["data"], meta,
                                   keep=keep)
        assert store.artifacts("k") == []
        with pytest.raises(InvalidArgument):
            store.enable_artifact(12345)

    # ----------------------------------------------------------------- reads, counters

    def test_read_counts_add_up_and_list_hottest_first(self, store: ManifestStore) -> None:
        store.record_reads("c", {"a": 1, "b": 5, "c": 2})
        store.record_reads("c", {"a": 4, "d": 0})
        store.record_reads("other", {"a": 100})
        store.record_reads("c", {})
        assert store.read_counts("c") == [("a", 5), ("b", 5), ("c", 2)]  # ties by id
        assert store.read_counts("c", limit=1, offset=1) == [("b", 5)]
        assert store.read_counts("c", limit=0) == []
        assert store.read_totals("c") == (3, 12) and store.read_totals("none") == (0, 0)
        bad_counts: list[dict[str, Any]] = [{"a": -1}, {"a": 1.5}, {"": 1}, {"a": True}]
        for bad in bad_counts:
            with pytest.raises(InvalidArgument):
                store.record_reads("c", bad)
        with pytest.raises(InvalidArgument):
            store.read_counts("c", limit=-1)
        assert store.read_totals("c") == (3, 12)

    def test_counters_add_up_per_collection(self, store: ManifestStore) -> None:
        store.bump_counters("c", {"route.active.queries": 2, "latency.le_0.01": 1.5})
        store.bump_counters("c", {"route.active.queries": 1})
        store.bump_counters("d", {"route.active.queries": 7})
        assert store.counters("c") == {"latency.le_0.01": 1.5, "route.active.queries": 3.0}
        assert store.counters("c", "route.") == {"route.active.queries": 3.0}
        with pytest.raises(InvalidArgument):
            store.bump_counters("c", {"x": float("inf")})
        assert store.reset_counters("c", "latency.") == 1
        assert store.counters("c") == {"route.active.queries": 3.0}
        assert store.counters("d") == {"route.active.queries": 7.0}

    def test_namespace_layout_round_trips(self, store: ManifestStore) -> None:
        """A namespace's layout (an adopted collection's own fields) is kept as given;
        the default is {}; changing it moves the collection's generation."""
        ns = self.collection(store)
        row = store.namespace(ns)
        assert row is not None and row.layout == {}
        store.register_space("v2", "fp-v2", "rev", {})
        store.add_namespace("c", "v2", "fp-v2", "c__v2", "planned",
                            layout={"text_field": "body", "id_field": "doc_id"})
        row = store.namespace("c__v2")
        assert row is not None and row.layout == {"text_field": "body", "id_field": "doc_id"}
        gen = store.generation("c")
        store.set_layout(ns, {"adopted": True})
        row = store.namespace(ns)
        assert row is not None and row.layout == {"adopted": True}
        assert store.generation("c") > gen
        with pytest.raises(StateError):
            store.set_layout("nope", {})
        with pytest.raises(InvalidArgument):
            store.set_layout(ns, {"x": float("nan")})
        hash(row)  # rows stay hashable (routes and plans hold them)

    # ----------------------------------------------------------------- queue, model-based

    def test_queue_behaves_like_its_model(self, handles: OpenStore, clock: FakeClock) -> None:
        """Random sequences of enqueue, claim, complete, release, renew_work and clock
        moves by two owners agree, step by step, with a plain model of the contract
        (priority then FIFO, leases, dedup of pending items, attempts, stats). A failure
        prints the shortest sequence that breaks it."""
        from hypothesis import HealthCheck, settings
        from hypothesis import strategies as st
        from hypothesis.stateful import (
            RuleBasedStateMachine,
            invariant,
            rule,
            run_state_machine_as_test,
        )

        owners = {"a": handles(FOREIGN_OWNER), "b": handles(OTHER_FOREIGN_OWNER)}
        examples = iter(range(10**9))

        class QueueModel(RuleBasedStateMachine):
            def __init__(self) -> None:
                super().__init__()
                self.kind = f"model-{next(examples)}"  # a fresh queue per example
                # id -> [priority, dedup, owner, expires, attempts, error]
                self.items: dict[int, list[Any]] = {}
                self.completed = 0

            def _claimable(self) -> list[int]:
                now = clock()
                return sorted(
                    (i for i, it in self.items.items() if it[2] is None or it[3] <= now),
                    key=lambda i: (-self.items[i][0], i),
                )

            @rule(priority=st.integers(-2, 2), dedup=st.sampled_from([None, "x", "y"]))
            def enqueue(self, priority: int, dedup: str | None) -> None:
                got = owners["a"].enqueue(self.kind, {"p": priority}, priority=priority,
                                          dedup_key=dedup)
                pending = set(self._claimable())
                if dedup is not None and any(self.items[i][1] == dedup for i in pending):
                    assert got is None
                else:
                    assert got is not None and got not in self.items
                    self.items[got] = [priority, dedup, None, 0.0, 0, None]

            @rule(who=st.sampled_from(["a", "b"]), limit=st.integers(1, 3),
                  ttl=st.sampled_from([1.0, 5.0]))
            def claim(self, who: str, limit: int, ttl: float) -> None:
                expect = self._claimable()[:limit]
                got = owners[who].claim(self.kind, limit=limit, ttl=ttl)
                assert [w.id for w in got] == expect
                for w in got:
                    it = self.items[w.id]
                    if it[2] is not None:
                        it[4] += 1  # its lease had expired: handed out again
                    it[2], it[3] = owners[who].owner, clock() + ttl
                    assert (w.priority, w.dedup_key, w.attempts, w.last_error) == (
                        it[0], it[1], it[4], it[5])

            def _held(self, who: str) -> list[int]:
                return sorted(i for i, it in self.items.items()
                              if it[2] == owners[who].owner)

            @rule(who=st.sampled_from(["a", "b"]), data=st.data())
            def complete(self, who: str, data: st.DataObject) -> None:
                ids = data.draw(st.lists(st.sampled_from([*self.items, 10**9]), max_size=3)
                                if self.items else st.just([10**9]))
                expect = sorted({i for i in ids if i in self._held(who)})
                assert owners[who].complete(ids) == expect
                for i in expect:
                    del self.items[i]
                self.completed += len(expect)

            @rule(who=st.sampled_from(["a", "b"]), data=st.data(),
                  error=st.sampled_from([None, "boom"]))
            def release(self, who: str, data: st.DataObject, error: str | None) -> None:
                if not self.items:
                    return
                i = data.draw(st.sampled_from(sorted(self.items)))
                held = i in self._held(who)
                assert owners[who].release(i, error=error) is held
                if held:
                    it = self.items[i]
                    it[2], it[3], it[4] = None, 0.0, it[4] + 1
                    it[5] = error if error is not None else it[5]

            @rule(who=st.sampled_from(["a", "b"]), ttl=st.sampled_from([1.0, 5.0]))
            def renew(self, who: str, ttl: float) -> None:
                held = self._held(who)
                assert owners[who].renew_work([*held, 10**9], ttl) == held
                for i in held:
                    self.items[i][3] = clock() + ttl

            @rule(dt=st.sampled_from([0.5, 1.0, 3.0]))
            def advance(self, dt: float) -> None:
                clock.advance(dt)

            @invariant()
            def stats_agree(self) -> None:
                s = owners["b"].queue_stats(self.kind)
                claimable = len(self._claimable())
                assert (s.pending, s.leased, s.completed) == (
                    claimable, len(self.items) - claimable, self.completed)

        run_state_machine_as_test(
            QueueModel,
            settings=settings(max_examples=25, stateful_step_count=25, deadline=None,
                              suppress_health_check=list(HealthCheck)),
        )
