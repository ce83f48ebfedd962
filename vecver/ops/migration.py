"""Migration verbs over a :class:`~vecver.runtime.workspace.Workspace`: plan, migrate, backfill,
verify, cutover and rollback. Backend-agnostic: they use only the backend protocol.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import (
    GateFailed,
    LeaseHeld,
    NoPreviousSpace,
    NotEvaluated,
    NotReady,
    StateError,
    UnknownSpace,
)
from ..runtime.progress import Progress
from ..runtime.retry import with_retry
from ..runtime.sources import NamespaceSource, Source, is_end
from ..runtime.workspace import Collection, Workspace, namespace_name
from ..space import Space
from ..store.sqlite import NamespaceRow, owner_alive
from ..types import Document, NamespaceSpec, Record, Stamp, source_hash

log = logging.getLogger("vecver")

SAMPLE_LIMIT = 10  # ids kept per category in reports


# --------------------------------------------------------------------------- plan


@dataclass
class PlanReport:
    """An estimate of a migration, measured on a sample before anything is written."""

    collection: str
    to: str
    fingerprint: str
    documents: int
    already_done: int
    to_embed: int
    sample_size: int
    embed_rate: float  # documents per second, measured
    estimated_seconds: float
    vector_bytes: int
    text_bytes: int
    estimated_bytes: int
    same_geometry_as_active: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(ws: Workspace, collection: str, to: str, *, sample: int = 64) -> PlanReport:
    """Estimate documents to embed, time (from a measured sample) and storage for moving
    ``collection`` to space ``to``. Writes nothing but the space's registration."""
    coll = ws.collection(collection)
    space = ws.space(to)
    active = coll.route("active")
    n = ws.backend.count(active.name)
    target = ws.manifest.namespace_for(collection, to)
    done = ws.backend.count(target.name) if target is not None and target.state != "dropped" else 0
    src = NamespaceSource(ws.backend, active.name)
    docs: list[Document] = []
    for page, _ in src.pages(None, min(sample, 256)):
        docs.extend(page)
        if len(docs) >= sample:
            break
    docs = docs[:sample]
    emb = ws.embedder(to)
    rate = 0.0
    if docs:
        emb.embed_documents([d.text for d in docs[:4]])  # load the model, warm up
        t0 = time.perf_counter()
        emb.embed_documents([d.text for d in docs])
        dt = max(time.perf_counter() - t0, 1e-9)
        rate = len(docs) / dt
    avg_text = (sum(len(d.text.encode()) for d in docs) / len(docs)) if docs else 0.0
    todo = max(n - done, 0)
    vec_bytes = n * space.spec.dimension * 4
    text_bytes = int(n * (avg_text + 64))
    return PlanReport(
        collection=collection,
        to=to,
        fingerprint=space.fingerprint,
        documents=n,
        already_done=done,
        to_embed=todo,
        sample_size=len(docs),
        embed_rate=rate,
        estimated_seconds=(todo / rate) if rate > 0 else 0.0,
        vector_bytes=vec_bytes,
        text_bytes=text_bytes,
        # vectors are kept twice by index-based backends (store + graph), plus links
        estimated_bytes=int(vec_bytes * 2 + n * 16 * 2 * 4 + text_bytes),
        same_geometry_as_active=space.fingerprint == active.fingerprint,
    )


# --------------------------------------------------------------------------- verify


@dataclass
class VerifyReport:
    """Consistency of one space against the collection's active space.

    ``expected`` documents of the active space that should be in this space; ``present``
    of them found; ``missing`` not found; ``stale`` found with another source hash (or
    other metadata);
    ``extra`` tombstoned but present; ``wrongly_stamped`` carrying another space's
    fingerprint or another document's id; ``unexpected`` present here but not in the
    active space (not tombstoned). ``repaired`` counts fixes made when repairing."""

    space: str
    namespace: str
    state: str
    expected: int = 0
    present: int = 0
    missing: int = 0
    stale: int = 0
    extra: int = 0
    wrongly_stamped: int = 0
    unexpected: int = 0
    stored: int = 0
    repaired: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not (
            self.missing or self.stale or self.extra or self.wrongly_stamped or self.unexpected
        )

    def _note(self, kind: str, doc_id: str) -> None:
        lst = self.samples.setdefault(kind, [])
        if len(lst) < SAMPLE_LIMIT:
            lst.append(doc_id)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["clean"] = self.clean
        return d


