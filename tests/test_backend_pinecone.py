"""The pinecone backend through the official ``pinecone`` SDK against the Pinecone
emulator (:mod:`vecver.testing.emulators.pinecone`): the shared compliance, congruence and
workflow suites unchanged, Pinecone <-> local across instances, the mapping onto Pinecone
checked with the raw SDK (layout, separate index per geometry, limits, filters), secrets,
and end-to-end runs through the CLI (kill -9 during a backfill and resume, cutover under
concurrent searches, rollback), with and without injected faults.

One emulator serves the whole module (started once, stopped at the end); each test gets
its own index, so tests never see each other's data."""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pinecone", reason="needs the pinecone SDK (pip install 'vecver[pinecone]')")

from pinecone import Pinecone  # noqa: E402

from vecver.backends._remote import KEY_FP, KEY_ID, KEY_TEXT  # noqa: E402
from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.pinecone import (  # noqa: E402
    NOTHING,
    REGISTRY,
    PineconeBackend,
    json_key,
    translate_filter,
)
from vecver.backends.registry import get_backend_class  # noqa: E402
from vecver.errors import (  # noqa: E402
    ConfigError,
    FilterNotExpressible,
    InvalidInput,
    InvalidNamespaceName,
    LimitExceeded,
    NamespaceNotFound,
    TransientBackendError,
    UnsupportedMetadata,
)
from vecver.filters import F, Filter  # noqa: E402
from vecver.testing import BackendComplianceSuite  # noqa: E402
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair  # noqa: E402
from vecver.testing.data import make_records, make_spec  # noqa: E402
from vecver.testing.emulators.pinecone import PineconeEmulator  # noqa: E402
from vecver.testing.workflow import (  # noqa: E402
    WorkflowSuite,
    WorkspaceFactory,
    workspace_factory_for,
)
from vecver.types import Record, Stamp  # noqa: E402

KEY = "pc-test-key-do-not-print-4242"
_names = itertools.count()


@pytest.fixture(scope="module")
def emulator() -> Iterator[PineconeEmulator]:
    emu = PineconeEmulator(api_key=KEY)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def index_name() -> str:
    return f"t{os.getpid() % 1000}-{next(_names)}"


@pytest.fixture
def faults_off(emulator: PineconeEmulator) -> Iterator[None]:
    emulator.faults.clear()
    yield
    emulator.faults.clear()


def open_backend(emu: PineconeEmulator, index: str, **kw: Any) -> PineconeBackend:
    return PineconeBackend(index, host=emu.url, api_key=KEY, **kw)


def table(emu: PineconeEmulator, index: str) -> dict[str, Any]:
    return {"name": "pinecone", "index": index, "host": emu.url, "api_key": KEY}


# -- the shared suites ------------------------------------------------------------------------


class TestPineconeCompliance(BackendComplianceSuite):
    """Through the SDK on the emulator; persistent (reopen = a new client on the same
    index) and shared between processes (a second client)."""

    @pytest.fixture
    def backend(self, emulator: PineconeEmulator, index_name: str, faults_off: None
                ) -> Iterator[Backend]:  # fmt: skip
        self.emu, self.index = emulator, index_name
        b = open_backend(emulator, index_name)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return open_backend(self.emu, self.index)

    def open_second(self, backend: Backend) -> Backend:
        return open_backend(self.emu, self.index)


class TestPineconeCongruence(BackendCongruenceSuite):
    steps = 20

    @pytest.fixture
    def pair(self, emulator: PineconeEmulator, index_name: str, faults_off: None
             ) -> Iterator[CongruencePair]:  # fmt: skip
        def reopen(b: Backend) -> Backend:
            b.close()
            return open_backend(emulator, index_name)

        p = CongruencePair(open_backend(emulator, index_name), reopen=reopen)
        yield p
        p.close()


class TestPineconeWorkflow(WorkflowSuite):
    """Both spaces as namespaces of one Pinecone index; the alias is the manifest's."""

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path, emulator: PineconeEmulator, index_name: str,
                          faults_off: None) -> Iterator[WorkspaceFactory]:  # fmt: skip
        with workspace_factory_for(tmp_path, {"default": table(emulator, index_name)}) as make:
            yield make


class TestPineconeToLocalWorkflow(WorkflowSuite):
    """A cross-provider migration: v1 on Pinecone, v2 placed on the local backend."""

    migrate_on = "disk"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path, emulator: PineconeEmulator, index_name: str,
                          faults_off: None) -> Iterator[WorkspaceFactory]:  # fmt: skip
        with workspace_factory_for(tmp_path, {
            "default": table(emulator, index_name),
            "disk": {"name": "local", "path": str(tmp_path / "local")},
        }) as make:  # fmt: skip
            yield make


