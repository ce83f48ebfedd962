"""Embedding "models" that break on purpose, for the broken-candidate tests
(``embedder = "python:broken_models:NAME"``, ``dimension = 64``).

Each behaves like a small deterministic model (64-d) until one of the texts it is given
holds the word ``POISON``; then it breaks in its own way: another dimension, NaN or inf
values, an exception, one row too few, a 1-D array. A test makes a space break by
writing (or backfilling) a document whose text holds the word.
"""

from __future__ import annotations

import zlib

import numpy as np

DIM = 64
TRIGGER = "POISON"


def _good(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, t in enumerate(texts):
        out[i] = np.random.default_rng(zlib.crc32(t.encode("utf-8"))).standard_normal(DIM)
    return out


def _poisoned(texts: list[str]) -> bool:
    return any(TRIGGER in t for t in texts)


def wrong_dimension(texts: list[str]) -> np.ndarray:
    return np.ones((len(texts), DIM + 3), dtype=np.float32) if _poisoned(texts) else _good(texts)


def nan_values(texts: list[str]) -> np.ndarray:
    out = _good(texts)
    if _poisoned(texts):
        out[-1, 0] = np.nan
    return out


def inf_values(texts: list[str]) -> np.ndarray:
    out = _good(texts)
    if _poisoned(texts):
        out[0, 1] = np.inf
    return out


def raises(texts: list[str]) -> np.ndarray:
    if _poisoned(texts):
        raise RuntimeError("the model server answered 500")
    return _good(texts)


def one_row_short(texts: list[str]) -> np.ndarray:
    out = _good(texts)
    return out[:-1] if _poisoned(texts) else out


def flat(texts: list[str]) -> np.ndarray:
    out = _good(texts)
    return out.reshape(-1) if _poisoned(texts) else out


#: every way to break, by name (the attribute of this module)
BREAKAGES = ("wrong_dimension", "nan_values", "inf_values", "raises", "one_row_short", "flat")


def space(name: str) -> dict[str, object]:
    """The space declaration (for ``vvcore.config(spaces=...)``) of the model ``name``."""
    return {"embedder": f"python:broken_models:{name}", "dimension": DIM}
