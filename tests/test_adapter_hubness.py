"""The document-side hubness prior (vecver.adapters.hubness): what it computes, that it
demotes a hub, determinism, block independence, and the typed refusals of bad input."""

from __future__ import annotations

import numpy as np
import pytest

import vecver.adapters.hubness as hubness
from vecver.adapters import adapter_class
from vecver.adapters.hubness import doc_prior, rerank
from vecver.errors import InvalidInput


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def test_prior_is_the_log_sum_exp_of_similarities() -> None:
    rng = np.random.default_rng(0)
    s = unit(rng.standard_normal((40, 6)))
    d = unit(rng.standard_normal((7, 6)))
    got = doc_prior(s, d, sharpness=8.0)
    want = np.log(np.exp(8.0 * (s @ d.T)).sum(axis=0)) / 8.0
    assert got.dtype == np.float32 and got.shape == (7,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_a_high_sharpness_tends_to_the_nearest_source() -> None:
    rng = np.random.default_rng(1)
    s = unit(rng.standard_normal((30, 5)))
    d = unit(rng.standard_normal((4, 5)))
    got = doc_prior(s, d, sharpness=1e4)
    np.testing.assert_allclose(got, (s @ d.T).max(axis=0), atol=1e-3)


def test_blocks_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    s = unit(rng.standard_normal((50, 8)))
    d = unit(rng.standard_normal((23, 8)))
    whole = doc_prior(s, d)
    monkeypatch.setattr(hubness, "BLOCK", 5)
    np.testing.assert_array_equal(doc_prior(s, d), whole)
    np.testing.assert_array_equal(doc_prior(s, d), doc_prior(s.copy(), d.copy()))


def test_the_prior_demotes_a_hub() -> None:
    """A document close to every mapped query (a hub) outranks the right document on raw
    similarity; with the prior the right document comes first."""
    rng = np.random.default_rng(3)
    dim = 16
    center = unit(rng.standard_normal(dim))
    topics = unit(rng.standard_normal((20, dim)))
    # queries: their topic plus a shared offset toward the hub's direction
    sources = unit(topics[rng.integers(0, 20, 400)] + 1.5 * center
                   + 0.05 * rng.standard_normal((400, dim)))
    docs = np.vstack([topics, center[None, :]])  # rows 0..19 topics, row 20 the hub
    query = unit(topics[7] + 1.5 * center)
    raw = docs @ query
    assert int(np.argmax(raw)) == 20
    prior = doc_prior(sources, docs, sharpness=20.0)
    assert int(np.argmax(prior)) == 20
    assert int(rerank(raw, prior, 0.0, 1)[0]) == 20
    assert int(rerank(raw, prior, 1.0, 1)[0]) == 7


def test_rerank_orders_by_adjusted_score_and_keeps_ties_in_order() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.8], [0.1, 0.2, 0.3, 0.4]])
    priors = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(rerank(scores, priors, 0.0, 4)[0], [0, 1, 3, 2])
    np.testing.assert_array_equal(rerank(scores, priors, 0.5, 2), [[1, 3], [3, 2]])
    np.testing.assert_array_equal(rerank(scores[0], priors[0], 0.5, 1), [1])


def test_with_a_fitted_adapter_end_to_end() -> None:
    """The route's use: priors from an adapter's mapped training sources over stored
    vectors, then a rerank of a query's candidates: shapes, and beta 0 is the raw
    order."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 12))
    y = x @ np.linalg.qr(rng.standard_normal((12, 12)))[0] + 0.1 * rng.standard_normal((300, 12))
    ad = adapter_class("procrustes").fit(x, y)
    stored = unit(rng.standard_normal((60, 12))).astype(np.float32)
    prior = doc_prior(ad.transform(x), stored)
    z = ad.transform(x[:3])
    s = z @ stored.T
    np.testing.assert_array_equal(rerank(s, np.broadcast_to(prior, s.shape), 0.0, 5),
                                  np.argsort(-s, axis=1, kind="stable")[:, :5])


@pytest.mark.parametrize("sources,docs", [
    (np.ones(5), np.ones((3, 5))),                      # not a matrix
    (np.ones((4, 5)), np.ones((3, 6))),                 # widths differ
    (np.ones((0, 5)), np.ones((3, 5))),                 # no sources
    (np.ones((4, 5)), np.full((3, 5), np.nan)),         # NaN
    (np.full((4, 5), np.inf), np.ones((3, 5))),         # infinity
])
def test_bad_prior_input_is_a_typed_error(sources: np.ndarray, docs: np.ndarray) -> None:
    with pytest.raises(InvalidInput):
        doc_prior(sources, docs)


@pytest.mark.parametrize("sharpness", [0, -1.0, float("nan"), float("inf"), True, "20"])
def test_bad_sharpness_is_a_typed_error(sharpness: object) -> None:
    with pytest.raises(InvalidInput, match="sharpness"):
        doc_prior(np.ones((2, 3)), np.ones((2, 3)), sharpness=sharpness)  # type: ignore[arg-type]


@pytest.mark.parametrize("scores,priors,beta,k", [
    (np.ones(3), np.ones(4), 0.1, 2),
    (np.ones((2, 2, 2)), np.ones((2, 2, 2)), 0.1, 2),
    (np.array([1.0, np.nan]), np.ones(2), 0.1, 1),
    (np.ones(3), np.ones(3), -0.1, 2),
    (np.ones(3), np.ones(3), float("nan"), 2),
    (np.ones(3), np.ones(3), 0.1, 0),
    (np.ones(3), np.ones(3), 0.1, True),
])
def test_bad_rerank_input_is_a_typed_error(scores: np.ndarray, priors: np.ndarray,
                                           beta: float, k: int) -> None:
    with pytest.raises(InvalidInput):
        rerank(scores, priors, beta, k)