def _bad_stamp(r: Record, ns: NamespaceRow) -> bool:
    return r.stamp.fingerprint != ns.fingerprint or r.stamp.doc_id != r.id


def verify_namespace(
    ws: Workspace,
    collection: str,
    ns: NamespaceRow,
    *,
    repair: bool = False,
    page_size: int = 1024,
    newer_only: bool = False,
) -> VerifyReport:
    """Compare ``ns`` with the active space (and the tombstones), page by page; memory
    stays flat in the corpus size. With ``repair``, fix what is found: embed missing and
    stale documents from the active space's text, delete extra, unexpected and wrongly
    stamped ones. ``newer_only`` treats a hash difference as stale only when the active
    copy was written after this one (for external backfill sources)."""
    coll = Collection(ws, collection)
    be = ws.backend
    rep = VerifyReport(ns.space_label, ns.name, ns.state)
    active_name = ws.manifest.active_namespace(collection)
    in_flight: set[str] = set()
    for intent in ws.manifest.intents(collection):
        if owner_alive(intent.owner) and not intent.failed:
            in_flight.update(intent.doc_ids)
    is_active = ns.name == active_name
    # pass 1: every active document is here, fresh and correctly stamped
    cursor: str | None = None
    while True:
        page = be.scan(active_name, cursor=cursor, limit=page_size)
        ids = [r.id for r in page.records]
        dead = ws.manifest.tombstoned(collection, ids)
        have = page.records if is_active else list(be.fetch(ns.name, ids).values())
        have_map = {r.id: r for r in have}
        fix: list[Document] = []
        drop: list[str] = []
        for r in page.records:
            if r.id in dead:
                continue
            rep.expected += 1
            h = have_map.get(r.id)
            if h is None:
                if r.id in in_flight:
                    continue
                rep.missing += 1
                rep._note("missing", r.id)
                fix.append(Document(r.id, r.text or "", r.metadata))
                continue
            rep.present += 1
            if _bad_stamp(h, ns):
                rep.wrongly_stamped += 1
                rep._note("wrongly_stamped", r.id)
                if not is_active:
                    fix.append(Document(r.id, r.text or "", r.metadata))
                else:
                    drop.append(r.id)
            elif not is_active and (h.stamp.source_hash != r.stamp.source_hash
                                    or h.metadata != r.metadata):
                if r.id in in_flight:
                    continue
                if newer_only and h.stamp.written_at >= r.stamp.written_at:
                    continue
                rep.stale += 1
                rep._note("stale", r.id)
                fix.append(Document(r.id, r.text or "", r.metadata))
        if repair and (fix or drop):
            if drop:
                be.delete(ns.name, drop)
                rep.repaired += len(drop)
            if fix:
                # re-read and re-checked after the write: a concurrent update or delete of
                # these documents must win over the copy of the active page read above
                rep.repaired += coll.sync(ns, [d.id for d in fix if d.text])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # pass 2: nothing tombstoned is present
    after: str | None = None
    while True:
        ids = ws.manifest.tombstones(collection, after, page_size)
        if not ids:
            break
        after = ids[-1]
        present = [i for i in be.fetch(ns.name, ids) if i not in in_flight]
        rep.extra += len(present)
        for i in present:
            rep._note("extra", i)
        if repair and present:
            if is_active:
                be.delete(ns.name, present)
                rep.repaired += len(present)
            else:
                rep.repaired += coll.sync(ns, present)
    # pass 3: nothing here that the active space does not have. When every stored record
    # is already accounted for (present or extra) and nothing was repaired, the count
    # proves it without reading the namespace again.
    if rep.repaired == 0 and be.count(ns.name) == rep.present + rep.extra:
        rep.stored = rep.present + rep.extra
        return rep
    cursor = None
    while True:
        page = be.scan(ns.name, cursor=cursor, limit=page_size)
        rep.stored += len(page.records)
        if not is_active:
            ids = [r.id for r in page.records]
            truth = be.fetch(active_name, ids)
            dead = ws.manifest.tombstoned(collection, ids)
            odd = [i for i in ids if i not in truth and i not in dead and i not in in_flight]
            rep.unexpected += len(odd)
            for i in odd:
                rep._note("unexpected", i)
            if repair and odd:
                # checked again after the delete: one may have been written meanwhile
                rep.repaired += coll.sync(ns, odd)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return rep


