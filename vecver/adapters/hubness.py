"""A per-document hubness prior for the adapter route: score = cos(mapped query, doc)
minus ``beta`` times how close the document sits to the mapped training queries.

Why: a mapped query lands in the old space with a systematic error, and some stored
documents ("hubs") are near many mapped vectors without being relevant to them; they
crowd the top-k of many queries. Cross-lingual word-vector mapping meets the same
problem and corrects it on the *target* side (CSLS; the inverted softmax). Here the
prior of document ``d`` is a soft maximum of its similarities to the mapped training
sources ``s_j`` (the new-model vectors of the training pairs, passed through the
adapter)::

    prior(d) = (1 / sharpness) * log sum_j exp(sharpness * <s_j, d>)

and the adapter route ranks by ``<z, d> - beta * prior(d)``. The prior needs nothing but
the fitted adapter, the training pairs' source vectors and the stored old vectors; it is
one number per document, computed once at fit time (the query path adds a lookup and a
subtraction per candidate, on an over-fetched candidate list: :func:`rerank`). A
per-document term cannot be folded into a query-side linear map.

Measured (bench/adapter_bench.py --explore -> bench/results/ad-explore-*.txt; BBC News
titles over all 2,225 articles, exact search, 5,000 pairs; ``sharpness`` and ``beta``
chosen on held-out *training* documents, never on the titles): retention of the
contrastive kind without -> with the prior, MiniLM-L6 <- MiniLM-L3 0.945 -> 0.969,
MiniLM-L6 <- mpnet 0.936 -> 0.956, mpnet <- MiniLM-L6 0.954 -> 0.980 (Procrustes:
0.925 -> 0.968, 0.920 -> 0.956, 0.932 -> 0.973); a rerank of the contrastive
adapter's top 50 gives the same three figures as the exact prior. The CSLS form (mean of
the k nearest sources) gains about half as much; a linear fit of the prior folded into
the query map lost the gain (0.945 -> 0.941 on MiniLM-L6 <- MiniLM-L3, session-5 notes).

CAVEAT (session 6, bench/results/s6-adapter-*.txt): those figures count each training
document's own pairs (its body and its sentences) in its prior. In that protocol only the
training half's documents have pairs and every relevant document is in the other half,
so the prior demotes exactly the non-relevant half: most of the gain is that bias. With
each document's own pairs left out (what :func:`vecver.adapters.prior.fit_prior` does),
MiniLM-L6 <- MiniLM-L3 gains 0.925 -> 0.933 (Procrustes) and 0.945 -> 0.947
(contrastive).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ..types import Matrix
from .base import F32, as_matrix

#: documents per block when computing priors (bounds the sources x block score matrix)
BLOCK = 2048


def _finite_matrix(a: object, what: str) -> Matrix:
    m = as_matrix(a, what)
    if m.shape[0] == 0 or m.shape[1] == 0:
        raise InvalidInput(f"{what} must hold at least one vector of at least one "
                           f"dimension, got shape {m.shape}")
    bad = ~np.isfinite(m).all(axis=1)
    if bad.any():
        raise InvalidInput(f"{what} row {int(np.argmax(bad))} contains NaN or infinity",
                           hint="check the stored vectors and the embedder's output")
    return m


def _positive(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def doc_prior(mapped_sources: object, docs: object, *, sharpness: float = 20.0
              ) -> npt.NDArray[np.float32]:
    """The hubness prior of each row of ``docs`` (float32, one per document): the
    log-sum-exp at ``sharpness`` of its inner products with the rows of
    ``mapped_sources`` (module docstring). Rows are used as given (pass unit rows for
    cosine). Deterministic; computed in blocks of :data:`BLOCK` documents in float64.

    Raises ``InvalidInput`` for inputs that are not non-empty 2-D matrices, of
    different widths, holding NaN or infinity, or a ``sharpness`` that is not a finite
    positive number."""
    sharp = _positive(sharpness, "sharpness")
    s = _finite_matrix(mapped_sources, "mapped sources")
    d = _finite_matrix(docs, "documents")
    if s.shape[1] != d.shape[1]:
        raise InvalidInput(f"mapped sources have {s.shape[1]} dimensions but documents "
                           f"have {d.shape[1]}",
                           hint="map the training sources through the adapter first")
    out = np.empty(d.shape[0], dtype=F32)
    s64 = s.astype(np.float64)
    for lo in range(0, d.shape[0], BLOCK):
        sim = s64 @ d[lo:lo + BLOCK].astype(np.float64).T  # sources x block
        top = sim.max(axis=0)
        out[lo:lo + BLOCK] = top + np.log(np.exp(sharp * (sim - top)).sum(axis=0)) / sharp
    return out


def rerank(scores: object, priors: object, beta: float, k: int
           ) -> npt.NDArray[np.intp]:
    """Positions (into each row of ``scores``) of the ``k`` best candidates by
    ``score - beta * prior``, best first, ties in candidate order. ``scores`` and
    ``priors`` are ``(n_candidates,)`` or ``(n_queries, n_candidates)`` alike (the
    adapter's similarities of over-fetched candidates and those candidates' priors).
    ``beta = 0`` keeps the order of ``scores``.

    Raises ``InvalidInput`` for shapes that differ or are not 1-D/2-D, non-finite
    values, a negative or non-finite ``beta``, or ``k < 1``."""
    sc = np.asarray(scores)
    pr = np.asarray(priors)
    if sc.shape != pr.shape or sc.ndim not in (1, 2):
        raise InvalidInput(f"scores {sc.shape} and priors {pr.shape} must be alike, 1-D "
                           "or 2-D (one row per query)")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) \
            or not math.isfinite(beta) or beta < 0:
        raise InvalidInput(f"beta must be a finite number >= 0, got {beta!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    try:
        adj = sc - float(beta) * pr
    except TypeError:
        raise InvalidInput("scores and priors must be numeric") from None
    # one finiteness check: NaN or infinity in either input leaves one in adj
    if adj.dtype.kind != "f" or not np.isfinite(adj).all():
        raise InvalidInput("scores and priors must be finite numbers")
    order: npt.NDArray[np.intp] = np.argsort(-adj, axis=-1, kind="stable")[..., :k]
    return order


__all__ = ["BLOCK", "doc_prior", "rerank"]
