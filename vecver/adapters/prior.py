"""The hubness prior as the adapter route serves it: one number per stored document of the
old namespace, a ``beta`` and an over-fetch depth, stored next to the adapter.

:class:`DocPrior` is the served object: the route asks the backend for
:meth:`DocPrior.fetch_depth` candidates (``depth``, default :data:`DEPTH` = 20, never fewer
than ``k``), ranks them by ``score - beta * prior(id)`` (:meth:`DocPrior.rerank_hits`,
ties in the backend's order) and keeps the top ``k``. ``score`` stays the raw similarity
on every hit. A document without a prior (written after the fit) gets the **median**
prior of the fit's documents: neither promoted nor demoted as a hub.

:func:`fit_prior` computes one at fit time (:func:`vecver.adapters.service.fit` calls
it): the priors of every stored document from the adapter's mapped training sources
(:func:`vecver.adapters.hubness.doc_prior`'s log-sum-exp), with ``sharpness`` and
``beta`` chosen on a held-out split of the TRAINING documents (a document's own
training pair is left out of its prior: see :func:`fit_prior`): an adapter of the same
kind refitted without them maps each validation document's lead (its first words, as
the gate's held-out evaluation does) into the old space; the pair of values whose
rerank ranks the most validation documents in their own lead's top ``k`` among all
stored documents wins (ties: the smaller beta). ``beta = 0`` winning means the prior did
not help there: the fit then stores no prior.

Archive (:meth:`DocPrior.to_bytes`, :func:`load_prior`): an ``.npz`` of the ids (UTF-8,
concatenated, with offsets), the priors (float32) and a JSON header; exact round trip.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgument, InvalidInput
from ..types import Hit, Matrix
from .base import Adapter, normalize_rows

#: archive format written by :meth:`DocPrior.to_bytes`
FORMAT_VERSION = 1
#: candidates the route over-fetches for the rerank by default (bench/results/s6-adapter-*:
#: 20 gives the recall of 50 on both BBC pairs at about half the rerank's cost)
DEPTH = 20
#: sharpness values tried at fit time (bench/results/ad-explore-*.txt chose 20 on all three
#: BBC pairs; 30 gave the same figures within 0.005)
SHARPNESS_GRID: tuple[float, ...] = (10.0, 20.0, 30.0, 50.0)
#: beta values tried at fit time
BETA_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(13))  # 0 .. 0.6
#: share of the training documents held out to choose beta and sharpness
VALIDATION_FRACTION = 0.15
#: the fewest validation documents a choice is made on (fewer: no prior, with a note)
MIN_VALIDATION = 20
#: at most this many validation documents (their leads are embedded at fit time)
MAX_VALIDATION = 1000


def check_beta(beta: object, what: str = "beta") -> float:
    """``beta`` as a float if it is a finite number >= 0; ``InvalidArgument`` otherwise."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating)) \
            or not math.isfinite(float(beta)) or float(beta) < 0:
        raise InvalidArgument(what, beta, "a finite number >= 0")
    return float(beta)


