"""Adapters of a workspace: fit from a collection, store, evaluate, list, resolve for the
``adapter`` route (with its gate).

Storage: an adapter is an artifact of kind ``"adapter"`` in the manifest store, named
``NEW->OLD`` within its collection; each fit is a new version (the archive of
:meth:`~vecver.adapters.base.Adapter.to_bytes`), its meta records both spaces' labels
and fingerprints, the kind, the pairs used and the held-out evaluation made at fit time.
Fitting enables the new version by default (the previous one is disabled in the same
transaction: a replacement); the store logs ``artifact.put`` / ``artifact.enabled`` and
this module logs ``adapter.fitted`` and ``adapter.evaluated``. Later evaluations are
artifacts of kind ``"adapter-evaluation"`` named after the adapter's artifact id.

Held-out retention (what the gate reads) is measured on documents no adapter was ever
fitted on (:func:`vecver.adapters.pairs.is_held_out`): each held-out document's lead (the
first :data:`LEAD_WORDS` = 8 words of its first sentence: a title-length query) is a
query whose relevant document is that document, searched among the held-out documents
plus up to :data:`EVAL_DISTRACTORS` other documents as distractors: the training pairs
at fit time (their new-model vectors are already computed), topped up with sampled
documents embedded by the new model. The *full re-embed* side searches those
documents' new-model vectors, the *adapter* side their stored old vectors; both
exactly. Retention = adapter recall@k / full re-embed recall@k. With judged queries
(``evaluate(..., queries=FILE)``) the full re-embed is the new space's own namespace
searched exactly when it is built (a live namespace holding as many documents as the old
one), else a sub-corpus (the judged documents plus a seeded sample) re-embedded by the
new model, both sides searched over that same sub-corpus.

Calibration (bench/adapter_bench.py --estimator and --product, BBC News, MiniLM-L6 <-
MiniLM-L3): the earlier estimate (32-word leads among ~230 held-out documents) said
0.99-1.00 for adapters whose real title-query retention is 0.80-0.93 — long pseudo-queries
over few candidates are too easy. Title-length leads over ~2,000 documents track the
real figure within about 0.02 when the pairs come from other documents than the queried
ones (--estimator), and are conservative on a collection the adapter was fitted on
(--product: 0.883 where judged titles over the built new space give 0.947), since they
measure documents no pair covered. Judged queries remain the better gate where they
exist.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import exact_scores
from ..errors import (
    AdapterGateFailed,
    AdapterStale,
    InvalidArgument,
    NoAdapter,
    UnknownSpace,
)
from ..lifecycle import LIVE_STATES
from ..read.adapter_route import adapter_ref, parse_adapter_ref
from ..runtime.progress import Progress
from ..types import Matrix
from .base import Adapter, adapter_class, check_pairs, load_adapter
from .pairs import (
    PairSample,
    embed_in_batches,
    select_documents,
    stored_vectors,
    training_pairs,
)
from .prior import (
    DEPTH,
    MAX_VALIDATION,
    MIN_VALIDATION,
    VALIDATION_FRACTION,
    DocPrior,
    PriorChoice,
    check_beta,
    check_depth,
    check_sharpness,
    fit_prior,
    load_prior,
)

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace
    from ..store.base import Artifact
    from ..store.sqlite import NamespaceRow

KIND = "adapter"
EVAL_KIND = "adapter-evaluation"
PRIOR_KIND = "adapter-prior"
#: kinds fitted with the hubness prior unless told otherwise (``prior=None``): where it
#: measurably helps (bench/results/s6-adapter-*.txt, BBC News: Procrustes +0.008 on the
#: protocol's pairs, +0.013 through the product); for ``contrastive`` it adds 0.001-0.002
#: for a second fit and ~10 us per query, and the other kinds were not measured
PRIOR_KINDS = frozenset({"procrustes"})
#: held-out documents an evaluation uses at most
EVAL_SAMPLE = 1000
#: an evaluation with fewer held-out documents than ``EVAL_MIN_PER_K * k`` measures nothing
EVAL_MIN_PER_K = 5
#: seconds a resolved adapter is reused by the read path before the manifest is re-read
REFRESH_SECONDS = 1.0
#: words of a held-out document's first sentence used as its pseudo-query: title-length
#: (bench/adapter_bench.py --estimator: 8 words over ~2,000 documents tracks real title
#: queries within 0.01-0.02; 32 words over ~230 held-out documents said 0.99 for 0.93)
LEAD_WORDS = 8
#: other documents an evaluation without training pairs searches among (distractors)
EVAL_DISTRACTORS = 2000


def artifact_name(source: str, target: str) -> str:
    return f"{source}->{target}"


# -- evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """One measurement of an adapter against a full re-embed (both searched exactly).

    ``method``: ``held-out`` (pseudo-queries from held-out documents), ``namespace``
    (judged queries; the new space's own namespace) or ``subcorpus`` (judged queries; a
    re-embedded sub-corpus). ``retention`` is None when nothing could be measured
    (``note`` says why)."""

    method: str
    k: int
    queries: int
    candidates: int
    recall_adapter: float | None
    recall_full: float | None
    mrr_adapter: float | None
    mrr_full: float | None
    overlap: float | None
    retention: float | None
    note: str = ""
    #: the prior's beta when the adapter side was ranked as served with a prior, else None
    prior_beta: float | None = None
    measured_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _topk(metric: str, queries: Matrix, vectors: Matrix, k: int) -> np.ndarray:
    return _topk_of(exact_scores(metric, queries, vectors), k)


def _topk_of(s: np.ndarray, k: int) -> np.ndarray:
    kk = min(k, s.shape[1])
    idx = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
    order = np.argsort(-np.take_along_axis(s, idx, axis=1), axis=1, kind="stable")
    out: np.ndarray = np.take_along_axis(idx, order, axis=1)
    return out


def _served_topk(metric: str, queries: Matrix, vectors: Matrix, ids: Sequence[str], k: int,
                 prior: DocPrior | None) -> np.ndarray:
    """Exact top-``k`` positions as the adapter route serves them: with a prior, the top
    :meth:`DocPrior.fetch_depth` by similarity reranked by ``sim - beta * prior``."""
    if prior is None:
        return _topk(metric, queries, vectors, k)
    s = exact_scores(metric, queries, vectors)
    cand = _topk_of(s, prior.fetch_depth(k))
    kk = min(k, cand.shape[1])
    out = np.empty((cand.shape[0], kk), dtype=np.int64)
    for r, row in enumerate(cand):
        out[r] = row[prior.order([ids[j] for j in row], s[r, row], kk)]
    return out


def _served_search(be: Any, namespace: str, queries: Matrix, k: int,
                   prior: DocPrior | None) -> list[list[tuple[str, float]]]:
    """Brute-force search of a namespace as the adapter route serves it (see
    :func:`_served_topk`)."""
    from ..ops.evaluate import exact_search

    if prior is None:
        return exact_search(be, namespace, queries, k)
    got = exact_search(be, namespace, queries, prior.fetch_depth(k))
    return [[r[i] for i in prior.order([i for i, _ in r], [x for _, x in r], k)]
            if r else [] for r in got]


def _rank_metrics(ranked: Sequence[Sequence[str]], relevant: Sequence[frozenset[str]],
                  k: int) -> tuple[float, float]:
    rec, mrr = [], []
    for ids, rel in zip(ranked, relevant):
        top = list(ids)[:k]
        rec.append(sum(1 for i in top if i in rel) / len(rel))
        mrr.append(next((1.0 / (n + 1) for n, i in enumerate(top) if i in rel), 0.0))
    return float(np.mean(rec)), float(np.mean(mrr))


def compare(adapter_ranked: Sequence[Sequence[str]], full_ranked: Sequence[Sequence[str]],
            relevant: Sequence[frozenset[str]], k: int, method: str, candidates: int,
            note: str = "") -> Retention:
    """Retention of ``adapter_ranked`` against ``full_ranked`` (top-k id lists per
    query, judged by ``relevant``)."""
    ra, ma = _rank_metrics(adapter_ranked, relevant, k)
    rf, mf = _rank_metrics(full_ranked, relevant, k)
    ov = float(np.mean([len(set(a[:k]) & set(f[:k])) / max(1, len(f[:k]))
                        for a, f in zip(adapter_ranked, full_ranked)]))
    ret = ra / rf if rf > 0 else None
    return Retention(method, k, len(relevant), candidates, ra, rf, ma, mf, ov, ret, note)


def lead(text: str, words: int = LEAD_WORDS) -> str:
    """The first sentence of ``text``, cut to ``words`` words (a pseudo-query)."""
    first = text.strip()
    for stop in (". ", "? ", "! ", "\n"):
        cut = first.find(stop)
        if cut > 0:
            first = first[:cut + 1]
    return " ".join(first.split()[:words]) or text.strip()[:200]


def held_out_retention(ws: Workspace, row: NamespaceRow, source: str, adapter: Adapter,
                       *, k: int = 10, sample: int = EVAL_SAMPLE, seed: int = 0,
                       progress: bool | None = None,
                       distractors: PairSample | None = None,
                       prior: DocPrior | None = None) -> Retention:
    """Retention on held-out documents of ``row`` (see the module docstring): each
    held-out document's lead (:func:`lead`, :data:`LEAD_WORDS` words) is a query for it,
    searched among the held-out documents plus up to :data:`EVAL_DISTRACTORS` other
    documents of the collection: ``distractors`` first (the training pairs, whose
    new-model vectors the fit already has), topped up with sampled documents embedded
    by the new model here.
    The adapter side searches the stored old vectors (as served: reranked by ``prior``
    when one is given), the full re-embed side the same documents' new-model vectors;
    both exactly."""
    be = ws.backend_for(row)
    new = ws.embedder(source)
    docs, _, _ = select_documents(be, row.name, sample, held_out=True, seed=seed)
    kept, old = stored_vectors(be, row.name, row.fingerprint, docs)
    need = EVAL_MIN_PER_K * k
    if len(kept) < need:
        return Retention("held-out", k, len(kept), len(kept), None, None, None, None, None,
                         None, note=f"only {len(kept)} held-out documents (at least {need} "
                         f"needed for recall@{k}); evaluate with judged queries (--queries)")
    texts = [t for _, t in kept]
    ids = [i for i, _ in kept]
    # distractors: the training pairs (vectors at hand), topped up to EVAL_DISTRACTORS
    # with other sampled documents, embedded here
    extra_ids: list[str] = []
    extra_old: list[Any] = []
    have_new: list[Matrix] = []
    if distractors is not None and len(distractors):
        extra_ids = list(distractors.ids)[:EVAL_DISTRACTORS]
        extra_old = list(distractors.target[:len(extra_ids)])
        have_new.append(distractors.source[:len(extra_ids)])
    extra_texts: list[str] = []
    if len(extra_ids) < EVAL_DISTRACTORS:
        taken = set(extra_ids)
        others, _, _ = select_documents(be, row.name, EVAL_DISTRACTORS, seed=seed + 1)
        others = [o for o in others if o[0] not in taken][:EVAL_DISTRACTORS - len(extra_ids)]
        got, vecs = stored_vectors(be, row.name, row.fingerprint, others)
        extra_ids += [i for i, _ in got]
        extra_texts = [t for _, t in got]
        extra_old += list(vecs)
    total = 2 * len(texts) + len(extra_texts)
    bar = Progress(f"adapter evaluate: embed {len(texts)} held-out documents", total,
                   enabled=progress if progress is not None else ws.progress)
    try:
        batch = ws.config.batch_size
        q_new = embed_in_batches(new, [lead(t) for t in texts], batch, bar.update, query=True)
        d_new = embed_in_batches(new, texts, batch, bar.update)
        if extra_texts:
            have_new.append(embed_in_batches(new, extra_texts, batch, bar.update))
    finally:
        bar.close()
    d_old = np.stack([np.asarray(v, dtype=np.float32) for v in [*old, *extra_old]])
    d_new = np.concatenate([d_new, *[np.asarray(m, dtype=np.float32) for m in have_new]])
    all_ids = ids + extra_ids
    metric_old = be.describe_namespace(row.name).metric
    idx_a = _served_topk(metric_old, adapter.transform(q_new), d_old, all_ids, k, prior)
    idx_f = _topk(new.space.spec.metric, q_new, d_new, k)
    ranked_a = [[all_ids[j] for j in r] for r in idx_a]
    ranked_f = [[all_ids[j] for j in r] for r in idx_f]
    ret = compare(ranked_a, ranked_f, [frozenset([i]) for i in ids], k, "held-out",
                  len(all_ids), note=f"pseudo-queries: the first {LEAD_WORDS} words of "
                  f"{len(ids)} held-out documents, searched among {len(all_ids)} documents "
                  f"({len(extra_ids)} other documents as distractors)" + _prior_note(prior))
    return replace(ret, prior_beta=None if prior is None else prior.beta)


def _prior_note(prior: DocPrior | None) -> str:
    if prior is None:
        return ""
    return (f"; adapter side as served: top {prior.depth} reranked by the hubness prior "
            f"(beta {prior.beta:g})")


# -- fitting -------------------------------------------------------------------------


@dataclass
class FitReport:
    """What ``adapter fit`` did: the stored adapter and how it was made."""

    collection: str
    source: str
    target: str
    kind: str
    ref: str
    artifact_id: int
    version: int
    enabled: bool
    pairs: int
    fit_seconds: float
    info: dict[str, Any]
    sample: dict[str, Any]
    evaluation: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _old_row(ws: Workspace, collection: str, target: str) -> NamespaceRow:
    ws.manifest.require_collection(collection)
    row = ws.manifest.namespace_for(collection, target)
    if row is None or row.state not in LIVE_STATES:
        live = [n.space_label for n in ws.manifest.namespaces(collection)
                if n.state in LIVE_STATES]
        raise UnknownSpace(target, live)
    return row


def fit(
    ws: Workspace, collection: str, source: str, target: str, *, kind: str | None = None,
    pairs: int | None = None, stratify: str | None = None, seed: int = 0,
    enable: bool = True, options: Mapping[str, Any] | None = None,
    progress: bool | None = None, k: int = 10, prior: bool | None = None,
    prior_depth: int = DEPTH, prior_beta: float | None = None,
    prior_sharpness: float | None = None,
) -> FitReport:
    """Fit an adapter mapping queries of space ``source`` (the NEW model) into the live
    space ``target`` (the OLD one) of ``collection``, store it, evaluate it on held-out
    documents, and (``enable``) make it the enabled one.

    Training pairs: ``pairs`` (default ``[adapters] pairs``) documents of the old
    namespace, stratified by metadata key ``stratify`` (else by hash), never held-out
    ones; their stored old vectors next to their texts embedded by ``source``. Nothing
    is re-embedded with the old model. Deterministic for the same documents and
    ``seed``. ``options`` go to the adapter kind.

    The hubness prior (:mod:`vecver.adapters.prior`; ``prior`` None: on for the kinds in
    :data:`PRIOR_KINDS`): one prior per stored document of the old namespace (a full
    scan of its vectors), ``beta`` and ``sharpness`` chosen on a held-out split of the
    training documents (:data:`~vecver.adapters.prior.VALIDATION_FRACTION`; an adapter of
    the same kind is refitted without them) unless ``prior_beta`` / ``prior_sharpness``
    are given; the route over-fetches ``prior_depth`` candidates. A chosen beta of 0 (the
    prior did not help on the validation documents), too few validation documents, or a
    namespace that is not compared by cosine leave the adapter without a prior
    (``info["prior"]`` says why). The prior is stored as an ``adapter-prior`` artifact
    tied to both fingerprints, before the adapter version that names it (one
    transaction each: an interrupted fit leaves at most an unreferenced prior); the held-
    out evaluation measures the adapter as served (with the rerank).

    Raises ``UnknownCollection``; ``UnknownSpace`` when ``target`` has no live namespace
    in the collection; ``InvalidInput`` when both are the same space, for a bad
    ``prior_depth``, a negative or non-finite ``prior_beta``, a ``prior_sharpness`` that
    is not > 0; ``UnknownAdapterKind``; ``TooFewPairs`` when the collection has fewer
    usable documents than the kind needs; ``NonFinitePairs`` / ``AdapterPairMismatch``
    for bad vectors. Nothing is stored when it raises."""
    if source == target:
        raise InvalidArgument("--from", source, "another space than --to")
    settings = ws.config.adapters
    kind = kind or settings.kind
    cls = adapter_class(kind)
    n = settings.pairs if pairs is None else pairs
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgument("pairs", n, "a positive integer")
    if prior is not None and not isinstance(prior, bool):
        raise InvalidArgument("prior", prior, "True, False or None")
    depth = check_depth(prior_depth)
    beta = None if prior_beta is None else check_beta(prior_beta, "prior_beta")
    sharp = None if prior_sharpness is None else check_sharpness(prior_sharpness,
                                                                  "prior_sharpness")
    use_prior = kind in PRIOR_KINDS if prior is None else prior
    row = _old_row(ws, collection, target)
    new = ws.embedder(source)
    be = ws.backend_for(row)
    bar = Progress(f"adapter fit {collection}: embed {source} pairs", n,
                   enabled=progress if progress is not None else ws.progress)
    try:
        sample = training_pairs(be, row.name, row.fingerprint, new, n, stratify=stratify,
                                seed=seed, batch=ws.config.batch_size, on_batch=bar.update)
    finally:
        bar.close()
    x, y = check_pairs(sample.source, sample.target, kind, cls.min_pairs)
    norms = np.linalg.norm(y, axis=1)
    normalize = bool(np.allclose(norms, 1.0, atol=1e-3))
    opts = dict(options or {})
    t0 = time.perf_counter()
    adapter = cls.fit(x, y, seed=seed, normalize=normalize, **opts)
    fit_s = time.perf_counter() - t0
    choice: PriorChoice | None = None
    prior_info: dict[str, Any] = {"on": False, "note": "not asked for"}
    if use_prior:
        metric = be.describe_namespace(row.name).metric
        if metric != "cosine" and not (metric == "dot" and normalize):
            prior_info = {"on": False, "note": f"the namespace is compared by {metric}, "
                          "the prior needs cosine (or dot over unit vectors)"}
        else:
            t1 = time.perf_counter()
            choice, why = _fit_prior(ws, row, new, cls, adapter, sample, x, y, seed,
                                     normalize, opts, k, depth, beta, sharp, progress)
            prior_s = time.perf_counter() - t1
            prior_info = {"on": choice is not None and choice.prior is not None,
                          "seconds": prior_s, "note": why}
            if choice is not None:
                prior_info.update(choice.describe())
                if choice.prior is None and not why:
                    prior_info["note"] = choice.note
    served = None if choice is None else choice.prior
    ev = held_out_retention(ws, row, source, adapter, k=k, seed=seed, progress=progress,
                            distractors=sample, prior=served)
    info = dict(adapter.info, prior=prior_info)
    meta: dict[str, Any] = {
        "kind": kind, "source": source, "target": target,
        "source_fingerprint": new.space.fingerprint, "target_fingerprint": row.fingerprint,
        "target_namespace": row.name, "source_dim": adapter.source_dim,
        "target_dim": adapter.target_dim, "pairs": len(sample), "seed": seed,
        "stratify": stratify, "fit_seconds": fit_s, "info": info,
        "sample": sample.describe(), "evaluation": ev.to_dict(),
    }
    name = artifact_name(source, target)
    if served is not None:
        part = ws.manifest.put_artifact(PRIOR_KIND, collection, name, served.to_bytes(), {
            "source": source, "target": target, "target_namespace": row.name,
            "source_fingerprint": new.space.fingerprint,
            "target_fingerprint": row.fingerprint, **served.describe()})
        meta["prior"] = {"artifact": part.id, "version": part.version, **served.describe()}
    art = ws.manifest.put_artifact(KIND, collection, name, adapter.to_bytes(), meta,
                                   enable=enable)
    ws.manifest.log("adapter.fitted", collection, adapter=art.id, version=art.version,
                    source=source, target=target, adapter_kind=kind, pairs=len(sample),
                    retention=ev.retention, enabled=enable,
                    prior=meta.get("prior") or {"on": False, "note": prior_info["note"]})
    _forget(ws)
    return FitReport(collection, source, target, kind, adapter_ref(collection, source, target),
                     art.id, art.version, art.enabled, len(sample), fit_s, info,
                     sample.describe(), ev.to_dict())


def _fit_prior(ws: Workspace, row: NamespaceRow, new: Any, cls: type[Adapter],
               adapter: Adapter, sample: PairSample, x: Matrix, y: Matrix, seed: int,
               normalize: bool, opts: dict[str, Any], k: int, depth: int,
               beta: float | None, sharp: float | None, progress: bool | None
               ) -> tuple[PriorChoice | None, str]:
    """The prior of :func:`fit` (see there): (the choice, "") or (None, why not)."""
    be = ws.backend_for(row)
    validation = None
    if beta is None or sharp is None:
        n = len(sample)
        n_val = min(MAX_VALIDATION, max(int(round(n * VALIDATION_FRACTION)),
                                        min(50, n // 3)))
        if n_val < MIN_VALIDATION or n - n_val < cls.min_pairs:
            return None, (f"{n} training documents leave {n_val} to choose beta on (at "
                          f"least {MIN_VALIDATION} needed); fit with more pairs, or give "
                          "prior_beta and prior_sharpness")
        order = np.random.default_rng(seed + 7).permutation(n)
        val, rest = np.sort(order[:n_val]), np.sort(order[n_val:])
        ad_v = cls.fit(x[rest], y[rest], seed=seed, normalize=normalize, **opts)
        q_v = embed_in_batches(new, [lead(sample.texts[i]) for i in val],
                               ws.config.batch_size, query=True)
        validation = (ad_v, x[rest], [sample.ids[i] for i in rest], q_v,
                      [sample.ids[i] for i in val])
    total = be.count(row.name)
    bar = Progress(f"adapter fit {row.collection}: priors of {total} documents", total,
                   enabled=progress if progress is not None else ws.progress)

    def pages() -> Any:
        cursor: str | None = None
        while True:
            page = be.scan(row.name, cursor=cursor, limit=2048, with_vectors=True)
            recs = [r for r in page.records if r.vector is not None]
            if recs:
                yield [r.id for r in recs], np.stack(
                    [np.asarray(r.vector, dtype=np.float32) for r in recs])
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    try:
        choice = fit_prior(adapter, x, pages(), source_ids=sample.ids,
                           validation=validation, k=k, depth=depth,
                           beta=beta, sharpness=sharp, on_page=bar.update)
    finally:
        bar.close()
    return choice, ""


# -- listing and choosing ------------------------------------------------------------


@dataclass
class AdapterInfo:
    """One stored adapter version, as ``adapter list`` shows it. ``stale`` names the side
    whose space's fingerprint changed since the fit (None: both still match)."""

    collection: str
    ref: str
    id: int
    version: int
    enabled: bool
    kind: str
    source: str
    target: str
    pairs: int
    retention: float | None
    retention_method: str | None
    stale: str | None
    created_at: float
    #: the hubness prior's beta (None: the adapter has no prior), and its documents
    prior_beta: float | None = None
    prior_docs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _latest_retention(ws: Workspace, art: Artifact) -> Retention | None:
    evs = ws.manifest.artifacts(EVAL_KIND, art.collection)
    mine = [e for e in evs if e.name == str(art.id)]
    meta = mine[-1].meta if mine else art.meta.get("evaluation")
    if not isinstance(meta, Mapping):
        return None
    fields = set(Retention.__dataclass_fields__)
    return Retention(**{k: v for k, v in meta.items() if k in fields})


