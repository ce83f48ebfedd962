"""Evaluation of the spaces of a collection.

- ANN quality: recall@k of each space's approximate search against its own exact
  (brute-force) search, on a deterministic sample of stored documents used as queries.
- Relevance, with judgments (a JSONL of ``{"query": ..., "relevant": [ids]}``): recall@k,
  MRR@k and nDCG@k per space, and overlap@k between the active space and each candidate.
- Latency: p50 and p99 of one-query searches per space.

Results are recorded in the manifest; the cutover gate reads them.
"""

from __future__ import annotations

import json
import math
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..backends.base import Backend, exact_scores
from ..errors import SourceError
from ..read.searcher import Searcher
from ..runtime.workspace import Workspace
from ..store.sqlite import NamespaceRow
from ..types import Matrix


@dataclass(frozen=True)
class Judgment:
    query: str
    relevant: frozenset[str]


def load_judgments(path: str) -> list[Judgment]:
    """Read ``{"query"|"text": str, "relevant"|"relevant_ids": [ids]}`` lines."""
    out: list[Judgment] = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise SourceError(path, f"cannot read: {e}") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise SourceError(f"{path}:{n}", f"not valid JSON ({e})") from e
        if not isinstance(obj, dict):
            raise SourceError(f"{path}:{n}", "each line must be a JSON object")
        q = obj.get("query", obj.get("text"))
        rel = obj.get("relevant", obj.get("relevant_ids"))
        if not isinstance(q, str) or not q.strip():
            raise SourceError(f"{path}:{n}", "missing 'query'")
        if isinstance(rel, str):
            rel = [rel]
        if not isinstance(rel, list) or not rel:
            raise SourceError(f"{path}:{n}", "'relevant' must be a non-empty list of ids")
        out.append(Judgment(q, frozenset(str(r) for r in rel)))
    if not out:
        raise SourceError(path, "no queries")
    return out


