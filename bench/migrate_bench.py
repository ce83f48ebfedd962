"""`vecver migrate` throughput against a hand-written hnswlib loop, side by side, in one run.

    python bench/migrate_bench.py [--docs 100000] [--dim 64] [--rounds 3] [--batch 512]
    VECVER_SRC=/work/before python bench/migrate_bench.py ...   # measure another tree

Setup (not timed): N synthetic documents (20-40 words) are written to docs.jsonl and
ingested into collection ``c`` (space v1, ``hash`` embedder, DIM) on the local backend; that
workspace is kept pristine and copied before each timed migration, so every round starts
from the same state.

Each round times, in a rotating order:

- raw: the loop a user would write with hnswlib directly: read docs.jsonl line by line,
  embed each batch of BATCH texts with the same ``hash`` embedder of space v2 (vecver's
  SpaceEmbedder: same dimension, same normalization), ``add_items`` into an hnswlib index
  with the local backend's default M / ef_construction (read from its signature), the
  same hnswlib space and ``num_threads=-1``. The index is sized for N up front. No text,
  metadata, stamp or checkpoint is stored, nothing is verified, nothing is saved.
- api: ``vecver.migrate(ws, "c", "v2", batch_size=BATCH)`` on an open workspace (the call
  only: opening and closing the workspace are outside the timing; close is reported).
- cli: ``python -m vecver --config ... --quiet migrate c --to v2 --batch-size BATCH --json``
  in a subprocess, timed whole (interpreter start, imports, open, migrate, close).

Both vecver runs read the documents from the active space (the default source). Ratios
are throughput ratios, vecver / raw (= raw seconds / vecver seconds), per round and their
median; the target of issue 5 is >= 0.95. The machine is shared and noisy: only the
ratios of one run mean something. Next to the wall-clock ratios, CPU-time ratios (user +
system seconds of this process, or of the CLI child, over the same interval) are printed:
they hardly move when other work competes for the cores, but they do not credit vecver
for overlapping embedding with writes, nor charge it for waiting on I/O; read the wall
ratio as the figure and the CPU ratio as the check on how much of it is noise.
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402 - must run before vecver is imported


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def raw_loop(jsonl: Path, n: int, dim: int, batch: int, emb: Any, metric: str,
             params: dict[str, int]) -> tuple[float, float, int]:
    """(wall s, CPU s, documents) of the hand-written hnswlib loop."""
    import hnswlib
    import numpy as np

    c0 = cpu_self()
    t0 = time.perf_counter()
    index = hnswlib.Index(space=C.hnsw_space(metric), dim=dim)
    index.init_index(max_elements=n, ef_construction=params["ef_construction"], M=params["M"])
    done = 0
    texts: list[str] = []

    def flush() -> None:
        nonlocal done
        vecs = emb.embed_documents(texts)
        labels = np.arange(done, done + len(texts), dtype=np.int64)
        index.add_items(vecs, labels, num_threads=-1)
        done += len(texts)
        texts.clear()

    with jsonl.open(encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) == batch:
                flush()
    if texts:
        flush()
    dt = time.perf_counter() - t0
    cpu = cpu_self() - c0
    assert index.get_current_count() == n == done, (index.get_current_count(), n, done)
    return dt, cpu, done


def _report_dict(rep: Any) -> dict[str, Any]:
    if hasattr(rep, "to_dict"):
        d = rep.to_dict()
        return d if isinstance(d, dict) else {"report": d}
    return {"report": repr(rep)}


def api_migrate(cfg: Path, batch: int) -> tuple[float, float, float, float, dict[str, Any]]:
    """(migrate s, CPU s, copy-phase s or nan, close s, report) through the Python API."""
    import vecver

    marks: list[float] = []
    kwargs: dict[str, Any] = {"batch_size": batch, "progress": False}
    if "on_batch" in inspect.signature(vecver.migrate).parameters:
        kwargs["on_batch"] = lambda r: marks.append(time.perf_counter())
    ws = vecver.open(cfg, progress=False)
    try:
        c0 = cpu_self()
        t0 = time.perf_counter()
        rep = vecver.migrate(ws, "c", "v2", **kwargs)
        dt = time.perf_counter() - t0
        cpu = cpu_self() - c0
    finally:
        t1 = time.perf_counter()
        ws.close()
        close_s = time.perf_counter() - t1
    d = _report_dict(rep)
    state = d.get("state", getattr(rep, "state", None))
    if state != "ready":
        raise SystemExit(f"api migrate did not end ready: {d}")
    copy = (marks[-1] - t0) if marks else float("nan")
    return dt, cpu, copy, close_s, d


def cli_command(cfg: Path, batch: int) -> list[str]:
    if C.TREE or C.ensure_registered():
        head = [sys.executable, str(C.HERE / "_cli_shim.py")]
    else:
        head = [sys.executable, "-m", "vecver"]
    return head + ["--config", str(cfg), "--quiet", "migrate", "c", "--to", "v2",
                   "--batch-size", str(batch), "--json"]


def cli_migrate(cfg: Path, batch: int) -> tuple[float, float, dict[str, Any]]:
    """(wall s, CPU s of the child, --json output) of the CLI in a subprocess."""
    cmd = cli_command(cfg, batch)
    c0 = cpu_children()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=C.child_env(),
                          cwd=str(cfg.parent))
    dt = time.perf_counter() - t0
    cpu = cpu_children() - c0
    if proc.returncode != 0:
        raise SystemExit(f"cli migrate exited {proc.returncode}: {proc.stderr[-2000:]}")
    out: dict[str, Any] = {}
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        out = {"stdout_tail": proc.stdout[-300:]}
    if isinstance(out, dict) and out.get("state", "ready") != "ready":
        raise SystemExit(f"cli migrate did not end ready: {out}")
    return dt, cpu, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=512,
                   help="batch of the raw loop, --batch-size of migrate and [backfill]")
    p.add_argument("--workdir", help="where to build the corpus (default: a temp dir)")
    C.add_wait_flags(p)
    args = p.parse_args()

    C.announce()
    params = C.local_params()
    root = Path(tempfile.mkdtemp(prefix="vecver-mbench-", dir=args.workdir))
    try:
        import vecver

        pristine = root / "pristine"
        pristine.mkdir()
        cfg0 = C.write_config(pristine, args.dim, args.batch)
        docs = list(C.synthetic_docs(args.docs))
        jsonl = root / "docs.jsonl"
        C.write_jsonl(jsonl, docs)
        t0 = time.perf_counter()
        C.ingest(cfg0, docs, args.batch)
        del docs
        print(f"setup: {args.docs} docs x {args.dim}-d ingested into v1 in "
              f"{time.perf_counter() - t0:.1f}s; batch {args.batch}; local backend defaults "
              f"{params}; load average {C.loadavg()}", flush=True)

        # the raw loop's embedder: space v2 of the same config, built once (not timed)
        side = root / "embedder-only"
        side.mkdir()
        ws_e = vecver.open(C.write_config(side, args.dim, args.batch), progress=False)
        emb = C.space_embedder(ws_e, "v2")
        metric = emb.space.spec.metric
        print(f"space v2: {emb.space.spec.embedder} dim {emb.space.spec.dimension} metric "
              f"{metric} -> hnswlib space {C.hnsw_space(metric)!r}; CLI command: "
              f"{' '.join(cli_command(Path('CFG'), args.batch))}", flush=True)

        kinds = ["raw", "api", "cli"]
        rows: list[dict[str, float]] = []
        for rnd in range(args.rounds):
            order = kinds[rnd % 3:] + kinds[: rnd % 3]
            row: dict[str, float] = {}
            loads = []
            for kind in order:
                loads.append(f"{kind}: {C.wait_quiet(args.wait_load, args.max_wait)}")
                if kind == "raw":
                    row["raw_s"], row["raw_cpu"], n = raw_loop(
                        jsonl, args.docs, args.dim, args.batch, emb, metric, params)
                    continue
                work = root / f"r{rnd + 1}-{kind}"
                shutil.copytree(pristine, work)
                cfg = work / "vecver.toml"
                if kind == "api":
                    (row["api_s"], row["api_cpu"], row["api_copy_s"], row["api_close_s"],
                     _) = api_migrate(cfg, args.batch)
                else:
                    row["cli_s"], row["cli_cpu"], _ = cli_migrate(cfg, args.batch)
                shutil.rmtree(work, ignore_errors=True)
            row["api_ratio"] = row["raw_s"] / row["api_s"]
            row["cli_ratio"] = row["raw_s"] / row["cli_s"]
            row["api_cpu_ratio"] = row["raw_cpu"] / row["api_cpu"]
            row["cli_cpu_ratio"] = row["raw_cpu"] / row["cli_cpu"]
            rows.append(row)
            n = args.docs
            print(f"round {rnd + 1} (order {'/'.join(order)}): raw hnswlib {n / row['raw_s']:,.0f}"
                  f" docs/s ({row['raw_s']:.1f}s) | API {n / row['api_s']:,.0f} docs/s "
                  f"({row['api_s']:.1f}s; copy phase {row['api_copy_s']:.1f}s; close "
                  f"{row['api_close_s']:.1f}s untimed) | CLI {n / row['cli_s']:,.0f} docs/s "
                  f"({row['cli_s']:.1f}s) | ratio API/raw {row['api_ratio']:.3f}, CLI/raw "
                  f"{row['cli_ratio']:.3f} | CPU s raw/API/CLI {row['raw_cpu']:.1f}/"
                  f"{row['api_cpu']:.1f}/{row['cli_cpu']:.1f}, CPU ratio API/raw "
                  f"{row['api_cpu_ratio']:.3f}, CLI/raw {row['cli_cpu_ratio']:.3f} | at start "
                  f"of {'; '.join(loads)}; at end load {C.loadavg()}", flush=True)
        ws_e.close()
        api = [r["api_ratio"] for r in rows]
        cli = [r["cli_ratio"] for r in rows]
        raw = [args.docs / r["raw_s"] for r in rows]
        api_c = [r["api_cpu_ratio"] for r in rows]
        cli_c = [r["cli_cpu_ratio"] for r in rows]
        print(f"median of {len(rows)} rounds: ratio API/raw {C.median(api):.3f}, CLI/raw "
              f"{C.median(cli):.3f} (target >= 0.95); raw loop {C.median(raw):,.0f} docs/s, "
              f"API {C.median([args.docs / r['api_s'] for r in rows]):,.0f} docs/s, CLI "
              f"{C.median([args.docs / r['cli_s'] for r in rows]):,.0f} docs/s")
        print(f"median of {len(rows)} rounds, CPU time: ratio API/raw {C.median(api_c):.3f}, "
              f"CLI/raw {C.median(cli_c):.3f}; CPU s raw "
              f"{C.median([r['raw_cpu'] for r in rows]):.1f}, API "
              f"{C.median([r['api_cpu'] for r in rows]):.1f}, CLI "
              f"{C.median([r['cli_cpu'] for r in rows]):.1f}")
        best = {k: min(r[k] for r in rows) for k in ("raw_s", "api_s", "cli_s")}
        print(f"best of {len(rows)} rounds (least disturbed; each kind's fastest round): raw "
              f"{best['raw_s']:.1f}s, API {best['api_s']:.1f}s, CLI {best['cli_s']:.1f}s -> ratio "
              f"API/raw {best['raw_s'] / best['api_s']:.3f}, CLI/raw "
              f"{best['raw_s'] / best['cli_s']:.3f}")
        print(f"noise: wall API/raw {C.spread(api)}; CLI/raw {C.spread(cli)}; raw docs/s "
              f"{min(raw):,.0f}..{max(raw):,.0f}; CPU API/raw {C.spread(api_c)}; CLI/raw "
              f"{C.spread(cli_c)}")
        print(json.dumps({"bench": "migrate", "docs": args.docs, "dim": args.dim,
                          "batch": args.batch, "params": params, "rounds": rows,
                          "api_ratio_median": C.median(api),
                          "cli_ratio_median": C.median(cli),
                          "api_cpu_ratio_median": C.median(api_c),
                          "cli_cpu_ratio_median": C.median(cli_c),
                          "best_api_ratio": best["raw_s"] / best["api_s"],
                          "best_cli_ratio": best["raw_s"] / best["cli_s"]}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
