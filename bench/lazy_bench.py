"""What lazy on-read re-embedding and the read metrics cost a read: search latency with no
observer, with the observers in their default asynchronous mode, and with ``lazy="sync"``,
side by side in one run.

    python bench/lazy_bench.py [--docs 5000] [--queries 600] [-k 10] [--flush 0.05]

Setup (not timed): N synthetic documents ingested into collection ``c`` (space v1,
``hash`` embedder, dim 64, local backend), then a lazy-only migration to v2 (dual-write
on, v2 empty: every hit of a read is missing there). The workspace directory is copied
three times, one per variant, each opened by its own Workspace in this process:

- none:  ``[lazy] enabled = false`` — no observer at all (the baseline);
- async: the default observers (metrics + lazy) with ``flush_interval`` = --flush
         seconds (short on purpose: the background flusher then competes with the reads
         as much as it ever does — it checks the building space and queues the missing
         hits, and writes read counts and counters, every --flush seconds);
- sync:  ``search(..., lazy="sync")``: the missing hits are re-embedded and written into
         v2 before the read returns (at most ``[lazy] sync_limit`` per call), and the
         searcher reads again — what a caller pays when it asks to wait.

Measured per call with perf_counter_ns: ``Collection.search(text, k)``, the observers
included (they run inside the read's wall time). The variants run interleaved in blocks of
different queries in a rotating order, so that machine noise hits them alike; p50 / p99 in
microseconds, and the paired median difference async - none. At the end, what the async
variant's flusher wrote (documents queued, reads counted) shows that it did its work.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - before vecver: selects the tree to measure
from _common import announce, loadavg, percentile, synthetic_docs, synthetic_queries


def _config(root: Path, lazy: str) -> Path:
    p = root / "vecver.toml"
    p.write_text(f"""\
[manifest]
path = "vecver.db"

[backend]
name = "local"
path = "vectors"

[spaces.v1]
embedder = "hash"
dimension = 64

[spaces.v2]
embedder = "hash"
dimension = 64
options = {{ seed = 1 }}

[collections.c]
space = "v1"

[lazy]
{lazy}
""", encoding="utf-8")
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--flush", type=float, default=0.05)
    ap.add_argument("--block", type=int, default=20)
    args = ap.parse_args()
    announce()
    import vecver
    from vecver.ops.backfill import migrate

    base = Path(tempfile.mkdtemp(prefix="vv-lazy-bench-"))
    try:
        seed_dir = base / "seed"
        seed_dir.mkdir()
        cfg = _config(seed_dir, "enabled = false")
        docs = list(synthetic_docs(args.docs))
        with vecver.open(str(cfg), progress=False) as ws:
            coll = ws.collection("c")
            for i in range(0, len(docs), 1000):
                coll.upsert([vecver.Document(d["id"], d["text"], d.get("metadata", {}))
                             for d in docs[i:i + 1000]])
            migrate(ws, "c", "v2", no_backfill=True)
        lazy_cfg = {
            "none": "enabled = false",
            "async": f"enabled = true\nflush_interval = {args.flush}",
            "sync": "enabled = true\nflush_interval = 3600",
        }
        wss = {}
        for name, table in lazy_cfg.items():
            d = base / name
            shutil.copytree(seed_dir, d)
            wss[name] = vecver.open(str(_config(d, table)), progress=False)
        colls = {n: w.collection("c") for n, w in wss.items()}
        queries = synthetic_queries(args.queries)
        for c in colls.values():  # warm: model, index loaded, caches
            for q in queries[:5]:
                c.search(q, args.k)
        times: dict[str, list[float]] = {n: [] for n in colls}
        order = list(colls)
        per_query: dict[str, dict[int, float]] = {n: {} for n in colls}
        blocks = [queries[i:i + args.block] for i in range(0, len(queries), args.block)]
        for b, block in enumerate(blocks):
            rot = order[b % len(order):] + order[:b % len(order)]
            for name in rot:
                c = colls[name]
                sync = name == "sync"
                for j, q in enumerate(block):
                    t0 = time.perf_counter_ns()
                    if sync:
                        c.search(q, args.k, lazy="sync")
                    else:
                        c.search(q, args.k)
                    us = (time.perf_counter_ns() - t0) / 1000.0
                    times[name].append(us)
                    per_query[name][b * args.block + j] = us
        from vecver.read import lazy as lazy_mod
        from vecver.read.metrics import stats

        lazy_mod.flush(wss["async"])
        s_async = stats(wss["async"], "c")
        s_sync = stats(wss["sync"], "c")
        print(f"docs={args.docs} queries={len(queries)} k={args.k} flush={args.flush}s "
              f"block={args.block} load={loadavg()}")
        print(f"{'variant':<8} {'p50 us':>10} {'p99 us':>10} {'mean us':>10}")
        for name in order:
            xs = times[name]
            print(f"{name:<8} {percentile(xs, 50):>10.1f} {percentile(xs, 99):>10.1f} "
                  f"{statistics.fmean(xs):>10.1f}")
        diffs = [per_query["async"][i] - per_query["none"][i] for i in per_query["none"]]
        print(f"async - none, paired median: {statistics.median(diffs):.1f} us; "
              f"p99(async) - p99(none): "
              f"{percentile(times['async'], 99) - percentile(times['none'], 99):.1f} us")
        print(f"async flusher did: {s_async.lazy.enqueued} documents queued for v2, "
              f"{s_async.read_total} reads counted; sync re-embedded "
              f"{s_sync.lazy.sync_embedded} documents before returning")
        # the observers' own cost on the read thread, without the flusher: real events
        # (recorded from the baseline workspace) handed to fresh observers
        events: list = []

        class Recorder:
            def on_search(self, event: object) -> None:
                events.append(event)

        wss["none"].read_observers.append(Recorder())
        for q in queries[:200]:
            colls["none"].search(q, args.k)
        from vecver.read.lazy import LazyObserver
        from vecver.read.metrics import Flusher, MetricsObserver

        quiet = Flusher(3600.0)
        quiet._closed = True  # never starts a thread: only the read-thread work is timed
        for name, obs in (("metrics", MetricsObserver(wss["sync"], quiet)),
                          ("lazy", LazyObserver(wss["sync"], quiet))):
            costs = []
            for e in events:
                t0 = time.perf_counter_ns()
                obs.on_search(e)
                costs.append((time.perf_counter_ns() - t0) / 1000.0)
            print(f"on_search of the {name} observer on the read thread (async): p50 "
                  f"{percentile(costs, 50):.1f} us, p99 {percentile(costs, 99):.1f} us "
                  f"over {len(costs)} events")
        for w in wss.values():
            w.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