def exact_search(
    backend: Backend, namespace: str, queries: Matrix, k: int, page_size: int = 2048
) -> list[list[tuple[str, float]]]:
    """Brute-force top-k over a namespace, streaming its vectors page by page."""
    spec = backend.describe_namespace(namespace)
    nq = queries.shape[0]
    best_s = np.full((nq, 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((nq, 0), dtype=object)
    cursor: str | None = None
    while True:
        page = backend.scan(namespace, cursor=cursor, limit=page_size, with_vectors=True)
        if page.records:
            vecs = np.stack([r.vector for r in page.records if r.vector is not None])
            ids = np.array([r.id for r in page.records], dtype=object)
            s = exact_scores(spec.metric, queries, vecs)
            all_s = np.concatenate([best_s, s], axis=1)
            all_i = np.concatenate([best_i, np.broadcast_to(ids, (nq, len(ids)))], axis=1)
            keep = min(k, all_s.shape[1])
            idx = np.argpartition(-all_s, keep - 1, axis=1)[:, :keep]
            best_s = np.take_along_axis(all_s, idx, axis=1)
            best_i = np.take_along_axis(all_i, idx, axis=1)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    out = []
    for row_s, row_i in zip(best_s, best_i):
        order = np.argsort(-row_s, kind="stable")
        out.append([(str(row_i[j]), float(row_s[j])) for j in order])
    return out


def sample_documents(
    backend: Backend, namespace: str, n: int, seed: int = 0
) -> list[tuple[str, str]]:
    """A deterministic sample of ``n`` (id, text) pairs: the ids with the smallest salted
    hash, found in one streaming pass with memory bounded by ``n``."""
    import heapq

    heap: list[tuple[int, str, str]] = []
    salt = str(seed).encode()
    cursor: str | None = None
    while True:
        page = backend.scan(namespace, cursor=cursor, limit=1024)
        for r in page.records:
            if not r.text:
                continue
            h = -zlib.crc32(salt + r.id.encode())
            if len(heap) < n:
                heapq.heappush(heap, (h, r.id, r.text))
            elif h > heap[0][0]:
                heapq.heapreplace(heap, (h, r.id, r.text))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return sorted(((i, t) for _, i, t in heap), key=lambda p: p[0])


def ann_recall_at_k(
    ann: Sequence[Sequence[Any]], exact: Sequence[Sequence[tuple[str, float]]], tol: float = 1e-4
) -> float:
    """Mean recall of approximate results against exact ones, tie-aware: an approximate
    hit counts when it is in the exact top-k or scores as well as the exact k-th (within
    ``tol``), since among equal scores any choice is exact."""
    rec = []
    for a, e in zip(ann, exact):
        if not e:
            continue
        truth = {i for i, _ in e}
        kth = e[-1][1]
        good = sum(
            1 for h in a[: len(e)] if h.id in truth or h.score >= kth - tol * max(1.0, abs(kth))
        )
        rec.append(min(good, len(e)) / len(e))
    return float(np.mean(rec)) if rec else 1.0


def _percentile(xs: Sequence[float], p: float) -> float:
    if not xs:
        return float("nan")
    return float(np.percentile(np.asarray(xs), p))


def relevance_metrics(
    ranked: Sequence[Sequence[str]], judged: Sequence[Judgment], k: int
) -> dict[str, float]:
    """Mean recall@k, MRR@k and nDCG@k (binary gains) over the queries."""
    rec, mrr, ndcg = [], [], []
    for ids, j in zip(ranked, judged):
        top = list(ids)[:k]
        hits = [1.0 if i in j.relevant else 0.0 for i in top]
        rec.append(sum(hits) / len(j.relevant))
        rr = next((1.0 / (n + 1) for n, h in enumerate(hits) if h), 0.0)
        mrr.append(rr)
        dcg = sum(h / math.log2(n + 2) for n, h in enumerate(hits))
        ideal = sum(1.0 / math.log2(n + 2) for n in range(min(k, len(j.relevant))))
        ndcg.append(dcg / ideal if ideal else 0.0)
    return {
        "recall": float(np.mean(rec)),
        "mrr": float(np.mean(mrr)),
        "ndcg": float(np.mean(ndcg)),
        "queries": float(len(judged)),
    }


@dataclass
class SpaceEvaluation:
    space: str
    namespace: str
    state: str
    k: int
    documents: int
    ann_recall: float | None
    ann_queries: int
    relevance: dict[str, float] | None
    latency_p50_ms: float
    latency_p99_ms: float
    overlap_with_active: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvaluationReport:
    collection: str
    run: str
    k: int
    spaces: list[SpaceEvaluation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "run": self.run,
            "k": self.k,
            "spaces": [s.to_dict() for s in self.spaces],
        }


def evaluate(
    ws: Workspace,
    collection: str,
    *,
    queries: str | Sequence[Judgment] | None = None,
    k: int | None = None,
    sample: int = 100,
    spaces: Sequence[str] | None = None,
    record: bool = True,
) -> EvaluationReport:
    """Evaluate the active space and every candidate (building or ready) space.

    Records one result per space in the manifest under one run id (unless
    ``record=False``); :func:`vecver.ops.cutover.gate_check` reads them."""
    ws.manifest.require_collection(collection)
    k = k or ws.config.gate.k
    judged: list[Judgment] | None = None
    if isinstance(queries, str):
        judged = load_judgments(queries)
    elif queries is not None:
        judged = list(queries)
    rows = [
        n
        for n in ws.manifest.namespaces(collection)
        if n.state in ("active", "ready", "building")
        and (spaces is None or n.space_label in spaces)
    ]
    rows.sort(key=lambda n: n.state != "active")
    report = EvaluationReport(collection, uuid.uuid4().hex[:12], k)
    ranked_by_ns: dict[str, list[list[str]]] = {}
    searcher = Searcher(ws, collection)
    for ns in rows:
        ev, ranked = _evaluate_one(ws, searcher, ns, judged, k, sample)
        report.spaces.append(ev)
        if ranked is not None:
            ranked_by_ns[ns.name] = ranked
    active = next((n for n in rows if n.state == "active"), None)
    if active is not None and active.name in ranked_by_ns:
        base = ranked_by_ns[active.name]
        for ev in report.spaces:
            if ev.namespace != active.name and ev.namespace in ranked_by_ns:
                mine = ranked_by_ns[ev.namespace]
                ov = [len(set(a[:k]) & set(b[:k])) / k for a, b in zip(base, mine)]
                ev.overlap_with_active = float(np.mean(ov)) if ov else None
    if record:
        for ev in report.spaces:
            ws.manifest.record_evaluation(
                collection, report.run, ev.namespace, ev.space, ev.to_dict()
            )
        ws.manifest.log(
            "evaluated",
            collection,
            run=report.run,
            spaces={e.space: e.to_dict() for e in report.spaces},
        )
    return report


def _evaluate_one(
    ws: Workspace, searcher: Searcher, ns: NamespaceRow, judged: list[Judgment] | None,
    k: int, sample: int,
) -> tuple[SpaceEvaluation, list[list[str]] | None]:
    """One space: approximate searches go through the searcher (the read path users get,
    fingerprint rule included); the exact baseline scans the namespace itself."""
    be = ws.backend_for(ns)
    emb = ws.embedder(ns.space_label)
    label = ns.space_label
    n_docs = be.count(ns.name)
    docs = sample_documents(be, ns.name, sample)
    ann_recall: float | None = None
    if docs:
        qv = emb.embed_queries([t for _, t in docs])
        kk = min(k, n_docs)
        ann = searcher.search_vectors(qv, kk, space=label)
        exact = exact_search(be, ns.name, qv, kk)
        ann_recall = ann_recall_at_k(ann, exact)
    relevance = None
    ranked: list[list[str]] | None = None
    lat: list[float] = []
    if judged:
        qv = emb.embed_queries([j.query for j in judged])
        ranked = []
        for row in qv:
            t0 = time.perf_counter()
            hits = searcher.search_vectors(row[None, :], k, space=label)[0]
            lat.append((time.perf_counter() - t0) * 1000)
            ranked.append([h.id for h in hits])
        relevance = relevance_metrics(ranked, judged, k)
    elif docs:
        qv = emb.embed_queries([t for _, t in docs[:50]])
        for row in qv:
            t0 = time.perf_counter()
            searcher.search_vectors(row[None, :], k, space=label)
            lat.append((time.perf_counter() - t0) * 1000)
    ev = SpaceEvaluation(
        space=ns.space_label,
        namespace=ns.name,
        state=ns.state,
        k=k,
        documents=n_docs,
        ann_recall=ann_recall,
        ann_queries=len(docs),
        relevance=relevance,
        latency_p50_ms=_percentile(lat, 50),
        latency_p99_ms=_percentile(lat, 99),
    )
    return ev, ranked
