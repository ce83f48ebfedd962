"""Serving latency of the read routes, side by side in one run: what ``shadow`` adds to
``active`` (the bound issue 8 asks to measure), and what ``dual``, ``canary`` and
``rerank`` cost.

    python bench/shadow_bench.py [--docs 20000] [--dim 64] [--queries 400] [--rounds 3]
                                 [-k 10] [--pace-ms 0]

Setup (not timed): N synthetic documents (bench/_common.py) in collection ``c`` on the
local backend, space v1 active and space v2 (the ``hash`` embedder, another seed) ready —
so every route has both spaces to read. Measured per call of ``Collection.search(text,
k, route=...)`` (perf_counter_ns, wall clock, so background work on the shadow worker
thread shows where it competes with the serving thread for the GIL and the cores):

- active:  the baseline;
- shadow:  active served, the candidate queried on the shadow worker, calls back to back
           (the worker competes with the next calls: the cost under saturation);
- shadow-drained: the same, with the worker's queue drained and the counters written
           (untimed) before each call: what the serving thread itself pays (the hand-off);
           compare it with active-drained, ``active`` after the same untimed drain (the
           drain sleeps and writes the manifest, which alone changes the next call's time);
           for both, the served hits are checked equal to active's for every query of the
           round (a shadow run that changed one aborts the bench);
- dual:    both spaces searched (depth c + 2k each) and fused (rrf);
- canary:  canary:0.5 with a per-query routing key (half the keys read v2);
- rerank:  rerank:50 (v1 top 50 rescored by stored v2 vectors).

The routes run interleaved (blocks of different queries, in a rotating order) so machine
noise hits them alike; each round reports p50/p99 per route, the figures printed are the
medians of the rounds, with the shadow overhead as p50/p99 differences and ratios.
``--no-observers`` removes the workspace's read observers (lazy re-embedding, metrics:
they run on the serving thread for every route but ``shadow``, whose event is told from
the worker). ``--pace-ms`` sleeps between calls (a service under light load: the shadow worker then
runs in the gaps instead of competing with the next call). Also printed: the shadow
comparisons recorded and dropped, from the manifest's counters.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402 - must run before vecver is imported

ROUTES = ("active", "shadow", "active-drained", "shadow-drained", "dual", "canary:0.5",
          "rerank:50")


def run(args: argparse.Namespace) -> None:
    import vecver
    from vecver.read.shadow import counter_prefix

    C.announce()
    root = Path(tempfile.mkdtemp(prefix="vv-shadow-bench-"))
    try:
        cfg = C.write_config(root, args.dim, 512)
        docs = list(C.synthetic_docs(args.docs))
        t0 = time.perf_counter()
        C.ingest(cfg, docs, 512)
        with vecver.open(cfg, progress=False) as ws:
            vecver.migrate(ws, "c", "v2", progress=False)
        print(f"setup: {args.docs} docs in v1 and v2 (dim {args.dim}, local backend) in "
              f"{time.perf_counter() - t0:.1f}s", flush=True)
        queries = C.synthetic_queries(args.queries)
        with vecver.open(cfg, progress=False) as ws:
            coll = ws.collection("c")
            if args.no_observers:
                ws.read_observers.clear()
            for r in ROUTES:  # warm up: plans cached, indexes loaded
                coll.search(queries[0], args.k, route=r.replace("-drained", ""),
                            routing_key="warm")
            coll.searcher.flush()
            ws.manifest.reset_counters("c", "shadow/")
            per_round: dict[str, list[tuple[float, float]]] = {r: [] for r in ROUTES}
            block = 20
            pace = args.pace_ms / 1000.0
            for rnd in range(args.rounds):
                times: dict[str, list[float]] = {r: [] for r in ROUTES}
                answers: dict[str, dict[str, list[tuple[str, float]]]] = {r: {} for r in ROUTES}
                for b0 in range(0, len(queries), block):
                    qs = queries[b0:b0 + block]
                    order = ROUTES[rnd % len(ROUTES):] + ROUTES[:rnd % len(ROUTES)]
                    for r in order:
                        route = r.replace("-drained", "")
                        for i, q in enumerate(qs):
                            key = f"user-{b0 + i}"
                            if r.endswith("-drained"):
                                coll.searcher.flush()
                            t = time.perf_counter_ns()
                            hits = coll.search(q, args.k, route=route, routing_key=key)
                            times[r].append((time.perf_counter_ns() - t) / 1000.0)
                            answers[r][q] = [(h.id, h.score) for h in hits]
                            if pace:
                                time.sleep(pace)
                for r in ("shadow", "shadow-drained"):
                    for q, got in answers[r].items():
                        if got != answers["active"][q] or got != answers["active-drained"][q]:
                            raise SystemExit(f"{r} changed the answer to {q!r}")
                for r in ROUTES:
                    per_round[r].append((C.percentile(times[r], 50), C.percentile(times[r], 99)))
                print(f"round {rnd + 1}: " + ", ".join(
                    f"{r} p50 {per_round[r][-1][0]:.0f}us" for r in ROUTES), flush=True)
            coll.searcher.flush()
            v2 = ws.manifest.namespace_for("c", "v2")
            assert v2 is not None
            prefix = counter_prefix(v2.name)
            cnt = ws.manifest.counters("c", prefix)
        print()
        print(f"Collection.search latency, k={args.k}, {len(queries)} queries x "
              f"{args.rounds} rounds, pace {args.pace_ms} ms, read observers "
              f"{'removed' if args.no_observers else 'as installed'} (medians of the rounds, "
              "us)")
        print(f"{'route':<14}{'p50':>10}{'p99':>10}")
        p = {r: (C.median([x[0] for x in per_round[r]]), C.median([x[1] for x in per_round[r]]))
             for r in ROUTES}
        for r in ROUTES:
            print(f"{r:<14}{p[r][0]:>10.0f}{p[r][1]:>10.0f}")
        for r, base in (("shadow", "active"), ("shadow-drained", "active-drained")):
            a, s = p[base], p[r]
            print(f"{r} overhead over {base}: p50 {s[0] - a[0]:+.0f}us "
                  f"({s[0] / a[0]:.2f}x), p99 {s[1] - a[1]:+.0f}us ({s[1] / a[1]:.2f}x)")
        recorded = int(cnt.get(prefix + "queries", 0))
        dropped = int(cnt.get(prefix + "dropped", 0))
        print(f"shadow comparisons recorded {recorded}, dropped {dropped} (queue full), "
              f"errors {int(cnt.get(prefix + 'errors', 0))}; served answers identical to "
              f"active for all {2 * len(queries) * args.rounds} shadow calls")
        if recorded:
            print(f"mean overlap@{args.k} {cnt.get(prefix + 'overlap_sum', 0) / recorded:.3f}, "
                  f"top-1 agreement {cnt.get(prefix + 'top1_agree', 0) / recorded:.3f} "
                  "(two unrelated hash geometries: low by construction)")
        print(f"load: {C.loadavg()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--pace-ms", type=float, default=0.0)
    ap.add_argument("--no-observers", action="store_true",
                    help="remove the workspace's read observers (lazy re-embedding, "
                         "metrics) to measure the routes alone")
    args: Any = ap.parse_args(argv)
    run(args)


if __name__ == "__main__":
    main()
