"""Adopting a collection some other code filled (``vecver adopt``), on real engines: the
local backend, Qdrant's local mode, Milvus Lite and the embedded Milvus server.

Each engine's collection is created and filled with its *raw* client (no stamps, its own
keys, its own text and id fields, vectors of the space's model), then adopted as space v1
and taken through the workflow: ingest more, migrate to v2 (the backfill reads the texts
from the adopted payload), verify, cutover, rollback. The rule of what vecver writes into
an adopted collection is checked by comparing raw snapshots taken with the raw client;
every refusal of ``adopt`` is checked to record nothing and leave no alias behind.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecver
from vecver.backends.base import Backend
from vecver.backends.local import LocalBackend
from vecver.errors import (
    AdoptedDimensionMismatch,
    AdoptedFieldClash,
    AdoptedFieldMissing,
    AdoptedIdDuplicated,
    AdoptedMetricMismatch,
    AdoptedNotFound,
    AdoptedProtected,
    AdoptedReadOnly,
    AdoptedRowRefused,
    AdoptedVectorsMismatch,
    AdoptError,
    InvalidId,
    StateError,
)
from vecver.filters import Filter
from vecver.ops import backfill as ops_backfill
from vecver.ops import cutover as ops_cutover
from vecver.ops import verify as ops_verify
from vecver.ops.adopt import adopt
from vecver.types import Document, NamespaceSpec, Record, Stamp

DIM = 32
SPACES: dict[str, dict[str, Any]] = {
    "v1": {"embedder": "hash", "dimension": DIM},
    "v2": {"embedder": "hash", "dimension": DIM, "options": {"seed": 7}},
    "wide": {"embedder": "hash", "dimension": DIM + 16},
    "dotty": {"embedder": "hash", "dimension": DIM, "metric": "dot"},
}
EXISTING = "articles"
N = 24


def text_for(i: int, version: int = 0) -> str:
    return f"article{i} topic{i % 3} alpha{i * 7 % 11} v{version} unique{i}x"


def embed_v1(texts: list[str]) -> np.ndarray:
    """Vectors of space v1's model, as the other code that filled the collection made
    them (the same embedder, outside any workspace)."""
    from vecver.embedders import SpaceEmbedder
    from vecver.space import SpaceSpec

    emb = SpaceEmbedder.for_spec(SpaceSpec(label="v1", **SPACES["v1"]))
    try:
        return np.asarray(emb.embed_documents(texts), dtype=np.float32)
    finally:
        emb.embedder.close()


# -- engines: how other code fills a collection, and a raw snapshot of it -------------------


@dataclass
class Site:
    """One engine. ``fill(be, rows)`` creates collection ``EXISTING`` with the raw client
    and writes ``rows`` (dicts: key, vector, text, doc_key, topic, n); ``snapshot(be)``
    is every stored object as the raw client reads it (key -> payload and vector);
    ``text_field``: where ``fill`` puts the text (None: the local backend's text slot)."""

    kind: str
    table: dict[str, Any]
    fill: Callable[..., None]
    snapshot: Callable[[Backend], dict[Any, Any]]
    text_field: str | None
    native_alias: bool


def _qdrant_fill(be: Backend, rows: list[dict[str, Any]], *, key_kind: str = "int") -> None:
    from qdrant_client import models

    c = be.client  # type: ignore[attr-defined]
    c.create_collection(EXISTING, vectors_config=models.VectorParams(
        size=len(rows[0]["vector"]), distance=models.Distance.COSINE))
    c.upsert(EXISTING, wait=True, points=[
        models.PointStruct(
            id=r["key"] if key_kind == "int" else str(r["key"]),
            vector=list(map(float, r["vector"])),
            payload={k: r[k] for k in ("text", "doc_key", "topic", "n") if k in r},
        )
        for r in rows
    ])


def _qdrant_snapshot(be: Backend) -> dict[Any, Any]:
    c = be.client  # type: ignore[attr-defined]
    out: dict[Any, Any] = {}
    offset = None
    while True:
        pts, offset = c.scroll(EXISTING, limit=100, offset=offset, with_payload=True,
                               with_vectors=True)  # fmt: skip
        for p in pts:
            out[p.id] = (json.dumps(p.payload, sort_keys=True),
                         tuple(np.round(np.asarray(p.vector), 6)))  # fmt: skip
        if offset is None:
            return out


def _milvus_fill(be: Backend, rows: list[dict[str, Any]], *, dynamic: bool = False) -> None:
    from pymilvus import DataType

    c = be.client  # type: ignore[attr-defined]
    schema = c.create_schema(auto_id=False, enable_dynamic_field=dynamic)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=len(rows[0]["vector"]))
    schema.add_field("text", DataType.VARCHAR, max_length=4096)
    schema.add_field("doc_key", DataType.VARCHAR, max_length=256)
    schema.add_field("topic", DataType.VARCHAR, max_length=256)
    schema.add_field("n", DataType.INT64)
    index = c.prepare_index_params()
    index.add_index(field_name="emb", index_type="FLAT", metric_type="COSINE")
    c.create_collection(EXISTING, schema=schema, index_params=index,
                        consistency_level="Strong")  # fmt: skip
    c.insert(EXISTING, [
        {"pk": r["key"], "emb": list(map(float, r["vector"])), "text": r.get("text", ""),
         "doc_key": r["doc_key"], "topic": r["topic"], "n": r["n"]}
        for r in rows
    ])


