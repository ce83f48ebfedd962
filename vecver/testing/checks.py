"""Assertions shared by the compliance suite, the model-based test and congruence tests.

Each ``assert_*`` raises ``AssertionError`` with a message that says what differed; they
compare with the reference semantics of vecver (:func:`vecver.backends.base.exact_scores`,
:meth:`vecver.filters.Filter.matches`), never with another backend's quirks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backends.base import Backend, exact_scores
from ..filters import Filter
from ..types import Hit, Matrix, Metric, Record, Stamp

__all__ = [
    "VECTOR_ATOL",
    "SCORE_TOL",
    "STAMP_TIME_TOL",
    "score_close",
    "direction",
    "assert_vector_equal",
    "assert_metadata_equal",
    "assert_stamp_equal",
    "assert_record_equal",
    "reference_search",
    "assert_hits_match_reference",
    "assert_hits_carry_payload",
    "scan_all",
]

#: Largest difference allowed between a stored vector and the one written (per component).
VECTOR_ATOL = 1e-5
#: Largest difference allowed between a backend's score and the exact score
#: (absolute, scaled by ``max(1, |score|)`` for large dot/l2 scores).
SCORE_TOL = 1e-4
#: Largest difference allowed on ``Stamp.written_at`` (seconds).
STAMP_TIME_TOL = 1e-3
# two exact scores this close are a tie: either order is correct
_TIE_TOL = 1e-6


def score_close(got: float, expected: float, tol: float = SCORE_TOL) -> bool:
    """True when a backend's score is ``expected`` within ``tol`` (relative above 1)."""
    return abs(got - expected) <= tol * max(1.0, abs(expected))


def direction(v: Matrix) -> Matrix:
    """``v`` scaled to unit length (rows, when 2-d)."""
    a = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    return np.asarray(a / np.maximum(n, 1e-12), dtype=np.float32)


def assert_vector_equal(metric: Metric, got: object, expected: object, where: str = "") -> None:
    """``got`` equals ``expected`` within :data:`VECTOR_ATOL`; for ``cosine`` the directions
    are compared (a backend may store normalized vectors)."""
    g = np.asarray(got, dtype=np.float32)
    e = np.asarray(expected, dtype=np.float32)
    assert g.shape == e.shape, f"{where}: vector has shape {g.shape}, expected {e.shape}"
    if metric == "cosine":
        g, e = direction(g), direction(e)
    diff = float(np.max(np.abs(g - e))) if g.size else 0.0
    assert diff <= VECTOR_ATOL, (
        f"{where}: stored vector differs from the written one by {diff:.3g} "
        f"(> {VECTOR_ATOL}; metric {metric}{', directions compared' if metric == 'cosine' else ''})"
    )


