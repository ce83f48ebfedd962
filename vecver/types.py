"""Plain data types shared by the core and every backend."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Metric = Literal["cosine", "dot", "l2"]
METRICS: tuple[Metric, ...] = ("cosine", "dot", "l2")

Vector = npt.NDArray[np.float32]
Matrix = npt.NDArray[np.float32]


def source_hash(text: str) -> str:
    """Hash of the source text a vector was embedded from (hex, 32 chars)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Document:
    """A document as the user gives it: an id, its text, optional metadata."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source_hash(self) -> str:
        return source_hash(self.text)


@dataclass(frozen=True, slots=True)
class Stamp:
    """Provenance carried by every stored vector.

    ``fingerprint`` is the space the vector was embedded in, ``source_hash`` the hash of the
    text it was embedded from, ``written_at`` the wall-clock time of the write (seconds).
    """

    fingerprint: str
    doc_id: str
    source_hash: str
    written_at: float

    @staticmethod
    def now(fingerprint: str, doc_id: str, text: str) -> Stamp:
        return Stamp(fingerprint, doc_id, source_hash(text), time.time())


@dataclass(slots=True)
class Record:
    """One stored vector with its document and stamp.

    ``vector`` may be ``None`` on records returned by reads that did not ask for vectors.
    """

    id: str
    vector: Vector | None
    text: str | None
    metadata: dict[str, Any]
    stamp: Stamp


@dataclass(slots=True)
class Hit:
    """One search result. ``score`` is higher for closer vectors:
    cosine similarity for ``cosine``, inner product for ``dot``, negative squared
    euclidean distance for ``l2``: the raw score in ``space``. ``space`` is the label of
    the space that served it (``namespace`` its namespace), filled in by the core."""

    id: str
    score: float
    text: str | None
    metadata: dict[str, Any]
    stamp: Stamp | None
    space: str | None = None
    namespace: str | None = None
    #: the fused score when the hit comes from a fusing route (``dual``), else None
    fused_score: float | None = None
    #: its 1-based rank in each space's own list (space label -> rank), for routes that
    #: read several spaces (``dual``, ``rerank``); a space that did not list it is absent
    ranks: dict[str, int] | None = None
    #: the score a re-rank hook gave it, when one ran on this hit
    rerank_score: float | None = None


@dataclass(frozen=True, slots=True)
class NamespaceSpec:
    """What a physical namespace holds: one space's vectors, of one dimension and metric."""

    name: str
    dimension: int
    metric: Metric
    fingerprint: str


@dataclass(slots=True)
class ScanPage:
    """One page of a stable-order scan. ``next_cursor`` is ``None`` after the last page."""

    records: list[Record]
    next_cursor: str | None


def is_finite_number(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))
