"""The Milvus backend on real engines: Milvus Lite (a file, offline), the embedded Milvus
server (``pip install milvus``: the real Milvus 2.3 binaries, one server for the whole
test session) and, when ``VECVER_MILVUS_URI`` names one, a Milvus server of your own.

What runs where:

- the shared compliance suite: all of it on Lite, on the embedded server and on a server
  by URL (on the embedded server about 13 minutes: Milvus takes ~3 s to load each new
  collection; ``VECVER_MILVUS_SERVER_QUICK=1`` runs a subset there while developing);
- congruence against the in-memory reference: Lite and the embedded server (every seed);
- the workflow suite (migrate, dual-write, cutover with the native alias, rollback,
  recover): Lite, the embedded server, local <-> Lite, and
  cross-provider Qdrant (local mode) <-> Milvus Lite;
- a backfill interrupted by a Milvus failure resumes clean (Lite, through FaultyBackend);
- filter translation and injection attempts: as pure functions, and on Lite and the server
  (quotes, backslashes, ``or 1==1``, keys with odd characters);
- errors: unreachable server, token hidden, registry wiring.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="the milvus backend needs pymilvus (vecver[milvus])")

from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.milvus import (  # noqa: E402
    FILTER_FIELD,
    MilvusBackend,
    MilvusLiteBackend,
    filter_keys,
    string_literal,
    translate_filter,
)
from vecver.backends.registry import get_backend_class, open_backend  # noqa: E402
from vecver.errors import (  # noqa: E402
    BackendInUse,
    FilterNotExpressible,
    ForeignNamespace,
    InvalidNamespaceName,
    NamespaceNotFound,
    TransientBackendError,
)
from vecver.filters import F, Filter  # noqa: E402
from vecver.testing import (  # noqa: E402
    BackendComplianceSuite,
    make_records,
    make_spec,
    make_vectors,
)
from vecver.testing.checks import assert_hits_match_reference  # noqa: E402
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair  # noqa: E402
from vecver.testing.workflow import (  # noqa: E402
    WorkflowSuite,
    WorkspaceFactory,
    workspace_factory_for,
)
from vecver.types import Record, Stamp  # noqa: E402

# -- engines ------------------------------------------------------------------------------


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


TEST_SERVER_CONFIG = {
    "proxy.timeTickInterval": 10,
    "queryCoord.checkInterval": 50,
    "queryCoord.distPullInterval": 50,
}


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of the embedded Milvus server (the ``milvus`` package: real Milvus 2.3
    binaries), started once for the test session and stopped at its end. Its health port
    (9091) is fixed, so there is one per machine: the tests are skipped, saying why, when
    the package is missing or that port is taken."""
    milvus = pytest.importorskip(
        "milvus", reason="the embedded Milvus server needs `pip install milvus==2.3.5`"
    )
    for port in (9091, 19530):
        if _port_in_use(port):
            pytest.skip(f"port {port} is in use: another Milvus server runs on this machine")
    server = milvus.default_server
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    # Tuned for tests: a strongly consistent read waits for the next time tick (200 ms by
    # default), and loads wait for the query coordinator's checks; shorter intervals keep
    # the suite's thousands of reads fast. The engine is otherwise as shipped.
    for key, value in TEST_SERVER_CONFIG.items():
        server.config.set(key, value)
    try:
        server.start()
    except Exception as e:  # noqa: BLE001 - reported as the skip reason
        with contextlib.suppress(Exception):
            server.stop()
        pytest.skip(f"the embedded Milvus server did not start: {e}")
    try:
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()


def _wipe(uri: str, prefix: str = "") -> None:
    """Drop every alias and collection (starting with ``prefix``) of a test server."""
    from pymilvus import MilvusClient

    c = MilvusClient(uri=uri)
    try:
        for alias in c.list_aliases().get("aliases", []):
            if alias.startswith(prefix):
                c.drop_alias(alias)
        for name in c.list_collections():
            if name.startswith(prefix):
                c.drop_collection(name)
    finally:
        c.close()


# -- the compliance suite -----------------------------------------------------------------


class TestMilvusLiteCompliance(BackendComplianceSuite):
    """The contract on Milvus Lite (a ``.db`` file; not shared between processes)."""

    scale_count = 1200

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        self.path = str(tmp_path / "lite.db")
        b = MilvusBackend(self.path)
        assert isinstance(b, MilvusLiteBackend)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return MilvusBackend(self.path)


#: Whether to run the whole compliance, congruence and workflow suites on the embedded
#: server (the default, and what CI runs: about 13 minutes, Milvus takes ~3 s to load each
#: new collection) rather than the subsets below (``VECVER_MILVUS_SERVER_QUICK=1``, for a
#: quicker run while developing).
SERVER_FULL = os.environ.get("VECVER_MILVUS_SERVER_QUICK") != "1"

