"""The qdrant backend against qdrant-client's local mode (``:memory:`` and ``path=``): the
shared compliance suite, congruence with the memory reference, the workflow suite (on one
Qdrant instance, and Qdrant <-> local across instances), filter translation, id mapping,
secrets; and the same suites against a real server when ``VECVER_QDRANT_URL`` names one."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_client", reason="needs qdrant-client (pip install 'vecver[qdrant]')")

from qdrant_client import QdrantClient  # noqa: E402
from qdrant_client.http import models  # noqa: E402

from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.qdrant import QdrantBackend  # noqa: E402
from vecver.backends.qdrant._filters import KEY_LISTS, field_key, translate_filter  # noqa: E402
from vecver.backends.registry import get_backend_class  # noqa: E402
from vecver.errors import (  # noqa: E402
    BackendInUse,
    ConfigError,
    FilterNotExpressible,
    ForeignNamespace,
    InvalidInput,
    InvalidNamespaceName,
    NamespaceExists,
    NamespaceNotFound,
    TransientBackendError,
    UnsupportedFilter,
)
from vecver.filters import F, Filter  # noqa: E402
from vecver.testing import (  # noqa: E402
    AliasTests,
    BackendComplianceSuite,
    ConsistencyTests,
    LifecycleTests,
    NamespaceTests,
    PersistenceTests,
    ReadTests,
    WriteTests,
)
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair  # noqa: E402
from vecver.testing.data import make_records, make_spec, make_vectors  # noqa: E402
from vecver.testing.workflow import (  # noqa: E402
    WorkflowSuite,
    WorkspaceFactory,
    workspace_factory_for,
)
from vecver.types import Record, Stamp  # noqa: E402

SERVER_URL = os.environ.get("VECVER_QDRANT_URL")
SERVER_KEY = os.environ.get("VECVER_QDRANT_API_KEY")
needs_server = pytest.mark.skipif(
    not SERVER_URL,
    reason="no Qdrant server: set VECVER_QDRANT_URL (and VECVER_QDRANT_API_KEY) to run "
    "the suites against one",
)


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for local-mode storage, in memory-backed /dev/shm where there is one:
    qdrant-client's local mode commits every point in its own SQLite transaction (one fsync
    each), which on this disk makes a test take minutes. Same code, faster storage."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="vecver-qdrant-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- compliance -----------------------------------------------------------------------------


class TestQdrantMemoryCompliance(BackendComplianceSuite):
    """Local mode in memory: not persistent, one process."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = QdrantBackend(location=":memory:")
        yield b
        b.close()


class TestQdrantPathCompliance(
    NamespaceTests,
    WriteTests,
    ReadTests,
    AliasTests,
    LifecycleTests,
    PersistenceTests,
    ConsistencyTests,
):
    """Local mode in a directory: persistent (reopen), one client at a time. Search, filter
    and bad-input tests run on ``:memory:`` only: both modes use the same collection code,
    the directory adds persistence (and the suite's time budget is spent there)."""

    @pytest.fixture
    def backend(self, fast_dir: Path) -> Iterator[Backend]:
        self.path = fast_dir / "qdrant"
        b = QdrantBackend(path=self.path)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return QdrantBackend(path=self.path)


# -- congruence with the memory reference -----------------------------------------------------


class TestQdrantPathCongruence(BackendCongruenceSuite):
    """Local mode in a directory, the candidate closed and reopened now and then (the
    in-memory mode runs the same collection code without the reopening)."""

    steps = 50

    @pytest.fixture
    def pair(self, fast_dir: Path) -> Iterator[CongruencePair]:
        path = fast_dir / "qdrant"

        def reopen(b: Backend) -> Backend:
            b.close()
            return QdrantBackend(path=path)

        p = CongruencePair(QdrantBackend(path=path), reopen=reopen)
        yield p
        p.close()


# -- the workflow suite -----------------------------------------------------------------------


