"""Lazy on-read re-embedding, read counting for hot-first backfill, and the drainer.

While a collection has a space being built, a read that returns documents missing from
it, or stale there (their copy was embedded from another text than the active space
holds), puts their ids into the manifest's durable work queue, to be re-embedded into the
building space by a drainer (``vecver backfill COLLECTION --lazy``, or a
:class:`LazyWorker` thread in a long-lived service).

The queue
    One kind of work per collection, :func:`queue_kind` (``reembed:COLLECTION``); one item
    per document and target namespace, deduplicated by :func:`dedup_key` (an id already
    waiting is not queued twice); the payload names the collection, the target namespace
    and space, and the document id. At most ``[lazy] max_queue`` items wait per
    collection: what does not fit is dropped and counted (``lazy|dropped``): the read
    never fails for it, and a later ``vecver backfill`` still copies the document.

What a read notices
    The documents it returns (``[lazy] notice = "served"``, the default), plus those the
    searcher reports missing (``event.missing``: ``rerank``'s candidates without a vector
    in the building space); ``notice = "candidates"`` takes every candidate each executed
    leg listed (``dual`` asks each space for more than k: those too), which moves more
    documents per read.

Asynchronous (the default)
    The read thread only notes the ids and the source hashes of the hits (a dictionary
    update under a lock; bounded: see :data:`MAX_NOTED`). A background thread
    (:class:`~vecver.read.metrics.Flusher`, every ``[lazy] flush_interval`` seconds)
    checks them against the building space (one ``fetch`` per collection and flush) and
    queues the missing and stale ones, and adds the read counts to the store in one
    transaction. Durable once flushed: a reader killed before its flush loses only those
    notices (the documents are still copied by the backfill), never a queued id.

Synchronous (``search(..., lazy="sync")``)
    Before the search returns, the missing or stale documents (at most ``[lazy]
    sync_limit`` per call; the rest are queued at once, durably) are re-embedded and
    written into the building space by the normal reconcile path
    (:func:`vecver.runtime.reconcile.reconcile`: the active space's text, tombstones
    respected, safe against concurrent writers); the observer then sets
    ``event.changed`` so that the searcher serves from the space just written. A failure
    of the write does not fail the read: those ids are queued instead.

The drainer
    :func:`drain` claims items with a lease (``[lazy] lease_ttl``), re-embeds them through
    :func:`~vecver.runtime.reconcile.reconcile` and completes them. A drainer killed
    mid-batch leaves its claims leased; they are handed out again once the lease expires,
    so a queued id is never lost (and re-doing one is harmless: writes are idempotent by
    id, and a current copy is not re-embedded). Items whose target space is no longer
    being built (cut over, aborted, failed) are completed without work.

Read counts
    Every served hit counts one read of its document (``record_reads``, batched with the
    rest; ``[lazy] read_weight = "rank"`` weighs a hit at rank r ``ceil(10 / r)``), which
    ``backfill --priority hot`` uses to copy the most-read documents first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import CandidateFailed, InvalidArgument, ManifestError, QueueFull, VecverError
from ..runtime.progress import Progress
from ..runtime.reconcile import reconcile
from .metrics import Flusher, FlushStore, MetricsObserver, bump, lazy_key, warn_unrecorded

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace
    from ..store.base import ManifestStore, NamespaceRow, WorkItem

log = logging.getLogger("vecver")

#: the work-queue kind of the lazy re-embedding of a collection is this prefix + its name
KIND_PREFIX = "reembed:"

#: ids one observer notes per collection between two flushes at most (what is beyond is
#: counted as dropped: the backfill still covers those documents)
MAX_NOTED = 50_000

#: with ``[lazy] read_weight = "rank"``, a hit at rank r counts ceil(this / r) reads
RANK_WEIGHT_TOP = 10

#: a target space's state in which lazy re-embedding writes to it
TARGET_STATES = ("building",)


def queue_kind(collection: str) -> str:
    """The work-queue kind holding the lazy re-embedding of ``collection``."""
    return KIND_PREFIX + collection


def dedup_key(collection: str, namespace: str, doc_id: str) -> str:
    """The deduplication key of one document's re-embedding into ``namespace``."""
    return json.dumps([collection, namespace, doc_id], ensure_ascii=False)


def targets(ws: Workspace, collection: str,
            store: ManifestStore | None = None) -> list[NamespaceRow]:
    """The namespaces of ``collection`` that lazy re-embedding writes to: those being
    built (read from ``store``, default the workspace's)."""
    return [n for n in (store or ws.manifest).namespaces(collection)
            if n.state in TARGET_STATES]


