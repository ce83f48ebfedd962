"""The fault-injecting wrapper (vecver.testing.faults.FaultyBackend): it behaves exactly
like the backend it wraps until told otherwise, fails the calls it is told to fail, runs
hooks at the moment asked, and lags reads like an eventually consistent database — in
which case the base class's read-your-writes handling makes writes visible before they
return, or refuses with WriteNotVisible."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from vvcore import assert_all_live_match, assert_verify_clean, config, make_docs, model_of

import vecver
from vecver.backends.base import Backend
from vecver.backends.local import LocalBackend
from vecver.backends.memory import AliasedMemoryBackend, MemoryBackend
from vecver.errors import (
    BackendError,
    InvalidInput,
    NamespaceNotFound,
    TransientBackendError,
    WriteNotVisible,
)
from vecver.testing import BackendComplianceSuite, make_records, make_spec, restamp
from vecver.testing.faults import Call, FaultyBackend, InjectedFault
from vecver.types import Record


@pytest.fixture
def faulty() -> Iterator[FaultyBackend]:
    b = FaultyBackend(MemoryBackend())
    yield b
    b.close()


def _filled(b: Backend, name: str = "ns", n: int = 10) -> list[Record]:
    spec = make_spec(name, 8)
    b.create_namespace(spec)
    recs = make_records(spec, n, seed=1)
    b.upsert(name, recs)
    return recs


# -- a transparent wrapper passes the whole compliance suite ---------------------------


class TestFaultyMemoryBackendCompliance(BackendComplianceSuite):
    """Without faults the wrapper is the backend it wraps (aliases included)."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = FaultyBackend(AliasedMemoryBackend())
        yield b
        b.close()


class TestLaggingBackendCompliance(BackendComplianceSuite):
    """A wrapper whose reads lag its writes by two reads still meets the whole contract:
    the base waits until each write is visible before returning (read-your-writes)."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = FaultyBackend(MemoryBackend(), lag_reads=2, visibility_timeout=5.0)
        yield b
        b.close()


def test_wrapper_declares_the_inner_capabilities_and_naming() -> None:
    b = FaultyBackend(MemoryBackend())
    assert b.capabilities == MemoryBackend.capabilities
    assert b.physical_name("c", "v 1", "abcdef123") == MemoryBackend.physical_name(
        "c", "v 1", "abcdef123"
    )
    assert b.score_from_distance("l2", 2.0) == 2.0  # the reference returns scores
    lag = FaultyBackend(MemoryBackend(), lag_seconds=0.01)
    assert lag.capabilities.consistency == "eventual"
    assert MemoryBackend.capabilities.consistency == "strong"  # the class is untouched


# -- failing calls ---------------------------------------------------------------------


def test_nth_call_fails_transiently_once(faulty: FaultyBackend) -> None:
    recs = _filled(faulty)
    fault = faulty.fail("upsert", nth=2)
    faulty.upsert("ns", [restamp(recs[0], text="one")])  # the 2nd upsert call overall
    with pytest.raises(TransientBackendError):
        faulty.upsert("ns", [restamp(recs[1], text="two")])
    faulty.upsert("ns", [restamp(recs[1], text="three")])
    assert fault.fired == 1 and fault.matched == 3
    got = faulty.fetch("ns", [recs[0].id, recs[1].id])
    assert got[recs[0].id].text == "one" and got[recs[1].id].text == "three"


def test_failure_before_the_call_writes_nothing(faulty: FaultyBackend) -> None:
    recs = _filled(faulty)
    faulty.fail("delete", error="permanent")
    with pytest.raises(InjectedFault):
        faulty.delete("ns", [recs[0].id])
    assert faulty.count("ns") == 10


def test_failure_after_the_call_lands_the_write(faulty: FaultyBackend) -> None:
    recs = _filled(faulty)
    faulty.fail("delete", after_call=True, error=BackendError("response lost"))
    with pytest.raises(BackendError, match="response lost"):
        faulty.delete("ns", [recs[0].id])
    assert faulty.count("ns") == 9


def test_every_call_on_one_namespace(faulty: FaultyBackend) -> None:
    _filled(faulty, "vv_c__v1_x")
    _filled(faulty, "vv_c__v2_y")
    faulty.fail(None, every=True, namespace_contains="__v2_", error="permanent")
    for _ in range(3):
        with pytest.raises(InjectedFault):
            faulty.count("vv_c__v2_y")
        with pytest.raises(InjectedFault):
            faulty.fetch("vv_c__v2_y", ["x"])
    assert faulty.count("vv_c__v1_x") == 10
    faulty.clear_faults()
    assert faulty.count("vv_c__v2_y") == 10


def test_error_factory_sees_the_call(faulty: FaultyBackend) -> None:
    _filled(faulty)
    seen: list[Call] = []

    def make(call: Call) -> BaseException:
        seen.append(call)
        return TransientBackendError("busy", retry_after=1.5)

    faulty.fail("scan", times=2, error=make)
    for _ in range(2):
        with pytest.raises(TransientBackendError) as err:
            faulty.scan("ns")
        assert err.value.retry_after == 1.5
    assert len(faulty.scan("ns").records) == 10
    assert [c.number for c in seen] == [1, 2] and seen[0].namespace == "ns"


def test_bad_input_is_refused_before_any_fault(faulty: FaultyBackend) -> None:
    """Validation is the base's: a bad batch never reaches the wrapper (nor a fault)."""
    _filled(faulty)
    fault = faulty.fail("upsert", every=True)
    with pytest.raises(InvalidInput):
        faulty.upsert("ns", make_records(make_spec("ns", 9), 1))
    assert fault.matched == 0


