"""The weaviate backend against the Weaviate emulator, side by side with the official
client used by hand, in one run:

    python bench/weaviate_bench.py [--docs 3000] [--dim 64] [--batch 128] [--rounds 3]
                                   [--queries 200] [-k 10] [--seconds 3]

1. Backfill: ``vecver.migrate`` v1 -> v2 (scan v1, embed with the ``hash`` embedder,
   write, checkpoint; the copy phase is timed up to its last batch, and the total with
   verify is shown too) against a hand-written loop with the same ``weaviate-client``
   against the same emulator (the client's cursor over v1 returning every property, the
   same embedder, the same batch size, ``insert_many`` of the same objects with their new
   vectors and fingerprint into a fresh collection with the same properties: the same
   bytes on the wire; no checkpoints, no read-back, no verify). Both times include
   creating the target collection (the loop's clock starts before it reads the source's
   schema and creates its collection; vecver's before ``migrate``, which creates it).
   Rounds alternate; medians are printed; ratio = loop time / vecver copy time (>= 0.95:
   vecver is at most 5% slower).
2. Search latency, single queries, p50/p99 in microseconds, interleaved:
   - raw: ``collection.query.near_vector(q, limit=k, target_vector="vv")`` returning the
     same properties and distance as vecver asks for, without vectors (what a user would
     write);
   - raw+vec: the same, also returning the vector (the request vecver sends for a list
     it re-scores from the vectors);
   - backend: ``WeaviateBackend.search(namespace, q, k)`` (hits with ids, scores, text,
     metadata, stamps) with the default ``rescore``: scores from Weaviate's distances,
     and a list with near ties re-scored from its vectors (asked again with them, or
     with the first request once most of a namespace's searches have near ties; the
     ``hash`` embedder's vectors tie often). The share of searches that asked for
     vectors is printed (counted in an untimed pass);
   - backend-norescore: the same with ``rescore=False`` (Weaviate's distances as scores:
     the same request as raw).
   Overhead = backend - raw (p50), as an absolute and a percentage (target <= 10% or
   <= 50 us). Run twice: on collection ``c`` (the ``hash`` embedder: many exact and near
   ties) and on a namespace of as many standard normal vectors with normal queries (no
   ties, as with a real embedding model). Also printed: each variant's client-side CPU
   with the client's answers to one query replayed (no network; warm caches, a lower
   bound), and a "ratio" line per corpus for ``bench/ab_trees.py``; ``--only-search``
   runs this section alone.
3. What the emulator sustains (in its own process, as in the rest of this run):
   near-vector searches per second (1 and 4 client threads), objects per second written
   by ``insert_many`` (5,000 objects in batches of ``--batch``; the searches then run on
   them), ``GET /v1/meta`` per second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402 - must run before vecver is imported


class _Remote:
    """Where an emulator in another process serves."""

    def __init__(self, http_port: int, grpc_port: int, pid: int | None = None) -> None:
        self.http_port, self.grpc_port = http_port, grpc_port
        self.url = f"http://127.0.0.1:{http_port}"
        self.pid = pid

    def cpu(self) -> float:
        """CPU seconds this process and the emulator's (user + system, all threads) used
        so far; the emulator's part is 0 where /proc cannot be read."""
        own = time.process_time()
        if self.pid is None:
            return own
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return own + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return own


@contextlib.contextmanager
def _emulator_process() -> Iterator[_Remote]:
    """The emulator in its own process (``python -m vecver.testing.emulators.weaviate``),
    so that its server threads do not share this process's GIL with the client."""
    import socket
    import subprocess

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "vecver.testing.emulators.weaviate", "--http-port",
         str(ports[0]), "--grpc-port", str(ports[1])],
        stdout=subprocess.PIPE, text=True, env=C.child_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("weaviate emulator:"), line
        yield _Remote(ports[0], ports[1], proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


VARIANTS = ("raw", "raw+vec", "backend", "backend-norescore")


def _pcts(xs: list[float]) -> tuple[float, float]:
    s = sorted(xs)
    return s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))]