def _milvus_snapshot(be: Backend) -> dict[Any, Any]:
    c = be.client  # type: ignore[attr-defined]
    rows = c.query(EXISTING, filter="pk >= 0", output_fields=["*"], limit=16_384,
                   consistency_level="Strong")  # fmt: skip
    out: dict[Any, Any] = {}
    for r in rows:
        r = dict(r)
        vec = tuple(np.round(np.asarray(r.pop("emb"), dtype=np.float32), 6))
        out[r["pk"]] = (json.dumps(r, sort_keys=True, default=str), vec)
    return out


def _local_fill(be: Backend, rows: list[dict[str, Any]]) -> None:
    """Another program using the local backend as a plain vector store, with its own
    fingerprint and its own stamps."""
    be.create_namespace(NamespaceSpec(EXISTING, len(rows[0]["vector"]), "cosine", "theirs"))
    be.upsert(EXISTING, [
        Record(str(r["key"]), np.asarray(r["vector"], dtype=np.float32), r.get("text"),
               {k: r[k] for k in ("doc_key", "topic", "n") if k in r},
               Stamp.now("theirs", str(r["key"]), r.get("text") or ""))
        for r in rows
    ])


def _local_snapshot(be: Backend) -> dict[Any, Any]:
    return _local_snapshot_at(be.path)  # type: ignore[attr-defined]


