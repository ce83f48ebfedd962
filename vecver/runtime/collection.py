"""A collection: the user-facing name over one or more spaces. Writes go to every live
space (dual-write, tombstones first for deletes); reads are routed to one space.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import Backend, validate_ids
from ..errors import (
    InvalidId,
    InvalidInput,
    MissingText,
    StateError,
    UnknownSpace,
    WriteFailed,
)
from ..filters import Filter
from ..store.sqlite import LIVE_STATES, Manifest, NamespaceRow
from ..types import Document, Hit, Record, Stamp
from .retry import with_retry
from .sources import to_document

if TYPE_CHECKING:
    from .workspace import Workspace

log = logging.getLogger("vecver")


def _as_document(obj: Document | Mapping[str, Any], n: int) -> Document:
    """A document given to ``upsert``: a bad id is ``InvalidId``, a missing or empty text
    ``MissingText`` (as documented), the rest is checked by :func:`to_document`."""
    if isinstance(obj, (Document, Mapping)):
        doc_id = obj.id if isinstance(obj, Document) else obj.get("id")
        if isinstance(obj, Mapping) and isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id:
            raise InvalidId(doc_id)
        text = obj.text if isinstance(obj, Document) else obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise MissingText(doc_id)
    return to_document(obj, f"document #{n}")


@dataclass
class WriteResult:
    """What one upsert or delete call did."""

    documents: int
    spaces: list[str]


class Collection:
    """The user-facing collection: writes go to every live space, reads are routed."""

    def __init__(self, ws: Workspace, name: str) -> None:
        self.ws = ws
        self.name = name

    @property
    def backend(self) -> Backend:
        return self.ws.backend

    @property
    def manifest(self) -> Manifest:
        return self.ws.manifest

    # -- write path ---------------------------------------------------------------------

    def upsert(
        self,
        docs: Iterable[Document | Mapping[str, Any]],
        *,
        batch_size: int | None = None,
    ) -> WriteResult:
        """Embed and write documents into every live space of the collection.

        All input is checked before anything is written (``InvalidId``,
        ``DuplicateIds``, ``MissingText``, bad metadata); each batch is embedded for every
        live space before any of its writes. Idempotent by document id: writing the same
        document twice leaves one vector per space. On a backend failure it raises
        ``WriteFailed`` naming the space; the manifest keeps the intent, and the next
        :meth:`Workspace.recover` converges the spaces.
        """
        items = [_as_document(d, n) for n, d in enumerate(docs)]
        validate_ids([d.id for d in items])
        size = batch_size or self.ws.config.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        spaces: list[str] = []
        for i in range(0, len(items), size):
            spaces = self._upsert_batch(items[i : i + size])
        return WriteResult(len(items), spaces)

    def _records(self, ns: NamespaceRow, docs: Sequence[Document]) -> list[Record]:
        emb = self.ws.embedder(ns.space_label)
        vecs = emb.embed_documents([d.text for d in docs], [d.id for d in docs])
        fp = emb.space.fingerprint
        return [
            Record(d.id, v, d.text, dict(d.metadata), Stamp.now(fp, d.id, d.text))
            for d, v in zip(docs, vecs)
        ]

    def _write(self, ns: NamespaceRow, records: Sequence[Record]) -> None:
        max_batch = self.backend.capabilities.max_batch
        for i in range(0, len(records), max_batch):
            chunk = records[i : i + max_batch]
            with_retry(lambda c=chunk: self.backend.upsert(ns.name, c),  # type: ignore[misc]
                       what=f"upsert into {ns.name}")

    def _upsert_batch(self, docs: Sequence[Document]) -> list[str]:
        gen, live = self.manifest.live_namespaces(self.name)
        # embedded for every live space before the intent and before any write
        prepared = {ns.name: self._records(ns, docs) for ns in live}

        def write(ns: NamespaceRow) -> None:
            self._write(ns, prepared.get(ns.name) or self._records(ns, docs))

        return self._write_live(
            "upsert", [d.id for d in docs], gen, live, write,
            {d.id: d.source_hash for d in docs},
        )

    def delete(self, ids: Iterable[str]) -> WriteResult:
        """Delete documents from every live space; tombstones are recorded first, so
        a running backfill can never bring them back. Missing ids are ignored."""
        idl = list(ids)
        validate_ids(idl)
        gen, live = self.manifest.live_namespaces(self.name)

        def write(ns: NamespaceRow) -> None:
            with_retry(lambda: self.backend.delete(ns.name, idl), what=f"delete from {ns.name}")

        return WriteResult(len(idl), self._write_live("delete", idl, gen, live, write, None))

    def _write_live(
        self,
        op: str,
        ids: list[str],
        gen: int,
        live: list[NamespaceRow],
        write: Callable[[NamespaceRow], None],
        wrote: Mapping[str, str] | None,
    ) -> list[str]:
        """Apply ``write`` to every live space under one write intent (active first).

        If the set of live spaces changed meanwhile (a migration started), the new ones
        are written too before the intent closes. A failing space keeps the intent
        (marked failed, for :meth:`Workspace.recover`) and raises ``WriteFailed`` naming
        it — or the original ``InvalidInput`` when no space took the batch. Returns the
        labels of the spaces written."""
        intent = self.manifest.begin_write(self.name, op, ids)
        written: list[str] = []
        done: set[str] = set()
        while True:
            for ns in live:
                if ns.name in done:
                    continue
                try:
                    write(ns)
                except Exception as e:
                    self.manifest.fail_write(intent)
                    if isinstance(e, InvalidInput) and not written:
                        raise  # refused before any space took the batch
                    raise WriteFailed(ns.space_label, written, e) from e
                done.add(ns.name)
                written.append(ns.space_label)
            self._settle(ids, wrote)
            if self.manifest.end_write(intent, self.name, gen):
                return written
            # a space became live while we wrote: write it too
            gen, live = self.manifest.live_namespaces(self.name)

    def _settle(self, ids: Sequence[str], wrote: Mapping[str, str] | None) -> None:
        """After writing ``ids`` to every live space (``wrote``: id -> source hash, None
        for a delete), make the other spaces follow the active one where another writer
        changed these documents meanwhile.

        Writers write the active space first, but two writers of one document can still
        interleave (A writes the active space, B writes every space, A writes the rest),
        which would leave the spaces disagreeing for good. If the active space, re-read
        *after* our writes, no longer holds what we wrote, such a writer came after us
        there and maybe before us elsewhere: :meth:`sync` settles those documents."""
        _, live = self.manifest.live_namespaces(self.name)
        others = [ns for ns in live if ns.state != "active"]
        if not others or not ids:
            return
        truth = self.backend.fetch(self.manifest.active_namespace(self.name), list(ids))
        if wrote is None:
            changed = [i for i in ids if i in truth]
        else:
            changed = [
                i for i in ids if i not in truth or truth[i].stamp.source_hash != wrote[i]
            ]
        if changed:
            for ns in others:
                self.sync(ns, changed)

    def converge(self, ids: Sequence[str]) -> int:
        """Make every live space agree with the active space for ``ids``: tombstoned
        documents are deleted from the active space, then every other live space is
        synced to it (:meth:`sync`). Returns how many (space, document) pairs were fixed."""
        if not ids:
            return 0
        ids = list(dict.fromkeys(ids))
        _, live = self.manifest.live_namespaces(self.name)
        active = live[0]  # live_namespaces puts the active space first
        dead = sorted(self.manifest.tombstoned(self.name, ids) & set(
            self.backend.fetch(active.name, ids)))
        if dead:
            self.backend.delete(active.name, dead)
        return len(dead) + sum(self.sync(ns, ids) for ns in live[1:])

    def sync(self, ns: NamespaceRow, ids: Sequence[str], *, rounds: int = 8) -> int:
        """Make the live, non-active space ``ns`` agree with the active space for ``ids``:
        re-embed what is missing, stale (text or metadata) or wrongly stamped, delete what
        the active space does not have or what is tombstoned. Safe against concurrent
        writers: a writer may change a document between our read of the truth and our
        write, so each fix is checked again by a read *after* it (writers write the active
        space first and record tombstones before deleting, so that read sees any change
        our write could have undone), until a round finds nothing to do. Returns how many documents
        were fixed."""
        ids = list(dict.fromkeys(ids))
        touched: set[str] = set()
        for _ in range(rounds):
            if not ids:
                break
            active_name = self.manifest.active_namespace(self.name)
            if ns.name == active_name:
                break
            dead = self.manifest.tombstoned(self.name, ids)
            truth = {
                k: v for k, v in self.backend.fetch(active_name, ids).items() if k not in dead
            }
            have = self.backend.fetch(ns.name, ids)
            stale = [
                truth[i] for i in ids
                if i in truth and truth[i].text and (
                    i not in have
                    or have[i].stamp.source_hash != truth[i].stamp.source_hash
                    or have[i].metadata != truth[i].metadata
                    or have[i].stamp.fingerprint != ns.fingerprint
                    or have[i].stamp.doc_id != i
                )
            ]
            extra = [i for i in ids if i in have and i not in truth]
            if not stale and not extra:
                break
            if stale:
                docs = [Document(r.id, r.text or "", r.metadata) for r in stale]
                self._write(ns, self._records(ns, docs))
            if extra:
                with_retry(lambda e=extra: self.backend.delete(ns.name, e),  # type: ignore[misc]
                           what=f"delete from {ns.name}")
            ids = [r.id for r in stale] + extra
            touched.update(ids)
        return len(touched)

    # -- read path ----------------------------------------------------------------------

    def namespaces(self) -> list[NamespaceRow]:
        return self.manifest.namespaces(self.name)

    def route(self, route: str = "active") -> NamespaceRow:
        """The namespace a route reads from: ``active``, ``candidate`` (the newest
        building or ready space), or ``space:<label>``."""
        if route == "active":
            name = self.manifest.active_namespace(self.name)
            row = self.manifest.namespace(name)
            assert row is not None
            return row
        rows = self.namespaces()
        if route == "candidate":
            cands = [n for n in rows if n.state in ("ready", "building")]
            if not cands:
                raise StateError(
                    f"collection {self.name!r} has no candidate space",
                    hint=f"start one with `vecver migrate {self.name} --to SPACE`",
                )
            return max(cands, key=lambda n: n.created_at)
        if route.startswith("space:"):
            label = route[len("space:"):]
            for n in rows:
                if n.space_label == label and n.state in LIVE_STATES:
                    return n
            raise UnknownSpace(label, [n.space_label for n in rows if n.state in LIVE_STATES])
        raise InvalidInput(
            f"unknown route {route!r}", hint="use active, candidate or space:<label>"
        )

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        route: str = "active",
        filter: Filter | Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """The ``k`` nearest documents to ``query`` in the routed space. Each hit names
        the space that served it. The query is embedded with that space's own embedder:
        a query is never compared with vectors of another space."""
        return self.search_many([query], k, route=route, filter=filter)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        route: str = "active",
        filter: Filter | Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        if isinstance(queries, str):
            raise InvalidInput("search_many takes a list of queries")
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise InvalidInput("a query must be a non-empty string")
        ns = self.route(route)
        emb = self.ws.embedder(ns.space_label)
        if emb.space.fingerprint != ns.fingerprint:
            raise StateError(
                f"space {ns.space_label!r} now resolves to another fingerprint than its "
                "namespace holds",
            )
        qv = emb.embed_queries(list(queries))
        flt = Filter.parse(filter) if filter is not None else None
        results = self.backend.search(ns.name, qv, k, filter=flt)
        for hits in results:
            for h in hits:
                h.space = ns.space_label
                h.namespace = ns.name
        return results

    def search_vectors(
        self, vectors: np.ndarray, k: int, *, space: str, filter: Filter | None = None
    ) -> list[list[Hit]]:
        """Search with precomputed query vectors of ``space`` (they must come from that
        space's embedder; the dimension is checked, the geometry cannot be)."""
        ns = self.route(f"space:{space}")
        results = self.backend.search(ns.name, vectors, k, filter=filter)
        for hits in results:
            for h in hits:  # like search(): each hit names the space that served it
                h.space = ns.space_label
                h.namespace = ns.name
        return results

    def get(self, ids: Sequence[str], *, route: str = "active") -> dict[str, Record]:
        return self.backend.fetch(self.route(route).name, list(ids))

    def count(self, route: str = "active") -> int:
        return self.backend.count(self.route(route).name)