def _kind(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    return type(v).__name__


def _strict_equal(a: object, b: object) -> bool:
    """JSON equality that tells bool, int, float and str apart, also inside lists and
    objects."""
    if _kind(a) != _kind(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def assert_metadata_equal(got: Mapping[str, Any], expected: Mapping[str, Any], where: str) -> None:
    """Same keys, equal values of the same JSON type (``True`` is not ``1``, ``2`` is not
    ``2.0``, ``"1"`` is not ``1``), also inside lists and objects."""
    assert isinstance(got, Mapping), f"{where}: metadata is a {type(got).__name__}, not a dict"
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, (
        f"{where}: metadata keys differ: missing {missing}, unexpected {extra} "
        f"(got {dict(got)!r}, expected {dict(expected)!r})"
    )
    for key, ev in expected.items():
        gv = got[key]
        assert _strict_equal(gv, ev), (
            f"{where}: metadata[{key!r}] is {gv!r} ({_kind(gv)}), expected {ev!r} ({_kind(ev)})"
        )


def assert_stamp_equal(got: Stamp | None, expected: Stamp, where: str) -> None:
    """Fingerprint, document id and source hash exact; ``written_at`` within
    :data:`STAMP_TIME_TOL` seconds."""
    assert isinstance(got, Stamp), f"{where}: stamp is {got!r}, expected a Stamp"
    for name in ("fingerprint", "doc_id", "source_hash"):
        assert getattr(got, name) == getattr(expected, name), (
            f"{where}: stamp.{name} is {getattr(got, name)!r}, expected {getattr(expected, name)!r}"
        )
    assert abs(float(got.written_at) - expected.written_at) <= STAMP_TIME_TOL, (
        f"{where}: stamp.written_at is {got.written_at!r}, expected {expected.written_at!r}"
    )


def assert_record_equal(
    metric: Metric, got: Record, expected: Record, *, with_vector: bool, where: str = ""
) -> None:
    """Id, text, metadata and stamp equal; the vector too when ``with_vector``."""
    where = where or f"record {expected.id!r}"
    assert isinstance(got, Record), f"{where}: got a {type(got).__name__}, not a Record"
    assert got.id == expected.id, f"{where}: id is {got.id!r}, expected {expected.id!r}"
    assert got.text == expected.text, f"{where}: text is {got.text!r}, expected {expected.text!r}"
    assert_metadata_equal(got.metadata, expected.metadata, where)
    assert_stamp_equal(got.stamp, expected.stamp, where)
    if with_vector:
        assert got.vector is not None, f"{where}: vector is None although with_vectors=True"
        assert_vector_equal(metric, got.vector, expected.vector, where)


def reference_search(
    metric: Metric,
    queries: Matrix,
    records: Sequence[Record],
    k: int,
    filter: Filter | None = None,
) -> list[list[tuple[str, float]]]:
    """Exact top-``k`` ``(id, score)`` per query over the records ``filter`` matches, best
    first, ties broken by id (the reference backend's order)."""
    live = [r for r in records if not filter or filter.matches(r.metadata)]
    q = np.asarray(queries, dtype=np.float32)
    if not live:
        return [[] for _ in range(q.shape[0])]
    mat = np.stack([np.asarray(r.vector, dtype=np.float32) for r in live])
    scores = exact_scores(metric, q, mat)
    out: list[list[tuple[str, float]]] = []
    for row in scores:
        order = sorted(range(len(live)), key=lambda j: (-float(row[j]), live[j].id))[:k]
        out.append([(live[j].id, float(row[j])) for j in order])
    return out


def _fmt(pairs: Sequence[tuple[str, float]]) -> str:
    return "[" + ", ".join(f"{i}:{s:.5f}" for i, s in pairs) + "]"


def assert_hits_match_reference(
    got: Sequence[Sequence[Hit]],
    metric: Metric,
    queries: Matrix,
    records: Sequence[Record],
    k: int,
    filter: Filter | None = None,
    *,
    where: str = "search",
) -> None:
    """One list of hits per query; each equals the exact top-``k`` over the records the filter
    matches: same ids in the same order (exact ties may come in either order), scores within
    :data:`SCORE_TOL`, sorted descending."""
    q = np.asarray(queries, dtype=np.float32)
    assert isinstance(got, list), f"{where}: returned a {type(got).__name__}, not a list"
    assert len(got) == q.shape[0], f"{where}: {len(got)} result lists for {q.shape[0]} queries"
    live = [r for r in records if not filter or filter.matches(r.metadata)]
    by_id = {r.id: j for j, r in enumerate(live)}
    all_scores = (
        exact_scores(metric, q, np.stack([np.asarray(r.vector, np.float32) for r in live]))
        if live
        else np.zeros((q.shape[0], 0), np.float32)
    )
    expected = reference_search(metric, q, records, k, filter)
    for qi, (hits, exp) in enumerate(zip(got, expected, strict=True)):
        w = f"{where}, query {qi}"
        pairs = [(h.id, float(h.score)) for h in hits]
        assert all(isinstance(h, Hit) for h in hits), f"{w}: results are not Hit objects"
        msg = f"{w}: got {_fmt(pairs)}, expected {_fmt(exp)}"
        assert len(hits) == len(exp), f"{w}: {len(hits)} hits, expected {len(exp)}. {msg}"
        ids = [h.id for h in hits]
        assert len(set(ids)) == len(ids), f"{w}: an id is returned twice. {msg}"
        strangers = [i for i in ids if i not in by_id]
        assert not strangers, (
            f"{w}: returned {strangers}, which are deleted, never written, or do not match "
            f"the filter. {msg}"
        )
        for pos, ((gid, _gs), (eid, _es)) in enumerate(zip(pairs, exp, strict=True)):
            if gid == eid:
                continue
            g_exact = float(all_scores[qi, by_id[gid]])
            e_exact = float(all_scores[qi, by_id[eid]])
            assert abs(g_exact - e_exact) <= _TIE_TOL * max(1.0, abs(e_exact)), (
                f"{w}: rank {pos} is {gid!r} (exact score {g_exact:.6f}) but the exact "
                f"search ranks {eid!r} (exact score {e_exact:.6f}) there. {msg}"
            )
        for gid, gs in pairs:
            e = float(all_scores[qi, by_id[gid]])
            assert score_close(gs, e), (
                f"{w}: score of {gid!r} is {gs!r}, exact score is {e:.6f} "
                f"(tolerance {SCORE_TOL}; metric {metric}). {msg}"
            )
        for a, b in zip(pairs, pairs[1:], strict=False):
            assert a[1] >= b[1], f"{w}: scores are not sorted descending. {msg}"


def assert_hits_carry_payload(
    metric: Metric, got: Sequence[Sequence[Hit]], records: Mapping[str, Record], where: str
) -> None:
    """Every hit's text, metadata and stamp are those of the stored record."""
    for qi, hits in enumerate(got):
        for h in hits:
            w = f"{where}, query {qi}, hit {h.id!r}"
            r = records[h.id]
            assert isinstance(h.score, float), (
                f"{w}: score is a {type(h.score).__name__}, not a Python float"
            )
            assert h.text == r.text, f"{w}: text is {h.text!r}, expected {r.text!r}"
            assert_metadata_equal(h.metadata, r.metadata, w)
            assert_stamp_equal(h.stamp, r.stamp, w)


def scan_all(
    backend: Backend,
    namespace: str,
    limit: int,
    *,
    with_vectors: bool = False,
    cursor: str | None = None,
    max_pages: int = 100_000,
) -> list[Record]:
    """Every record of a full scan (from ``cursor``), pages concatenated in order.

    Checks each page: at most ``limit`` records, ``next_cursor`` a string or ``None``, and a
    cursor never handed out twice (which would loop forever)."""
    out: list[Record] = []
    seen_cursors: set[str] = set()
    for _ in range(max_pages):
        page = backend.scan(namespace, cursor=cursor, limit=limit, with_vectors=with_vectors)
        assert isinstance(page.records, list), "scan: ScanPage.records is not a list"
        assert len(page.records) <= limit, (
            f"scan: a page of {len(page.records)} records for limit={limit}"
        )
        out.extend(page.records)
        nxt = page.next_cursor
        if nxt is None:
            return out
        assert isinstance(nxt, str), f"scan: next_cursor is {nxt!r}, not a string or None"
        assert nxt not in seen_cursors, f"scan: cursor {nxt!r} was handed out twice (a loop)"
        seen_cursors.add(nxt)
        cursor = nxt
    raise AssertionError(f"scan: still not finished after {max_pages} pages of {limit}")