def test_unknown_operation_is_refused(faulty: FaultyBackend) -> None:
    with pytest.raises(ValueError):
        faulty.fail("upsertt")
    with pytest.raises(ValueError):
        faulty.before("nope", lambda call: None)


# -- hooks -----------------------------------------------------------------------------


def test_hooks_interleave_a_writer(faulty: FaultyBackend) -> None:
    """A before-hook runs another write at the exact moment: the read sees it."""
    recs = _filled(faulty)
    fired: list[str] = []

    def writer(call: Call) -> None:
        if not fired:
            fired.append(call.op)
            faulty.delete("ns", [recs[3].id])

    faulty.before("fetch", writer)
    results: list[object] = []
    faulty.after("fetch", lambda call, result: results.append(result))
    got = faulty.fetch("ns", [r.id for r in recs])
    assert recs[3].id not in got and len(got) == 9
    assert fired == ["fetch"] and results and results[-1] is got


def test_chunked_calls_are_counted_where_the_database_is_called() -> None:
    from dataclasses import replace

    inner = MemoryBackend()
    b = FaultyBackend(
        inner,
        capabilities=replace(inner.capabilities, max_batch=4, max_fetch_ids=3, max_delete_ids=2),
    )
    spec = make_spec("ns", 8)
    b.create_namespace(spec)
    recs = make_records(spec, 10, seed=2)
    b.upsert("ns", recs)
    assert b.calls["upsert"] == 3
    assert len(b.fetch("ns", [r.id for r in recs])) == 10
    assert b.calls["fetch"] == 4
    b.delete("ns", [r.id for r in recs[:5]])
    assert b.calls["delete"] == 3
    assert inner.count("ns") == 5
    b.close()


# -- read lag --------------------------------------------------------------------------


def test_lagging_writes_are_invisible_to_the_inner_backend_until_read() -> None:
    inner = MemoryBackend()
    b = FaultyBackend(inner, lag_reads=3, close_inner=False)
    spec = make_spec("ns", 8)
    b.create_namespace(spec)
    recs = make_records(spec, 4, seed=3)
    b.upsert("ns", recs)  # returns only once visible: the base polled fetch 3 times
    assert b.calls["fetch"] >= 3
    assert inner.count("ns") == 4 and b.pending_writes == 0
    b.delete("ns", [recs[0].id])
    assert inner.count("ns") == 3 and b.count("ns") == 3
    b.close()
    inner.close()


