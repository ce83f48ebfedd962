"""The adapter kinds (vecver.adapters): exact recovery of known maps, shapes across
dimensions, determinism, persistence, and the typed refusals of bad input."""

from __future__ import annotations

import numpy as np
import pytest

from vecver.adapters import KINDS, adapter_class, check_pairs, load_adapter
from vecver.adapters.base import split_validation
from vecver.errors import (
    AdapterPairMismatch,
    InvalidInput,
    NonFinitePairs,
    TooFewPairs,
    UnknownAdapterKind,
)


def orthonormal(rows: int, cols: int, seed: int) -> np.ndarray:
    """A rows x cols matrix with orthonormal rows (rows <= cols) or columns."""
    n = max(rows, cols)
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q[:rows, :cols]


def anisotropic(n: int, d: int, seed: int) -> np.ndarray:
    """Rows in a narrow cone far from the origin (like real embeddings)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * np.linspace(0.2, 2.0, d) + 3.0


@pytest.mark.parametrize("ds,dt", [(64, 64), (48, 96)])
def test_procrustes_recovers_a_rotation_with_offsets(ds: int, dt: int) -> None:
    """y = 0.7 * (x - mean) @ R + offset, R orthogonal (or an isometric embedding into
    more dimensions): centred Procrustes with its scale recovers it exactly."""
    x = anisotropic(500, ds, 1)
    r = orthonormal(ds, dt, 2)
    y = 0.7 * (x - x.mean(axis=0)) @ r + 1.5
    ad = adapter_class("procrustes").fit(x, y, normalize=False)
    np.testing.assert_allclose(ad.transform(x), y, atol=1e-4)
    assert ad.transform(x).shape == (500, dt)


def test_plain_procrustes_without_centering_fails_where_centering_succeeds() -> None:
    """The reason for centering: on offset (anisotropic) data the uncentred rotation
    cannot absorb the mean shift."""
    x = anisotropic(500, 32, 3)
    y = (x - x.mean(axis=0)) @ orthonormal(32, 32, 4) + 2.0
    plain = adapter_class("procrustes").fit(x, y, normalize=False, center=False)
    centred = adapter_class("procrustes").fit(x, y, normalize=False)
    err_plain = np.abs(plain.transform(x) - y).max()
    err_centred = np.abs(centred.transform(x) - y).max()
    assert err_centred < 1e-4 < 0.1 < err_plain


@pytest.mark.parametrize("ds,dt", [(96, 48), (48, 96), (64, 64)])
def test_lowrank_recovers_an_affine_map(ds: int, dt: int) -> None:
    """y = x @ A + b with a generic A (not orthogonal): ridge 0 at full rank is exact."""
    rng = np.random.default_rng(5)
    x = anisotropic(800, ds, 6)
    a = rng.standard_normal((ds, dt)) / np.sqrt(ds)
    b = rng.standard_normal(dt)
    y = x @ a + b
    ad = adapter_class("lowrank").fit(x, y, normalize=False, ridge=0.0,
                                      rank=min(ds, dt))
    np.testing.assert_allclose(ad.transform(x), y, atol=2e-3)


def test_lowrank_recovers_a_low_rank_map_and_fixes_the_rank() -> None:
    """A rank-8 map: with rank=8 the factors have 8 columns and the fit is exact."""
    rng = np.random.default_rng(7)
    x = anisotropic(600, 40, 8)
    a = rng.standard_normal((40, 8)) @ rng.standard_normal((8, 30))
    y = x @ a
    ad = adapter_class("lowrank").fit(x, y, normalize=False, ridge=0.0, rank=8)
    assert ad.b.shape == (40, 8) and ad.c is not None and ad.c.shape == (8, 30)
    np.testing.assert_allclose(ad.transform(x), y, rtol=1e-3, atol=1e-2)


def test_lowrank_chooses_ridge_and_rank_on_a_validation_split() -> None:
    """Without ridge= and rank=, both are chosen from the grids and the validation score
    is recorded; on a noiseless full-rank map the choice maps the pairs well."""
    x = anisotropic(400, 24, 9)
    y = x @ orthonormal(24, 24, 10)
    ad = adapter_class("lowrank").fit(x, y)
    assert ad.info["rank"] == 24
    assert ad.info["validation_cosine"] > 0.99


def test_diagonal_procrustes_fixes_unequal_spread() -> None:
    """Target dimensions scaled unequally after a rotation: the per-dimension rescaling
    fits it better than one global scale."""
    x = anisotropic(600, 16, 11)
    scale = np.linspace(0.2, 3.0, 16)
    y = ((x - x.mean(axis=0)) @ orthonormal(16, 16, 12)) * scale
    plain = adapter_class("procrustes").fit(x, y, normalize=False)
    diag = adapter_class("procrustes-diag").fit(x, y, normalize=False)
    assert np.abs(diag.transform(x) - y).mean() < 0.8 * np.abs(plain.transform(x) - y).mean()


def test_mlp_fits_a_nonlinear_map_better_than_procrustes() -> None:
    """y = tanh(x @ R): the residual MLP beats its own Procrustes start on held-out
    rows, and never ends below it on its validation split (early stopping)."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1200, 12))
    y = np.tanh(2.0 * x @ orthonormal(12, 12, 14))
    train, test = slice(0, 1000), slice(1000, 1200)
    pro = adapter_class("procrustes").fit(x[train], y[train], normalize=False)
    mlp = adapter_class("mlp").fit(x[train], y[train], normalize=False, hidden=64, epochs=60)
    err_pro = np.mean((pro.transform(x[test]) - y[test]) ** 2)
    err_mlp = np.mean((mlp.transform(x[test]) - y[test]) ** 2)
    assert err_mlp < 0.8 * err_pro
    assert mlp.info["best_epoch"] >= 1


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fit_is_deterministic_for_a_seed(kind: str) -> None:
    x = anisotropic(300, 20, 15)
    y = np.tanh(x @ orthonormal(20, 10, 16))
    opts = {"epochs": 5} if kind == "mlp" else {}
    a = adapter_class(kind).fit(x, y, seed=3, **opts)
    b = adapter_class(kind).fit(x, y, seed=3, **opts)
    assert a.to_bytes() == b.to_bytes()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_persistence_round_trip_transforms_bit_for_bit(kind: str) -> None:
    x = anisotropic(300, 20, 17)
    y = x @ orthonormal(20, 30, 18)
    opts = {"epochs": 5} if kind == "mlp" else {}
    ad = adapter_class(kind).fit(x, y, **opts)
    back = load_adapter(ad.to_bytes())
    assert type(back) is type(ad) and back.info == ad.info
    assert (back.source_dim, back.target_dim, back.normalize) == (20, 30, True)
    np.testing.assert_array_equal(back.transform(x), ad.transform(x))
    one = back.transform(x[0])
    assert one.shape == (30,) and abs(float(np.linalg.norm(one)) - 1.0) < 1e-5