#: The compliance tests run on the embedded server with ``VECVER_MILVUS_SERVER_QUICK=1``:
#: one or more per area, those where a server could differ from Milvus Lite (JSON round
#: trips, escaping, pk order, consistency, aliases, a second client, the ANN index at
#: scale, chunking).
SERVER_SUBSET = frozenset({
    "test_create_namespace_with_other_spec_raises",
    "test_upsert_fetch_round_trip",
    "test_metadata_value_types_round_trip",
    "test_ids_and_texts_with_special_characters",
    "test_scan_resumes_from_a_cursor",
    "test_search_at_scale",
    "test_reads_reflect_writes_when_they_return",
    "test_second_instance_sees_writes",
    "test_alias_set_get_repoint_drop",
    "test_reopen_keeps_everything",
    "test_calls_longer_than_the_declared_limits_are_chunked",
})  # fmt: skip


class TestMilvusServerCompliance(BackendComplianceSuite):
    """The contract on the embedded Milvus server (shared between processes: a second
    client stands in for another process): all of it, or with
    ``VECVER_MILVUS_SERVER_QUICK=1`` the tests of :data:`SERVER_SUBSET` (and every filter
    case, in one test below)."""

    scale_count = 1200

    @pytest.fixture
    def backend(self, milvus_server: str, request: pytest.FixtureRequest) -> Iterator[Backend]:
        name = request.node.originalname
        if not SERVER_FULL and name not in SERVER_SUBSET:
            pytest.skip(
                "VECVER_MILVUS_SERVER_QUICK=1: runs on Milvus Lite; on the embedded server "
                "only in the full run (each new collection takes ~3 s to load)"
            )
        _wipe(milvus_server)
        self.uri = milvus_server
        b = MilvusBackend(milvus_server)
        assert type(b) is MilvusBackend
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return MilvusBackend(self.uri)

    def open_second(self, backend: Backend) -> Backend:
        return MilvusBackend(self.uri)


REMOTE_URI = os.environ.get("VECVER_MILVUS_URI")
REMOTE_TOKEN = os.environ.get("VECVER_MILVUS_TOKEN")


@pytest.mark.skipif(
    not REMOTE_URI,
    reason="no Milvus server given: set VECVER_MILVUS_URI (and VECVER_MILVUS_TOKEN) to run "
    "the compliance suite against your own server",
)
class TestMilvusRemoteCompliance(BackendComplianceSuite):
    """The contract on a Milvus server of your own (``VECVER_MILVUS_URI``). It touches only
    collections and aliases whose names start with ``vvtest_``."""

    namespace_prefix = "vvtest_"

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        assert REMOTE_URI
        _wipe(REMOTE_URI, self.namespace_prefix)
        b = MilvusBackend(REMOTE_URI, token=REMOTE_TOKEN)
        yield b
        b.close()
        _wipe(REMOTE_URI, self.namespace_prefix)

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        assert REMOTE_URI
        return MilvusBackend(REMOTE_URI, token=REMOTE_TOKEN)

    def open_second(self, backend: Backend) -> Backend:
        assert REMOTE_URI
        return MilvusBackend(REMOTE_URI, token=REMOTE_TOKEN)


# -- congruence with the in-memory reference ------------------------------------------------


class TestMilvusLiteCongruence(BackendCongruenceSuite):
    steps = 50

    @pytest.fixture
    def pair(self, tmp_path: Path) -> Iterator[CongruencePair]:
        path = str(tmp_path / "cong.db")

        def reopen(b: Backend) -> Backend:
            b.close()
            return MilvusBackend(path)

        p = CongruencePair(MilvusBackend(path), reopen=reopen)
        yield p
        p.close()


class TestMilvusServerCongruence(BackendCongruenceSuite):
    """Congruence on the embedded server: every seed (one random sequence and the
    failure-path run with ``VECVER_MILVUS_SERVER_QUICK=1``)."""

    steps = 25

    @pytest.fixture
    def pair(self, milvus_server: str, request: pytest.FixtureRequest) -> Iterator[CongruencePair]:
        seed = request.node.callspec.params.get("seed", 0)
        if not SERVER_FULL and seed > 0:
            pytest.skip("VECVER_MILVUS_SERVER_QUICK=1: other seeds run in the full run only")
        _wipe(milvus_server)

        def reopen(b: Backend) -> Backend:
            b.close()
            return MilvusBackend(milvus_server)

        p = CongruencePair(MilvusBackend(milvus_server), reopen=reopen)
        yield p
        p.close()


# -- the workflow suite ---------------------------------------------------------------------


class TestMilvusLiteWorkflow(WorkflowSuite):
    """Migrate, dual-write, cutover with the Milvus alias, rollback, recover, on Lite."""

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(
            tmp_path, {"default": {"name": "milvus", "uri": str(tmp_path / "wf.db")}}
        ) as make:
            yield make