def test_lag_longer_than_the_timeout_is_refused_not_missed() -> None:
    b = FaultyBackend(MemoryBackend(), lag_seconds=30.0, visibility_timeout=0.05)
    spec = make_spec("ns", 8)
    b.create_namespace(spec)
    recs = make_records(spec, 3, seed=4)
    with pytest.raises(WriteNotVisible) as err:
        b.upsert("ns", recs)
    assert err.value.op == "upsert" and err.value.pending == 3
    assert isinstance(err.value, TransientBackendError)
    assert b.pending_writes == 1
    b.settle()
    assert b.count("ns") == 3
    b.close()


def test_lag_in_seconds_becomes_visible() -> None:
    b = FaultyBackend(MemoryBackend(), lag_seconds=0.05, visibility_timeout=5.0)
    spec = make_spec("ns", 8)
    b.create_namespace(spec)
    recs = make_records(spec, 3, seed=5)
    b.upsert("ns", recs)
    assert b.count("ns") == 3
    q = np.asarray(recs[0].vector, dtype=np.float32)
    assert b.search("ns", q, 1)[0][0].id == recs[0].id
    b.close()


def test_drop_discards_lagging_writes() -> None:
    b = FaultyBackend(MemoryBackend(), lag_seconds=30.0, visibility_timeout=0.01)
    spec = make_spec("ns", 8)
    b.create_namespace(spec)
    with pytest.raises(WriteNotVisible):
        b.upsert("ns", make_records(spec, 2, seed=6))
    b.drop_namespace("ns")
    assert b.pending_writes == 0
    with pytest.raises(NamespaceNotFound):
        b.count("ns")
    b.close()


def test_wraps_the_local_backend(tmp_path: Path) -> None:
    b = FaultyBackend(LocalBackend(str(tmp_path / "db")))
    recs = _filled(b)
    b.fail("upsert", error="permanent")
    with pytest.raises(InjectedFault):
        b.upsert("ns", [restamp(recs[0], text="x")])
    assert b.fetch("ns", [recs[0].id])[recs[0].id].text == recs[0].text
    b.close()
    assert b.inner.closed


# -- the core on a backend whose reads lag ---------------------------------------------


def test_migration_on_a_lagging_backend_verifies_clean(fast_dir: Path) -> None:
    """Ingest, updates, deletes, a migration and a cutover on a backend whose reads lag
    its writes (declared eventual, through the wrapper): every write is visible when it
    returns, so the migration ends ``ready`` and ``verify`` is clean for both spaces."""
    be = FaultyBackend(MemoryBackend(), lag_reads=2, visibility_timeout=10.0)
    with vecver.Workspace(config(fast_dir), backend=be, progress=False) as ws:
        c = ws.collection("c")
        docs = make_docs(40)
        c.upsert(docs)
        model = model_of(docs)
        rep = vecver.migrate(ws, "c", "v2", progress=False)
        assert rep.state == "ready"
        newer = make_docs(10, version=1)
        c.upsert(newer)
        model.update(model_of(newer))
        c.delete(["d0003", "d0004"])
        del model["d0003"], model["d0004"]
        assert be.pending_writes == 0
        assert_all_live_match(ws, "c", model)
        assert_verify_clean(ws)


def test_lag_beyond_the_timeout_fails_the_write_cleanly(fast_dir: Path) -> None:
    """When the lag is longer than the declared ``visibility_timeout`` the write is refused
    with ``WriteNotVisible`` (a transient error naming the namespace), never acknowledged
    while invisible."""
    be = FaultyBackend(MemoryBackend(), lag_seconds=60.0, visibility_timeout=0.05)
    with vecver.Workspace(config(fast_dir), backend=be, progress=False) as ws:
        with pytest.raises((WriteNotVisible, BackendError)) as err:
            ws.collection("c").upsert(make_docs(3))
        chain: list[BaseException] = []
        e: BaseException | None = err.value
        while e is not None:
            chain.append(e)
            e = e.__cause__ or getattr(e, "cause", None)
        assert any(isinstance(x, WriteNotVisible) for x in chain), chain
