"""Adopting a Weaviate collection with several named vectors (say ``body`` from the text
model and ``image`` from another), on the emulator through the official client: adopt
refuses to guess, adopts the vector named, its writes set only that vector (the others
kept exactly), a new document gets only the adopted vector, and the collection migrates,
verifies, cuts over and rolls back with the other vectors untouched."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "weaviate", reason="weaviate-client is not installed (pip install 'vecver[weaviate]')"
)

from test_adopt import SPACES, embed_v1, text_for  # noqa: E402

import vecver  # noqa: E402
from vecver.errors import AdoptedDimensionMismatch, AdoptError  # noqa: E402
from vecver.ops import backfill as ops_backfill  # noqa: E402
from vecver.ops import cutover as ops_cutover  # noqa: E402
from vecver.ops import verify as ops_verify  # noqa: E402
from vecver.ops.adopt import adopt  # noqa: E402
from vecver.testing.emulators.weaviate import WeaviateEmulator  # noqa: E402
from vecver.types import Document  # noqa: E402

N = 20
IMAGE_DIM = 6


@pytest.fixture(scope="module")
def emu() -> Iterator[WeaviateEmulator]:
    e = WeaviateEmulator().start()
    yield e
    e.stop()


def _raw_client(emu: WeaviateEmulator) -> Any:
    import weaviate

    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=emu.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=emu.grpc_port, grpc_secure=False,
        skip_init_checks=True,
    )  # fmt: skip


def _fill(emu: WeaviateEmulator, name: str) -> dict[str, np.ndarray]:
    """``name`` as other code makes it: text and doc_key properties, named vectors
    ``body`` (space v1's model, cosine) and ``image`` (6-d, l2-squared); returns each
    doc_key's image vector."""
    from weaviate.classes.config import (
        Configure,
        DataType,
        Property,
        Tokenization,
        VectorDistances,
    )
    from weaviate.classes.data import DataObject

    rng = np.random.default_rng(3)
    images = {f"key-{i}": rng.standard_normal(IMAGE_DIM).astype(np.float32)
              for i in range(1, N + 1)}  # fmt: skip
    c = _raw_client(emu)
    try:
        col = c.collections.create(
            name,
            properties=[
                Property(name="text", data_type=DataType.TEXT),
                Property(name="doc_key", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
            ],
            vector_config=[
                Configure.Vectors.self_provided(name="body"),
                Configure.Vectors.self_provided(
                    name="image", vector_index_config=Configure.VectorIndex.hnsw(
                        distance_metric=VectorDistances.L2_SQUARED)),
            ],
        )  # fmt: skip
        texts = [text_for(i) for i in range(1, N + 1)]
        res = col.data.insert_many([
            DataObject(properties={"text": t, "doc_key": f"key-{i}"}, uuid=str(uuidlib.uuid4()),
                       vector={"body": v.tolist(), "image": images[f"key-{i}"].tolist()})
            for i, (t, v) in enumerate(zip(texts, embed_v1(texts), strict=True), start=1)
        ])  # fmt: skip
        assert not res.errors
    finally:
        c.close()
    return images


def _stored(emu: WeaviateEmulator, name: str) -> dict[str, Any]:
    """doc_key -> the object, with every vector, read with the raw client."""
    c = _raw_client(emu)
    try:
        col = c.collections.get(name)
        return {o.properties["doc_key"]: o for o in col.iterator(include_vector=True)}
    finally:
        c.close()


def _workspace(emu: WeaviateEmulator, tmp_path: Path) -> vecver.Workspace:
    cfg = vecver.Config.from_mapping(
        {"manifest": {"path": "m.db"},
         "backend": {"name": "weaviate", "url": emu.url, "grpc_port": emu.grpc_port},
         "spaces": {k: dict(v) for k, v in SPACES.items()}},
        base=tmp_path,
    )  # fmt: skip
    return vecver.Workspace(cfg, progress=False)


def test_adopt_refuses_to_guess_and_checks_the_vector_named(
    emu: WeaviateEmulator, tmp_path: Path
) -> None:
    """Without ``vector_field`` adopt lists the vectors; a name the collection lacks is
    refused; the dimension check applies to the vector named; nothing is recorded."""
    _fill(emu, "Pictures")
    with _workspace(emu, tmp_path) as ws:
        kw: dict[str, Any] = {"namespace": "Pictures", "space": "v1", "text_field": "text",
                              "id_field": "doc_key"}  # fmt: skip
        with pytest.raises(AdoptError, match="body, image") as e:
            adopt(ws, "docs", **kw)
        assert "--vector-field" in (e.value.hint or "")
        with pytest.raises(AdoptError, match="no vector 'nope'"):
            adopt(ws, "docs", vector_field="nope", **kw)
        with pytest.raises(AdoptedDimensionMismatch):
            adopt(ws, "docs", vector_field="image", **kw)
        assert not ws.manifest.has_collection("docs")
        assert ws.backend.get_alias("docs") is None


def test_writes_set_the_adopted_vector_and_keep_the_others(
    emu: WeaviateEmulator, tmp_path: Path
) -> None:
    images = _fill(emu, "Gallery")
    with _workspace(emu, tmp_path) as ws:
        rep = adopt(ws, "docs", namespace="Gallery", space="v1", text_field="text",
                    id_field="doc_key", vector_field="body")  # fmt: skip
        assert (rep.documents, rep.vector_field) == (N, "body")
        docs = ws.collection("docs")
        assert docs.search(text_for(5), k=1)[0].id == "key-5"

        docs.upsert([Document("key-3", text_for(3, version=1)),
                     Document("key-101", text_for(101))])  # fmt: skip
        got = _stored(emu, "Gallery")
        assert got["key-3"].properties["text"] == text_for(3, version=1)
        assert np.array_equal(np.asarray(got["key-3"].vector["image"], dtype=np.float32),
                              images["key-3"]), "the write changed the other vector"
        assert np.allclose(got["key-3"].vector["body"], embed_v1([text_for(3, version=1)])[0],
                           atol=1e-5)  # fmt: skip
        assert set(got["key-101"].vector) == {"body"}
        assert docs.search(text_for(3, version=1), k=1)[0].id == "key-3"

        ops_backfill.migrate(ws, "docs", "v2", progress=False)
        for r in ops_verify.verify(ws, "docs"):
            assert r.clean, r.to_dict()
        ops_cutover.cutover(ws, "docs", to="v2", force=True)
        assert docs.search(text_for(101), k=1)[0].space == "v2"
        docs.upsert([Document("key-4", text_for(4, version=2))])  # dual-write, retired v1
        ops_cutover.rollback(ws, "docs")
        assert docs.search(text_for(4, version=2), k=1)[0].id == "key-4"
        after = _stored(emu, "Gallery")
        assert len(after) == N + 1
        for key, img in images.items():
            assert np.array_equal(np.asarray(after[key].vector["image"], dtype=np.float32),
                                  img), key  # fmt: skip
        assert after["key-4"].properties["text"] == text_for(4, version=2)
