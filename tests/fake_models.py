"""Tiny deterministic "models" for the callable embedder tests (``python:fake_models:...``)."""

from __future__ import annotations

import zlib

import numpy as np

DIM = 8


def embed_fn(texts: list[str]) -> np.ndarray:
    """A function model: a deterministic float64 vector per text (the embedder casts)."""
    out = np.zeros((len(texts), DIM), dtype=np.float64)
    for i, t in enumerate(texts):
        rng = np.random.default_rng(zlib.crc32(t.encode("utf-8")))
        out[i] = rng.standard_normal(DIM)
    return out


def embed_list(texts: list[str]) -> list[list[float]]:
    """Returns plain lists: array-like is enough."""
    return [[float(len(t)), 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0] for t in texts]


def wrong_width(texts: list[str]) -> np.ndarray:
    return np.ones((len(texts), DIM + 1), dtype=np.float32)


def with_nan(texts: list[str]) -> np.ndarray:
    out = np.ones((len(texts), DIM), dtype=np.float32)
    out[-1, 0] = np.nan
    return out


def broken(texts: list[str]) -> np.ndarray:
    raise RuntimeError("model exploded")


def _versioned(texts: list[str]) -> np.ndarray:
    return embed_fn(texts)


_versioned.revision = "fake-fn-v7"  # type: ignore[attr-defined]
versioned = _versioned


class FakeModel:
    """A class model: options are constructor arguments; ``embed`` is the entry point."""

    revision = "fake-class-v1"
    instances = 0

    def __init__(self, dim: int = DIM, seed: int = 0) -> None:
        FakeModel.instances += 1
        self.dim = dim
        self.seed = seed
        self.closed = False

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for i, t in enumerate(texts):
            rng = np.random.default_rng([self.seed, zlib.crc32(t.encode("utf-8"))])
            out[i] = rng.standard_normal(self.dim)
        return out

    def close(self) -> None:
        self.closed = True


class CallModel:
    """A class model with ``__call__`` only and no revision."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def __call__(self, texts: list[str]) -> np.ndarray:
        return embed_fn(texts) * self.scale


class PropertyRevision:
    """The revision is an instance property (computed from the constructor arguments)."""

    def __init__(self, version: int = 3) -> None:
        self.version = version

    @property
    def revision(self) -> str:
        return f"prop-v{self.version}"

    def embed(self, texts: list[str]) -> np.ndarray:
        return embed_fn(texts)


NOT_CALLABLE = 42


def zeros(texts: list[str]) -> np.ndarray:
    """A broken model: every vector is all zeros (no direction under cosine)."""
    return np.zeros((len(texts), DIM), dtype=np.float32)


def zero_when_marked(texts: list[str]) -> np.ndarray:
    """Like :func:`embed_fn`, but all zeros for a text containing ``ZERO``."""
    out = embed_fn(texts)
    for i, t in enumerate(texts):
        if "ZERO" in t:
            out[i] = 0.0
    return out
