"""Milvus search on a tie-free corpus: vecver next to the raw client, one run, the real
Milvus 2.3.5 server (embedded, started once, stopped at the end):

    python bench/milvus_search_bench.py [--docs 10000] [--dim 64] [--queries 100]
                                        [--batches 5] [--rounds 3] [--corpus gauss|ties]
                                        [--out FILE]

``db_bench.py`` searches the ``hash`` embedder's corpus, where most queries have exact
ties (every list with a near tie needs the hits' vectors, whichever way they are asked).
Here the namespace holds standard normal vectors and the queries are normal too (no ties,
as with a real embedding model), written through the backend (``upsert``) untimed. Rows,
k=10, Strong, interleaved in rotating order, median of the rounds' p50 / p99 (us):
``raw`` (``search`` with vecver's output fields, no vectors, hits read), ``raw+vec`` (the
same with the vectors: what vecver sent before session 6), ``backend.search`` (the default
``rescore``: distances; the vectors of hits in near ties read in a second request),
``backend.search rescore=false``.
``--corpus ties`` gives each vector to 5 documents, so that every list holds exact ties.
Single queries and batches of 64. Target: p50 overhead <= 10% or <= 50 us.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
from db_bench import Out, milvus_server  # noqa: E402

K = 10
QBATCH = 64


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--corpus", choices=("gauss", "ties"), default="gauss",
                    help="gauss: standard normal vectors (no ties); ties: each vector "
                    "held by 5 documents (every list holds exact ties)")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent / "results" / "milvus-search.txt")
    args = ap.parse_args()
    out = Out(args.out)
    out(f"# milvus_search_bench.py, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    out(f"# command: python bench/milvus_search_bench.py {' '.join(sys.argv[1:])}")
    out(f"# load at start {C.loadavg()}")
    out(f"# {C.describe()}")
    from vecver.backends.milvus import MilvusBackend
    from vecver.backends.milvus._backend import _HIT_FIELDS, F_VECTOR
    from vecver.testing import make_spec
    from vecver.types import Record, Stamp

    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp, \
            milvus_server(Path(tmp) / "milvus", out) as uri:  # fmt: skip
        be = MilvusBackend(uri)
        fast = MilvusBackend(uri, rescore=False)
        spec = make_spec("vv_gauss", args.dim, "cosine")
        be.create_namespace(spec)
        rng = np.random.default_rng(3)
        vecs = rng.standard_normal((args.docs, args.dim)).astype(np.float32)
        if args.corpus == "ties":
            vecs = vecs[np.arange(args.docs) % max(args.docs // 5, 1)]
        for lo in range(0, args.docs, 256):
            be.upsert(spec.name, [
                Record(f"g{i:07d}", vecs[i], f"text {i}", {"i": i},
                       Stamp.now(spec.fingerprint, f"g{i:07d}", f"text {i}"))
                for i in range(lo, min(lo + 256, args.docs))])  # fmt: skip
        client = be.client
        params = {"metric_type": "COSINE", "params": {"ef": 128}}

        def raw_with(fields: list[str]) -> Callable[[Any], Any]:
            def f(q: Any) -> Any:
                res = client.search(spec.name, data=q.tolist(), limit=K, output_fields=fields,
                                    search_params=params, anns_field=F_VECTOR,
                                    consistency_level="Strong")  # fmt: skip
                return [[(h["id"], h["distance"], h["entity"]) for h in row] for row in res]

            return f

        variants: dict[str, Callable[[Any], Any]] = {
            "raw": raw_with(list(_HIT_FIELDS)),
            "raw+vec": raw_with([*_HIT_FIELDS, F_VECTOR]),
            "backend.search": lambda q: be.search(spec.name, q, K),
            "backend.search rescore=false": lambda q: fast.search(spec.name, q, K),
        }
        singles = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
        batches = [rng.standard_normal((QBATCH, args.dim)).astype(np.float32)
                   for _ in range(args.batches)]  # fmt: skip
        for f in variants.values():  # warm up
            for q in singles[:5]:
                f(q[None, :])
        names = list(variants)
        query_calls = [0]
        client_query = be.client.query

        def counted_query(*a: Any, **kw: Any) -> Any:
            query_calls[0] += 1
            return client_query(*a, **kw)

        be.client.query = counted_query  # type: ignore[method-assign]
        calls = {"single": 0, "batch": 0}
        reread = {"single": 0, "batch": 0}
        res: dict[str, dict[str, list[tuple[float, float, float]]]] = {
            "single": {n: [] for n in names}, "batch": {n: [] for n in names}}
        for r in range(args.rounds):
            for shape, qs in (("single", [q[None, :] for q in singles]), ("batch", batches)):
                times: dict[str, list[float]] = {n: [] for n in names}
                cpu: dict[str, float] = dict.fromkeys(names, 0.0)
                for qi, q in enumerate(qs):
                    # the order rotates per query: Strong waits for the server's next time
                    # tick, and a fixed order would give one variant a fixed phase
                    at = (r + qi) % len(names)
                    for n in names[at:] + names[:at]:
                        before = query_calls[0]
                        c = time.process_time()
                        t = time.perf_counter()
                        variants[n](q)
                        times[n].append((time.perf_counter() - t) * 1e6)
                        cpu[n] += (time.process_time() - c) * 1e6
                        if n == "backend.search":
                            calls[shape] += 1
                            reread[shape] += query_calls[0] > before
                for n in names:
                    res[shape][n].append((C.percentile(times[n], 50),
                                          C.percentile(times[n], 99), cpu[n] / len(qs)))
            out(f"  round {r + 1} done (load {C.loadavg()})")
        out(f"  the default's searches that re-read near ties' vectors: single "
            f"{reread['single'] / max(calls['single'], 1):.3f}, batches "
            f"{reread['batch'] / max(calls['batch'], 1):.3f}")
        for shape, label in (("single", "single queries"), ("batch", f"batches of {QBATCH}")):
            kind = "tie-free" if args.corpus == "gauss" else "tie-heavy (5 documents per vector)"
            out(f"\n== search latency, k={K}, {label}, {kind} corpus of {args.docs} x "
                f"{args.dim} (us per call, median of rounds: p50 / p99 wall, mean client CPU)")
            med = {n: tuple(float(np.median([x[i] for x in res[shape][n]])) for i in range(3))
                   for n in names}  # fmt: skip
            for n in names:
                out(f"{n:<36} {med[n][0]:>10.0f} / {med[n][1]:.0f}   cpu {med[n][2]:.0f}")
            raw, raw_cpu = med["raw"][0], med["raw"][2]
            for n in names[1:]:
                d = med[n][0] - raw
                ok = d <= max(0.10 * raw, 50.0)
                dc = med[n][2] - raw_cpu
                out(f"overhead {n} - raw (p50) {d:>+10.0f} {d / raw * 100:+.0f}%  "
                    f"{'within target' if ok else 'NOT within target'}; client CPU "
                    f"{dc:+.0f} ({dc / raw * 100:+.0f}% of raw's p50)")
        be.close()
        fast.close()
    out(f"\n# load at end {C.loadavg()}")
    out.close()


if __name__ == "__main__":
    main()
