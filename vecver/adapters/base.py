"""The adapter contract: a fitted map from one space's vectors into another's.

An :class:`Adapter` maps row vectors of its *source* space (``source_dim`` columns: the new
model's query vectors) into its *target* space (``target_dim`` columns: the old model's
geometry, where the stored vectors live). Fitting takes paired rows ``X`` (source) and ``Y``
(target) of the same documents; :func:`check_pairs` is the one place their shape, count and
finiteness are checked.

Guarantees every kind keeps:

- ``transform`` is a pure function of the fitted parameters: float32 in, float32 out,
  ``(n, source_dim) -> (n, target_dim)``; unit-length rows out when the adapter was fitted
  with ``normalize=True`` (the default for cosine targets);
- fitting is deterministic for the same pairs and ``seed``;
- :meth:`Adapter.to_bytes` / :func:`load_adapter` round-trip exactly (an ``.npz``
  archive: the parameters as arrays plus a small JSON header), so a stored adapter
  transforms bit-for-bit as it did when it was fitted.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..errors import (
    AdapterPairMismatch,
    InvalidInput,
    NonFinitePairs,
    TooFewPairs,
    UnknownAdapterKind,
)
from ..types import Matrix

F32 = np.float32
Array = npt.NDArray[np.float64]

#: the archive format version written by :meth:`Adapter.to_bytes`
FORMAT_VERSION = 1


def as_matrix(a: object, what: str) -> Matrix:
    """``a`` as a 2-D float32 C-contiguous array; ``InvalidInput`` otherwise."""
    try:
        m = np.asarray(a, dtype=F32)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{what} must be a numeric matrix: {e}") from None
    if m.ndim != 2:
        raise InvalidInput(f"{what} must be a 2-D matrix (rows are vectors), got shape "
                           f"{m.shape}")
    return np.ascontiguousarray(m)


def check_pairs(x: object, y: object, kind: str, min_pairs: int) -> tuple[Matrix, Matrix]:
    """The training pairs as float32 matrices, after checking them.

    Raises ``AdapterPairMismatch`` when ``x`` and ``y`` have different row counts (or are
    not matrices with at least one column), ``NonFinitePairs`` when either holds NaN or
    infinity (naming the first bad row), ``TooFewPairs`` when there are fewer than
    ``min_pairs`` rows (what adapter ``kind`` needs)."""
    xm = as_matrix(x, "source vectors")
    ym = as_matrix(y, "target vectors")
    if xm.shape[0] != ym.shape[0]:
        raise AdapterPairMismatch(
            f"{xm.shape[0]} source vectors but {ym.shape[0]} target vectors",
            xm.shape, ym.shape,
        )
    if xm.shape[1] == 0 or ym.shape[1] == 0:
        raise AdapterPairMismatch("vectors with no dimensions", xm.shape, ym.shape)
    for side, m in (("source", xm), ("target", ym)):
        finite = np.isfinite(m).all(axis=1)
        if not finite.all():
            raise NonFinitePairs(side, int(np.argmin(finite)))
    if xm.shape[0] < min_pairs:
        raise TooFewPairs(kind, xm.shape[0], min_pairs)
    return xm, ym


def normalize_rows(m: npt.NDArray[Any]) -> Matrix:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    out: Matrix = (m / np.maximum(norms, 1e-12)).astype(F32, copy=False)
    return out


def split_validation(n: int, fraction: float, seed: int) -> tuple[npt.NDArray[np.intp],
                                                                 npt.NDArray[np.intp]]:
    """A seeded (train, validation) split of ``range(n)``; the validation part holds
    ``fraction`` of the rows (at least one, and at least one row stays for training)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = min(max(1, int(round(n * fraction))), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def mean_cosine(pred: npt.NDArray[Any], target: npt.NDArray[Any]) -> float:
    """Mean cosine similarity of paired rows (the validation score of every kind)."""
    p = normalize_rows(pred)
    t = normalize_rows(target)
    return float(np.mean(np.sum(p * t, axis=1)))


class Adapter(ABC):
    """A fitted map from ``source_dim``-vectors into ``target_dim``-vectors.

    Subclasses set :attr:`kind` and :attr:`min_pairs`, implement :meth:`_fit`,
    :meth:`_apply` (the raw map, before normalisation), :meth:`_arrays` and
    :meth:`_from_arrays`. ``info`` holds what the fit chose (rank, ridge, epochs, ...)."""

    kind: ClassVar[str] = "abstract"
    #: the fewest training pairs this kind accepts
    min_pairs: ClassVar[int] = 2

    def __init__(self, source_dim: int, target_dim: int, *, normalize: bool = True,
                 info: Mapping[str, Any] | None = None) -> None:
        self.source_dim = int(source_dim)
        self.target_dim = int(target_dim)
        self.normalize = bool(normalize)
        self.info: dict[str, Any] = dict(info or {})

    # -- fitting ----------------------------------------------------------------------

    @classmethod
    def fit(cls, x: object, y: object, *, seed: int = 0, normalize: bool = True,
            **options: Any) -> Adapter:
        """Fit on paired rows ``x`` (source space) and ``y`` (target space).

        Deterministic for the same inputs and ``seed``. Raises what :func:`check_pairs`
        raises, and ``InvalidInput`` for an option the kind does not take or a bad value."""
        xm, ym = check_pairs(x, y, cls.kind, cls.min_pairs)
        ad = cls(xm.shape[1], ym.shape[1], normalize=normalize)
        ad._fit(xm.astype(np.float64), ym.astype(np.float64), seed, dict(options))
        ad.info.setdefault("pairs", int(xm.shape[0]))
        ad.info.setdefault("seed", int(seed))
        return ad

    @abstractmethod
    def _fit(self, x: Array, y: Array, seed: int, options: dict[str, Any]) -> None:
        """Fit the parameters (``x``, ``y`` already checked, float64)."""

    # -- applying ---------------------------------------------------------------------

    def transform(self, vectors: object) -> Matrix:
        """Map rows of the source space into the target space (float32). One vector (1-D)
        is mapped as one row and returned 1-D, as a new array (the searcher's
        single-query path: one matrix-vector product into the returned vector, the
        normalisation in place; that row of a batch, up to float rounding). Raises
        ``AdapterPairMismatch`` for another width."""
        v = vectors if (isinstance(vectors, np.ndarray) and vectors.dtype == F32) \
            else np.asarray(vectors, dtype=F32)
        one = v.ndim == 1
        if one and v.shape[0] == self.source_dim:
            # the single-query path (the searcher's): one matrix-vector product and the
            # output vector is the only allocation; no 2-D detour, no temporary norms
            o = self._apply_one(v)
            if self.normalize:
                o *= F32(1.0 / max(float(np.sqrt(np.dot(o, o))), 1e-12))
            return o
        m = v[None, :] if one else v
        if m.ndim != 2 or m.shape[1] != self.source_dim:
            raise AdapterPairMismatch(
                f"the adapter maps {self.source_dim}-dimensional vectors, got shape "
                f"{v.shape}", v.shape, (self.source_dim, self.target_dim),
            )
        out = self._apply(m)
        if self.normalize:
            # in place, without np.linalg.norm's overhead (this is on the query path)
            norms = np.sqrt(np.einsum("ij,ij->i", out, out))
            np.maximum(norms, 1e-12, out=norms)
            out /= norms[:, None]
        res: Matrix = out if out.dtype == F32 else out.astype(F32)
        return res[0] if one else res

    @abstractmethod
    def _apply(self, m: Matrix) -> Matrix:
        """The raw map of a float32 ``(n, source_dim)`` matrix."""

    def _apply_one(self, v: Matrix) -> Matrix:
        """The raw map of one float32 ``(source_dim,)`` vector, as a NEW float32 array
        the caller may modify in place (kinds override this with a matrix-vector
        product; the default goes through :meth:`_apply`)."""
        out: Matrix = np.array(self._apply(v[None, :])[0], dtype=F32)
        return out

    # -- persistence ------------------------------------------------------------------

    @abstractmethod
    def _arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The fitted parameters by name."""

    @abstractmethod
    def _from_arrays(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        """Restore the parameters :meth:`_arrays` returned."""

    def to_bytes(self) -> bytes:
        """The adapter as an ``.npz`` archive (parameters + JSON header)."""
        header = {
            "format": FORMAT_VERSION, "kind": self.kind, "source_dim": self.source_dim,
            "target_dim": self.target_dim, "normalize": self.normalize, "info": self.info,
        }
        buf = io.BytesIO()
        arrays = self._arrays()
        arrays["__header__"] = np.frombuffer(
            json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.source_dim} -> {self.target_dim}, "
                f"{self.info})")


#: kind name -> adapter class; filled by the modules that define kinds
KINDS: dict[str, type[Adapter]] = {}


def register_kind(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: make ``cls`` available under ``cls.kind``."""
    KINDS[cls.kind] = cls
    return cls


def adapter_class(kind: str) -> type[Adapter]:
    """The class of adapter ``kind``; ``UnknownAdapterKind`` (listing the kinds) otherwise."""
    try:
        return KINDS[kind]
    except KeyError:
        raise UnknownAdapterKind(kind, sorted(KINDS)) from None


def load_adapter(data: bytes) -> Adapter:
    """An adapter from the bytes :meth:`Adapter.to_bytes` wrote. Raises ``InvalidInput``
    for bytes that are not such an archive, ``UnknownAdapterKind`` for a kind this
    version does not know."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(bytes(arrays.pop("__header__")).decode("utf-8"))
        kind = header["kind"]
        version = int(header["format"])
    except Exception as e:  # noqa: BLE001 - any decoding failure is the same error
        raise InvalidInput(f"not a stored adapter: {e}",
                           hint="refit it with `vecver adapter fit`") from None
    if version > FORMAT_VERSION:
        raise InvalidInput(f"stored adapter format {version} is newer than this vecver "
                           f"reads ({FORMAT_VERSION})", hint="upgrade vecver")
    cls = adapter_class(kind)
    ad = cls(header["source_dim"], header["target_dim"], normalize=header["normalize"],
             info=header.get("info"))
    ad._from_arrays(arrays)
    return ad
