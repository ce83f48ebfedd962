"""The weaviate backend through the official ``weaviate-client`` against the in-process
emulator (:mod:`vecver.testing.emulators.weaviate`, built from Weaviate's REST schema and
``.proto`` files): the shared compliance, congruence and workflow suites unchanged, a
cross-provider migration Weaviate -> local, end to end through the command line (ingest,
migrate, kill -9 during the backfill, resume, verify, cutover under concurrent searches,
rollback; the same with injected faults), filter translation, naming, and secrets.

One emulator serves the whole test session (reset between tests)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "weaviate", reason="the weaviate backend needs weaviate-client (vecver[weaviate])"
)

from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.registry import get_backend_class  # noqa: E402
from vecver.backends.weaviate import (  # noqa: E402
    WeaviateBackend,
    class_name,
    number_property,
    tokens_of,
    translate_filter,
)
from vecver.errors import (  # noqa: E402
    BatchObjectsFailed,
    ConfigError,
    FilterNotExpressible,
    ForeignNamespace,
    InvalidInput,
    InvalidNamespaceName,
    NamespaceExists,
    TransientBackendError,
)
from vecver.filters import F  # noqa: E402
from vecver.testing import BackendComplianceSuite  # noqa: E402
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair  # noqa: E402
from vecver.testing.data import make_records, make_spec  # noqa: E402
from vecver.testing.emulators.weaviate import WeaviateEmulator  # noqa: E402
from vecver.testing.workflow import (  # noqa: E402
    WorkflowSuite,
    WorkspaceFactory,
    workspace_factory_for,
)
from vecver.types import Record, Stamp  # noqa: E402


@pytest.fixture(scope="session")
def emulator() -> Iterator[WeaviateEmulator]:
    emu = WeaviateEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator: WeaviateEmulator) -> WeaviateEmulator:
    emulator.reset()
    return emulator


def _open(emu: WeaviateEmulator, **kw: Any) -> WeaviateBackend:
    return WeaviateBackend(emu.url, grpc_port=emu.grpc_port, **kw)


def _table(emu: WeaviateEmulator) -> dict[str, Any]:
    return {"name": "weaviate", "url": emu.url, "grpc_port": emu.grpc_port}


# -- the shared suites ----------------------------------------------------------------------


class TestWeaviateCompliance(BackendComplianceSuite):
    """The whole contract, on the emulator through the official client (a second client
    stands in for another process)."""

    scale_count = 600

    @pytest.fixture
    def backend(self, emu: WeaviateEmulator) -> Iterator[Backend]:
        self.emu = emu
        b = _open(emu)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return _open(self.emu)

    def open_second(self, backend: Backend) -> Backend:
        return _open(self.emu)


class TestWeaviateCongruence(BackendCongruenceSuite):
    steps = 25

    @pytest.fixture
    def pair(self, emu: WeaviateEmulator) -> Iterator[CongruencePair]:
        def reopen(b: Backend) -> Backend:
            b.close()
            return _open(emu)

        p = CongruencePair(_open(emu), reopen=reopen)
        yield p
        p.close()


class TestWeaviateWorkflow(WorkflowSuite):
    """Migrate, dual-write, cutover with Weaviate's collection alias, rollback, recover."""

    @pytest.fixture
    def workspace_factory(
        self, tmp_path: Path, emu: WeaviateEmulator
    ) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {"default": _table(emu)}) as make:
            yield make


class TestWeaviateToLocalWorkflow(WorkflowSuite):
    """v1 on Weaviate, v2 placed on the local backend: a cross-provider migration."""

    migrate_on = "target"

    @pytest.fixture
    def workspace_factory(
        self, tmp_path: Path, emu: WeaviateEmulator
    ) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": _table(emu),
            "target": {"name": "local", "path": str(tmp_path / "local")},
        }) as make:  # fmt: skip
            yield make


# -- end to end through the command line ------------------------------------------------------


def _cli_workspace(root: Path, emu: WeaviateEmulator) -> Any:
    from vvcli import CliWorkspace, hash_config

    ws = CliWorkspace(root)
    cfg = hash_config(backend="weaviate").replace(
        'path = "vectors"', f'url = "{emu.url}"\ngrpc_port = {emu.grpc_port}'
    )
    ws.write_config(cfg)
    return ws


