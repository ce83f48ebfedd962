"""The Pinecone backend against the Pinecone emulator: vecver vs the raw official SDK.

    python bench/pinecone_bench.py [--docs 3000] [--dim 64] [--batch 100] [--queries 300]
                                   [--rounds 3] [--lag 0]

The emulator runs in its own process (``vecver emulator pinecone --port 0``), so client
and server do not share a GIL. Printed side by side, in one run (each measurement
ROUNDS times, interleaved, in alternating order; the medians are compared):

1. Backfill: ``vecver.ops.backfill.backfill`` of DOCS documents from space v1 to v2 (the
   migration started untimed with ``no_backfill``, and abandoned untimed with
   ``vecver.ops.abort.abort`` after each round; both namespaces of one index; the hash
   embedder; batches of BATCH; checkpoints, read-your-writes waits and the final
   verification included; the copy phase alone is timed too, to the last durable batch)
   vs a hand-written loop with the same SDK and embedder: page the
   v1 namespace with ``list`` + ``fetch``, embed the texts, ``upsert`` BATCH vectors at a
   time into another namespace (a new one each round). Throughput ratio vecver / hand
   loop of the medians (target >= 0.95).
2. Search latency: ``Collection.search_vectors(q, k=10)`` on the active space and
   ``PineconeBackend.search`` vs ``Index.query(vector=q, top_k=10,
   include_metadata=True)`` on the same namespace, interleaved in rotating order, p50 /
   p99 in microseconds, the median over ROUNDS passes of QUERIES queries (target: p50
   overhead <= 10% or <= 50 us). The raw call is the same request (vector, top_k,
   namespace, metadata) and pays the same answer decoding (the SDK parses the JSON into
   its model objects before returning); vecver then turns the matches into hits (id,
   text, user metadata, stamp). Also printed: the time each call spends outside the
   SDK's ``query()`` (p50; the client-side cost apart from the emulator's answer), and
   each path's CPU with one answer of the SDK replayed (no network; warm caches, a lower
   bound). ``--only-search`` prints a "ratio" line of these for ``bench/ab_trees.py``.
3. What the emulator sustains: upserts of BATCH vectors and queries per second, from 4
   client threads for 3 s each.

``--only-backfill`` runs section 1 alone, ``--only-search`` section 2 alone. ``--lag S``
starts the emulator with a consistency lag: queries see a write S seconds after it was
acknowledged. vecver's backfill waits until its writes are visible (its read-your-writes
guarantee); the hand loop does not wait at all.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402 - must run before vecver is imported

KEY = "bench-key"


def start_emulator(lag: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    extra = ["--lag", str(lag)] if lag > 0 else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "vecver", "emulator", "pinecone", "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=C.child_env(),
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "serving at" not in line:
        proc.kill()
        raise SystemExit(f"the emulator did not start: {line}")
    return proc, line.rsplit(" ", 1)[-1].strip()


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) this process and process ``pid`` (the
    emulator) used so far; the emulator's part is 0 where /proc cannot be read."""
    own = time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        server = 0.0
    return own + server


def config(root: Path, url: str, dim: int, batch: int) -> Path:
    p = root / "vecver.toml"
    p.write_text(f"""
[manifest]
path = "vecver.db"

[backend]
name = "pinecone"
index = "bench"
host = "{url}"
api_key_env = "VV_BENCH_PC_KEY"

[backfill]
batch_size = {batch}

[spaces.v1]
embedder = "hash"
dimension = {dim}

[spaces.v2]
embedder = "hash"
dimension = {dim}
options = {{ seed = 7 }}

[collections.docs]
space = "v1"
""")
    return p


