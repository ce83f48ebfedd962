"""Query adapters on BBC News: how much of a full re-embed's recall a fitted adapter keeps.

Setup (bench/_bbc.py): the 2,225 article bodies are the index; the articles are split in
half (stratified by topic, seed 0); the titles of the query half are the queries (each
judged against the article(s) it heads); training pairs come from the *other* half
only: its article bodies first (what ``vecver adapter fit`` pairs in a collection: the
stored old vector of a document next to its new-model embedding), then its body sentences
(never a title, never a sentence of a query's article), seeded order. mpnet is slow here
(~1 text/s on this shared machine), so its pool may hold the bodies only: the tables say
how many pairs each row used.
Every text is truncated to 128 tokens by every model (bench/_bbc.py's spaces).

For each old <- new pair: the index holds the OLD model's document vectors; a query is
embedded by the NEW model and mapped through an adapter fitted on (new, old) training
pairs. Rows: old model for queries (the ceiling while it exists), full re-embed (new
model on new-model document vectors, exact search), unmapped new-model queries (when the
dimensions match), each adapter kind. Retention = adapter recall@10 / full re-embed
recall@10; overlap@10 = share of the full re-embed's exact top-10 the adapter's top-10
holds. Search is exact (brute force), so the figures are the adapter's, not an index's.

    python bench/adapter_bench.py --embed-only      # fill the embedding cache (slow: mpnet)
    python bench/adapter_bench.py                   # the tables -> bench/results/adapter-*.txt
"""

from __future__ import annotations

import os

# one BLAS thread: the per-query cost, and less fighting over the 2 shared cores
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bbc  # noqa: E402

N_TRAIN = 10_000
TRAIN_SEED = 1
PAIRS = (("minilm-l6", "mpnet"), ("minilm-l6", "minilm-l3"), ("mpnet", "minilm-l6"))


@functools.lru_cache(maxsize=1)
def data() -> dict[str, object]:
    sp = _bbc.split(0.5, seed=0)
    qs = _bbc.queries(sp.query_articles)
    pool = [s.text for s in _bbc.sentences(sp.train_articles)]
    rng = random.Random(TRAIN_SEED)
    rng.shuffle(pool)
    return {
        "docs": [d["text"] for d in _bbc.documents()],
        "doc_ids": [d["id"] for d in _bbc.documents()],
        "all_queries": [q.text for q in _bbc.queries()],
        "queries": qs,
        "train": pool[:N_TRAIN],
        "pool_size": len(pool),
    }


#: training sentences are embedded in blocks of this many (each its own cache entry), so a
#: slow model (mpnet: 1-5 texts/s on this shared 2-core machine) contributes what it has
BLOCK = 1000


def n_train(model: str) -> int:
    """Training sentences of ``model`` in the cache (whole blocks, in order)."""
    d = data()
    if _bbc.cached(model, d["train"], "doc"):  # type: ignore[arg-type]
        return N_TRAIN
    n = 0
    while n < N_TRAIN and _bbc.cached(model, d["train"][n:n + BLOCK], "doc"):  # type: ignore[index]
        n += BLOCK
    return n


def train_vectors(model: str, d: dict[str, object], n: int | None = None) -> np.ndarray:
    n = n_train(model) if n is None else n
    if _bbc.cached(model, d["train"], "doc"):  # type: ignore[arg-type]
        return _bbc.embed(model, d["train"], "doc")[:n]  # type: ignore[arg-type]
    blocks = [_bbc.embed(model, d["train"][i:i + BLOCK], "doc")  # type: ignore[index]
              for i in range(0, n, BLOCK)]
    return np.concatenate(blocks) if blocks else np.zeros((0, 1), np.float32)


def train_articles(d: dict[str, object]) -> np.ndarray:
    """Rows (in the document list) of the training half's articles."""
    pos = {i: j for j, i in enumerate(d["doc_ids"])}  # type: ignore[call-overload]
    return np.array([pos[i] for i in _bbc.split(0.5, seed=0).train_articles])