def _local_snapshot_at(path: str | Path) -> dict[Any, Any]:
    # read with a separate backend object over the same directory: what the other
    # program would see, not the adopted view
    other = LocalBackend(path)
    out: dict[Any, Any] = {}
    try:
        cursor = None
        while True:
            page = other.scan(EXISTING, cursor=cursor, limit=100, with_vectors=True)
            for r in page.records:
                out[r.id] = (r.text, json.dumps(r.metadata, sort_keys=True), r.stamp,
                             tuple(np.round(r.vector, 6)))  # fmt: skip
            cursor = page.next_cursor
            if cursor is None:
                return out
    finally:
        other.close()


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded Milvus server. The one of tests/test_backend_milvus.py (session
    scope) when it already runs in this process; otherwise one started for this module
    and stopped at its end, so that it never runs beside that one (port 9091 is fixed:
    one server per machine). Skipped, saying why, without the package or with the
    ports taken by a server of another process."""
    milvus = pytest.importorskip(
        "milvus", reason="the embedded Milvus server needs `pip install milvus==2.3.5`"
    )
    server = milvus.default_server
    if server.running:
        yield f"http://127.0.0.1:{server.listen_port}"
        return
    for port in (9091, 19530):
        if _port_in_use(port):
            pytest.skip(f"port {port} is in use: another Milvus server runs on this machine")
    from test_backend_milvus import TEST_SERVER_CONFIG

    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-adopt")))
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


def _wipe_server(uri: str) -> None:
    from test_backend_milvus import _wipe

    _wipe(uri)


SITE_KINDS = ["local", "qdrant", "milvus-lite", "milvus-server"]
FAST_KINDS = ["local", "qdrant", "milvus-lite"]


def _site(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Site:
    if kind == "local":
        return Site(kind, {"name": "local", "path": str(tmp_path / "local")}, _local_fill,
                    _local_snapshot, None, False)  # fmt: skip
    if kind == "qdrant":
        pytest.importorskip("qdrant_client", reason="needs qdrant-client (vecver[qdrant])")
        return Site(kind, {"name": "qdrant", "path": str(tmp_path / "q")}, _qdrant_fill,
                    _qdrant_snapshot, "text", True)  # fmt: skip
    pytest.importorskip("pymilvus", reason="needs pymilvus (vecver[milvus])")
    if kind == "milvus-lite":
        return Site(kind, {"name": "milvus", "uri": str(tmp_path / "lite.db")}, _milvus_fill,
                    _milvus_snapshot, "text", True)  # fmt: skip
    uri = request.getfixturevalue("milvus_uri")
    _wipe_server(uri)
    return Site(kind, {"name": "milvus", "uri": uri}, _milvus_fill, _milvus_snapshot,
                "text", True)  # fmt: skip


@pytest.fixture
def open_ws(tmp_path: Path) -> Iterator[Callable[[Site], vecver.Workspace]]:
    opened: list[vecver.Workspace] = []

    def make(site: Site) -> vecver.Workspace:
        cfg = vecver.Config.from_mapping(
            {"manifest": {"path": "m.db"}, "backend": dict(site.table),
             "spaces": {k: dict(v) for k, v in SPACES.items()}},
            base=tmp_path,
        )  # fmt: skip
        ws = vecver.Workspace(cfg, progress=False)
        opened.append(ws)
        return ws

    yield make
    for ws in reversed(opened):
        with contextlib.suppress(Exception):
            ws.close()


def rows_for(ids: range, *, version: int = 0, with_text: bool = True) -> list[dict[str, Any]]:
    texts = [text_for(i, version) for i in ids]
    vecs = embed_v1(texts)
    return [
        {"key": i, "vector": v, **({"text": t} if with_text else {}), "doc_key": f"key-{i}",
         "topic": f"topic{i % 3}", "n": i}
        for i, t, v in zip(ids, texts, vecs, strict=True)
    ]


def filled(site: Site, ws: vecver.Workspace, rows: list[dict[str, Any]] | None = None) -> None:
    site.fill(ws.backend, rows if rows is not None else rows_for(range(1, N + 1)))


def adopt_default(site: Site, ws: vecver.Workspace, **kw: Any) -> Any:
    return adopt(ws, "docs", namespace=EXISTING, space="v1", text_field=site.text_field, **kw)


def assert_verify_clean(ws: vecver.Workspace) -> None:
    reports = ops_verify.verify(ws, "docs")
    assert reports, "verify checked no space"
    for r in reports:
        assert r.clean, r.to_dict()


def nothing_recorded(ws: vecver.Workspace, site: Site) -> None:
    assert not ws.manifest.has_collection("docs")
    if site.native_alias:
        assert ws.backend.get_alias("docs") is None


@pytest.fixture(params=SITE_KINDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    return _site(request.param, tmp_path, request)


@pytest.fixture(params=FAST_KINDS)
def fast_site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    return _site(request.param, tmp_path, request)


# -- the workflow ----------------------------------------------------------------------------


def test_adopt_ingest_migrate_verify_cutover_rollback(site: Site, open_ws: Any) -> None:
    """A collection filled by other code is adopted as v1 without copying, takes writes in
    its own layout, migrates to v2 (texts read from the adopted payload), verifies clean,
    cuts over and rolls back."""
    ws = open_ws(site)
    filled(site, ws)
    rep = adopt_default(site, ws)
    assert (rep.documents, rep.checked, rep.dimension, rep.metric) == (N, N, DIM, "cosine")
    assert rep.similarity is not None and rep.similarity > 0.99
    docs = ws.collection("docs")
    assert docs.count() == N
    hit = docs.search(text_for(5), k=1)[0]
    assert (hit.id, hit.text, hit.space) == ("5", text_for(5), "v1")
    assert hit.metadata["topic"] == "topic2" and hit.metadata["doc_key"] == "key-5"
    if site.native_alias:
        assert ws.backend.get_alias("docs") == EXISTING
    assert_verify_clean(ws)

    # more documents (and an update) through vecver land in the adopted collection, in
    # its layout
    new = [Document(str(i), text_for(i), {"doc_key": f"key-{i}", "topic": f"topic{i % 3}",
                                          "n": i}) for i in (101, 102)]  # fmt: skip
    upd = Document("3", text_for(3, version=1), {"doc_key": "key-3", "topic": "topic0", "n": 3})
    docs.upsert([*new, upd])
    raw = site.snapshot(ws.backend)
    assert len(raw) == N + 2
    raw_keys = {str(k) for k in raw}
    assert {"101", "102", "3"} <= raw_keys
    assert not any("_vv_" in json.dumps(v, default=str) for v in raw.values()), \
        "a vecver field reached the adopted collection"

    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    v2 = ws.manifest.namespace_for("docs", "v2")
    assert v2 is not None and v2.state == "ready"
    got = ws.backend_for(v2).fetch(v2.name, ["3", "101", "7"])
    assert got["3"].text == text_for(3, version=1) and got["7"].text == text_for(7)
    assert ws.backend_for(v2).count(v2.name) == N + 2
    assert_verify_clean(ws)

    # dual-write while both are live, then a delete
    docs.upsert([Document("103", text_for(103), {"doc_key": "key-103", "topic": "topic1",
                                                 "n": 103})])  # fmt: skip
    docs.delete(["7"])
    assert_verify_clean(ws)
    assert "7" not in {str(k) for k in site.snapshot(ws.backend)}

    ops_cutover.cutover(ws, "docs", to="v2", force=True)
    assert docs.search(text_for(103), k=1)[0].space == "v2"
    if site.native_alias:
        assert ws.backend.get_alias("docs") == v2.name
    assert_verify_clean(ws)
    ops_cutover.rollback(ws, "docs")
    hit = docs.search(text_for(103), k=1)[0]
    assert (hit.id, hit.space) == ("103", "v1")
    if site.native_alias:
        assert ws.backend.get_alias("docs") == EXISTING
    assert docs.count() == N + 2  # 24 + 101, 102, 103 - 7
    assert_verify_clean(ws)


def test_nothing_is_written_to_the_adopted_collection_unless_asked(
    site: Site, open_ws: Any
) -> None:
    """Adopt, migrate, verify, cutover, rollback and cutover again, with no write of the
    collection: the adopted collection is exactly as the other code left it."""
    ws = open_ws(site)
    filled(site, ws)
    before = site.snapshot(ws.backend)
    assert len(before) == N
    adopt_default(site, ws)
    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    assert_verify_clean(ws)
    ops_verify.verify(ws, "docs", repair=True)
    ops_cutover.cutover(ws, "docs", to="v2", force=True)
    ops_cutover.rollback(ws, "docs")
    ops_cutover.cutover(ws, "docs", to="v2", force=True)
    assert_verify_clean(ws)
    assert site.snapshot(ws.backend) == before


def test_read_only_adopt_refuses_writes_and_never_writes(fast_site: Site, open_ws: Any) -> None:
    """``read_only``: the collection is still the backfill source, but a write of the
    collection is refused before anything is written anywhere."""
    ws = open_ws(fast_site)
    filled(fast_site, ws)
    before = fast_site.snapshot(ws.backend)
    rep = adopt_default(fast_site, ws, read_only=True)
    assert rep.writes == "refuse"
    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    v2 = ws.manifest.namespace_for("docs", "v2")
    assert v2 is not None
    docs = ws.collection("docs")
    with pytest.raises(AdoptedReadOnly) as e:
        docs.upsert([Document("200", text_for(200))])
    assert e.value.namespace == EXISTING
    with pytest.raises(AdoptedReadOnly):
        docs.delete(["1"])
    assert ws.backend_for(v2).fetch(v2.name, ["200"]) == {}
    assert ws.backend_for(v2).count(v2.name) == N
    assert not ws.manifest.intents("docs")
    assert fast_site.snapshot(ws.backend) == before


def test_an_id_that_cannot_be_a_key_is_refused_before_any_write(
    open_ws: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Without an id field, the ids of an integer-keyed collection are its keys: another
    id is refused (``InvalidId``) before any space is written, also during a migration."""
    site = _site("qdrant", tmp_path, request)
    ws = open_ws(site)
    filled(site, ws)
    adopt_default(site, ws)
    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    docs = ws.collection("docs")
    with pytest.raises(InvalidId):
        docs.upsert([Document("not-a-number", "some text")])
    v2 = ws.manifest.namespace_for("docs", "v2")
    assert v2 is not None and ws.backend_for(v2).count(v2.name) == N
    assert len(site.snapshot(ws.backend)) == N