def test_normalized_output_has_unit_rows() -> None:
    x = anisotropic(100, 8, 19)
    ad = adapter_class("procrustes").fit(x, x @ orthonormal(8, 8, 20))
    norms = np.linalg.norm(ad.transform(x), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert ad.transform(x).dtype == np.float32


# -- bad input ---------------------------------------------------------------------


def test_mismatched_pair_counts_are_refused() -> None:
    with pytest.raises(AdapterPairMismatch) as e:
        adapter_class("procrustes").fit(np.ones((10, 4)), np.ones((9, 4)))
    assert e.value.source_shape == (10, 4) and e.value.target_shape == (9, 4)


def test_vectors_that_are_not_matrices_are_refused() -> None:
    with pytest.raises(InvalidInput):
        check_pairs(np.ones(10), np.ones((10, 4)), "procrustes", 2)
    with pytest.raises(AdapterPairMismatch):
        check_pairs(np.ones((3, 0)), np.ones((3, 4)), "procrustes", 2)


def test_a_query_of_another_width_is_refused() -> None:
    x = anisotropic(50, 8, 21)
    ad = adapter_class("procrustes").fit(x, x)
    with pytest.raises(AdapterPairMismatch):
        ad.transform(np.ones((2, 9), dtype=np.float32))


@pytest.mark.parametrize("side", ["source", "target"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pairs_are_refused(side: str, bad: float) -> None:
    x = anisotropic(20, 4, 22)
    y = x.copy()
    (x if side == "source" else y)[7, 2] = bad
    with pytest.raises(NonFinitePairs) as e:
        adapter_class("procrustes").fit(x, y)
    assert (e.value.side, e.value.row) == (side, 7)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_too_few_pairs_for_the_kind(kind: str) -> None:
    need = adapter_class(kind).min_pairs
    x = anisotropic(need - 1, 4, 23)
    with pytest.raises(TooFewPairs) as e:
        adapter_class(kind).fit(x, x)
    assert (e.value.kind, e.value.got, e.value.need) == (kind, need - 1, need)


def test_unknown_kind_option_and_archive() -> None:
    with pytest.raises(UnknownAdapterKind) as e:
        adapter_class("rotation-forest")
    assert "procrustes" in e.value.known
    x = anisotropic(60, 4, 24)
    with pytest.raises(InvalidInput, match="takes no option"):
        adapter_class("procrustes").fit(x, x, rank=3)
    with pytest.raises(InvalidInput, match="rank"):
        adapter_class("lowrank").fit(x, x, rank=0)
    with pytest.raises(InvalidInput, match="not a stored adapter"):
        load_adapter(b"not an archive")


def test_validation_split_is_seeded_and_disjoint() -> None:
    tr, va = split_validation(100, 0.2, 5)
    tr2, va2 = split_validation(100, 0.2, 5)
    assert list(tr) == list(tr2) and list(va) == list(va2)
    assert len(va) == 20 and not set(tr) & set(va) and len(tr) + len(va) == 100
    assert list(split_validation(100, 0.2, 6)[1]) != list(va)


# -- the contrastive (retrieval-fitted) kind ------------------------------------------


def _retrieval_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets = a rotation with very unequal scales of the source, plus heavy noise: the
    best map is not orthogonal, so Procrustes (rotation + one scale) ranks worse."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1600, 16))
    a = orthonormal(16, 16, seed + 1) * np.linspace(0.05, 5.0, 16)
    return x, x @ a + 2.0 * rng.standard_normal((1600, 16))


def _top1(ad: object, x: np.ndarray, y: np.ndarray) -> float:
    """Share of held-out mapped rows whose nearest target (cosine) is their own."""
    z = ad.transform(x)  # type: ignore[attr-defined]
    t = y / np.linalg.norm(y, axis=1, keepdims=True)
    return float(np.mean((z @ t.T).argmax(axis=1) == np.arange(len(x))))


@pytest.mark.parametrize("seed", [0, 1])
def test_contrastive_ranks_better_than_procrustes_where_it_must(seed: int) -> None:
    """On held-out pairs, the retrieval-fitted map finds the right target more often
    than its own Procrustes start, and training did run (the chosen epoch is recorded
    and the validation loss fell)."""
    x, y = _retrieval_case(31)
    tr, te = slice(0, 1200), slice(1200, 1600)
    pro = adapter_class("procrustes").fit(x[tr], y[tr])
    con = adapter_class("contrastive").fit(x[tr], y[tr], seed=seed, lr=3e-3)
    assert _top1(con, x[te], y[te]) > _top1(pro, x[te], y[te]) + 0.03
    assert con.info["best_epoch"] >= 1 and con.info["refit"] is True
    assert con.info["validation_loss"] < con.info["validation_loss_start"]


def test_contrastive_keeps_an_exact_rotation() -> None:
    """Where Procrustes is already exact (a noiseless rotation), the refinement does not
    move away from it: held-out rows still map onto their targets."""
    x = anisotropic(600, 12, 40)
    y = (x - x.mean(axis=0)) @ orthonormal(12, 12, 41)
    con = adapter_class("contrastive").fit(x[:500], y[:500], seed=0)
    t = y[500:] / np.linalg.norm(y[500:], axis=1, keepdims=True)
    cos = np.sum(con.transform(x[500:]) * t, axis=1)
    assert float(cos.min()) > 0.999


def test_contrastive_is_seeded_and_cross_dimensional() -> None:
    """Another seed draws another split and batch order (another map); the same seed the
    same bytes; 48 -> 24 and 24 -> 48 shapes."""
    x, y = _retrieval_case(5)
    a = adapter_class("contrastive").fit(x[:400], y[:400], seed=1, epochs=3)
    b = adapter_class("contrastive").fit(x[:400], y[:400], seed=1, epochs=3)
    c = adapter_class("contrastive").fit(x[:400], y[:400], seed=2, epochs=3)
    assert a.to_bytes() == b.to_bytes() != c.to_bytes()
    wide = np.hstack([x, x[:, ::-1] * 0.5, x ** 2])[:, :48]
    down = adapter_class("contrastive").fit(wide[:400], y[:400, :12], epochs=2)
    up = adapter_class("contrastive").fit(y[:400, :12], wide[:400], epochs=2)
    assert down.transform(wide[:3]).shape == (3, 12)
    assert up.transform(y[:3, :12]).shape == (3, 48)


@pytest.mark.parametrize("opt", [{"tau": 0}, {"lr": -1.0}, {"batch": 1}, {"epochs": -1},
                                 {"validation": 1.0}, {"center": "yes"}, {"refit": 1},
                                 {"weight_decay": float("nan")}, {"temperature": 0.1}])
def test_contrastive_bad_options_are_typed_errors(opt: dict[str, object]) -> None:
    x = anisotropic(60, 4, 42)
    with pytest.raises(InvalidInput):
        adapter_class("contrastive").fit(x, x, **opt)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("ds,dt", [(20, 30), (30, 20)])
def test_one_vector_maps_as_its_row_in_a_batch(kind: str, ds: int, dt: int) -> None:
    """The single-query fast path gives what the batched path gives for that row."""
    x = anisotropic(300, ds, 43)
    y = np.tanh(x @ orthonormal(ds, dt, 44))
    opts = {"epochs": 3} if kind in ("mlp", "contrastive") else {}
    ad = adapter_class(kind).fit(x, y, **opts)
    batch = ad.transform(x[:5])
    for i in range(5):
        one = ad.transform(np.ascontiguousarray(x[i], dtype=np.float32))
        assert one.shape == (dt,) and one.dtype == np.float32
        np.testing.assert_allclose(one, batch[i], rtol=1e-5, atol=1e-6)
    raw = adapter_class(kind).fit(x, y, normalize=False, **opts)
    np.testing.assert_allclose(raw.transform(x[0]), raw.transform(x[:1])[0], rtol=1e-5,
                               atol=1e-5)