def _stale(ws: Workspace, art: Artifact) -> str | None:
    meta = art.meta
    row = ws.manifest.namespace_for(art.collection, str(meta.get("target")))
    if row is None or row.fingerprint != meta.get("target_fingerprint"):
        return "target"
    src = ws.manifest.space(str(meta.get("source")))
    if src is None or src.fingerprint != meta.get("source_fingerprint"):
        return "source"
    return None


def list_adapters(ws: Workspace, collection: str | None = None) -> list[AdapterInfo]:
    """Every stored adapter version (of ``collection``, or of all), oldest first."""
    if collection is not None:
        ws.manifest.require_collection(collection)
    out = []
    for art in ws.manifest.artifacts(KIND, collection):
        m = art.meta
        ret = _latest_retention(ws, art)
        out.append(AdapterInfo(
            art.collection, adapter_ref(art.collection, m["source"], m["target"]), art.id,
            art.version, art.enabled, str(m.get("kind")), str(m["source"]), str(m["target"]),
            int(m.get("pairs", 0)), None if ret is None else ret.retention,
            None if ret is None else ret.method, _stale(ws, art), art.created_at,
            _prior_meta(art).get("beta"), int(_prior_meta(art).get("docs", 0))))
    return out


def _prior_meta(art: Artifact) -> dict[str, Any]:
    p = art.meta.get("prior")
    return dict(p) if isinstance(p, Mapping) else {}