SERVER_WORKFLOW_SUBSET = frozenset({
    "test_writes_during_the_backfill_win",
    "test_native_alias_follows_the_active_space",
    "test_recover_an_interrupted_cutover",
})  # fmt: skip


class TestMilvusServerWorkflow(WorkflowSuite):
    """The same on the embedded Milvus server: every test (:data:`SERVER_WORKFLOW_SUBSET`
    with ``VECVER_MILVUS_SERVER_QUICK=1``)."""

    @pytest.fixture
    def workspace_factory(
        self, tmp_path: Path, milvus_server: str, request: pytest.FixtureRequest
    ) -> Iterator[WorkspaceFactory]:
        if not SERVER_FULL and request.node.originalname not in SERVER_WORKFLOW_SUBSET:
            pytest.skip("VECVER_MILVUS_SERVER_QUICK=1: runs on Milvus Lite; on the server "
                        "in the full run only")
        _wipe(milvus_server)
        with workspace_factory_for(
            tmp_path, {"default": {"name": "milvus", "uri": milvus_server}}
        ) as make:
            yield make


class TestLocalToMilvusWorkflow(WorkflowSuite):
    """v1 on the local backend, v2 placed on Milvus Lite: a cross-instance migration."""

    migrate_on = "target"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": {"name": "local", "path": str(tmp_path / "local")},
            "target": {"name": "milvus", "uri": str(tmp_path / "target.db")},
        }) as make:  # fmt: skip
            yield make


class TestMilvusToLocalWorkflow(WorkflowSuite):
    """v1 on Milvus Lite, v2 placed on the local backend."""

    migrate_on = "target"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": {"name": "milvus", "uri": str(tmp_path / "source.db")},
            "target": {"name": "local", "path": str(tmp_path / "local")},
        }) as make:  # fmt: skip
            yield make


# -- filters: translation and injection -----------------------------------------------------

#: Strings that would change an expression's meaning if pasted in unescaped.
INJECTIONS = [
    'x" or 1==1 or "',
    "x' or 1==1 or '",
    'a"b',
    "a\\b",
    "a\\",
    '\\"',
    "a\\\"b",
    '") or (id != "',
    "line\nbreak",
    "tab\there",
    "cr\rhere",
    "ü东京🚀",
    "",
    " or 1==1",
    "]",
    "${x}",
]
ODD_KEYS = ['k"]', "k'", 'a"] == 1 or filter_keys["x', "sp ace", "dot.ted", "ü", "\\", "_vv_x"]


class TestFilterTranslation:
    """The expression builder as pure functions: what reaches the parser."""

    @pytest.mark.parametrize("value", INJECTIONS)
    def test_string_literal_escapes(self, value: str) -> None:
        lit = string_literal(value)
        assert lit.startswith('"') and lit.endswith('"')
        body = lit[1:-1]
        # every quote inside is escaped, and no raw line break remains
        i = 0
        while i < len(body):
            if body[i] == "\\":
                assert body[i + 1] in '\\"nrt', body
                i += 2
                continue
            assert body[i] not in '"\n\r', body
            i += 1

    @pytest.mark.parametrize("key", ODD_KEYS)
    def test_user_keys_never_reach_the_expression(self, key: str) -> None:
        expr = translate_filter(F.eq(key, "v") & F.range(key, gte=1) & F.isin(key, [True, 2]))
        assert key not in expr
        assert '"v"' in expr and FILTER_FIELD in expr
        paths = {p for p in expr.split(FILTER_FIELD)[1:]}
        for p in paths:
            inner = p[2 : p.index('"]')]
            assert inner.isalnum() and inner.isascii(), p

    def test_kinds_use_separate_keys(self) -> None:
        keys = filter_keys({"a": "1", "b": 1, "c": True, "d": 1.5, "e": None, "f": [1], "g": {}})
        tags = sorted(k[0] for k in keys)
        assert tags == ["b", "n", "n", "s"]
        e_str = translate_filter(F.eq("a", "1"))
        e_num = translate_filter(F.eq("a", 1))
        e_bool = translate_filter(F.eq("a", True))
        assert len({e_str, e_num, e_bool}) == 3

    @pytest.mark.parametrize(
        "flt",
        [F.eq("year", 2**60), F.range("year", gt=2.0**60), F.isin("year", [1, -(2**54)])],
        ids=["eq-big-int", "range-big-float", "in-big-int"],
    )
    def test_numbers_beyond_2_53_are_refused(self, flt: Filter) -> None:
        with pytest.raises(FilterNotExpressible) as e:
            translate_filter(flt)
        assert e.value.field == "year" and e.value.backend == "milvus"

    def test_lone_surrogates(self) -> None:
        assert translate_filter(F.eq("k", "\ud800")) == '(id == "")'
        with pytest.raises(FilterNotExpressible):
            translate_filter(F.range("k", gte="\ud800"))

    def test_empty_filter(self) -> None:
        assert translate_filter(None) == "" and translate_filter(Filter()) == ""


