"""A collection: the user-facing name over one or more spaces. Writes go to every live
space (dual-write, tombstones first for deletes); reads are routed (:mod:`vecver.read`).

Input rules of the write path (each refused with a typed error before anything is
written):

- a document is a :class:`~vecver.types.Document` or a mapping ``{"id", "text",
  "metadata"?}`` (the same rule as a JSONL line, see :func:`~vecver.runtime.sources.
  to_document`);
- an id is a non-empty string; nothing is coerced: an integer, float, boolean or null id
  is ``InvalidId``;
- a text is a string with something besides white space: a missing, null, empty or blank
  text is ``MissingText``; a text of another type (a number) is ``InvalidInput`` "text
  must be a string"; an id or text that is not Unicode text (a lone surrogate) is
  ``SourceError``, as in a JSONL file;
- ``batch_size`` is None (the configured size) or a positive integer (``InvalidArgument``);
- ``delete`` takes an iterable of ids, not one string (``InvalidArgument``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import Backend, validate_ids
from ..backends.external import check_adopted_writes
from ..drift.reservoir import observe_written
from ..errors import (
    CandidateFailed,
    InvalidArgument,
    InvalidId,
    InvalidInput,
    MissingText,
    WriteFailed,
)
from ..filters import Filter
from ..lifecycle import is_live
from ..read.routes import ReadPlan, Route
from ..read.searcher import LazyMode, RerankHook, Searcher
from ..store.base import ManifestStore
from ..store.sqlite import NamespaceRow
from ..types import Document, Hit, Record
from .reconcile import (
    delete_ids,
    embed_or_fail,
    fail_if_missing,
    reconcile,
    write_records,
)
from .sources import check_storable, to_document

if TYPE_CHECKING:
    from ..read.metrics import CollectionStats
    from .workspace import Workspace

log = logging.getLogger("vecver")


def _as_document(obj: Document | Mapping[str, Any], n: int) -> Document:
    """A document given to ``upsert``, checked by the rules of the module docstring: a
    bad id is ``InvalidId``, a missing or blank text ``MissingText``, a text that is not
    a string ``InvalidInput``; the rest by :func:`to_document` and
    :func:`check_storable` (``SourceError``)."""
    if isinstance(obj, (Document, Mapping)):
        doc_id = obj.id if isinstance(obj, Document) else obj.get("id")
        if not isinstance(doc_id, str) or not doc_id:
            reason = (f"an id is a string, not {type(doc_id).__name__} (nothing is coerced)"
                      if doc_id is not None and not isinstance(doc_id, str) else None)
            raise InvalidId(doc_id, reason)
        text = obj.text if isinstance(obj, Document) else obj.get("text")
        if text is None or (isinstance(text, str) and not text.strip()):
            raise MissingText(doc_id)
        if not isinstance(text, str):
            raise InvalidInput(
                f"text of document {doc_id!r} must be a string, got {type(text).__name__}",
                hint="nothing was written",
            )
    doc = to_document(obj, f"document #{n}")
    check_storable(doc, f"document #{n}")
    return doc


def check_batch_size(batch_size: object) -> None:
    """Refuse a batch size that is not None or a positive integer (``InvalidArgument``):
    0 would otherwise silently mean "the default"."""
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise InvalidArgument("batch_size", batch_size, "a positive integer")


def check_id_list(ids: object, what: str = "ids") -> list[str]:
    """The ids of a call that takes several (``delete``, ``get``) as a list: one string
    (or bytes) is refused (``InvalidArgument``) rather than taken as its characters; each
    id is checked by ``validate_ids`` (``InvalidId``, ``DuplicateIds``)."""
    if isinstance(ids, (str, bytes)):
        raise InvalidArgument(what, ids, f"a list of ids (for one id, pass [{ids!r}])")
    if not isinstance(ids, Iterable):
        raise InvalidArgument(what, ids, "a list of ids")
    idl = list(ids)
    validate_ids(idl)
    return idl


def probe_space(ws: Workspace, label: str, docs: Sequence[Document]) -> None:
    """Embed ``docs`` in space ``label`` and throw the vectors away, recording nothing
    (the space is not registered, no collection is created). A first ``ingest`` into a
    new collection calls it on its first batch before it creates the collection, so that
    a broken space refuses the ingest whole. Raises what the space's embedder raises."""
    from ..embedders import SpaceEmbedder

    emb = SpaceEmbedder.for_spec(ws.space_spec(label))
    try:
        emb.embed_documents([d.text for d in docs], [d.id for d in docs])
    finally:
        emb.embedder.close()