def enabled(ws: Workspace, collection: str, source: str | None = None,
            target: str | None = None) -> Artifact:
    """The enabled adapter of ``collection`` from ``source`` to ``target`` (either may be
    None when only one enabled adapter matches). ``NoAdapter`` when none does;
    ``InvalidInput`` (``InvalidArgument``) when several do."""
    ws.manifest.require_collection(collection)
    found = [a for a in ws.manifest.artifacts(KIND, collection) if a.enabled
             and (source is None or a.meta.get("source") == source)
             and (target is None or a.meta.get("target") == target)]
    if not found:
        raise NoAdapter(collection, source, target)
    if len(found) > 1:
        raise InvalidArgument("--from/--to", f"{source}->{target}", "one of " + ", ".join(
            artifact_name(a.meta["source"], a.meta["target"]) for a in found))
    return found[0]


def evaluate(
    ws: Workspace, collection: str, source: str | None = None, target: str | None = None,
    *, queries: str | None = None, k: int = 10, sample: int = EVAL_SAMPLE, seed: int = 0,
    progress: bool | None = None,
) -> tuple[Artifact, Retention]:
    """Measure the enabled adapter's retention (module docstring: held-out documents, or
    judged ``queries`` from a JSONL file) as the route serves it (with its prior's
    rerank when it has one: ``Retention.prior_beta``) and record it (the gate reads the
    newest).
    Raises ``NoAdapter``, ``AdapterStale`` (the spaces changed since the fit),
    ``SourceError`` for a malformed queries file."""
    art = enabled(ws, collection, source, target)
    qa = _resolve(ws, art)
    row = _old_row(ws, collection, str(art.meta["target"]))
    if queries is None:
        ret = held_out_retention(ws, row, str(art.meta["source"]), qa.adapter, k=k,
                                 sample=sample, seed=seed, progress=progress, prior=qa.prior)
    else:
        ret = _judged_retention(ws, collection, row, str(art.meta["source"]), qa.adapter,
                                queries, k, sample, seed, qa.prior)
    ws.manifest.put_artifact(EVAL_KIND, collection, str(art.id), b"", ret.to_dict(),
                             keep=20)
    ws.manifest.log("adapter.evaluated", collection, adapter=art.id, method=ret.method,
                    retention=ret.retention, k=k, queries=ret.queries)
    _forget(ws)
    return art, ret