def verify(
    ws: Workspace, collection: str, *, repair: bool = False, spaces: Sequence[str] | None = None
) -> list[VerifyReport]:
    """A consistency report for every live space of ``collection``."""
    ws.manifest.require_collection(collection)
    if repair:
        ws.recover(collection)
    _, live = ws.manifest.live_namespaces(collection)
    out = []
    for ns in live:
        if spaces is not None and ns.space_label not in spaces:
            continue
        out.append(verify_namespace(ws, collection, ns, repair=repair))
    return out


# --------------------------------------------------------------------------- backfill


@dataclass
class BackfillReport:
    """What a backfill did. Counters cover this run only; ``done`` is cumulative."""

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
    refreshed: int = 0
    reconciled: int = 0
    done: int = 0
    seconds: float = 0.0
    state: str = "building"
    verify: VerifyReport | None = None

    @property
    def rate(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rate"] = self.rate
        d["verify"] = self.verify.to_dict() if self.verify else None
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
        raise StateError(
            f"collection {collection!r} has no space being built",
            hint=f"start one with `vecver migrate {collection} --to SPACE`",
        )
    if len(building) > 1:
        raise StateError(
            f"collection {collection!r} has several spaces being built: "
            + ", ".join(n.space_label for n in building),
            hint="name one with --space",
        )
    return building[0]


_END_OF_STREAM = object()


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
) -> BackfillReport:
    """Copy every document into the space being built, resumably, then verify it and
    mark it ``ready``.

    Documents are streamed from ``source`` (default: the active space's stored text) in
    a stable order; documents whose source hash is already present are skipped; the
    embedding of batch n+1 overlaps the write of batch n; a checkpoint is saved after
    each durable batch. After a crash, calling it again resumes from the checkpoint, and
    re-doing a batch is harmless (writes are idempotent by id), so nothing is lost or
    duplicated. Deletes and updates issued meanwhile win: tombstoned documents are
    removed after each write, documents whose text changed are re-embedded.

    Raises ``LeaseHeld`` while another live process backfills the same space.
    """
    ws.manifest.require_collection(collection)
    target = _target(ws, collection, space)
    rep = BackfillReport(collection, target.space_label, target.name, "")
    if target.state == "ready":
        # nothing to build; but what a killed writer left half-done is settled first
        ws.recover(collection)
        rep.state = "ready"
        rep.verify = verify_namespace(ws, collection, target)
        return rep
    if target.state != "building":
        raise StateError(f"space {target.space_label!r} is {target.state}, not building")
    lease = f"backfill:{target.name}"
    holder = ws.manifest.acquire_lease(lease)
    if holder is not None:
        raise LeaseHeld(f"the backfill of {target.space_label!r} in {collection!r}", holder)
    try:
        return _run_backfill(ws, collection, target, rep, source, batch_size, progress,
                             restart, on_batch, lease)
    finally:
        ws.manifest.release_lease(lease)


