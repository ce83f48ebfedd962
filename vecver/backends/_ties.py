"""When a database's own distances order a hit list as vecver's reference would.

Backends that can return a search's distances without the hits' vectors (Weaviate,
Milvus) score hits from those distances, which are within float32 rounding of
:func:`~vecver.backends.base.exact_scores`. Only when two neighbouring hits are so close
that the rounding of either computation could swap them (:func:`near_tie`, exact ties
included) is the list re-scored from the stored vectors, so that near ties order as the
reference orders them (ties by id). :class:`TieRate` tracks how often a namespace's
searches need that, so that a backend can ask for the vectors with the first request once
a second request is the common case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..types import Metric

#: float32's unit roundoff (2**-24).
F32_UNIT = 2.0**-24

#: vectors are asked with the first request of a search once more than this share of a
#: namespace's recent searches had near ties (each then needs them: one larger answer
#: costs less than a second request that often)...
UPFRONT_RATE = 0.15
#: ... as an exponential moving average of weight 1/16 per search.
RATE_WEIGHT = 1.0 / 16.0


class Scored(Protocol):
    """Anything with a ``score`` (a :class:`~vecver.types.Hit`)."""

    @property
    def score(self) -> float: ...


def near_tie(metric: Metric, row: np.ndarray, hits: Sequence[Scored]) -> bool:
    """True when two neighbouring ``hits`` (sorted best first by scores computed from the
    database's distances) are close enough that
    :func:`~vecver.backends.base.exact_scores` might order them the other way (or as a
    tie, broken by id): their gap is at most the sum of both scores' uncertainty. Each
    uncertainty is ``(16 * sqrt(d) + 16)`` float32 units of rounding of the score's scale
    (cosine: 1; l2: ``(2|q| + sqrt(dist))**2 + dist``, which bounds the terms
    ``exact_scores`` adds: ``|v| <= |q| + sqrt(dist)``), more than ten times the
    difference measured between the two computations (float32, dimensions 8 to 4096,
    vectors from 1e-3 to 1e3 in scale). When no gap is that close, the order of the exact
    scores is the order of these (transitively), so re-scoring could not change it.

    ``dot`` is not covered: a dot product's rounding depends on the stored vector's norm,
    which the distance does not tell (callers always re-score ``dot``). ``row`` is the
    query vector."""
    if len(hits) < 2:
        return False
    unit = (16.0 * math.sqrt(len(row)) + 16.0) * F32_UNIT
    if metric == "cosine":
        return any(a.score - b.score <= 2.0 * unit for a, b in zip(hits, hits[1:]))
    qn = 2.0 * math.sqrt(float(np.dot(row, row)))
    err = []
    for h in hits:
        dist = max(-h.score, 0.0)
        err.append(unit * ((qn + math.sqrt(dist)) ** 2 + dist))
    return any(hits[j].score - hits[j + 1].score <= err[j] + err[j + 1]
               for j in range(len(hits) - 1))  # fmt: skip


class TieRate:
    """Per namespace, the moving share of searches that had near ties (weight
    :data:`RATE_WEIGHT`); :meth:`upfront` says whether to ask for vectors with the first
    request (the share is above :data:`UPFRONT_RATE`). Not locked: a lost update between
    two threads only delays the switch by a search."""

    def __init__(self) -> None:
        self._rate: dict[str, float] = {}

    def upfront(self, namespace: str) -> bool:
        """Whether ``namespace``'s searches should ask for the vectors at once."""
        return self._rate.get(namespace, 0.0) > UPFRONT_RATE

    def record(self, namespace: str, ties: int, searches: int = 1) -> None:
        """Count ``searches`` searches of ``namespace``, ``ties`` of which had near ties."""
        rate = self._rate.get(namespace, 0.0)
        for i in range(searches):
            rate += (float(i < ties) - rate) * RATE_WEIGHT
        self._rate[namespace] = rate

    def forget(self, namespace: str) -> None:
        """Drop what is known of ``namespace`` (dropped or recreated)."""
        self._rate.pop(namespace, None)


__all__ = ["F32_UNIT", "RATE_WEIGHT", "UPFRONT_RATE", "Scored", "TieRate", "near_tie"]
