"""Reconcile: make one space of a collection agree with the collection's truth.

The truth of a collection is its *active* space minus its tombstones. Every other live
space must hold the same documents, each embedded (in its own space) from the same text,
with the same metadata, stamped with its own fingerprint. Three things use the one
operation defined here, :func:`reconcile`:

- the write path, after a write that raced with another writer of the same documents;
- the backfill, after a batch that raced with a write (and for external sources);
- ``verify --repair`` and crash recovery (:mod:`vecver.runtime.recover`).

and one predicate decides whether a stored copy must be (re-)embedded:
:func:`needs_embedding`.

A space being built whose embedder breaks must not take production writes down: the
helpers here mark it ``failed`` (:func:`fail_space`), which takes it out of the live set,
so writes go on to the active space.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import CandidateFailed, NamespaceMissing, NamespaceNotFound, StateError
from ..store.sqlite import NamespaceRow
from ..types import Document, Record, Stamp, source_hash
from .retry import with_retry

if TYPE_CHECKING:
    from ..backends.base import PendingWrite
    from .workspace import Workspace

log = logging.getLogger("vecver")

#: states of a space whose broken embedder marks it ``failed`` instead of failing writes
CANDIDATE_STATES = ("building", "ready")


def needs_embedding(stored: Record | None, truth: Record | Document, ns: NamespaceRow) -> bool:
    """Whether the copy ``stored`` that namespace ``ns`` holds of a document (None: it has
    none) must be (re-)embedded from ``truth`` (the active space's record, or a document
    from a backfill source).

    True when the copy is missing, was embedded from another text (source hash), carries
    other metadata, is stamped with another space's fingerprint or another document's id.
    This is the only such rule: the write path, the backfill and ``verify`` all use it."""
    if stored is None:
        return True
    if isinstance(truth, Record):
        want_hash = truth.stamp.source_hash
    else:
        want_hash = source_hash(truth.text)
    return (
        stored.stamp.source_hash != want_hash
        or stored.metadata != truth.metadata
        or stored.stamp.fingerprint != ns.fingerprint
        or stored.stamp.doc_id != truth.id
    )


def records_for(ws: Workspace, ns: NamespaceRow, docs: Sequence[Document]) -> list[Record]:
    """Embed ``docs`` in the space of ``ns`` as stamped records (nothing is written).

    Raises what the space's embedder raises (``EmbedderError``, ``DimensionMismatch``,
    ``NonFiniteVector``, ...)."""
    emb = ws.embedder(ns.space_label)
    vecs = emb.embed_documents([d.text for d in docs], [d.id for d in docs])
    fp = emb.space.fingerprint
    return [
        Record(d.id, v, d.text, dict(d.metadata), Stamp.now(fp, d.id, d.text))
        for d, v in zip(docs, vecs)
    ]


def _upsert_chunks(ws: Workspace, ns: NamespaceRow, records: Sequence[Record],
                   deferred: bool) -> list[PendingWrite]:
    be = ws.backend_for(ns)
    upsert: Callable[[str, Sequence[Record]], PendingWrite | None] = (
        be.upsert_deferred if deferred else be.upsert)
    step = be.capabilities.max_batch
    out = [with_retry(lambda c=records[i : i + step]: upsert(ns.name, c),  # type: ignore[misc]
                      what=f"upsert into {ns.name}")
           for i in range(0, len(records), step)]
    return [w for w in out if w is not None]


def write_records(ws: Workspace, ns: NamespaceRow, records: Sequence[Record]) -> None:
    """Upsert ``records`` into ``ns`` in chunks the backend accepts, retrying transient
    errors; any other backend error propagates."""
    _upsert_chunks(ws, ns, records, deferred=False)


def send_records(ws: Workspace, ns: NamespaceRow, records: Sequence[Record]
                 ) -> list[PendingWrite]:
    """:func:`write_records` without the read-your-writes wait of an eventually consistent
    backend: one :class:`~vecver.backends.base.PendingWrite` per chunk, to confirm later
    (:meth:`~vecver.backends.base.Backend.upsert_deferred`)."""
    return _upsert_chunks(ws, ns, records, deferred=True)


def delete_ids(ws: Workspace, ns: NamespaceRow, ids: Sequence[str]) -> None:
    """Delete ``ids`` from ``ns`` (missing ones are ignored), retrying transient errors."""
    be = ws.backend_for(ns)
    with_retry(lambda: be.delete(ns.name, list(ids)), what=f"delete from {ns.name}")


def is_candidate(ns: NamespaceRow) -> bool:
    """Whether ``ns`` is a space being built or ready (not the active or a retired one):
    its embedder breaking marks it ``failed`` rather than failing the write."""
    return ns.state in CANDIDATE_STATES


def fail_space(ws: Workspace, collection: str, ns: NamespaceRow, error: BaseException) -> str:
    """Mark the candidate ``ns`` failed because of ``error``; returns the reason recorded.

    The state change is logged in the manifest (event ``namespace.state`` with the reason,
    and ``migration.failed``) and as a warning. From then on the space is not live: writes
    skip it. Raises ``StateError`` when ``ns`` is no longer a candidate (a concurrent
    cutover made it active): then the caller must treat ``error`` as its own."""
    reason = f"{type(error).__name__}: {error}"
    try:
        ws.manifest.set_state(ns.name, "failed", expect=list(CANDIDATE_STATES), reason=reason)
    except StateError:
        now = ws.manifest.namespace(ns.name)
        if now is None or now.state != "failed":
            raise
        return reason  # another writer marked it first
    ws.manifest.log("migration.failed", collection, space=ns.space_label, namespace=ns.name,
                    reason=reason)
    log.warning("space %r of %s failed and stopped receiving writes (%s); the active space "
                "keeps taking them. Resume with `vecver migrate %s --to %s` once fixed, or "
                "`vecver abort %s --space %s`", ns.space_label, collection, reason,
                collection, ns.space_label, collection, ns.space_label)
    return reason


def fail_if_missing(
    ws: Workspace, collection: str, ns: NamespaceRow, error: BaseException
) -> str | None:
    """When ``error`` (of a write to the candidate ``ns``) is ``NamespaceNotFound`` and the
    namespace is indeed not on its backend instance (asked again), mark ``ns`` failed
    (:func:`fail_space`, with a ``NamespaceMissing`` reason) and return the reason; else
    None (the caller handles ``error`` as before). A candidate's namespace deleted behind
    vecver's back must not take the collection's writes down, as a broken embedder does
    not; ``vecver migrate`` again recreates and repairs it. The active and retired spaces
    are never marked: their writes keep failing loudly."""
    if not is_candidate(ns) or not isinstance(error, NamespaceNotFound):
        return None
    try:
        ws.backend_for(ns).describe_namespace(ns.name)
        return None  # it is there: the error was about something else
    except NamespaceNotFound:
        pass
    gone = NamespaceMissing(collection, ns.space_label, ns.name, ns.backend)
    try:
        return fail_space(ws, collection, ns, gone)
    except StateError:
        return None  # no longer a candidate (a cutover made it active meanwhile)


def embed_or_fail(
    ws: Workspace, collection: str, ns: NamespaceRow, docs: Sequence[Document]
) -> list[Record]:
    """:func:`records_for`; when the embedder of a candidate space breaks (raises, or
    returns what does not fit the space: another dimension, NaN or inf, too few rows, a
    1-D array), the space is marked failed (:func:`fail_space`) and ``CandidateFailed``
    is raised. An error of the active or a retired space propagates unchanged, and so
    does a configuration error found while loading the embedder (``SpaceConflict``,
    ``ConfigError``: the space is not broken, its declaration is)."""
    ws.embedder(ns.space_label)  # loads it (and checks its declaration) first
    try:
        return records_for(ws, ns, docs)
    except Exception as e:
        if not is_candidate(ns):
            raise
        try:
            reason = fail_space(ws, collection, ns, e)
        except StateError:
            raise e from None
        raise CandidateFailed(collection, ns.space_label, reason) from e


def reconcile(
    ws: Workspace,
    collection: str,
    ns: NamespaceRow,
    ids: Iterable[str],
    *,
    written: Mapping[str, Record] | None = None,
    rounds: int = 8,
) -> int:
    """Make the live space ``ns`` agree with the active space of ``collection`` for
    ``ids``; returns how many documents were fixed.

    A non-active space: what the active space holds and is not tombstoned is (re-)embedded
    where :func:`needs_embedding` says so; what the active space lacks, or what is
    tombstoned, is deleted. For the active space itself: what is tombstoned is deleted.

    Safe against concurrent writers: a writer may change a document between our read of
    the truth and our write, so each fix is checked again by a read of the truth *after*
    it (writers write the active space first and record tombstones before deleting, so
    that read sees any change our write could have undone), until a round finds nothing
    to do or ``rounds`` are spent. ``written``: what the caller has just written into
    ``ns`` (its copy is then known and not read back).

    Raises ``CandidateFailed`` when the embedder of a space being built breaks (the space
    is marked failed first), and backend errors."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return 0
    be = ws.backend_for(ns)
    active_name = ws.manifest.active_namespace(collection)
    if ns.name == active_name:
        dead = sorted(ws.manifest.tombstoned(collection, ids) & set(be.fetch(ns.name, ids)))
        if dead:
            delete_ids(ws, ns, dead)
        return len(dead)
    known: dict[str, Record | None] | None = dict(written) if written is not None else None
    touched: set[str] = set()
    for _ in range(rounds):
        if not ids:
            break
        active_name = ws.manifest.active_namespace(collection)
        if ns.name == active_name:
            break  # a cutover made it the truth meanwhile
        gone = ws.manifest.tombstoned(collection, ids)
        truth = {
            k: v for k, v in ws.backend_for(active_name).fetch(active_name, ids).items()
            if k not in gone
        }
        if known is None:
            have: Mapping[str, Record | None] = be.fetch(ns.name, ids)
        else:
            have = known
        stale = [
            truth[i] for i in ids
            if i in truth and truth[i].text and needs_embedding(have.get(i), truth[i], ns)
        ]
        extra = [i for i in ids if have.get(i) is not None and i not in truth]
        if not stale and not extra:
            break
        known = {}
        if stale:
            docs = [Document(r.id, r.text or "", r.metadata) for r in stale]
            fresh = embed_or_fail(ws, collection, ns, docs)
            write_records(ws, ns, fresh)
            known.update({r.id: r for r in fresh})
        if extra:
            delete_ids(ws, ns, extra)
            known.update(dict.fromkeys(extra))
        ids = [r.id for r in stale] + extra
        touched.update(ids)
    return len(touched)


def reconcile_present(ws: Workspace, collection: str, ns: NamespaceRow,
                      page_size: int = 1024) -> int:
    """:func:`reconcile` every document ``ns`` holds (page by page, memory flat): what is
    stale is re-embedded, what was deleted meanwhile is removed; nothing missing is
    added. For a space that missed writes for a while (``failed -> building``), so that
    what it holds is fresh again as soon as it receives writes. Returns how many
    documents were fixed; raises like :func:`reconcile`."""
    be = ws.backend_for(ns)
    fixed = 0
    cursor: str | None = None
    while True:
        page = be.scan(ns.name, cursor=cursor, limit=page_size)
        held = {r.id: r for r in page.records}
        fixed += reconcile(ws, collection, ns, list(held), written=held)
        if page.next_cursor is None:
            return fixed
        cursor = page.next_cursor