class FilterInjectionTests:
    """Records whose metadata holds the injection strings (under odd keys too): a filter on
    each returns exactly the records :meth:`Filter.matches` selects, never more."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        raise NotImplementedError

    def test_injection_attempts_match_exactly(self, backend: Backend) -> None:
        spec = make_spec("vv_inject", 8, "l2")
        backend.create_namespace(spec)
        vecs = make_vectors(len(INJECTIONS), 8, 3)
        records = []
        for i, (s, v) in enumerate(zip(INJECTIONS, vecs, strict=True)):
            md: dict[str, Any] = {"s": s, "n": i, ODD_KEYS[i % len(ODD_KEYS)]: s}
            rid = f"id-{s}-{i}"
            records.append(Record(rid, v, s, md, Stamp.now(spec.fingerprint, rid, s)))
        backend.upsert(spec.name, records)
        q = make_vectors(2, 8, 9)
        filters = [F.eq("s", s) for s in INJECTIONS]
        filters += [F.isin("s", INJECTIONS[:4]), F.range("s", gte='x"', lt="y"),
                    F.range("s", lt='" or 1==1 or "'), F.eq("s", 'nothing" or "1"=="1')]
        filters += [F.eq(k, INJECTIONS[j]) for j, k in enumerate(ODD_KEYS)]
        for flt in filters:
            got = backend.search(spec.name, q, 50, filter=flt)
            assert_hits_match_reference(got, "l2", q, records, 50, flt, where=str(flt.to_dict()))
        # ids with quotes and backslashes: fetch, scan cursors and delete address exactly one
        assert sorted(backend.fetch(spec.name, [r.id for r in records])) == sorted(
            r.id for r in records
        )
        seen: list[str] = []
        cursor = None
        while True:
            page = backend.scan(spec.name, cursor=cursor, limit=3)
            seen += [r.id for r in page.records]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == sorted(r.id for r in records)
        backend.delete(spec.name, [records[0].id])
        assert backend.count(spec.name) == len(records) - 1


class TestLiteFilterInjection(FilterInjectionTests):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        b = MilvusBackend(str(tmp_path / "inj.db"))
        yield b
        b.close()


def test_every_filter_case_on_the_server(milvus_server: str) -> None:
    """The compliance suite's filter cases (FILTER_CASES), all on two namespaces of the
    embedded server: filtered search equals exact search over the records
    ``Filter.matches`` selects (JSON comparisons of the real engine)."""
    from vecver.testing.compliance import _DATASETS, FILTER_CASES

    _wipe(milvus_server)
    b = MilvusBackend(milvus_server)
    try:
        data: dict[str, list[Record]] = {}
        for kind, (n, md) in _DATASETS.items():
            spec = make_spec(f"vv_f_{kind}", 16, "cosine")
            b.create_namespace(spec)
            data[kind] = make_records(spec, n, 13, metadata=md)
            b.upsert(spec.name, data[kind])
        q = make_vectors(3, 16, 10_017)
        for name, flt, _ops, kind in FILTER_CASES:
            for k in (10, 300):
                got = b.search(f"vv_f_{kind}", q, k, filter=flt)
                assert_hits_match_reference(
                    got, "cosine", q, data[kind], k, flt, where=f"filter {name} k={k}"
                )
    finally:
        b.close()


class TestServerFilterInjection(FilterInjectionTests):
    @pytest.fixture
    def backend(self, milvus_server: str) -> Iterator[Backend]:
        _wipe(milvus_server)
        b = MilvusBackend(milvus_server)
        yield b
        b.close()


# -- wiring and errors ------------------------------------------------------------------------


class TestWiring:
    def test_registry_opens_lite_or_server_by_uri(self, tmp_path: Path) -> None:
        assert get_backend_class("milvus") is MilvusBackend
        b = open_backend("milvus", {"uri": str(tmp_path / "r.db")})
        try:
            assert isinstance(b, MilvusLiteBackend)
            assert not type(b).capabilities.shared_between_processes
            assert MilvusBackend.capabilities.shared_between_processes
        finally:
            b.close()

    def test_missing_client_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import sys

        from vecver.errors import BackendNotInstalled

        for mod in [m for m in sys.modules if m.startswith("vecver.backends.milvus")]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setitem(sys.modules, "pymilvus", None)
        with pytest.raises(BackendNotInstalled) as e:
            get_backend_class("milvus")
        assert e.value.extra == "milvus" and e.value.package == "pymilvus"

    def test_default_options_name_a_lite_file_per_instance(self, tmp_path: Path) -> None:
        a = MilvusBackend.default_options(tmp_path)["uri"]
        b = MilvusBackend.default_options(tmp_path, "other")["uri"]
        assert a != b and a.endswith(".db") and b.endswith(".db")

    def test_unreachable_server_is_transient_and_hides_the_token(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(TransientBackendError) as e:
            MilvusBackend(f"http://127.0.0.1:{port}", token="root:s3cret-token", timeout=1.0)
        assert "s3cret" not in str(e.value)

    def test_a_lite_file_open_in_another_process_is_in_use(self, tmp_path: Path) -> None:
        import subprocess
        import sys

        path = str(tmp_path / "busy.db")
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
             f"c = MilvusClient({path!r}); print('ready', flush=True); sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
            with pytest.raises(BackendInUse) as e:
                MilvusBackend(path)
            assert e.value.location == path
        finally:
            holder.communicate("", timeout=30)

    def test_repr_hides_the_token(self, milvus_server: str) -> None:
        b = MilvusBackend(milvus_server, token="root:Milvus")
        try:
            assert "Milvus'" not in repr(b).split("uri=")[0] and "root:Milvus" not in repr(b)
        finally:
            b.close()

    def test_naming_rule(self) -> None:
        for bad in ("has-dash", "1leading_digit", "sp ace", "x" * 256):
            with pytest.raises(InvalidNamespaceName):
                MilvusBackend.check_namespace_name(bad)
        name = MilvusBackend.physical_name("my-docs", "minilm v1.5", "ab" * 32)
        MilvusBackend.check_namespace_name(name)
        assert name != MilvusBackend.physical_name("my_docs", "minilm v1.5", "ab" * 32)
        long = MilvusBackend.physical_name("c" * 300, "v1", "ab" * 32)
        MilvusBackend.check_namespace_name(long)

    def test_aliases_milvus_would_refuse_are_mapped(self, tmp_path: Path) -> None:
        b = MilvusBackend(str(tmp_path / "al.db"))
        try:
            spec = make_spec("vv_target", 4, "cosine")
            b.create_namespace(spec)
            b.set_alias("my-docs", spec.name)
            assert b.get_alias("my-docs") == spec.name
            assert b.get_alias("my_docs") is None
            b.drop_alias("my-docs")
            assert b.get_alias("my-docs") is None
        finally:
            b.close()

    def test_a_foreign_collection_is_left_alone(self, tmp_path: Path) -> None:
        from pymilvus import DataType, MilvusClient

        path = str(tmp_path / "foreign.db")
        raw = MilvusClient(path)
        schema = raw.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
        idx = raw.prepare_index_params()
        idx.add_index(field_name="vector", index_type="HNSW", metric_type="L2",
                      params={"M": 8, "efConstruction": 32})  # fmt: skip
        raw.create_collection("theirs", schema=schema, index_params=idx)
        raw.insert("theirs", [{"id": "a", "vector": [1.0, 0, 0, 0]}])
        raw.close()
        b = MilvusBackend(path)
        try:
            assert "theirs" not in b.list_namespaces()
            with pytest.raises(ForeignNamespace):
                b.describe_namespace("theirs")
            with pytest.raises(ForeignNamespace):
                b.delete("theirs", ["a"])
            with pytest.raises(ForeignNamespace):
                b.create_namespace(make_spec("theirs", 4, "l2"))
            with pytest.raises(ForeignNamespace):
                b.drop_namespace("theirs")
            with pytest.raises(NamespaceNotFound):
                b.count("vv_never")
        finally:
            b.close()
        raw = MilvusClient(path)
        try:
            assert raw.query("theirs", filter='id == "a"', output_fields=["id"])
        finally:
            raw.close()

    @pytest.mark.parametrize(
        ("index_type", "metric"), [("HNSW", "cosine"), ("HNSW", "l2"), ("IVF_FLAT", "dot")]
    )
    def test_index_types_and_metrics_score_exactly(
        self, milvus_server: str, index_type: str, metric: Any
    ) -> None:
        ivf = index_type == "IVF_FLAT"
        b = MilvusBackend(
            milvus_server,
            index_type=index_type,
            index_params={"nlist": 4} if ivf else None,
            search_params={"nprobe": 4} if ivf else None,
        )
        try:
            spec = make_spec(f"vv_idx_{index_type.lower()}_{metric}", 8, metric)
            b.drop_namespace(spec.name)
            b.create_namespace(spec)
            vecs = make_vectors(60, 8, 1)
            recs = [Record(f"d{i}", v, None, {}, Stamp.now(spec.fingerprint, f"d{i}", ""))
                    for i, v in enumerate(vecs)]  # fmt: skip
            b.upsert(spec.name, recs)
            q = make_vectors(3, 8, 2)
            assert_hits_match_reference(b.search(spec.name, q, 10), metric, q, recs, 10)
            assert all(r.text is None for r in b.fetch(spec.name, ["d0", "d1"]).values())
            b.drop_namespace(spec.name)
        finally:
            b.close()


def test_search_result_scores_are_floats(tmp_path: Path) -> None:
    b = MilvusBackend(str(tmp_path / "f.db"))
    try:
        spec = make_spec("vv_floats", 4, "l2")
        b.create_namespace(spec)
        v = np.ones(4, dtype=np.float32)
        b.upsert(spec.name, [Record("a", v, "t", {}, Stamp.now(spec.fingerprint, "a", "t"))])
        hit = b.search(spec.name, v, 1)[0][0]
        assert type(hit.score) is float and hit.score == 0.0
    finally:
        b.close()


# -- cross-provider: Qdrant <-> Milvus ------------------------------------------------------


def _qdrant_table() -> dict[str, Any]:
    pytest.importorskip("qdrant_client", reason="the Qdrant side needs vecver[qdrant]")
    return {"name": "qdrant", "location": ":memory:"}


class TestQdrantToMilvusWorkflow(WorkflowSuite):
    """v1 on Qdrant (local mode), v2 placed on Milvus Lite: a cross-provider migration with
    dual-write across both, cutover (the manifest's alias: no native alias spans two
    databases) and rollback."""

    migrate_on = "target"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": _qdrant_table(),
            "target": {"name": "milvus", "uri": str(tmp_path / "target.db")},
        }) as make:  # fmt: skip
            yield make


class TestMilvusToQdrantWorkflow(WorkflowSuite):
    """v1 on Milvus Lite, v2 placed on Qdrant (local mode)."""

    migrate_on = "target"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": {"name": "milvus", "uri": str(tmp_path / "source.db")},
            "target": _qdrant_table(),
        }) as make:  # fmt: skip
            yield make


# -- faults -----------------------------------------------------------------------------------


def test_backfill_interrupted_by_a_milvus_failure_resumes_clean(tmp_path: Path) -> None:
    """A backfill into Milvus Lite that fails half-way (the third write into v2 refused
    permanently) resumes from where it stopped once the database works again: v2 then
    holds every document exactly once and verify is clean."""
    from vecver.errors import BackendError
    from vecver.ops.backfill import backfill, start_migration
    from vecver.ops.verify import verify
    from vecver.testing.faults import FaultyBackend
    from vecver.testing.workflow import WORKFLOW_SPACES, records_by_id, workflow_docs

    wrapped: dict[str, FaultyBackend] = {}

    def wrap(name: str, b: Backend) -> Backend:
        wrapped[name] = FaultyBackend(b)
        return wrapped[name]

    uri = str(tmp_path / "fault.db")
    with workspace_factory_for(tmp_path, {"default": {"name": "milvus", "uri": uri}},
                               wrap=wrap) as make:  # fmt: skip
        ws = make({
            "spaces": {k: dict(v) for k, v in WORKFLOW_SPACES.items()},
            "collections": {"c": {"space": "v1"}},
            "backfill": {"batch_size": 10},
        })  # fmt: skip
        docs = workflow_docs(60)
        ws.collection("c").upsert(docs)
        start_migration(ws, "c", "v2")
        row = ws.manifest.namespace_for("c", "v2")
        assert row is not None
        fault = wrapped["default"].fail("upsert", nth=3, error="permanent", namespace=row.name)
        with pytest.raises(BackendError):
            backfill(ws, "c", space="v2")
        assert fault.fired == 1
        partial = wrapped["default"].count(row.name)
        assert 0 < partial < len(docs)
        wrapped["default"].clear_faults()
        rep = backfill(ws, "c", space="v2")
        assert rep.state == "ready", rep.to_dict()
        got = records_by_id(ws.backend_for(row), row.name)
        assert sorted(got) == sorted(d.id for d in docs)
        for r in verify(ws, "c"):
            assert r.clean, r.to_dict()


def test_rescore_off_takes_milvus_distances(tmp_path: Path) -> None:
    """``rescore=False`` asks Milvus for no vectors and scores hits from its distances: on
    well-separated data the same hits as the default, scores within float32 rounding of
    the exact ones, in vecver's convention for every metric (L2 negated)."""
    from vecver.errors import ConfigError

    path = str(tmp_path / "rescore.db")
    b = MilvusBackend(path)
    try:
        specs = {}
        for metric in ("cosine", "dot", "l2"):
            spec = make_spec(f"vv_rs_{metric}", 8, metric)  # type: ignore[arg-type]
            b.create_namespace(spec)
            b.upsert(spec.name, make_records(spec, 40, 3))
            specs[metric] = spec
        q = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
        exact = {m: b.search(s.name, q, 5) for m, s in specs.items()}
    finally:
        b.close()
    fast = MilvusBackend(path, rescore=False)
    try:
        for metric, spec in specs.items():
            quick = fast.search(spec.name, q, 5)
            for e, f in zip(exact[metric], quick, strict=True):
                assert [h.id for h in e] == [h.id for h in f], metric
                for x, y in zip(e, f, strict=True):
                    assert abs(x.score - y.score) < 1e-4 * max(1.0, abs(x.score)), metric
                    assert (y.text, y.metadata, y.stamp) == (x.text, x.metadata, x.stamp)
            if metric == "l2":
                assert all(h.score <= 0 for h in quick[0])
    finally:
        fast.close()
    with pytest.raises(ConfigError, match="rescore"):
        MilvusBackend(path, rescore="no")  # type: ignore[arg-type]