def test_an_id_field_maps_documents_to_existing_objects(fast_site: Site, open_ws: Any) -> None:
    """With an id field, documents are found by it: an update replaces the object that
    holds the id (no second object), a new document gets a new object holding it."""
    ws = open_ws(fast_site)
    filled(fast_site, ws)
    adopt(ws, "docs", namespace=EXISTING, space="v1", text_field=fast_site.text_field,
          id_field="doc_key")  # fmt: skip
    docs = ws.collection("docs")
    assert set(docs.get(["key-4", "4"])) == {"key-4"}
    meta = {"topic": "topic1", "n": 4}
    docs.upsert([Document("key-4", text_for(4, version=2), meta),
                 Document("key-new", text_for(500), {"topic": "topic0", "n": 500})])
    raw = fast_site.snapshot(ws.backend)
    assert len(raw) == N + 1
    got = docs.get(["key-4", "key-new"])
    assert got["key-4"].text == text_for(4, version=2)
    assert got["key-new"].text == text_for(500)
    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    assert_verify_clean(ws)
    with pytest.raises(AdoptedFieldClash):
        docs.upsert([Document("key-9", "x y z", {"doc_key": "other"})])


def test_filters_address_the_adopted_fields(fast_site: Site, open_ws: Any) -> None:
    """A filter on an adopted collection addresses its own payload fields."""
    ws = open_ws(fast_site)
    filled(fast_site, ws)
    adopt_default(fast_site, ws)
    hits = ws.collection("docs").search(text_for(4), k=50, filter={"topic": "topic1"})
    assert hits and all(h.metadata["topic"] == "topic1" for h in hits)
    assert {h.id for h in hits} == {str(i) for i in range(1, N + 1) if i % 3 == 1}
    hits = ws.collection("docs").search(text_for(4), k=50,
                                        filter=Filter.parse({"n": {"gte": 20}}))
    assert {h.id for h in hits} == {str(i) for i in range(20, N + 1)}