def _judged_retention(ws: Workspace, collection: str, row: NamespaceRow, source: str,
                      adapter: Adapter, path: str, k: int, sample: int,
                      seed: int, prior: DocPrior | None = None) -> Retention:
    from ..ops.evaluate import exact_search, load_judgments, sample_documents

    beta = None if prior is None else prior.beta

    judged = load_judgments(path)
    be = ws.backend_for(row)
    new = ws.embedder(source)
    q_new = new.embed_queries([j.query for j in judged])
    relevant = [j.relevant for j in judged]
    new_row = ws.manifest.namespace_for(collection, source)
    if (new_row is not None and new_row.state in LIVE_STATES
            and new_row.fingerprint == new.space.fingerprint
            and ws.backend_for(new_row).count(new_row.name) >= be.count(row.name)):
        full = exact_search(ws.backend_for(new_row), new_row.name, q_new, k)
        mapped = _served_search(be, row.name, adapter.transform(q_new), k, prior)
        return replace(compare([[i for i, _ in r] for r in mapped],
                               [[i for i, _ in r] for r in full], relevant, k, "namespace",
                               be.count(row.name),
                               note=f"full re-embed: the built namespace {new_row.name}"
                               + _prior_note(prior)), prior_beta=beta)
    ids = sorted({i for rel in relevant for i in rel}
                 | {i for i, _ in sample_documents(be, row.name, sample, seed)})
    got = be.fetch(row.name, ids, with_vectors=True)
    keep = [i for i in ids if i in got and got[i].vector is not None and got[i].text]
    d_old = np.stack([np.asarray(got[i].vector, dtype=np.float32) for i in keep])
    d_new = embed_in_batches(new, [str(got[i].text) for i in keep], ws.config.batch_size)
    metric_old = be.describe_namespace(row.name).metric
    ia = _served_topk(metric_old, adapter.transform(q_new), d_old, keep, k, prior)
    ifull = _topk(new.space.spec.metric, q_new, d_new, k)
    return replace(compare([[keep[j] for j in r] for r in ia],
                           [[keep[j] for j in r] for r in ifull], relevant, k, "subcorpus",
                           len(keep), note=f"the new space is not built: judged documents "
                           f"plus {sample} sampled, re-embedded by the new model"
                           + _prior_note(prior)), prior_beta=beta)


