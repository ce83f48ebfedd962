"""Deterministic "new models" for the adapter tests (``python:adapter_models:...``).

Each is the ``hash`` embedder of the tests' space ``v1`` (64 dimensions) seen through a
fixed linear map plus a little per-text noise, so an adapter back into ``v1`` exists and
is known: ``rotated`` (64 -> 64, an orthogonal rotation), ``wide`` (64 -> 96, a
semi-orthogonal embedding plus an offset: cross-dimension), ``scrambled`` (unrelated:
no adapter can map it back, for the gate)."""

from __future__ import annotations

import zlib

import numpy as np

from vecver.embedders.hashing import HashEmbedder
from vecver.space import SpaceSpec

BASE_DIM = 64
_BASE = HashEmbedder(SpaceSpec("base", "hash", BASE_DIM))


def _map(dim: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((max(dim, BASE_DIM),) * 2))
    out: np.ndarray = q[:BASE_DIM, :dim]
    return out


_ROT = _map(BASE_DIM, 7)
_WIDE = _map(96, 8)
_OFFSET = np.random.default_rng(9).standard_normal(96) * 0.05


def _base(texts: list[str]) -> np.ndarray:
    v = np.asarray(_BASE.embed(texts), dtype=np.float64)
    out: np.ndarray = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return out


def _noise(texts: list[str], dim: int, scale: float) -> np.ndarray:
    out = np.zeros((len(texts), dim))
    for i, t in enumerate(texts):
        out[i] = np.random.default_rng(zlib.crc32(t.encode("utf-8"))).standard_normal(dim)
    return out * scale


def rotated(texts: list[str]) -> np.ndarray:
    return _base(texts) @ _ROT + _noise(texts, BASE_DIM, 0.01)


def wide(texts: list[str]) -> np.ndarray:
    return _base(texts) @ _WIDE + _OFFSET + _noise(texts, 96, 0.01)


def scrambled(texts: list[str]) -> np.ndarray:
    return _noise(texts, BASE_DIM, 1.0)


def folded(texts: list[str]) -> np.ndarray:
    """A nonlinear view of ``v1`` (absolute values after a rotation): it retrieves well
    on its own, but no linear adapter maps it back into ``v1``."""
    return np.abs(_base(texts) @ _ROT) + _noise(texts, BASE_DIM, 0.01)