# -- scores from Milvus' distances, re-scored on near ties ---------------------------------


class _Counting:
    """Counts the calls of a client method (the official client's own, called through)
    and keeps their keyword arguments."""

    def __init__(self, client: Any, name: str) -> None:
        self.calls = 0
        self.kwargs: list[dict[str, Any]] = []
        self._fn = getattr(client, name)
        setattr(client, name, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.kwargs.append(dict(kwargs))
        return self._fn(*args, **kwargs)


def _milvus_reference(metric: str, q: np.ndarray, recs: list[Record], k: int
                      ) -> list[tuple[str, float]]:
    from vecver.backends.base import exact_scores

    mat = np.stack([r.vector for r in recs if r.vector is not None])
    sc = exact_scores(metric, q[None, :], mat)[0].tolist()  # type: ignore[arg-type]
    order = sorted(range(len(recs)), key=lambda j: (-sc[j], recs[j].id))[:k]
    return [(recs[j].id, sc[j]) for j in order]


def _tie_records(spec: Any) -> list[Record]:
    """Vectors at the same cosine from e1 (and a duplicate), written in reverse id order."""
    vecs = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1], [1, 1, 0, 0],
                     [0, 1, 1, 1], [3, 0, 0, 0.1]], dtype=np.float32)  # fmt: skip
    out = []
    for i, v in enumerate(vecs):
        rid = f"t{i:03d}"
        out.append(Record(rid, v, f"text {i}", {"i": i},
                          Stamp.now(spec.fingerprint, rid, f"text {i}")))  # fmt: skip
    return out[::-1]