def _config(root: Path, emu: Any, dim: int, batch: int) -> Path:
    text = (
        '[manifest]\npath = "vecver.db"\n\n'
        f'[backend]\nname = "weaviate"\nurl = "{emu.url}"\ngrpc_port = {emu.grpc_port}\n\n'
        f'[spaces.v1]\nembedder = "hash"\ndimension = {dim}\n\n'
        f'[spaces.v2]\nembedder = "hash"\ndimension = {dim}\noptions = {{ seed = 1 }}\n\n'
        '[collections.c]\nspace = "v1"\n\n'
        f"[backfill]\nbatch_size = {batch}\n"
    )
    cfg = root / "vecver.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def _reset_v2(cfg: Path) -> None:
    import sqlite3

    import vecver

    with vecver.open(cfg, progress=False) as ws:
        ns = ws.manifest.namespace_for("c", "v2")
        if ns is not None:
            ws.backend.drop_namespace(ns.name)
    db = sqlite3.connect(str(cfg.parent / "vecver.db"))
    with db:
        db.execute("DELETE FROM checkpoints")
        db.execute("DELETE FROM namespaces WHERE space_label='v2'")
    db.close()


def vecver_backfill(
    cfg: Path, batch: int, cpu: Callable[[], float] = time.process_time
) -> tuple[float, float, int, float]:
    """Wall seconds of the copy phase and of the whole migration, documents scanned, and
    ``cpu()`` when the last batch was durable (the end of the copy phase)."""
    import vecver

    marks: list[tuple[float, float]] = []
    with vecver.open(cfg, progress=False) as ws:
        t0 = time.perf_counter()
        rep = vecver.migrate(ws, "c", "v2", batch_size=batch, progress=False,
                             on_batch=lambda r: marks.append((time.perf_counter(), cpu())))
        total = time.perf_counter() - t0
        assert rep.state == "ready", rep.to_dict()
        copy, at = marks[-1] if marks else (t0 + total, cpu())
        return copy - t0, total, int(rep.scanned), at


def hand_loop(cfg: Path, emu: Any, batch: int) -> tuple[float, int]:
    """What a user would write with the official client: cursor over v1, embed, insert."""
    import weaviate
    from weaviate.classes.config import Configure, Property
    from weaviate.classes.data import DataObject

    import vecver
    from vecver.backends.weaviate._backend import class_name

    with vecver.open(cfg, progress=False) as ws:
        emb = ws.embedder("v2")
        src = class_name(ws.manifest.active_namespace("c"))
    client = weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=emu.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=emu.grpc_port, grpc_secure=False,
        skip_init_checks=True,
    )  # fmt: skip
    try:
        if client.collections.exists("HandLoop"):
            client.collections.delete("HandLoop")
        # timed from here: reading the source's schema and creating the target are part
        # of vecver's copy time too (its target namespace is created inside migrate)
        t0 = time.perf_counter()
        schema = client.collections.get(src).config.get()
        dst = client.collections.create(
            "HandLoop",
            properties=[Property(name=p.name, data_type=p.data_type,
                                 tokenization=p.tokenization) for p in schema.properties],
            vector_config=Configure.Vectors.self_provided(name="vv"),
        )  # fmt: skip
        source = client.collections.get(src)
        n = 0
        buf: list[Any] = []

        def flush() -> None:
            texts = [str(o.properties.get("vv_text") or "") for o in buf]
            vecs = emb.embed_documents(texts)
            res = dst.data.insert_many([
                DataObject(properties=dict(o.properties, vv_fp=fp, vv_at=time.time()),
                           uuid=o.uuid, vector={"vv": v.tolist()})
                for o, v in zip(buf, vecs, strict=True)
            ])  # fmt: skip
            assert not res.errors, res.errors
            buf.clear()

        fp = emb.space.fingerprint
        for obj in source.iterator(cache_size=batch):
            buf.append(obj)
            n += 1
            if len(buf) == batch:
                flush()
        if buf:
            flush()
        dt = time.perf_counter() - t0
        client.collections.delete("HandLoop")
        return dt, n
    finally:
        client.close()


