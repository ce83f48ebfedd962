"""Updates vs inserts on the local backend (hnswlib over SQLite), old and new write path.

For each path, in one run: insert N new documents (in batches) into an empty namespace,
then update all N of them with new vectors (the same batches again); and, as the fair
baseline for the update (the graph grows from N to 2N elements in both), insert N *more*
new documents into a second namespace already holding N. Time all three. The *in-place*
path is the former one (a rewritten id keeps its hnswlib label and hnswlib updates the
element in place); the *relabel* path is the current one (the old label is marked
deleted, the vector is added under a fresh label, the index is compacted once dead
elements outnumber live ones). A final line times plain hnswlib doing the same
(``add_items`` on existing labels vs on new labels) to show where the cost comes from.
Median of ``--repeat`` runs.

    python bench/local_update_bench.py            # 15,000 x 64-d, batches of 256, 3 runs
    python bench/local_update_bench.py --n 5000 --repeat 1
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import numpy as np

from vecver.backends.local import LocalBackend
from vecver.types import NamespaceSpec, Record, Stamp

FP = "bench-fingerprint"


def _records(ids: range, vectors: np.ndarray, version: int) -> list[Record]:
    out = []
    for j, i in enumerate(ids):
        doc = f"doc-{i:07d}"
        out.append(
            Record(doc, vectors[j], f"text {i} v{version}", {"n": i, "v": version},
                   Stamp(FP, doc, f"h{i}-{version}", time.time()))  # fmt: skip
        )
    return out


def run_backend(
    n: int, dim: int, batch: int, in_place: bool
) -> tuple[float, float, float, float]:
    """Seconds: (insert N into empty, update N, compaction, insert N more into N)."""
    rng = np.random.default_rng(0)
    first = rng.standard_normal((n, dim)).astype(np.float32)
    second = rng.standard_normal((n, dim)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        b = LocalBackend(tmp, snapshot_every=10**9)
        b._params = dataclasses.replace(b._params, in_place_updates=in_place)
        spec = NamespaceSpec("bench", dim, "cosine", FP)
        b.create_namespace(spec)
        batches = [range(s, min(n, s + batch)) for s in range(0, n, batch)]
        inserts = [_records(r, first[r.start : r.stop], 1) for r in batches]
        updates = [_records(r, second[r.start : r.stop], 2) for r in batches]
        t0 = time.perf_counter()
        for recs in inserts:
            b.upsert("bench", recs)
        t1 = time.perf_counter()
        for recs in updates:
            b.upsert("bench", recs)
        t2 = time.perf_counter()
        b.create_namespace(NamespaceSpec("more", dim, "cosine", FP))
        for recs in inserts:
            b.upsert("more", recs)
        more = [_records(range(r.start + n, r.stop + n), second[r.start : r.stop], 1)
                for r in batches]  # fmt: skip
        t5 = time.perf_counter()
        for recs in more:
            b.upsert("more", recs)
        t6 = time.perf_counter()
        ns = b._ns["bench"]
        # what a later update would pay at the compaction threshold, timed on its own
        t3 = time.perf_counter()
        ns.compact()
        t4 = time.perf_counter()
        assert b.count("bench") == n
        hit = b.search("bench", second[7], 1)[0][0]
        assert hit.id == "doc-0000007", hit
        b.close()
    return t1 - t0, t2 - t1, (t4 - t3) if not in_place else 0.0, t6 - t5


def run_hnswlib(n: int, dim: int, batch: int) -> tuple[float, float, float]:
    """Plain hnswlib: (add n, re-add the same labels, add under new labels + mark old)."""
    import hnswlib

    rng = np.random.default_rng(0)
    first = rng.standard_normal((n, dim)).astype(np.float32)
    second = rng.standard_normal((n, dim)).astype(np.float32)
    index = hnswlib.Index(space="cosine", dim=dim)
    index.init_index(max_elements=2 * n + 16, ef_construction=200, M=16)
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        index.add_items(first[s : s + batch], np.arange(s, min(n, s + batch)))
    t1 = time.perf_counter()
    for s in range(0, n, batch):
        index.add_items(second[s : s + batch], np.arange(s, min(n, s + batch)))
    t2 = time.perf_counter()
    for s in range(0, n, batch):
        labels = np.arange(s, min(n, s + batch))
        for lab in labels.tolist():
            index.mark_deleted(lab)
        index.add_items(first[s : s + batch], labels + n)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=15_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"local backend, {args.n:,} docs x {args.dim}-d cosine, batches of {args.batch}, "
          f"median of {args.repeat}")  # fmt: skip
    rows = []
    for label, in_place in (("in-place (old)", True), ("relabel (new)", False)):
        runs = [run_backend(args.n, args.dim, args.batch, in_place) for _ in range(args.repeat)]
        ins = statistics.median(r[0] for r in runs)
        upd = statistics.median(r[1] for r in runs)
        comp = statistics.median(r[2] for r in runs)
        more = statistics.median(r[3] for r in runs)
        rows.append((label, ins, more, upd, comp))
    print(f"{'path':<16} {'insert N':>9} {'insert N more':>14} {'update N':>9} "
          f"{'update/insert-more':>19} {'compact':>8} {'(update+compact)/insert-more':>29}")
    for label, ins, more, upd, comp in rows:
        amort = f"{(upd + comp) / more:29.2f}" if comp else f"{'-':>29}"
        shown = f"{comp:8.2f}" if comp else f"{'-':>8}"
        print(f"{label:<16} {ins:9.2f} {more:14.2f} {upd:9.2f} {upd / more:19.2f} "
              f"{shown} {amort}")  # fmt: skip
    print("(seconds; compact: one rebuild of the index from its live elements, which the new "
          "path runs once dead labels outnumber live ones, i.e. at most once per N updates)")
    old, new = rows[0][3], rows[1][3]
    print(f"updates: {old / new:.1f}x faster than the in-place path")
    runs_h = [run_hnswlib(args.n, args.dim, args.batch) for _ in range(args.repeat)]
    add, readd, relabel = (statistics.median(r[i] for r in runs_h) for i in range(3))
    print(f"plain hnswlib: add {add:.2f} s, re-add same labels {readd:.2f} s "
          f"({readd / add:.1f}x), mark old + add new labels {relabel:.2f} s "
          f"({relabel / add:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