@pytest.fixture(params=["lite", "server"])
def rescore_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "lite":
        return str(tmp_path / "ties.db")
    uri: str = request.getfixturevalue("milvus_server")
    _wipe(uri)
    return uri


def test_near_ties_are_rescored_from_the_stored_vectors(rescore_uri: str) -> None:
    """The default: a search asks for no vectors and scores hits from Milvus' distances;
    the hits of a list that are in exact ties get their vectors in one more request and
    are re-scored with exact_scores (the reference's scores bit for bit, ties by id; the
    others keep Milvus' scores, within rounding); a list without near ties costs no
    second request; ``dot`` asks vectors with the search itself."""
    from vecver.backends._ties import near_tie

    b = MilvusBackend(rescore_uri)
    try:
        spec = make_spec("vv_ties", 4, "cosine")
        b.create_namespace(spec)
        recs = _tie_records(spec)
        b.upsert(spec.name, recs)
        rng = np.random.default_rng(4)
        sep = make_spec("vv_sep", 16, "l2")
        b.create_namespace(sep)
        sep_recs = make_records(sep, 30, 2)
        b.upsert(sep.name, sep_recs)
        dot = make_spec("vv_dot", 12, "dot")
        b.create_namespace(dot)
        dot_recs = [dataclasses_replace(r, vector=r.vector * 7)  # type: ignore[operator]
                    for r in make_records(dot, 25, 5)]
        b.upsert(dot.name, dot_recs)

        search = _Counting(b.client, "search")
        query = _Counting(b.client, "query")
        q = np.array([1, 0, 0, 0], dtype=np.float32)
        hits = b.search(spec.name, q, 6)[0]
        ref = _milvus_reference("cosine", q, recs, 6)
        assert [h.id for h in hits] == [i for i, _ in ref]
        assert [(h.id, h.score) for h in hits[1:5]] == ref[1:5]  # the tied ones, exact
        assert [h.id for h in hits[1:5]] == ["t000", "t001", "t002", "t003"]
        for h, (_, exact) in zip(hits, ref, strict=True):
            assert abs(h.score - exact) <= 1e-5
        assert (search.calls, query.calls) == (1, 1)  # the search, then the vectors
        # the second request reads the tied hits only, without waiting for a time tick
        read = query.kwargs[0]
        assert read["consistency_level"] == "Eventually"
        assert sorted(read["filter"].split('"')[1::2]) == ["t000", "t001", "t002", "t003"]

        qs = rng.standard_normal((3, 16)).astype(np.float32)
        for qi, got in enumerate(b.search(sep.name, qs, 5)):
            ref = _milvus_reference("l2", qs[qi], sep_recs, 5)
            assert not near_tie("l2", qs[qi], got)
            assert [h.id for h in got] == [i for i, _ in ref]
            for h, (_, exact) in zip(got, ref, strict=True):
                assert abs(h.score - exact) <= 1e-5 * max(1.0, abs(exact))
        assert (search.calls, query.calls) == (2, 1)  # no second request

        qd = rng.standard_normal(12).astype(np.float32)
        got_dot = b.search(dot.name, qd, 6)[0]
        ref_dot = _milvus_reference("dot", qd, dot_recs, 6)
        assert [h.id for h in got_dot] == [i for i, _ in ref_dot]
        # exact_scores of the hits' own vectors (BLAS may round a 6-row and a 25-row
        # product differently, so not bit for bit the reference's)
        from vecver.backends.base import exact_scores

        mine = exact_scores("dot", qd[None, :], np.stack([
            next(r.vector for r in dot_recs if r.id == h.id) for h in got_dot]))[0]
        for h, (_, exact), m in zip(got_dot, ref_dot, mine, strict=True):
            assert abs(h.score - exact) <= 1e-6 * abs(exact)
            assert abs(h.score - float(m)) <= 1e-6 * abs(exact)
        assert (search.calls, query.calls) == (3, 1)  # vectors came with the search
    finally:
        b.close()