@dataclass
class WriteResult:
    """What one upsert or delete call did.

    ``spaces``: the labels of the spaces written. ``failed``: candidate spaces (being
    built or ready) whose embedder broke, or whose namespace was gone, during this call;
    each was marked ``failed`` (it no longer receives writes, see ``reasons``) while the
    write went on to the active space. A warning is logged as well; the call itself
    succeeded."""

    documents: int
    spaces: list[str]
    failed: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def note_failed(self, space: str, reason: str) -> None:
        """Record that candidate ``space`` was marked failed during this call."""
        self.failed.append(space)
        self.reasons[space] = reason


class Collection:
    """The user-facing collection: writes go to every live space, reads are routed."""

    def __init__(self, ws: Workspace, name: str) -> None:
        self.ws = ws
        self.name = name

    @property
    def backend(self) -> Backend:
        """The default backend instance (a namespace's own is ``ws.backend_for(ns)``)."""
        return self.ws.backend

    @property
    def manifest(self) -> ManifestStore:
        return self.ws.manifest

    # -- write path ---------------------------------------------------------------------

    def upsert(
        self,
        docs: Iterable[Document | Mapping[str, Any]],
        *,
        batch_size: int | None = None,
    ) -> WriteResult:
        """Embed and write documents into every live space of the collection.

        All input is checked before anything is written (see the module docstring for the
        rules: ``InvalidId``, ``DuplicateIds``, ``MissingText``, ``InvalidInput``, bad
        metadata, ``InvalidArgument``); each batch is embedded for every live space before
        any of its writes, so an embedder failure of the active space writes nothing.
        An embedder failure of a space being built does not fail the call: that space is
        marked ``failed`` and named in ``WriteResult.failed``. Idempotent by document id:
        writing the same document twice leaves one vector per space. On a backend failure
        it raises ``WriteFailed`` naming the space; the manifest keeps the intent, and the
        next :meth:`Workspace.recover` reconciles the spaces.
        """
        check_batch_size(batch_size)
        if isinstance(docs, (str, bytes, Mapping, Document)):
            raise InvalidArgument("docs", docs, "a list of documents")
        items = [_as_document(d, n) for n, d in enumerate(docs)]
        validate_ids([d.id for d in items])
        size = batch_size or self.ws.config.batch_size
        result = WriteResult(len(items), [])
        for i in range(0, len(items), size):
            result.spaces = self._upsert_batch(items[i : i + size], result)
        return result

    def _upsert_batch(self, docs: Sequence[Document], result: WriteResult) -> list[str]:
        gen, live = self.manifest.live_namespaces(self.name)
        # embedded for every live space before the intent and before any write; a broken
        # candidate is marked failed (and leaves the live set) here
        prepared: dict[str, list[Record]] = {}
        for ns in live:
            recs = self._embed(ns, docs, result)
            if recs is not None:
                prepared[ns.name] = recs
        if len(prepared) < len(live):
            gen, live = self.manifest.live_namespaces(self.name)

        def write(ns: NamespaceRow) -> bool:
            recs = prepared.get(ns.name)
            if recs is None:  # became live while we wrote
                recs = self._embed(ns, docs, result)
                if recs is None:
                    return False
            write_records(self.ws, ns, recs)
            observe_written(self.ws, self.name, ns, recs)  # drift reference sample
            return True

        return self._write_live("upsert", [d.id for d in docs], gen, live, write,
                                {d.id: d.source_hash for d in docs}, result)

    def _embed(
        self, ns: NamespaceRow, docs: Sequence[Document], result: WriteResult
    ) -> list[Record] | None:
        """The records of ``docs`` in ``ns``'s space; None when ``ns`` is a candidate whose
        embedder broke (it is marked failed, and noted in ``result``)."""
        try:
            return embed_or_fail(self.ws, self.name, ns, docs)
        except CandidateFailed as e:
            result.note_failed(e.space, e.reason)
            return None

    def delete(self, ids: Iterable[str]) -> WriteResult:
        """Delete documents from every live space; tombstones are recorded first, so
        a running backfill can never bring them back. Missing ids are ignored. ``ids`` is
        a list (or other iterable) of ids: one string is refused (``InvalidArgument``)."""
        idl = check_id_list(ids)
        gen, live = self.manifest.live_namespaces(self.name)
        result = WriteResult(len(idl), [])

        def write(ns: NamespaceRow) -> bool:
            delete_ids(self.ws, ns, idl)
            return True

        result.spaces = self._write_live("delete", idl, gen, live, write, None, result)
        return result

    def _write_live(
        self,
        op: str,
        ids: list[str],
        gen: int,
        live: list[NamespaceRow],
        write: Callable[[NamespaceRow], bool],
        wrote: Mapping[str, str] | None,
        result: WriteResult,
    ) -> list[str]:
        """Apply ``write`` to every live space under one write intent (active first).

        If the set of live spaces changed meanwhile (a migration started, a candidate
        failed), the new set is written before the intent closes. ``write`` returns False
        for a candidate that failed instead of being written. A failing backend keeps the
        intent (marked failed, for :meth:`Workspace.recover`) and raises ``WriteFailed``
        naming the space — or the original ``InvalidInput`` when no space took the
        batch. Returns the labels of the spaces written. An adopted collection among the
        live spaces that would refuse the write refuses it first (``AdoptedReadOnly``,
        ``InvalidId``), before the intent."""
        check_adopted_writes([ns.layout for ns in live], ids, op)
        intent = self.manifest.begin_write(self.name, op, ids)
        written: list[str] = []
        done: set[str] = set()
        while True:
            for ns in live:
                if ns.name in done:
                    continue
                try:
                    took = write(ns)
                except Exception as e:
                    if self._left_live_set(ns):
                        # aborted or failed while we wrote it: not a write of this call
                        done.add(ns.name)
                        continue
                    if self._fail_if_gone(ns, e, result):
                        # a candidate whose namespace was deleted outside vecver: marked
                        # failed, it leaves the live set; the active space takes the write
                        done.add(ns.name)
                        continue
                    self.manifest.fail_write(intent)
                    if isinstance(e, InvalidInput) and not written:
                        raise  # refused before any space took the batch
                    raise WriteFailed(ns.space_label, written, e) from e
                done.add(ns.name)
                if took:
                    written.append(ns.space_label)
            self._reconcile_raced(ids, wrote, result)
            if self.manifest.end_write(intent, self.name, gen):
                return written
            # the live set changed while we wrote: write the new ones too
            gen, live = self.manifest.live_namespaces(self.name)

    def _fail_if_gone(self, ns: NamespaceRow, error: Exception, result: WriteResult) -> bool:
        """:func:`~vecver.runtime.reconcile.fail_if_missing`, noted in ``result``."""
        reason = fail_if_missing(self.ws, self.name, ns, error)
        if reason is None:
            return False
        result.note_failed(ns.space_label, reason)
        return True

    def _left_live_set(self, ns: NamespaceRow) -> bool:
        """Whether the non-active ``ns`` is no longer live (an ``abort`` dropped it, or it
        failed) — its namespace may be gone, and writes to it no longer matter."""
        if ns.state == "active":
            return False
        now = self.manifest.namespace(ns.name)
        return now is None or not is_live(now.state)

    def _reconcile_raced(
        self, ids: Sequence[str], wrote: Mapping[str, str] | None, result: WriteResult
    ) -> None:
        """After writing ``ids`` to every live space (``wrote``: id -> source hash, None
        for a delete), reconcile the other spaces where another writer changed these
        documents meanwhile.

        Writers write the active space first, but two writers of one document can still
        interleave (A writes the active space, B writes every space, A writes the rest),
        which would leave the spaces disagreeing for good. If the active space, re-read
        *after* our writes, no longer holds what we wrote, such a writer came after us
        there and maybe before us elsewhere: :func:`reconcile` settles those documents."""
        _, live = self.manifest.live_namespaces(self.name)
        others = [ns for ns in live if ns.state != "active"]
        if not others or not ids:
            return
        active_name = self.manifest.active_namespace(self.name)
        truth = self.ws.backend_for(active_name).fetch(active_name, list(ids))
        if wrote is None:
            changed = [i for i in ids if i in truth]
        else:
            changed = [
                i for i in ids if i not in truth or truth[i].stamp.source_hash != wrote[i]
            ]
        for ns in others if changed else ():
            try:
                reconcile(self.ws, self.name, ns, changed)
            except CandidateFailed as e:
                result.note_failed(e.space, e.reason)

    # -- read path ----------------------------------------------------------------------
    # Reads go through one Searcher per handle (vecver.read.searcher): it resolves the
    # route, embeds, checks the fingerprint rule, searches and labels every hit.

    @property
    def searcher(self) -> Searcher:
        """The read path of this collection handle (routes, embedding, fingerprint rule),
        made on first use."""
        found: Searcher | None = self.__dict__.get("_searcher")
        if found is None:
            found = self.__dict__.setdefault("_searcher", Searcher(self.ws, self.name))
        return found

    def namespaces(self) -> list[NamespaceRow]:
        """Every namespace of the collection (all states), oldest first."""
        return self.manifest.namespaces(self.name)

    def route(self, route: str | Route = "active", *,
              routing_key: str | None = None) -> NamespaceRow:
        """The namespace a route reads from now: ``active``, ``candidate`` (the newest
        building or ready space), ``space:<label>`` (a live space), ``canary:P`` for the
        caller with ``routing_key``, or a :class:`~vecver.read.routes.Route`. Raises
        ``InvalidInput`` (unknown route, or one reading several namespaces),
        ``RoutingKeyRequired``, ``StateError`` (no candidate) or ``UnknownSpace``."""
        return self.searcher.route(route, routing_key=routing_key)

    def read_plan(self, route: str | Route = "active", *,
                  routing_key: str | None = None) -> ReadPlan:
        """The read plan ``route`` resolves to now (namespaces and their roles), for the
        caller with ``routing_key`` (``canary``)."""
        return self.searcher.plan(route, routing_key=routing_key)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        route: str | Route = "active",
        filter: Filter | Mapping[str, Any] | None = None,
        routing_key: str | None = None,
        lazy: LazyMode | None = None,
        rerank_hook: RerankHook | None = None,
        hook_top_n: int | None = None,
    ) -> list[Hit]:
        """The ``k`` nearest documents to ``query`` along ``route``, best first. Each hit
        names the space and namespace that served it. The query is embedded with that
        space's own embedder: a query is never compared with vectors of another space.

        ``route``: ``active``, ``candidate``, ``space:LABEL``, ``dual[:rrf|zscore|minmax]``,
        ``shadow``, ``canary[:P]`` (needs ``routing_key``, a user or session id: one key
        always reads one space), ``rerank[:K]``, or a :class:`~vecver.read.routes.Route`.
        ``lazy``: ``"sync"`` lets read observers (lazy re-embedding) write missing
        documents before returning and reads again; ``"async"``/None never waits for
        them. ``rerank_hook(query, texts) -> scores`` re-ranks the top ``hook_top_n``.
        Input rules and errors: :mod:`vecver.read.searcher`."""
        return self.searcher.search_many(
            [query], k, route=route, filter=filter, routing_key=routing_key, lazy=lazy,
            rerank_hook=rerank_hook, hook_top_n=hook_top_n)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        route: str | Route = "active",
        filter: Filter | Mapping[str, Any] | None = None,
        routing_key: str | None = None,
        lazy: LazyMode | None = None,
        rerank_hook: RerankHook | None = None,
        hook_top_n: int | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for a list of queries, in one backend call per space; one list of
        hits per query, in order."""
        return self.searcher.search_many(
            queries, k, route=route, filter=filter, routing_key=routing_key, lazy=lazy,
            rerank_hook=rerank_hook, hook_top_n=hook_top_n)

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int,
        *,
        space: str,
        filter: Filter | Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        """Search with precomputed query vectors of ``space``. They must come from that
        space's embedder: the space's current fingerprint must be its namespace's
        (``FingerprintMismatch``), the backend checks the dimension and values."""
        return self.searcher.search_vectors(vectors, k, space=space, filter=filter)

    def get(self, ids: Sequence[str], *, route: str | Route = "active") -> dict[str, Record]:
        """The stored records of ``ids`` along ``route`` (missing ids are left out, a
        repeated id is returned once). Input rules: :meth:`Searcher.get`."""
        return self.searcher.get(ids, route=route)

    def count(self, route: str | Route = "active") -> int:
        """How many documents the namespace ``route`` reads holds."""
        return self.searcher.count(route)

    def stats(self) -> CollectionStats:
        """The read-path metrics of this collection (queries and latency per route,
        mixed-version rate, hits per space, lazy queue, backfill progress), counts not yet
        flushed included: :func:`vecver.read.metrics.stats`."""
        from ..read.metrics import stats

        return stats(self.ws, self.name)