# -- the mapping onto Pinecone, checked with the raw SDK ---------------------------------------


def _raw(emu: PineconeEmulator, index: str) -> Any:
    pc = Pinecone(api_key=KEY, host=emu.url)
    return pc.index(host=pc.indexes.describe(index).host)


def test_registered_under_its_name() -> None:
    assert get_backend_class("pinecone") is PineconeBackend


def test_layout_namespace_per_space_and_metadata(emulator: PineconeEmulator, index_name: str,
                                                faults_off: None) -> None:  # fmt: skip
    """A space is a namespace of the user's index; its spec is a record of the registry
    namespace; a record's metadata holds the user's fields (lists, objects and nulls as
    JSON under reserved names), the stamp and the text; everything comes back as written
    (ints as ints)."""
    spec = make_spec("vv_items", 4, "dotproduct" if False else "dot")
    rec = Record("doc-1", np.array([1, 2, 3, 4], np.float32), "hello",
                 {"tags": ["a", "b"], "year": 2001, "score": 0.5, "ok": True,
                  "obj": {"x": [1, None]}, "none": None},
                 Stamp.now(spec.fingerprint, "doc-1", "hello"))  # fmt: skip
    with closing(open_backend(emulator, index_name)) as b:
        b.create_namespace(spec)
        b.upsert(spec.name, [rec])
        got = b.fetch(spec.name, ["doc-1"], with_vectors=True)["doc-1"]
        assert got.metadata == rec.metadata and isinstance(got.metadata["year"], int)
        assert got.text == "hello" and got.stamp == rec.stamp
    raw = _raw(emulator, index_name)
    v = raw.fetch(ids=["doc-1"], namespace=spec.name).vectors["doc-1"]
    md = v.metadata
    assert md[KEY_ID] == "doc-1" and md[KEY_TEXT] == "hello" and md[KEY_FP] == spec.fingerprint
    assert md[json_key("tags")] == '["a","b"]' and "tags" not in md
    assert md["year"] == 2001.0 and v.values == [1.0, 2.0, 3.0, 4.0]
    reg = raw.list_paginated(namespace=REGISTRY)
    assert [x.id for x in reg.vectors] == [spec.name]
    assert emulator.state.indexes[index_name].metric == "dotproduct"


def test_other_geometry_gets_its_own_index(emulator: PineconeEmulator, index_name: str,
                                           faults_off: None) -> None:  # fmt: skip
    """Same dimension and metric: one index; another dimension or metric: a separate index
    ``{index}-{dim}-{metric}``; every namespace is listed, and each is searchable."""
    a, b2, c = (make_spec("vv_a", 4, "cosine"), make_spec("vv_b", 4, "cosine"),
                make_spec("vv_c", 6, "l2"))  # fmt: skip
    with closing(open_backend(emulator, index_name)) as b:
        written = {}
        for s in (a, b2, c):
            b.create_namespace(s)
            written[s.name] = make_records(s, 5, seed=2)
            b.upsert(s.name, written[s.name])
        assert b.list_namespaces() == ["vv_a", "vv_b", "vv_c"]
        assert f"{index_name}-6-l2" in emulator.state.indexes
        assert set(emulator.state.indexes[index_name].namespaces) >= {"vv_a", "vv_b"}
        hits = b.search("vv_c", written["vv_c"][0].vector, 2)[0]  # type: ignore[arg-type]
        assert hits[0].id == written["vv_c"][0].id
        assert hits[0].score == pytest.approx(0.0, abs=1e-4)  # -squared distance to itself
    with closing(open_backend(emulator, index_name)) as again:
        assert again.describe_namespace("vv_c") == c