def pool(model: str, d: dict[str, object]) -> np.ndarray:
    """The training pool of ``model``, in a fixed order: the article bodies of the training
    half (the collection's own documents, as ``vecver adapter fit`` pairs them), then the
    body sentences of that half embedded so far (:func:`n_train`)."""
    bodies = _bbc.embed(model, d["docs"], "doc")[train_articles(d)]  # type: ignore[arg-type]
    sents = train_vectors(model, d)
    return np.vstack([bodies, sents]) if len(sents) else bodies


def embed_all(models: list[str]) -> None:
    d = data()
    for m in models:
        _bbc.embed(m, d["all_queries"], "query")  # type: ignore[arg-type]
        _bbc.embed(m, d["docs"], "doc")  # type: ignore[arg-type]
        for i in range(0, N_TRAIN, BLOCK):
            _bbc.embed(m, d["train"][i:i + BLOCK], "doc")  # type: ignore[index]


def topk(q: np.ndarray, d: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact top-k (cosine: rows are unit length) per query row."""
    s = q @ d.T
    idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, idx, axis=1), axis=1, kind="stable")
    out: np.ndarray = np.take_along_axis(idx, order, axis=1)
    return out


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


class Eval:
    """Queries (rows of the query half) judged against document ids."""

    def __init__(self, d: dict[str, object]) -> None:
        self.doc_ids = list(d["doc_ids"])  # type: ignore[call-overload]
        qs = d["queries"]
        pos = {t: i for i, t in enumerate(d["all_queries"])}  # type: ignore[attr-defined]
        self.rows = np.array([pos[q.text] for q in qs])  # type: ignore[attr-defined]
        self.relevant = [q.relevant for q in qs]  # type: ignore[attr-defined]

    def score(self, idx: np.ndarray, k: int = 10) -> tuple[float, float]:
        rec, mrr = [], []
        for row, rel in zip(idx, self.relevant):
            ids = [self.doc_ids[j] for j in row[:k]]
            rec.append(_bbc.recall_at_k(ids, rel, k))
            mrr.append(_bbc.mrr_at_k(ids, rel, k))
        return float(np.mean(rec)), float(np.mean(mrr))


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b)]))


def latency(ad: object, q: np.ndarray) -> tuple[float, float, float]:
    """(batched, single, single through the 2-D path) CPU microseconds per query of
    ``ad.transform`` (best of 7 runs; CPU time rather than wall time, because this
    machine is shared: wall time here mostly measures waiting for a core). The third is
    the baseline of the single-query path: one query as a 1 x d matrix, which is what a
    1-D query cost before the vector fast path, measured in the same run."""
    tf = ad.transform  # type: ignore[attr-defined]
    qb = np.ascontiguousarray(q, dtype=np.float32)
    tf(qb)
    best_b = min(_timed(lambda: tf(qb)) for _ in range(7)) / len(qb)
    singles = [np.ascontiguousarray(r) for r in qb[:500]]

    def one() -> None:
        for r in singles:
            tf(r)
    best_s = min(_timed(one) for _ in range(7)) / len(singles)
    rows = [r[None, :] for r in singles]

    def one_2d() -> None:
        for r in rows:
            tf(r)[0]
    best_2d = min(_timed(one_2d) for _ in range(7)) / len(singles)
    return best_b * 1e6, best_s * 1e6, best_2d * 1e6


def _timed(fn: object) -> float:
    t0 = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - t0


#: (row label, kind, options)
KIND_ROWS: list[tuple[str, str, dict[str, object]]] = [
    ("procrustes, NOT centred", "procrustes", {"center": False}),
    ("procrustes (centred)", "procrustes", {}),
    ("procrustes-diag", "procrustes-diag", {}),
    ("contrastive (InfoNCE from Procrustes)", "contrastive", {}),
    ("contrastive, not centred start", "contrastive", {"center": False}),
    ("lowrank (ridge+rank on val.)", "lowrank", {}),
    ("mlp (residual, early stop)", "mlp", {"epochs": 40, "patience": 6, "min_epochs": 8}),
]


def run_pair(old: str, new: str, d: dict[str, object], ev: Eval, n_pairs: int,
             out: list[str]) -> dict[str, float]:
    from vecver.adapters import adapter_class

    qo = _bbc.embed(old, d["all_queries"], "query")[ev.rows]  # type: ignore[arg-type]
    qn = _bbc.embed(new, d["all_queries"], "query")[ev.rows]  # type: ignore[arg-type]
    do = _bbc.embed(old, d["docs"], "doc")  # type: ignore[arg-type]
    dn = _bbc.embed(new, d["docs"], "doc")  # type: ignore[arg-type]
    to_all, tn_all = pool(old, d), pool(new, d)
    n = min(n_pairs, len(to_all), len(tn_all))
    to, tn = to_all[:n], tn_all[:n]
    full = topk(qn, dn)
    rf, mf = ev.score(full)
    rows: list[list[str]] = []

    def add(label: str, idx: np.ndarray, pairs: str = "-", fit_s: str = "-",
            lat: tuple[str, str, str] = ("-", "-", "-")) -> float:
        r, m = ev.score(idx)
        rows.append([label, f"{r:.3f}", f"{m:.3f}", f"{r / rf:.3f}", f"{overlap(idx, full):.3f}",
                     pairs, fit_s, *lat])
        return r / rf

    add(f"old model {old} for queries (ceiling)", topk(qo, do))
    add(f"full re-embed with {new}", full)
    if qn.shape[1] == do.shape[1]:
        add(f"unmapped {new} queries on {old} docs", topk(unit(qn), do))
    results: dict[str, float] = {}
    for label, kind, opts in KIND_ROWS:
        t0 = time.perf_counter()
        ad = adapter_class(kind).fit(tn, to, seed=0, **opts)
        fit_s = time.perf_counter() - t0
        mapped = ad.transform(qn)
        lb, ls, l2 = latency(ad, qn)
        results[label] = add(f"adapter: {label}", topk(mapped, do), str(n), f"{fit_s:.2f}",
                             (f"{lb:.1f}", f"{ls:.1f}", f"{l2:.1f}"))
        print(f"  [{old}<-{new}] {label}: retention {results[label]:.3f} (fit {fit_s:.1f}s)",
              file=sys.stderr, flush=True)
    header = ["row", "recall@10", "MRR@10", "retention", "overlap@10", "pairs", "fit s",
              "us/q batch", "us/q single", "(as 1xd)"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out.append(f"## {old} (old, {do.shape[1]}-d index) <- {new} (new, {dn.shape[1]}-d "
               f"queries); {len(ev.rows)} queries, {len(do)} documents, exact search")
    for r in [header, *rows]:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    # the contrastive fit depends on its seed (validation split, batch order): the spread
    seeds = []
    for seed in (0, 1, 2):
        ad = adapter_class("contrastive").fit(tn, to, seed=seed)
        seeds.append(ev.score(topk(ad.transform(qn), do))[0] / rf)
    out.append(f"contrastive retention over seeds 0, 1, 2: "
               f"{', '.join(f'{r:.3f}' for r in seeds)} (mean {np.mean(seeds):.3f})")
    out.append("")
    return results


def run_curve(old: str, new: str, d: dict[str, object], ev: Eval, sizes: list[int],
              out: list[str]) -> None:
    from vecver.adapters import adapter_class

    qn = _bbc.embed(new, d["all_queries"], "query")[ev.rows]  # type: ignore[arg-type]
    do = _bbc.embed(old, d["docs"], "doc")  # type: ignore[arg-type]
    dn = _bbc.embed(new, d["docs"], "doc")  # type: ignore[arg-type]
    rf, _ = ev.score(topk(qn, dn))
    to_all, tn_all = pool(old, d), pool(new, d)
    avail = min(len(to_all), len(tn_all))
    kinds: list[tuple[str, dict[str, object]]] = [("procrustes", {}), ("lowrank", {}),
                                                  ("contrastive", {})]
    out.append(f"## retention vs training pairs: {old} <- {new}")
    out.append("pairs   " + "  ".join(k.ljust(11) for k, _ in kinds))
    for n in sizes:
        if n > avail:
            out.append(f"{n:<7} (only {avail} training sentences embedded by both models)")
            continue
        cells = []
        for kind, opts in kinds:
            ad = adapter_class(kind).fit(tn_all[:n], to_all[:n], seed=0, **opts)
            r, _ = ev.score(topk(ad.transform(qn), do))
            cells.append(f"{r / rf:.3f}".ljust(11))
        out.append(f"{n:<7} " + "  ".join(cells))
    out.append("")


def estimator_check(old: str, new: str) -> str:
    """How well the gate's held-out protocol tracks the real (title-query) retention.

    The query half's articles stand in for held-out documents: each one's lead (the
    first W words of its first sentence, ``vecver.adapters.service.lead``) is a query for
    it, searched exactly among C candidate documents, adapter (mapped new-model lead on
    old-model vectors) against full re-embed (new on new). Rows: W x C, the old protocol
    (32 words, ~230 held-out documents, no distractors) and the current one (8 words,
    held-out documents plus ~2,000 distractors); columns: adapters of known real
    retention (the titles over all 2,225 documents, first line)."""
    from vecver.adapters import adapter_class
    from vecver.adapters.service import lead

    d = data()
    ev = Eval(d)
    qn = _bbc.embed(new, d["all_queries"], "query")[ev.rows]  # type: ignore[arg-type]
    do = _bbc.embed(old, d["docs"], "doc")  # type: ignore[arg-type]
    dn = _bbc.embed(new, d["docs"], "doc")  # type: ignore[arg-type]
    rf, _ = ev.score(topk(qn, dn))
    to_all, tn_all = pool(old, d), pool(new, d)
    fits = {}
    for kind, n in (("procrustes", 500), ("procrustes", 1000), ("procrustes", 5000),
                    ("lowrank", 5000), ("contrastive", 5000)):
        fits[f"{kind}/{n}"] = adapter_class(kind).fit(tn_all[:n], to_all[:n], seed=0)
    truth = {k: ev.score(topk(a.transform(qn), do))[0] / rf for k, a in fits.items()}
    pos = {i: j for j, i in enumerate(d["doc_ids"])}  # type: ignore[call-overload]
    held = np.array([pos[i] for i in _bbc.split(0.5, seed=0).query_articles])
    rng = np.random.default_rng(0)
    small = np.sort(held[rng.permutation(len(held))[:230]])
    names = list(fits)
    width = max(len(n) for n in names) + 2
    out = [
        "# Held-out estimate of retention vs the real figure (bench/adapter_bench.py "
        "--estimator)",
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load "
        f"{os.getloadavg()[0]:.1f}; {old} <- {new}; pseudo-query = the first W words of an "
        "article's first sentence, relevant = that article; C candidates, exact search",
        "",
        "protocol".ljust(42) + "full R@10  " + "".join(n.ljust(width) for n in names),
        "REAL: titles, all 2225 documents".ljust(42) + f"{rf:.3f}".ljust(11)
        + "".join(f"{truth[n]:.3f}".ljust(width) for n in names),
    ]
    for words in (32, 8):
        ql = _bbc.embed(new, [lead(str(d["docs"][j]), words)  # type: ignore[index]
                              for j in held], "query")
        for label, cand in (("~230 held-out (old protocol)", small),
                            ("1,100 held-out", held),
                            ("held-out + distractors: 2,225", np.arange(len(do)))):
            cset = {int(c): i for i, c in enumerate(cand)}
            rows = [i for i, j in enumerate(held) if int(j) in cset]
            tgt = np.array([cset[int(held[i])] for i in rows])

            def rec(idx: np.ndarray) -> float:
                return float(np.mean([tgt[r] in idx[r] for r in range(len(rows))]))  # noqa: B023
            full = rec(topk(ql[rows], dn[cand]))
            est = {n: rec(topk(a.transform(ql[rows]), do[cand])) / full
                   for n, a in fits.items()}
            out.append(f"{words} words, {label}".ljust(42) + f"{full:.3f}".ljust(11)
                       + "".join(f"{est[n]:.3f}".ljust(width) for n in names))
    out.append("")
    return "\n".join(out)


def latency_check(n_queries: int = 1000) -> str:
    """Added query latency of the affine kinds across dimensions, without embeddings:
    adapters fitted on random pairs (the cost of ``transform`` depends on the shapes
    only), each figure the median of 3 runs of :func:`latency` (itself best of 7), the
    single-query fast path side by side with the same query as a 1 x d matrix (the
    path one query took before)."""
    from vecver.adapters import adapter_class

    rng = np.random.default_rng(0)
    out = ["# Added query latency across dimensions (bench/adapter_bench.py --latency)",
           f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load "
           f"{os.getloadavg()[0]:.1f}; CPU us per query, median of 3 x best of 7, numpy "
           "BLAS on 1 thread; 'as 1xd': the same single query passed as a 1 x d matrix",
           "",
           f"{'kind':<14} {'shape':<11} {'batched':>8} {'single':>8} {'as 1xd':>8}"]
    for ds, dt in ((384, 384), (768, 384), (384, 768)):
        x = rng.standard_normal((3000, ds)).astype(np.float32)
        y = rng.standard_normal((3000, dt)).astype(np.float32)
        q = x[:n_queries]
        for kind, opts in (("procrustes", {}), ("contrastive", {"epochs": 1}),
                           ("lowrank", {}), ("mlp", {"epochs": 2})):
            ad = adapter_class(kind).fit(x, y, seed=0, **opts)
            runs = [latency(ad, q) for _ in range(3)]
            med = [float(np.median([r[i] for r in runs])) for i in range(3)]
            out.append(f"{kind:<14} {f'{ds}->{dt}':<11} {med[0]:>8.1f} {med[1]:>8.1f} "
                       f"{med[2]:>8.1f}")
    out.append("")
    return "\n".join(out)


def product_check(old: str, new: str, n_pairs: int) -> str:
    """The same pair through the product: a collection of all 2,225 articles in the old
    space (local backend), ``vecver.adapters.fit`` (pairs from the stored vectors) and its
    held-out retention (what the gate reads), then ``evaluate`` with the query half's
    judged titles (the new space is not built: the sub-corpus method)."""
    import json
    import tempfile

    import vecver
    import vecver.adapters as adapters

    d = data()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "vecver.toml").write_text(_bbc.cached_config_text({"old": old, "new": new},
                                                                  start="old"))
        _bbc.preload(old, d["docs"], "doc")  # type: ignore[arg-type]
        _bbc.preload(new, d["docs"], "doc")  # type: ignore[arg-type]
        _bbc.preload(new, d["all_queries"], "query")  # type: ignore[arg-type]
        qfile = root / "judged.jsonl"
        qfile.write_text("".join(json.dumps({"query": q.text, "relevant": sorted(q.relevant)})
                                 + "\n" for q in d["queries"]))  # type: ignore[attr-defined]
        with vecver.Workspace(root / "vecver.toml", progress=False) as ws:
            ws.collection("news").upsert([vecver.Document(x["id"], x["text"], x["metadata"])
                                          for x in _bbc.documents()])
            t0 = time.perf_counter()
            rep = adapters.fit(ws, "news", "new", "old", pairs=n_pairs, stratify="topic")
            fit_s = time.perf_counter() - t0
            _, judged = adapters.evaluate(ws, "news", queries=str(qfile))
            # the real figure: build the new space, then the judged titles over all of it
            vecver.migrate(ws, "news", "new")
            _, real = adapters.evaluate(ws, "news", queries=str(qfile))
    ev = rep.evaluation
    return "\n".join([
        f"## through the product: vecver.adapters.fit(ws, 'news', new={new}, old={old}, "
        f"pairs={n_pairs}, stratify='topic'): {rep.pairs} pairs from the stored vectors, "
        f"{fit_s:.1f}s (sampling, embedding, fit, held-out evaluation)",
        f"held-out retention (gate): {ev['retention']:.3f} ({ev['queries']} held-out "
        f"documents' leads as pseudo-queries over {ev['candidates']} documents; recall@10 "
        f"adapter {ev['recall_adapter']:.3f}, full {ev['recall_full']:.3f})",
        f"judged titles, sub-corpus method: retention {judged.retention:.3f} "
        f"({judged.queries} queries over {judged.candidates} documents; recall@10 adapter "
        f"{judged.recall_adapter:.3f}, full {judged.recall_full:.3f})",
        f"judged titles, the new space built (namespace method, the real figure): retention "
        f"{real.retention:.3f} ({real.queries} queries over {real.candidates} documents; "
        f"recall@10 adapter {real.recall_adapter:.3f}, full {real.recall_full:.3f})",
        "",
    ])


def main(pairs: list[tuple[str, str]], n_pairs: int, sizes: list[int]) -> None:
    d = data()
    ev = Eval(d)
    from vecver.adapters import KINDS  # noqa: F401 - fail early if vecver is missing

    head = [
        "# Query adapters on BBC News (bench/adapter_bench.py)",
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} (shared with other work)",
        f"# queries: titles of the query half ({len(ev.rows)}); index: all {len(d['docs'])} "
        "article bodies (128 tokens); training pairs: the OTHER half's article bodies, then "
        f"its body sentences (pool {d['pool_size']}, seeded order), never a title",
        "# retention = recall@10 / full re-embed recall@10; overlap@10 = share of the full "
        "re-embed's exact top-10; latency = adapter.transform only, CPU us per query (best of 7;"
        " numpy BLAS on 1 thread), batched (all queries at once) and one query per call",
        "",
    ]
    for old, new in pairs:
        out = list(head)
        res = run_pair(old, new, d, ev, n_pairs, out)
        run_curve(old, new, d, ev, sizes, out)
        text = "\n".join(out)
        print(text, flush=True)
        path = HERE / "results" / f"adapter-{old}-from-{new}.txt"
        path.write_text(text + "\n")
        best = max(res.values())
        print(f"-> {path} (best retention {best:.3f})", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--embed-only", action="store_true")
    ap.add_argument("--models", default="minilm-l3,minilm-l6,mpnet")
    ap.add_argument("--pairs", default=",".join(f"{o}<-{n}" for o, n in PAIRS),
                    help="old<-new pairs, comma separated")
    ap.add_argument("--n-pairs", type=int, default=5000)
    ap.add_argument("--sizes", default="500,1000,2000,5000,10000")
    ap.add_argument("--product", action="store_true",
                    help="only the through-the-product check of the first pair")
    ap.add_argument("--latency", action="store_true",
                    help="only the added-latency table across dimensions (no embeddings)")
    ap.add_argument("--estimator", action="store_true",
                    help="only the held-out estimator check of the first pair")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if a.embed_only:
        embed_all(a.models.split(","))
    elif a.latency:
        text = latency_check()
        print(text)
        (HERE / "results" / "adapter-latency.txt").write_text(text + "\n")
    elif a.estimator:
        o, n = a.pairs.split(",")[0].split("<-")
        text = estimator_check(o, n)
        print(text)
        (HERE / "results" / f"adapter-estimator-{o}-from-{n}.txt").write_text(text + "\n")
    elif a.product:
        o, n = a.pairs.split(",")[0].split("<-")
        text = product_check(o, n, a.n_pairs)
        print(text)
        (HERE / "results" / f"adapter-product-{o}-from-{n}.txt").write_text(text)
    else:
        chosen = [tuple(p.split("<-")) for p in a.pairs.split(",")]
        main(chosen, a.n_pairs, [int(x) for x in a.sizes.split(",")])  # type: ignore[arg-type]
