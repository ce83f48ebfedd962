"""Training pairs from a collection: the NEW model's vector of a document next to the OLD
vector the old space already stores for it.

No document is re-embedded with the old model (it may be gone): the old side is what the
old namespace holds (``Backend.scan`` / ``fetch(with_vectors=True)``), the new side is the
new space's embedding of the stored text.

Selection is reproducible and stratified:

- every document has a salted hash (:func:`doc_hash`); one document in
  :data:`HELD_OUT_BUCKETS` (hash bucket 0 of a fixed salt) is *held out*: never used for
  fitting, so evaluation always has documents no adapter was fitted on, whatever the seed;
- the remaining documents are grouped into strata — by the value of a metadata key when
  one is given, else by hash bucket — and each stratum contributes in proportion to its
  size (largest remainder), taking its documents of smallest seeded hash.

The scan keeps at most ``n`` (id, text) candidates per stratum in memory, never vectors
of the whole namespace.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgument
from ..types import Matrix

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..embedders import SpaceEmbedder

#: one document in this many is held out for evaluation (never a training pair)
HELD_OUT_BUCKETS = 10
_HOLDOUT_SALT = b"vecver-adapter-holdout\x00"
#: strata when no metadata key is given
HASH_STRATA = 8
_NONE = "(none)"


def doc_hash(doc_id: str, salt: bytes) -> int:
    """A stable 64-bit hash of a document id under ``salt``."""
    return int.from_bytes(hashlib.blake2b(salt + doc_id.encode("utf-8"), digest_size=8)
                          .digest(), "big")


def is_held_out(doc_id: str) -> bool:
    """Whether the document is reserved for evaluation (the same for every seed)."""
    return doc_hash(doc_id, _HOLDOUT_SALT) % HELD_OUT_BUCKETS == 0


@dataclass
class PairSample:
    """Paired rows of the same documents: ``source`` (new space) and ``target`` (old,
    as stored). ``strata`` counts the documents taken per stratum; ``scanned`` the
    documents read; ``skipped`` the selected documents left out (no vector, a stamp of
    another space, or a text changed meanwhile)."""

    ids: list[str]
    texts: list[str]
    source: Matrix
    target: Matrix
    strata: dict[str, int] = field(default_factory=dict)
    scanned: int = 0
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def describe(self) -> dict[str, Any]:
        return {"documents": len(self.ids), "strata": dict(self.strata),
                "scanned": self.scanned, "skipped": self.skipped}


def _quotas(counts: dict[str, int], n: int) -> dict[str, int]:
    """``n`` split over strata in proportion to ``counts`` (largest remainder)."""
    total = sum(counts.values())
    if total <= n:
        return dict(counts)
    raw = {s: n * c / total for s, c in counts.items()}
    out = {s: int(v) for s, v in raw.items()}
    left = n - sum(out.values())
    for s in sorted(raw, key=lambda s: (-(raw[s] - out[s]), s))[:left]:
        out[s] += 1
    return out


def select_documents(
    backend: Backend, namespace: str, n: int, *, held_out: bool = False,
    stratify: str | None = None, seed: int = 0,
) -> tuple[list[tuple[str, str]], dict[str, int], int]:
    """Up to ``n`` (id, text) documents of ``namespace``, stratified (see the module
    docstring): from the held-out part when ``held_out``, else from the rest. Returns the
    documents (sorted by id), the count taken per stratum and how many were scanned."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgument("pairs", n, "a positive integer")
    salt = f"vecver-adapter-sample:{seed}\x00".encode()
    heaps: dict[str, list[tuple[int, str, str]]] = {}
    counts: dict[str, int] = {}
    scanned = 0
    cursor: str | None = None
    while True:
        page = backend.scan(namespace, cursor=cursor, limit=1024)
        for r in page.records:
            scanned += 1
            if not r.text or not r.text.strip() or is_held_out(r.id) != held_out:
                continue
            h = doc_hash(r.id, salt)
            if stratify is not None:
                v = r.metadata.get(stratify)
                stratum = _NONE if v is None else str(v)
            else:
                stratum = str(doc_hash(r.id, salt + b"s") % HASH_STRATA)
            counts[stratum] = counts.get(stratum, 0) + 1
            heap = heaps.setdefault(stratum, [])
            item = (-h, r.id, r.text)  # a max-heap of the n smallest hashes
            if len(heap) < n:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    quotas = _quotas(counts, n)
    chosen: list[tuple[str, str]] = []
    for stratum, heap in heaps.items():
        best = sorted(heap, reverse=True)[: quotas.get(stratum, 0)]  # smallest hashes
        chosen.extend((i, t) for _, i, t in best)
    chosen.sort()
    return chosen, {s: q for s, q in sorted(quotas.items()) if q}, scanned


def stored_vectors(
    backend: Backend, namespace: str, fingerprint: str, docs: Sequence[tuple[str, str]],
    chunk: int = 512,
) -> tuple[list[tuple[str, str]], list[Any]]:
    """The stored vectors of ``docs`` in ``namespace``, for those present with a vector
    stamped ``fingerprint`` and the same text (others are left out)."""
    kept: list[tuple[str, str]] = []
    vecs: list[Any] = []
    for i in range(0, len(docs), chunk):
        part = docs[i:i + chunk]
        got = backend.fetch(namespace, [d for d, _ in part], with_vectors=True)
        for doc_id, text in part:
            r = got.get(doc_id)
            if (r is None or r.vector is None or r.stamp.fingerprint != fingerprint
                    or r.text != text):
                continue
            kept.append((doc_id, text))
            vecs.append(r.vector)
    return kept, vecs


def embed_in_batches(emb: SpaceEmbedder, texts: Sequence[str], batch: int,
                     on_batch: Callable[[int], None] | None = None, *,
                     query: bool = False) -> Matrix:
    """``texts`` embedded by ``emb`` (as documents, or as queries), ``batch`` at a time."""
    dim = emb.space.spec.dimension
    parts: list[Matrix] = []
    for i in range(0, len(texts), batch):
        chunk = list(texts[i:i + batch])
        parts.append(emb.embed_queries(chunk) if query else
                     emb.embed_documents(chunk))
        if on_batch is not None:
            on_batch(len(chunk))
    if not parts:
        return np.zeros((0, dim), dtype=np.float32)
    out: Matrix = np.concatenate(parts).astype(np.float32, copy=False)
    return out


def training_pairs(
    backend: Backend, namespace: str, fingerprint: str, new: SpaceEmbedder, n: int, *,
    held_out: bool = False, stratify: str | None = None, seed: int = 0, batch: int = 256,
    on_batch: Callable[[int], None] | None = None,
) -> PairSample:
    """Pairs for ``n`` stratified documents of the old ``namespace`` (see
    :func:`select_documents`): their stored vectors (stamped ``fingerprint``) and their
    stored texts embedded by ``new``. ``on_batch(k)`` is called after each embedded
    batch (progress). Raises what the embedder and the backend raise."""
    docs, strata, scanned = select_documents(backend, namespace, n, held_out=held_out,
                                             stratify=stratify, seed=seed)
    kept, old = stored_vectors(backend, namespace, fingerprint, docs)
    texts = [t for _, t in kept]
    src = embed_in_batches(new, texts, batch, on_batch)
    dim_old = backend.describe_namespace(namespace).dimension
    tgt = (np.stack([np.asarray(v, dtype=np.float32) for v in old]) if old
           else np.zeros((0, dim_old), dtype=np.float32))
    return PairSample([i for i, _ in kept], texts, src, tgt, strata, scanned,
                      len(docs) - len(kept))
