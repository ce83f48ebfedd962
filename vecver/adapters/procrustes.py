"""Orthogonal Procrustes with centering, and its diagonally rescaled variant.

``procrustes``: remove each space's mean, find the rotation (semi-orthogonal across
dimensions: 768 -> 384 keeps orthonormal columns, 384 -> 768 orthonormal rows) that best
aligns the centred pairs in the least-squares sense, with the one global scale that goes
with it, and add the target mean back::

    y ~ my + s * (x - mx) @ W,   W = U @ Vt  where  U S Vt = svd((X - mx).T @ (Y - my))

Without the centering the rotation has to spend itself on the mean offset, which fails on
anisotropic models (every vector in a narrow cone); ``center=False`` fits that plain
variant (for comparison only). Applied as one matrix product plus a bias.

``procrustes-diag``: the same, then a per-dimension scale and shift of the rotated
vectors (least squares per target dimension), for targets whose dimensions have unequal
spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ..types import Matrix
from .base import F32, Adapter, Array, register_kind


def _options(options: dict[str, Any], known: set[str], kind: str) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidInput(f"adapter kind {kind!r} takes no option(s) {', '.join(unknown)}",
                           hint="options it takes: " + (", ".join(sorted(known)) or "none"))


def procrustes_map(x: Array, y: Array, center: bool = True,
                   scale: bool = True) -> tuple[Array, Array]:
    """(W, b) with ``y ~ x @ W + b`` by centred orthogonal Procrustes (float64)."""
    mx = x.mean(axis=0) if center else np.zeros(x.shape[1])
    my = y.mean(axis=0) if center else np.zeros(y.shape[1])
    xc, yc = x - mx, y - my
    u, s, vt = np.linalg.svd(xc.T @ yc, full_matrices=False)
    w = u @ vt
    if scale:
        # the least-squares scale for this W (trace(W' Xc' Yc) / |Xc W|^2); across
        # dimensions |Xc W| < |Xc|, so the square-case formula would be wrong
        proj = xc @ w
        denom = float(np.sum(proj * proj))
        w = w * (float(s.sum()) / denom if denom > 0 else 1.0)
    return w, my - mx @ w


class _AffineAdapter(Adapter):
    """An adapter applied as ``x @ weight + bias`` (float32)."""

    weight: Matrix
    bias: Matrix

    def _apply(self, m: Matrix) -> Matrix:
        out: Matrix = m @ self.weight
        out += self.bias
        return out

    def _apply_one(self, v: Matrix) -> Matrix:
        out: Matrix = v @ self.weight  # a fresh float32 vector (gemv)
        out += self.bias
        return out

    def _set(self, w: npt.NDArray[Any], b: npt.NDArray[Any]) -> None:
        self.weight = np.ascontiguousarray(w, dtype=F32)
        self.bias = np.ascontiguousarray(b, dtype=F32)

    def _arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {"weight": self.weight, "bias": self.bias}

    def _from_arrays(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        self._set(arrays["weight"], arrays["bias"])


@register_kind
class Procrustes(_AffineAdapter):
    """Centred orthogonal Procrustes with a global scale. Options: ``center`` (default
    True), ``scale`` (default True)."""

    kind = "procrustes"
    min_pairs = 2

    def _fit(self, x: Array, y: Array, seed: int, options: dict[str, Any]) -> None:
        _options(options, {"center", "scale"}, self.kind)
        center = bool(options.get("center", True))
        scale = bool(options.get("scale", True))
        w, b = procrustes_map(x, y, center, scale)
        self._set(w, b)
        self.info.update(center=center, scale=scale)


@register_kind
class DiagonalProcrustes(_AffineAdapter):
    """Centred Procrustes, then a least-squares scale and shift per target dimension."""

    kind = "procrustes-diag"
    min_pairs = 3

    def _fit(self, x: Array, y: Array, seed: int, options: dict[str, Any]) -> None:
        _options(options, set(), self.kind)
        w, b = procrustes_map(x, y)
        z = x @ w + b
        zm, ym = z.mean(axis=0), y.mean(axis=0)
        var = ((z - zm) ** 2).mean(axis=0)
        cov = ((z - zm) * (y - ym)).mean(axis=0)
        a = np.where(var > 1e-12, cov / np.maximum(var, 1e-12), 1.0)
        shift = ym - a * zm
        # y ~ a * (x @ w + b) + shift
        self._set(w * a, a * b + shift)
