"""Bad input: each is a typed error with a clear message, and nothing is half-written
(every space is compared before and after the failed call)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vvcore import SPACES, config, make_docs, ns_of, snapshot, states

import vecver
from vecver.backends import registry
from vecver.errors import (
    BackendNotInstalled,
    ConfigError,
    DimensionMismatch,
    DuplicateIds,
    InvalidFilter,
    InvalidId,
    InvalidInput,
    ManifestCorrupt,
    ManifestForeign,
    ManifestVersionError,
    MissingText,
    NonFiniteVector,
    NoPreviousSpace,
    NotReady,
    SourceError,
    StampMismatch,
    UnknownBackend,
    UnknownBackendOption,
    UnknownCollection,
    UnknownSpace,
    VecverError,
)
from vecver.filters import F
from vecver.types import Document, Record, Stamp


def _two(ws: vecver.Workspace) -> vecver.Workspace:
    c = ws.collection("c")
    c.upsert(make_docs(20))
    vecver.start_migration(ws, "c", "v2")
    vecver.backfill(ws, "c", progress=False)
    vecver.start_migration(ws, "c", "v3")  # a third, still building
    return ws


@pytest.fixture
def two(make_ws, backend_name: str) -> vecver.Workspace:
    """Collection ``c`` with 20 documents: v1 active, v2 ready, v3 being built (dual-write
    to all three), on each backend."""
    return _two(make_ws(backend_name))


@pytest.fixture
def mem_two(make_ws) -> vecver.Workspace:
    """The same on the memory backend only (for checks that do not reach a backend)."""
    return _two(make_ws("memory"))


def _record(ws: vecver.Workspace, label: str, doc_id: str, vector: Any,
            stamp_label: str | None = None) -> Record:
    fp = ws.space(stamp_label or label).fingerprint
    text = f"{doc_id} text"
    return Record(doc_id, np.asarray(vector, dtype=np.float32), text, {},
                  Stamp.now(fp, doc_id, text))


def _good(ws: vecver.Workspace, label: str, doc_id: str = "fresh") -> Record:
    emb = ws.embedder(label)
    return _record(ws, label, doc_id, emb.embed_documents([f"{doc_id} text"])[0])


# ------------------------------------------------------------------------ vectors


@pytest.mark.parametrize(
    "make_vec, err, msg",
    [
        (lambda d: np.ones(d - 1), DimensionMismatch, "dimension 63, expected 64"),
        (lambda d: np.ones(d + 1), DimensionMismatch, "dimension 65, expected 64"),
        (lambda d: np.ones((2, d)), DimensionMismatch, "expected 64"),
        (lambda d: np.r_[np.ones(d - 1), np.nan], NonFiniteVector, "NaN or infinity"),
        (lambda d: np.r_[np.inf, np.ones(d - 1)], NonFiniteVector, "NaN or infinity"),
        (lambda d: np.r_[-np.inf, np.ones(d - 1)], NonFiniteVector, "NaN or infinity"),
    ],
    ids=["short", "long", "matrix", "nan", "inf", "-inf"],
)
def test_bad_vectors_are_refused_whole(two: vecver.Workspace, make_vec, err, msg) -> None:
    ws = two
    before = snapshot(ws)
    for label in ("v1", "v2"):
        bad = _record(ws, label, "bad", make_vec(64))
        with pytest.raises(err, match=msg) as e:
            # the good record in the same call is not written either (all-or-nothing)
            ws.backend.upsert(ns_of(ws, "c", label), [_good(ws, label), bad])
        assert isinstance(e.value, InvalidInput)
        assert "bad" in str(e.value)
        assert e.value.hint
    assert snapshot(ws) == before


def test_vector_stamped_with_another_space(two: vecver.Workspace) -> None:
    ws = two
    before = snapshot(ws)
    rec = _record(ws, "v1", "alien", ws.embedder("v2").embed_documents(["alien text"])[0],
                  stamp_label="v2")
    with pytest.raises(StampMismatch) as e:
        ws.backend.upsert(ns_of(ws, "c", "v1"), [_good(ws, "v1"), rec])
    assert e.value.expected == ws.space("v1").fingerprint
    assert e.value.got == ws.space("v2").fingerprint
    assert "never mixed" in str(e.value)
    assert snapshot(ws) == before


def test_query_vectors_of_the_wrong_dimension(mem_two: vecver.Workspace) -> None:
    c = mem_two.collection("c")
    with pytest.raises(DimensionMismatch):
        c.search_vectors(np.ones((1, 8), dtype=np.float32), 3, space="v1")
    with pytest.raises(NonFiniteVector):
        c.search_vectors(np.full((1, 64), np.nan, dtype=np.float32), 3, space="v1")


# ------------------------------------------------------------------------ documents


BAD_DOCS: list[tuple[str, list[Any], type[VecverError], str]] = [
    ("empty text", [{"id": "x", "text": ""}], MissingText, "'x' has no text"),
    ("blank text", [{"id": "x", "text": "  \n "}], MissingText, "'x' has no text"),
    ("missing text", [{"id": "x"}], MissingText, "'x' has no text"),
    ("null text", [{"id": "x", "text": None}], MissingText, "'x' has no text"),
    ("Document empty text", [Document("x", "")], MissingText, "'x' has no text"),
    ("empty id", [{"id": "", "text": "t"}], InvalidId, "invalid document id ''"),
    ("missing id", [{"text": "t"}], InvalidId, "invalid document id"),
    ("list id", [{"id": ["a"], "text": "t"}], InvalidId, "invalid document id"),
    ("Document int id", [Document(7, "t")], InvalidId, "invalid document id 7"),  # type: ignore[arg-type]
    ("duplicates", [{"id": "x", "text": "a"}, {"id": "x", "text": "b"}], DuplicateIds,
     "duplicate document ids in one batch: 'x'"),
    ("nan metadata", [{"id": "x", "text": "t", "metadata": {"a": float("nan")}}],
     InvalidInput, "not JSON-serializable"),
    ("object metadata", [{"id": "x", "text": "t", "metadata": {"a": object()}}],
     InvalidInput, "not JSON-serializable"),
    ("list metadata", [{"id": "x", "text": "t", "metadata": [1, 2]}],
     InvalidInput, "must be an object"),
    ("not a document", [42], InvalidInput, "expected an object"),
]


@pytest.mark.parametrize("bad, err, msg", [b[1:] for b in BAD_DOCS],
                         ids=[b[0] for b in BAD_DOCS])
def test_bad_documents_write_nothing(two: vecver.Workspace, bad, err, msg) -> None:
    ws = two
    c = ws.collection("c")
    before = snapshot(ws)
    tomb = ws.manifest.tombstone_count("c")
    # good documents before the bad one, in the same call and across batches
    good = make_docs(3, start=100) + [make_docs(1, start=5, version=9)[0]]
    for batch_size in (None, 1):
        with pytest.raises(err, match=msg) as e:
            c.upsert([*good, *bad], batch_size=batch_size)
        assert isinstance(e.value, InvalidInput)
        assert snapshot(ws) == before
    assert ws.manifest.intents("c") == []
    assert ws.manifest.tombstone_count("c") == tomb


def test_duplicates_across_batches_write_nothing(two: vecver.Workspace) -> None:
    c = two.collection("c")
    before = snapshot(two)
    docs = make_docs(10, start=200)
    with pytest.raises(DuplicateIds) as e:
        c.upsert([*docs, docs[0], docs[3]], batch_size=2)
    assert e.value.ids == [docs[0].id, docs[3].id]
    assert snapshot(two) == before


@pytest.mark.parametrize("ids, err", [(["d0001", ""], InvalidId), (["d0001", None], InvalidId),
                                      (["d0001", "d0001"], DuplicateIds)])
def test_bad_deletes_delete_nothing(two: vecver.Workspace, ids, err) -> None:
    before = snapshot(two)
    with pytest.raises(err):
        two.collection("c").delete(ids)
    assert snapshot(two) == before
    assert two.manifest.tombstone_count("c") == 0 and two.manifest.intents("c") == []


def test_bad_queries(mem_two: vecver.Workspace) -> None:
    c = mem_two.collection("c")
    for q in ("", "   "):
        with pytest.raises(InvalidInput, match="non-empty string"):
            c.search(q)
    with pytest.raises(InvalidInput, match="list of queries"):
        c.search_many("alpha")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="k must be a positive integer"):
        c.search("alpha1", k=0)
    with pytest.raises(InvalidInput, match="unknown route"):
        c.search("alpha1", route="sideways")
    with pytest.raises(UnknownSpace):
        c.search("alpha1", route="space:nope")


@pytest.mark.parametrize(
    "flt, msg",
    [
        ({"n": {"nope": 1}}, "unknown filter operator"),
        ({"n": {}}, "unknown filter operator"),
        ({"n": [1, 2]}, "must be a string, number or bool"),
        ({"n": {"in": "ab"}}, "needs a list of values"),
        ({"n": {"in": []}}, "needs at least one value"),
        ({"n": {"gt": True}}, "must be a number or string"),
        ({"n": {"gte": None}}, "at least one bound"),
        ({"n": {"lt": [1]}}, "must be a number or string"),
        ({"": 1}, "non-empty string"),
        ({3: 1}, "non-empty string"),
        ("n=1", "a filter is a mapping"),
    ],
)
def test_bad_filters(mem_two: vecver.Workspace, flt, msg) -> None:
    with pytest.raises(InvalidFilter, match=msg):
        mem_two.collection("c").search("alpha1", k=3, filter=flt)


def test_bad_filter_builders() -> None:
    with pytest.raises(InvalidFilter):
        F.range("n")
    with pytest.raises(InvalidFilter):
        F.isin("n", [])
    with pytest.raises(InvalidFilter):
        F.eq("", 1)


def test_good_filter_still_works(two: vecver.Workspace) -> None:
    hits = two.collection("c").search("topic1", k=20, filter={"odd": 1, "n": {"lt": 10}})
    assert hits and all(h.metadata["odd"] == 1 and h.metadata["n"] < 10 for h in hits)


# ------------------------------------------------------------------------ names and states


def test_unknown_space(mem_two: vecver.Workspace) -> None:
    ws = mem_two
    before, nss = snapshot(ws), ws.backend.list_namespaces()
    with pytest.raises(UnknownSpace) as e:
        vecver.migrate(ws, "c", "nope", progress=False)
    assert e.value.label == "nope" and "v1" in str(e.value) and "v2" in str(e.value)
    with pytest.raises(UnknownSpace):
        vecver.backfill(ws, "c", space="nope", progress=False)
    with pytest.raises(UnknownSpace):
        vecver.cutover(ws, "c", to="nope", force=True)
    assert snapshot(ws) == before and ws.backend.list_namespaces() == nss
    assert states(ws) == {"v1": "active", "v2": "ready", "v3": "building"}


def test_unknown_collection(mem_two: vecver.Workspace) -> None:
    ws = mem_two
    before = snapshot(ws)
    calls = [
        lambda: ws.collection("zzz"),
        lambda: vecver.migrate(ws, "zzz", "v2", progress=False),
        lambda: vecver.backfill(ws, "zzz", progress=False),
        lambda: vecver.verify(ws, "zzz"),
        lambda: vecver.evaluate(ws, "zzz"),
        lambda: vecver.cutover(ws, "zzz", force=True),
        lambda: vecver.rollback(ws, "zzz"),
        lambda: vecver.plan(ws, "zzz", "v2"),
    ]
    for call in calls:
        with pytest.raises(UnknownCollection) as e:
            call()
        assert e.value.name == "zzz" and "known collections: c" in str(e.value)
    assert ws.manifest.collections() == ["c"]
    assert snapshot(ws) == before


def test_cutover_to_not_ready_and_rollback_without_previous(mem_two: vecver.Workspace) -> None:
    ws = mem_two
    before = snapshot(ws)
    hist = ws.manifest.alias_history("c")
    with pytest.raises(NotReady, match="'v3' of collection 'c' is building"):
        vecver.cutover(ws, "c", to="v3", force=True)
    with pytest.raises(NoPreviousSpace, match="no previous active space"):
        vecver.rollback(ws, "c")
    assert snapshot(ws) == before and ws.manifest.alias_history("c") == hist
    assert states(ws) == {"v1": "active", "v2": "ready", "v3": "building"}


# ------------------------------------------------------------------------ the manifest file


def test_corrupt_manifest(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    data = os.urandom(8192)
    Path(cfg.manifest_path).write_bytes(data)
    with pytest.raises(ManifestCorrupt) as e:
        vecver.open(cfg)
    assert e.value.path == cfg.manifest_path and "corrupt" in str(e.value)
    assert "backup" in str(e.value)
    assert Path(cfg.manifest_path).read_bytes() == data


def test_truncated_manifest(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with vecver.open(cfg) as ws:
        ws.collection("c").upsert(make_docs(3))
    raw = Path(cfg.manifest_path).read_bytes()
    Path(cfg.manifest_path).write_bytes(raw[:100])  # the header survives, the pages do not
    for wal in ("-wal", "-shm"):
        p = Path(cfg.manifest_path + wal)
        if p.exists():
            p.unlink()
    with pytest.raises(ManifestCorrupt):
        vecver.open(cfg)


def test_foreign_sqlite_file(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    db = sqlite3.connect(cfg.manifest_path)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO customers VALUES (1, 'ada')")
    db.commit()
    db.close()
    data = Path(cfg.manifest_path).read_bytes()
    with pytest.raises(ManifestForeign) as e:
        vecver.open(cfg)
    assert "not created by vecver" in str(e.value)
    assert Path(cfg.manifest_path).read_bytes() == data  # vecver wrote nothing into it
    db = sqlite3.connect(cfg.manifest_path)
    assert db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall() == [
        ("customers",)]
    db.close()


def test_foreign_application_id(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    db = sqlite3.connect(cfg.manifest_path)
    db.execute("PRAGMA application_id = 1234")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(ManifestForeign):
        vecver.open(cfg)


def test_manifest_from_a_newer_vecver(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    vecver.open(cfg).close()
    db = sqlite3.connect(cfg.manifest_path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(ManifestVersionError, match="upgrade vecver"):
        vecver.open(cfg)


# ------------------------------------------------------------------------ backends


def test_backend_whose_plugin_is_not_installed(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # a backend vecver knows, whose plugin module (and client) are not installed (a name
    # with no entry point: an installed entry point would be loaded first)
    monkeypatch.setitem(registry.KNOWN, "chroma",
                        registry.KnownBackend("chroma_vecver:ChromaBackend", "chromadb",
                                              "chroma"))
    monkeypatch.setitem(sys.modules, "chroma_vecver", None)
    cfg = config(tmp_path, "chroma")
    with pytest.raises(BackendNotInstalled) as e:
        vecver.open(cfg)
    assert e.value.extra == "chroma"
    assert "pip install 'vecver[chroma]'" in str(e.value)
    assert isinstance(e.value, ConfigError)


def test_planned_backend_is_unknown_in_this_release(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # every backend of the roadmap has shipped; the rule still holds for the next one
    monkeypatch.setattr(registry, "PLANNED", frozenset({"chroma"}))
    with pytest.raises(UnknownBackend, match="planned") as e:
        vecver.open(config(tmp_path, "chroma"))
    assert "memory" in str(e.value)


def test_backend_whose_client_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hnswlib", None)  # import hnswlib -> ImportError
    cfg = config(tmp_path, "local")
    with pytest.raises(BackendNotInstalled) as e:
        vecver.open(cfg)
    assert e.value.name == "local" and e.value.package == "hnswlib"
    assert "pip install 'vecver[local]'" in str(e.value)


def test_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(UnknownBackend) as e:
        vecver.open(config(tmp_path, "cassandra-vectors"))
    assert e.value.name == "cassandra-vectors"
    assert "memory" in str(e.value) and "local" in str(e.value)


def test_failed_open_leaves_the_manifest_usable(tmp_path: Path) -> None:
    with pytest.raises(UnknownBackend):
        vecver.open(config(tmp_path, "nope"))
    with vecver.open(config(tmp_path)) as ws:  # not locked, not corrupt
        ws.collection("c").upsert(make_docs(2))


# ------------------------------------------------------------------------ config


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "vecver.toml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD_TOML = """
[manifest]
path = "m.db"
[backend]
name = "memory"
[spaces.v1]
embedder = "hash"
dimension = 64
[collections.c]
space = "v1"
"""


def test_good_toml_loads(tmp_path: Path) -> None:
    cfg = vecver.Config.load(_write(tmp_path, GOOD_TOML))
    assert cfg.backend == "memory" and cfg.collections == {"c": "v1"}
    assert cfg.manifest_path == str(tmp_path / "m.db")


@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda t: t + "\n[spaces.v2\nembedder = 'hash'\n", "cannot read config"),
        (lambda t: t.replace('name = "memory"', 'name = "memory'), "cannot read config"),
        (lambda t: t.replace("dimension = 64", "dimension = 64\ndimensions = 3"),
         "unknown key"),
        (lambda t: t.replace("dimension = 64", "dimension = 64\nmetric = 'manhattan'"),
         "unknown metric 'manhattan'"),
        (lambda t: t.replace("dimension = 64", "dimension = -1"), "positive integer"),
        (lambda t: t.replace("dimension = 64", "dimension = '64'"), "positive integer"),
        (lambda t: t.replace("dimension = 64", "dimension = 64\nmax_length = 0"),
         "max_length"),
        (lambda t: t.replace('embedder = "hash"\n', ""), "needs 'embedder'"),
        (lambda t: t.replace("dimension = 64", "dimension = 64\nnormalize = 'false'"),
         "normalize must be true or false"),
        (lambda t: t.replace("dimension = 64", "dimension = 64\noptions = 'seed=1'"),
         "options must be a table"),
        (lambda t: t.replace("dimension = 64", "dimension = 64\nquery_prefix = 1"),
         "query_prefix must be a string"),
        (lambda t: t + "\n[extras]\nx = 1\n", "unknown section"),
        (lambda t: t + "\n[gate]\nmetric = 'f1'\n", "metric must be"),
        (lambda t: t + "\n[gate]\nthreshold = 1\n", "unknown key"),
        (lambda t: t + "\n[gate]\nk = 'ten'\n", "gate"),
        (lambda t: t + "\n[gate]\nk = 0\n", "gate"),
        (lambda t: t + "\n[gate]\nmin_ann_recall = 'high'\n", "gate"),
        (lambda t: t + "\n[backfill]\nbatch_size = 0\n", "batch_size"),
        (lambda t: t + "\n[backfill]\nbatch_size = 'many'\n", "batch_size"),
        (lambda t: t.replace('space = "v1"', 'spaces = "v1"'), "needs 'space'"),
        (lambda t: t.replace("[spaces.v1]", "[spaces.1v]"), "invalid space label"),
        (lambda t: t.replace("[collections.c]", "[collections.'a b']"),
         "invalid collection name"),
    ],
)
def test_malformed_config(tmp_path: Path, edit, msg) -> None:
    p = _write(tmp_path, edit(GOOD_TOML))
    with pytest.raises(ConfigError, match=msg):
        vecver.Config.load(p)


def test_config_errors_for_missing_files_and_sections(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        vecver.Config.load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="no vecver.toml"):
        vecver.Config.find(tmp_path)
    with pytest.raises(ConfigError):
        vecver.Config.from_mapping({"spaces": {"v1": "hash"}})
    with pytest.raises(ConfigError):
        vecver.Config.from_mapping({"spaces": ["v1"]})
    with pytest.raises(ConfigError):
        vecver.Config.from_mapping({"backend": "memory"})
    with pytest.raises(ConfigError):
        vecver.Config.from_mapping({"gate": "strict"})
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read config"):
        vecver.Config.load(p)


# ------------------------------------------------------------- backend instances


INSTANCES_TOML = GOOD_TOML + """
[backends.disk]
name = "local"
path = "vectors-disk"
ef_search = 64
[backends.other]
name = "local"
"""


def test_backend_instances_load(tmp_path: Path) -> None:
    cfg = vecver.Config.load(_write(tmp_path, INSTANCES_TOML))
    assert set(cfg.backends) == {"default", "disk", "other"}
    assert cfg.backend == "memory" and cfg.backend_options == {}  # the default instance
    assert cfg.backends["default"].name == "memory"
    disk = cfg.backends["disk"]
    assert (disk.instance, disk.name) == ("disk", "local")
    assert disk.options == {"path": str(tmp_path / "vectors-disk"), "ef_search": 64}
    # the local backend's default path, per instance: two instances never share one
    assert cfg.backends["other"].options == {"path": str(tmp_path / "vecver-data-other")}
    only = vecver.Config.load(_write(tmp_path, GOOD_TOML.replace("[backend]\nname = \"memory\"",
                                                                  "")))
    assert only.backend_options == {"path": str(tmp_path / "vecver-data")}


def test_backends_default_table_is_the_default_instance(tmp_path: Path) -> None:
    text = GOOD_TOML.replace("[backend]", "[backends.default]")
    cfg = vecver.Config.load(_write(tmp_path, text))
    assert cfg.backend == "memory" and list(cfg.backends) == ["default"]


@pytest.mark.parametrize(
    "extra, err, msg",
    [
        ("[backends.x]\nname = 'nosuch'\n", UnknownBackend,
         r"\[backends.x\]: unknown backend 'nosuch' \(available backends: .*local"),
        ("[backends.x]\nname = 'chroma'\n", UnknownBackend, "planned"),
        ("[backends.x]\nname = 'local'\nef_serch = 64\n", UnknownBackendOption,
         r"\[backends.x\] \(local backend\): unknown option 'ef_serch' \(valid options: "
         r"path, ef_construction, M, ef_search, snapshot_every\)"),
        ("[backends.x]\nname = 'memory'\npath = 'v'\n", UnknownBackendOption,
         "valid options: none"),
        ("[backends.x]\nname = 3\n", ConfigError, "plugin name"),
        ("[backends]\nx = 'local'\n", ConfigError, r"\[backends.x\] must be a table"),
        ("[backends.'a b']\nname = 'local'\n", ConfigError, "invalid backend instance name"),
        ("[backends.default]\nname = 'local'\n", ConfigError,
         r"both \[backend\] and \[backends.default\]"),
        ("[backfill]\nbatchsize = 3\n", ConfigError,
         r"\[backfill\]: unknown key\(s\) batchsize \(valid keys: batch_size\)"),
    ],
)
def test_bad_backend_instances(tmp_path: Path, extra: str, err: type[Exception],
                               msg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PLANNED", frozenset({"chroma"}))  # a roadmap entry
    with pytest.raises(err, match=msg):
        vecver.Config.load(_write(tmp_path, GOOD_TOML + extra))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vecver.toml"]  # nothing created


def test_unknown_option_of_the_default_backend(tmp_path: Path) -> None:
    text = GOOD_TOML.replace('name = "memory"', 'name = "local"\nef_serch = 64')
    with pytest.raises(UnknownBackendOption) as e:
        vecver.Config.load(_write(tmp_path, text))
    assert e.value.unknown == ["ef_serch"] and "ef_search" in e.value.valid
    assert str(e.value).startswith("[backend] (local backend): unknown option 'ef_serch'")


@pytest.mark.parametrize(
    "manifest, msg",
    [
        ("[manifest]\npath = 3\n", r"\[manifest\] path must be a file name, got 3"),
        ("[manifest]\npath = ['m.db']\n", r"\[manifest\] path must be a file name"),
        ("[manifest]\npath = ''\n", r"\[manifest\] path must be a file name"),
        ("[manifest]\npath = 'm.db'\npth = 'x.db'\n",
         r"\[manifest\]: unknown key\(s\) pth \(valid keys: path\)"),
    ],
)
def test_bad_manifest_table(tmp_path: Path, manifest: str, msg: str) -> None:
    text = GOOD_TOML.replace('[manifest]\npath = "m.db"\n', manifest)
    with pytest.raises(ConfigError, match=msg):
        vecver.Config.load(_write(tmp_path, text))


def test_collection_in_an_undeclared_space(tmp_path: Path) -> None:
    with pytest.raises(UnknownSpace):
        vecver.Config.load(_write(tmp_path, GOOD_TOML.replace('space = "v1"', 'space = "v9"')))


def test_unknown_embedder(make_ws) -> None:
    ws = make_ws(spaces=dict(SPACES, bad={"embedder": "word2vec", "dimension": 8}))
    ws.collection("c")
    with pytest.raises(ConfigError, match="unknown embedder 'word2vec'"):
        vecver.migrate(ws, "c", "bad", progress=False)
    assert states(ws) == {"v1": "active"}


# ------------------------------------------------------------------------ sources


def _jsonl(tmp_path: Path, lines: list[str], name: str = "src.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p


def _line(i: int) -> str:
    return json.dumps({"id": f"d{i:04d}", "text": f"d{i:04d} alpha{i} beta{i}"})


@pytest.mark.parametrize(
    "bad, msg",
    [
        ("{not json", "not valid JSON"),
        ('["a", "b"]', "expected an object"),
        ('{"text": "no id"}', "missing 'id'"),
        ('{"id": "x"}', "has no 'text'"),
        ('{"id": "x", "text": ""}', "empty text"),
        ('{"id": "", "text": "t"}', "invalid id"),
        ('{"id": "x", "text": "t", "metadata": {"a": NaN}}', "not JSON-serializable"),
        (_line(1), "duplicate id 'd0001'"),
    ],
)
def test_malformed_jsonl_names_the_line(mem_two: vecver.Workspace, tmp_path: Path, bad: str,
                                        msg: str) -> None:
    ws = mem_two
    lines = [_line(i) for i in range(5)]
    lines.insert(3, bad)  # line 4
    path = _jsonl(tmp_path, lines)
    with pytest.raises(SourceError, match=msg) as e:
        vecver.JsonlSource(path).validate()
    assert e.value.where.endswith(":4"), e.value.where
    assert str(path) in str(e.value)
    # a backfill from it writes nothing either
    before = snapshot(ws)
    ck = ws.manifest.checkpoint(ns_of(ws, "c", "v3"))
    with pytest.raises(SourceError, match=msg):
        vecver.backfill(ws, "c", space="v3", source=vecver.JsonlSource(path), batch_size=2,
                        progress=False)
    assert snapshot(ws) == before
    assert ws.manifest.checkpoint(ns_of(ws, "c", "v3")) == ck


def test_jsonl_source_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        vecver.JsonlSource(tmp_path / "nope.jsonl")


def test_bad_iterable_source(mem_two: vecver.Workspace) -> None:
    ws = mem_two
    before = snapshot(ws)
    rows: list[Any] = [{"id": "a", "text": "alpha"}, {"id": "b"}]
    with pytest.raises(SourceError, match="item 2"):
        vecver.backfill(ws, "c", space="v3", source=vecver.IterableSource(rows),
                        progress=False)
    assert snapshot(ws) == before


def test_bad_judgments(mem_two: vecver.Workspace, tmp_path: Path) -> None:
    path = _jsonl(tmp_path, ['{"query": "a", "relevant": ["d0001"]}', '{"query": "b"}'],
                  "judged.jsonl")
    with pytest.raises(SourceError, match="relevant") as e:
        vecver.evaluate(mem_two, "c", queries=str(path))
    assert e.value.where.endswith(":2")
    assert mem_two.manifest.evaluations("c") == []