def _stale_or_missing(ws: Workspace, target: NamespaceRow,
                      seen: Mapping[str, str | None]) -> list[str]:
    """The ids of ``seen`` (id -> source hash of the active space's copy, None: unknown)
    that ``target`` lacks, holds under another fingerprint, or holds embedded from another
    text."""
    if not seen:
        return []
    have = ws.backend_for(target).fetch(target.name, list(seen))
    out = []
    for doc_id, want in seen.items():
        rec = have.get(doc_id)
        if (rec is None or rec.stamp.fingerprint != target.fingerprint
                or (want is not None and rec.stamp.source_hash != want)):
            out.append(doc_id)
    return out


@dataclass
class EnqueueResult:
    """What one :func:`enqueue` call did with the ids it was given."""

    enqueued: int = 0
    deduplicated: int = 0
    dropped: int = 0


def enqueue(ws: Workspace, collection: str, target: NamespaceRow, ids: Iterable[str],
            *, limit: int | None = None, store: ManifestStore | None = None) -> EnqueueResult:
    """Queue the re-embedding of ``ids`` into ``target`` (durable when it returns),
    deduplicated, keeping the collection's queue at ``limit`` items at most (default
    ``[lazy] max_queue``): what does not fit is dropped and counted, never raised. Counts
    go to the collection's counters. Raises ``ManifestReadOnly`` (and other manifest
    errors) when the store cannot be written. ``store``: where (default: the workspace's
    store)."""
    m = store or ws.manifest
    kind = queue_kind(collection)
    cap = ws.config.lazy.max_queue if limit is None else limit
    q = m.queue_stats(kind)
    room = max(0, cap - (q.pending + q.leased))
    res = EnqueueResult()
    # one transaction for the whole batch where the store has them (SQLite: nested
    # calls join the outer one), instead of one commit per document
    batch = getattr(m, "transaction", None)
    with batch() if callable(batch) else contextlib.nullcontext():
        _enqueue_each(m, kind, collection, target, ids, room, res)
    bump(ws, collection, {lazy_key("enqueued"): res.enqueued,
                          lazy_key("deduplicated"): res.deduplicated,
                          lazy_key("dropped"): res.dropped}, m)
    return res


def _enqueue_each(m: ManifestStore, kind: str, collection: str, target: NamespaceRow,
                  ids: Iterable[str], room: int, res: EnqueueResult) -> None:
    for doc_id in dict.fromkeys(ids):
        if room <= 0:
            res.dropped += 1
            continue
        payload = {"collection": collection, "namespace": target.name,
                   "space": target.space_label, "id": doc_id}
        try:
            got = m.enqueue(kind, payload,
                                      dedup_key=dedup_key(collection, target.name, doc_id))
        except QueueFull:
            room = 0
            res.dropped += 1
            continue
        if got is None:
            res.deduplicated += 1
        else:
            res.enqueued += 1
            room -= 1


# ----------------------------------------------------------------------------- observer


def _seen_ids(event: Any, deep: bool = False) -> dict[str, dict[str, str | None]]:
    """From a search event: namespace that served -> {id: source hash of that copy}, over
    the served results, or with ``deep`` over every executed leg's own (deeper) lists."""
    out: dict[str, dict[str, str | None]] = defaultdict(dict)
    legs = (getattr(event, "legs", None) or ()) if deep else ()
    lists: list[list[Any]] = []
    for leg in legs:
        lists.extend(leg.results)
    if not legs:
        lists = list(event.results)
    for hits in lists:
        for h in hits:
            if h.namespace is None:
                continue
            out[h.namespace][h.id] = h.stamp.source_hash if h.stamp is not None else None
    return out