def _run_backfill(
    ws: Workspace,
    collection: str,
    target: NamespaceRow,
    rep: BackfillReport,
    source: Source | None,
    batch_size: int | None,
    progress: bool | None,
    restart: bool,
    on_batch: Callable[[BackfillReport], None] | None,
    lease: str,
) -> BackfillReport:
    t0 = time.perf_counter()
    ws.recover(collection)
    coll = Collection(ws, collection)
    be = ws.backend
    active = coll.route("active")
    src: Source = source or NamespaceSource(be, active.name)
    from_active = isinstance(src, NamespaceSource) and src.namespace == active.name
    rep.source = src.name
    validate_source = getattr(src, "validate", None)
    if callable(validate_source):
        # a malformed file fails before anything from it is written (and before a
        # checkpoint points into it)
        validate_source()
    emb = ws.embedder(target.space_label)
    if emb.space.fingerprint != target.fingerprint:
        raise StateError(
            f"space {target.space_label!r} now resolves to fingerprint {emb.space.short}, but "
            f"its namespace holds {target.fingerprint[:12]}",
        )
    batch = batch_size or ws.config.batch_size
    ckpt = ws.manifest.checkpoint(target.name)
    cursor: str | None = None
    done = 0
    if ckpt is not None and not restart:
        if ckpt.source == src.name:
            cursor, done = ckpt.cursor, ckpt.done
            rep.resumed = True
        elif source is None and ckpt.source.startswith("namespace:"):
            # started from the then active space; a cutover or rollback since changed the
            # default source, whose scan order the old cursor does not belong to: start
            # over from the new one (documents already present are skipped, not re-embedded)
            log.info("the active space of %s changed since the backfill of %s started from "
                     "%s; starting over from %s", collection, target.space_label,
                     ckpt.source, src.name)
        else:
            raise StateError(
                f"the backfill of {target.space_label!r} was started from {ckpt.source}, "
                f"not {src.name}",
                hint="resume with the same source, or restart it (--restart)",
            )
    rep.done = done
    total = src.estimate()
    bar = Progress(
        f"backfill {collection} -> {target.space_label}",
        total,
        enabled=(progress if progress is not None else ws.progress),
    )
    bar.done = done

    q: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            if is_end(cursor):
                q.put(_END_OF_STREAM)
                return
            epoch = ws.manifest.write_epoch(collection)
            for docs, nxt in src.pages(cursor, batch):
                if stop.is_set():
                    return
                ids = [d.id for d in docs]
                if not from_active and docs:
                    dead = ws.manifest.tombstoned(collection, ids)
                    docs = [d for d in docs if d.id not in dead]
                have = be.fetch(target.name, [d.id for d in docs]) if docs else {}
                todo = [
                    d for d in docs
                    if d.id not in have
                    or have[d.id].stamp.source_hash != source_hash(d.text)
                    or have[d.id].stamp.fingerprint != target.fingerprint
                ]
                recs: list[Record] = []
                if todo:
                    vecs = emb.embed_documents([d.text for d in todo], [d.id for d in todo])
                    fp = target.fingerprint
                    recs = [
                        Record(d.id, v, d.text, dict(d.metadata), Stamp.now(fp, d.id, d.text))
                        for d, v in zip(todo, vecs)
                    ]
                while not stop.is_set():
                    try:
                        q.put((recs, nxt, len(ids), len(ids) - len(todo), epoch), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                epoch = ws.manifest.write_epoch(collection)  # before the next page is read
            q.put(_END_OF_STREAM)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    worker = threading.Thread(target=produce, name="vecver-backfill-embed", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END_OF_STREAM:
                break
            if isinstance(item, BaseException):
                raise item
            recs, nxt, n, skipped, epoch = item
            if recs:
                coll._write(target, recs)
                # copied from the active space itself, only a write issued through vecver
                # since (or still open when) the page was read can have raced with this
                # copy; with none, the check is moot. Another source may simply be
                # outdated, so it is always checked against the active space.
                last_id, was_open = epoch
                if (not from_active or was_open
                        or ws.manifest.write_epoch(collection)[0] != last_id):
                    _after_write(ws, coll, target, active, recs, rep)
            rep.scanned += n
            rep.skipped += skipped
            rep.embedded += len(recs)
            rep.written += len(recs)
            done += n
            rep.done = done
            ws.manifest.save_checkpoint(
                target.name, src.name, nxt, done,
                {"written": rep.written, "skipped": rep.skipped}, lease=lease,
            )
            bar.update(n)
            if on_batch is not None:
                on_batch(rep)
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(0.05)
        bar.close()
    # reconcile: what dual-writes, crashes or races left behind is fixed from the truth.
    # The active space is the truth for an external source too: a copy from the source
    # that differs from it (an outdated export, or one overwriting a concurrent update)
    # is stale, however recently it was written; the space is ready only when `verify`
    # agrees.
    fix = verify_namespace(ws, collection, target, repair=True)
    rep.reconciled = fix.repaired
    check = fix
    for _ in range(3):
        if check.clean and fix.repaired == 0:
            break
        check = verify_namespace(ws, collection, target)
        if check.clean:
            break
        time.sleep(0.2)
    rep.verify = check
    ws.manifest.save_checkpoint(
        target.name, src.name, "\x00end", done,
        {"written": rep.written, "skipped": rep.skipped}, finished=check.clean, lease=lease,
    )
    rep.seconds = time.perf_counter() - t0
    if check.clean:
        ws.manifest.set_state(target.name, "ready", expect=["building"])
        rep.state = "ready"
        ws.manifest.log("backfill.finished", collection, space=target.space_label,
                        scanned=rep.scanned, written=rep.written, seconds=rep.seconds)
    return rep


def _after_write(
    ws: Workspace,
    coll: Collection,
    target: NamespaceRow,
    active: NamespaceRow,
    recs: Sequence[Record],
    rep: BackfillReport,
) -> None:
    """Make the batch just written lose against concurrent deletes and updates.

    A delete records its tombstone before deleting anywhere, and an update writes the
    active space before the others; so re-reading both *after* our write catches every
    change our write could have overwritten. The active space is the truth for an
    external source too (an outdated export loses against it), so the space being built
    never holds a deleted document or a stale text, even between batches."""
    be = ws.backend
    ids = [r.id for r in recs]
    dead = ws.manifest.tombstoned(coll.name, ids)
    if dead:
        be.delete(target.name, sorted(dead))
        rep.removed += len(dead)
    written = {r.id: r.stamp.source_hash for r in recs if r.id not in dead}
    for _ in range(5):
        if not written:
            return
        truth = be.fetch(active.name, list(written))
        gone = [i for i in written if i not in truth]
        if gone:
            be.delete(target.name, gone)
            rep.removed += len(gone)
        changed = [truth[i] for i in written if i in truth and truth[i].text and
                   truth[i].stamp.source_hash != written[i]]
        if not changed:
            return
        docs = [Document(r.id, r.text or "", r.metadata) for r in changed]
        fresh = coll._records(target, docs)
        coll._write(target, fresh)
        rep.refreshed += len(fresh)
        written = {r.id: r.stamp.source_hash for r in fresh}


# --------------------------------------------------------------------------- migrate


def start_migration(ws: Workspace, collection: str, to: str) -> NamespaceRow:
    """Create the namespace of space ``to`` and turn dual-write on (state ``building``).
    Idempotent: returns the existing namespace when the migration was already started."""
    coll = ws.collection(collection)
    space = ws.space(to)
    active = coll.route("active")
    row = ws.manifest.namespace_for(collection, to)
    if row is not None:
        if row.state in ("building", "ready"):
            return row
        if row.state == "planned":
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
    ns = namespace_name(collection, space)
    # recorded (planned) before the backend namespace exists, so that a crash never
    # leaves a namespace the manifest does not know; the next call picks it up
    # (an IntegrityError: another thread or process started it since we looked)
    with contextlib.suppress(sqlite3.IntegrityError):
        ws.manifest.add_namespace(collection, to, space.fingerprint, ns, "planned")
    row = ws.manifest.namespace_for(collection, to)
    assert row is not None
    if row.state != "planned":
        return row
    return _build(ws, collection, row, space, active.space_label)


def _build(
    ws: Workspace, collection: str, row: NamespaceRow, space: Space, from_label: str
) -> NamespaceRow:
    """planned -> building: create the backend namespace (idempotent), turn dual-write on."""
    ws.backend.create_namespace(
        NamespaceSpec(row.name, space.spec.dimension, space.spec.metric, space.fingerprint)
    )
    try:
        ws.manifest.set_state(row.name, "building", expect=["planned"])
    except StateError:
        # a concurrent caller moved it first
        now = ws.manifest.namespace(row.name)
        if now is None or now.state not in ("building", "ready"):
            raise
        return now
    ws.manifest.log("migration.started", collection, space=row.space_label,
                    namespace=row.name, from_space=from_label)
    built = ws.manifest.namespace(row.name)
    assert built is not None
    return built


def migrate(
    ws: Workspace,
    collection: str,
    to: str,
    *,
    source: Source | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    on_batch: Callable[[BackfillReport], None] | None = None,
) -> BackfillReport:
    """Start (or resume) the migration of ``collection`` to space ``to``: create its
    namespace, turn dual-write on, backfill, verify; the space ends ``ready``."""
    start_migration(ws, collection, to)
    return backfill(ws, collection, space=to, source=source, batch_size=batch_size,
                    progress=progress, on_batch=on_batch)


# --------------------------------------------------------------------------- cutover


@dataclass
class CutoverReport:
    collection: str
    from_space: str
    to_space: str
    forced: bool
    gate: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate_check(ws: Workspace, collection: str, target: NamespaceRow) -> list[str]:
    """Reasons the target fails the gate (empty: it passes). Raises ``NotEvaluated``
    when no evaluation of the target was recorded since it became ready."""
    gate = ws.config.gate
    evals = [
        e for e in ws.manifest.evaluations(collection, target.name)
        if target.ready_at is not None and e["at"] >= target.ready_at
    ]
    if not evals:
        raise NotEvaluated(collection, target.space_label)
    last = evals[-1]
    res = last["results"]
    reasons: list[str] = []
    passed: list[str] = []
    ann = res.get("ann_recall")
    if ann is None and res.get("documents") == 0:
        # a ready space agrees with the active one: both are empty, nothing can be lost
        passed.append("ANN recall not measured: the space holds no documents")
    elif ann is None:
        reasons.append(f"ANN recall@{res.get('k')} was not measured")
    elif ann < gate.min_ann_recall:
        reasons.append(f"ANN recall@{res.get('k')} {ann} < {gate.min_ann_recall}")
    else:
        passed.append(f"ANN recall@{res.get('k')} {ann:.3f} >= {gate.min_ann_recall}")
    rel = res.get("relevance")
    if rel is not None:
        base = [
            e for e in ws.manifest.evaluations(collection)
            if e["run"] == last["run"] and e["namespace"] != target.name
            and e["results"].get("state") == "active"
        ]
        if base and base[-1]["results"].get("relevance"):
            mine = float(rel[gate.metric])
            theirs = float(base[-1]["results"]["relevance"][gate.metric])
            if mine < theirs - gate.max_regression:
                reasons.append(
                    f"{gate.metric} {mine:.4f} is below the active space's {theirs:.4f} by more"
                    f" than {gate.max_regression}"
                )
            else:
                passed.append(f"{gate.metric} {mine:.4f} vs active {theirs:.4f}")
        else:
            # judged alone, the candidate cannot show it is no worse than the active space
            reasons.append(
                f"{gate.metric} of {target.space_label!r} has no baseline: the active space"
                f" was not evaluated on the same queries in run {last['run']}"
            )
    if reasons:
        return reasons
    return ["PASS " + p for p in passed]


def cutover(
    ws: Workspace, collection: str, *, to: str | None = None, force: bool = False
) -> CutoverReport:
    """Point the collection's alias at a ready space, atomically.

    Refused (``NotReady``) unless the target is ``ready``; refused (``NotEvaluated``,
    ``GateFailed``) unless its evaluation passes the configured gate, when not
    ``force``. The previous active space becomes ``retired`` and keeps receiving writes,
    so :func:`rollback` is exact. Concurrent readers see the old or the new space."""
    ws.manifest.require_collection(collection)
    ws.recover(collection)
    rows = ws.manifest.namespaces(collection)
    if to is not None:
        cands = [n for n in rows if n.space_label == to]
        if not cands:
            raise UnknownSpace(to, [n.space_label for n in rows])
        target = cands[0]
    else:
        ready = [n for n in rows if n.state == "ready"]
        if len(ready) != 1:
            building = [n for n in rows if n.state == "building"]
            if not ready and building:
                raise NotReady(collection, building[-1].space_label, "building")
            raise StateError(
                f"collection {collection!r} has {len(ready)} ready spaces",
                hint="name the target with --to SPACE",
            )
        target = ready[0]
    if target.state == "active":
        raise StateError(f"space {target.space_label!r} is already active in {collection!r}")
    if target.state != "ready":
        raise NotReady(collection, target.space_label, target.state)
    gate: list[str] = []
    if not force:
        gate = gate_check(ws, collection, target)
        if not all(g.startswith("PASS") for g in gate):
            ws.manifest.log("cutover.refused", collection, space=target.space_label, reasons=gate)
            raise GateFailed(collection, target.space_label, gate)
    prev = ws.manifest.active_namespace(collection)
    _switch(ws, collection, prev, target.name, "cutover", forced=force)
    prev_row = ws.manifest.namespace(prev)
    return CutoverReport(collection, prev_row.space_label if prev_row else prev,
                         target.space_label, force, gate)


def _switch(ws: Workspace, collection: str, prev: str, to_ns: str, reason: str,
            **detail: Any) -> None:
    if ws.backend.capabilities.native_alias:
        ws.manifest.begin_cutover(collection, prev, to_ns, reason)
        with_retry(lambda: ws.backend.set_alias(collection, to_ns), what="alias switch")
    ws.manifest.switch_active(collection, to_ns, reason, **detail)


def rollback(ws: Workspace, collection: str) -> CutoverReport:
    """Point the alias back at the previous active space (kept ``retired``, and kept up
    to date by dual-write). The space rolled back from becomes ``ready`` again. Raises
    ``NoPreviousSpace`` when there is none."""
    ws.manifest.require_collection(collection)
    ws.recover(collection)
    prev = ws.manifest.previous_active(collection)
    if prev is None:
        raise NoPreviousSpace(collection)
    current = ws.manifest.active_namespace(collection)
    _switch(ws, collection, current, prev, "rollback")
    cur_row = ws.manifest.namespace(current)
    prev_row = ws.manifest.namespace(prev)
    return CutoverReport(
        collection,
        cur_row.space_label if cur_row else current,
        prev_row.space_label if prev_row else prev,
        False,
        [],
    )
