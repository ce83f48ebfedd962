"""Low-rank affine map with ridge regularisation (reduced-rank ridge regression).

``y ~ my + (x - mx) @ B @ C``: the ridge solution ``A = (Xc'Xc + lambda I)^-1 Xc'Yc``,
restricted to the ``rank`` directions of the target that its fitted values span most
(``C`` = the top right singular vectors of ``Xc @ A``, from the eigenvectors of their Gram
matrix; ``B = A @ C'``). ``lambda`` and
``rank`` are chosen on a seeded validation split (default 20% of the pairs) by the mean
cosine between mapped and true target vectors, then the map is refitted on all pairs.
Pass ``ridge=`` and/or ``rank=`` to fix them instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ..types import Matrix
from .base import F32, Adapter, Array, mean_cosine, register_kind, split_validation
from .procrustes import _options

#: ridge strengths tried, relative to the mean eigenvalue of the centred source Gram matrix
RIDGE_GRID = (1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
#: ranks tried (capped by the dimensions; the full rank is always tried)
RANK_GRID = (32, 64, 128, 256)


def _ridge_solutions(xc: Array, yc: Array, lams: Sequence[float]) -> list[Array]:
    p, d, qt = np.linalg.svd(xc, full_matrices=False)
    pty = p.T @ yc
    return [qt.T @ ((d / (d * d + lam))[:, None] * pty) for lam in lams]


def _directions(xc: Array, a: Array) -> Array:
    """The target directions the fitted values ``xc @ a`` span, most first (rows): the
    eigenvectors of their Gram matrix (cheaper than an SVD of the fitted values)."""
    f = xc @ a
    vals, vecs = np.linalg.eigh(f.T @ f)
    out: Array = vecs[:, np.argsort(vals)[::-1]].T
    return out


def _reduce(a: Array, dirs: Array, rank: int) -> tuple[Array, Array | None]:
    """(B, C) with ``A_r = B @ C``; C is None at full rank (B is then A)."""
    if rank >= min(a.shape):
        return a, None
    c = dirs[:rank]
    return a @ c.T, c


@register_kind
class LowRankAffine(Adapter):
    """Reduced-rank ridge regression. Options: ``ridge`` (absolute lambda), ``rank``,
    ``validation`` (fraction held out for the choice, default 0.2)."""

    kind = "lowrank"
    min_pairs = 10

    b: Matrix
    c: Matrix | None
    bias: Matrix

    def _fit(self, x: Array, y: Array, seed: int, options: dict[str, Any]) -> None:
        _options(options, {"ridge", "rank", "validation"}, self.kind)
        full = min(x.shape[1], y.shape[1])
        rank_opt = options.get("rank")
        if rank_opt is not None and (isinstance(rank_opt, bool) or not isinstance(rank_opt, int)
                                     or rank_opt < 1):
            raise InvalidInput(f"rank must be a positive integer, got {rank_opt!r}")
        ridge_opt = options.get("ridge")
        if ridge_opt is not None and (not isinstance(ridge_opt, (int, float))
                                      or ridge_opt < 0):
            raise InvalidInput(f"ridge must be a non-negative number, got {ridge_opt!r}")
        frac = float(options.get("validation", 0.2))
        if not 0.0 < frac < 1.0:
            raise InvalidInput(f"validation must be a fraction in (0, 1), got {frac!r}")
        scale = float(np.sum((x - x.mean(axis=0)) ** 2)) / (x.shape[0] * x.shape[1]) or 1.0
        lams = [float(ridge_opt)] if ridge_opt is not None else [
            r * scale * x.shape[0] for r in RIDGE_GRID]
        ranks = [min(int(rank_opt), full)] if rank_opt is not None else sorted(
            {r for r in RANK_GRID if r < full} | {full})
        chosen_lam, chosen_rank, best = lams[0], ranks[-1], -np.inf
        if len(lams) > 1 or len(ranks) > 1:
            tr, va = split_validation(x.shape[0], frac, seed)
            xt, yt = x[tr], y[tr]
            mx, my = xt.mean(axis=0), yt.mean(axis=0)
            xc = xt - mx
            for lam, a in zip(lams, _ridge_solutions(xc, yt - my, lams)):
                dirs = _directions(xc, a) if any(r < min(a.shape) for r in ranks) else a.T
                for r in ranks:
                    bm, cm = _reduce(a, dirs, r)
                    w = bm if cm is None else bm @ cm
                    score = mean_cosine((x[va] - mx) @ w + my, y[va])
                    if score > best + 1e-6 or (abs(score - best) <= 1e-6 and r < chosen_rank):
                        chosen_lam, chosen_rank, best = lam, r, score
        mx, my = x.mean(axis=0), y.mean(axis=0)
        xc = x - mx
        a = _ridge_solutions(xc, y - my, [chosen_lam])[0]
        bm, cm = _reduce(a, _directions(xc, a) if chosen_rank < min(a.shape) else a.T,
                         chosen_rank)
        w = bm if cm is None else bm @ cm
        self.b = np.ascontiguousarray(bm, dtype=F32)
        self.c = None if cm is None else np.ascontiguousarray(cm, dtype=F32)
        self.bias = np.ascontiguousarray(my - mx @ w, dtype=F32)
        self.info.update(ridge=chosen_lam, rank=chosen_rank,
                         validation_cosine=None if best == -np.inf else float(best))

    def _apply(self, m: Matrix) -> Matrix:
        out: Matrix = m @ self.b
        if self.c is not None:
            out = out @ self.c
        out += self.bias
        return out

    def _apply_one(self, v: Matrix) -> Matrix:
        return self._apply(v)  # the same products on a vector: fresh float32 output

    def _arrays(self) -> dict[str, npt.NDArray[Any]]:
        d: dict[str, npt.NDArray[Any]] = {"b": self.b, "bias": self.bias}
        if self.c is not None:
            d["c"] = self.c
        return d

    def _from_arrays(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        self.b = np.ascontiguousarray(arrays["b"], dtype=F32)
        self.c = np.ascontiguousarray(arrays["c"], dtype=F32) if "c" in arrays else None
        self.bias = np.ascontiguousarray(arrays["bias"], dtype=F32)