class LazyObserver:
    """The read observer of lazy re-embedding and read counting (module docstring).
    Thread-safe; one per workspace (:func:`install`)."""

    def __init__(self, ws: Workspace, flusher: Flusher) -> None:
        self.ws = ws
        self.settings = ws.config.lazy
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        # collection -> {namespace served -> {id: source hash}}
        self._noted: dict[str, dict[str, dict[str, str | None]]] = {}
        # collection -> {namespace -> ids} the searcher found missing there
        self._missing: dict[str, dict[str, set[str]]] = {}
        self._reads: dict[str, Counter[str]] = {}
        self._dropped: Counter[str] = Counter()
        self._flusher = flusher
        flusher.add(self.flush)

    # -- the read thread

    def on_search(self, event: Any) -> None:
        collection: str = event.collection
        reads: Counter[str] = Counter()
        if self.settings.read_weight == "rank":
            for hits in event.results:
                for rank, h in enumerate(hits, 1):
                    reads[h.id] += -(-RANK_WEIGHT_TOP // rank)
        else:
            reads.update(h.id for hits in event.results for h in hits)
        seen = _seen_ids(event, self.settings.notice == "candidates")
        missing: Mapping[str, Sequence[str]] = getattr(event, "missing", None) or {}
        if getattr(event, "sync", False):
            self._sync(event, seen, missing)
        with self._lock:
            self._reads.setdefault(collection, Counter()).update(reads)
            noted = self._noted.setdefault(collection, {})
            size = sum(len(v) for v in noted.values())
            for ns, ids in seen.items():
                into = noted.setdefault(ns, {})
                for doc_id, h in ids.items():
                    if doc_id in into or size < MAX_NOTED:
                        size += doc_id not in into
                        into[doc_id] = h
                    else:
                        self._dropped[collection] += 1
            if missing:
                mm = self._missing.setdefault(collection, {})
                for ns, gone in missing.items():
                    mm.setdefault(ns, set()).update(gone)
        self._flusher.wake()

    def _sync(self, event: Any, seen: Mapping[str, Mapping[str, str | None]],
              missing: Mapping[str, Sequence[str]]) -> None:
        """Re-embed what this read found missing or stale before it returns (at most
        ``sync_limit`` documents; the rest are queued now)."""
        ws, collection = self.ws, event.collection
        wrote = 0
        for target in targets(ws, collection):
            todo = _stale_or_missing(ws, target, _truth_hashes(ws, collection, target, seen,
                                                               missing))
            if not todo:
                continue
            now, later = todo[: self.settings.sync_limit], todo[self.settings.sync_limit:]
            if now:
                try:
                    fixed = reconcile(ws, collection, target, now)
                except CandidateFailed as e:
                    log.warning("vecver: lazy re-embedding into %s stopped: %s",
                                target.space_label, e)
                    continue
                except VecverError as e:
                    log.warning("vecver: lazy re-embedding of %d documents into %s failed "
                                "(%s); they are queued instead", len(now),
                                target.space_label, e)
                    later = todo
                else:
                    wrote += fixed
                    bump(ws, collection, {lazy_key("sync_embedded"): fixed,
                                          lazy_key("noticed"): len(todo)})
            if later:
                try:
                    enqueue(ws, collection, target, later)
                except ManifestError as e:
                    log.warning("vecver: %d documents not queued for lazy re-embedding: %s",
                                len(later), e)
        if wrote:
            event.changed = True

    # -- the flusher thread

    def pending(self, collection: str) -> dict[str, float]:
        """Counts not yet written (for :func:`vecver.read.metrics.stats`)."""
        with self._lock:
            n = self._dropped.get(collection, 0)
        return {lazy_key("dropped"): float(n)} if n else {}

    def flush(self) -> None:
        """Write what reads noted since the last flush: read counts (one transaction per
        collection), and the missing or stale documents of each space being built, queued.
        A store that cannot be written (read-only) drops them with a warning."""
        with self._flushing:  # a flush returns once what was noted before it is written
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            noted, self._noted = self._noted, {}
            missing, self._missing = self._missing, {}
            reads, self._reads = self._reads, {}
            dropped, self._dropped = self._dropped, Counter()
        ws = self.ws
        for collection in set(noted) | set(missing) | set(reads) | set(dropped):
            try:
                self._flush_collection(collection, noted.get(collection, {}),
                                       missing.get(collection, {}), reads.get(collection),
                                       dropped.get(collection, 0))
            except ManifestError as e:
                warn_unrecorded(ws, "reads", collection, e)

    def _flush_collection(self, collection: str, noted: Mapping[str, Mapping[str, str | None]],
                          missing: Mapping[str, set[str]], reads: Counter[str] | None,
                          dropped: int) -> None:
        ws = self.ws
        fs = self._flusher.store
        store = fs.get() if fs is not None else ws.manifest
        if reads:
            store.record_reads(collection, dict(reads))
        noticed = 0
        for target in targets(ws, collection, store):
            todo = _stale_or_missing(ws, target, _truth_hashes(
                ws, collection, target, noted, missing, store))
            if todo:
                noticed += len(todo)
                enqueue(ws, collection, target, todo, store=store)
        if noticed or dropped:
            bump(ws, collection, {lazy_key("noticed"): noticed,
                                  lazy_key("dropped"): dropped}, store)

    def close(self) -> None:
        self.flush()


def _truth_hashes(ws: Workspace, collection: str, target: NamespaceRow,
                  seen: Mapping[str, Mapping[str, str | None]],
                  missing: Mapping[str, Iterable[str]],
                  store: ManifestStore | None = None) -> dict[str, str | None]:
    """The ids to check in ``target``, each with the source hash of the active space's
    copy when a hit from the active space showed it (None: unknown, then only a missing
    or wrongly stamped copy counts). Ids seen only in ``target`` itself are left out (it
    holds them), as are ids of other collections."""
    active = (store or ws.manifest).active_namespace(collection)
    out: dict[str, str | None] = {}
    for ns, ids in seen.items():
        if ns == target.name:
            continue
        for doc_id, h in ids.items():
            if ns == active:
                out[doc_id] = h
            else:
                out.setdefault(doc_id, None)
    for doc_id in missing.get(target.name, ()):
        out.setdefault(doc_id, None)
    return out


@dataclass
class ReadTelemetry:
    """What :func:`install` put on a workspace: the observers and their flusher."""

    flusher: Flusher
    metrics: MetricsObserver
    lazy: LazyObserver | None

    def flush(self) -> None:
        """Write everything counted or noted so far, now, on the calling thread."""
        self.flusher.flush()

    def close(self) -> None:
        """Stop the flusher thread after a last flush (idempotent)."""
        self.flusher.close()


def install(ws: Workspace) -> ReadTelemetry | None:
    """Register the metrics observer and, with ``[lazy] enabled`` (the default), the lazy
    re-embedding observer on ``ws.read_observers``. Returns them with their flusher (keep
    it to :meth:`ReadTelemetry.close` when the workspace closes); None when the workspace
    has no ``read_observers`` or ``[lazy] enabled = false``."""
    observers = getattr(ws, "read_observers", None)
    if observers is None or not ws.config.lazy.enabled:
        return None
    flusher = Flusher(ws.config.lazy.flush_interval, store=FlushStore(ws))
    lazy = LazyObserver(ws, flusher)
    metrics = MetricsObserver(ws, flusher)
    observers.append(metrics)
    observers.append(lazy)
    return ReadTelemetry(flusher, metrics, lazy)


def flush(ws: Workspace) -> None:
    """Write what the workspace's observers counted or noted so far, now (tests, a CLI
    verb before it exits)."""
    for o in getattr(ws, "read_observers", ()):
        fn = getattr(o, "flush", None)
        if callable(fn):
            fn()


# ----------------------------------------------------------------------------- drainer


@dataclass
class DrainReport:
    """What one :func:`drain` did: items ``claimed``; ``reembedded`` documents written
    into their space; ``current`` already up to date there (nothing to do);
    ``obsolete`` items whose space is no longer being built (completed without work);
    ``completed`` items removed from the queue; ``remaining`` items still pending and
    ``leased`` by other drainers (or a crashed one, until its lease expires) when it
    ended."""

    collection: str
    claimed: int = 0
    reembedded: int = 0
    current: int = 0
    obsolete: int = 0
    completed: int = 0
    remaining: int = 0
    leased: int = 0
    seconds: float = 0.0
    spaces: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rate"] = self.rate
        return d


def drain(
    ws: Workspace,
    collection: str,
    *,
    batch: int | None = None,
    ttl: float | None = None,
    max_items: int | None = None,
    stop: threading.Event | None = None,
    progress: bool | None = None,
) -> DrainReport:
    """Re-embed the documents queued for ``collection`` into their spaces until the queue
    has nothing claimable (or ``max_items`` were claimed, or ``stop`` is set).

    Claims ``batch`` items at a time (default ``[lazy] batch``) under a lease of ``ttl``
    seconds (default ``[lazy] lease_ttl``), reconciles them
    (:func:`~vecver.runtime.reconcile.reconcile`: the active space's text, tombstones
    respected) and completes them. With nothing queued it returns at once (a report of
    zeros). Raises ``UnknownCollection``; ``InvalidArgument`` for a batch, ttl or
    max_items that is not positive; ``CandidateFailed`` when the space's embedder breaks
    (the space is marked failed; the claimed items go back to the queue); a backend error
    releases the batch's items (they stay queued) and propagates. ``progress``: as for a
    backfill (a progress line on a terminal, one phase line elsewhere, nothing with
    False); the background worker drains silently."""
    ws.manifest.require_collection(collection)
    s = ws.config.lazy
    size = s.batch if batch is None else batch
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidArgument("batch", size, "a positive integer")
    lease = s.lease_ttl if ttl is None else ttl
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease > 0:
        raise InvalidArgument("ttl", lease, "a positive number of seconds")
    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int)
                                  or max_items < 1):
        raise InvalidArgument("max_items", max_items, "a positive integer")
    kind = queue_kind(collection)
    rep = DrainReport(collection)
    t0 = time.perf_counter()
    spaces: set[str] = set()
    waiting = ws.manifest.queue_stats(kind).pending
    bar = Progress(f"backfill {collection} --lazy", waiting,
                   enabled=progress if progress is not None else ws.progress)
    try:
        while stop is None or not stop.is_set():
            want = size if max_items is None else min(size, max_items - rep.claimed)
            if want <= 0:
                break
            items = ws.manifest.claim(kind, limit=want, ttl=float(lease))
            if not items:
                break
            rep.claimed += len(items)
            _drain_batch(ws, collection, items, rep, spaces)
            bar.update(len(items))
    finally:
        bar.close()
        rep.seconds = time.perf_counter() - t0
        rep.spaces = sorted(spaces)
        q = ws.manifest.queue_stats(kind)
        rep.remaining, rep.leased = q.pending, q.leased
        bump(ws, collection, {lazy_key("drained"): rep.completed,
                              lazy_key("drain_seconds"): rep.seconds if rep.claimed else 0.0})
    return rep


