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
    return bool(tied_positions(metric, row, hits))


def tied_positions(metric: Metric, row: np.ndarray, hits: Sequence[Scored]) -> list[int]:
    """The positions (ascending) of the ``hits`` that are in a near tie with a neighbour
    (:func:`near_tie`'s test, pair by pair). Re-scoring only those and sorting again
    gives the order the exact scores of the whole list give: a hit outside every near
    tie is further from each neighbour than both scores' uncertainty, so no exact score
    can cross it."""
    if len(hits) < 2:
        return []
    unit = _unit(row)
    if metric == "cosine":
        gap = 2.0 * unit
        pairs = [j for j in range(len(hits) - 1) if hits[j].score - hits[j + 1].score <= gap]
    else:
        qn = 2.0 * math.sqrt(float(np.dot(row, row)))
        err = [_l2_error(unit, qn, h.score) for h in hits]
        pairs = [j for j in range(len(hits) - 1)
                 if hits[j].score - hits[j + 1].score <= err[j] + err[j + 1]]  # fmt: skip
    return sorted({p for j in pairs for p in (j, j + 1)})


def agrees(metric: Metric, row: np.ndarray, engine: Sequence[float],
           exact: Sequence[float]) -> list[bool]:
    """Per hit, whether the score computed from the database's distance (``engine``) and
    the one :func:`~vecver.backends.base.exact_scores` gives for the vector read back
    (``exact``) are within both computations' rounding (the uncertainty
    :func:`near_tie` uses): False means the vector read back is not the one the search
    scored (a replica behind the search, or a write between the two reads). ``cosine``
    and ``l2`` only (``dot``: see :func:`near_tie`). ``row`` is the query vector."""
    unit = _unit(row)
    if metric == "cosine":
        return [abs(a - b) <= 2.0 * unit for a, b in zip(engine, exact)]
    qn = 2.0 * math.sqrt(float(np.dot(row, row)))
    return [abs(a - b) <= 2.0 * _l2_error(unit, qn, a) for a, b in zip(engine, exact)]


def _unit(row: np.ndarray) -> float:
    return (16.0 * math.sqrt(len(row)) + 16.0) * F32_UNIT


def _l2_error(unit: float, qn: float, score: float) -> float:
    """The rounding uncertainty of an l2 score (``-distance``) for a query of norm
    ``qn / 2``."""
    dist = max(-score, 0.0)
    return unit * ((qn + math.sqrt(dist)) ** 2 + dist)


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


__all__ = [
    "F32_UNIT", "RATE_WEIGHT", "UPFRONT_RATE", "Scored", "TieRate", "agrees", "near_tie",
    "tied_positions",
]
