"""A small residual MLP on top of centred Procrustes, trained in numpy.

``y ~ P(x) + relu(x @ W1 + b1) @ W2 + b2`` where ``P`` is the centred Procrustes map
(:mod:`vecver.adapters.procrustes`). ``W2`` starts at zero, so training starts from the
Procrustes fit and can only move away from it where the validation split says it helps:
Adam on the squared error, mini-batches, and early stopping on the mean cosine of a
seeded validation split (default 15% of the pairs); the parameters of the best epoch are
kept; it never stops before ``min_epochs`` (the first epochs away from the start can
score below it). Options: ``hidden`` (default 256), ``epochs`` (default 200),
``min_epochs`` (default 20), ``patience`` (default 12), ``lr`` (default 1e-2), ``batch``
(default 32), ``weight_decay`` (default 1e-4), ``validation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ..types import Matrix
from .base import F32, Adapter, Array, mean_cosine, register_kind, split_validation
from .procrustes import _options, procrustes_map

_KNOWN = {"hidden", "epochs", "min_epochs", "patience", "lr", "batch", "weight_decay",
          "validation"}


def _positive_int(options: dict[str, Any], key: str, default: int) -> int:
    v = options.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InvalidInput(f"{key} must be a positive integer, got {v!r}")
    return v


@register_kind
class ResidualMLP(Adapter):
    """Procrustes plus a one-hidden-layer ReLU residual, early-stopped."""

    kind = "mlp"
    min_pairs = 50

    def _fit(self, x: Array, y: Array, seed: int, options: dict[str, Any]) -> None:
        _options(options, _KNOWN, self.kind)
        hidden = _positive_int(options, "hidden", 256)
        epochs = _positive_int(options, "epochs", 200)
        patience = _positive_int(options, "patience", 12)
        min_epochs = _positive_int(options, "min_epochs", 20)
        batch = _positive_int(options, "batch", 32)
        lr = float(options.get("lr", 1e-2))
        wd = float(options.get("weight_decay", 1e-4))
        frac = float(options.get("validation", 0.15))
        if not 0.0 < frac < 1.0:
            raise InvalidInput(f"validation must be a fraction in (0, 1), got {frac!r}")
        tr, va = split_validation(x.shape[0], frac, seed)
        w0, b0 = procrustes_map(x[tr], y[tr])
        rng = np.random.default_rng(seed)
        xt, yt = x[tr].astype(F32), y[tr].astype(F32)
        xv, yv = x[va].astype(F32), y[va].astype(F32)
        w0f, b0f = w0.astype(F32), b0.astype(F32)
        mu = xt.mean(axis=0)
        sd = xt.std(axis=0) + 1e-6
        params = {
            "w1": (rng.standard_normal((x.shape[1], hidden)) * np.sqrt(2.0 / x.shape[1])
                   ).astype(F32),
            "b1": np.zeros(hidden, F32),
            "w2": np.zeros((hidden, y.shape[1]), F32),
            "b2": np.zeros(y.shape[1], F32),
        }
        m1 = {k: np.zeros_like(v) for k, v in params.items()}
        m2 = {k: np.zeros_like(v) for k, v in params.items()}
        base_t = xt @ w0f + b0f
        base_v = xv @ w0f + b0f
        zt = (xt - mu) / sd
        zv = (xv - mu) / sd

        def predict(z: Matrix, base: Matrix, p: dict[str, Matrix]) -> Matrix:
            out: Matrix = base + np.maximum(z @ p["w1"] + p["b1"], 0.0) @ p["w2"] + p["b2"]
            return out

        best = mean_cosine(base_v, yv)
        best_params = {k: v.copy() for k, v in params.items()}
        best_epoch, stale, step = 0, 0, 0
        b1_, b2_ = 0.9, 0.999
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(tr))
            for i in range(0, len(order), batch):
                idx = order[i:i + batch]
                z, target, base = zt[idx], yt[idx], base_t[idx]
                h_pre = z @ params["w1"] + params["b1"]
                h = np.maximum(h_pre, 0.0)
                err = (base + h @ params["w2"] + params["b2"] - target) * (2.0 / len(idx))
                grads = {"w2": h.T @ err, "b2": err.sum(axis=0)}
                dh = (err @ params["w2"].T) * (h_pre > 0)
                grads["w1"] = z.T @ dh
                grads["b1"] = dh.sum(axis=0)
                step += 1
                for k, g in grads.items():
                    if k in ("w1", "w2"):
                        g = g + wd * params[k]
                    m1[k] = b1_ * m1[k] + (1 - b1_) * g
                    m2[k] = b2_ * m2[k] + (1 - b2_) * g * g
                    mh = m1[k] / (1 - b1_ ** step)
                    vh = m2[k] / (1 - b2_ ** step)
                    params[k] = (params[k] - lr * mh / (np.sqrt(vh) + 1e-8)).astype(F32)
            score = mean_cosine(predict(zv, base_v, params), yv)
            if score > best + 1e-5:
                best, best_epoch, stale = score, epoch, 0
                best_params = {k: v.copy() for k, v in params.items()}
            else:
                stale += 1
                if stale >= patience and epoch >= min_epochs:
                    break
        # fold the input standardisation into the first layer
        w1 = best_params["w1"] / sd[:, None]
        b1 = best_params["b1"] - mu / sd @ best_params["w1"]
        self._set(w0f, b0f, w1, b1, best_params["w2"], best_params["b2"])
        self.info.update(hidden=hidden, best_epoch=best_epoch, epochs_run=epoch,
                         validation_cosine=float(best))

    def _set(self, w0: Any, b0: Any, w1: Any, b1: Any, w2: Any, b2: Any) -> None:
        self.w0 = np.ascontiguousarray(w0, dtype=F32)
        self.b0 = np.ascontiguousarray(b0, dtype=F32)
        self.w1 = np.ascontiguousarray(w1, dtype=F32)
        self.b1 = np.ascontiguousarray(b1, dtype=F32)
        self.w2 = np.ascontiguousarray(w2, dtype=F32)
        self.b2 = np.ascontiguousarray(b2, dtype=F32)
        self._b02 = self.b0 + self.b2  # both output biases, added once per call

    def _apply(self, m: Matrix) -> Matrix:
        h = m @ self.w1
        h += self.b1
        np.maximum(h, 0.0, out=h)
        out: Matrix = m @ self.w0
        out += h @ self.w2
        out += self._b02
        return out

    def _apply_one(self, v: Matrix) -> Matrix:
        return self._apply(v)  # the same products on a vector: fresh float32 output

    def _arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {"w0": self.w0, "b0": self.b0, "w1": self.w1, "b1": self.b1, "w2": self.w2,
                "b2": self.b2}

    def _from_arrays(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        self._set(arrays["w0"], arrays["b0"], arrays["w1"], arrays["b1"], arrays["w2"],
                  arrays["b2"])