def _drain_batch(ws: Workspace, collection: str, items: list[WorkItem], rep: DrainReport,
                 spaces: set[str]) -> None:
    by_ns: dict[str, list[WorkItem]] = defaultdict(list)
    for it in items:
        p = it.payload if isinstance(it.payload, Mapping) else {}
        by_ns[str(p.get("namespace", ""))].append(it)
    for ns_name, group in by_ns.items():
        row = ws.manifest.namespace(ns_name) if ns_name else None
        ids = list(dict.fromkeys(str(it.payload.get("id")) for it in group
                                 if isinstance(it.payload, Mapping) and it.payload.get("id")))
        if row is None or row.collection != collection or row.state not in TARGET_STATES \
                or not ids:
            rep.obsolete += len(group)
            rep.completed += len(ws.manifest.complete([it.id for it in group]))
            continue
        try:
            fixed = reconcile(ws, collection, row, ids)
        except BaseException as e:
            for it in group:
                with contextlib.suppress(Exception):  # else the lease expires anyway
                    ws.manifest.release(it.id, error=f"{type(e).__name__}: {e}")
            raise
        spaces.add(row.space_label)
        rep.reembedded += fixed
        rep.current += max(0, len(ids) - fixed)
        rep.completed += len(ws.manifest.complete([it.id for it in group]))


