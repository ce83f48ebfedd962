"""Fusing the hit lists of several spaces into one (the ``dual`` route).

:func:`fuse` takes, per space, that space's own list of hits for one query (best first,
raw scores of that space's geometry) and returns one list, deduplicated by document id,
best first. The contract:

- **one hit per document**: a document listed by several spaces appears once;
- **how it is scored** — ``rrf``: the sum, over the spaces that list it, of
  ``1 / (c + rank)`` (rank 1-based; ``c`` the configured constant, 60 by default), so a
  document both spaces agree on outranks one that only one of them lists at the same
  rank; ``minmax``: the sum of its min-max normalised scores (each list mapped onto
  [0, 1]; a list whose scores are all equal maps them to 1; a space not listing it adds
  0); ``zscore``: the sum of its z-scores (a list's scores minus their mean, over their
  standard deviation; all equal: 0), a space not listing it adding that list's lowest
  z-score, so that being listed is never worse than not being listed;
- **a document the space does not hold yet** (``unheld``: not yet backfilled into a
  building space) is not counted as a disagreement: each list it is absent from *because
  that space lacks it* contributes what its best listed contribution was, as if that
  space agreed with the others. Without this, every document already backfilled would
  collect two votes and every other document one, whatever the query, and a partly
  built candidate would push the documents it holds above better ones it lacks;
- **where it came from**: the hit's ``space``, ``namespace``, ``score`` (raw) and
  ``stamp`` are those of the space where its rank is best (a tie: the later list, which
  in a ``dual`` plan is the candidate — the geometry being moved to); ``fused_score`` is
  the fused score and ``ranks`` maps each space label listing it to its rank there;
- **order**: fused score descending, then best rank ascending, then id ascending — a
  total order, so equal inputs give equal outputs whatever the tie;
- the input hits are not modified (the output hits are new objects).

What RRF guarantees about ranks (tested with hypothesis in ``tests/test_fusion_props.py``):
a document listed at least as well as another in every list (and wherever the other is
listed) is never fused below it; and a document is fused no lower than one plus the
number of documents that beat it in at least one list. It does *not* guarantee that a
document's fused rank is at most its best single rank: two lists each have their own
first document, and only one of them can be fused first.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from ..errors import InvalidArgument
from ..types import Hit
from .routes import FUSIONS


@dataclass(frozen=True)
class RankedList:
    """One space's hits for one query, best first: ``space`` is its label."""

    space: str
    hits: Sequence[Hit]


def dual_depth(k: int, method: str, rrf_k: float, configured: int | None) -> int:
    """How many hits ``dual`` asks of each space for a fused top ``k``.

    ``configured`` (``[read] dual_candidates``) wins when set (never below ``k``). For
    ``rrf`` the default is ``ceil(c) + 2k``, which makes the truncation safe: a document
    ranked below ``depth`` in both spaces has a fused score of at most
    ``2 / (c + depth + 1)``, less than ``1 / (c + k)`` — the least fused score of the k
    documents one space ranks 1..k — so every document of the fused top k that full
    lists would give is in at least one of the truncated lists, and each fused score is
    short by at most ``1 / (c + depth + 1)`` (one missing tail contribution). For the
    score fusions ``max(3k, 30)`` (their normalisation needs a sample of each list).
    """
    if configured is not None:
        return max(k, configured)
    if method == "rrf":
        return math.ceil(rrf_k) + 2 * k
    return max(3 * k, 30)


def _normalised(method: str, hits: Sequence[Hit], rrf_k: float) -> tuple[list[float], float]:
    """Each hit's contribution to the fused score, and what absence contributes."""
    if method == "rrf":
        return [1.0 / (rrf_k + r) for r in range(1, len(hits) + 1)], 0.0
    scores = [float(h.score) for h in hits]
    if not scores:
        return [], 0.0
    if method == "minmax":
        lo, hi = min(scores), max(scores)
        if hi == lo:
            return [1.0] * len(scores), 0.0
        return [(s - lo) / (hi - lo) for s in scores], 0.0
    mean = sum(scores) / len(scores)
    var = sum((s - mean) ** 2 for s in scores) / len(scores)
    sd = math.sqrt(var)
    if sd == 0.0 or not math.isfinite(sd):
        return [0.0] * len(scores), 0.0
    z = [(s - mean) / sd for s in scores]
    return z, min(z)


def fuse(lists: Sequence[RankedList], k: int, method: str = "rrf", *,
         rrf_k: float = 60.0,
         unheld: Sequence[Collection[str] | None] | None = None) -> list[Hit]:
    """The fused top ``k`` of ``lists`` by ``method`` (see the module docstring).

    ``unheld``, one entry per list (None: the space holds every document): ids the
    space of that list does not hold; their absence from it is imputed, not counted.
    Raises ``InvalidArgument`` for an unknown method, a ``k`` below 1, an ``rrf_k`` that
    is not a positive number, or an ``unheld`` of another length than ``lists``. A list
    holding a document twice counts its first (best) entry only."""
    if method not in FUSIONS:
        raise InvalidArgument("fusion", method, "one of " + ", ".join(FUSIONS))
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidArgument("k", k, "a positive integer")
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float)) \
            or not math.isfinite(rrf_k) or rrf_k <= 0:
        raise InvalidArgument("rrf_k", rrf_k, "a positive number")
    if unheld is not None and len(unheld) != len(lists):
        raise InvalidArgument("unheld", len(unheld), f"one entry per list ({len(lists)})")
    fused: dict[str, float] = {}
    best_contrib: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    best: dict[str, tuple[int, int, Hit]] = {}  # id -> (rank, -list index, hit)
    listed: list[set[str]] = []
    absent: list[float] = []
    for li, rl in enumerate(lists):
        contrib, absent_value = _normalised(method, rl.hits, float(rrf_k))
        seen: set[str] = set()
        rank = 0
        for h, c in zip(rl.hits, contrib, strict=True):
            if h.id in seen:
                continue
            seen.add(h.id)
            rank += 1
            fused[h.id] = fused.get(h.id, 0.0) + c
            if c > best_contrib.get(h.id, -math.inf):
                best_contrib[h.id] = c
            ranks.setdefault(h.id, {})[rl.space] = rank
            cand = (rank, -li, h)
            have = best.get(h.id)
            if have is None or (cand[0], cand[1]) < (have[0], have[1]):
                best[h.id] = cand
        listed.append(seen)
        absent.append(absent_value)
    for li, seen in enumerate(listed):
        lacks = unheld[li] if unheld is not None else None
        if not lacks and method != "zscore":
            continue
        for doc in fused:
            if doc in seen:
                continue
            if lacks and doc in lacks:
                fused[doc] += best_contrib[doc]  # the space lacks it: imputed, not a vote
            else:
                fused[doc] += absent[li]
    order = sorted(fused, key=lambda d: (-fused[d], best[d][0], d))
    out: list[Hit] = []
    for d in order[:k]:
        h = best[d][2]
        out.append(replace(h, metadata=dict(h.metadata), fused_score=fused[d],
                           ranks=dict(ranks[d])))
    return out