def test_milvus_rows_must_fit_the_adopted_schema(open_ws: Any, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    """A document lacking a field of the adopted Milvus schema (or with one the schema
    does not have) is refused before anything is written."""
    site = _site("milvus-lite", tmp_path, request)
    ws = open_ws(site)
    filled(site, ws)
    adopt_default(site, ws)
    docs = ws.collection("docs")
    with pytest.raises(AdoptedRowRefused) as e:
        docs.upsert([Document("300", text_for(300), {"topic": "topic0"})])
    assert set(e.value.missing) == {"doc_key", "n"}
    with pytest.raises(AdoptedRowRefused) as e:
        docs.upsert([Document("300", text_for(300), {"topic": "t", "doc_key": "k", "n": 1,
                                                     "color": "red"})])  # fmt: skip
    assert e.value.extra == ["color"]
    assert len(site.snapshot(ws.backend)) == N


def test_vecver_never_drops_an_adopted_collection(fast_site: Site, open_ws: Any) -> None:
    ws = open_ws(fast_site)
    filled(fast_site, ws)
    adopt_default(fast_site, ws)
    with pytest.raises(AdoptedProtected):
        ws.backend.drop_namespace(EXISTING)
    assert len(fast_site.snapshot(ws.backend)) == N


def test_a_new_process_reads_the_adopted_collection_through_the_manifest(
    fast_site: Site, open_ws: Any
) -> None:
    """The layout lives in the manifest: a workspace opened later reads and writes the
    adopted collection the same way."""
    ws = open_ws(fast_site)
    filled(fast_site, ws)
    adopt_default(fast_site, ws)
    ws.close()
    ws2 = open_ws(fast_site)
    docs = ws2.collection("docs")
    assert docs.count() == N
    assert docs.get(["9"])["9"].text == text_for(9)
    assert_verify_clean(ws2)


# -- refusals: each records nothing ---------------------------------------------------------


@pytest.mark.parametrize("case", [
    "dimension", "metric", "not-found", "text-field-name", "text-missing-on-objects",
    "id-field-missing", "id-field-duplicated", "vectors", "same-name", "exists",
])
def test_adopt_refusals_record_nothing(fast_site: Site, open_ws: Any, case: str) -> None:
    ws = open_ws(fast_site)
    rows = rows_for(range(1, N + 1))
    text_field = fast_site.text_field
    kw: dict[str, Any] = {}
    space, namespace, collection = "v1", EXISTING, "docs"
    expected: type[Exception] = AdoptError
    if case == "dimension":
        space, expected = "wide", AdoptedDimensionMismatch
    elif case == "metric":
        space, expected = "dotty", AdoptedMetricMismatch
    elif case == "not-found":
        namespace, expected = "no_such_collection", AdoptedNotFound
    elif case == "text-field-name":
        # a field no object has (on the local backend the text is in its own slot)
        text_field, expected = "body", AdoptedFieldMissing
    elif case == "text-missing-on-objects":
        if fast_site.kind == "milvus-lite":
            rows[3]["text"] = "   "  # a schema'd VARCHAR: blank instead of absent
        else:
            del rows[3]["text"]
        expected = AdoptedFieldMissing
    elif case == "id-field-missing":
        kw["id_field"] = "doc_key"
        rows[5]["doc_key"] = ""
        expected = AdoptedFieldMissing
    elif case == "id-field-duplicated":
        kw["id_field"] = "doc_key"
        rows[5]["doc_key"] = rows[6]["doc_key"]
        expected = AdoptedIdDuplicated
    elif case == "vectors":
        space, expected = "v2", AdoptedVectorsMismatch
    elif case == "same-name":
        collection = EXISTING
    elif case == "exists":
        expected = StateError
    fast_site.fill(ws.backend, rows)
    before = fast_site.snapshot(ws.backend)
    if case == "same-name" and not fast_site.native_alias:
        # without database aliases the collection name is vecver's alone: no refusal
        rep = adopt(ws, collection, namespace=namespace, space=space, text_field=text_field)
        assert rep.documents == N and not rep.alias
        assert fast_site.snapshot(ws.backend) == before
        return
    if case == "exists":
        adopt(ws, collection, namespace=namespace, space="v1", text_field=text_field)
        with pytest.raises(expected):
            adopt(ws, collection, namespace=namespace, space="v1", text_field=text_field)
        assert fast_site.snapshot(ws.backend) == before
        return
    with pytest.raises(expected) as e:
        adopt(ws, collection, namespace=namespace, space=space, text_field=text_field, **kw)
    assert e.value.hint, "a refusal says what to do"
    assert not ws.manifest.has_collection(collection)
    if fast_site.native_alias:
        assert ws.backend.get_alias(collection) is None
    assert fast_site.snapshot(ws.backend) == before
    if isinstance(e.value, AdoptedFieldMissing) and case.endswith("objects"):
        assert e.value.keys and e.value.count == 1


def test_a_text_field_is_required_where_the_database_has_no_text_slot(
    open_ws: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    site = _site("qdrant", tmp_path, request)
    ws = open_ws(site)
    filled(site, ws)
    with pytest.raises(AdoptedFieldMissing) as e:
        adopt(ws, "docs", namespace=EXISTING, space="v1")
    assert "text" in e.value.fields and "--text-field" in str(e.value)
    nothing_recorded(ws, site)


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_adopt_migrate_cutover_rollback(cli_ws: Any) -> None:
    """``vecver adopt`` end to end on Qdrant's local mode in a directory, then the usual
    verbs; a refusal is one line on stderr."""
    pytest.importorskip("qdrant_client", reason="needs qdrant-client (vecver[qdrant])")
    from qdrant_client import QdrantClient, models

    cli_ws.write_config(
        '[manifest]\npath = "vecver.db"\n\n[backend]\nname = "qdrant"\npath = "q"\n\n'
        + "".join(
            f"[spaces.{label}]\n" + "".join(
                f"{k} = {json.dumps(v) if not isinstance(v, dict) else _toml_table(v)}\n"
                for k, v in spec.items()) + "\n"
            for label, spec in SPACES.items()
        )
    )
    rows = rows_for(range(1, N + 1))
    raw = QdrantClient(path=str(cli_ws.root / "q"))
    raw.create_collection(EXISTING, vectors_config=models.VectorParams(
        size=DIM, distance=models.Distance.COSINE))
    raw.upsert(EXISTING, wait=True, points=[
        models.PointStruct(id=r["key"], vector=list(map(float, r["vector"])),
                           payload={"body": r["text"], "topic": r["topic"]})
        for r in rows
    ])
    raw.close()

    bad = cli_ws.run("adopt", "docs", "--namespace", EXISTING, "--space", "v1",
                     "--text-field", "nope", ok=False)  # fmt: skip
    assert "nope" in bad.err and bad.rc == 2  # bad input
    assert cli_ws.collection_status("docs") is None

    res = cli_ws.run("adopt", "docs", "--namespace", EXISTING, "--space", "v1",
                     "--text-field", "body", "--json", ok=True)  # fmt: skip
    data = res.json()
    assert (data["documents"], data["text_field"], data["id_type"]) == (N, "body", "int")
    text = cli_ws.run("status", ok=True).out
    assert "docs" in text
    cli_ws.run("migrate", "docs", "--to", "v2", ok=True)
    cli_ws.run("verify", "docs", ok=True)
    cli_ws.run("cutover", "docs", "--force", ok=True)
    found = cli_ws.run("search", "docs", text_for(8), "-k", "1", "--json", ok=True).json()
    assert found[0]["id"] == "8" and found[0]["space"] == "v2"
    cli_ws.run("rollback", "docs", ok=True)
    found = cli_ws.run("search", "docs", text_for(8), "-k", "1", "--json", ok=True).json()
    assert found[0]["id"] == "8" and found[0]["space"] == "v1"
    raw = QdrantClient(path=str(cli_ws.root / "q"))
    try:
        pts, _ = raw.scroll(EXISTING, limit=100, with_payload=True)
        assert sorted(p.id for p in pts) == list(range(1, N + 1))
        assert all(set(p.payload or {}) == {"body", "topic"} for p in pts)
    finally:
        raw.close()


def _toml_table(d: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items()) + " }"


# -- other key types -------------------------------------------------------------------------


def test_qdrant_uuid_keys_are_the_ids(open_ws: Any, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    """A Qdrant collection keyed by UUIDs: its ids are the canonical UUID strings; a new
    document needs one (``InvalidId`` otherwise, before anything is written)."""
    import uuid

    site = _site("qdrant", tmp_path, request)
    ws = open_ws(site)
    rows = rows_for(range(1, 9))
    for r in rows:
        r["key"] = str(uuid.UUID(int=r["key"]))
    _qdrant_fill(ws.backend, rows, key_kind="uuid")
    rep = adopt_default(site, ws)
    assert rep.id_type == "uuid"
    docs = ws.collection("docs")
    first = str(uuid.UUID(int=1))
    assert docs.get([first])[first].text == text_for(1)
    fresh = str(uuid.UUID(int=99))
    docs.upsert([Document(fresh, text_for(99), {"topic": "t", "doc_key": "k", "n": 99})])
    assert fresh in {str(k) for k in site.snapshot(ws.backend)}
    with pytest.raises(InvalidId):
        docs.upsert([Document("not-a-uuid", "text")])
    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    assert_verify_clean(ws)


def test_milvus_varchar_keys_and_dynamic_fields(open_ws: Any, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    """A Milvus collection with a VARCHAR primary key and the dynamic field: any string id
    is a key, metadata outside the schema goes to the dynamic field and reads back."""
    from pymilvus import DataType

    site = _site("milvus-lite", tmp_path, request)
    ws = open_ws(site)
    c = ws.backend.client  # type: ignore[attr-defined]
    schema = c.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("name", DataType.VARCHAR, is_primary=True, max_length=128)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("body", DataType.VARCHAR, max_length=4096)
    index = c.prepare_index_params()
    index.add_index(field_name="vec", index_type="FLAT", metric_type="COSINE")
    c.create_collection(EXISTING, schema=schema, index_params=index, consistency_level="Strong")
    texts = {f"doc-{i}": text_for(i) for i in range(1, 11)}
    vecs = embed_v1(list(texts.values()))
    c.insert(EXISTING, [{"name": k, "vec": v.tolist(), "body": t, "lang": "en"}
                        for (k, t), v in zip(texts.items(), vecs, strict=True)])  # fmt: skip
    rep = adopt(ws, "docs", namespace=EXISTING, space="v1", text_field="body",
                id_field="name")  # the key field named as the id field: the keys  # fmt: skip
    assert (rep.id_type, rep.id_field) == ("str", None)
    docs = ws.collection("docs")
    got = docs.get(["doc-3"])["doc-3"]
    assert (got.text, got.metadata) == (text_for(3), {"lang": "en"})
    docs.upsert([Document("new 'quoted\" id", text_for(50), {"lang": "fr", "year": 2020})])
    back = docs.get(["new 'quoted\" id"])["new 'quoted\" id"]
    assert back.metadata == {"lang": "fr", "year": 2020}
    rows = c.query(EXISTING, filter='name == "doc-1"', output_fields=["*"])
    assert set(rows[0]) == {"name", "vec", "body", "lang"}
    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    assert_verify_clean(ws)


def _cli_config(backend: str, location: str) -> str:
    return (
        f'[manifest]\npath = "vecver.db"\n\n[backend]\nname = "{backend}"\npath = "{location}"\n\n'
        + "".join(
            f"[spaces.{label}]\n" + "".join(
                f"{k} = {json.dumps(v) if not isinstance(v, dict) else _toml_table(v)}\n"
                for k, v in spec.items()) + "\n"
            for label, spec in SPACES.items()
        )
    )


def test_cli_kill_9_of_a_backfill_from_an_adopted_collection_then_resume(cli_ws: Any) -> None:
    """``vecver migrate`` reading an adopted collection is killed with SIGKILL once some
    batches are checkpointed; ``vecver backfill`` resumes it: v2 holds every document
    exactly once, embedded from the adopted text field; the adopted collection is as the
    other program left it."""
    import os
    import signal
    import time

    from vecver.store.sqlite import Manifest

    n = 600
    cli_ws.write_config(_cli_config("local", "vectors"))
    other = LocalBackend(cli_ws.root / "vectors")
    rows = rows_for(range(1, n + 1), with_text=False)
    for r in rows:
        r["body"] = text_for(r["key"])
    other.create_namespace(NamespaceSpec(EXISTING, DIM, "cosine", "theirs"))
    other.upsert(EXISTING, [
        Record(f"a{r['key']}", np.asarray(r["vector"], dtype=np.float32), None,
               {"body": r["body"], "topic": r["topic"]}, Stamp.now("theirs", f"a{r['key']}", ""))
        for r in rows
    ])
    other.close()
    before = _local_snapshot_at(cli_ws.root / "vectors")
    cli_ws.run("adopt", "docs", "--namespace", EXISTING, "--space", "v1", "--text-field",
               "body", ok=True)  # fmt: skip

    proc = cli_ws.popen("-q", "migrate", "docs", "--to", "v2", "--batch-size", "20")
    killed = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        m = Manifest(str(cli_ws.root / "vecver.db"))
        try:
            row = m.namespace_for("docs", "v2")
            ck = m.checkpoint(row.name) if row is not None else None
        finally:
            m.close()
        if ck is not None and ck.done >= 100:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    _, err = proc.communicate(timeout=60)
    assert killed, f"migrate ended before it could be killed: {err}"

    res = cli_ws.run("backfill", "docs", "--json", ok=True).json()
    assert res["resumed"] is True
    cli_ws.run("verify", "docs", ok=True)
    with vecver.Workspace(cli_ws.config, progress=False) as ws:
        v2 = ws.manifest.namespace_for("docs", "v2")
        assert v2 is not None and v2.state == "ready"
        got = {}
        cursor = None
        while True:
            page = ws.backend.scan(v2.name, cursor=cursor, limit=97)
            for r in page.records:
                assert r.id not in got, f"{r.id} twice in v2"
                got[r.id] = r.text
            cursor = page.next_cursor
            if cursor is None:
                break
    assert got == {f"a{i}": text_for(i) for i in range(1, n + 1)}
    after = _local_snapshot_at(cli_ws.root / "vectors")
    assert after == before


def test_writes_of_the_other_code_are_found_by_verify_and_repaired(
    fast_site: Site, open_ws: Any
) -> None:
    """The other code may keep writing the adopted collection directly during the
    migration: its text field is the truth, so ``verify`` reports what v2 lacks or holds
    stale, and ``verify --repair`` brings it over."""
    ws = open_ws(fast_site)
    filled(fast_site, ws)
    adopt_default(fast_site, ws)
    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    # behind vecver's back: a new object and a changed text, with the raw client
    later = rows_for(range(N + 1, N + 2)) + rows_for(range(2, 3), version=5)
    if fast_site.kind == "qdrant":
        from qdrant_client import models

        ws.backend.client.upsert(EXISTING, wait=True, points=[  # type: ignore[attr-defined]
            models.PointStruct(id=r["key"], vector=list(map(float, r["vector"])),
                               payload={k: r[k] for k in ("text", "doc_key", "topic", "n")})
            for r in later
        ])
    elif fast_site.kind == "milvus-lite":
        ws.backend.client.upsert(EXISTING, [  # type: ignore[attr-defined]
            {"pk": r["key"], "emb": list(map(float, r["vector"])), "text": r["text"],
             "doc_key": r["doc_key"], "topic": r["topic"], "n": r["n"]} for r in later
        ])
    else:
        other = LocalBackend(ws.backend.path)  # type: ignore[attr-defined]
        other.upsert(EXISTING, [
            Record(str(r["key"]), np.asarray(r["vector"], dtype=np.float32), r["text"],
                   {k: r[k] for k in ("doc_key", "topic", "n")},
                   Stamp.now("theirs", str(r["key"]), r["text"]))
            for r in later
        ])
        other.close()
    v2_report = [r for r in ops_verify.verify(ws, "docs") if r.space == "v2"][0]
    assert (v2_report.missing, v2_report.stale) == (1, 1), v2_report.to_dict()
    ops_verify.verify(ws, "docs", repair=True)
    assert_verify_clean(ws)
    v2 = ws.manifest.namespace_for("docs", "v2")
    assert v2 is not None
    got = ws.backend_for(v2).fetch(v2.name, ["2", str(N + 1)])
    assert got["2"].text == text_for(2, version=5) and got[str(N + 1)].text == text_for(N + 1)


@pytest.mark.parametrize("kind", ["qdrant", "milvus-lite"])
def test_a_namespace_of_another_workspace_is_not_adopted(
    kind: str, open_ws: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A collection vecver created (here: for another workspace's manifest) is refused:
    it belongs to the workspace that made it."""
    site = _site(kind, tmp_path, request)
    ws = open_ws(site)
    ws.create_collection("mine", "v1")
    physical = ws.manifest.active_namespace("mine")
    cfg = vecver.Config.from_mapping(
        {"manifest": {"path": "other.db"}, "backend": dict(site.table),
         "spaces": {k: dict(v) for k, v in SPACES.items()}},
        base=tmp_path,
    )  # fmt: skip
    other = vecver.Workspace(cfg, backend=ws.backend, progress=False)
    try:
        with pytest.raises(AdoptError) as e:
            adopt(other, "docs", namespace=physical, space="v1", text_field="text")
        assert "vecver created" in str(e.value)
        assert not other.manifest.has_collection("docs")
        assert ws.backend.get_alias("docs") is None
    finally:
        other.manifest.close()


def test_faults_reach_an_adopted_collection_and_the_backfill_resumes(tmp_path: Path) -> None:
    """The fault-injecting wrapper forwards the adopt hooks: a collection adopted through
    it serves reads, a scan fault in its middle stops the backfill to v2 (the fault really
    fires on the adopted collection), and the backfill then resumes to an exact, clean v2."""
    from vecver.errors import BackendError
    from vecver.testing.faults import FaultyBackend
    from vecver.testing.workflow import workspace_factory_for

    wrapped: dict[str, FaultyBackend] = {}

    def wrap(name: str, b: Backend) -> Backend:
        wrapped[name] = FaultyBackend(b)
        return wrapped[name]

    table = {"name": "local", "path": str(tmp_path / "local")}
    with workspace_factory_for(tmp_path, {"default": table}, wrap=wrap) as make:
        ws = make({"spaces": {k: dict(v) for k, v in SPACES.items()},
                   "backfill": {"batch_size": 5}})  # fmt: skip
        faulty = wrapped["default"]
        _local_fill(faulty.inner, rows_for(range(1, N + 1)))
        rep = adopt(ws, "docs", namespace=EXISTING, space="v1")
        assert rep.documents == N
        assert faulty.describe_external(EXISTING).dimension == DIM
        hit = ws.collection("docs").search(text_for(5), k=1)[0]
        assert (hit.id, hit.space) == ("5", "v1")
        assert faulty.calls["search"] >= 1

        ops_backfill.start_migration(ws, "docs", "v2")
        fault = faulty.fail("scan", nth=2, error="permanent", namespace=EXISTING)
        with pytest.raises(BackendError):
            ops_backfill.backfill(ws, "docs", space="v2")
        assert fault.fired == 1
        faulty.clear_faults()
        out = ops_backfill.backfill(ws, "docs", space="v2")
        assert out.state == "ready", out.to_dict()
        v2 = ws.manifest.namespace_for("docs", "v2")
        assert v2 is not None
        assert sorted(faulty.inner.fetch(v2.name, [str(i) for i in range(1, N + 1)])) == \
            sorted(str(i) for i in range(1, N + 1))
        assert_verify_clean(ws)


def _qdrant_fill_two_vectors(be: Backend, rows: list[dict[str, Any]]) -> np.ndarray:
    """A Qdrant collection with two named vectors: ``body`` (the space's model) and
    ``image`` (another model's 8-d dot vectors, which vecver must never touch). Returns the
    ``image`` vectors, by row."""
    from qdrant_client import models

    c = be.client  # type: ignore[attr-defined]
    c.create_collection(EXISTING, vectors_config={
        "body": models.VectorParams(size=len(rows[0]["vector"]), distance=models.Distance.COSINE),
        "image": models.VectorParams(size=8, distance=models.Distance.DOT),
    })  # fmt: skip
    image = np.random.default_rng(3).normal(size=(len(rows), 8)).astype(np.float32)
    c.upsert(EXISTING, wait=True, points=[
        models.PointStruct(
            id=r["key"], vector={"body": list(map(float, r["vector"])),
                                 "image": list(map(float, img))},
            payload={k: r[k] for k in ("text", "doc_key", "topic", "n") if k in r},
        )
        for r, img in zip(rows, image, strict=True)
    ])  # fmt: skip
    return image


def test_a_collection_with_several_vectors_is_adopted_through_the_one_named(
    open_ws: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A Qdrant collection with two named vectors: adopt refuses to guess (and records
    nothing), refuses a vector it does not have, and with ``vector_field`` adopts that
    vector; the collection's writes then set that vector and keep the other one, a new
    document gets only the adopted vector, and a migration to v2 verifies clean."""
    site = _site("qdrant", tmp_path, request)
    ws = open_ws(site)
    rows = rows_for(range(1, N + 1))
    image = _qdrant_fill_two_vectors(ws.backend, rows)
    with pytest.raises(AdoptError, match="body, image") as e:
        adopt_default(site, ws)
    assert "--vector-field" in (e.value.hint or "")
    nothing_recorded(ws, site)
    with pytest.raises(AdoptError, match="no vector 'nope'"):
        adopt_default(site, ws, vector_field="nope")
    nothing_recorded(ws, site)
    with pytest.raises(AdoptedDimensionMismatch):
        adopt_default(site, ws, vector_field="image", vector_check=False)
    nothing_recorded(ws, site)

    rep = adopt_default(site, ws, vector_field="body")
    assert (rep.documents, rep.dimension, rep.vector_field) == (N, DIM, "body")
    assert rep.similarity is not None and rep.similarity > 0.99
    docs = ws.collection("docs")
    assert docs.search(text_for(5), k=1)[0].id == "5"

    c = ws.backend.client  # type: ignore[attr-defined]
    docs.upsert([Document("3", text_for(3, version=1), {"doc_key": "key-3", "topic": "t",
                                                        "n": 3}),
                 Document("101", text_for(101), {"doc_key": "key-101", "topic": "t",
                                                 "n": 101})])  # fmt: skip
    got = {p.id: p for p in c.retrieve(EXISTING, [3, 101], with_payload=True,
                                       with_vectors=True)}  # fmt: skip
    assert got[3].payload["text"] == text_for(3, version=1)
    assert np.allclose(got[3].vector["image"], image[2], atol=1e-6), \
        "the write of the adopted vector changed the other vector"
    assert np.allclose(got[3].vector["body"], embed_v1([text_for(3, version=1)])[0], atol=1e-5)
    assert set(got[101].vector) == {"body"}
    assert docs.search(text_for(3, version=1), k=1)[0].id == "3"

    ops_backfill.migrate(ws, "docs", "v2", progress=False)
    assert_verify_clean(ws)
    ops_cutover.cutover(ws, "docs", to="v2", force=True)
    assert docs.search(text_for(101), k=1)[0].space == "v2"
    ops_cutover.rollback(ws, "docs")
    kept = c.retrieve(EXISTING, list(range(4, N + 1)), with_vectors=True)
    assert all(np.allclose(p.vector["image"], image[int(p.id) - 1], atol=1e-6) for p in kept)