# -- the read path -------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAdapter:
    """An enabled adapter as the read path uses it (``QueryAdapter`` of the searcher)."""

    ref: str
    artifact_id: int
    version: int
    source: str
    target: str
    source_fingerprint: str
    target_fingerprint: str
    retention: float | None
    adapter: Adapter
    #: the hubness prior the route reranks with (None: plain adapter search)
    prior: DocPrior | None = None

    def transform(self, x: Matrix) -> Matrix:
        """Map new-space query rows into the old space (float32)."""
        return self.adapter.transform(x)


_cache_lock = threading.Lock()
# (manifest path, ref) -> (resolved at, adapter); (manifest path, artifact id) -> adapter
_resolved: dict[tuple[str, str], tuple[float, StoredAdapter]] = {}
_decoded: dict[tuple[str, int], Adapter] = {}
_priors: dict[tuple[str, int], DocPrior] = {}


def _forget(ws: Workspace) -> None:
    """Drop what this process resolved for ``ws``'s manifest (after a fit or enable)."""
    path = ws.config.manifest_path
    with _cache_lock:
        for key in [k for k in _resolved if k[0] == path]:
            del _resolved[key]


def _resolve(ws: Workspace, art: Artifact) -> StoredAdapter:
    key = (ws.config.manifest_path, art.id)
    with _cache_lock:
        ad = _decoded.get(key)
    if ad is None:
        ad = load_adapter(art.data)
        with _cache_lock:
            if len(_decoded) > 64:
                _decoded.clear()
            _decoded[key] = ad
    m = art.meta
    side = _stale(ws, art)
    if side is not None:
        label = str(m["target"] if side == "target" else m["source"])
        if side == "target":
            row = ws.manifest.namespace_for(art.collection, label)
            current = row.fingerprint if row is not None else "(no namespace)"
        else:
            srow = ws.manifest.space(label)
            current = srow.fingerprint if srow is not None else "(unregistered)"
        raise AdapterStale(f"{art.collection}/{art.name} v{art.version}", side, label,
                           str(m[f"{side}_fingerprint"]), current)
    ret = _latest_retention(ws, art)
    return StoredAdapter(adapter_ref(art.collection, m["source"], m["target"]), art.id,
                         art.version, str(m["source"]), str(m["target"]),
                         str(m["source_fingerprint"]), str(m["target_fingerprint"]),
                         None if ret is None else ret.retention, ad, _load_prior_of(ws, art))


