"""Qdrant (local mode) and Milvus (the embedded 2.3.5 server; Milvus Lite as a third
column): vecver next to the official client used by hand, side by side in one run:

    python bench/db_bench.py [--docs 10000] [--dim 64] [--batch 256] [--rounds 3]
                             [--queries 200] [--batches 20] [--switches 100]
                             [--engines qdrant,milvus,lite] [--out bench/results/db-bench.txt]

Every engine gets a workspace of its own (a manifest in a temporary directory, spaces v1
and v2: the ``hash`` embedder, same dimension, other seeds; collection ``c`` on v1,
DOCS documents ingested untimed). Qdrant runs ``location=":memory:"`` (qdrant-client's
local mode: a Python re-implementation, exact search); the Milvus server is the real
engine from the ``milvus`` package, started once with the test suite's short intervals
(``proxy.timeTickInterval`` 10 ms: a Strong read waits for the next tick) under
/dev/shm and stopped at the end; Milvus Lite is a ``.db`` folder on /dev/shm, served by
Milvus Lite 3.2's pure-Python server in threads of this process (so it shares the GIL
with vecver and the hand loop alike). The raw
baselines use the backend's own client object (``QdrantBackend.client``,
``MilvusBackend.client``): the same connection vecver uses.

1. Backfill, DOCS documents v1 -> v2, ROUNDS rounds alternating which goes first, medians:
   ``vecver.ops.backfill.backfill`` (the migration started untimed with ``no_backfill``;
   batches of BATCH; checkpoints and the final verification included; the copy phase
   alone is timed to the last durable batch) vs a hand-written loop with the same client
   and batch size: page v1 (Qdrant ``scroll``, Milvus ``query_iterator``) with every
   payload field, embed the texts with the same embedder, upsert the same rows with the
   new vector and fingerprint into another collection (created untimed with the same
   schema and index). Ratio vecver / hand loop in docs/s (target >= 0.95). Between
   rounds v2 is abandoned with ``vecver.ops.abort`` and started again. The same ratios of
   this process's CPU seconds (all its threads) are given too: steadier than wall time
   on a shared machine, but blind to a server's work (the Milvus server is another
   process, so there they say only what the client side costs).
2. Search latency, k=10, interleaved in rotating order, ROUNDS rounds (median of the
   rounds' p50 and p99), microseconds: single queries and batches of 64 queries:
   raw (Qdrant ``query_points`` / ``query_batch_points`` with the payload; Milvus
   ``search`` with the same output fields as vecver minus the vector, Strong, its hits
   read: pymilvus decodes them lazily), raw+vec
   (Milvus: also the vector, i.e. exactly the request vecver sends: it re-scores hits
   from their vectors), the backend's ``search`` and ``Collection.search_vectors`` on
   the active space. Target: p50 overhead <= 10% or <= 50 us, whichever is larger.
   On Milvus, the round trip of one ``describe_collection`` is timed too: what every
   search and write paid before the backend cached namespace specs.
3. Cutover as a reader sees it: a reader thread searching continuously through vecver
   (``Collection.search``, the active route, sharing the workspace) while the main
   thread runs SWITCHES alternating ``cutover(..., to="v2", force=True)`` /
   ``rollback`` between the two ready spaces (each switch waits until the reader has
   answered from the new space). For each switch: the gap between the reader's last
   answer from the old space and its first answer from the new one (ms: max, p50, p99,
   next to the reader's ordinary gap between answers), answers from the old space to
   queries started after the switch returned (must be 0), errors and empty results
   (must be 0), and how long a switch takes.

``--only-backfill`` runs section 1 alone. With ``--steps`` (or ``--only-steps``), each
step of a backfill batch is also timed alone, one after the other, next to the hand
loop's: what the copy ratio is made of.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import inspect
import logging
import os
import shlex
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402 - must run before vecver is imported

K = 10
QBATCH = 64
#: the embedded server's intervals: the test suite's (tests/test_backend_milvus.py)
SERVER_CONFIG = {
    "proxy.timeTickInterval": 10,
    "queryCoord.checkInterval": 50,
    "queryCoord.distPullInterval": 50,
}


class Out:
    """Print to stdout and to the results file at once."""

    def __init__(self, path: Path | None) -> None:
        self._f: TextIO | None = path.open("w", encoding="utf-8") if path else None

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        if self._f is not None:
            self._f.write(line + "\n")
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pcts(xs: list[float]) -> tuple[float, float]:
    return C.percentile(xs, 50), C.percentile(xs, 99)


# -- engines ------------------------------------------------------------------------------


@dataclass
class Engine:
    """One database: how vecver's config names it, and the raw client's calls."""

    name: str
    backend_toml: str
    kind: str  # "qdrant" | "milvus"


@contextlib.contextmanager
def milvus_server(base: Path, out: Out) -> Iterator[str]:
    """The embedded Milvus server, started once, stopped in a finally (port 9091 free)."""
    from milvus import default_server

    for port in (9091, 19530):
        if _port_in_use(port):
            raise SystemExit(f"port {port} is in use: another Milvus server runs here")
    default_server.set_base_dir(str(base))
    for key, value in SERVER_CONFIG.items():
        default_server.config.set(key, value)
    t = time.perf_counter()
    try:
        default_server.start()
        out(f"[milvus] embedded server started in {time.perf_counter() - t:.1f} s on port "
            f"{default_server.listen_port} (config {SERVER_CONFIG})")
        yield f"http://127.0.0.1:{default_server.listen_port}"
    finally:
        default_server.stop()
        deadline = time.monotonic() + 30
        while _port_in_use(9091) and time.monotonic() < deadline:
            time.sleep(0.5)
        out(f"[milvus] embedded server stopped; port 9091 "
            f"{'STILL IN USE' if _port_in_use(9091) else 'free'}")


def write_config(root: Path, eng: Engine, dim: int, batch: int) -> Path:
    text = (
        '[manifest]\npath = "vecver.db"\n\n'
        f"[backend]\n{eng.backend_toml}\n\n"
        f'[spaces.v1]\nembedder = "hash"\ndimension = {dim}\n\n'
        f'[spaces.v2]\nembedder = "hash"\ndimension = {dim}\noptions = {{ seed = 1 }}\n\n'
        '[collections.c]\nspace = "v1"\n\n'
        f"[backfill]\nbatch_size = {batch}\n"
    )
    cfg = root / "vecver.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


# -- 1. backfill ----------------------------------------------------------------------------


def restart_v2(ws: Any, batch: int) -> None:
    """v2 abandoned (if there) and started again with nothing copied."""
    from vecver.ops.abort import abort
    from vecver.ops.backfill import migrate

    row = ws.manifest.namespace_for("c", "v2")
    if row is not None and row.state not in ("dropped",):
        abort(ws, "c", "v2")
    migrate(ws, "c", "v2", batch_size=batch, progress=False, no_backfill=True)


def vecver_backfill(ws: Any, batch: int) -> tuple[float, float, int, float, float]:
    """Wall seconds of the copy phase and of the whole backfill, documents scanned, and
    the process's CPU seconds of both (every thread of this process, not the server's)."""
    from vecver.ops.backfill import backfill

    marks: list[tuple[float, float]] = []
    c0, t0 = time.process_time(), time.perf_counter()

    def mark(_: Any) -> None:
        marks.append((time.perf_counter(), time.process_time()))

    rep = backfill(ws, "c", batch_size=batch, progress=False, on_batch=mark)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert rep.state == "ready", rep.to_dict()
    copy, copy_cpu = (marks[-1][0] - t0, marks[-1][1] - c0) if marks else (total, cpu)
    return copy, total, int(rep.scanned), copy_cpu, cpu


def _fresh_hand_target(ws: Any, name: str) -> None:
    """The hand loop's collection: dropped and created again (untimed) with v2's schema
    and index, through the backend (the same layout as vecver's)."""
    from vecver.types import NamespaceSpec

    be = ws.backend
    with contextlib.suppress(Exception):
        be.drop_namespace(name)
    sp = ws.space("v2")
    be.create_namespace(NamespaceSpec(name, sp.spec.dimension, sp.spec.metric, sp.fingerprint))


def hand_qdrant(ws: Any, src: str, dst: str, batch: int) -> int:
    """What a user writes with qdrant-client: scroll, embed, upsert (wait=True)."""
    from qdrant_client import models

    from vecver.backends._remote import KEY_AT, KEY_FP, KEY_TEXT

    client = ws.backend.client
    emb = ws.embedder("v2")
    fp = emb.space.fingerprint
    n, offset = 0, None
    while True:
        points, offset = client.scroll(src, limit=batch, offset=offset, with_payload=True,
                                       with_vectors=False)  # fmt: skip
        if points:
            vecs = emb.embed_documents([str((p.payload or {}).get(KEY_TEXT, "")) for p in points])
            now = time.time()
            client.upsert(dst, points=models.Batch(
                ids=[p.id for p in points], vectors=vecs.tolist(),
                payloads=[dict(p.payload or {}, **{KEY_FP: fp, KEY_AT: now}) for p in points],
            ), wait=True)  # fmt: skip
            n += len(points)
        if offset is None:
            return n


def hand_milvus(ws: Any, src: str, dst: str, batch: int) -> int:
    """What a user writes with pymilvus: query_iterator, embed, upsert."""
    from vecver.backends.milvus._backend import _RECORD_FIELDS, F_AT, F_FP, F_TEXT
    from vecver.backends.milvus._expr import FILTER_FIELD

    client = ws.backend.client
    emb = ws.embedder("v2")
    fp = emb.space.fingerprint
    it = client.query_iterator(src, batch_size=batch, filter="",
                               output_fields=[*_RECORD_FIELDS, FILTER_FIELD])  # fmt: skip
    n = 0
    try:
        while True:
            rows = it.next()
            if not rows:
                return n
            rows = [dict(r) for r in rows]
            vecs = emb.embed_documents([str(r[F_TEXT]) for r in rows])
            now = time.time()
            for r, v in zip(rows, vecs, strict=True):
                r["vector"] = v.tolist()
                r[F_FP] = fp
                r[F_AT] = now
            client.upsert(dst, rows)
            n += len(rows)
    finally:
        it.close()


def bench_backfill(ws: Any, eng: Engine, args: Any, out: Out) -> dict[str, float]:
    src = ws.manifest.active_namespace("c")
    dst = "hand_v2"
    hand = hand_qdrant if eng.kind == "qdrant" else hand_milvus
    loop_s: list[float] = []
    copy_s: list[float] = []
    total_s: list[float] = []
    # CPU seconds of this process: steadier than wall time on a loaded machine, but
    # blind to the work of a server process (Milvus)
    loop_c: list[float] = []
    copy_c: list[float] = []
    total_c: list[float] = []
    for r in range(args.rounds):
        restart_v2(ws, args.batch)
        _fresh_hand_target(ws, dst)

        def run_hand() -> None:
            c, t = time.process_time(), time.perf_counter()
            n = hand(ws, src, dst, args.batch)
            loop_s.append(time.perf_counter() - t)
            loop_c.append(time.process_time() - c)
            assert n == args.docs, (n, args.docs)

        def run_vecver() -> None:
            c, tot, n, c_cpu, tot_cpu = vecver_backfill(ws, args.batch)
            copy_s.append(c)
            total_s.append(tot)
            copy_c.append(c_cpu)
            total_c.append(tot_cpu)
            assert n == args.docs, (n, args.docs)

        for f in ((run_hand, run_vecver) if r % 2 == 0 else (run_vecver, run_hand)):
            f()
        out(f"  [{eng.name}] round {r + 1}: hand loop {loop_s[-1]:.2f} s, vecver copy "
            f"{copy_s[-1]:.2f} s, with verify {total_s[-1]:.2f} s; CPU {loop_c[-1]:.2f} / "
            f"{copy_c[-1]:.2f} / {total_c[-1]:.2f} s  (load {C.loadavg()})")
    with contextlib.suppress(Exception):
        ws.backend.drop_namespace(dst)
    ml, mc, mt = (statistics.median(x) for x in (loop_s, copy_s, total_s))
    cl, cc, ct = (statistics.median(x) for x in (loop_c, copy_c, total_c))
    return {
        "ratio copy, CPU": cl / cc,
        "ratio +verify, CPU": cl / ct,
        "hand docs/s": args.docs / ml,
        "vecver copy docs/s": args.docs / mc,
        "vecver +verify docs/s": args.docs / mt,
        "ratio copy": ml / mc,
        "ratio +verify": ml / mt,
    }


# -- 2. search latency ------------------------------------------------------------------------


def search_variants(ws: Any, eng: Engine, ws_nr: Any = None) -> dict[str, Callable[[Any], Any]]:
    """name -> f(queries matrix) for each path, on the active namespace; ``ws_nr`` (Milvus):
    a second workspace on the same manifest and collections whose backend has
    ``rescore = false``."""
    ns = ws.manifest.active_namespace("c")
    label = ws.manifest.namespace(ns).space_label
    be = ws.backend
    coll = ws.collection("c")
    client = be.client
    if eng.kind == "qdrant":
        from qdrant_client import models

        def raw(q: Any) -> Any:
            if len(q) == 1:
                return client.query_points(ns, query=q[0].tolist(), limit=K, with_payload=True)
            return client.query_batch_points(ns, requests=[
                models.QueryRequest(query=v, limit=K, with_payload=True) for v in q.tolist()])

        variants: dict[str, Callable[[Any], Any]] = {"raw": raw}
    else:
        from vecver.backends.milvus._backend import _RECORD_FIELDS, F_ID, F_VECTOR

        fields = [f for f in _RECORD_FIELDS if f != F_ID]
        params = {"metric_type": "COSINE", "params": {"ef": 128}}

        def raw_with(out_fields: list[str]) -> Callable[[Any], Any]:
            def f(q: Any) -> Any:
                res = client.search(ns, data=q.tolist(), limit=K, output_fields=out_fields,
                                    search_params=params, anns_field=F_VECTOR,
                                    consistency_level="Strong")  # fmt: skip
                # pymilvus decodes hits lazily: read them, as any caller does
                return [[(h["id"], h["distance"], h["entity"]) for h in row] for row in res]

            return f

        variants = {"raw": raw_with(fields), "raw+vec": raw_with([*fields, F_VECTOR]),
                    # what each search and write cost before the backend cached specs
                    "describe_collection": lambda q: client.describe_collection(ns)}
    variants["backend.search"] = lambda q: be.search(ns, q, K)
    variants["search_vectors"] = lambda q: coll.search_vectors(q, K, space=label)
    if ws_nr is not None:
        be_nr, coll_nr = ws_nr.backend, ws_nr.collection("c")
        variants["backend.search rescore=false"] = lambda q: be_nr.search(ns, q, K)
        variants["search_vectors rescore=false"] = lambda q: coll_nr.search_vectors(
            q, K, space=label)
    return variants


def bench_search(ws: Any, eng: Engine, args: Any, out: Out,
                 ws_nr: Any = None) -> dict[str, dict[str, float]]:
    import numpy as np

    variants = search_variants(ws, eng, ws_nr)
    names = list(variants)
    emb = ws.embedder("v1")
    nq, nb = (args.lite_queries, args.lite_batches) if eng.name == "milvus-lite" else (
        args.queries, args.batches)  # fmt: skip
    qs = np.asarray(emb.embed_queries(C.synthetic_queries(max(nq, QBATCH * 2))),
                    dtype=np.float32)  # fmt: skip
    singles = [qs[i : i + 1] for i in range(nq)]
    rng = np.random.default_rng(5)
    batches = [qs[rng.choice(len(qs), QBATCH, replace=False)] for _ in range(nb)]
    for f in variants.values():  # warm up, and every path answers k hits
        got = f(singles[0])
        f(batches[0])
    res: dict[str, dict[str, list[float]]] = {
        f"{shape} {n}": {"p50": [], "p99": []} for shape in ("1q", "64q") for n in names}
    for r in range(args.rounds):
        for shape, inputs in (("1q", singles), ("64q", batches)):
            per: dict[str, list[float]] = {n: [] for n in names}
            for i, q in enumerate(inputs):
                shift = (i + r) % len(names)
                for n in names[shift:] + names[:shift]:
                    t = time.perf_counter_ns()
                    got = variants[n](q)
                    per[n].append((time.perf_counter_ns() - t) / 1000)
            for n in names:
                p50, p99 = _pcts(per[n])
                res[f"{shape} {n}"]["p50"].append(p50)
                res[f"{shape} {n}"]["p99"].append(p99)
        out(f"  [{eng.name}] search round {r + 1} done (load {C.loadavg()})")
    del got
    return {key: {s: statistics.median(v[s]) for s in v} for key, v in res.items()}


# -- 3. cutover as a reader sees it ------------------------------------------------------------


def bench_cutover(ws: Any, eng: Engine, args: Any, out: Out) -> dict[str, float]:
    from vecver.ops.cutover import cutover, rollback

    coll = ws.collection("c")
    rows = {r.space_label: r for r in ws.manifest.namespaces("c")}
    assert rows["v1"].state == "active" and rows["v2"].state == "ready", rows
    queries = C.synthetic_queries(256, seed=23)
    answers: list[tuple[float, float, str | None, int]] = []  # start, end, space, hits
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                hits = coll.search(queries[i % len(queries)], K)
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(f"{type(e).__name__}: {e}")
                continue
            finally:
                i += 1
            spaces = {h.space for h in hits}
            answers.append((t0, time.perf_counter(), spaces.pop() if len(spaces) == 1
                            else ("mixed" if spaces else None), len(hits)))  # fmt: skip

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    switches: list[tuple[float, float, str, str]] = []  # start, end, old, new
    try:
        while len(answers) < 20:
            time.sleep(0.01)
        for s in range(args.switches):
            old, new = ("v1", "v2") if s % 2 == 0 else ("v2", "v1")
            t0 = time.perf_counter()
            if s % 2 == 0:
                cutover(ws, "c", to="v2", force=True)
            else:
                rollback(ws, "c")
            t1 = time.perf_counter()
            switches.append((t0, t1, old, new))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the reader answered from the new space
                if answers and answers[-1][2] == new and answers[-1][0] > t1:
                    break
                time.sleep(0.0005)
            else:
                raise SystemExit(f"[{eng.name}] the reader never answered from {new} after "
                                 f"switch {s + 1}")
        time.sleep(0.05)
    finally:
        stop.set()
        th.join(timeout=30)
    if args.switches % 2:
        rollback(ws, "c")
    gaps: list[float] = []
    stale = 0
    for i, (t0, t1, old, new) in enumerate(switches):
        t_next = switches[i + 1][0] if i + 1 < len(switches) else float("inf")
        window = [a for a in answers if a[1] > t0 and a[1] < t_next]
        first_new = min(a[1] for a in window if a[2] == new)
        olds = [a[1] for a in answers if a[2] == old and a[1] < first_new]
        gaps.append((first_new - max(olds)) * 1000 if olds else float("nan"))
        stale += sum(1 for a in window if a[2] == old and a[0] > t1)
    ends = [a[1] for a in answers]
    ordinary = [(b - a) * 1000 for a, b in zip(ends, ends[1:])]
    durations = [(t1 - t0) * 1000 for t0, t1, _, _ in switches]
    if errors:
        out(f"  [{eng.name}] reader errors, first: {errors[0]}")
    return {
        "switches": float(len(switches)),
        "reader answers": float(len(answers)),
        "gap max ms": max(gaps),
        "gap p50 ms": C.percentile(gaps, 50),
        "gap p99 ms": C.percentile(gaps, 99),
        "ordinary gap p50 ms": C.percentile(ordinary, 50),
        "ordinary gap p99 ms": C.percentile(ordinary, 99),
        "switch p50 ms": C.percentile(durations, 50),
        "switch max ms": max(durations),
        "stale answers": float(stale),
        "mixed answers": float(sum(1 for a in answers if a[2] == "mixed")),
        "errors": float(len(errors)),
        "empty results": float(sum(1 for a in answers if a[3] == 0)),
    }


# -- where a backfill batch's time goes ---------------------------------------------------------


def bench_steps(ws: Any, eng: Engine, args: Any, out: Out) -> None:
    """Each step of a backfill batch timed alone, one after the other (no read-ahead
    thread), next to the hand loop's steps: what the copy phase's ratio is made of."""
    from vecver.backends._remote import KEY_AT, KEY_FP, KEY_TEXT
    from vecver.drift.reservoir import observe_written
    from vecver.types import Record, Stamp

    restart_v2(ws, args.batch)
    _fresh_hand_target(ws, "hand_v2")
    be, client = ws.backend, ws.backend.client
    src = ws.manifest.active_namespace("c")
    tgt = ws.manifest.namespace_for("c", "v2")
    emb = ws.embedder("v2")
    fp = emb.space.fingerprint
    # the tree measured may predate reads without text
    lean: dict[str, Any] = (
        {"with_text": False} if "with_text" in inspect.signature(be.fetch).parameters else {})
    took: dict[str, float] = {}
    took_cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(what: str) -> Iterator[None]:
        c, t = time.thread_time(), time.perf_counter()
        yield
        took[what] = took.get(what, 0.0) + time.perf_counter() - t
        took_cpu[what] = took_cpu.get(what, 0.0) + time.thread_time() - c

    raw_pages: Iterator[list[tuple[Any, str, dict[str, Any]]]]
    if eng.kind == "qdrant":
        from qdrant_client import models

        def qdrant_pages() -> Iterator[list[tuple[Any, str, dict[str, Any]]]]:
            offset = None
            while True:
                pts, offset = client.scroll(src, limit=args.batch, offset=offset,
                                            with_payload=True, with_vectors=False)  # fmt: skip
                yield [(p.id, str((p.payload or {}).get(KEY_TEXT, "")), dict(p.payload or {}))
                       for p in pts]  # fmt: skip
                if offset is None:
                    return

        def raw_upsert(rows: list[tuple[Any, str, dict[str, Any]]], vecs: Any) -> None:
            client.upsert("hand_v2", points=models.Batch(
                ids=[r[0] for r in rows], vectors=vecs.tolist(),
                payloads=[dict(r[2], **{KEY_FP: fp, KEY_AT: time.time()}) for r in rows],
            ), wait=True)  # fmt: skip

        raw_pages = qdrant_pages()
    else:
        from vecver.backends.milvus._backend import _RECORD_FIELDS, F_AT, F_FP, F_TEXT
        from vecver.backends.milvus._expr import FILTER_FIELD

        def milvus_pages() -> Iterator[list[tuple[Any, str, dict[str, Any]]]]:
            it = client.query_iterator(src, batch_size=args.batch, filter="",
                                       output_fields=[*_RECORD_FIELDS, FILTER_FIELD])  # fmt: skip
            try:
                while rows := it.next():
                    yield [(r["id"], str(r[F_TEXT]), dict(r)) for r in rows]
            finally:
                it.close()

        def raw_upsert(rows: list[tuple[Any, str, dict[str, Any]]], vecs: Any) -> None:
            now = time.time()
            client.upsert("hand_v2", [dict(r[2], vector=v.tolist(), **{F_FP: fp, F_AT: now})
                                      for r, v in zip(rows, vecs, strict=True)])  # fmt: skip

        raw_pages = milvus_pages()
    cursor, n = None, 0
    while True:
        with timed("hand: read a page (scroll / query_iterator)"):
            rows = next(raw_pages, [])
        if rows:
            with timed("hand: embed"):
                vecs = emb.embed_documents([r[1] for r in rows])
            with timed("hand: upsert"):
                raw_upsert(rows, vecs)
        with timed("vecver: backend.scan page"):
            page = be.scan(src, cursor=cursor, limit=args.batch)
        with timed("vecver: backend.fetch target (already there?)*"):
            be.fetch(tgt.name, [r.id for r in page.records], **lean)
        with timed("vecver: embed"):
            vv = emb.embed_documents([r.text or "" for r in page.records])
        now = time.time()
        recs = [Record(r.id, v, r.text, r.metadata, Stamp(fp, r.id, r.stamp.source_hash
                                                          if r.stamp else "", now))
                for r, v in zip(page.records, vv, strict=True)]  # fmt: skip
        with timed("vecver: backend.upsert (validate, encode, write)"):
            be.upsert(tgt.name, recs)
        with timed("vecver: drift sample + checkpoint + write epoch"):
            observe_written(ws, "c", tgt, recs)
            ws.manifest.save_checkpoint(tgt.name, "namespace:" + src, page.next_cursor,
                                        n, {"written": n, "skipped": 0})  # fmt: skip
            ws.manifest.write_epoch("c")
        n += len(page.records)
        cursor = page.next_cursor
        if cursor is None:
            break
    with contextlib.suppress(Exception):
        be.drop_namespace("hand_v2")
    from vecver.ops.abort import abort

    abort(ws, "c", "v2")  # its checkpoint was written by hand above
    out(f"\n== where a backfill batch's time goes, {eng.name} ({n} docs, steps timed one "
        f"after the other, ms per batch: wall / this thread's CPU; load {C.loadavg()})")
    batches = max(1, -(-n // args.batch))
    for what, secs in took.items():
        out(f"  {what:52s} {secs / batches * 1000:8.1f} {took_cpu[what] / batches * 1000:8.1f}")
    out("  * a backfill into a space that was empty when it started skips this fetch for as "
        f"long as no write is issued; read {'without' if lean else 'with'} the text here")


# -- main -------------------------------------------------------------------------------------


def run_engine(eng: Engine, args: Any, out: Out) -> dict[str, Any]:
    import vecver

    out(f"\n--- {eng.name} ---")
    with tempfile.TemporaryDirectory(prefix="vv-db-bench-", dir="/dev/shm") as tmp:
        cfg = write_config(Path(tmp), eng, args.dim, args.batch)
        ws = vecver.open(cfg, progress=False)
        ws_nr = None
        if eng.kind == "milvus":
            # the same manifest and collections, searched through a backend that takes
            # Milvus' distances as the scores (no vectors asked for)
            cfg_nr = Path(tmp) / "vecver-norescore.toml"
            cfg_nr.write_text(cfg.read_text(encoding="utf-8").replace(
                eng.backend_toml, eng.backend_toml + "\nrescore = false"), encoding="utf-8")
            ws_nr = vecver.open(cfg_nr, progress=False)
        try:
            t = time.perf_counter()
            coll = ws.collection("c")
            docs = list(C.synthetic_docs(args.docs))
            for i in range(0, len(docs), 2000):
                coll.upsert(docs[i : i + 2000], batch_size=args.batch)
            out(f"  [{eng.name}] setup: {args.docs} docs ingested into v1 in "
                f"{time.perf_counter() - t:.1f} s")
            if args.only_steps:
                bench_steps(ws, eng, args, out)
                return {}
            res: dict[str, Any] = {"backfill": bench_backfill(ws, eng, args, out)}
            if args.only_backfill:
                report_backfill({eng.name: res}, out)
                return res
            res["search"] = bench_search(ws, eng, args, out, ws_nr)
            res["cutover"] = bench_cutover(ws, eng, args, out)
            report({eng.name: res}, out)  # kept even if a later engine fails
            if args.steps:
                bench_steps(ws, eng, args, out)
            return res
        finally:
            if ws_nr is not None:
                ws_nr.close()
            ws.close()


def _row(out: Out, label: str, vals: list[str], w: int = 19) -> None:
    out(f"{label:40s}" + "".join(f"{v:>{w}s}" for v in vals))


def report_backfill(results: dict[str, dict[str, Any]], out: Out) -> None:
    """Section 1 alone (``--only-backfill``)."""
    names = list(results)

    def row(label: str, vals: list[str]) -> None:
        _row(out, label, vals)

    out("\n== 1. backfill v1 -> v2 (docs/s, median of rounds)")
    row("", names)
    for key in ("hand docs/s", "vecver copy docs/s", "vecver +verify docs/s"):
        row(key, [f"{results[n]['backfill'][key]:.0f}" for n in names])
    for key in ("ratio copy", "ratio +verify"):
        row(f"{key} (vecver/hand, target >= 0.95)",
            [f"{results[n]['backfill'][key]:.3f}" for n in names])
    for key in ("ratio copy, CPU", "ratio +verify, CPU"):
        row(f"{key} (this process's CPU seconds)",
            [f"{results[n]['backfill'][key]:.3f}" for n in names])


def report(results: dict[str, dict[str, Any]], out: Out) -> None:
    names = list(results)
    w = 19

    def row(label: str, vals: list[str]) -> None:
        out(f"{label:40s}" + "".join(f"{v:>{w}s}" for v in vals))

    out("\n== 1. backfill v1 -> v2 (docs/s, median of rounds)")
    row("", names)
    for key in ("hand docs/s", "vecver copy docs/s", "vecver +verify docs/s"):
        row(key, [f"{results[n]['backfill'][key]:.0f}" for n in names])
    for key in ("ratio copy", "ratio +verify"):
        row(f"{key} (vecver/hand, target >= 0.95)",
            [f"{results[n]['backfill'][key]:.3f}" for n in names])
    for key in ("ratio copy, CPU", "ratio +verify, CPU"):
        row(f"{key} (this process's CPU seconds)",
            [f"{results[n]['backfill'][key]:.3f}" for n in names])

    for shape, what in (("1q", "single queries"), ("64q", f"batches of {QBATCH} queries")):
        out(f"\n== 2. search latency, k={K}, {what} (us per call, median of rounds' p50 / p99)")
        row("", names)
        variants = sorted({k.split(" ", 1)[1] for n in names for k in results[n]["search"]
                           if k.startswith(shape + " ")},
                          key=["raw", "raw+vec", "backend.search", "search_vectors",
                               "backend.search rescore=false", "search_vectors rescore=false",
                               "describe_collection"].index)
        for v in variants:
            cells = []
            for n in names:
                s = results[n]["search"].get(f"{shape} {v}")
                cells.append(f"{s['p50']:.0f} / {s['p99']:.0f}" if s else "-")
            row(v, cells)
        for v in ("backend.search", "search_vectors", "backend.search rescore=false",
                  "search_vectors rescore=false"):
            if not any(f"{shape} {v}" in results[n]["search"] for n in names):
                continue
            cells = []
            verdicts: list[bool | None] = []
            for n in names:
                s = results[n]["search"]
                if f"{shape} {v}" not in s:
                    cells.append("-")
                    verdicts.append(None)
                    continue
                raw, got = s[f"{shape} raw"]["p50"], s[f"{shape} {v}"]["p50"]
                over = got - raw
                verdicts.append(over <= max(0.10 * raw, 50.0))
                cells.append(f"{over:+.0f} {100 * over / raw:+.0f}%")
            row(f"overhead {v} - raw (p50)", cells)
            row("  within target (<= 10% or 50 us)",
                ["-" if ok is None else "yes" if ok else "NO" for ok in verdicts])
        if any("raw+vec" in k for n in names for k in results[n]["search"]):
            cells = []
            for n in names:
                s = results[n]["search"]
                if f"{shape} raw+vec" in s:
                    rv, got = s[f"{shape} raw+vec"]["p50"], s[f"{shape} search_vectors"]["p50"]
                    cells.append(f"{got - rv:+.0f} {100 * (got - rv) / rv:+.0f}%")
                else:
                    cells.append("-")
            row("overhead search_vectors - raw+vec", cells)

    out("\n== 3. cutover as a reader sees it (alternating cutover / rollback)")
    row("", names)
    for key, fmt in (("switches", "{:.0f}"), ("reader answers", "{:.0f}"),
                     ("gap max ms", "{:.2f}"), ("gap p50 ms", "{:.2f}"),
                     ("gap p99 ms", "{:.2f}"), ("ordinary gap p50 ms", "{:.2f}"),
                     ("ordinary gap p99 ms", "{:.2f}"), ("switch p50 ms", "{:.1f}"),
                     ("switch max ms", "{:.1f}"), ("stale answers", "{:.0f}"),
                     ("mixed answers", "{:.0f}"), ("errors", "{:.0f}"),
                     ("empty results", "{:.0f}")):  # fmt: skip
        row(key, [fmt.format(results[n]["cutover"][key]) for n in names])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=200, help="single queries per round")
    ap.add_argument("--batches", type=int, default=20, help=f"batches of {QBATCH} per round")
    ap.add_argument("--lite-queries", type=int, default=50,
                    help="single queries per round on Milvus Lite (slow: 10-100 ms each)")
    ap.add_argument("--lite-batches", type=int, default=5)
    ap.add_argument("--switches", type=int, default=100)
    ap.add_argument("--steps", action="store_true",
                    help="also time each step of a backfill batch alone (where the copy "
                    "phase's ratio comes from)")
    ap.add_argument("--only-steps", action="store_true",
                    help="only the steps (no backfill, search or cutover figures)")
    ap.add_argument("--only-backfill", action="store_true",
                    help="only the backfill figures (section 1)")
    ap.add_argument("--engines", default="qdrant,milvus,lite",
                    help="comma-separated: qdrant, milvus (the embedded server), lite")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results"
                    / "db-bench.txt", help="results file ('-' for none)")  # fmt: skip
    args = ap.parse_args()
    chosen = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(chosen) - {"qdrant", "milvus", "lite"}
    if unknown or not chosen:
        raise SystemExit(f"--engines: unknown {sorted(unknown)}; use qdrant, milvus, lite")
    out = Out(None if str(args.out) == "-" else args.out)
    from importlib.metadata import version

    import milvus
    import pymilvus

    # pymilvus (its logging set up on import) logs every refused call at ERROR with a
    # traceback (a describe of a collection not there yet), and its query iterator warns
    # that a 2.3 server gives it no timestamp: the calls still raise, only the noise goes
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

    now = datetime.datetime.now(datetime.timezone.utc)
    out(f"# {Path(__file__).name}, {now:%Y-%m-%d %H:%M} UTC")
    out("# command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    out(f"# load at start {C.loadavg()} (1/5/15 min) on {os.cpu_count()} cores")
    out(f"# docs {args.docs}, dim {args.dim}, batch {args.batch}, rounds {args.rounds}, "
        f"queries {args.queries} single + {args.batches} x {QBATCH} (Lite: "
        f"{args.lite_queries} + {args.lite_batches} x {QBATCH}), k {K}, "
        f"switches {args.switches}")
    out(f"# qdrant-client {version('qdrant-client')} (local mode, :memory:), pymilvus "
        f"{pymilvus.__version__}, milvus (embedded server) {milvus.__version__}, milvus-lite "
        f"{version('milvus-lite')}")
    out("# " + C.describe())
    results: dict[str, dict[str, Any]] = {}
    shm = Path(tempfile.mkdtemp(prefix="vv-db-bench-milvus-", dir="/dev/shm"))
    try:
        for name in chosen:
            if name == "qdrant":
                eng = Engine("qdrant-local", 'name = "qdrant"\nlocation = ":memory:"', "qdrant")
                results[eng.name] = run_engine(eng, args, out)
            elif name == "lite":
                eng = Engine("milvus-lite", f'name = "milvus"\nuri = "{shm / "lite.db"}"',
                             "milvus")  # fmt: skip
                results[eng.name] = run_engine(eng, args, out)
            else:
                with milvus_server(shm / "server", out) as uri:
                    eng = Engine("milvus-2.3.5", f'name = "milvus"\nuri = "{uri}"', "milvus")
                    results[eng.name] = run_engine(eng, args, out)
        if args.only_backfill:
            report_backfill(results, out)
        elif not args.only_steps:
            report(results, out)
        out(f"\n# load at end {C.loadavg()}")
    finally:
        if "lite" in chosen:
            # Milvus Lite serves in this process (threads) until exit, and writes its
            # files when it stops: stop it before its folder is removed
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_all()
        shutil.rmtree(shm, ignore_errors=True)
        out.close()


if __name__ == "__main__":
    main()