def _kill_inside_the_backfill(ws: Any, proc: Any, min_done: int, timeout: float = 60.0) -> str:
    """SIGKILL ``proc`` (a ``migrate``) once v2 is building with ``min_done`` documents
    checkpointed; returns where it was killed (or how it ended, had it finished first)."""
    import os
    import re
    import signal
    import time

    from test_crash import phase

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        where = phase(ws)
        m = re.match(r"building done=(\d+)", where)
        if m and int(m.group(1)) >= min_done:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            return f"killed at [{where}]"
        time.sleep(0.05)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    return f"exited {proc.returncode} at [{phase(ws)}]"


#: What fault injection hits in the faulty run: the batch writes and deletes (the client
#: retries an UNAVAILABLE write twice, after 1 s and 2 s; what still fails reaches the
#: core's retry policy). Searches are left alone: the client would wait seconds per retry.
DATA_PLANE = frozenset({"BatchObjects", "BatchDelete"})


@pytest.mark.parametrize("faults", [False, True], ids=["clean", "faults"])
def test_migrate_killed_resumed_cutover_under_searches_and_rollback(
    emu: WeaviateEmulator, tmp_path: Path, faults: bool
) -> None:
    """Ingest in v1 on Weaviate; ``vecver migrate --to v2`` SIGKILLed inside the backfill
    (a real process, killed once v2 holds some documents); ``vecver backfill`` resumes;
    verify clean (every document once in v2, with v2's stamps); cutover while threads
    search (zero errors, zero empty results; Weaviate's alias names v2 after); rollback
    (the alias names v1 again). With ``faults``, every 10th batch write or delete answers
    UNAVAILABLE from ingest to verify, in bursts of three from time to time (more than the
    client retries): the core's retries make the same run end clean."""
    from test_crash import phase, scan_all
    from vvcli import make_docs

    from vecver import command
    from vecver.config import Config

    n = 160
    ws = _cli_workspace(tmp_path, emu)
    cfg = Config.load(ws.config)
    docs = make_docs(n)
    if faults:
        emu.fail_every, emu.fault_ops = 10, DATA_PLANE
    command.ingest(cfg, "docs", str(ws.jsonl("docs.jsonl", docs[:80])), progress=False)
    if faults:
        emu.fail_next(3)  # the client's own retries are not enough: the core retries
    command.ingest(cfg, "docs", str(ws.jsonl("more.jsonl", docs[80:])), progress=False)
    emu.latency = 0.01  # a backfill of a few seconds, so that the kill lands inside it
    proc = ws.popen("-q", "migrate", "docs", "--to", "v2", "--batch-size", "8")
    where = _kill_inside_the_backfill(ws, proc, min_done=n // 4)
    emu.latency = 0.0
    print(f"migrate {where}")
    assert where.startswith("killed"), where
    res = ws.run("-q", "backfill", "docs", ok=True)
    assert "state ready" in res.out, str(res)
    assert phase(ws).startswith("ready"), phase(ws)
    rep = command.verify(cfg, "docs").to_dict()
    assert rep["clean"] is True, rep
    fired = emu.faults_fired
    emu.reset_faults()
    assert (fired > 0) == faults, fired
    with ws.open() as w:
        rows = {r.space_label: r for r in w.manifest.namespaces("docs")}
        v1, v2 = scan_all(w.backend, rows["v1"].name), scan_all(w.backend, rows["v2"].name)
        assert sorted(v1) == sorted(v2) == sorted(d["id"] for d in docs)
        assert all(r.stamp.fingerprint == rows["v2"].fingerprint for r in v2.values())
        assert w.backend.get_alias("docs") == rows["v1"].name

    errors: list[str] = []
    empty = [0]
    calls = [0]
    stop = threading.Event()

    def searcher(seed: int) -> None:
        with ws.open() as w:
            c = w.collection("docs")
            i = seed
            while not stop.is_set() or calls[0] < 10:
                try:
                    hits = c.search(docs[i % n]["text"], k=3)
                    calls[0] += 1
                    if not hits:
                        empty[0] += 1
                except Exception as e:  # noqa: BLE001 - counted: the assertion says what
                    errors.append(f"{type(e).__name__}: {e}")
                    return
                i += 7

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    try:
        command.cutover(cfg, "docs", force=True)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == [] and empty[0] == 0, (errors[:3], empty[0], calls[0])
    with ws.open() as w:
        assert w.backend.get_alias("docs") == rows["v2"].name
        assert w.collection("docs").search(docs[5]["text"], k=1)[0].id == docs[5]["id"]
    command.rollback(cfg, "docs")
    with ws.open() as w:
        assert w.backend.get_alias("docs") == rows["v1"].name


# -- what is specific to Weaviate ---------------------------------------------------------------


def test_objects_hold_uuid5_ids_and_the_property_layout(emu: WeaviateEmulator) -> None:
    """A namespace is a capitalised collection whose description holds the spec and whose
    named vector ``vv`` has the space's distance; a record is an object with id
    ``uuid5(id)``, vecver's properties, the metadata as JSON, its tokens and numbers."""
    import json as _json
    import uuid as _uuid

    from vecver.backends._remote import uuid_for

    with _open(emu) as b:
        spec = make_spec("vv_layout", 4, "l2")
        b.create_namespace(spec)
        rec = Record("doc/1 ü", np.array([1, 2, 3, 4], np.float32), "hello",
                     {"year": 2020, "tag": "x", "ok": True, "deep": {"a": [1]}},
                     Stamp.now(spec.fingerprint, "doc/1 ü", "hello"))  # fmt: skip
        b.upsert(spec.name, [rec])
        raw = b.client
        assert raw.collections.exists("Vv_layout")
        cfg = raw.collections.get("Vv_layout").config.get()
        assert _json.loads(cfg.description or "")["vecver"]["fingerprint"] == spec.fingerprint
        assert cfg.vector_config["vv"].vector_index_config.distance_metric.value == "l2-squared"  # type: ignore[union-attr]
        obj = raw.collections.get("Vv_layout").query.fetch_object_by_id(
            uuid_for(rec.id), include_vector=True
        )
        assert obj is not None and str(obj.uuid) == str(
            _uuid.uuid5(_uuid.UUID("6f1c8a52-3c1e-5b7e-9a43-2d0f6e1b7c90"), rec.id)
        )
        p = obj.properties
        assert p["vv_id"] == rec.id and p["vv_text"] == "hello" and p["vv_fp"] == spec.fingerprint
        assert _json.loads(str(p["vv_meta"])) == rec.metadata
        assert sorted(p["vv_keys"]) == sorted(tokens_of(rec.metadata))  # type: ignore[arg-type]
        assert p[number_property("year")] == 2020.0
        assert obj.vector["vv"] == [1.0, 2.0, 3.0, 4.0]


def test_scores_follow_vecvers_convention(emu: WeaviateEmulator) -> None:
    """cosine similarity, inner product and minus the squared distance, from Weaviate's
    cosine / dot / l2-squared distances."""
    q = np.array([[1.0, 0.0]], np.float32)
    v = np.array([3.0, 4.0], np.float32)
    want = {"cosine": 0.6, "dot": 3.0, "l2": -(4.0 + 16.0)}
    with _open(emu) as b:
        for metric, score in want.items():
            spec = make_spec(f"vv_sc_{metric}", 2, metric)  # type: ignore[arg-type]
            b.create_namespace(spec)
            b.upsert(spec.name, [Record("a", v, None, {}, Stamp.now(spec.fingerprint, "a", ""))])
            hit = b.search(spec.name, q, 1)[0][0]
            assert hit.id == "a" and abs(hit.score - score) < 1e-5, (metric, hit.score)
    assert WeaviateBackend.score_from_distance("cosine", 0.25) == 0.75
    assert WeaviateBackend.score_from_distance("l2", 9.0) == -9.0


def test_naming_rule_and_physical_names() -> None:
    """Weaviate's class-name rule: a letter first, letters, digits and ``_``; physical
    names are capitalised, deterministic and distinct for odd inputs."""
    for bad in ("1abc", "a-b", "a b", "_x", "ü", "a" * 256):
        with pytest.raises(InvalidNamespaceName):
            WeaviateBackend.check_namespace_name(bad)
    WeaviateBackend.check_namespace_name("vv_items")
    a = WeaviateBackend.physical_name("docs", "v1", "abcdef0123")
    assert a == "Vv_docs__v1_abcdef01"
    b1 = WeaviateBackend.physical_name("my-docs", "v1", "abcdef0123")
    b2 = WeaviateBackend.physical_name("my_docs", "v1", "abcdef0123")
    assert b1 != b2
    for name in (a, b1, WeaviateBackend.physical_name("x" * 300, "l", "f" * 64)):
        WeaviateBackend.check_namespace_name(name)
    assert class_name("vv_items") == "Vv_items"


def test_names_differing_in_the_first_letters_case_collide(emu: WeaviateEmulator) -> None:
    with _open(emu) as b:
        b.create_namespace(make_spec("vv_case", 4))
        with pytest.raises(NamespaceExists):
            b.create_namespace(make_spec("Vv_case", 4))
        assert b.list_namespaces() == ["vv_case"]


def test_a_collection_vecver_did_not_create_is_left_alone(emu: WeaviateEmulator) -> None:
    from weaviate.classes.config import Configure

    with _open(emu) as b:
        b.client.collections.create("Vv_theirs", vector_config=Configure.Vectors.self_provided())
        assert b.list_namespaces() == []
        with pytest.raises(ForeignNamespace):
            b.describe_namespace("vv_theirs")
        with pytest.raises(ForeignNamespace):
            b.drop_namespace("vv_theirs")
        assert b.client.collections.exists("Vv_theirs")


def test_refused_objects_are_named_in_the_error(emu: WeaviateEmulator) -> None:
    """Objects Weaviate refuses in a batch (here: a number written into a property
    someone made ``text``) become ``BatchObjectsFailed`` naming those records; the
    others are written."""
    from weaviate.classes.config import DataType, Property

    with _open(emu) as b:
        spec = make_spec("vv_refused", 4)
        b.create_namespace(spec)
        b.client.collections.get("Vv_refused").config.add_property(
            Property(name=number_property("year"), data_type=DataType.TEXT)
        )
        b.describe_namespace(spec.name)
        recs = make_records(spec, 3, 0, metadata=lambda i, rng: {"year": 2000} if i == 1 else {})
        with pytest.raises(BatchObjectsFailed) as ei:
            b.upsert(spec.name, recs)
        assert list(ei.value.failed) == [recs[1].id]
        assert recs[1].id in str(ei.value)
        assert sorted(b.fetch(spec.name, [r.id for r in recs])) == sorted([recs[0].id, recs[2].id])


def test_scan_cursor_is_a_uuid_and_garbage_is_refused(emu: WeaviateEmulator) -> None:
    import uuid as _uuid

    with _open(emu) as b:
        spec = make_spec("vv_cursor", 4)
        b.create_namespace(spec)
        b.upsert(spec.name, make_records(spec, 5, 0))
        page = b.scan(spec.name, limit=2)
        assert page.next_cursor is not None and _uuid.UUID(page.next_cursor)
        with pytest.raises(InvalidInput):
            b.scan(spec.name, cursor="not-a-cursor")
        last = b.scan(spec.name, cursor=page.next_cursor, limit=3)
        assert last.next_cursor is None and len(last.records) == 3


def test_alias_switch_repoints_queries_through_the_alias(emu: WeaviateEmulator) -> None:
    """``set_alias`` on an existing alias is one update: queries through the alias (the
    raw client, by the alias's collection name) read the new target right after."""
    with _open(emu) as b:
        one, two = make_spec("vv_al_one", 4), make_spec("vv_al_two", 4, fingerprint="f2")
        for s, n in ((one, 2), (two, 5)):
            b.create_namespace(s)
            b.upsert(s.name, make_records(s, n, 0))
        b.set_alias("docs", one.name)
        via = b.client.collections.get("Docs")
        assert len(via.query.fetch_objects(limit=100).objects) == 2
        b.set_alias("docs", two.name)
        assert len(via.query.fetch_objects(limit=100).objects) == 5
        assert b.get_alias("docs") == two.name
        assert b.client.alias.get(alias_name="Docs").collection == "Vv_al_two"  # type: ignore[union-attr]
        b.set_alias("my-docs", one.name)  # a name Weaviate would refuse: mapped
        assert b.get_alias("my-docs") == one.name


def test_filter_translation() -> None:
    """eq/in become token matches (1 and 1.0 the same token, True and 1 not), numeric
    ranges use the field's number property, string ranges are left to the client, and
    what cannot be expressed exactly is refused."""
    assert tokens_of({"a": 1}) == tokens_of({"a": 1.0})
    assert tokens_of({"a": True}) != tokens_of({"a": 1})
    assert tokens_of({"a": [1], "b": {"c": 1}, "n": None}) == []
    wf = translate_filter(F.range("year", gte=2000) & F.eq("t", "x"))
    assert wf.needs == {number_property("year")} and wf.client_side is None
    assert translate_filter(F.range("title", gte="c")).client_side is not None
    assert translate_filter(F.eq("_vv_id", "x")).matches_nothing
    assert translate_filter(F.range("v", gte=0, lt="z")).matches_nothing
    with pytest.raises(FilterNotExpressible):
        translate_filter(F.range("year", gte=2**60))


def test_injected_unavailability_is_transient(emu: WeaviateEmulator) -> None:
    """UNAVAILABLE that escapes the client (a batch delete, which it does not retry) is
    ``TransientBackendError``; the next call works."""
    with _open(emu) as b:
        spec = make_spec("vv_flaky", 4)
        b.create_namespace(spec)
        recs = make_records(spec, 3, 0)
        b.upsert(spec.name, recs)
        emu.fault_ops = frozenset({"BatchDelete"})
        emu.fail_next(1)
        with pytest.raises(TransientBackendError):
            b.delete(spec.name, [recs[0].id])
        assert emu.faults_fired == 1
        b.delete(spec.name, [recs[0].id])
        assert b.count(spec.name) == 2


def test_an_unreachable_server_is_transient() -> None:
    with pytest.raises(TransientBackendError):
        WeaviateBackend("http://127.0.0.1:9", grpc_port=11, timeout=2)


@pytest.mark.parametrize("kwargs", [
    {"url": "ftp://x"}, {"url": "nohost"}, {"url": "http://h", "grpc_port": "x"},
    {"url": "http://h", "timeout": 0},
])  # fmt: skip
def test_bad_options_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        WeaviateBackend(**kwargs)


def test_a_server_older_than_1_32_is_refused(
    emu: WeaviateEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vecver.testing.emulators.weaviate as mod

    monkeypatch.setattr(mod, "VERSION", "1.31.4")
    with pytest.raises(Exception, match="1.32"):
        _open(emu)


def test_the_api_key_is_sent_but_never_shown(
    emulator: WeaviateEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With a key-protected emulator: the key from the env var opens it; ``repr``, logs and
    the errors of a wrong key never show the key."""
    secret = "sk-weaviate-SECRET-123"
    with WeaviateEmulator(api_key=secret) as emu:
        assert isinstance(emu, WeaviateEmulator)
        caplog.set_level(logging.DEBUG)
        monkeypatch.setenv("VV_TEST_WEAVIATE_KEY", secret)
        with _open(emu, api_key_env="VV_TEST_WEAVIATE_KEY") as b:
            b.create_namespace(make_spec("vv_secret", 4))
            assert b.list_namespaces() == ["vv_secret"]
            assert secret not in repr(b) and "<hidden>" in repr(b)
        monkeypatch.setenv("VV_TEST_WEAVIATE_KEY", secret + "-wrong")
        with pytest.raises(Exception) as ei:
            _open(emu, api_key_env="VV_TEST_WEAVIATE_KEY").list_namespaces()
        assert secret not in str(ei.value) and secret not in repr(ei.value)
        monkeypatch.delenv("VV_TEST_WEAVIATE_KEY")
        with pytest.raises(Exception) as ei2:
            _open(emu, api_key_env="VV_TEST_WEAVIATE_KEY").list_namespaces()
        assert "401" in str(ei2.value) or "auth" in str(ei2.value).lower()
        assert secret not in caplog.text and secret not in repr(emu)


def test_registry_knows_the_backend() -> None:
    assert get_backend_class("weaviate") is WeaviateBackend
    from vecver.testing.emulators import create

    emu = create("weaviate", port=0)
    assert isinstance(emu, WeaviateEmulator)


# -- adopting a collection other code filled ------------------------------------------------------


def _fill_articles(emu: WeaviateEmulator, n: int) -> list[str]:
    """Collection ``Articles`` as other code would make it with the raw client: text
    (word-tokenized), doc_key and topic (field-tokenized), n (int), one named vector
    ``emb``, random UUIDs. Returns the UUIDs."""
    import uuid as _uuid

    import weaviate
    from test_adopt import embed_v1, text_for
    from weaviate.classes.config import Configure, DataType, Property, Tokenization
    from weaviate.classes.data import DataObject

    c = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=emu.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=emu.grpc_port, grpc_secure=False,
        skip_init_checks=True,
    )  # fmt: skip
    try:
        col = c.collections.create(
            "Articles",
            properties=[
                Property(name="text", data_type=DataType.TEXT),
                Property(name="doc_key", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
                Property(name="topic", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
                Property(name="n", data_type=DataType.INT),
            ],
            vector_config=Configure.Vectors.self_provided(name="emb"),
        )
        texts = [text_for(i) for i in range(1, n + 1)]
        keys = [str(_uuid.uuid4()) for _ in texts]
        vecs = embed_v1(texts)
        res = col.data.insert_many([
            DataObject(properties={"text": t, "doc_key": f"key-{i}", "topic": f"topic{i % 3}",
                                   "n": i}, uuid=u, vector={"emb": v.tolist()})
            for i, (t, u, v) in enumerate(zip(texts, keys, vecs, strict=True), start=1)
        ])  # fmt: skip
        assert not res.errors
        return keys
    finally:
        c.close()


def test_adopt_a_collection_migrate_cutover_rollback(emu: WeaviateEmulator, tmp_path: Path) -> None:
    """``adopt`` makes ``Articles`` (filled by the raw client) space v1 without copying:
    searches (with a filter on its own properties) read it, writes land in its layout (no
    property of vecver's, no schema change), migrate to v2 reads its texts, verify is
    clean, cutover and rollback switch Weaviate's alias between v2 and the adopted
    collection; a document with a field the schema lacks is refused."""
    import json as _json

    from test_adopt import SPACES, text_for

    import vecver
    from vecver.errors import AdoptedRowRefused
    from vecver.ops import backfill as ops_backfill
    from vecver.ops import cutover as ops_cutover
    from vecver.ops import verify as ops_verify
    from vecver.ops.adopt import adopt
    from vecver.types import Document

    n = 24
    _fill_articles(emu, n)
    cfg = vecver.Config.from_mapping(
        {"manifest": {"path": "m.db"}, "backend": _table(emu),
         "spaces": {k: dict(v) for k, v in SPACES.items()}},
        base=tmp_path,
    )  # fmt: skip
    with vecver.Workspace(cfg, progress=False) as ws:
        rep = adopt(ws, "docs", namespace="Articles", space="v1", text_field="text",
                    id_field="doc_key")  # fmt: skip
        assert rep.documents == n
        docs = ws.collection("docs")
        hit = docs.search(text_for(5), k=1)[0]
        assert (hit.id, hit.text, hit.metadata["topic"]) == ("key-5", text_for(5), "topic2")
        hits = docs.search(text_for(4), k=5, filter={"topic": "topic1"})
        assert hits and all(h.metadata["topic"] == "topic1" for h in hits)
        assert ws.backend.get_alias("docs") == "Articles"
        props_before = sorted(p.name for p in ws.backend.client.collections.get("Articles")
                              .config.get().properties)  # fmt: skip
        docs.upsert([Document("key-101", text_for(101), {"topic": "topic2", "n": 101})])
        with pytest.raises(AdoptedRowRefused):
            docs.upsert([Document("key-102", text_for(102), {"topic": "t", "color": "red"})])
        raw = ws.backend.client.collections.get("Articles")
        assert sorted(p.name for p in raw.config.get().properties) == props_before
        stored = [o.properties for o in raw.iterator()]
        assert len(stored) == n + 1
        assert not any("vv_" in _json.dumps(p, default=str) for p in stored)
        ops_backfill.migrate(ws, "docs", "v2", progress=False)
        v2 = ws.manifest.namespace_for("docs", "v2")
        assert v2 is not None and v2.state == "ready"
        assert ws.backend.count(v2.name) == n + 1
        for r in ops_verify.verify(ws, "docs"):
            assert r.clean, r.to_dict()
        ops_cutover.cutover(ws, "docs", to="v2", force=True)
        assert ws.backend.get_alias("docs") == v2.name
        assert docs.search(text_for(101), k=1)[0].space == "v2"
        ops_cutover.rollback(ws, "docs")
        assert ws.backend.get_alias("docs") == "Articles"
        assert docs.search(text_for(101), k=1)[0].id == "key-101"


def test_rescore_off_takes_weaviates_distances(emu: WeaviateEmulator) -> None:
    """``rescore=False`` asks for no vectors and scores hits from Weaviate's distances:
    the same hits as the default here (no near ties), scores within float32 rounding."""
    with _open(emu) as b, _open(emu, rescore=False) as fast:
        for metric in ("cosine", "dot", "l2"):
            spec = make_spec(f"vv_rs_{metric}", 8, metric)  # type: ignore[arg-type]
            b.create_namespace(spec)
            b.upsert(spec.name, make_records(spec, 40, 3))
            q = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
            exact, quick = b.search(spec.name, q, 5), fast.search(spec.name, q, 5)
            for e, f in zip(exact, quick, strict=True):
                assert [h.id for h in e] == [h.id for h in f]
                assert all(abs(x.score - y.score) < 1e-3 * max(1.0, abs(x.score))
                           for x, y in zip(e, f, strict=True))  # fmt: skip
