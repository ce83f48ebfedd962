"""verify: compare a space with the active one (and the tombstones), optionally repairing."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import CandidateFailed, LeaseHeld
from ..runtime.readahead import ReadAhead
from ..runtime.reconcile import delete_ids, needs_embedding, reconcile
from ..runtime.workspace import Workspace
from ..store.sqlite import LIVE_STATES, NamespaceRow
from ..types import Record, ScanPage

log = logging.getLogger("vecver")


SAMPLE_LIMIT = 10  # ids kept per category in reports


@dataclass
class VerifyReport:
    """Consistency of one space against the collection's active space.

    ``expected`` documents of the active space that should be in this space; ``present``
    of them found; ``missing`` not found; ``stale`` found with another source hash (or
    other metadata);
    ``extra`` tombstoned but present; ``wrongly_stamped`` carrying another space's
    fingerprint or another document's id; ``unexpected`` present here but not in the
    active space (not tombstoned). ``repaired`` counts fixes made when repairing.
    ``failed``: the reason, when the space's embedder broke during a repair (the space
    was marked failed; it is then never clean)."""

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
    failed: str | None = None

    @property
    def clean(self) -> bool:
        return not (
            self.missing or self.stale or self.extra or self.wrongly_stamped or self.unexpected
            or self.failed
        )

    def _note(self, kind: str, doc_id: str) -> None:
        lst = self.samples.setdefault(kind, [])
        if len(lst) < SAMPLE_LIMIT:
            lst.append(doc_id)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["clean"] = self.clean
        return d


#: second looks at a suspected divergence before it is reported (see verify_namespace)
LOOKS = 3


def _bad_stamp(r: Record, ns: NamespaceRow) -> bool:
    return r.stamp.fingerprint != ns.fingerprint or r.stamp.doc_id != r.id


def _in_flight(ws: Workspace, collection: str) -> set[str]:
    """Ids of the write intents open now in live processes (their writer is still
    writing every live space, or will be recovered)."""
    out: set[str] = set()
    for intent in ws.manifest.intents(collection):
        if ws.manifest.owner_alive(intent.owner) and not intent.failed:
            out.update(intent.doc_ids)
    return out


def _second_look(
    ws: Workspace,
    collection: str,
    suspects: dict[str, str],
    recheck: Callable[[list[str]], dict[str, str]],
) -> dict[str, str]:
    """The suspected divergences ({id: kind}) that are real: not written by a writer
    still at work, and still there when read again.

    A writer opens its intent before its first backend write and closes it after the
    last, active space first: a divergence seen while it writes is in flight, and one
    seen just before it closed is gone on a new read. So each suspect is dropped when an
    open intent holds it, else read again (``recheck``), up to ``LOOKS`` times."""
    for _ in range(LOOKS):
        if not suspects:
            break
        busy = _in_flight(ws, collection)
        suspects = {i: k for i, k in suspects.items() if i not in busy}
        if suspects:
            suspects = recheck(list(suspects))
    if suspects:
        busy = _in_flight(ws, collection)
        suspects = {i: k for i, k in suspects.items() if i not in busy}
    return suspects


def verify_namespace(
    ws: Workspace,
    collection: str,
    ns: NamespaceRow,
    *,
    repair: bool = False,
    page_size: int = 1024,
    newer_only: bool = False,
) -> VerifyReport:
    """Compare ``ns`` with the active space (and the tombstones), page by page (at most
    ``page_size`` documents, and no more ids than one fetch of either backend takes);
    memory stays flat in the corpus size. A copy is stale when
    :func:`~vecver.runtime.reconcile.needs_embedding` says so. Both spaces are read
    without their texts (``with_text=False``: ids, stamps and metadata; the source hash
    in each stamp stands for the text, and an adopted collection's is computed from its
    text by the backend): the same facts, fewer bytes.

    Writes of other processes may run meanwhile: a divergence is reported only when no
    open write intent holds the document and it is still there when read again (writes
    in flight are not counted). With ``repair``, what is found is fixed by
    :func:`~vecver.runtime.reconcile.reconcile` (missing and stale documents embedded
    from the active space's text; extra, unexpected and wrongly stamped ones deleted);
    ``repaired`` counts the fixes. ``newer_only`` treats a hash difference as stale only
    when the active copy was written after this one (for external backfill sources).

    Raises ``CandidateFailed`` when repairing a space being built whose embedder broke
    (the space is marked failed first)."""
    be = ws.backend_for(ns)
    rep = VerifyReport(ns.space_label, ns.name, ns.state)
    active_name = ws.manifest.active_namespace(collection)
    active_be = ws.backend_for(active_name)
    # a page is fetched from the other space by its ids: keep it within one request
    page_size = max(1, min(page_size, be.capabilities.max_fetch_ids,
                           active_be.capabilities.max_fetch_ids))  # fmt: skip
    in_flight = _in_flight(ws, collection)
    is_active = ns.name == active_name

    def stale_kind(h: Record | None, r: Record) -> str | None:
        if h is None:
            return "missing"
        if newer_only and h.stamp.written_at >= r.stamp.written_at:
            return None
        return "stale" if needs_embedding(h, r, ns) else None

    def recheck_copies(ids: list[str]) -> dict[str, str]:
        truth = active_be.fetch(active_name, ids, with_text=False)
        dead = ws.manifest.tombstoned(collection, ids)
        have = be.fetch(ns.name, ids, with_text=False)
        out = {}
        for i in ids:
            if i in truth and i not in dead:
                kind = stale_kind(have.get(i), truth[i])
                if kind is not None:
                    out[i] = kind
        return out

    def recheck_extra(ids: list[str]) -> dict[str, str]:
        dead = ws.manifest.tombstoned(collection, ids)
        return dict.fromkeys((i for i in be.fetch(ns.name, ids, with_text=False) if i in dead),
                             "extra")

    def recheck_unexpected(ids: list[str]) -> dict[str, str]:
        truth = active_be.fetch(active_name, ids, with_text=False)
        dead = ws.manifest.tombstoned(collection, ids)
        return dict.fromkeys(
            (i for i in be.fetch(ns.name, ids, with_text=False)
             if i not in truth and i not in dead),
            "unexpected")

    def found(diverging: dict[str, str]) -> None:
        for i, kind in diverging.items():
            setattr(rep, kind, getattr(rep, kind) + 1)
            rep._note(kind, i)

    def check_page(page: ScanPage) -> None:
        """Pass 1 on one page of the active space (counts, second looks, repairs)."""
        ids = [r.id for r in page.records]
        dead = ws.manifest.tombstoned(collection, ids)
        have = (page.records if is_active
                else list(be.fetch(ns.name, ids, with_text=False).values()))
        have_map = {r.id: r for r in have}
        suspects: dict[str, str] = {}
        bad_stamps: list[str] = []
        for r in page.records:
            if r.id in dead:
                continue
            rep.expected += 1
            h = have_map.get(r.id)
            if h is not None:
                rep.present += 1
                if _bad_stamp(h, ns):
                    bad_stamps.append(r.id)  # no writer stamps wrongly: never in flight
                    continue
            if r.id in in_flight:
                continue
            if not is_active:
                kind = stale_kind(h, r)
                if kind is not None:
                    suspects[r.id] = kind
        found(dict.fromkeys(bad_stamps, "wrongly_stamped"))
        diverging = _second_look(ws, collection, suspects, recheck_copies)
        found(diverging)
        if repair and (bad_stamps or diverging):
            if is_active:
                delete_ids(ws, ns, bad_stamps)
                rep.repaired += len(bad_stamps)
            else:
                # re-read and re-checked after the write: a concurrent update or delete
                # of these documents wins over the copy of the active page read above
                rep.repaired += reconcile(ws, collection, ns, [*bad_stamps, *diverging])

    def active_pages() -> Iterator[ScanPage]:
        cursor: str | None = None
        while True:
            page = active_be.scan(active_name, cursor=cursor, limit=page_size, with_text=False)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # pass 1: every active document is here, fresh and correctly stamped. Where reads
    # are round trips to a server, the active space's next page is read in the
    # background while this page's copies are fetched and compared (the same reads,
    # overlapped); in-process engines read in turn (a thread only adds contention there)
    if active_be.capabilities.remote_reads or be.capabilities.remote_reads:
        with ReadAhead(active_pages, depth=2, name="verify-scan") as pages:
            for page in pages:
                check_page(page)
    else:
        for page in active_pages():
            check_page(page)
    # pass 2: nothing tombstoned is present
    after: str | None = None
    while True:
        ids = ws.manifest.tombstones(collection, after, page_size)
        if not ids:
            break
        after = ids[-1]
        present = [i for i in be.fetch(ns.name, ids, with_text=False) if i not in in_flight]
        extra = _second_look(ws, collection, dict.fromkeys(present, "extra"), recheck_extra)
        found(extra)
        if repair and extra:
            rep.repaired += reconcile(ws, collection, ns, list(extra))
    # pass 3: nothing here that the active space does not have. When every stored record
    # is already accounted for (present or extra) and nothing was repaired, the count
    # proves it without reading the namespace again.
    if rep.repaired == 0 and be.count(ns.name) == rep.present + rep.extra:
        rep.stored = rep.present + rep.extra
        return rep
    cursor: str | None = None
    while True:
        page = be.scan(ns.name, cursor=cursor, limit=page_size, with_text=False)
        rep.stored += len(page.records)
        if not is_active:
            ids = [r.id for r in page.records]
            truth = active_be.fetch(active_name, ids, with_text=False)
            dead = ws.manifest.tombstoned(collection, ids)
            odd = [i for i in ids if i not in truth and i not in dead and i not in in_flight]
            unexpected = _second_look(ws, collection, dict.fromkeys(odd, "unexpected"),
                                      recheck_unexpected)
            found(unexpected)
            if repair and unexpected:
                # checked again after the delete: one may have been written meanwhile
                rep.repaired += reconcile(ws, collection, ns, list(unexpected))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return rep


def backfill_lease(ns: NamespaceRow) -> str:
    """The name of the lease held by whoever writes a whole space: its backfill, or a
    ``verify --repair`` of it."""
    return f"backfill:{ns.name}"


def verify(
    ws: Workspace, collection: str, *, repair: bool = False, spaces: Sequence[str] | None = None
) -> list[VerifyReport]:
    """A consistency report for every live space of ``collection`` (those labelled in
    ``spaces``, when given).

    With ``repair``, what a killed writer left half-done is recovered first, then every
    divergence is fixed. A repair takes the backfill lease of each space it repairs, so it
    never re-embeds in parallel with a running backfill: it raises ``LeaseHeld`` (before
    anything is repaired) while another live process, or another call of this one,
    backfills one of them."""
    ws.manifest.require_collection(collection)
    _, live = ws.manifest.live_namespaces(collection)
    chosen = [ns for ns in live if spaces is None or ns.space_label in spaces]
    if not repair:
        return [verify_namespace(ws, collection, ns) for ns in chosen]
    with contextlib.ExitStack() as held:
        for ns in chosen:
            lease = backfill_lease(ns)
            holder = ws.manifest.acquire_lease(lease)
            if holder is not None:
                raise LeaseHeld(f"the backfill of {ns.space_label!r} in {collection!r}", holder)
            held.callback(ws.manifest.release_lease, lease)
        ws.recover(collection)
        out = []
        for ns in chosen:
            now = ws.manifest.namespace(ns.name)
            if now is None or now.state not in LIVE_STATES:
                continue  # failed (or dropped) meanwhile
            try:
                out.append(verify_namespace(ws, collection, now, repair=True))
            except CandidateFailed as e:
                # the active space was repaired; this candidate stopped receiving writes
                out.append(VerifyReport(now.space_label, now.name, "failed", failed=e.reason))
        return out
