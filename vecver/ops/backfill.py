"""backfill and migrate: fill the space being built, resumably, then verify it.

A backfill run is a small pipeline (:class:`_BackfillRun`): *open* (recover, pick the
source and the resume point), *hot* (with ``priority="hot"``: the most-read documents
first, see below), *copy* (a background thread reads and embeds page n+1 while this one
writes page n and checkpoints it; in turn, in this thread, where every step runs in this
process holding the interpreter lock: see :data:`READ_AHEAD`) and *finish* (reconcile
what changed meanwhile, verify, mark ``ready``).

Deferred visibility: on a backend declaring ``consistency="eventual"`` the copy does not
wait for each batch to become visible before writing the next. A batch is sent with
:meth:`~vecver.backends.base.Backend.upsert_deferred`; up to :data:`VISIBILITY_WINDOW`
batches stay written but unconfirmed while the next ones are written; then the window is
confirmed, oldest first (a backend that reports log positions confirms the lot with one
probe), and one checkpoint is saved past its newest batch. The checkpoint therefore never
points past a batch whose visibility was not confirmed: a run killed with batches in the
window resumes before them, and writes them again (idempotent by id). A batch that raced
with another writer is confirmed at once (its reconciliation reads it back); a batch whose
confirmation fails is written again the synchronous way. On a strongly consistent backend
every write is confirmed when it returns, and each batch is checkpointed as it is written.

Hot-first (``priority="hot"``): the documents reads counted most
(:meth:`~vecver.store.base.ManifestStore.read_counts`, collected by
:mod:`vecver.read.lazy`) are copied first, from the active space, most-read first; then
the usual pass copies the rest in the source's order (what the hot phase wrote is
skipped there). The order is snapshotted when the phase starts (an artifact of kind
:data:`HOT_ARTIFACT`), and the checkpoint records the position in it, so a run killed in
the hot phase resumes there (nothing lost; nothing written twice but the one batch in
flight, which writes the same vectors again). ``budget_docs=N`` limits the phase to the N
most-read documents and ends the run after it (the space stays ``building``; a later
backfill completes it); the report says which share of the observed read traffic those
documents received.

Lazy-only migration (``migrate(..., no_backfill=True)``): dual-write is turned on and
nothing is copied; documents move as reads find them (:mod:`vecver.read.lazy`), and
:func:`lazy_backfill` drains what reads queued. A later plain :func:`backfill` copies the
rest, skipping what lazy work already wrote (:func:`~vecver.runtime.reconcile.
needs_embedding`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from ..backends.base import PendingWrite
from ..drift.reservoir import observe_written
from ..embedders.derived import from_stored
from ..errors import (
    AlreadyRecorded,
    InvalidArgument,
    InvalidInput,
    LeaseHeld,
    StateError,
    TransientBackendError,
    UnknownSpace,
)
from ..read.lazy import DrainReport, drain
from ..runtime.progress import Progress, phase
from ..runtime.readahead import ReadAhead
from ..runtime.reconcile import (
    delete_ids,
    embed_or_fail,
    needs_embedding,
    reconcile,
    reconcile_present,
    send_records,
    write_records,
)
from ..runtime.sources import NamespaceSource, Source, is_end
from ..runtime.workspace import Workspace
from ..space import Space
from ..store.sqlite import NamespaceRow
from ..types import Document, NamespaceSpec, Record
from .verify import VerifyReport, backfill_lease, verify_namespace

log = logging.getLogger("vecver")

#: verify-and-reconcile rounds at the end of a backfill before it gives up on ``ready``
FINAL_ROUNDS = 4

#: the orders a backfill copies documents in: ``order`` (the source's), ``hot`` (most read
#: first, then the source's order)
PRIORITIES = ("order", "hot")

#: the artifact kind of a hot phase's snapshot of the read order (name: the namespace)
HOT_ARTIFACT = "backfill-hot-order"

#: documents a hot phase without a budget takes at most (the most read)
HOT_LIMIT = 100_000

#: batches a backfill into an eventually consistent backend keeps written but not yet
#: confirmed visible (nor checkpointed) while it writes the next one; when one more is
#: written, all of them are confirmed and checkpointed together. A run killed meanwhile
#: writes at most ``VISIBILITY_WINDOW + 1`` batches again when resumed.
VISIBILITY_WINDOW = 4


#: whether the copy reads and embeds the next page in a background thread while it writes
#: this one: None (the default) decides per run (:meth:`_BackfillRun._read_ahead`: yes,
#: unless the source is a namespace of an in-process engine, the target is on one too, and
#: the target space's embedder declares ``gil_bound``); True or False forces it. Either way
#: the same batches are written and checkpointed in the same order.
READ_AHEAD: bool | None = None


#: whether a backfill moves the objects alive when its copy starts out of the garbage
#: collector's way for the copy and the final verification (see :func:`frozen_heap`)
FREEZE_HEAP = True


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """For the duration of the block, the objects alive when it starts are kept out of
    the cyclic garbage collector's full collections (``gc.freeze()``; ``gc.unfreeze()``
    at the end, also on an error).

    A backfill allocates its pages' records faster than they die, so the collector runs
    full collections, and each one walks every object of the process: with an in-process
    engine (Qdrant local mode, Milvus Lite) that is the whole database, and those walks
    cost about as much as the rest of vecver's own work per batch. Frozen objects are neither
    walked nor freed: garbage cycles that exist when the block starts are freed after it
    (nothing else changes; objects created inside are collected as usual). Left alone
    when :data:`FREEZE_HEAP` is false, when the collector is disabled, or when the heap is
    frozen already (by the application, or another backfill of this process), so that
    their freeze is never undone here."""
    if not FREEZE_HEAP or not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def check_priority(priority: object) -> str:
    """``priority`` as one of :data:`PRIORITIES` (None: ``order``); ``InvalidArgument``
    otherwise."""
    if priority is None:
        return "order"
    if not isinstance(priority, str) or priority not in PRIORITIES:
        raise InvalidArgument("priority", priority, "'hot' or 'order'")
    return priority


def check_budget(budget_docs: object, priority: str) -> int | None:
    """``budget_docs`` as None or a positive integer, given only with priority ``hot``
    (``InvalidArgument`` / ``InvalidInput`` otherwise)."""
    if budget_docs is None:
        return None
    if isinstance(budget_docs, bool) or not isinstance(budget_docs, int) or budget_docs < 1:
        raise InvalidArgument("budget_docs", budget_docs, "a positive number of documents")
    if priority != "hot":
        raise InvalidInput("a budget of documents needs priority 'hot' (it backfills the N "
                           "most-read documents)", hint="add --priority hot")
    return budget_docs


def check_budget_seconds(budget_seconds: object, priority: str) -> float | None:
    """``budget_seconds`` as None or a positive finite number, given only with priority
    ``hot`` (``InvalidArgument`` / ``InvalidInput`` otherwise)."""
    if budget_seconds is None:
        return None
    if (isinstance(budget_seconds, bool) or not isinstance(budget_seconds, (int, float))
            or not 0 < budget_seconds < float("inf")):
        raise InvalidArgument("budget_seconds", budget_seconds, "a positive number of seconds")
    if priority != "hot":
        raise InvalidInput("a budget of time needs priority 'hot' (it backfills the "
                           "most-read documents first, for that long)",
                           hint="add --priority hot")
    return float(budget_seconds)


@dataclass
class HotReport:
    """The hot-first phase of a backfill (cumulative over resumed runs): ``documents`` in
    its snapshot of the most-read documents (``budget_docs`` at most), ``done`` of them
    handled so far; ``written`` copied, ``skipped`` already current in the space,
    ``absent`` no longer in the collection. ``reads_covered`` is the reads the handled
    documents received out of ``reads_total`` observed when the phase started
    (``traffic_share`` their ratio)."""

    documents: int
    done: int = 0
    written: int = 0
    skipped: int = 0
    absent: int = 0
    reads_covered: int = 0
    reads_total: int = 0
    budget_docs: int | None = None
    finished: bool = False
    version: int | None = None

    @property
    def traffic_share(self) -> float:
        return self.reads_covered / self.reads_total if self.reads_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["traffic_share"] = self.traffic_share
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> HotReport:
        keys = set(HotReport.__dataclass_fields__)
        return HotReport(**{k: v for k, v in d.items() if k in keys})


@dataclass
class BackfillReport:
    """What a backfill did. Counters cover this run only; ``done`` is cumulative.

    ``scanned`` documents read from the source, ``skipped`` of them already present (or
    deleted meanwhile), ``embedded``/``written`` copied; ``removed``: copies deleted again
    right after their batch because the document was deleted meanwhile; ``reconciled``:
    documents re-embedded or deleted so that the space agrees with the active one (after
    a batch that raced with other writers, and in the final verification)."""

    collection: str
    space: str
    namespace: str
    source: str
    resumed: bool = False
    scanned: int = 0
    skipped: int = 0
    embedded: int = 0
    written: int = 0
    removed: int = 0
    reconciled: int = 0
    done: int = 0
    seconds: float = 0.0
    state: str = "building"
    verify: VerifyReport | None = None
    mode: str = "full"
    """``full`` (copy everything, verify), ``hot-budget`` (the hot phase within a budget
    only), ``lazy`` (drained the lazy queue), ``lazy-only`` (a migration started without
    a backfill)."""
    hot: HotReport | None = None
    drain: DrainReport | None = None

    @property
    def rate(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rate"] = self.rate
        d["verify"] = self.verify.to_dict() if self.verify else None
        d["hot"] = self.hot.to_dict() if self.hot else None
        d["drain"] = self.drain.to_dict() if self.drain else None
        return d


def _target(ws: Workspace, collection: str, label: str | None) -> NamespaceRow:
    rows = ws.manifest.namespaces(collection)
    if label is not None:
        for n in rows:
            if n.space_label == label:
                return n
        raise UnknownSpace(label, [n.space_label for n in rows])
    building = [n for n in rows if n.state == "building"]
    if not building:
        failed = [n.space_label for n in rows if n.state == "failed"]
        raise StateError(
            f"collection {collection!r} has no space being built"
            + (f" (failed: {', '.join(failed)})" if failed else ""),
            hint=(f"resume a failed one with `vecver migrate {collection} --to SPACE` once "
                  f"fixed, or abandon it with `vecver abort {collection}`") if failed
            else f"start one with `vecver migrate {collection} --to SPACE`",
        )
    if len(building) > 1:
        raise StateError(
            f"collection {collection!r} has several spaces being built: "
            + ", ".join(n.space_label for n in building),
            hint="name one with --space",
        )
    return building[0]


def backfill(
    ws: Workspace,
    collection: str,
    *,
    space: str | None = None,
    source: Source | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    restart: bool = False,
    on_batch: Callable[[BackfillReport], None] | None = None,
    priority: str | None = None,
    budget_docs: int | None = None,
    budget_seconds: float | None = None,
) -> BackfillReport:
    """Copy every document into the space being built, resumably, then verify it and
    mark it ``ready``.

    ``priority="hot"`` copies the most-read documents first (see the module docstring);
    with ``budget_docs`` only the N most-read ones, with ``budget_seconds`` the most-read
    ones for that long (the batch in flight is finished; a later backfill resumes the hot
    phase where it stopped); with a budget the space stays ``building``.
    ``InvalidArgument`` for an unknown priority or a budget that is not positive,
    ``InvalidInput`` for a budget without priority ``hot``, before anything runs.

    Documents are streamed from ``source`` (default: the active space's stored text) in
    a stable order; documents already present (see
    :func:`~vecver.runtime.reconcile.needs_embedding`) are skipped; the embedding of
    batch n+1 overlaps the write of batch n (in a background thread, where a thread can
    overlap anything: :data:`READ_AHEAD`); a checkpoint is saved after each durable
    batch (on an eventually consistent backend, after each window of batches confirmed
    visible: see the module docstring; ``on_batch`` is called for each batch once it is
    checkpointed). After a crash, calling it again resumes from the checkpoint, and
    re-doing a batch is harmless (writes are idempotent by id), so nothing is lost or
    duplicated.
    Deletes and updates issued meanwhile win: a batch that raced with them is reconciled
    right after its write, and the final verification reconciles what changed during
    the run (in up to ``FINAL_ROUNDS`` rounds, so that it ends ``ready`` under
    continuous writes).

    Raises ``LeaseHeld`` while another live process backfills (or repairs) the same
    space; ``CandidateFailed`` when the space's embedder breaks (the space is marked
    ``failed`` first, and the collection's writes go on without it); ``StateError``
    for a space that is not being built.
    """
    prio = check_priority(priority)
    budget = check_budget(budget_docs, prio)
    seconds = check_budget_seconds(budget_seconds, prio)
    return _backfill(ws, collection, space, _Options(source, batch_size, progress, restart,
                                                     on_batch, priority=prio,
                                                     budget_docs=budget,
                                                     budget_seconds=seconds))


def _backfill(ws: Workspace, collection: str, space: str | None,
              opts: _Options) -> BackfillReport:
    ws.manifest.require_collection(collection)
    target = _target(ws, collection, space)
    rep = BackfillReport(collection, target.space_label, target.name, "")
    if target.state == "ready":
        # nothing to build; but what a killed writer left half-done is settled first
        ws.recover(collection)
        rep.state = "ready"
        rep.verify = verify_namespace(ws, collection, target)
        return rep
    if target.state == "failed":
        raise StateError(
            f"space {target.space_label!r} of {collection!r} failed"
            + (f": {target.reason}" if target.reason else ""),
            hint=f"resume it with `vecver migrate {collection} --to {target.space_label}` "
            f"once fixed, or abandon it with `vecver abort {collection} --space "
            f"{target.space_label}`",
        )
    if target.state != "building":
        raise StateError(f"space {target.space_label!r} is {target.state}, not building")
    lease = backfill_lease(target)
    holder = ws.manifest.acquire_lease(lease)
    if holder is not None:
        raise LeaseHeld(f"the backfill of {target.space_label!r} in {collection!r}", holder)
    try:
        return _BackfillRun(ws, collection, target, rep, lease, opts).run()
    finally:
        ws.manifest.release_lease(lease)


# -- the pipeline --------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """What the caller of :func:`backfill` asked for."""

    source: Source | None
    batch_size: int | None
    progress: bool | None
    restart: bool
    on_batch: Callable[[BackfillReport], None] | None
    source_checked: bool = False  # migrate validated it already
    priority: str = "order"
    budget_docs: int | None = None
    budget_seconds: float | None = None

    @property
    def budgeted(self) -> bool:
        return self.budget_docs is not None or self.budget_seconds is not None


@dataclass
class _Batch:
    """One page of the source, embedded where needed, ready to write."""

    records: list[Record]
    cursor: str | None  # resumes right after this page
    scanned: int
    skipped: int
    epoch: tuple[int, int]  # the collection's write epoch when the page was read


class _BackfillRun:
    """One backfill of ``target`` (its lease held by the caller): open, copy, finish."""

    def __init__(self, ws: Workspace, collection: str, target: NamespaceRow,
                 rep: BackfillReport, lease: str, opts: _Options) -> None:
        self.ws = ws
        self.collection = collection
        self.target = target
        self.rep = rep
        self.lease = lease
        self.opts = opts
        self.batch = opts.batch_size or ws.config.batch_size
        self.cursor: str | None = None
        self.src: Source
        self.from_active = False
        self.hot: HotReport | None = None
        # batches written whose visibility is not confirmed yet (not checkpointed)
        self._unconfirmed: list[tuple[_Batch, list[PendingWrite]]] = []

    def run(self) -> BackfillReport:
        t0 = time.perf_counter()
        self._open()
        if self.hot is not None and not self.hot.finished:
            self._hot_phase()
        if self.opts.budgeted:
            # the budget was spent on the hot phase: the rest is for a later backfill
            self.rep.mode = "hot-budget"
            self.rep.seconds = time.perf_counter() - t0
            return self.rep
        with frozen_heap():
            self._copy()
            self._finish(t0)
        return self.rep

    def _stats(self) -> dict[str, Any]:
        """What the checkpoint records besides the cursor (the hot phase's position)."""
        out: dict[str, Any] = {"written": self.rep.written, "skipped": self.rep.skipped}
        if self.hot is not None:
            out["hot"] = asdict(self.hot)
        return out

    # -- hot: the most-read documents first

    def _start_hot(self) -> None:
        """Snapshot the read order (most read first) as an artifact, and record in the
        checkpoint that the hot phase starts (position 0)."""
        ws, target, collection = self.ws, self.target, self.collection
        limit = self.opts.budget_docs or HOT_LIMIT
        order = ws.manifest.read_counts(collection, limit=limit)
        _, total = ws.manifest.read_totals(collection)
        art = ws.manifest.put_artifact(
            HOT_ARTIFACT, collection, target.name,
            json.dumps([[i, int(n)] for i, n in order]).encode("utf-8"),
            {"documents": len(order), "reads_total": int(total)}, keep=2,
        )
        self.hot = HotReport(documents=len(order), reads_total=int(total),
                             budget_docs=self.opts.budget_docs, version=art.version)
        self.rep.hot = self.hot
        self._save(self.cursor)

    def _hot_order(self) -> list[tuple[str, int]]:
        hot = self.hot
        assert hot is not None
        art = self.ws.manifest.artifact(HOT_ARTIFACT, self.collection, self.target.name,
                                        hot.version)
        if art is None:
            raise StateError(
                f"the hot-first order of the backfill of {self.target.space_label!r} "
                f"(version {hot.version}) is gone from the manifest",
                hint="restart the backfill (--restart)",
            )
        return [(str(i), int(n)) for i, n in json.loads(art.data.decode("utf-8"))]

    def _hot_phase(self) -> None:
        """Copy the snapshot's documents from the active space, most read first, in
        batches; each batch is checkpointed (its position in the snapshot)."""
        ws, target, collection, hot = self.ws, self.target, self.collection, self.hot
        assert hot is not None
        order = self._hot_order()
        bar = Progress(
            f"backfill {collection} -> {target.space_label} (most read first)", len(order),
            enabled=(self.opts.progress if self.opts.progress is not None else ws.progress),
        )
        bar.done = hot.done
        be = ws.backend_for(target)
        t0 = time.perf_counter()
        try:
            while hot.done < len(order):
                chunk = order[hot.done: hot.done + self.batch]
                epoch = ws.manifest.write_epoch(collection)
                ids = [i for i, _ in chunk]
                dead = ws.manifest.tombstoned(collection, ids)
                active_name = ws.manifest.active_namespace(collection)
                truth = {k: v for k, v in ws.backend_for(active_name).fetch(
                    active_name, [i for i in ids if i not in dead]).items() if v.text}
                have = (be.fetch(target.name, list(truth), with_text=False)
                        if truth else {})
                todo = [Document(r.id, r.text or "", r.metadata) for r in truth.values()
                        if needs_embedding(have.get(r.id), r, target)]
                recs, rest = from_stored(ws, collection, target, todo)  # derived spaces
                recs += embed_or_fail(ws, collection, target, rest) if rest else []
                if recs:
                    write_records(ws, target, recs)
                    last_id, was_open = epoch
                    if was_open or ws.manifest.write_epoch(collection)[0] != last_id:
                        self._reconcile_batch(recs)
                hot.written += len(recs)
                hot.skipped += len(truth) - len(recs)
                hot.absent += len(ids) - len(truth)
                hot.reads_covered += sum(n for i, n in chunk if i in truth)
                hot.done += len(chunk)
                self.rep.embedded += len(recs)
                self.rep.written += len(recs)
                hot.finished = hot.done >= len(order)
                self._save(self.cursor)
                bar.update(len(chunk))
                if self.opts.on_batch is not None:
                    self.opts.on_batch(self.rep)
                if (self.opts.budget_seconds is not None
                        and time.perf_counter() - t0 >= self.opts.budget_seconds):
                    break  # out of time: the next backfill resumes from here
            if not hot.finished and hot.done >= len(order):
                hot.finished = True
                self._save(self.cursor)
        finally:
            bar.close()
        ws.manifest.log("backfill.hot", collection, space=target.space_label,
                        documents=hot.documents, written=hot.written,
                        reads_covered=hot.reads_covered, reads_total=hot.reads_total)

    def _save(self, cursor: str | None) -> None:
        self.ws.manifest.save_checkpoint(
            self.target.name, self.src.name, cursor, self.rep.done, self._stats(),
            lease=self.lease,
        )

    # -- open: recover, source, resume point

    def _open(self) -> None:
        ws, target, opts = self.ws, self.target, self.opts
        ws.recover(self.collection)
        active_name = ws.manifest.active_namespace(self.collection)
        self.src = opts.source or NamespaceSource(ws.backend_for(active_name), active_name)
        self.from_active = (isinstance(self.src, NamespaceSource)
                            and self.src.namespace == active_name)
        self.rep.source = self.src.name
        validate_source = getattr(self.src, "validate", None)
        if callable(validate_source) and not opts.source_checked:
            # a malformed file fails before anything from it is written (and before a
            # checkpoint points into it)
            validate_source()
        emb = ws.embedder(target.space_label)
        if emb.space.fingerprint != target.fingerprint:
            raise StateError(
                f"space {target.space_label!r} now resolves to fingerprint {emb.space.short}, "
                f"but its namespace holds {target.fingerprint[:12]}",
            )
        ckpt = ws.manifest.checkpoint(target.name)
        if ckpt is not None and not opts.restart:
            if ckpt.source == self.src.name:
                self.cursor, self.rep.done = ckpt.cursor, ckpt.done
                self.rep.resumed = True
                if isinstance(ckpt.stats.get("hot"), dict):
                    self.hot = HotReport.from_dict(ckpt.stats["hot"])
                    self.rep.hot = self.hot
            elif opts.source is None and ckpt.source.startswith("namespace:"):
                # started from the then active space; a cutover or rollback since changed
                # the default source, whose scan order the old cursor does not belong to:
                # start over from the new one (what is present is skipped, not re-embedded)
                log.info("the active space of %s changed since the backfill of %s started "
                         "from %s; starting over from %s", self.collection,
                         target.space_label, ckpt.source, self.src.name)
            else:
                raise StateError(
                    f"the backfill of {target.space_label!r} was started from {ckpt.source}, "
                    f"not {self.src.name}",
                    hint="resume with the same source, or restart it (--restart)",
                )
        if opts.priority == "hot" and (
            self.hot is None or (self.hot.finished and opts.budgeted)
        ):
            # a new snapshot of the read order; a hot phase killed midway is resumed as
            # it was, and one that finished is done (unless a budget asks again)
            self._start_hot()

    # -- copy: the producer (background thread) and the consumer (this thread)

    def _copy(self) -> None:
        enabled = self.opts.progress if self.opts.progress is not None else self.ws.progress
        bar = Progress(
            f"backfill {self.collection} -> {self.target.space_label}",
            # the estimate is a count (a scan on some databases): only for a bar shown
            self.src.estimate() if enabled is not False else None,
            enabled=enabled,
        )
        bar.done = self.rep.done
        try:
            with ReadAhead(self._batches, name="backfill-embed",
                           background=self._read_ahead()) as batches:
                for batch in batches:
                    self._durable(bar, self._write(batch))
                self._durable(bar, self._settle())
        finally:
            self._unconfirmed = []  # after a failure: not checkpointed, written again on resume
            bar.close()

    def _read_ahead(self) -> bool:
        """Whether the next page is read and embedded in a background thread while this
        one is written (:data:`READ_AHEAD` forces it either way).

        A thread overlaps work only where some step waits without holding the interpreter
        lock: a read or write that is a round trip to a server (``remote_reads``), a
        source other than a namespace (a file, the caller's iterable: its reads may wait
        on a disk or a database), an embedder computing in native code or waiting on a
        service. Where none does (an in-process engine such as Qdrant's local mode on
        both sides, and an embedder declaring ``gil_bound``), the two threads take turns
        on the lock, and the hand-overs only cost: the pages are then read, embedded and
        written in turn, in this thread. An embedder that declares nothing keeps the
        thread."""
        if READ_AHEAD is not None:
            return READ_AHEAD
        src = self.src
        if not isinstance(src, NamespaceSource) or src.backend.capabilities.remote_reads:
            return True
        if self.ws.backend_for(self.target).capabilities.remote_reads:
            return True
        model = self.ws.embedder(self.target.space_label).embedder
        return not bool(getattr(model, "gil_bound", False))

    def _durable(self, bar: Progress, batches: list[_Batch]) -> None:
        """Report batches just made durable and checkpointed (progress, ``on_batch``)."""
        for batch in batches:
            bar.update(batch.scanned)
            if self.opts.on_batch is not None:
                self.opts.on_batch(self.rep)

    def _batches(self) -> Iterator[_Batch]:
        """Pages of the source, each embedded where the target's copy needs it."""
        ws, collection, target = self.ws, self.collection, self.target
        if is_end(self.cursor):
            return
        be = ws.backend_for(target)
        epoch = ws.manifest.write_epoch(collection)
        # What the target holds is fetched only to skip documents copied already (a
        # resumed run, a hot phase, dual-writes, lazy re-embeds). A run that starts from
        # the beginning with the target empty and no write open holds only its own
        # earlier pages (other ids) for as long as no write is issued: those pages skip
        # the fetch. It only saves work: correctness against concurrent writes is the
        # race check's (``_raced``), which does not depend on it.
        empty_at: tuple[int, int] | None = None
        if (self.cursor is None and epoch[1] == 0
                and not be.scan(target.name, limit=1, with_text=False).records):
            empty_at = epoch
        for docs, nxt in self.src.pages(self.cursor, self.batch):
            scanned = len(docs)
            if not self.from_active and docs:
                dead = ws.manifest.tombstoned(collection, [d.id for d in docs])
                docs = [d for d in docs if d.id not in dead]
            if empty_at is not None and epoch != empty_at:
                empty_at = None  # a write was issued: from now on, ask the target
            have = (be.fetch(target.name, [d.id for d in docs], with_text=False)
                    if docs and empty_at is None else {})  # fmt: skip
            todo = [d for d in docs if needs_embedding(have.get(d.id), d, target)]
            recs, rest = from_stored(ws, collection, target, todo)  # derived spaces
            recs += embed_or_fail(ws, collection, target, rest) if rest else []
            yield _Batch(recs, nxt, scanned, scanned - len(todo), epoch)
            epoch = ws.manifest.write_epoch(collection)  # before the next page is read

    def _write(self, batch: _Batch) -> list[_Batch]:
        """Write ``batch``; return the batches made durable and checkpointed by this call
        (oldest first; none while the batch waits in the visibility window).

        On a strongly consistent backend each batch is confirmed when its write returns,
        and checkpointed at once. On an eventual one the write is sent without waiting for
        its visibility (:meth:`~vecver.backends.base.Backend.upsert_deferred`); up to
        :data:`VISIBILITY_WINDOW` batches wait unconfirmed while the next ones are
        written, then all of them are confirmed, oldest first, and one checkpoint is saved
        past the newest (:meth:`_settle`). So the checkpoint only ever points past
        batches whose visibility was confirmed: a run killed with batches in the window
        resumes before them and writes them again (idempotent by id)."""
        writes: list[PendingWrite] = []
        if batch.records:
            writes = send_records(self.ws, self.target, batch.records)
            observe_written(self.ws, self.collection, self.target, batch.records)
            if self._raced(batch.epoch):
                # reconciling reads what this batch wrote: only once it is visible
                self._confirm(batch, writes)
                self._reconcile_batch(batch.records)
        self._unconfirmed.append((batch, writes))
        if len(self._unconfirmed) > VISIBILITY_WINDOW or all(w.confirmed for w in writes):
            return self._settle()
        return []

    def _confirm(self, batch: _Batch, writes: list[PendingWrite]) -> bool:
        """Wait until the writes of ``batch`` are visible. When that fails (the wait timed
        out, or a probe failed), the batch is written again the synchronous way, with
        its retries (``write_records``), and True is returned: the caller checks it for
        races once more (a write that raced with the rewrite would lose otherwise)."""
        try:
            for w in writes:
                w.confirm()
            return False
        except TransientBackendError as e:
            log.info("the writes of a backfill batch into %s were not confirmed (%s); "
                     "writing it again", self.target.name, e)
            write_records(self.ws, self.target, batch.records)
            writes.clear()  # visible now: nothing left to confirm
            return True

    def _settle(self) -> list[_Batch]:
        """Confirm every batch in the visibility window (oldest first), count them, and
        checkpoint past the newest. Returns them."""
        window, self._unconfirmed = self._unconfirmed, []
        if not window:
            return []
        for batch, writes in window:
            if self._confirm(batch, writes) and self._raced(batch.epoch):
                self._reconcile_batch(batch.records)
        rep = self.rep
        for batch, _ in window:
            rep.scanned += batch.scanned
            rep.skipped += batch.skipped
            rep.embedded += len(batch.records)
            rep.written += len(batch.records)
            rep.done += batch.scanned
        self._save(window[-1][0].cursor)
        return [b for b, _ in window]

    def _raced(self, epoch: tuple[int, int]) -> bool:
        """Whether a batch read at ``epoch`` may have raced with a write. Copied from the
        active space itself, only a write issued through vecver since (or still open
        when) the page was read can have; with none, the check is moot. Another source may
        simply be outdated, so it is always checked against the active space."""
        last_id, was_open = epoch
        return (not self.from_active or bool(was_open)
                or self.ws.manifest.write_epoch(self.collection)[0] != last_id)

    def _reconcile_batch(self, records: list[Record]) -> None:
        """Make the batch just written lose against concurrent deletes and updates.

        A delete records its tombstone before deleting anywhere, and an update writes the
        active space before the others; so re-reading both *after* our write catches
        every change our write could have overwritten (:func:`reconcile`, told what we
        wrote). The active space is the truth for an external source too (an outdated
        export loses against it), so the space being built never holds a deleted document
        or a stale text, even between batches."""
        dead = self.ws.manifest.tombstoned(self.collection, [r.id for r in records])
        if dead:
            delete_ids(self.ws, self.target, sorted(dead))
            self.rep.removed += len(dead)
        written = {r.id: r for r in records if r.id not in dead}
        self.rep.reconciled += reconcile(self.ws, self.collection, self.target,
                                         list(written), written=written)

    # -- finish: reconcile, verify, ready

    def _finish(self, t0: float) -> None:
        """What dual-writes, crashes or races left behind is reconciled from the truth.
        The active space is the truth for an external source too: a copy from the source
        that differs from it (an outdated export, or one overwriting a concurrent update)
        is stale, however recently it was written. Writes go on meanwhile, so each round
        verifies the whole space and reconciles what it finds (writes still in flight are
        not counted, see ``verify_namespace``); the space is ready when a round finds
        nothing."""
        ws, rep, target = self.ws, self.rep, self.target
        phase(f"verify {self.collection} -> {target.space_label}",
              enabled=self.opts.progress if self.opts.progress is not None else ws.progress)
        check: VerifyReport | None = None
        for _ in range(FINAL_ROUNDS):
            check = verify_namespace(ws, self.collection, target, repair=True)
            rep.reconciled += check.repaired
            if check.clean:
                break
        assert check is not None
        rep.verify = check
        ws.manifest.save_checkpoint(
            target.name, self.src.name, "\x00end", rep.done, self._stats(),
            finished=check.clean, lease=self.lease,
        )
        rep.seconds = time.perf_counter() - t0
        if check.clean:
            ws.manifest.set_state(target.name, "ready", expect=["building"])
            rep.state = "ready"
            ws.manifest.log("backfill.finished", self.collection, space=target.space_label,
                            scanned=rep.scanned, written=rep.written, seconds=rep.seconds)


def _resume_failed(ws: Workspace, collection: str, row: NamespaceRow,
                   space: Space) -> NamespaceRow:
    """failed -> building: the namespace (kept) is made sure to exist, dual-write is on
    again, and what it holds is reconciled (documents updated or deleted while it was
    failed); the backfill resumes from its checkpoint, and its final verification adds
    what was inserted meanwhile. Raises ``CandidateFailed`` when the model still breaks
    (the space is failed again)."""
    resumed, moved = _to_building(ws, collection, row, space, "failed", "migration.resumed")
    if moved:
        reconcile_present(ws, collection, resumed)
    return resumed


def start_migration(
    ws: Workspace, collection: str, to: str, *, on: str | None = None
) -> NamespaceRow:
    """Create the namespace of space ``to`` and turn dual-write on (state ``building``).

    ``on`` names the backend instance the new namespace is placed on (default: the
    instance of the active space). Idempotent: returns the existing namespace when the
    migration was already started (on the same instance). Raises
    ``UnknownBackendInstance`` for an instance the config does not declare, a
    ``StateError`` when the migration was started on another instance, and
    ``InvalidNamespaceName`` when the instance's naming rule rejects the namespace, each
    before anything is created."""
    coll = ws.collection(collection)
    active = coll.route("active")
    instance = on or active.backend
    be = ws.instance(instance)
    space = ws.space(to)
    row = ws.manifest.namespace_for(collection, to)
    if row is not None:
        if on is not None and row.backend != on and row.state in ("planned", "building",
                                                                    "ready"):
            raise StateError(
                f"the migration of {collection!r} to {to!r} was started on backend instance "
                f"{row.backend!r}, not {on!r}",
                hint=f"resume it without --on, or abandon it with `vecver abort {collection}"
                f" --space {to}` and start again",
            )
        if row.state in ("building", "ready"):
            return row
        if row.state == "planned":
            return _build(ws, collection, row, space, active.space_label)
        if row.state == "failed":
            return _resume_failed(ws, collection, row, space)
        if row.state == "dropped":
            # an abandoned migration (`vecver abort`), started again from scratch
            if space.fingerprint == active.fingerprint:
                raise StateError(
                    f"space {to!r} has the same fingerprint as the active space "
                    f"{active.space_label!r}: the geometry is identical, nothing to migrate",
                )
            ws.manifest.replan_namespace(collection, to, space.fingerprint,
                                         ws.namespace_name(collection, space, be),
                                         backend=instance)
            row = ws.manifest.namespace_for(collection, to)
            assert row is not None
            return _build(ws, collection, row, space, active.space_label)
        if row.state == "active":
            raise StateError(f"space {to!r} is already the active space of {collection!r}")
        if row.state == "retired":
            raise StateError(
                f"space {to!r} is the retired space of {collection!r}",
                hint=f"go back to it with `vecver rollback {collection}`",
            )
        raise StateError(f"space {to!r} of {collection!r} is {row.state}")
    if space.fingerprint == active.fingerprint:
        raise StateError(
            f"space {to!r} has the same fingerprint as the active space "
            f"{active.space_label!r}: the geometry is identical, nothing to migrate",
        )
    ns = ws.namespace_name(collection, space, be)
    # recorded (planned) before the backend namespace exists, so that a crash never
    # leaves a namespace the manifest does not know; the next call picks it up
    # (AlreadyRecorded: another thread or process started it since we looked)
    with contextlib.suppress(AlreadyRecorded):
        ws.manifest.add_namespace(collection, to, space.fingerprint, ns, "planned",
                                  backend=instance)
    row = ws.manifest.namespace_for(collection, to)
    assert row is not None
    if row.state != "planned":
        return row
    return _build(ws, collection, row, space, active.space_label)


def _build(
    ws: Workspace, collection: str, row: NamespaceRow, space: Space, from_label: str
) -> NamespaceRow:
    """planned -> building: create the backend namespace (idempotent), turn dual-write on."""
    built, _ = _to_building(ws, collection, row, space, "planned", "migration.started",
                            from_space=from_label, backend=row.backend)
    return built


def _to_building(
    ws: Workspace, collection: str, row: NamespaceRow, space: Space, from_state: str,
    event: str, **detail: Any,
) -> tuple[NamespaceRow, bool]:
    """``from_state`` -> building: make sure the backend namespace exists (idempotent),
    then move the row and log ``event``. Returns the row and whether this call moved it
    (False: a concurrent caller moved it to building or ready first)."""
    ws.backend_for(row).create_namespace(
        NamespaceSpec(row.name, space.spec.dimension, space.spec.metric, space.fingerprint)
    )
    try:
        ws.manifest.set_state(row.name, "building", expect=[from_state])
    except StateError:
        now = ws.manifest.namespace(row.name)
        if now is None or now.state not in ("building", "ready"):
            raise
        return now, False
    ws.manifest.log(event, collection, space=row.space_label, namespace=row.name, **detail)
    moved = ws.manifest.namespace(row.name)
    assert moved is not None
    return moved, True


def migrate(
    ws: Workspace,
    collection: str,
    to: str,
    *,
    source: Source | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    on_batch: Callable[[BackfillReport], None] | None = None,
    on: str | None = None,
    priority: str | None = None,
    budget_docs: int | None = None,
    no_backfill: bool = False,
    budget_seconds: float | None = None,
) -> BackfillReport:
    """Start (or resume) the migration of ``collection`` to space ``to``: create its
    namespace (on backend instance ``on``, default: the active space's instance), turn
    dual-write on, backfill, verify; the space ends ``ready``. See
    :func:`start_migration` for what is refused. A source with a ``validate`` method (a
    JSONL file) is checked whole first: a malformed one is refused (``SourceError``)
    before anything is created. A migration that ``failed`` is resumed. Raises
    ``CandidateFailed`` when the new space's model breaks (the space is marked
    ``failed``; production writes go on), and what :func:`backfill` raises.

    ``priority``, ``budget_docs`` and ``budget_seconds``: as for :func:`backfill`.
    ``no_backfill`` starts a lazy-only migration: dual-write is on, nothing is copied
    (the space stays
    ``building``; documents move as reads find them, see :mod:`vecver.read.lazy`); it
    takes no source, priority or budget (``InvalidInput``, before anything is created)."""
    prio = check_priority(priority)
    budget = check_budget(budget_docs, prio)
    seconds = check_budget_seconds(budget_seconds, prio)
    if no_backfill and (source is not None or priority is not None or budget is not None
                        or seconds is not None):
        raise InvalidInput(
            "a migration without a backfill takes no source, priority or budget",
            hint="drop --no-backfill, or the other options (a later `vecver backfill` "
            "takes them)",
        )
    validate_source = getattr(source, "validate", None)
    if callable(validate_source):
        validate_source()  # a malformed source is refused before anything is created
    row = start_migration(ws, collection, to, on=on)
    if no_backfill:
        ws.manifest.log("migration.lazy", collection, space=row.space_label,
                        namespace=row.name)
        ck = ws.manifest.checkpoint(row.name)
        return BackfillReport(collection, row.space_label, row.name, "", state=row.state,
                              mode="lazy-only", done=ck.done if ck else 0)
    return _backfill(ws, collection, to, _Options(source, batch_size, progress, False,
                                                  on_batch, source_checked=True,
                                                  priority=prio, budget_docs=budget,
                                                  budget_seconds=seconds))


def lazy_backfill(
    ws: Workspace,
    collection: str,
    *,
    space: str | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> BackfillReport:
    """Drain the lazy re-embedding queue of ``collection`` (:func:`vecver.read.lazy.drain`):
    the documents reads found missing or stale in the space being built are re-embedded
    there. Nothing queued is fine (a report of zeros). The space stays ``building``
    (a plain :func:`backfill` completes and verifies it). ``space`` only checks that it
    is the space being built (``UnknownSpace``, ``StateError``)."""
    ws.manifest.require_collection(collection)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, int) or batch_size < 1):
        raise InvalidArgument("batch_size", batch_size, "a positive integer")
    row: NamespaceRow | None = None
    if space is not None:
        row = _target(ws, collection, space)
        if row.state != "building":
            raise StateError(f"space {space!r} of {collection!r} is {row.state}, not building")
    else:
        building = [n for n in ws.manifest.namespaces(collection) if n.state == "building"]
        row = building[0] if len(building) == 1 else None
    d = drain(ws, collection, batch=batch_size, progress=progress)
    label = row.space_label if row else (", ".join(d.spaces) or "-")
    now = ws.manifest.namespace(row.name) if row else None
    return BackfillReport(
        collection, label, row.name if row else "", "lazy queue", scanned=d.claimed,
        skipped=d.current + d.obsolete, embedded=d.reembedded, written=d.reembedded,
        seconds=d.seconds, state=now.state if now else "-", mode="lazy", drain=d,
    )