def _load_prior_of(ws: Workspace, art: Artifact) -> DocPrior | None:
    """The prior adapter version ``art`` names (None when it has none). A prior that is
    missing, or tied to other fingerprints than the adapter's, refuses the adapter
    (``NoAdapter`` / ``AdapterStale``): its ranking would not be the one measured."""
    pm = _prior_meta(art)
    if not pm:
        return None
    key = (ws.config.manifest_path, int(pm.get("artifact", -1)))
    with _cache_lock:
        hit = _priors.get(key)
    if hit is not None:
        return hit
    m = art.meta
    version = pm.get("version")
    part = (ws.manifest.artifact(PRIOR_KIND, art.collection, art.name, version)
            if isinstance(version, int) else None)
    if part is None or part.id != key[1]:
        raise NoAdapter(art.collection, str(m["source"]), str(m["target"]),
                        detail=f"version {art.version}'s hubness prior (artifact {key[1]}) "
                        "is missing; refit it")
    for side in ("target", "source"):
        want = str(m[f"{side}_fingerprint"])
        got = str(part.meta.get(f"{side}_fingerprint"))
        if got != want:
            raise AdapterStale(f"{art.collection}/{art.name} v{art.version} (its prior)",
                               side, str(m[side]), got, want)
    prior = load_prior(part.data)
    depth = pm.get("depth")
    if isinstance(depth, int) and depth != prior.depth:
        prior = prior.with_depth(depth)
    with _cache_lock:
        if len(_priors) > 16:
            _priors.clear()
        _priors[key] = prior
    return prior