def test_odd_ids_round_trip(emulator: PineconeEmulator, index_name: str, faults_off: None
                            ) -> None:  # fmt: skip
    """Ids Pinecone cannot take as they are (non-ASCII, over 512 characters, our hash
    prefix) are hashed; they come back unchanged from fetch, scan and search."""
    ids = ["ünïcödé-文字", "x" * 2000, "vvh_looks_hashed", "plain", "a b/c?d"]
    spec = make_spec("vv_ids", 4, "cosine")
    recs = [Record(i, r.vector, r.text, r.metadata, Stamp.now(spec.fingerprint, i, r.text or ""))
            for i, r in zip(ids, make_records(spec, len(ids), seed=4))]  # fmt: skip
    with closing(open_backend(emulator, index_name)) as b:
        b.create_namespace(spec)
        b.upsert(spec.name, recs)
        assert set(b.fetch(spec.name, ids)) == set(ids)
        assert sorted(r.id for r in b.scan(spec.name, limit=3).records
                      + b.scan(spec.name, cursor=b.scan(spec.name, limit=3).next_cursor,
                               limit=10).records) == sorted(ids)  # fmt: skip
        hits = b.search(spec.name, recs[0].vector, 10)[0]  # type: ignore[arg-type]
        assert sorted(h.id for h in hits) == sorted(ids)
        b.delete(spec.name, ids[:2])
        assert set(b.fetch(spec.name, ids)) == set(ids[2:])


def test_limits_are_refused_before_anything_is_sent(emulator: PineconeEmulator,
                                                    index_name: str, faults_off: None) -> None:
    """A text that does not fit Pinecone's 40 KiB of metadata is refused (LimitExceeded,
    our documented choice: not stored elsewhere), and so are ints beyond 2**53 (Pinecone
    keeps doubles) — and nothing of the call is written."""
    spec = make_spec("vv_lim", 4, "cosine")
    good = make_records(spec, 2, seed=1)

    def with_(**kw: Any) -> Record:
        r = good[1]
        return Record(r.id, r.vector, kw.get("text", r.text), kw.get("metadata", r.metadata),
                      Stamp.now(spec.fingerprint, r.id, kw.get("text", r.text) or ""))  # fmt: skip

    with closing(open_backend(emulator, index_name)) as b:
        b.create_namespace(spec)
        cases: list[tuple[Record, type[Exception]]] = [
            (with_(text="é" * 30_000), LimitExceeded),  # 60 KB of UTF-8
            (with_(text="x" * 39_000, metadata={"pad": "y" * 2500}), LimitExceeded),
            (with_(metadata={"big": 2**60}), UnsupportedMetadata),
        ]
        for bad, err in cases:
            with pytest.raises(err):
                b.upsert(spec.name, [good[0], bad])
            assert b.count(spec.name) == 0
        b.upsert(spec.name, [good[0], with_(text="x" * 30_000)])
        assert b.fetch(spec.name, [good[1].id])[good[1].id].text == "x" * 30_000


def test_filters_translate_and_refuse_what_pinecone_cannot_express() -> None:
    def native(flt: Filter) -> Any:
        pf, rest = translate_filter(flt)
        assert rest is None
        return pf

    assert translate_filter(None) == (None, None) and translate_filter(Filter()) == (None, None)
    assert native(F.eq("a", "x")) == {"a": {"$eq": "x"}}
    assert native(F.eq("a", 1) & F.range("y", gte=2, lt=5)) == {
        "$and": [{"a": {"$eq": 1}}, {"y": {"$gte": 2, "$lt": 5}}]}
    assert native(F.isin("a", ["x", 2])) == {"a": {"$in": ["x", 2]}}
    assert native(F.isin("a", [True, 1])) == {"$or": [{"a": {"$eq": True}}, {"a": {"$eq": 1}}]}
    assert native(F.isin("a", ["\ud800"])) is NOTHING  # no stored string is invalid Unicode
    # Pinecone orders only numbers: a string range is left to the backend, exactly
    pf, rest = translate_filter(F.eq("a", 1) & F.range("t", gte="c", lt="m"))
    assert pf == {"a": {"$eq": 1}} and rest == F.range("t", gte="c", lt="m")
    for bad in (F.eq("a", 2**60), F.eq("$a", 1), F.range("$t", gte="c")):
        with pytest.raises(FilterNotExpressible):
            translate_filter(bad)


def test_filter_semantics_match_the_reference_on_lists_and_types(
    emulator: PineconeEmulator, index_name: str, faults_off: None
) -> None:
    """A list never equals a scalar; "1", 1 and True are different; ranges only on
    numbers — as :meth:`Filter.matches` says, although Pinecone's ``$eq`` on a list means
    "contains"."""
    spec = make_spec("vv_f", 4, "cosine")
    mds = [{"t": ["a"]}, {"t": "a"}, {"t": 1}, {"t": "1"}, {"t": True}, {"t": 2.5}, {}]
    recs = [Record(f"d{i}", r.vector, "x", md, Stamp.now(spec.fingerprint, f"d{i}", "x"))
            for i, (r, md) in enumerate(zip(make_records(spec, len(mds), seed=3), mds))]
    with closing(open_backend(emulator, index_name)) as b:
        b.create_namespace(spec)
        b.upsert(spec.name, recs)
        for flt in (F.eq("t", "a"), F.eq("t", 1), F.eq("t", True), F.eq("t", "1"),
                    F.isin("t", ["a", 1]), F.range("t", gte=1), F.range("t", gt=2),
                    F.range("t", gte="0", lt="b")):
            got = {h.id for h in b.search(spec.name, recs[0].vector, 10, filter=flt)[0]}  # type: ignore[arg-type]
            want = {r.id for r in recs if flt.matches(r.metadata)}
            assert got == want, flt