def _gaussian_namespace(be: Any, n: int, dim: int) -> str:
    """A cosine namespace of ``n`` records with standard normal vectors (no ties), written
    through the backend; returns its name."""
    import numpy as np

    from vecver.types import NamespaceSpec, Record, Stamp

    spec = NamespaceSpec("Bench_gauss", dim, "cosine", "0" * 64)
    if spec.name in be.list_namespaces():
        be.drop_namespace(spec.name)
    be.create_namespace(spec)
    vecs = np.random.default_rng(7).standard_normal((n, dim)).astype(np.float32)
    recs = [Record(f"g{i:05d}", v, f"text {i}", {"n": i}, Stamp.now(spec.fingerprint,
                   f"g{i:05d}", f"text {i}")) for i, v in enumerate(vecs)]  # fmt: skip
    be.upsert(spec.name, recs)
    return spec.name


def search_bench(
    cfg: Path, emu: Any, nq: int, k: int, rounds: int, corpus: str = "hash"
) -> dict[str, list[float]]:
    """``corpus``: ``hash`` (collection ``c``'s active space, ``hash`` embedder: many exact
    and near ties) or ``gaussian`` (a namespace of standard normal vectors, as many as
    collection ``c`` holds, and normal queries: no ties, like a real embedding model's)."""
    import numpy as np
    import weaviate
    from weaviate.classes.query import MetadataQuery

    import vecver
    from vecver.backends.weaviate._backend import _RETURN, VECTOR, class_name

    out: dict[str, list[float]] = {n: [] for n in VARIANTS}
    with vecver.open(cfg, progress=False) as ws:
        ns = ws.manifest.active_namespace("c")
        be = ws.backend
        q_emb = ws.embedder("v1")
        queries = np.asarray(q_emb.embed_queries(C.synthetic_queries(nq)), dtype=np.float32)
        if corpus == "gaussian":
            ns = _gaussian_namespace(be, be.count(ns), queries.shape[1])
            queries = np.random.default_rng(8).standard_normal(queries.shape).astype(np.float32)
        client = weaviate.connect_to_custom(
            http_host="127.0.0.1", http_port=emu.http_port, http_secure=False,
            grpc_host="127.0.0.1", grpc_port=emu.grpc_port, grpc_secure=False,
            skip_init_checks=True,
        )  # fmt: skip
        col = client.collections.get(class_name(ns))

        def raw(q: Any) -> None:
            col.query.near_vector(q.tolist(), limit=k, target_vector=VECTOR,
                                  return_metadata=MetadataQuery(distance=True),
                                  return_properties=_RETURN)  # fmt: skip

        def rawvec(q: Any) -> None:
            col.query.near_vector(q.tolist(), limit=k, target_vector=VECTOR,
                                  return_metadata=MetadataQuery(distance=True),
                                  return_properties=_RETURN, include_vector=[VECTOR])  # fmt: skip

        from vecver.backends.weaviate import WeaviateBackend

        fast = WeaviateBackend(emu.url, grpc_port=emu.grpc_port, rescore=False)

        def backend(q: Any) -> None:
            be.search(ns, q[None, :], k)

        def norescore(q: Any) -> None:
            fast.search(ns, q[None, :], k)

        variants: dict[str, Callable[[Any], None]] = {
            "raw": raw, "raw+vec": rawvec, "backend": backend, "backend-norescore": norescore,
        }  # fmt: skip
        for f in variants.values():  # warm up
            for q in queries[:10]:
                f(q)
        names = list(variants)
        for r in range(rounds):
            per: dict[str, list[float]] = {n: [] for n in names}
            for b0 in range(0, nq, 10):
                shift = (b0 // 10 + r) % len(names)
                order = names[shift:] + names[:shift]
                for name in order:
                    for q in queries[b0 : b0 + 10]:
                        t = time.perf_counter_ns()
                        variants[name](q)
                        per[name].append((time.perf_counter_ns() - t) / 1000)
            for name in names:
                p50, p99 = _pcts(per[name])
                out[name].append(p50)
                out[name + " p99"] = [*out.get(name + " p99", []), p99]
        out["_replay"] = _replayed(col, be, ns, queries[0], k)
        near = getattr(be, "_near", None)  # absent before the near-tie scheme
        if near is not None:
            asked = [0, 0]

            def counting(*a: Any) -> Any:
                asked[0] += 1
                asked[1] += bool(a[-1])
                return near(*a)

            setattr(be, "_near", counting)  # noqa: B010 - the bench's own probe
            try:
                for q in queries:
                    be.search(ns, q[None, :], k)
            finally:
                delattr(be, "_near")
            out["_asked"] = [float(len(queries)), float(asked[0]), float(asked[1])]
        if corpus == "gaussian":
            be.drop_namespace(ns)
        client.close()
        fast.close()
    return out


def _replayed(col: Any, be: Any, ns: str, q: Any, k: int) -> list[float]:
    """The client-side CPU of raw, raw+vec and the backend's search alone: the client's
    answers to query ``q`` (with and without vectors) replayed by ``near_vector`` (no
    network, no emulator; best of 15 repeats of 300 calls, warm caches: a lower bound of
    what each adds to a real call). The backend takes whichever answer it asks for."""
    import time as _t

    from weaviate.classes.query import MetadataQuery

    from vecver.backends.weaviate._backend import _RETURN, VECTOR

    meta = MetadataQuery(distance=True)
    plain = col.query.near_vector(q.tolist(), limit=k, target_vector=VECTOR,
                                  return_metadata=meta, return_properties=_RETURN)  # fmt: skip
    with_vec = col.query.near_vector(q.tolist(), limit=k, target_vector=VECTOR,
                                     return_metadata=meta, return_properties=_RETURN,
                                     include_vector=[VECTOR])  # fmt: skip
    cls = type(col.query)
    real = cls.near_vector

    def answer(self: Any, *a: Any, **kw: Any) -> Any:
        return with_vec if kw.get("include_vector") else plain

    fns = (
        lambda: col.query.near_vector(q.tolist(), limit=k, target_vector=VECTOR,
                                      return_metadata=meta, return_properties=_RETURN),
        lambda: col.query.near_vector(q.tolist(), limit=k, target_vector=VECTOR,
                                      return_metadata=meta, return_properties=_RETURN,
                                      include_vector=[VECTOR]),
        lambda: be.search(ns, q[None, :], k),
    )  # fmt: skip
    best = [float("inf")] * 3
    cls.near_vector = answer
    try:
        for _ in range(15):
            for j, fn in enumerate(fns):
                t = _t.perf_counter_ns()
                for _ in range(300):
                    fn()
                best[j] = min(best[j], (_t.perf_counter_ns() - t) / 300 / 1000)
    finally:
        cls.near_vector = real
    return best


def sustained(emu: Any, dim: int, batch: int, seconds: float) -> dict[str, float]:
    import numpy as np
    import weaviate
    from weaviate.classes.config import Configure
    from weaviate.classes.data import DataObject

    def connect() -> Any:
        return weaviate.connect_to_custom(
            http_host="127.0.0.1", http_port=emu.http_port, http_secure=False,
            grpc_host="127.0.0.1", grpc_port=emu.grpc_port, grpc_secure=False,
            skip_init_checks=True,
        )  # fmt: skip

    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    c = connect()
    try:
        if c.collections.exists("Rps"):
            c.collections.delete("Rps")
        col = c.collections.create("Rps", vector_config=Configure.Vectors.self_provided(name="vv"))
        n, total = 0, 5000
        t0 = time.perf_counter()
        while n < total:
            vecs = rng.standard_normal((batch, dim)).astype(np.float32)
            col.data.insert_many([DataObject(properties={"i": n + j}, vector={"vv": v.tolist()})
                                  for j, v in enumerate(vecs)])  # fmt: skip
            n += batch
        out["insert_many objects/s"] = n / (time.perf_counter() - t0)
        out["collection size (objects)"] = float(n)
        qs = rng.standard_normal((64, dim)).astype(np.float32).tolist()
        for threads in (1, 4):
            counts = [0] * threads
            stop = time.perf_counter() + seconds

            def work(i: int, counts: list[int] = counts, stop: float = stop) -> None:
                cc = connect()
                h = cc.collections.get("Rps")
                while time.perf_counter() < stop:
                    h.query.near_vector(qs[counts[i] % 64], limit=10, target_vector="vv")
                    counts[i] += 1
                cc.close()

            ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
            t1 = time.perf_counter()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            out[f"near_vector/s ({threads} client thread{'s' if threads > 1 else ''})"] = sum(
                counts
            ) / (time.perf_counter() - t1)
        m = 0
        t2 = time.perf_counter()
        while time.perf_counter() - t2 < seconds:
            c.get_meta()
            m += 1
        out["GET /v1/meta/s"] = m / (time.perf_counter() - t2)
        c.collections.delete("Rps")
    finally:
        c.close()
    return out


def _print_search(res: dict[str, list[float]], k: int, corpus: str) -> None:
    what = ("the hash-embedded corpus: many ties" if corpus == "hash"
            else "standard normal vectors: no ties")  # fmt: skip
    print(f"\n== search latency, single queries, k={k}, us (median of round p50s); {what}")
    p50 = {n: statistics.median(res[n]) for n in VARIANTS}
    for n in VARIANTS:
        print(f"{n:18s} p50 {p50[n]:9.0f}   p99 {statistics.median(res[n + ' p99']):9.0f}")
    over = p50["backend"] - p50["raw"]
    print(f"overhead backend - raw     = {over:7.0f} us ({100 * over / p50['raw']:.1f}%)"
          "  (target <= 10% or <= 50 us)")  # fmt: skip
    over2 = p50["backend"] - p50["raw+vec"]
    print(
        f"overhead backend - raw+vec = {over2:7.0f} us "
        f"({100 * over2 / p50['raw+vec']:.1f}%)  (the request of a re-scored list)"
    )
    over3 = p50["backend-norescore"] - p50["raw"]
    print(
        f"overhead backend-norescore - raw = {over3:7.0f} us "
        f"({100 * over3 / p50['raw']:.1f}%)  (rescore = false: the same request as raw)"
    )
    # one line for bench/ab_trees.py (it collects the lines that say "ratio")
    print(f"search ratio ({corpus}) backend/raw {p50['backend'] / p50['raw']:.3f}, "
          f"backend/raw+vec {p50['backend'] / p50['raw+vec']:.3f}, norescore/raw "
          f"{p50['backend-norescore'] / p50['raw']:.3f}")  # fmt: skip
    if "_replay" in res:
        r_raw, r_vec, r_be = res["_replay"]
        print(f"the client's answers replayed (no network), best of 15 x 300 calls (us): raw "
              f"{r_raw:.1f}, raw+vec {r_vec:.1f}, backend {r_be:.1f}")
        print(f"replay ratio ({corpus}): backend - raw {r_be - r_raw:.1f} us, backend - raw+vec "
              f"{r_be - r_vec:.1f} us")
    if "_asked" in res:
        n_q, reqs, vec = (int(x) for x in res["_asked"])
        print(f"backend (untimed pass): {n_q} searches, {reqs} requests, {vec} of them "
              "asking for vectors")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--only-backfill", action="store_true",
                    help="only the backfill figures")
    ap.add_argument("--only-search", action="store_true",
                    help="only the search latency figures (section 2)")
    args = ap.parse_args()
    C.announce()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)")
    import weaviate

    from vecver.testing.emulators.weaviate import VERSION

    print(f"weaviate-client {weaviate.__version__}; emulator reports Weaviate {VERSION}; "
          f"{args.docs} docs, dim {args.dim}, batch {args.batch}, {args.rounds} rounds",
          flush=True)  # fmt: skip
    with _emulator_process() as emu, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = _config(root, emu, args.dim, args.batch)
        t = time.perf_counter()
        C.ingest(cfg, list(C.synthetic_docs(args.docs)), args.batch)
        print(f"setup: ingested {args.docs} docs into v1 in {time.perf_counter() - t:.1f} s",
              flush=True)  # fmt: skip

        vec_copy: list[float] = []
        vec_total: list[float] = []
        loop: list[float] = []
        # CPU seconds of this process and the emulator's: steadier than wall time
        cpu_copy: list[float] = []
        cpu_total: list[float] = []
        cpu_loop: list[float] = []

        def timed_hand() -> tuple[float, int]:
            c = emu.cpu()
            dl, n = hand_loop(cfg, emu, args.batch)
            cpu_loop.append(emu.cpu() - c)
            return dl, n

        def timed_vecver() -> tuple[float, float, int]:
            c = emu.cpu()
            copy, total, n, at_copy = vecver_backfill(cfg, args.batch, emu.cpu)
            cpu_copy.append(at_copy - c)
            cpu_total.append(emu.cpu() - c)
            return copy, total, n

        for r in range(0 if args.only_search else args.rounds):
            _reset_v2(cfg)
            if r % 2 == 0:  # alternate which goes first
                dl, n_loop = timed_hand()
                copy, total, n_vec = timed_vecver()
            else:
                copy, total, n_vec = timed_vecver()
                dl, n_loop = timed_hand()
            assert n_loop == n_vec == args.docs, (n_loop, n_vec)
            loop.append(dl)
            vec_copy.append(copy)
            vec_total.append(total)
            print(f"  round {r + 1}: hand loop {dl:.2f} s, vecver copy {copy:.2f} s "
                  f"(with verify {total:.2f} s); CPU {cpu_loop[-1]:.2f} / {cpu_copy[-1]:.2f}"
                  f" / {cpu_total[-1]:.2f} s", flush=True)  # fmt: skip
        if args.only_search:
            for corpus in ("hash", "gaussian"):
                res = search_bench(cfg, emu, args.queries, args.k, args.rounds, corpus)
                _print_search(res, args.k, corpus)
            return
        ml, mc, mt = (statistics.median(x) for x in (loop, vec_copy, vec_total))
        print("\n== backfill (docs/s, median of rounds)")
        print(f"hand-written loop (weaviate-client)  {args.docs / ml:10.0f} docs/s")
        print(f"vecver migrate, copy phase           {args.docs / mc:10.0f} docs/s")
        print(f"vecver migrate, with verify          {args.docs / mt:10.0f} docs/s")
        print(
            f"ratio loop/vecver-copy = {ml / mc:.3f}  (target >= 0.95); median of the "
            f"per-round ratios {statistics.median(a / b for a, b in zip(loop, vec_copy)):.3f}"
        )
        print(f"ratio loop/vecver-with-verify = {ml / mt:.3f}")
        cl, cc, ct = (statistics.median(x) for x in (cpu_loop, cpu_copy, cpu_total))
        print(f"CPU seconds (client + emulator): hand {cl:.2f}, vecver copy {cc:.2f}, with "
              f"verify {ct:.2f}; ratio of work hand/vecver {cl / cc:.3f} copy, {cl / ct:.3f} "
              "with verify")
        if args.only_backfill:
            return

        for corpus in ("hash", "gaussian"):
            res = search_bench(cfg, emu, args.queries, args.k, args.rounds, corpus)
            _print_search(res, args.k, corpus)

        print(
            f"\n== what the emulator sustains ({args.seconds:.0f} s each; emulator in its own "
            "process)"
        )
        for name, v in sustained(emu, args.dim, args.batch, args.seconds).items():
            print(f"{name:34s} {v:10.0f}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