def test_many_near_ties_read_only_the_tied_vectors(tmp_path: Path) -> None:
    """A namespace where every search has near ties (each direction stored twice): a
    batch makes one search and one read of the tied hits' vectors, whatever the batch
    size; single searches and the batch give the same lists, in the reference's order,
    with its scores (within rounding)."""
    b = MilvusBackend(str(tmp_path / "manyties.db"))
    try:
        spec = make_spec("vv_manyties", 6, "cosine")
        b.create_namespace(spec)
        base = np.eye(6, dtype=np.float32)
        vecs = np.concatenate([base, base, base + 0.5])  # every direction twice
        recs = [Record(f"d{i:03d}", v, None, {}, Stamp.now(spec.fingerprint, f"d{i:03d}", ""))
                for i, v in enumerate(vecs)]  # fmt: skip
        b.upsert(spec.name, recs)
        queries = np.random.default_rng(9).standard_normal((40, 6)).astype(np.float32)
        got = [b.search(spec.name, q, 18)[0] for q in queries]
        search = _Counting(b.client, "search")
        query = _Counting(b.client, "query")
        again = b.search(spec.name, queries, 18)
        assert (search.calls, query.calls) == (1, 1)
        assert "vector" not in search.kwargs[0]["output_fields"]
        for q, g, a in zip(queries, got, again, strict=True):
            ref = _milvus_reference("cosine", q, recs, 18)
            assert [h.id for h in g] == [h.id for h in a] == [i for i, _ in ref]
            # hits outside near ties keep the engine's scores (a batch and a single
            # search may round them differently)
            for hg, ha, (_, exact) in zip(g, a, ref, strict=True):
                assert abs(hg.score - exact) <= 1e-5 and abs(ha.score - exact) <= 1e-5
    finally:
        b.close()