def test_bad_cursor_and_registry_name_are_refused(emulator: PineconeEmulator, index_name: str,
                                                  faults_off: None) -> None:  # fmt: skip
    with closing(open_backend(emulator, index_name)) as b:
        spec = make_spec("vv_c", 4, "cosine")
        b.create_namespace(spec)
        b.upsert(spec.name, make_records(spec, 3, seed=1))
        with pytest.raises(InvalidInput, match="cursor"):
            b.scan(spec.name, cursor="%%%not-a-token")
        with pytest.raises(InvalidNamespaceName):
            b.create_namespace(make_spec(REGISTRY, 4, "cosine"))
        with pytest.raises(NamespaceNotFound):
            b.count("vv_missing")


def test_config_errors(emulator: PineconeEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="API key"):
        PineconeBackend("idx", host=emulator.url)
    with pytest.raises(ConfigError, match="index"):
        PineconeBackend("Not_Valid", host=emulator.url, api_key=KEY)
    monkeypatch.setenv("MY_PC_KEY", KEY)
    with closing(PineconeBackend("idx-env", host=emulator.url, api_key_env="MY_PC_KEY")) as b:
        assert b.list_namespaces() == []


# -- consistency lag and faults -------------------------------------------------------------------


def test_writes_are_visible_when_upsert_returns_despite_lag(
    emulator: PineconeEmulator, index_name: str, faults_off: None
) -> None:
    """With a lag before writes reach queries, upsert/delete return only once search,
    scan and count reflect them (read-your-writes); never a silent miss."""
    spec = make_spec("vv_lag", 4, "cosine")
    recs = make_records(spec, 30, seed=5)
    with closing(open_backend(emulator, index_name)) as b:
        b.create_namespace(spec)
        emulator.faults.lag = 0.15
        b.upsert(spec.name, recs)
        assert b.count(spec.name) == 30
        assert b.search(spec.name, recs[7].vector, 1)[0][0].id == recs[7].id  # type: ignore[arg-type]
        b.delete(spec.name, [recs[7].id])
        assert recs[7].id not in {h.id for h in b.search(spec.name, recs[7].vector, 3)[0]}  # type: ignore[arg-type]
        assert b.count(spec.name) == 29


def test_lag_beyond_the_timeout_raises_write_not_visible(
    emulator: PineconeEmulator, index_name: str, faults_off: None
) -> None:
    from vecver.errors import WriteNotVisible

    spec = make_spec("vv_slow", 4, "cosine")
    with closing(open_backend(emulator, index_name, visibility_timeout=0.2)) as b:
        b.create_namespace(spec)
        emulator.faults.lag = 2.0
        with pytest.raises(WriteNotVisible):
            b.upsert(spec.name, make_records(spec, 2, seed=1))
        assert isinstance(WriteNotVisible("x", "upsert", 1, 0.1), TransientBackendError)


def test_429_becomes_a_transient_error_carrying_retry_after(
    emulator: PineconeEmulator, index_name: str, faults_off: None
) -> None:
    """A 429 that outlasts the SDK's own retries reaches vecver as TransientBackendError
    with the server's Retry-After; a 503 likewise (the core retries both)."""
    spec = make_spec("vv_429", 4, "cosine")
    with closing(open_backend(emulator, index_name)) as b:
        b.create_namespace(spec)
        emulator.faults.fail_next(4, 429, retry_after=0.01)
        with pytest.raises(TransientBackendError) as e:
            b.fetch(spec.name, ["a"])
        assert e.value.retry_after == pytest.approx(0.01)
        emulator.faults.fail_next(4, 503, retry_after=0)
        with pytest.raises(TransientBackendError):
            b.fetch(spec.name, ["a"])
        assert b.fetch(spec.name, ["a"]) == {}