class TestQdrantWorkflow(WorkflowSuite):
    """One Qdrant instance (local mode in a directory): cutover and rollback switch the
    native alias."""

    @pytest.fixture
    def workspace_factory(self, fast_dir: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(
            fast_dir, {"default": {"name": "qdrant", "path": str(fast_dir / "q")}}
        ) as make:
            yield make


class TestQdrantToLocalWorkflow(WorkflowSuite):
    """v1 on Qdrant, v2 placed on the local backend (``migrate --on disk``)."""

    migrate_on = "disk"

    @pytest.fixture
    def workspace_factory(self, fast_dir: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(
            fast_dir,
            {
                "default": {"name": "qdrant", "path": str(fast_dir / "q")},
                "disk": {"name": "local", "path": str(fast_dir / "local")},
            },
        ) as make:
            yield make


class TestLocalToQdrantWorkflow(WorkflowSuite):
    """v1 on the local backend, v2 placed on Qdrant (``migrate --on q``): after cutover
    Qdrant's alias names v2, after rollback it is gone."""

    migrate_on = "q"

    @pytest.fixture
    def workspace_factory(self, fast_dir: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(
            fast_dir,
            {
                "default": {"name": "local", "path": str(fast_dir / "local")},
                "q": {"name": "qdrant", "path": str(fast_dir / "q")},
            },
        ) as make:
            yield make


# -- the mapping onto Qdrant, checked with the raw client ---------------------------------------


def _records(n: int, ids: list[str] | None = None, dim: int = 4) -> tuple[list[Record], str]:
    spec = make_spec("vv_items", dim, "cosine")
    recs = make_records(spec, n, seed=3)
    if ids is not None:
        recs = [
            Record(
                i, r.vector, r.text, dict(r.metadata), Stamp.now(spec.fingerprint, i, r.text or "")
            )
            for i, r in zip(ids, recs)
        ]
    return recs, spec.fingerprint


def test_points_hold_uuid5_ids_and_the_payload_layout(fast_dir: Path) -> None:
    """Each record is one point under ``uuid5(id)``; its payload holds the original id,
    the stamp, the text and the metadata (top level), plus the names of list fields."""
    from vecver.backends._remote import KEY_AT, KEY_FP, KEY_HASH, KEY_ID, KEY_TEXT, uuid_for

    path = fast_dir / "q"
    spec = make_spec("vv_items", 4, "dot")
    rec = Record("doc-1", np.array([1, 2, 3, 4], np.float32), "hello",
                 {"tags": ["a", "b"], "year": 2001, "nested": {"x": 1}},
                 Stamp.now(spec.fingerprint, "doc-1", "hello"))  # fmt: skip
    with closing(QdrantBackend(path=path)) as b:
        b.create_namespace(spec)
        b.upsert(spec.name, [rec])
    raw = QdrantClient(path=str(path))
    try:
        (point,) = raw.retrieve(spec.name, ids=[uuid_for("doc-1")], with_vectors=True)
        assert str(point.id) == uuid_for("doc-1")
        p = point.payload or {}
        assert p[KEY_ID] == "doc-1" and p[KEY_TEXT] == "hello"
        assert p[KEY_FP] == spec.fingerprint and p[KEY_HASH] == rec.stamp.source_hash
        assert p[KEY_AT] == pytest.approx(rec.stamp.written_at)
        assert p["tags"] == ["a", "b"] and p["year"] == 2001 and p["nested"] == {"x": 1}
        assert p[KEY_LISTS] == ["tags"]
        assert point.vector == [1.0, 2.0, 3.0, 4.0]
        info = raw.get_collection(spec.name)
        assert info.config.params.vectors.size == 4  # type: ignore[union-attr]
        assert (info.config.metadata or {})["vecver"]["fingerprint"] == spec.fingerprint
    finally:
        raw.close()


def test_id_mapping_round_trips_odd_ids() -> None:
    """Unicode, very long, UUID-looking, case-differing and whitespace ids map to distinct
    point ids and come back unchanged from fetch, scan and search."""
    ids = ["ünïcödé-文字-🙂", "x" * 10_000, str(uuid.uuid4()), "Doc", "doc", " doc ", "a/b?c#d",
           "12345"]  # fmt: skip
    recs, _ = _records(len(ids), ids)
    with closing(QdrantBackend(location=":memory:")) as b:
        spec = make_spec("vv_items", 4, "cosine")
        b.create_namespace(spec)
        b.upsert(spec.name, recs)
        assert b.count(spec.name) == len(ids)
        assert set(b.fetch(spec.name, ids)) == set(ids)
        assert sorted(r.id for r in b.scan(spec.name, limit=100).records) == sorted(ids)
        hits = b.search(spec.name, recs[0].vector, len(ids))[0]  # type: ignore[arg-type]
        assert sorted(h.id for h in hits) == sorted(ids)
        b.delete(spec.name, ids[:2])
        assert set(b.fetch(spec.name, ids)) == set(ids[2:])


def test_a_uuid_collision_reads_as_absent() -> None:
    """A point found under an id's UUID whose payload names another id is not returned as
    that id (the check that guards against hash collisions)."""
    from vecver.backends._remote import KEY_ID, uuid_for

    with closing(QdrantBackend(location=":memory:")) as b:
        spec = make_spec("vv_items", 4, "cosine")
        b.create_namespace(spec)
        recs, _ = _records(1, ["real"])
        b.upsert(spec.name, recs)
        b._client.set_payload(spec.name, payload={KEY_ID: "other"}, points=[uuid_for("real")])
        assert b.fetch(spec.name, ["real"]) == {}


def test_scan_cursor_is_a_point_id_and_garbage_is_refused() -> None:
    with closing(QdrantBackend(location=":memory:")) as b:
        spec = make_spec("vv_items", 4, "cosine")
        b.create_namespace(spec)
        recs, _ = _records(10)
        b.upsert(spec.name, recs)
        page = b.scan(spec.name, limit=4)
        assert page.next_cursor is not None and str(uuid.UUID(page.next_cursor))
        with pytest.raises(InvalidInput, match="cursor"):
            b.scan(spec.name, cursor="not-a-cursor")


def test_scores_follow_vecvers_convention() -> None:
    """cosine similarity, dot product and the negative squared euclidean distance."""
    from vecver.backends.base import exact_scores

    vecs = make_vectors(30, 6, 5)
    q = make_vectors(2, 6, 6)
    with closing(QdrantBackend(location=":memory:")) as b:
        for metric in ("cosine", "dot", "l2"):
            spec = make_spec(f"vv_{metric}", 6, metric)
            b.create_namespace(spec)
            recs = make_records(spec, 30, seed=1, vectors=vecs)
            b.upsert(spec.name, recs)
            want = exact_scores(metric, q, vecs)
            for qi, hits in enumerate(b.search(spec.name, q, 30)):
                for h in hits:
                    j = int(h.id.split("-")[1])
                    assert h.score == pytest.approx(float(want[qi, j]), abs=1e-4), metric
                assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


# -- namespaces, aliases and what vecver did not create --------------------------------------


def test_alias_switch_is_one_update_request() -> None:
    """Re-pointing an alias sends one ``update_collection_aliases`` request holding the
    delete and the create (atomic on the server); the raw client sees the new target and
    searches through it."""
    with closing(QdrantBackend(location=":memory:")) as b:
        a, c = make_spec("vv_a", 4, "cosine"), make_spec("vv_b", 4, "cosine")
        for s in (a, c):
            b.create_namespace(s)
        b.set_alias("coll", a.name)
        calls: list[list[object]] = []
        real = b._client.update_collection_aliases

        def spy(change_aliases_operations: list[object], **kw: object) -> bool:
            calls.append(list(change_aliases_operations))
            return real(change_aliases_operations=change_aliases_operations, **kw)  # type: ignore[arg-type]

        b._client.update_collection_aliases = spy  # type: ignore[method-assign,assignment]
        b.set_alias("coll", c.name)
        assert len(calls) == 1
        kinds = [type(op).__name__ for op in calls[0]]
        assert kinds == ["DeleteAliasOperation", "CreateAliasOperation"]
        assert b._client.get_aliases().aliases[0].collection_name == c.name
        assert b.get_alias("coll") == c.name
        recs, _ = _records(3)
        b.upsert(c.name, recs)
        got = b._client.query_points("coll", query=recs[0].vector.tolist(), limit=1)  # type: ignore[union-attr]
        assert len(got.points) == 1
        # an alias is not a namespace: not listed, not described, never dropped through
        assert "coll" not in b.list_namespaces()
        with pytest.raises(NamespaceNotFound):
            b.describe_namespace("coll")
        b.drop_namespace("coll")
        assert b.count(c.name) == 3
        with pytest.raises(NamespaceExists, match="alias"):
            b.create_namespace(make_spec("coll", 4, "cosine"))
        # dropping a collection drops its aliases (as the reference does)
        b.drop_namespace(c.name)
        assert b.get_alias("coll") is None


def test_a_collection_vecver_did_not_create_is_left_alone(fast_dir: Path) -> None:
    """A collection without vecver's metadata is not listed, not described, not written,
    and neither dropped nor re-created over: ``ForeignNamespace``."""
    path = fast_dir / "q"
    raw = QdrantClient(path=str(path))
    raw.create_collection("theirs", vectors_config=models.VectorParams(
        size=4, distance=models.Distance.COSINE))  # fmt: skip
    raw.upsert("theirs", points=[models.PointStruct(id=1, vector=[1.0, 0.0, 0.0, 0.0], payload={})])
    raw.close()
    with closing(QdrantBackend(path=path)) as b:
        assert "theirs" not in b.list_namespaces()
        for op in (
            lambda: b.describe_namespace("theirs"),
            lambda: b.drop_namespace("theirs"),
            lambda: b.create_namespace(make_spec("theirs", 4, "cosine")),
            lambda: b.upsert("theirs", _records(1)[0]),
            lambda: b.count("theirs"),
        ):
            with pytest.raises(ForeignNamespace):
                op()
    raw = QdrantClient(path=str(path))
    try:
        assert raw.count("theirs").count == 1
    finally:
        raw.close()


def test_physical_names_follow_qdrants_rule() -> None:
    assert QdrantBackend.physical_name("docs", "v2", "ab" * 32) == "vv_docs__v2_abababab"
    # a replaced character adds a hash of the exact inputs: v2.1 and v2_1 stay apart
    dotted = QdrantBackend.physical_name("docs", "v2.1", "ab" * 32)
    assert dotted.startswith("vv_docs__v2_1_abababab_")
    assert dotted != QdrantBackend.physical_name("docs", "v2_1", "ab" * 32)
    odd = QdrantBackend.physical_name("a:b/c", "v1", "ab" * 32)
    QdrantBackend.check_namespace_name(odd)
    assert odd != QdrantBackend.physical_name("a_b_c", "v1", "ab" * 32)
    long = QdrantBackend.physical_name("c" * 300, "v1", "ab" * 32)
    assert len(long) <= 255 and long != QdrantBackend.physical_name("c" * 301, "v1", "ab" * 32)
    for bad in ("a:b", "a/b", 'a"b', "..", "a*"):
        with pytest.raises(InvalidNamespaceName):
            QdrantBackend.check_namespace_name(bad)


def test_one_client_per_directory(fast_dir: Path) -> None:
    with closing(QdrantBackend(path=fast_dir / "q")) as first:
        with pytest.raises(BackendInUse) as e:
            QdrantBackend(path=fast_dir / "q")
        assert e.value.location == str(fast_dir / "q")
        first.list_namespaces()
    assert QdrantBackend(path=fast_dir / "q").capabilities.persistent


def test_capabilities_per_mode(fast_dir: Path) -> None:
    with (
        closing(QdrantBackend(location=":memory:")) as m,
        closing(QdrantBackend(path=fast_dir / "q")) as p,
    ):
        assert m.capabilities.native_alias and p.capabilities.native_alias
        assert not m.capabilities.persistent and p.capabilities.persistent
        assert not m.capabilities.shared_between_processes
        assert not p.capabilities.shared_between_processes
    assert QdrantBackend.capabilities.shared_between_processes  # a server
    assert get_backend_class("qdrant") is QdrantBackend


@pytest.mark.parametrize("kwargs", [
    {}, {"url": "http://x", "path": "/tmp/x"}, {"location": "http://x:6333"},
    {"location": ":memory:", "hnsw_ef": 0}, {"location": ":memory:", "timeout": 0},
])  # fmt: skip
def test_bad_options_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        QdrantBackend(**kwargs)  # type: ignore[arg-type]


# -- filters ------------------------------------------------------------------------------


def test_filter_translation_is_native_where_it_can_be() -> None:
    """eq/in on strings and bools are keyword/bool matches, numbers closed ranges, numeric
    ranges ranges; every filter excludes records whose field holds a list."""
    qf = translate_filter(F.eq("topic", "sport") & F.eq("n", 3) & F.eq("flag", True)
                          & F.range("year", gte=2000, lt=2010))  # fmt: skip
    assert qf.client_side is None and not qf.matches_nothing and qf.native is not None
    must = qf.native.must
    assert isinstance(must, list)
    assert must[0] == models.FieldCondition(key="topic", match=models.MatchValue(value="sport"))
    assert must[1] == models.FieldCondition(key="n", range=models.Range(gte=3, lte=3))
    assert must[2] == models.FieldCondition(key="flag", match=models.MatchValue(value=True))
    assert must[3] == models.FieldCondition(key="year", range=models.Range(gte=2000, lt=2010))
    assert qf.native.must_not == [models.FieldCondition(
        key=KEY_LISTS, match=models.MatchAny(any=["topic", "n", "flag", "year"]))]  # fmt: skip
    mixed = translate_filter(F.isin("v", ["a", "b", 1, True]))
    assert isinstance(mixed.native, models.Filter) and isinstance(mixed.native.must, list)
    inner = mixed.native.must[0]
    assert isinstance(inner, models.Filter) and isinstance(inner.should, list)
    assert len(inner.should) == 3  # MatchAny(a, b), MatchValue(True), Range(1, 1)


def test_filters_qdrant_cannot_express_natively() -> None:
    """String ranges are resolved on the client; conditions nothing can match (vecver's
    own fields, a range bounded by a number and a string) ask no database."""
    assert translate_filter(F.range("title", gte="c")).client_side is not None
    assert translate_filter(F.eq("_vv_id", "x")).matches_nothing
    assert translate_filter(F.range("year", gte=1, lt="z")).matches_nothing
    assert field_key("a.b") == '"a.b"' and field_key("x-1_y") == "x-1_y"


@pytest.mark.parametrize("flt", [
    F.eq('we"ird', 1), F.eq("n", 2**60), F.isin("n", [1, -(2**54)]), F.range("n", lt=2**53 + 1),
    F.eq("s", "bad\udc80"), F.isin("s", ["ok", "\ud800"]), F.eq("bad\udc80", "x"),
])  # fmt: skip
def test_inexpressible_filters_are_refused(flt: Filter) -> None:
    """Refused with ``FilterNotExpressible`` (an ``UnsupportedFilter``) before Qdrant is
    asked, never run as a wider filter."""
    with closing(QdrantBackend(location=":memory:")) as b:
        spec = make_spec("vv_items", 4, "cosine")
        b.create_namespace(spec)
        with pytest.raises(FilterNotExpressible) as e:
            b.search(spec.name, make_vectors(1, 4, 1), 3, filter=flt)
        assert isinstance(e.value, UnsupportedFilter)
        assert e.value.backend == "qdrant" and e.value.field == flt.conditions[0].field


def test_field_names_with_dots_are_not_paths() -> None:
    """A metadata key ``"a.b"`` is one field: it matches ``{"a.b": 1}``, never the nested
    ``{"a": {"b": 1}}`` (Qdrant would read an unquoted key as a path)."""
    with closing(QdrantBackend(location=":memory:")) as b:
        spec = make_spec("vv_items", 4, "cosine")
        b.create_namespace(spec)
        recs = make_records(spec, 2, seed=2, metadata=None)
        recs[0].metadata.update({"a.b": 1, "x y": "s"})
        recs[1].metadata.update({"a": {"b": 1}, "x": {"y": "s"}})
        b.upsert(spec.name, recs)
        q = make_vectors(1, 4, 9)
        for flt in (F.eq("a.b", 1), F.range("a.b", gte=0), F.eq("x y", "s"),
                    F.range("x y", gte="a")):  # fmt: skip
            assert [h.id for h in b.search(spec.name, q, 5, filter=flt)[0]] == [recs[0].id]


def test_string_ranges_admitting_too_many_records_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import vecver.backends.qdrant._backend as qb

    monkeypatch.setattr(qb, "MAX_RESOLVED_IDS", 5)
    with closing(QdrantBackend(location=":memory:")) as b:
        spec = make_spec("vv_items", 4, "cosine")
        b.create_namespace(spec)
        b.upsert(spec.name, make_records(spec, 20, seed=1))
        q = make_vectors(1, 4, 9)
        with pytest.raises(FilterNotExpressible, match="more than 5"):
            b.search(spec.name, q, 3, filter=F.range("title", gte="a"))
        # narrowed by a native condition, it resolves
        narrow = F.range("title", gte="a") & F.range("rank", lt=3)
        assert {h.id for h in b.search(spec.name, q, 10, filter=narrow)[0]} == {
            r.id for r in make_records(spec, 20, seed=1)[:3]
        }


# -- a server that answers with errors: translation and secrets --------------------------------


class _StubServer:
    """A tiny HTTP server standing in for Qdrant's REST API: every request is answered
    with ``status`` (and ``headers``); the requests' headers are recorded."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.status = 503
        self.headers: dict[str, str] = {}
        self.seen: list[dict[str, str]] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                stub.seen.append({k.lower(): v for k, v in self.headers.items()})
                body = b'{"status": {"error": "stub says no"}, "time": 0.0}'
                self.send_response(stub.status)
                for k, v in stub.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[_StubServer]:
    s = _StubServer()
    yield s
    s.close()


SECRET = "sk-vecver-test-7f3a9c"


def _server_backend(url: str) -> QdrantBackend:
    with pytest.warns(UserWarning, match="insecure"):  # qdrant-client's warning, no key in it
        return QdrantBackend(url, api_key=SECRET, timeout=2)


@pytest.mark.parametrize(("status", "headers", "transient", "retry_after"), [
    (503, {}, True, None), (502, {}, True, None), (429, {"Retry-After": "7"}, True, 7.0),
    (429, {}, True, None),
    (403, {}, False, None), (400, {}, False, None),
])  # fmt: skip
def test_server_errors_are_translated(
    stub: _StubServer,
    status: int,
    headers: dict[str, str],
    transient: bool,
    retry_after: float | None,
) -> None:
    """5xx and 429 are transient (with the server's Retry-After), an auth refusal or a bad
    request permanent; each names the backend and the operation."""
    from vecver.errors import BackendError

    stub.status, stub.headers = status, headers
    b = _server_backend(stub.url)
    with pytest.raises(BackendError) as e:
        b.list_namespaces()
    assert isinstance(e.value, TransientBackendError) is transient
    assert "qdrant" in str(e.value) and str(status) in str(e.value)
    if retry_after is not None:
        assert isinstance(e.value, TransientBackendError)
        assert e.value.retry_after == retry_after
    b.close()


def test_a_missing_collection_on_a_server_is_namespace_not_found(stub: _StubServer) -> None:
    stub.status = 404
    b = _server_backend(stub.url)
    with pytest.raises(NamespaceNotFound) as e:
        b.count("vv_gone")
    assert e.value.namespace == "vv_gone"
    b.close()


def test_an_unreachable_server_is_transient() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = _server_backend(f"http://127.0.0.1:{port}")
    with pytest.raises(TransientBackendError, match="qdrant"):
        b.list_namespaces()
    b.close()


def test_the_api_key_is_sent_but_never_shown(
    stub: _StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The key reaches the server (``api-key`` header) and nothing else: not ``repr``, not
    error messages, not log records (at DEBUG, the client's included)."""
    caplog.set_level(logging.DEBUG)
    b = _server_backend(stub.url.replace("http://", "http://user:pw@"))
    with pytest.raises(TransientBackendError) as e:
        b.list_namespaces()
    assert stub.seen and stub.seen[-1].get("api-key") == SECRET
    shown = [repr(b), str(b.url), str(e.value), repr(e.value), caplog.text]
    assert all(SECRET not in t for t in shown), shown
    assert "pw" not in repr(b) and "<hidden>" in repr(b)
    b.close()


# -- a real Qdrant server (VECVER_QDRANT_URL) -----------------------------------------------------

#: Namespaces of this run on a shared server start with it (and are dropped afterwards).
_RUN = uuid.uuid4().hex[:6]


def _open_server() -> QdrantBackend:
    assert SERVER_URL is not None
    return QdrantBackend(SERVER_URL, api_key=SERVER_KEY)


def _drop_run_namespaces(prefix: str) -> None:
    with _open_server() as b:
        for name in b.list_namespaces():
            if name.startswith(prefix):
                b.drop_namespace(name)


@needs_server
class TestQdrantServerCompliance(BackendComplianceSuite):
    """The whole suite on a server: persistent, shared between clients (a second client
    stands in for another process)."""

    namespace_prefix = f"vvt{_RUN}_"

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        _drop_run_namespaces(self.namespace_prefix)
        b = _open_server()
        yield b
        b.close()
        _drop_run_namespaces(self.namespace_prefix)

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return _open_server()

    def open_second(self, backend: Backend) -> Backend:
        return _open_server()


@needs_server
class TestQdrantServerCongruence(BackendCongruenceSuite):
    namespace_prefix = f"vvc{_RUN}_"

    @pytest.fixture
    def pair(self) -> Iterator[CongruencePair]:
        _drop_run_namespaces(self.namespace_prefix)

        def reopen(b: Backend) -> Backend:
            b.close()
            return _open_server()

        p = CongruencePair(_open_server(), reopen=reopen)
        yield p
        p.close()
        _drop_run_namespaces(self.namespace_prefix)


# -- the command line: named instances -----------------------------------------------------------


def test_cli_migrates_from_qdrant_to_a_named_local_instance_and_back(cli_ws: object) -> None:
    """``[backend] name = "qdrant"`` plus ``[backends.disk]`` (local): ingest on Qdrant,
    ``migrate --on disk``, ``cutover`` (Qdrant's alias is dropped: it would name a space no
    longer active) and ``rollback`` (set again), through the real command line."""
    from vvcli import CliWorkspace, hash_config, make_docs

    assert isinstance(cli_ws, CliWorkspace)
    cli_ws.write_config(
        hash_config(backend="qdrant", extra='[backends.disk]\nname = "local"\npath = "disk"\n')
    )
    cli_ws.run("-q", "ingest", "docs", cli_ws.jsonl("d.jsonl", make_docs(30)), ok=True)
    cli_ws.run("-q", "migrate", "docs", "--to", "v2", "--on", "disk", ok=True)
    cli_ws.run("-q", "cutover", "docs", "--force", ok=True)
    sp = cli_ws.spaces()
    assert (sp["v1"]["backend"], sp["v1"]["state"], sp["v1"]["count"]) == ("default", "retired", 30)
    assert (sp["v2"]["backend"], sp["v2"]["state"], sp["v2"]["count"]) == ("disk", "active", 30)
    cli_ws.run("-q", "rollback", "docs", ok=True)
    with closing(QdrantBackend(path=cli_ws.root / "vectors")) as q:
        assert q.get_alias("docs") == sp["v1"]["namespace"]


# -- odds and ends ---------------------------------------------------------------------------


def test_a_collection_deleted_behind_vecvers_back_is_namespace_not_found() -> None:
    with closing(QdrantBackend(location=":memory:")) as b:
        spec = make_spec("vv_items", 4, "cosine")
        b.create_namespace(spec)
        recs, _ = _records(3)
        b.upsert(spec.name, recs)
        b._client.delete_collection(spec.name)
        for op in (
            lambda: b.upsert(spec.name, recs),
            lambda: b.fetch(spec.name, ["doc-00000"]),
            lambda: b.search(spec.name, make_vectors(1, 4, 1), 3),
            lambda: b.count(spec.name),
        ):
            with pytest.raises(NamespaceNotFound):
                op()


def test_local_mode_serves_threads(fast_dir: Path) -> None:
    """Searches and writes from several threads at once on one path-mode backend (local
    mode is not thread-safe by itself: the backend serializes its calls)."""
    from concurrent.futures import ThreadPoolExecutor

    with closing(QdrantBackend(path=fast_dir / "q")) as b:
        spec = make_spec("vv_items", 8, "l2")
        b.create_namespace(spec)
        recs = make_records(spec, 200, seed=4)
        b.upsert(spec.name, recs[:100])

        def search(i: int) -> int:
            return len(b.search(spec.name, make_vectors(2, 8, i), 5)[0])

        def write(i: int) -> int:
            b.upsert(spec.name, recs[100 + 10 * i : 110 + 10 * i])
            return 5

        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda i: (search if i % 2 else write)(i // 2), range(20)))
        assert got == [5] * 20
        assert b.count(spec.name) == 200


def test_a_missing_client_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from vecver.errors import BackendNotInstalled

    for mod in [
        m for m in sys.modules if m.startswith(("qdrant_client", "vecver.backends.qdrant"))
    ]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "qdrant_client", None)  # import qdrant_client -> ImportError
    with pytest.raises(BackendNotInstalled) as e:
        get_backend_class("qdrant")
    assert (e.value.package, e.value.extra) == ("qdrant_client", "qdrant")
