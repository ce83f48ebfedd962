"""Derived spaces (vecver.embedders.derived): a space declared as a transformation of a
stored one — Matryoshka truncation, or an adapter — migrated by the normal backfill
from stored vectors with no model call; its fingerprint covers the derivation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecver
from vecver.adapters import adapter_class
from vecver.embedders.derived import DerivedEmbedder
from vecver.errors import ConfigError
from vecver.types import Document

#: a dense source space (the hash embedder's vectors are sparse: a truncation of them
#: can be all zeros, which a cosine space refuses)
SOURCE = {"embedder": "python:adapter_models:rotated", "dimension": 64}


def config(root: Path, spaces: dict[str, Any], start: str = "v1") -> vecver.Config:
    return vecver.Config.from_mapping({
        "manifest": {"path": "m.db"}, "backend": {"name": "local", "path": "vectors"},
        "spaces": spaces, "collections": {"c": {"space": start}},
        "backfill": {"batch_size": 40},
    }, base=root)


def docs(n: int = 150) -> list[Document]:
    return [Document(f"d{i:03d}", f"item {i} word{i % 17} tag{i % 5}", {"n": i})
            for i in range(n)]


class CountingSource:
    """Counts the texts the source model of a derived space embeds."""

    def __init__(self, ws: vecver.Workspace, label: str) -> None:
        der = ws.embedder(label).embedder
        assert isinstance(der, DerivedEmbedder)
        self.model = der.source().embedder
        self.calls = 0
        inner = self.model.embed

        def counting(texts: Any) -> Any:
            self.calls += len(texts)
            return inner(texts)

        self.model.embed = counting  # type: ignore[method-assign]


def stored(ws: vecver.Workspace, label: str, ids: list[str]) -> dict[str, Any]:
    row = ws.manifest.namespace_for("c", label)
    assert row is not None
    return ws.backend_for(row).fetch(row.name, ids, with_vectors=True)


def unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.linalg.norm(v)
    return out


# -- configuration and fingerprints --------------------------------------------------


def test_a_derived_space_is_completed_from_its_source(tmp_path: Path) -> None:
    cfg = config(tmp_path, {
        "v1": {**SOURCE, "query_prefix": "q: ", "document_prefix": "d: "},
        "t32": {"derive": {"from": "v1", "truncate": 32}},
    })
    spec = cfg.spaces["t32"]
    assert (spec.embedder, spec.dimension, spec.metric) == ("derived", 32, "cosine")
    assert (spec.query_prefix, spec.document_prefix) == ("q: ", "d: ")
    assert spec.derive is not None and spec.derive["source"]["label"] == "v1"


def test_the_fingerprint_covers_the_derivation_not_the_label(tmp_path: Path) -> None:
    cfg = config(tmp_path, {
        "v1": SOURCE, "v1b": {**SOURCE, "options": {"unused": 1}},
        "t32": {"derive": {"from": "v1", "truncate": 32}},
        "same": {"derive": {"from": "v1", "truncate": 32}},
        "t16": {"derive": {"from": "v1", "truncate": 16}},
    })
    with vecver.Workspace(cfg, progress=False) as ws:
        fp = {k: ws.space(k).fingerprint for k in ("v1", "t32", "same", "t16")}
    assert fp["t32"] == fp["same"]  # a label is cosmetic
    assert len({fp["v1"], fp["t32"], fp["t16"]}) == 3


@pytest.mark.parametrize("derive,match", [
    ({"from": "nope", "truncate": 8}, "'from' must name"),
    ({"from": "v1"}, "exactly one of"),
    ({"from": "v1", "truncate": 8, "adapter": "x.npz"}, "exactly one of"),
    ({"from": "v1", "truncate": 65}, "truncate must be an integer in 1..64"),
    ({"from": "v1", "truncate": True}, "truncate must be"),
    ({"from": "v1", "truncate": 8, "shift": 1}, "unknown key"),
    ({"from": "v1", "adapter": "missing.npz"}, "cannot read adapter file"),
])
def test_bad_derivations_are_config_errors(tmp_path: Path, derive: dict[str, Any],
                                           match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config(tmp_path, {"v1": SOURCE, "t": {"derive": derive}})


def test_cycles_embedders_and_dimensions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cycle"):
        config(tmp_path, {"v1": SOURCE, "a": {"derive": {"from": "b", "truncate": 8}},
                          "b": {"derive": {"from": "a", "truncate": 8}}})
    with pytest.raises(ConfigError, match="no embedder of its own"):
        config(tmp_path, {"v1": SOURCE, "t": {"embedder": "hash", "derive": {
            "from": "v1", "truncate": 8}}})
    with pytest.raises(ConfigError, match="disagrees"):
        config(tmp_path, {"v1": SOURCE, "t": {"dimension": 9, "derive": {
            "from": "v1", "truncate": 8}}})
    with pytest.raises(ConfigError, match="must be a table"):
        config(tmp_path, {"v1": SOURCE, "t": {"derive": "v1"}})


# -- migration -----------------------------------------------------------------------


def test_truncation_migrates_from_stored_vectors_without_a_model_call(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"v1": SOURCE, "t32": {"derive": {"from": "v1", "truncate": 32}}})
    with vecver.Workspace(cfg, progress=False) as ws:
        ws.collection("c").upsert(docs())
        counter = CountingSource(ws, "t32")
        rep = vecver.migrate(ws, "c", "t32")
        assert rep.state == "ready" and rep.written == 150
        assert counter.calls == 0  # every vector came from the stored v1 copy
        ids = [d.id for d in docs()]
        src, got = stored(ws, "v1", ids), stored(ws, "t32", ids)
        for i in ids:
            np.testing.assert_allclose(got[i].vector, unit(src[i].vector[:32]), atol=1e-6)
            assert got[i].stamp.fingerprint == ws.space("t32").fingerprint
        # the model is only needed for queries (and new writes): same vector as the copy
        q = ws.embedder("t32").embed_documents([docs()[7].text])[0]
        np.testing.assert_allclose(q, got["d007"].vector, atol=1e-5)
        assert counter.calls == 1
        vecver.cutover(ws, "c", force=True)
        hits = ws.collection("c").search_many([docs()[7].text], k=1)
        assert hits[0][0].id == "d007" and hits[0][0].space == "t32"


def test_documents_without_a_current_source_copy_are_embedded(tmp_path: Path) -> None:
    """The source space holds no copy (it is not a space of the collection): the
    backfill falls back to the source model, with the same vectors."""
    cfg = config(tmp_path, {"v0": {"embedder": "hash", "dimension": 16}, "v1": SOURCE,
                            "t32": {"derive": {"from": "v1", "truncate": 32}}}, start="v0")
    with vecver.Workspace(cfg, progress=False) as ws:
        ws.collection("c").upsert(docs(60))
        counter = CountingSource(ws, "t32")
        rep = vecver.migrate(ws, "c", "t32")
        assert rep.state == "ready" and counter.calls == 60
        got = stored(ws, "t32", ["d003"])["d003"]
        direct = ws.embedder("t32").embed_documents([docs(60)[3].text])[0]
        np.testing.assert_allclose(got.vector, direct, atol=1e-6)


def test_writes_during_a_derived_migration_stay_consistent(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"v1": SOURCE, "t32": {"derive": {"from": "v1", "truncate": 32}}})
    with vecver.Workspace(cfg, progress=False) as ws:
        coll = ws.collection("c")
        coll.upsert(docs())
        vecver.start_migration(ws, "c", "t32")
        coll.upsert([Document("d005", "a changed text entirely", {"n": 5})])
        coll.delete(["d006"])
        rep = vecver.backfill(ws, "c")
        assert rep.state == "ready"
        got = stored(ws, "t32", ["d005", "d006"])
        assert "d006" not in got and got["d005"].text == "a changed text entirely"
        src = stored(ws, "v1", ["d005"])["d005"]
        np.testing.assert_allclose(got["d005"].vector, unit(src.vector[:32]), atol=1e-5)
        assert all(r.clean for r in vecver.verify(ws, "c"))


def test_an_adapter_derived_space(tmp_path: Path) -> None:
    """Documents of v1 mapped through an adapter file: the stored vectors are the
    adapter's map of the stored v1 vectors, and the file's content is in the
    fingerprint."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 64))
    y = x @ np.linalg.qr(rng.standard_normal((64, 64)))[0][:, :48]
    ad = adapter_class("procrustes").fit(x, y)
    path = tmp_path / "v1-to-w.npz"
    path.write_bytes(ad.to_bytes())
    spaces = {"v1": SOURCE, "m": {"derive": {"from": "v1", "adapter": "v1-to-w.npz"}}}
    cfg = config(tmp_path, spaces)
    assert cfg.spaces["m"].dimension == 48
    with vecver.Workspace(cfg, progress=False) as ws:
        ws.collection("c").upsert(docs(80))
        counter = CountingSource(ws, "m")
        assert vecver.migrate(ws, "c", "m").state == "ready" and counter.calls == 0
        src, got = stored(ws, "v1", ["d010"])["d010"], stored(ws, "m", ["d010"])["d010"]
        np.testing.assert_allclose(got.vector, unit(ad.transform(src.vector)), atol=1e-5)
        fp = ws.space("m").fingerprint
    other = adapter_class("procrustes").fit(x, y * 2 + 1)
    path.write_bytes(other.to_bytes())
    with vecver.Workspace(config(tmp_path / "b", {**spaces, "m": {"derive": {
            "from": "v1", "adapter": str(path)}}}), progress=False) as ws2:
        assert ws2.space("m").fingerprint != fp


def test_an_adapter_file_of_another_width_is_refused(tmp_path: Path) -> None:
    x = np.random.default_rng(1).standard_normal((50, 10))
    (tmp_path / "a.npz").write_bytes(adapter_class("procrustes").fit(x, x).to_bytes())
    with pytest.raises(ConfigError, match="maps 10-dimensional vectors"):
        config(tmp_path, {"v1": SOURCE, "m": {"derive": {"from": "v1", "adapter": "a.npz"}}})
    (tmp_path / "b.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not an adapter file"):
        config(tmp_path, {"v1": SOURCE, "m": {"derive": {"from": "v1", "adapter": "b.npz"}}})