def test_api_key_is_never_shown(emulator: PineconeEmulator, index_name: str, faults_off: None,
                                caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Not in repr, not in DEBUG logs of vecver or the SDK, not in error messages."""
    spec = make_spec("vv_sec", 4, "cosine")
    with caplog.at_level(logging.DEBUG):
        b = open_backend(emulator, index_name)
        texts = [repr(b), str(b)]
        b.create_namespace(spec)
        b.upsert(spec.name, make_records(spec, 3, seed=1))
        b.search(spec.name, make_records(spec, 1, seed=1)[0].vector, 2)  # type: ignore[arg-type]
        emulator.faults.fail_next(4, 429, retry_after=0)
        with pytest.raises(TransientBackendError) as e:
            b.count(spec.name)
        texts += [str(e.value), repr(e.value), str(e.value.__cause__)]
        bad = PineconeBackend(index_name, host=emulator.url, api_key="wrong-" + KEY)
        with pytest.raises(Exception) as e2:
            bad.list_namespaces()
        texts += [str(e2.value), repr(e2.value)]
        b.close()
        bad.close()
    texts += [r.getMessage() for r in caplog.records]
    assert caplog.records, "expected DEBUG records from the SDK"
    for t in texts:
        assert KEY not in t


# -- end to end through the CLI ------------------------------------------------------------------


def _e2e_config(index: str, host: str) -> str:
    from vvcli import hash_config

    return hash_config(backend="pinecone").replace(
        'path = "vectors"',
        f'index = "{index}"\nhost = "{host}"\napi_key_env = "VV_TEST_PC_KEY"',
    )


def _state(ws: Any, label: str) -> str:
    with ws.open() as w:
        row = w.manifest.namespace_for("docs", label)
        return str(row.state) if row is not None else "absent"


def _end_to_end(root: Path, emu: PineconeEmulator, index: str, n: int,
                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """ingest v1; migrate to v2, kill -9 during the backfill, resume; verify clean; cutover
    while another process-like reader searches (no error, no empty result); rollback."""
    from test_crash import kill_at, phase
    from vvcli import CliWorkspace, make_docs

    monkeypatch.setenv("VV_TEST_PC_KEY", KEY)
    ws = CliWorkspace(root)
    ws.write_config(_e2e_config(index, emu.url))
    docs = make_docs(n)
    ws.run("-q", "ingest", "docs", ws.jsonl("docs.jsonl", docs), ok=True)
    proc = ws.popen("-q", "migrate", "docs", "--to", "v2", "--batch-size", "16")
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        where = phase(ws)  # kill -9 once the backfill has made a durable checkpoint
        if where.startswith("building done=") and not where.startswith("building done=0"):
            break
        time.sleep(0.05)
    outcome, err = kill_at(proc, 0.0)
    assert "Traceback" not in err, err
    where = phase(ws)
    if where.startswith("no namespace"):
        ws.run("-q", "migrate", "docs", "--to", "v2", "--batch-size", "16", ok=True)
    elif where.startswith("building"):
        ws.run("-q", "backfill", "docs", "--batch-size", "16", ok=True)
    print(f"migrate {outcome} at [{where}]")
    assert outcome == "killed" and where.startswith("building"), (outcome, where)
    assert phase(ws).startswith(f"ready done={n} finished"), (outcome, where, phase(ws))
    rep = ws.run("verify", "docs", "--json", ok=True).json()
    assert rep["clean"] is True, json.dumps(rep, indent=1)
    for sp in rep["spaces"]:
        assert sp["expected"] == sp["present"] == sp["stored"] == n, sp

    errors: list[str] = []
    searches, empty = [0], [0]
    stop = threading.Event()
    queries = [d["text"] for d in docs[:20]]

    def searcher() -> None:
        with ws.open() as w:
            c = w.collection("docs")
            while not stop.is_set() and not errors:
                for q in queries:
                    try:
                        hits = c.search(q, k=3)
                        searches[0] += 1
                        if not hits:
                            empty[0] += 1
                    except Exception as e:  # noqa: BLE001 - counted and reported
                        errors.append(f"{type(e).__name__}: {e}")
                        break

    t = threading.Thread(target=searcher)
    t.start()
    try:
        time.sleep(0.5)
        ws.run("cutover", "docs", "--to", "v2", "--force", ok=True)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(timeout=120)
    assert errors == [] and empty == [0] and searches[0] > 0, (errors[:3], empty, searches)
    assert _state(ws, "v2") == "active"
    ws.run("rollback", "docs", ok=True)
    assert _state(ws, "v1") == "active"
    rep = ws.run("verify", "docs", "--json", ok=True).json()
    assert rep["clean"] is True, json.dumps(rep, indent=1)


def test_end_to_end_kill_resume_cutover_rollback(
    tmp_path: Path, emulator: PineconeEmulator, index_name: str, faults_off: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _end_to_end(tmp_path, emulator, index_name, 300, monkeypatch)


def test_end_to_end_with_faults_ends_clean(
    tmp_path: Path, emulator: PineconeEmulator, index_name: str, faults_off: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same run with 429s (Retry-After), 503s and a consistency lag injected: it
    ends clean, and faults were really injected."""
    emulator.faults.rate_limit = 0.03
    emulator.faults.unavailable = 0.03
    emulator.faults.retry_after = 0.01
    emulator.faults.lag = 0.02
    _end_to_end(tmp_path, emulator, index_name, 150, monkeypatch)
    assert emulator.faults.injected > 0


# -- adopt: a namespace other code filled becomes space v1 ----------------------------------------


def test_adopt_a_namespace_filled_by_other_code(tmp_path: Path, emulator: PineconeEmulator,
                                                index_name: str, faults_off: None) -> None:
    """A namespace written with the raw SDK (ids, a text field, metadata) is adopted as v1
    without copying, takes writes in its own layout (no vecver field), migrates to v2,
    verifies clean, cuts over and rolls back."""
    import vecver
    from vecver.embedders import SpaceEmbedder
    from vecver.ops import backfill as ops_backfill
    from vecver.ops import cutover as ops_cutover
    from vecver.ops import verify as ops_verify
    from vecver.ops.adopt import adopt
    from vecver.space import SpaceSpec
    from vecver.types import Document

    spaces = {"v1": {"embedder": "hash", "dimension": 32},
              "v2": {"embedder": "hash", "dimension": 32, "options": {"seed": 7}}}

    def text(i: int, v: int = 0) -> str:
        return f"article{i} topic{i % 3} alpha{i * 7 % 11} v{v} unique{i}x"

    emb = SpaceEmbedder.for_spec(SpaceSpec(label="v1", **spaces["v1"]))  # type: ignore[arg-type]
    vecs = np.asarray(emb.embed_documents([text(i) for i in range(1, 25)]), np.float32)
    emb.embedder.close()
    pc = Pinecone(api_key=KEY, host=emulator.url)
    pc.indexes.create(name=index_name, dimension=32, metric="cosine")
    raw = pc.index(host=pc.indexes.describe(index_name).host)
    raw.upsert(vectors=[{"id": str(i), "values": vecs[i - 1].tolist(),
                         "metadata": {"text": text(i), "topic": f"topic{i % 3}", "n": i}}
                        for i in range(1, 25)], namespace="articles")  # fmt: skip
    cfg = vecver.Config.from_mapping({"manifest": {"path": "m.db"},
                                      "backend": table(emulator, index_name),
                                      "spaces": spaces}, base=tmp_path)  # fmt: skip
    with closing(vecver.Workspace(cfg, progress=False)) as ws:
        rep = adopt(ws, "docs", namespace="articles", space="v1", text_field="text")
        assert (rep.documents, rep.dimension, rep.metric) == (24, 32, "cosine")
        docs = ws.collection("docs")
        hit = docs.search(text(5), k=1)[0]
        assert (hit.id, hit.text, hit.space, hit.metadata["topic"]) == ("5", text(5), "v1",
                                                                         "topic2")
        hits = docs.search(text(5), k=30, filter={"topic": "topic1", "n": {"gte": 10}})
        assert sorted(h.id for h in hits) == sorted(
            str(i) for i in range(1, 25) if i % 3 == 1 and i >= 10)
        docs.upsert([Document("101", text(101), {"topic": "topic2", "n": 101})])
        stored = raw.fetch(ids=["101"], namespace="articles").vectors["101"].metadata
        assert stored == {"text": text(101), "topic": "topic2", "n": 101.0}
        ops_backfill.migrate(ws, "docs", "v2", progress=False)
        for r in ops_verify.verify(ws, "docs"):
            assert r.clean, r
        ops_cutover.cutover(ws, "docs", to="v2", force=True)
        assert docs.search(text(101), k=1)[0].space == "v2"
        ops_cutover.rollback(ws, "docs")
        assert docs.search(text(101), k=1)[0].space == "v1"
        assert raw.describe_namespace(namespace="articles").record_count == 25