def test_a_vector_read_back_that_disagrees_is_read_again_strong(tmp_path: Path) -> None:
    """The tied hits' vectors are read without waiting for a time tick; one that does not
    give back the score the search gave it (a replica behind the search; here the read
    is made to return another vector) is read again at Strong, and the list is scored
    from that one: the reference's order and scores."""
    b = MilvusBackend(str(tmp_path / "stale.db"))
    try:
        spec = make_spec("vv_stale", 4, "cosine")
        b.create_namespace(spec)
        recs = _tie_records(spec)
        b.upsert(spec.name, recs)
        real = b.client.query
        levels: list[str] = []

        def behind(*args: Any, **kwargs: Any) -> Any:
            levels.append(kwargs.get("consistency_level", ""))
            rows = real(*args, **kwargs)
            if kwargs.get("consistency_level") == "Eventually":
                for r in rows:
                    if r["id"] == "t001":
                        r["vector"] = [0.0, 1.0, 0.0, 0.0]  # not what the search scored
            return rows

        b.client.query = behind  # type: ignore[method-assign]
        q = np.array([1, 0, 0, 0], dtype=np.float32)
        hits = b.search(spec.name, q, 6)[0]
        ref = _milvus_reference("cosine", q, recs, 6)
        assert [h.id for h in hits] == [i for i, _ in ref]
        assert [(h.id, h.score) for h in hits[1:5]] == ref[1:5]
        assert levels == ["Eventually", "Strong"]
    finally:
        b.close()
