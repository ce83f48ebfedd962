"""backfill and migrate: fill the space being built, resumably, then verify it."""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import (
    LeaseHeld,
    StateError,
    UnknownSpace,
)
from ..runtime.collection import Collection
from ..runtime.progress import Progress
from ..runtime.sources import NamespaceSource, Source, is_end
from ..runtime.workspace import Workspace, namespace_name
from ..space import Space
from ..store.sqlite import NamespaceRow
from ..types import Document, NamespaceSpec, Record, Stamp, source_hash
from .verify import VerifyReport, verify_namespace

log = logging.getLogger("vecver")



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