def hand_backfill(index: Any, src: str, dst: str, embed: Any, batch: int) -> int:
    """The loop a user would write with the SDK: page ids, fetch, embed, upsert."""
    n = 0
    token = None
    pending: list[dict[str, Any]] = []
    while True:
        page = index.list_paginated(namespace=src, limit=100, pagination_token=token)
        ids = [v.id for v in page.vectors]
        if ids:
            got = index.fetch(ids=ids, namespace=src).vectors
            docs = [got[i] for i in ids if i in got]
            texts = [str((d.metadata or {}).get("_vv_text", "")) for d in docs]
            vecs = embed(texts)
            for d, v in zip(docs, vecs):
                pending.append({"id": d.id, "values": v.tolist(), "metadata": d.metadata})
            while len(pending) >= batch:
                index.upsert(vectors=pending[:batch], namespace=dst)
                n += batch
                pending = pending[batch:]
        token = page.pagination.next if page.pagination else None
        if not token:
            break
    if pending:
        index.upsert(vectors=pending, namespace=dst)
        n += len(pending)
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lag", type=float, default=0.0,
                    help="seconds before the emulator's queries see a write (eventual "
                    "consistency; vecver waits for it, the hand loop does not)")
    ap.add_argument("--only-backfill", action="store_true",
                    help="only section 1 (the backfill figures)")
    ap.add_argument("--only-search", action="store_true",
                    help="only section 2 (the search latency figures)")
    args = ap.parse_args()
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    C.announce()
    import numpy as np
    from pinecone import Pinecone

    import vecver
    from vecver.ops.abort import abort
    from vecver.ops.backfill import backfill, migrate
    from vecver.types import Document

    os.environ["VV_BENCH_PC_KEY"] = KEY
    proc, url = start_emulator(args.lag)
    root = Path(tempfile.mkdtemp(prefix="vv-pc-bench-"))
    try:
        print(f"emulator {url}; docs={args.docs} dim={args.dim} batch={args.batch}; "
              f"lag {args.lag} s; load {C.loadavg()}")
        ws = vecver.Workspace(str(config(root, url, args.dim, args.batch)), progress=False)
        coll = ws.collection("docs")
        docs = [Document(d["id"], d["text"], {}) for d in C.synthetic_docs(args.docs)]
        for s in range(0, len(docs), 500):
            coll.upsert(docs[s : s + 500])
        pc = Pinecone(api_key=KEY, host=url)
        index_host = pc.indexes.describe("bench").host
        if not index_host:
            raise SystemExit("the emulator described index 'bench' without a host")
        index = pc.index(host=index_host)
        rows = {r.space_label: r for r in ws.manifest.namespaces("docs")}
        v1 = rows["v1"].name
        embed_v2 = C.space_embedder(ws, "v2")

        def embed(texts: list[str]) -> Any:
            return np.asarray(embed_v2.embed_documents(texts), dtype=np.float32)

        # -- 1. backfill ---------------------------------------------------------------
        if not args.only_search:
            def run_hand(r: int) -> tuple[int, float, float]:
                t, c = time.perf_counter(), cpu_seconds(proc.pid)
                n = hand_backfill(index, v1, f"hand_v2_{r}", embed, args.batch)
                return n, time.perf_counter() - t, cpu_seconds(proc.pid) - c

            def run_vecver() -> tuple[int, float, float, float, float]:
                migrate(ws, "docs", "v2", batch_size=args.batch, progress=False, no_backfill=True)
                last = [0.0, 0.0]

                def on_batch(_: Any) -> None:
                    last[0], last[1] = time.perf_counter(), cpu_seconds(proc.pid)

                t, c = time.perf_counter(), cpu_seconds(proc.pid)
                rep = backfill(ws, "docs", batch_size=args.batch, progress=False,
                               on_batch=on_batch)  # fmt: skip
                total, cpu = time.perf_counter() - t, cpu_seconds(proc.pid) - c
                if rep.state != "ready":
                    raise SystemExit(f"the backfill ended {rep.state}: {rep}")
                copy = last[0] - t if last[0] else total
                copy_cpu = last[1] - c if last[0] else cpu
                abort(ws, "docs", "v2")  # untimed: the next round starts from an empty space
                return int(rep.done), total, copy, cpu, copy_cpu

            hand_s: list[float] = []
            vv_s: list[float] = []
            copy_s: list[float] = []
            hand_cpu: list[float] = []
            vv_cpu: list[float] = []
            copy_cpu: list[float] = []
            n_hand = n_vv = 0
            for r in range(args.rounds):
                for which in ((0, 1) if r % 2 == 0 else (1, 0)):
                    if which == 0:
                        n_hand, secs, cpu = run_hand(r)
                        hand_s.append(secs)
                        hand_cpu.append(cpu)
                    else:
                        n_vv, secs, copied, cpu, ccpu = run_vecver()
                        vv_s.append(secs)
                        copy_s.append(copied)
                        vv_cpu.append(cpu)
                        copy_cpu.append(ccpu)
            hand_m, vv_m, copy_m = C.median(hand_s), C.median(vv_s), C.median(copy_s)

            def rounds(xs: list[float]) -> str:
                return "[" + " ".join(f"{x:.2f}" for x in xs) + "]"

            print(f"\n== backfill (read v1, embed, write v2), median of {args.rounds} rounds ==")
            print(f"  hand-written SDK loop : {n_hand} docs in {hand_m:6.2f} s = "
                  f"{n_hand / hand_m:8.0f} docs/s  {rounds(hand_s)}")
            print(f"  vecver backfill       : {n_vv} docs in {vv_m:6.2f} s = "
                  f"{n_vv / vv_m:8.0f} docs/s  {rounds(vv_s)} (incl. checkpoints, visibility "
                  "waits, the final verify)")
            print(f"    of which copying    : {n_vv} docs in {copy_m:6.2f} s = "
                  f"{n_vv / copy_m:8.0f} docs/s  {rounds(copy_s)} (to the last durable batch; "
                  "then verify)")
            fin = [a - b for a, b in zip(vv_s, copy_s)]
            print(f"    then verifying      : median {C.median(fin):6.2f} s  {rounds(fin)} (the "
                  "rest of each round: reconcile, verify, mark ready)")
            ratio = (n_vv / vv_m) / (n_hand / hand_m)
            print(f"  ratio vecver/hand     : {ratio:.3f} with verify, "
                  f"{(n_vv / copy_m) / (n_hand / hand_m):.3f} copying only  (target >= 0.95)")
            hc, vc, cc = C.median(hand_cpu), C.median(vv_cpu), C.median(copy_cpu)
            print(f"  CPU seconds (client + emulator; steadier than wall time on a loaded "
                  f"machine): hand {hc:.2f} {rounds(hand_cpu)}, vecver {vc:.2f} {rounds(vv_cpu)}, "
                  f"of which copying {cc:.2f} {rounds(copy_cpu)}")
            print(f"  ratio of work hand/vecver: {hc / vc:.3f} with verify, {hc / cc:.3f} copying "
                  "only")
        if args.only_backfill:
            return

        # -- 2. search latency -----------------------------------------------------------
        v1_vectors = np.asarray(C.space_embedder(ws, "v1").embed_queries(
            C.synthetic_queries(args.queries)), dtype=np.float32)  # fmt: skip
        be = C.workspace_backend(ws)
        # the raw SDK calls go through the backend's own Index object (its connection
        # pool): two Index objects, each with its own connection to the emulator, differ
        # by tens of microseconds between themselves on a loaded machine
        located = getattr(be, "_located", None)
        raw_index = located(v1).client if callable(located) else index
        for _ in range(20):  # warm up both paths
            raw_index.query(vector=v1_vectors[0].tolist(), top_k=10, namespace=v1,
                            include_metadata=True)  # fmt: skip
            coll.search_vectors(v1_vectors[:1], 10, space="v1")
        # the time each call spends inside the SDK's Index.query (the same method object
        # for all three: the backend calls it on raw_index too), so that the time outside
        # it, the client-side cost of each path, is measured apart from the emulator's
        # answer (steadier than the wall time on a loaded machine; the wrapper costs each
        # path the same)
        real_query = raw_index.query
        in_sdk = [0]

        def timed_query(**kw: Any) -> Any:
            t = time.perf_counter_ns()
            try:
                return real_query(**kw)
            finally:
                in_sdk[0] += time.perf_counter_ns() - t

        raw_index.query = timed_query
        passes: list[dict[str, float]] = []
        for _ in range(args.rounds):
            wall: tuple[list[float], list[float], list[float]] = ([], [], [])
            outside: tuple[list[float], list[float], list[float]] = ([], [], [])
            cpu_us = [0.0, 0.0, 0.0]
            for i, q in enumerate(v1_vectors):
                for which in ((0, 1, 2), (1, 2, 0), (2, 0, 1))[i % 3]:
                    in_sdk[0] = 0
                    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
                    if which == 0:
                        raw_index.query(vector=q.tolist(), top_k=10, namespace=v1,
                                        include_metadata=True)  # fmt: skip
                    elif which == 1:
                        be.search(v1, q, 10)
                    else:
                        coll.search_vectors(q[None, :], 10, space="v1")
                    took = time.perf_counter_ns() - t0
                    cpu_us[which] += (time.process_time_ns() - c0) / 1000
                    wall[which].append(took / 1000)
                    outside[which].append((took - in_sdk[0]) / 1000)
            raw_t, be_t, vv_t = wall
            paired = sorted(b - a for a, b in zip(raw_t, vv_t))
            bpaired = sorted(b - a for a, b in zip(raw_t, be_t))
            n_q = len(v1_vectors)
            passes.append({
                "p50r": C.percentile(raw_t, 50), "p99r": C.percentile(raw_t, 99),
                "p50b": C.percentile(be_t, 50), "p99b": C.percentile(be_t, 99),
                "p50v": C.percentile(vv_t, 50), "p99v": C.percentile(vv_t, 99),
                "pair": paired[len(paired) // 2], "bpair": bpaired[len(bpaired) // 2],
                "cpur": cpu_us[0] / n_q, "cpub": cpu_us[1] / n_q, "cpuv": cpu_us[2] / n_q,
                "outr": C.percentile(outside[0], 50), "outb": C.percentile(outside[1], 50),
                "outv": C.percentile(outside[2], 50),
            })  # fmt: skip
        # the client-side CPU of each path alone: the SDK's answer to one query replayed
        # (no network, no emulator; best of 15 repeats of 500 calls; warm caches, so a
        # lower bound of what each path adds to a real call)
        answer = real_query(vector=v1_vectors[0].tolist(), top_k=10, namespace=v1,
                            include_metadata=True)  # fmt: skip
        raw_index.query = lambda **kw: answer
        q0 = v1_vectors[0]
        replay_fns = (
            lambda: raw_index.query(vector=q0.tolist(), top_k=10, namespace=v1,
                                    include_metadata=True),
            lambda: be.search(v1, q0, 10),
            lambda: coll.search_vectors(q0[None, :], 10, space="v1"),
        )  # fmt: skip
        replay = [0.0, 0.0, 0.0]
        for _ in range(15):
            for j, fn in enumerate(replay_fns):
                t = time.perf_counter_ns()
                for _ in range(500):
                    fn()
                took = (time.perf_counter_ns() - t) / 500 / 1000
                replay[j] = took if not replay[j] else min(replay[j], took)
        raw_index.query = real_query

        def med(key: str) -> float:
            return C.median([p[key] for p in passes])

        p50r, p50v, p50b = med("p50r"), med("p50v"), med("p50b")
        print(f"\n== search latency, k=10, one query per call (us), median of {args.rounds} "
              f"passes of {args.queries} ==")
        print(f"  raw SDK Index.query          : p50 {p50r:8.0f}  p99 {med('p99r'):8.0f}  "
              f"client CPU {med('cpur'):6.0f}")
        print(f"  PineconeBackend.search       : p50 {p50b:8.0f}  p99 {med('p99b'):8.0f}  "
              f"client CPU {med('cpub'):6.0f}")
        print(f"  vecver search_vectors(active): p50 {p50v:8.0f}  p99 {med('p99v'):8.0f}  "
              f"client CPU {med('cpuv'):6.0f}")
        print(f"  backend overhead p50: {p50b - p50r:+.0f} us ({(p50b / p50r - 1) * 100:+.1f}%); "
              f"median paired difference {med('bpair'):+.0f} us; client CPU "
              f"{med('cpub') - med('cpur'):+.0f} us")
        print(f"  overhead p50: {p50v - p50r:+.0f} us ({(p50v / p50r - 1) * 100:+.1f}%); median "
              f"paired difference {med('pair'):+.0f} us; client CPU "
              f"{med('cpuv') - med('cpur'):+.0f} us  (target <= 10% or <= 50 us)")
        print(f"  time outside the SDK's query(), p50 per call (us): raw {med('outr'):.1f}, "
              f"backend {med('outb'):.1f}, vecver {med('outv'):.1f}")
        print(f"  the SDK's answer replayed (no network), best of 15 x 500 calls (us): raw "
              f"{replay[0]:.1f}, backend {replay[1]:.1f}, vecver {replay[2]:.1f}")
        print(f"  replay ratio: vecver - raw {replay[2] - replay[0]:.1f} us, backend - raw "
              f"{replay[1] - replay[0]:.1f} us")
        # one line for bench/ab_trees.py (it collects the lines that say "ratio")
        print(f"  search ratio vecver/raw p50 {p50v / p50r:.3f}, backend/raw {p50b / p50r:.3f}; "
              f"overhead p50 vecver {p50v - p50r:+.0f} us, backend {p50b - p50r:+.0f} us, "
              f"paired {med('pair'):+.0f} us; outside the SDK vecver "
              f"{med('outv') - med('outr'):+.1f} us, backend {med('outb') - med('outr'):+.1f} us")
        if args.only_search:
            ws.close()
            return

        # -- 3. what the emulator sustains ----------------------------------------------
        print("\n== emulator throughput, 4 client threads, 3 s each ==")
        rng = np.random.default_rng(3)
        vec_batch = rng.standard_normal((args.batch, args.dim)).astype(np.float32)

        def rate(op: Any) -> float:
            stop = time.monotonic() + 3.0
            counts = [0] * 4

            def worker(w: int) -> None:
                while time.monotonic() < stop:
                    op(w, counts[w])
                    counts[w] += 1

            ts = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
            for th in ts:
                th.start()
            for th in ts:
                th.join()
            return sum(counts) / 3.0

        def upsert(w: int, i: int) -> None:
            index.upsert(vectors=[{"id": f"r{w}-{i}-{j}", "values": vec_batch[j].tolist()}
                                  for j in range(args.batch)], namespace="rps")  # fmt: skip

        def query(w: int, i: int) -> None:
            index.query(vector=vec_batch[i % args.batch].tolist(), top_k=10, namespace="rps")

        ups = rate(upsert)
        print(f"  upsert of {args.batch} vectors : {ups:8.0f} requests/s = "
              f"{ups * args.batch:8.0f} vectors/s")
        qs = rate(query)
        n_rps = int(ups * 3 * args.batch)
        print(f"  query top_k=10          : {qs:8.0f} requests/s (namespace of ~{n_rps} vectors)")
        ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
