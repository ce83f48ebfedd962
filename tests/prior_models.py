"""Deterministic models with hubs for the hubness-prior tests (``python:prior_models:...``).

``old`` (32-d): document ``doc N`` sits in one of 12 topics (topic direction plus its own
direction, plus a little of a shared direction ``m``); ``hub N`` sits near ``m``. ``new``:
the old vector of the document a text names, seen through a fixed rotation after a
nonlinear squash that leans every vector toward ``m`` (no linear adapter undoes it):
mapped back into ``old``, vectors lean toward the hubs. A full document text (it
contains ``filler``) is embedded with little noise; a short text (a query ``query N`` or
a document's lead) with much more, as a short query is a noisier view of its document.
So an adapter's mapped queries land near the hubs, which crowd their top-k."""

from __future__ import annotations

import re
import zlib

import numpy as np

DIM = 32
TOPICS = 12
_RNG = np.random.default_rng(0)


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return out


M = _unit(_RNG.standard_normal(DIM))
_C = _RNG.standard_normal((TOPICS, DIM))
_C -= (_C @ M)[:, None] * M
CENTERS = _unit(_C)
_R, _ = np.linalg.qr(_RNG.standard_normal((DIM, DIM)))
_PAT = re.compile(r"\b(doc|query|hub) (\d+)")


def _old_of(kind: str, n: int) -> np.ndarray:
    r = np.random.default_rng((5000 if kind == "hub" else 1000) + n)
    if kind == "hub":
        return _unit(M + 0.15 * _unit(r.standard_normal(DIM)))
    return _unit(0.3 * M + CENTERS[n % TOPICS] + 0.8 * _unit(r.standard_normal(DIM)))


def _parse(text: str) -> tuple[str, int]:
    m = _PAT.search(text)
    if m is None:
        return "hub", zlib.crc32(text.encode()) % 1000 + 10_000
    return ("hub" if m.group(1) == "hub" else "doc"), int(m.group(2))


def _squash(v: np.ndarray) -> np.ndarray:
    a = float(v @ M)
    w = v - a * M
    return _unit((a + 3.0 * a * a) * M + np.sign(w) * np.abs(w) ** 1.5)


def old(texts: list[str]) -> np.ndarray:
    return np.stack([_old_of(*_parse(t)) for t in texts])


def new(texts: list[str]) -> np.ndarray:
    out = []
    for t in texts:
        v = _old_of(*_parse(t))
        noise = 0.05 if "filler" in t else 1.0
        r = np.random.default_rng(zlib.crc32(t.encode()))
        out.append(_squash(_unit(v + noise * r.standard_normal(DIM) / np.sqrt(DIM))) @ _R)
    return np.stack(out)


def text_of(kind: str, n: int) -> str:
    """The stored text of ``doc N`` / ``hub N``."""
    return f"{kind} {n} in topic {n % TOPICS}. filler words follow here"