def check_sharpness(value: object, what: str = "sharpness") -> float:
    """``value`` as a float if it is a finite number > 0; ``InvalidArgument`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(float(value)) or float(value) <= 0:
        raise InvalidArgument(what, value, "a finite number > 0")
    return float(value)


def check_depth(value: object, what: str = "prior_depth") -> int:
    """``value`` if it is an integer >= 1; ``InvalidArgument`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgument(what, value, "a positive integer")
    return int(value)


class DocPrior:
    """Per-document priors of one old namespace and how the route applies them.

    ``ids`` and ``values`` are parallel (one finite float per distinct id); ``beta`` >= 0,
    ``sharpness`` > 0 (what the values were computed with; recorded, not used here),
    ``depth`` >= 1 (the over-fetch). Raises ``InvalidInput`` for a count mismatch, a
    repeated id, a non-string id, NaN or infinity, no documents; ``InvalidArgument`` for
    a bad ``beta``, ``sharpness`` or ``depth``."""

    def __init__(self, ids: Sequence[str], values: object, *, beta: float, sharpness: float,
                 depth: int = DEPTH) -> None:
        self.beta = check_beta(beta)
        self.sharpness = check_sharpness(sharpness)
        self.depth = check_depth(depth)
        idl = list(ids)
        try:
            v = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"priors must be numbers: {e}") from None
        if v.ndim != 1 or v.shape[0] != len(idl):
            raise InvalidInput(f"{len(idl)} document ids but priors of shape {v.shape}",
                               hint="pass one prior per document id")
        if not idl:
            raise InvalidInput("a prior needs at least one document")
        if not np.isfinite(v).all():
            bad = int(np.argmin(np.isfinite(v)))
            raise InvalidInput(f"the prior of document {idl[bad]!r} is not finite",
                               hint="refit the adapter; check the stored vectors")
        if not all(isinstance(i, str) for i in idl):
            raise InvalidInput("document ids must be strings")
        index = {i: float(x) for i, x in zip(idl, v.tolist())}
        if len(index) != len(idl):
            raise InvalidInput("a document id is repeated in the prior")
        self.ids = idl
        self.values = v
        self.median = float(np.median(v))
        self._index = index

    def __len__(self) -> int:
        return len(self.ids)

    def fetch_depth(self, k: int) -> int:
        """Candidates to fetch for a top ``k``: ``depth``, never fewer than ``k``."""
        return max(self.depth, int(k))

    def of(self, ids: Iterable[str]) -> npt.NDArray[np.float64]:
        """The priors of ``ids`` (the median for an id the fit did not see)."""
        get, med = self._index.get, self.median
        return np.fromiter((get(i, med) for i in ids), dtype=np.float64)

    def order(self, ids: Sequence[str], scores: object, k: int) -> npt.NDArray[np.intp]:
        """Positions of the ``k`` best of the candidates ``ids`` (raw ``scores``, higher is
        closer) by ``score - beta * prior``, best first, ties in candidate order."""
        adj = np.asarray(scores, dtype=np.float64) - self.beta * self.of(ids)
        out: npt.NDArray[np.intp] = np.argsort(-adj, kind="stable")[:k]
        return out

    def rerank_hits(self, results: list[list[Hit]], k: int) -> list[list[Hit]]:
        """Each query's hits reordered by ``score - beta * prior`` and cut to ``k`` (the
        hit objects themselves, their raw ``score`` untouched)."""
        out: list[list[Hit]] = []
        get, med, beta = self._index.get, self.median, self.beta
        for hits in results:
            if len(hits) <= 1:
                out.append(hits[:k])
                continue
            # plain Python: for ~50 hits a list and a stable sort (reverse keeps ties in
            # order) cost less than building numpy arrays (bench/adapter_bench.py)
            adj = [h.score - beta * get(h.id, med) for h in hits]
            top = sorted(range(len(adj)), key=adj.__getitem__, reverse=True)[:k]
            out.append([hits[i] for i in top])
        return out

    def describe(self) -> dict[str, Any]:
        """What the manifest records of it (no per-document values)."""
        return {"beta": self.beta, "sharpness": self.sharpness, "depth": self.depth,
                "docs": len(self.ids), "median": self.median}

    def to_bytes(self) -> bytes:
        """The prior as an ``.npz`` archive (see the module docstring)."""
        enc = [i.encode("utf-8") for i in self.ids]
        offsets = np.zeros(len(enc) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in enc], out=offsets[1:])
        header = {"format": FORMAT_VERSION, "beta": self.beta, "sharpness": self.sharpness,
                  "depth": self.depth}
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, values=self.values, offsets=offsets,
                 ids=np.frombuffer(b"".join(enc), dtype=np.uint8),
                 header=np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8))
        return buf.getvalue()

    def with_depth(self, depth: int) -> DocPrior:
        """The same priors and beta with another over-fetch depth."""
        return DocPrior(self.ids, self.values, beta=self.beta, sharpness=self.sharpness,
                        depth=depth)


def load_prior(data: bytes) -> DocPrior:
    """A prior from :meth:`DocPrior.to_bytes`; ``InvalidInput`` for other bytes or a newer
    format (and what :class:`DocPrior` raises for bad contents)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode("utf-8"))
            raw = bytes(z["ids"])
            offsets = z["offsets"].tolist()
            values = z["values"]
        version = int(header["format"])
        ids = [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
    except Exception as e:  # noqa: BLE001 - any decoding failure is the same error
        raise InvalidInput(f"not a stored adapter prior: {e}",
                           hint="refit the adapter with `vecver adapter fit`") from None
    if version > FORMAT_VERSION:
        raise InvalidInput(f"stored prior format {version} is newer than this vecver reads "
                           f"({FORMAT_VERSION})", hint="upgrade vecver")
    return DocPrior(ids, values, beta=header["beta"], sharpness=header["sharpness"],
                    depth=header["depth"])


# -- fitting -------------------------------------------------------------------------


@dataclass
class PriorChoice:
    """What :func:`fit_prior` chose and measured on the validation documents."""

    prior: DocPrior | None
    beta: float
    sharpness: float
    validation_docs: int
    recall_without: float | None
    recall_with: float | None
    note: str = ""
    grid: dict[str, float] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"beta": self.beta, "sharpness": self.sharpness,
                               "validation_docs": self.validation_docs,
                               "validation_recall_without": self.recall_without,
                               "validation_recall_with": self.recall_with, "note": self.note}
        if self.prior is not None:
            out.update(self.prior.describe())
        return out


def _lse(sim: npt.NDArray[np.float32], sharp: float) -> npt.NDArray[np.float64]:
    """Column-wise log-sum-exp of ``sharp * sim`` over rows, divided by ``sharp``
    (``-inf`` entries count for nothing; a column of only ``-inf``: -1, the lowest
    cosine)."""
    top = sim.max(axis=0).astype(np.float64)
    top[~np.isfinite(top)] = -1.0
    e = np.exp(np.float32(sharp) * (sim - top.astype(np.float32)))
    with np.errstate(divide="ignore"):
        out: npt.NDArray[np.float64] = top + np.log(e.sum(axis=0, dtype=np.float64)) / sharp
    out[~np.isfinite(out)] = -1.0
    return out


def _rows_of(ids: Sequence[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for n, i in enumerate(ids):
        out.setdefault(i, []).append(n)
    return out


def _mask_self(sim: npt.NDArray[np.float32], page_ids: Sequence[str],
               rows: dict[str, list[int]]) -> None:
    """Leave each document's own training pairs out of its prior (in place)."""
    cols = [(r, n) for n, i in enumerate(page_ids) for r in rows.get(i, ())]
    if cols:
        rr, cc = zip(*cols)
        sim[list(rr), list(cc)] = -np.inf


def fit_prior(
    adapter: Adapter, sources: Matrix, pages: Iterable[tuple[list[str], Matrix]], *,
    source_ids: Sequence[str] = (),
    validation: tuple[Adapter, Matrix, Sequence[str], Matrix, Sequence[str]] | None,
    k: int = 10, depth: int = DEPTH, beta: float | None = None,
    sharpness: float | None = None,
    on_page: Callable[[int], None] | None = None,
) -> PriorChoice:
    """Priors of every document ``pages`` yields (``(ids, vectors)`` of the stored old
    vectors, each page once), from ``adapter.transform(sources)`` (the training pairs'
    new-model vectors), with ``beta``/``sharpness`` given or chosen (module docstring).
    ``source_ids`` names the document of each source row (several rows may name one
    document: its sentences): a document's own pairs are left out of its prior (its
    mapped text is near it by construction; counting it would demote exactly the
    documents the adapter was fitted on).

    ``validation`` = (adapter refitted without the validation documents, its training
    sources, their document ids, the validation documents' lead vectors in the new space,
    their ids): needed unless both ``beta`` and ``sharpness`` are given. Vectors are
    compared as unit rows (cosine). A chosen beta of 0 (or a given one) leaves ``prior``
    None."""
    sharps = (check_sharpness(sharpness),) if sharpness is not None else SHARPNESS_GRID
    betas = (check_beta(beta),) if beta is not None else BETA_GRID
    depth = check_depth(depth)
    tune = len(sharps) > 1 or len(betas) > 1
    if tune and validation is None:
        raise InvalidInput("choosing beta and sharpness needs validation documents",
                           hint="give both prior_beta and prior_sharpness")
    mapped = normalize_rows(adapter.transform(sources))
    self_rows = _rows_of(source_ids)
    val_mapped = val_q = None
    val_pos: dict[str, int] = {}
    val_rows: dict[str, list[int]] = {}
    if tune and validation is not None:
        ad_v, src_v, src_ids_v, q_v, ids_v = validation
        val_mapped = normalize_rows(ad_v.transform(src_v))
        val_q = normalize_rows(ad_v.transform(q_v))
        val_pos = {i: n for n, i in enumerate(ids_v)}
        val_rows = _rows_of(src_ids_v)
    nq = 0 if val_q is None else val_q.shape[0]
    cand_depth = max(depth, k)
    best_s = np.full((nq, 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((nq, 0), dtype=np.int64)
    truth = np.full(nq, -1, dtype=np.int64)
    ids: list[str] = []
    finals: dict[float, list[npt.NDArray[np.float64]]] = {s: [] for s in sharps}
    vals: dict[float, list[npt.NDArray[np.float64]]] = {s: [] for s in sharps}
    for page_ids, vecs in pages:
        if not page_ids:
            continue
        d = normalize_rows(np.asarray(vecs, dtype=np.float32))
        base = len(ids)
        ids.extend(page_ids)
        sim = mapped @ d.T
        _mask_self(sim, page_ids, self_rows)
        for s in sharps:
            finals[s].append(_lse(sim, s))
        del sim
        if val_q is not None and val_mapped is not None:
            sv = val_mapped @ d.T
            _mask_self(sv, page_ids, val_rows)
            for s in sharps:
                vals[s].append(_lse(sv, s))
            del sv
            for n, i in enumerate(page_ids):
                j = val_pos.get(i)
                if j is not None:
                    truth[j] = base + n
            qs = val_q @ d.T
            all_s = np.concatenate([best_s, qs], axis=1)
            all_i = np.concatenate([best_i, np.broadcast_to(
                np.arange(base, base + len(page_ids)), qs.shape)], axis=1)
            keep = min(cand_depth, all_s.shape[1])
            sel = np.argpartition(-all_s, keep - 1, axis=1)[:, :keep]
            best_s = np.take_along_axis(all_s, sel, axis=1)
            best_i = np.take_along_axis(all_i, sel, axis=1)
        if on_page is not None:
            on_page(len(page_ids))
    if not ids:
        return PriorChoice(None, 0.0, sharps[0], 0, None, None,
                           note="no stored vectors to compute priors for")
    chosen_b, chosen_s = betas[0], sharps[0]
    rec0 = rec1 = None
    grid: dict[str, float] = {}
    ok = truth >= 0
    if tune:
        order = np.argsort(-best_s, axis=1, kind="stable")
        cs = np.take_along_axis(best_s, order, axis=1).astype(np.float64)
        ci = np.take_along_axis(best_i, order, axis=1)
        cs, ci, tr = cs[ok], ci[ok], truth[ok]
        best = (-1.0, 0.0, sharps[0])
        for s in sharps:
            pv = np.concatenate(vals[s])[ci]
            for b in betas:
                top = np.argsort(-(cs - b * pv), axis=1, kind="stable")[:, :k]
                hit = (np.take_along_axis(ci, top, axis=1) == tr[:, None]).any(axis=1)
                r = float(hit.mean()) if len(hit) else 0.0
                grid[f"{s:g}/{b:g}"] = r
                if b == 0.0 and rec0 is None:
                    rec0 = r
                if r > best[0] + 1e-9:
                    best = (r, b, s)
        rec1, chosen_b, chosen_s = best
    vcount = int(ok.sum())
    if chosen_b == 0.0:
        return PriorChoice(None, 0.0, chosen_s, vcount, rec0, rec1,
                           note="beta 0: the prior did not help on the validation documents",
                           grid=grid)
    values = np.concatenate(finals[chosen_s]).astype(np.float32)
    prior = DocPrior(ids, values, beta=chosen_b, sharpness=chosen_s, depth=depth)
    return PriorChoice(prior, chosen_b, chosen_s, vcount, rec0, rec1, grid=grid)


__all__ = ["BETA_GRID", "DEPTH", "SHARPNESS_GRID", "DocPrior", "PriorChoice", "check_beta",
           "fit_prior", "load_prior"]