def query_adapter(ws: Workspace, ref: str) -> StoredAdapter:
    """The adapter the ``adapter`` route maps queries with, for a leg's reference
    (``COLLECTION/NEW->OLD``): the enabled version now (re-read from the manifest at most
    every :data:`REFRESH_SECONDS`; at once after a fit or evaluation in this process).

    The gate: raises ``AdapterGateFailed`` when its newest held-out retention is below
    ``[adapters] min_retention`` or was never measured; ``NoAdapter`` when none is
    enabled; ``AdapterStale`` when either space's fingerprint changed since the fit."""
    key = (ws.config.manifest_path, ref)
    now = time.monotonic()
    with _cache_lock:
        hit = _resolved.get(key)
    if hit is not None and now - hit[0] < REFRESH_SECONDS:
        return hit[1]
    collection, source, target = parse_adapter_ref(ref)
    art = ws.manifest.enabled_artifact(KIND, collection, artifact_name(source, target))
    if art is None:
        raise NoAdapter(collection, source, target)
    sa = _resolve(ws, art)
    threshold = ws.config.adapters.min_retention
    if sa.retention is None or sa.retention < threshold:
        raise AdapterGateFailed(collection, f"{art.name} v{art.version}", sa.retention,
                                threshold)
    with _cache_lock:
        _resolved[key] = (now, sa)
    return sa