class LazyWorker:
    """A daemon thread that drains the lazy queues of ``collections`` (default: every
    collection with a space being built) every ``interval`` seconds, for a long-lived
    service. :meth:`start` / :meth:`stop` (or ``with``); an error of one round is logged,
    kept in :attr:`last_error`, and the next round goes on. :attr:`drained` counts the
    documents re-embedded so far."""

    def __init__(self, ws: Workspace, collections: Sequence[str] | None = None, *,
                 interval: float = 1.0, batch: int | None = None) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
                or not interval > 0:
            raise InvalidArgument("interval", interval, "a positive number of seconds")
        if isinstance(collections, str):
            raise InvalidArgument("collections", collections, "a list of collection names")
        self.ws = ws
        self.collections = list(collections) if collections is not None else None
        self.interval = float(interval)
        self.batch = batch
        self.drained = 0
        self.rounds = 0
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LazyWorker:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="vecver-lazy-worker",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch in progress (its items completed or left leased)."""
        self._stop.set()
        t = self._thread
        if t is not None:
            t.join(timeout)

    def __enter__(self) -> LazyWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_once(self) -> int:
        """One round over the collections, on the calling thread; returns the documents
        re-embedded."""
        n = 0
        names = self.collections if self.collections is not None else [
            c for c in self.ws.manifest.collections() if targets(self.ws, c)
        ]
        for c in names:
            if self._stop.is_set():
                break
            n += drain(self.ws, c, batch=self.batch, stop=self._stop,
                       progress=False).reembedded
        self.drained += n
        self.rounds += 1
        return n

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as e:  # noqa: BLE001 - a service's worker keeps going
                self.last_error = e
                log.warning("vecver: lazy re-embedding round failed", exc_info=True)
            self._stop.wait(self.interval)
