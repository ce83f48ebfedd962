"""verify: compare a space with the active one (and the tombstones), optionally repairing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..runtime.collection import Collection
from ..runtime.workspace import Workspace
from ..store.sqlite import NamespaceRow, owner_alive
from ..types import Document, Record

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
