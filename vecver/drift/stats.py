"""The drift statistics, in numpy alone: two-sample MMD with a permutation p-value, and
the relative shift of the mean and of k-means centroids.

Every function here is pure: it takes two samples (rows are vectors) and returns a
frozen result; randomness comes from an explicit ``seed`` only, so the same inputs give
the same result. Samples are checked (:func:`check_sample`): an empty sample, NaN or
infinity, or two samples of different widths is a typed :class:`~vecver.errors.
InvalidInput` subclass before any work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DriftSampleInvalid

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: how many rows of each sample the MMD uses at most (larger samples are subsampled)
DEFAULT_MAX_SAMPLES = 2000
#: permutations of the MMD's p-value
DEFAULT_PERMUTATIONS = 500
#: rows of the pooled sample the median heuristic looks at
_BANDWIDTH_ROWS = 1000


def check_sample(x: object, what: str, dimension: int | None = None) -> F32:
    """``x`` as a float32 matrix (n x d) after checking it: a 2-D array of at least one
    row and column (one vector of d is taken as 1 x d), finite everywhere, and ``d ==
    dimension`` when given. Raises :class:`~vecver.errors.DriftSampleInvalid` (which
    names ``what``) otherwise."""
    try:
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise DriftSampleInvalid(what, f"not a numeric matrix ({e})") from None
    if a.ndim == 1 and a.size:
        a = a[None, :]
    if a.ndim != 2:
        raise DriftSampleInvalid(what, f"expected a matrix of vectors, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DriftSampleInvalid(what, f"it is empty (shape {a.shape})")
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=1).sum())
        raise DriftSampleInvalid(what, f"{bad} vector(s) hold NaN or infinity")
    if dimension is not None and a.shape[1] != dimension:
        raise DriftSampleInvalid(
            what, f"vectors have dimension {a.shape[1]}, expected {dimension}")
    return a


def _pair(x: object, y: object) -> tuple[F32, F32]:
    a = check_sample(x, "reference sample")
    b = check_sample(y, "recent sample", a.shape[1])
    return a, b


def subsample(x: F32, n: int, rng: np.random.Generator) -> F32:
    """At most ``n`` rows of ``x``, drawn without replacement (all of them, in order,
    when it has no more)."""
    if x.shape[0] <= n:
        return x
    idx = np.sort(rng.choice(x.shape[0], size=n, replace=False))
    return x[idx]


def _sq_dists(a: F32, b: F32) -> F32:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    out: F32 = np.maximum(d, 0.0).astype(np.float32, copy=False)
    return out


def median_bandwidth(z: F32, rng: np.random.Generator | None = None) -> float:
    """The median heuristic: the median Euclidean distance between distinct rows of
    ``z`` (at most 1,000 rows, drawn with ``rng``). Returns 1.0 when every row is the
    same (no scale to take), so the kernel stays defined."""
    if z.shape[0] > _BANDWIDTH_ROWS:
        z = subsample(z, _BANDWIDTH_ROWS, rng or np.random.default_rng(0))
    d2 = _sq_dists(z, z)
    iu = np.triu_indices(z.shape[0], k=1)
    vals = d2[iu]
    if vals.size == 0:
        return 1.0
    med = float(np.median(vals))
    return math.sqrt(med) if med > 0 else 1.0


def _split_statistic(k: F32, n: int, m: int) -> Callable[[F32], F64]:
    """For a symmetric pooled matrix ``k`` (zero diagonal; the first ``n`` rows one
    sample, the other ``m`` the other), the function mapping split indicators ``u``
    (rows of 0/1; 1 marks the first sample's side) to the unbiased two-sample statistic
    ``S_xx / n(n-1) + S_yy / m(m-1) - 2 S_xy / nm`` of each split (the MMD^2 for a kernel
    matrix; minus the energy distance for a distance matrix)."""
    rows = k.sum(axis=1, dtype=np.float64)
    total = float(rows.sum())
    rows32 = rows.astype(np.float32)[None, :]

    def split_stats(u: F32) -> F64:
        ku = u @ k  # for each split, each row's sum over the first side
        sxx = (ku * u).sum(axis=1, dtype=np.float64)
        syy = ((1.0 - u) * (rows32 - ku)).sum(axis=1, dtype=np.float64)
        sxy = (total - sxx - syy) / 2.0
        out: F64 = (sxx / max(n * (n - 1), 1) + syy / max(m * (m - 1), 1)
                    - 2.0 * sxy / (n * m))
        return out

    return split_stats


def _random_splits(rng: np.random.Generator, p: int, n: int, nn: int) -> F32:
    """``p`` random splits of ``nn`` pooled rows, ``n`` of them on the first side."""
    order = np.argsort(rng.random((p, nn)), axis=1)
    u = np.zeros((p, nn), dtype=np.float32)
    np.put_along_axis(u, order[:, :n], 1.0, axis=1)
    return u


def _permutation_test(k: F32, n: int, m: int, permutations: int, block: int,
                      rng: np.random.Generator) -> tuple[float, int]:
    """(observed statistic, permutations whose statistic reaches it)."""
    stats = _split_statistic(k, n, m)
    u0 = np.zeros((1, n + m), dtype=np.float32)
    u0[0, :n] = 1.0
    observed = float(stats(u0)[0])
    tol = 1e-9 * max(1.0, abs(observed))
    exceed = 0
    done = 0
    while done < permutations:
        p = min(block, permutations - done)
        exceed += int((stats(_random_splits(rng, p, n, n + m)) >= observed - tol).sum())
        done += p
    return observed, exceed


@dataclass(frozen=True)
class MMDResult:
    """A two-sample MMD test.

    ``mmd2``: the unbiased estimate of the squared MMD (RBF kernel ``exp(-|x-y|^2 /
    (2 bandwidth^2))``; may be slightly negative when the samples agree);
    ``p_value``: the permutation p-value ``(1 + #{permuted >= observed}) / (1 +
    permutations)``, so never 0; ``n_reference``/``n_recent``: the rows used after
    subsampling."""

    mmd2: float
    p_value: float
    bandwidth: float
    permutations: int
    n_reference: int
    n_recent: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mmd_test(
    x: object,
    y: object,
    *,
    permutations: int = DEFAULT_PERMUTATIONS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    bandwidth: float | None = None,
    seed: int = 0,
    block: int = 256,
) -> MMDResult:
    """Maximum mean discrepancy between samples ``x`` (reference) and ``y`` (recent),
    with an RBF kernel whose bandwidth is the median heuristic on the pooled sample
    (unless ``bandwidth`` is given), and a permutation p-value.

    Each sample is subsampled to at most ``max_samples`` rows; the permutations are
    evaluated together (one kernel matrix, one matrix product per ``block`` of
    permutations), so the cost is O(N^2 d + N^2 P) for N pooled rows and P
    permutations, independent of the sizes of the inputs beyond ``max_samples``.
    Deterministic for a given ``seed``. Under the null (same distribution) the p-value
    is uniform on its grid, so ``p <= alpha`` happens with probability at most alpha.

    Raises ``DriftSampleInvalid`` for an empty sample, NaN/infinity or mismatched widths,
    and ``InvalidArgument`` for a non-positive ``permutations``/``max_samples`` (a sample
    of one row is allowed but has no power)."""
    from ..errors import InvalidArgument

    for name, v in (("permutations", permutations), ("max_samples", max_samples),
                    ("block", block)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidArgument(name, v, "a positive integer")
    if bandwidth is not None and not (isinstance(bandwidth, (int, float))
                                      and math.isfinite(bandwidth) and bandwidth > 0):
        raise InvalidArgument("bandwidth", bandwidth, "a positive number")
    a, b = _pair(x, y)
    rng = np.random.default_rng(seed)
    a = subsample(a, max_samples, rng)
    b = subsample(b, max_samples, rng)
    n, m = a.shape[0], b.shape[0]
    z = np.concatenate([a, b]).astype(np.float32, copy=False)
    # centre the pool: distances are unchanged, float32 cancellation much smaller
    z = z - z.mean(axis=0, keepdims=True)
    bw = float(bandwidth) if bandwidth is not None else median_bandwidth(z, rng)
    k = _sq_dists(z, z)
    k *= np.float32(-1.0 / (2.0 * bw * bw))
    np.exp(k, out=k)
    np.fill_diagonal(k, 0.0)  # off-diagonal sums only (the unbiased statistic)
    observed, exceed = _permutation_test(k, n, m, permutations, block, rng)
    return MMDResult(
        mmd2=observed,
        p_value=(1 + exceed) / (1 + permutations),
        bandwidth=bw,
        permutations=permutations,
        n_reference=n,
        n_recent=m,
        seed=seed,
    )


# -- centroid drift -------------------------------------------------------------------


def kmeans(
    x: F32, k: int, *, seed: int = 0, iterations: int = 25, init: F32 | None = None
) -> tuple[F32, npt.NDArray[np.int64]]:
    """Lloyd's k-means of the rows of ``x`` into at most ``k`` clusters (k-means++ seeding
    with ``seed``, or the given ``init`` centroids); returns (centroids, labels). An
    emptied cluster keeps its previous centroid. Deterministic for a seed."""
    x64 = x.astype(np.float64)
    n = x64.shape[0]
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    if init is not None:
        c = np.array(init, dtype=np.float64)
        k = c.shape[0]
    else:
        c = np.empty((k, x64.shape[1]))
        c[0] = x64[rng.integers(n)]
        d2 = ((x64 - c[0]) ** 2).sum(1)
        for j in range(1, k):
            tot = d2.sum()
            i = int(rng.choice(n, p=d2 / tot)) if tot > 0 else int(rng.integers(n))
            c[j] = x64[i]
            d2 = np.minimum(d2, ((x64 - c[j]) ** 2).sum(1))
    labels = np.zeros(n, dtype=np.int64)
    xx = (x64 * x64).sum(1)
    for it in range(iterations):
        d = xx[:, None] - 2.0 * (x64 @ c.T) + (c * c).sum(1)[None, :]
        new = d.argmin(axis=1)
        if it and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            sel = labels == j
            if sel.any():
                c[j] = x64[sel].mean(axis=0)
    return c.astype(np.float32), labels


def assignment(cost: F64) -> npt.NDArray[np.int64]:
    """The minimum-cost perfect matching of a square cost matrix (Hungarian algorithm,
    O(k^3)): ``out[i]`` is the column matched to row ``i``."""
    n = cost.shape[0]
    inf = float("inf")
    u = [0.0] * (n + 1)
    v = [0.0] * (n + 1)
    p = [0] * (n + 1)
    way = [0] * (n + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [inf] * (n + 1)
        used = [False] * (n + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            for j in range(1, n + 1):
                if not used[j]:
                    cur = float(cost[i0 - 1, j - 1]) - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(n + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    out = np.zeros(n, dtype=np.int64)
    for j in range(1, n + 1):
        if p[j]:
            out[p[j] - 1] = j - 1
    return out


@dataclass(frozen=True)
class CentroidResult:
    """How far the recent sample's mean and k-means centroids moved from the reference's.

    Shifts are relative to ``spread``, the reference's RMS distance from its mean, and
    net of sampling noise: the squared distance two sample means of one distribution
    would lie apart, plus 3 sd of it, is subtracted before the square root (see
    ``_debiased``), so two samples of one distribution give 0 rather than about
    ``sqrt(1/n + 1/m)``, and a real shift is slightly understated on small samples.

    - ``mean_shift``: of the overall mean (``raw_mean_shift``: before the correction);
    - ``centroid_shift``: of the ``k`` centroids fitted on the reference (the IVF cells):
      each cell's mean over the recent vectors it now holds against its mean over the
      reference vectors, weighted by the reference's cell sizes (what one retraining step
      of the centroids would move them by); ``max_centroid_shift``: the largest;
    - ``refit_shift``: k-means refitted on the recent sample (started from the reference
      centroids) and matched one to one by minimum total distance; informational, since
      on weakly clustered data k-means itself moves that much between two samples;
    - ``occupancy_change``: total variation distance between the two samples' cell
      occupancies (how unevenly IVF lists would now fill)."""

    mean_shift: float
    raw_mean_shift: float
    centroid_shift: float
    max_centroid_shift: float
    refit_shift: float
    occupancy_change: float
    spread: float
    k: int
    n_reference: int
    n_recent: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: standard deviations of sampling noise a shift must exceed to count (see _debiased)
NOISE_Z = 3.0


def _debiased(delta2: float, noise2: float, d_eff: float) -> float:
    """The part of a distance between two sample means that sampling noise does not
    explain. Under no shift, ``delta2`` is about ``noise2 * chi2(d_eff) / d_eff``
    (``d_eff``: the effective dimension of the noise), whose sd is ``noise2 *
    sqrt(2 / d_eff)``; what exceeds its mean by :data:`NOISE_Z` sd is kept."""
    bound = noise2 * (1.0 + NOISE_Z * math.sqrt(2.0 / max(d_eff, 1.0)))
    return math.sqrt(max(0.0, delta2 - bound))


def effective_dimension(v: F64) -> float:
    """``tr(S)^2 / tr(S^2)`` of the covariance S of the rows of ``v`` (at most 2,000
    rows are used): how many dimensions the variance really spreads over."""
    c = v[:2000] - v[:2000].mean(0)
    cov = (c.T @ c) / max(c.shape[0] - 1, 1)
    tr, tr2 = float(np.trace(cov)), float((cov * cov).sum())
    return tr * tr / tr2 if tr2 > 0 else 1.0


def _cell_stats(v: F64, labels: npt.NDArray[np.int64], k: int
                ) -> tuple[F64, F64, npt.NDArray[np.int64]]:
    """Per cell: the mean, the mean squared distance to it, the count."""
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros((k, v.shape[1]))
    np.add.at(sums, labels, v)
    means = sums / np.maximum(counts, 1)[:, None]
    within = np.zeros(k)
    np.add.at(within, labels, ((v - means[labels]) ** 2).sum(1))
    return means, within / np.maximum(counts, 1), counts


def _nearest(v: F64, c: F64) -> npt.NDArray[np.int64]:
    d = (v * v).sum(1)[:, None] - 2.0 * (v @ c.T) + (c * c).sum(1)[None, :]
    out: npt.NDArray[np.int64] = d.argmin(axis=1)
    return out


def centroid_drift(
    x: object, y: object, *, k: int = 8, seed: int = 0, max_samples: int = 5000
) -> CentroidResult:
    """Relative drift of the mean and of ``k`` k-means centroids from ``x`` (reference)
    to ``y`` (recent); see :class:`CentroidResult` for what each figure means.
    Deterministic for a ``seed``. Raises ``DriftSampleInvalid`` for an empty sample,
    NaN/infinity or mismatched widths; ``InvalidArgument`` for ``k < 1``."""
    from ..errors import InvalidArgument

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidArgument("k", k, "a positive integer")
    a, b = _pair(x, y)
    rng = np.random.default_rng(seed)
    a64 = subsample(a, max_samples, rng).astype(np.float64)
    b64 = subsample(b, max_samples, rng).astype(np.float64)
    n, m = a64.shape[0], b64.shape[0]
    mu_a, mu_b = a64.mean(0), b64.mean(0)
    var_a = float(((a64 - mu_a) ** 2).sum(1).mean())
    var_b = float(((b64 - mu_b) ** 2).sum(1).mean())
    spread = math.sqrt(var_a) if var_a > 0 else 1.0
    d2 = float(((mu_b - mu_a) ** 2).sum())
    # E|mean_a - mean_b|^2 under the null: tr(S_a)/n + tr(S_b)/m
    noise2 = var_a / max(n - 1, 1) + var_b / max(m - 1, 1)
    d_eff = effective_dimension(a64)
    kk = max(1, min(k, n))
    ca, _ = kmeans(a64.astype(np.float32), kk, seed=seed)
    c64 = ca.astype(np.float64)
    la, lb = _nearest(a64, c64), _nearest(b64, c64)
    ma, wa, na = _cell_stats(a64, la, kk)
    mb, wb, nb = _cell_stats(b64, lb, kk)
    shifts, weights = [], []
    for j in range(kk):
        if na[j] == 0 or nb[j] == 0:
            continue
        nz = wa[j] / max(int(na[j]) - 1, 1) + wb[j] / max(int(nb[j]) - 1, 1)
        shifts.append(_debiased(float(((ma[j] - mb[j]) ** 2).sum()), nz, d_eff) / spread)
        weights.append(int(na[j]))
    if shifts:
        w = np.asarray(weights, dtype=np.float64)
        cshift = float((np.asarray(shifts) * w).sum() / w.sum())
        cmax = float(max(shifts))
    else:
        cshift = cmax = 0.0
    refit_shift = 0.0
    if m >= kk:
        cb, _ = kmeans(b64.astype(np.float32), kk, seed=seed, init=ca)
        cost = ((c64[:, None, :] - cb.astype(np.float64)[None, :, :]) ** 2).sum(-1)
        match = assignment(cost)
        refit_shift = float(np.sqrt(cost[np.arange(kk), match]).mean() / spread)
    return CentroidResult(
        mean_shift=_debiased(d2, noise2, d_eff) / spread,
        raw_mean_shift=math.sqrt(d2) / spread,
        centroid_shift=cshift,
        max_centroid_shift=cmax,
        refit_shift=refit_shift,
        occupancy_change=float(0.5 * np.abs(na / n - nb / m).sum()),
        spread=spread,
        k=kk,
        n_reference=n,
        n_recent=m,
    )


# -- whole-distribution shift ---------------------------------------------------------

#: permutations of the energy shift's noise floor
ENERGY_PERMUTATIONS = 100


@dataclass(frozen=True)
class EnergyResult:
    """How far the recent sample moved from the reference *as a whole* (energy distance).

    The energy distance ``D = 2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (unbiased: distinct pairs
    only) is zero exactly when the two distributions are equal, and grows with any move:
    of the mean, but also of the mixture weights (a topic taking over the window, which
    leaves every k-means cell where it was) or of the spread. ``shift`` is
    ``sqrt(2 D / E|X-X'|)`` net of sampling noise: for a small translation of the whole
    distribution it is about the relative mean shift (the translation over the RMS
    distance from the mean, :class:`CentroidResult` ``mean_shift``), so one threshold
    reads both; ``raw_shift`` is it before the noise is taken off. Noise: the
    statistic's mean plus :data:`NOISE_Z` standard deviations over ``permutations``
    random splits of the pooled sample is subtracted from ``D`` first, so two samples of
    one distribution give 0. ``p_value``: the permutation p-value of ``D``."""

    shift: float
    raw_shift: float
    energy: float
    noise: float
    mean_distance: float
    p_value: float
    permutations: int
    n_reference: int
    n_recent: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def energy_shift(
    x: object, y: object, *, permutations: int = ENERGY_PERMUTATIONS,
    max_samples: int = DEFAULT_MAX_SAMPLES, seed: int = 0, block: int = 50,
) -> EnergyResult:
    """The whole-distribution shift of ``y`` (recent) from ``x`` (reference); see
    :class:`EnergyResult`. Each sample is subsampled to at most ``max_samples`` rows;
    the cost is that of one pooled distance matrix and ``permutations`` matrix products,
    like :func:`mmd_test`. Deterministic for a ``seed``. Raises ``DriftSampleInvalid``
    for an empty sample, NaN/infinity or mismatched widths; ``InvalidArgument`` for a
    non-positive ``permutations``/``max_samples``."""
    from ..errors import InvalidArgument

    for name, v in (("permutations", permutations), ("max_samples", max_samples),
                    ("block", block)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidArgument(name, v, "a positive integer")
    a, b = _pair(x, y)
    rng = np.random.default_rng(seed)
    a = subsample(a, max_samples, rng)
    b = subsample(b, max_samples, rng)
    n, m = a.shape[0], b.shape[0]
    z = np.concatenate([a, b]).astype(np.float32, copy=False)
    z = z - z.mean(axis=0, keepdims=True)
    dist = _sq_dists(z, z)
    np.sqrt(dist, out=dist)
    np.fill_diagonal(dist, 0.0)
    stats = _split_statistic(dist, n, m)
    u0 = np.zeros((1, n + m), dtype=np.float32)
    u0[0, :n] = 1.0
    energy = -float(stats(u0)[0])  # the statistic is E_xx + E_yy - 2 E_xy = -D
    null: list[F64] = []
    done = 0
    while done < permutations:
        p = min(block, permutations - done)
        null.append(-stats(_random_splits(rng, p, n, n + m)))
        done += p
    perm = np.concatenate(null)
    noise = float(perm.mean() + NOISE_Z * perm.std())
    tol = 1e-9 * max(1.0, abs(energy))
    p_value = (1 + int((perm >= energy - tol).sum())) / (1 + permutations)
    exx = float(dist[:n, :n].sum(dtype=np.float64)) / max(n * (n - 1), 1)
    scale = exx if exx > 0 else 1.0
    return EnergyResult(
        shift=math.sqrt(2.0 * max(0.0, energy - max(noise, 0.0)) / scale),
        raw_shift=math.sqrt(2.0 * max(0.0, energy) / scale),
        energy=energy,
        noise=noise,
        mean_distance=exx,
        p_value=p_value,
        permutations=permutations,
        n_reference=n,
        n_recent=m,
    )