def enable(ws: Workspace, collection: str, source: str, target: str,
           version: int) -> Artifact:
    """Enable version ``version`` of the adapter ``source -> target`` (the others are
    disabled; logged by the store). ``NoAdapter`` when there is no such version."""
    art = ws.manifest.artifact(KIND, collection, artifact_name(source, target), version)
    if art is None:
        raise NoAdapter(collection, source, target, detail=f"no version {version}")
    out = ws.manifest.enable_artifact(art.id)
    _forget(ws)
    return out



def export(ws: Workspace, collection: str, source: str, target: str, path: str,
           version: int | None = None) -> Artifact:
    """Write the enabled version (or ``version``) of adapter ``source -> target`` to the
    file ``path`` (the archive :func:`~vecver.adapters.base.load_adapter` reads; what a
    derived space's ``derive = {from = ..., adapter = FILE}`` names), atomically.
    ``NoAdapter`` when there is no such adapter; ``InvalidArgument`` for a path in a
    directory that does not exist."""
    import os

    ws.manifest.require_collection(collection)
    name = artifact_name(source, target)
    art = (ws.manifest.enabled_artifact(KIND, collection, name) if version is None
           else ws.manifest.artifact(KIND, collection, name, version))
    if art is None:
        raise NoAdapter(collection, source, target,
                        detail="" if version is None else f"no version {version}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InvalidArgument("output", path, "a path in an existing directory")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(art.data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return art
