"""The backend protocol: the small synchronous surface every vector database maps onto.

A backend stores *namespaces*; each namespace holds the vectors of exactly one space (one
fingerprint, one dimension, one metric). Everything else — dual-write, backfill, routing,
cutover — lives in the core and is written once.

The public methods of :class:`Backend` are concrete and enforce the rules themselves (they
are template methods): each checks that the backend is open, validates its input
(:mod:`vecver.backends.validate`) against the namespace's spec and the backend's declared
:class:`Capabilities`, cuts long inputs into chunks of the declared limits, calls a small
``_method`` that the backend implements, and — for a backend declaring
``consistency="eventual"`` — waits until the write is visible. A backend therefore never
sees a closed-backend call, a bad batch, an unsupported filter or a list longer than it
declared.

Implementing a backend means subclassing :class:`Backend`, declaring ``name`` and
``capabilities`` as class attributes and implementing eight methods:
:meth:`~Backend._create_namespace`, :meth:`~Backend._describe_namespace`,
:meth:`~Backend._list_namespaces`, :meth:`~Backend._drop_namespace`,
:meth:`~Backend._upsert`, :meth:`~Backend._delete`, :meth:`~Backend._fetch` and
:meth:`~Backend._scan`. Built on top of them, and worth overriding where the database does
better: :meth:`~Backend._search` (exact search by scan), :meth:`~Backend._count` (count by
scan), :meth:`~Backend._storage_estimate`, and :meth:`~Backend._fetch_without_text` /
:meth:`~Backend._scan_without_text` (reads of ids, stamps and metadata only, for a
verification; default: the full read, text dropped); with native aliases, ``_set_alias``,
``_get_alias`` and ``_drop_alias``. The backend's knowledge of its database is declared
here too: :meth:`~Backend.physical_name` and :meth:`~Backend.check_namespace_name` (its
naming rule) and :meth:`~Backend.score_from_distance` (its score convention).
Register the class under the ``vecver.backends`` entry-point group; the shared compliance
suite in :mod:`vecver.testing` checks the contract.

Adopted collections (``vecver adopt``; the data and the codec are in
:mod:`vecver.backends.external`): a collection other code filled becomes a namespace once
:meth:`~Backend.attach` gave the backend its :class:`~vecver.backends.external.Layout`.
Every public method then reads and writes it through the one codec over a few raw hooks,
which a backend implements to support adoption: :meth:`~Backend._describe_external`,
:meth:`~Backend._scan_external`, :meth:`~Backend._get_external`,
:meth:`~Backend._put_external`, :meth:`~Backend._delete_external` and
:meth:`~Backend._search_external`; :meth:`~Backend._find_external` (objects by the value
of a payload field, default: a full scan) and :meth:`~Backend._count_external` (default: a
scan) are worth overriding. Without them, ``describe_external`` raises
``NotImplementedError`` and adopt says the backend cannot adopt.
"""

from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import (
    AdoptedIdDuplicated,
    AdoptedProtected,
    AdoptedReadOnly,
    BackendClosed,
    BackendError,
    InvalidInput,
    InvalidNamespaceName,
    NamespaceExists,
    NamespaceNotFound,
    WriteNotVisible,
)
from ..filters import Filter
from ..types import Hit, Matrix, Metric, NamespaceSpec, Record, ScanPage, Stamp
from .capabilities import Capabilities
from .external import (
    ExternalCollection,
    Key,
    Layout,
    RawPoint,
    check_metadata,
    decode,
    doc_id_of,
    encode,
    native_key,
    new_key,
    write_key,
)
from .validate import (
    check_filter,
    check_id,
    check_ids_argument,
    json_safe_metadata,
    validate_ids,
    validate_k,
    validate_limit,
    validate_queries,
    validate_records,
    validate_spec,
)

__all__ = [
    "Backend",
    "Capabilities",
    "PendingWrite",
    "ExternalCollection",
    "Layout",
    "RawPoint",
    "attach_layout",
    "exact_scores",
    "json_safe_metadata",
    "validate_ids",
    "validate_limit",
    "validate_queries",
    "validate_records",
]

_SCAN_PAGE = 1000
_NAME_MAX_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Backend(ABC):
    """Base class of every backend.

    Contract of every public method: it raises :class:`~vecver.errors.BackendClosed` after
    :meth:`close`, :class:`~vecver.errors.NamespaceNotFound` for a namespace that does not
    exist (also with an empty batch or id list), a subclass of
    :class:`~vecver.errors.InvalidInput` for bad input before anything is written, and
    :class:`~vecver.errors.TransientBackendError` for failures that may succeed when
    retried (the core retries those with backoff).

    Read-your-writes: once :meth:`upsert` or :meth:`delete` returns, :meth:`fetch`,
    :meth:`scan`, :meth:`count` and :meth:`search` of the same namespace on the same
    backend object reflect the write (the core's dual-write, backfill and verify rely on
    it). A strongly consistent backend gives this by itself; for one declaring
    ``consistency="eventual"`` the base waits for the write to become visible (it polls
    :meth:`_fetch` with backoff) for at most ``capabilities.visibility_timeout`` seconds
    and otherwise raises :class:`~vecver.errors.WriteNotVisible` — never a silent miss.
    :meth:`upsert_deferred` splits that wait off: it returns a :class:`PendingWrite` whose
    ``confirm`` waits (the backfill overlaps it with its next writes, and checkpoints only
    confirmed ones). A backend that can confirm visibility more cheaply than by polling
    ``fetch`` (a log position the database reports) overrides :meth:`_visibility_mark`
    and :meth:`_await_visible`.
    """

    name: ClassVar[str] = "abstract"
    capabilities: ClassVar[Capabilities] = Capabilities()

    @classmethod
    def default_options(cls, base_dir: Path, instance: str = "default") -> dict[str, Any]:
        """Options this backend needs that a config may leave out, for the backend
        instance called ``instance`` of a config whose relative paths are relative to
        ``base_dir``. The config's own options win over these. Distinct instances must
        get distinct defaults where they would otherwise share storage. None by default."""
        return {}

    def __init__(self) -> None:
        self._closed = False
        self._layouts: dict[str, Layout] = {}

    # -- what the backend knows about its database ------------------------------------

    @classmethod
    def physical_name(cls, collection: str, space_label: str, fingerprint: str) -> str:
        """The namespace name of one space of one collection on this database.

        Deterministic, and never equal to a collection name (collection names are the
        aliases). The default is ``vv_{collection}__{label}_{fingerprint[:8]}`` with every
        character of the label that is not a letter or digit replaced by ``_``; a database
        with a stricter rule (Pinecone index names, Weaviate class names) overrides it.
        Distinct inputs can meet (``a__b`` + ``c`` and ``a`` + ``b__c``; labels ``v-2`` and
        ``v_2`` of one geometry): the core checks the result with
        :meth:`check_namespace_name`, and against the names the manifest records for other
        spaces (``NamespaceNameTaken``), before creating anything."""
        label = re.sub(r"[^A-Za-z0-9]", "_", space_label)
        return f"vv_{collection}__{label}_{fingerprint[:8]}"

    @classmethod
    def check_namespace_name(cls, name: object) -> None:
        """Raise :class:`~vecver.errors.InvalidNamespaceName` unless this database can hold
        a namespace called ``name``. Called by :meth:`create_namespace` before anything is
        created. The default accepts any non-empty string of valid Unicode without control
        characters, of at most 255 bytes of UTF-8."""
        if not isinstance(name, str) or not name:
            raise InvalidNamespaceName(name, cls.name, "it must be a non-empty string")
        if _CONTROL.search(name):
            raise InvalidNamespaceName(name, cls.name, "it contains a control character")
        try:
            size = len(name.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidNamespaceName(name, cls.name, "it is not valid Unicode") from None
        if size > _NAME_MAX_BYTES:
            raise InvalidNamespaceName(
                name, cls.name, f"it is {size} bytes long, at most {_NAME_MAX_BYTES} allowed"
            )

    @classmethod
    def score_from_distance(cls, metric: Metric, distance: Any) -> Any:
        """Map what the database returns for a hit (a float or a numpy array of them) to
        vecver's score convention (higher is closer: cosine similarity for ``cosine``,
        inner product for ``dot``, negative squared euclidean distance for ``l2``).

        The default is the identity, for a database that returns such scores already; a
        backend whose database returns distances overrides it."""
        return distance

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Release resources. Idempotent. Every later call raises ``BackendClosed``."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise BackendClosed(self.name)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- namespaces (public, enforced) ------------------------------------------------

    def create_namespace(self, spec: NamespaceSpec) -> None:
        """Create a namespace. Idempotent when one with the same dimension, metric and
        fingerprint exists (its records are kept); raises ``NamespaceExists`` when it
        exists with others, ``InvalidNamespaceName`` when the database cannot hold that
        name and ``InvalidInput`` for a malformed spec — both before anything is created."""
        self._check_open()
        validate_spec(spec)
        adopted = self._adopted(spec.name)
        if adopted is not None:
            have = self._adopted_spec(adopted)
        else:
            self.check_namespace_name(spec.name)
            have = self._create_namespace(spec)
        if have != spec:
            raise NamespaceExists(
                spec.name,
                f"dimension {have.dimension}, metric {have.metric}, "
                f"fingerprint {have.fingerprint[:12]}",
            )

    def describe_namespace(self, name: str) -> NamespaceSpec:
        """The spec a namespace was created with."""
        self._check_open()
        return self._spec(name)

    def list_namespaces(self) -> list[str]:
        """Names of all namespaces, sorted (aliases are not namespaces)."""
        self._check_open()
        return sorted(self._list_namespaces())

    def drop_namespace(self, name: str) -> None:
        """Delete a namespace and everything in it. Idempotent. An adopted collection is
        never dropped (``AdoptedProtected``)."""
        self._check_open()
        if self._adopted(name) is not None:
            raise AdoptedProtected(name)
        if isinstance(name, str) and name:
            self._drop_namespace(name)

    # -- data (public, enforced) ------------------------------------------------------

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        """Insert or replace records by id (a replacement replaces the whole record:
        vector, text, metadata, stamp).

        The whole batch is validated first (``InvalidId``, ``DuplicateIds``,
        ``DimensionMismatch``, ``NonFiniteVector``, ``ZeroVector``, ``StampMismatch``,
        ``UnsupportedMetadata``, ``LimitExceeded``, ``InvalidInput``): on bad input
        nothing is written. The batch is then written in chunks of
        ``capabilities.max_batch`` records, in order, each chunk all-or-nothing; so a call
        of at most ``max_batch`` records is all-or-nothing, and after a failure of a
        longer one, the chunks before the failing one are written (writes are idempotent:
        retry the call). Durable and visible to reads when it returns."""
        self._check_open()
        if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
            raise InvalidInput(f"records must be a list of Record, got {type(records).__name__}")
        self._write_records(namespace, list(records)).confirm()

    def upsert_deferred(self, namespace: str, records: Sequence[Record]) -> PendingWrite:
        """:meth:`upsert`, except that it returns once the database has accepted the
        write, before the write is known to be visible to reads: the returned
        :class:`PendingWrite`'s :meth:`~PendingWrite.confirm` does the read-your-writes
        wait :meth:`upsert` does before returning (``WriteNotVisible`` when it times out).

        Until ``confirm`` returned, reads of these records through this object may not
        reflect the write yet, and the caller must not rely on them (nor record anywhere
        that they are in the namespace: a backfill advances its checkpoint only past
        confirmed writes). Confirming later lets a caller overlap the database's lag with
        its next write. On a backend declaring ``consistency="strong"`` (and for an
        adopted collection) the write is confirmed before this returns, so ``confirm``
        is free. Validation, chunking and errors are those of :meth:`upsert`."""
        self._check_open()
        if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
            raise InvalidInput(f"records must be a list of Record, got {type(records).__name__}")
        return self._write_records(namespace, list(records))

    def _write_records(self, namespace: str, records: list[Record]) -> PendingWrite:
        """Validate and write ``records`` (see :meth:`upsert`); the visibility wait of an
        eventual backend is the returned write's ``confirm``."""
        if not records:
            self._spec(namespace)
            return PendingWrite.done(namespace)
        adopted = self._adopted(namespace)
        if adopted is not None:
            self._adopted_upsert(adopted, records)  # it waits itself
            return PendingWrite.done(namespace)
        spec = self._input_spec(namespace)
        caps = self.capabilities
        vectors = validate_records(spec, records, caps, self.name)
        step = caps.max_batch
        for start in range(0, len(records), step):
            self._upsert(namespace, records[start : start + step], vectors[start : start + step])
        if caps.consistency != "eventual":
            return PendingWrite.done(namespace)
        return PendingWrite(self, namespace, "upsert", {r.id: r.stamp for r in records}, 0.0,
                            self._visibility_mark(namespace))

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete records by id; ids that are not present are ignored. Raises
        ``InvalidId`` / ``DuplicateIds`` / ``InvalidInput`` (a single string instead of a
        list) before anything is deleted. Deleted in chunks of
        ``capabilities.max_delete_ids``. Durable and visible to reads when it returns."""
        self._check_open()
        idl = check_ids_argument(ids)
        validate_ids(idl)
        if not idl:
            self._spec(namespace)
            return
        if not isinstance(namespace, str):
            raise NamespaceNotFound(namespace)
        adopted = self._adopted(namespace)
        if adopted is not None:
            self._adopted_delete(adopted, idl)
            return
        since = time.time()
        step = self.capabilities.max_delete_ids
        for start in range(0, len(idl), step):
            self._delete(namespace, idl[start : start + step])
        if self.capabilities.consistency == "eventual":
            self._await_visible(namespace, "delete", dict.fromkeys(idl), since,
                                self._visibility_mark(namespace))

    def fetch(
        self,
        namespace: str,
        ids: Sequence[str],
        *,
        with_vectors: bool = False,
        with_text: bool = True,
    ) -> dict[str, Record]:
        """Records for the ids that are present (absent ids are left out; a repeated id
        is fetched once). Raises ``InvalidId`` for an id that cannot exist (empty, not a
        string, NUL, invalid Unicode) and ``InvalidInput`` for a single string. Vectors
        (float32 arrays) only with ``with_vectors``; the records are the caller's to
        mutate. Fetched in chunks of ``capabilities.max_fetch_ids``.

        ``with_text=False`` is for a caller that needs only ids, stamps and metadata (a
        verification compares stamps: the source hash stands for the text): every
        record's ``text`` is then None, everything else is as with the text, and a
        backend whose database can leave the text out of its answer reads less
        (:meth:`_fetch_without_text`)."""
        self._check_open()
        idl = list(dict.fromkeys(check_id(i) for i in check_ids_argument(ids)))
        if not idl:
            self._spec(namespace)
            return {}
        if not isinstance(namespace, str):
            raise NamespaceNotFound(namespace)
        adopted = self._adopted(namespace)
        if adopted is not None:
            # the codec derives an adopted record's stamp from its text: read it, drop it
            got = self._adopted_fetch(adopted, idl, bool(with_vectors))
            return got if with_text else _without_text(got)
        read = self._fetch if with_text else self._fetch_without_text
        step = self.capabilities.max_fetch_ids
        if len(idl) <= step:
            out = read(namespace, idl, bool(with_vectors))
        else:
            out = {}
            for start in range(0, len(idl), step):
                out.update(read(namespace, idl[start : start + step], bool(with_vectors)))
        return out if with_text else _without_text(out)

    def scan(
        self,
        namespace: str,
        *,
        cursor: str | None = None,
        limit: int = 256,
        with_vectors: bool = False,
        with_text: bool = True,
    ) -> ScanPage:
        """One page of all records in a stable order. ``cursor`` is the previous page's
        ``next_cursor`` (an opaque string that stays valid across processes and restarts);
        records written behind the cursor after it was issued may be missed, records
        present for the whole scan are returned exactly once; ``next_cursor`` is None
        after the last page. Raises ``InvalidInput`` when ``limit < 1`` or ``cursor`` is
        not a string. ``with_text=False``: as for :meth:`fetch` (every ``text`` None; the
        order and the cursors are those of a scan with the text, and interchangeable
        with them; :meth:`_scan_without_text`)."""
        self._check_open()
        validate_limit(limit)
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidInput(f"cursor must be a string from a previous page, got {cursor!r}")
        if not isinstance(namespace, str):
            raise NamespaceNotFound(namespace)
        adopted = self._adopted(namespace)
        if adopted is not None:
            # as for fetch: an adopted record's stamp comes from its text, read whole
            points, nxt = self._scan_external(adopted, cursor, limit, bool(with_vectors))
            page = ScanPage([decode(adopted, p) for p in points], nxt)
            if with_text:
                return page
        elif with_text:
            return self._scan(namespace, cursor, limit, bool(with_vectors))
        else:
            page = self._scan_without_text(namespace, cursor, limit, bool(with_vectors))
        for r in page.records:
            r.text = None
        return page

    def search(
        self, namespace: str, queries: Matrix, k: int, *, filter: Filter | None = None
    ) -> list[list[Hit]]:
        """Approximate nearest neighbours for each row of ``queries`` (shape q x d, or one
        vector of d), best first, at most ``k`` each, scores by vecver's convention
        (higher is closer), ties in any order. With a filter, only records whose metadata
        :meth:`Filter.matches`. Raises ``DimensionMismatch``, ``NonFiniteVector``,
        ``ZeroVector`` (a cosine query of zeros), ``InvalidInput`` (``k``),
        ``InvalidFilter`` or ``UnsupportedFilter`` (an operator not in
        ``capabilities.filter_ops``) before the database is asked."""
        self._check_open()
        validate_k(k)
        flt = check_filter(filter, self.capabilities, self.name)
        adopted = self._adopted(namespace)
        spec = adopted.spec if adopted is not None else self._input_spec(namespace)
        q = validate_queries(spec, queries, k)
        if q.shape[0] == 0:
            return []
        if adopted is not None:
            return self._adopted_search(adopted, q, int(k), flt)
        return self._search(namespace, q, int(k), flt)

    def count(self, namespace: str) -> int:
        """Number of records in the namespace."""
        self._check_open()
        if not isinstance(namespace, str):
            raise NamespaceNotFound(namespace)
        adopted = self._adopted(namespace)
        if adopted is not None:
            return int(self._count_external(adopted))
        return int(self._count(namespace))

    def storage_estimate(self, namespace: str) -> int:
        """An estimate of the bytes the namespace takes in the database (vectors, text,
        metadata, stamps; index overhead where the backend knows it)."""
        self._check_open()
        if not isinstance(namespace, str):
            raise NamespaceNotFound(namespace)
        adopted = self._adopted(namespace)
        if adopted is not None:
            return int(self._adopted_storage_estimate(adopted))
        return int(self._storage_estimate(namespace))

    # -- aliases (public, enforced; only with capabilities.native_alias) --------------

    def set_alias(self, alias: str, namespace: str) -> None:
        """Point ``alias`` at ``namespace`` atomically (create or re-point). Raises
        ``NamespaceNotFound`` (and creates nothing) for a namespace that does not exist,
        ``NotImplementedError`` without ``capabilities.native_alias``."""
        self._check_open()
        self._require_alias()
        self._check_alias_name(alias)
        self._spec(namespace)
        self._set_alias(alias, namespace)

    def get_alias(self, alias: str) -> str | None:
        """The namespace ``alias`` points at, or None."""
        self._check_open()
        self._require_alias()
        if not isinstance(alias, str) or not alias:
            return None
        return self._get_alias(alias)

    def drop_alias(self, alias: str) -> None:
        """Remove an alias. Idempotent."""
        self._check_open()
        self._require_alias()
        if isinstance(alias, str) and alias:
            self._drop_alias(alias)

    def _require_alias(self) -> None:
        if not self.capabilities.native_alias:
            raise NotImplementedError(f"backend {self.name!r} has no native aliases")

    @staticmethod
    def _check_alias_name(alias: object) -> None:
        if not isinstance(alias, str) or not alias:
            raise InvalidInput(f"an alias is a non-empty string, got {alias!r}")

    # -- what a backend implements ----------------------------------------------------
    #
    # The base calls these only on an open backend, with validated input no longer than
    # the declared limits; a namespace argument is a str (it may not exist).

    @abstractmethod
    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        """Create the namespace ``spec`` describes, unless one of that name exists; return
        the spec the namespace of that name holds now (``spec`` when it was created here).
        An existing namespace must be left untouched. Safe against concurrent creators."""

    @abstractmethod
    def _describe_namespace(self, name: str) -> NamespaceSpec:
        """The spec of namespace ``name``; ``NamespaceNotFound`` when there is none."""

    @abstractmethod
    def _list_namespaces(self) -> list[str]:
        """Names of all namespaces (any order)."""

    @abstractmethod
    def _drop_namespace(self, name: str) -> None:
        """Delete the namespace and everything in it; nothing when it does not exist."""

    @abstractmethod
    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        """Insert or replace ``records`` (valid, at most ``max_batch``, distinct ids);
        ``vectors`` is their vectors as one contiguous float32 matrix (row i is record
        i's). All-or-nothing; durable when it returns; must not keep references to the
        caller's objects. ``NamespaceNotFound`` when the namespace does not exist."""

    @abstractmethod
    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete ``ids`` (valid, distinct, at least one, at most ``max_delete_ids``);
        absent ids are ignored. ``NamespaceNotFound`` when the namespace does not exist."""

    @abstractmethod
    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        """The present records among ``ids`` (valid, distinct, at least one, at most
        ``max_fetch_ids``), as new objects (vectors as float32 arrays, or None without
        ``with_vectors``). ``NamespaceNotFound`` when the namespace does not exist."""

    @abstractmethod
    def _scan(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool) -> ScanPage:
        """One page of at most ``limit`` records after ``cursor`` (None: from the start) in
        a stable order that is the same for every page size; ``next_cursor`` None after
        the last page. ``NamespaceNotFound`` when the namespace does not exist."""

    # -- built on top; override where the database does better ------------------------

    def _fetch_without_text(
        self, namespace: str, ids: Sequence[str], with_vectors: bool
    ) -> dict[str, Record]:
        """:meth:`_fetch` for ``fetch(..., with_text=False)``: the same records, whose
        text the caller drops (so a backend may return it or not). Default: :meth:`_fetch`.
        Override it where the database can leave the text out of its answer (a field
        list, a payload selector, a column not read)."""
        return self._fetch(namespace, ids, with_vectors)

    def _scan_without_text(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        """:meth:`_scan` for ``scan(..., with_text=False)``: the same page (same records,
        same ``next_cursor``), whose text the caller drops. Default: :meth:`_scan`.
        Override it as :meth:`_fetch_without_text`."""
        return self._scan(namespace, cursor, limit, with_vectors)

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        """Nearest neighbours of each query row (valid, at least one). Default: exact
        search over a full scan (fine for small namespaces and for tests); ties by id."""
        spec = self._describe_namespace(namespace)
        nq = int(queries.shape[0])
        best_ids: list[list[str]] = [[] for _ in range(nq)]
        best_scores: list[list[float]] = [[] for _ in range(nq)]
        payload: dict[str, Record] = {}
        cursor: str | None = None
        while True:
            page = self._scan(namespace, cursor, _SCAN_PAGE, True)
            recs = [
                r for r in page.records
                if r.vector is not None and (flt is None or flt.matches(r.metadata))
            ]  # fmt: skip
            if recs:
                mat = np.stack([np.asarray(r.vector, dtype=np.float32) for r in recs])
                scores = exact_scores(spec.metric, queries, mat)
                for qi in range(nq):
                    ids = best_ids[qi] + [r.id for r in recs]
                    sc = best_scores[qi] + scores[qi].tolist()
                    order = sorted(range(len(ids)), key=lambda j: (-sc[j], ids[j]))[:k]
                    best_ids[qi] = [ids[j] for j in order]
                    best_scores[qi] = [sc[j] for j in order]
                for r in recs:
                    payload[r.id] = r
                keep = {i for row in best_ids for i in row}
                payload = {i: r for i, r in payload.items() if i in keep}
            cursor = page.next_cursor
            if cursor is None:
                break
        return [
            [
                Hit(i, float(s), payload[i].text, dict(payload[i].metadata), payload[i].stamp)
                for i, s in zip(ids, scs, strict=True)
            ]
            for ids, scs in zip(best_ids, best_scores, strict=True)
        ]

    def _count(self, namespace: str) -> int:
        """Number of records. Default: a full scan without vectors."""
        n = 0
        cursor: str | None = None
        while True:
            page = self._scan(namespace, cursor, _SCAN_PAGE, False)
            n += len(page.records)
            cursor = page.next_cursor
            if cursor is None:
                return n

    def _storage_estimate(self, namespace: str) -> int:
        """Estimated bytes. Default: the count times (4 bytes per dimension plus the
        average size of the text, metadata and stamp of the first page of records)."""
        spec = self._describe_namespace(namespace)
        n = self._count(namespace)
        if n == 0:
            return 0
        sample = self._scan(namespace, None, 100, False).records
        per = 0.0
        if sample:
            import json

            per = sum(
                len((r.text or "").encode("utf-8", "replace"))
                + len(json.dumps(r.metadata, ensure_ascii=False, default=str).encode())
                + len(r.id.encode("utf-8", "replace"))
                + 120  # the stamp: fingerprint, source hash, time
                for r in sample
            ) / len(sample)
        return int(n * (4 * spec.dimension + per))

    def _input_spec(self, namespace: str) -> NamespaceSpec:
        """The spec ``upsert`` and ``search`` validate their input against. Default:
        :meth:`_describe_namespace`. A backend may answer from a cache instead (one lookup
        less per call) if its ``_upsert`` and ``_search`` re-check the dimension and
        fingerprint against the namespace they actually write or search."""
        return self._spec(namespace)

    def _set_alias(self, alias: str, namespace: str) -> None:
        """Point ``alias`` at the existing ``namespace`` atomically (native aliases only)."""
        raise NotImplementedError(f"backend {self.name!r} declares native_alias but has none")

    def _get_alias(self, alias: str) -> str | None:
        """The namespace ``alias`` points at, or None (native aliases only)."""
        raise NotImplementedError(f"backend {self.name!r} declares native_alias but has none")

    def _drop_alias(self, alias: str) -> None:
        """Remove ``alias``; nothing when it does not exist (native aliases only)."""
        raise NotImplementedError(f"backend {self.name!r} declares native_alias but has none")

    # -- adopted collections (public, enforced) ----------------------------------------

    def describe_external(
        self, name: str, *, vector_field: str | None = None
    ) -> ExternalCollection:
        """What the database holds under the physical collection ``name``: dimension,
        metric, count, fields, key type, as seen through its vector ``vector_field``
        (None: its only vector). Reads only. Raises ``NamespaceNotFound`` when there is
        no such collection (an alias is not one), ``NotImplementedError`` when this
        backend cannot adopt collections, ``AdoptError`` when the collection has several
        vectors and none (or an unknown one) is named."""
        self._check_open()
        if not isinstance(name, str) or not name:
            raise NamespaceNotFound(str(name))
        if vector_field is not None and (not isinstance(vector_field, str) or not vector_field):
            raise InvalidInput(f"vector_field must be a vector's name, got {vector_field!r}")
        return self._describe_external(name).with_vector(vector_field)

    def scan_external(
        self, name: str, *, layout: Layout, cursor: str | None = None, limit: int = 256,
        with_vectors: bool = False,
    ) -> tuple[list[RawPoint], str | None]:
        """One page of the stored objects of ``name`` as the database holds them (for
        ``adopt``'s checks; ``layout`` says which vector to read). Reads only."""
        self._check_open()
        validate_limit(limit)
        return self._scan_external(layout, cursor, limit, bool(with_vectors))

    def attach(self, layout: Layout) -> None:
        """Make the adopted collection ``layout.name`` a namespace of this backend object:
        from now on every public method reads and writes it through ``layout`` (see
        :mod:`vecver.backends.external`). Idempotent; a later call replaces the layout.
        Nothing is read or written."""
        self._check_open()
        self._layouts[layout.name] = layout

    def detach(self, name: str) -> None:
        """Forget the layout of ``name`` (nothing is read or written)."""
        self._layouts.pop(name, None)

    def adopted(self, name: str) -> Layout | None:
        """The layout ``name`` is attached with, or None for a namespace vecver made."""
        return self._adopted(name)

    def _adopted(self, name: object) -> Layout | None:
        layouts: dict[str, Layout] | None = vars(self).get("_layouts")
        if not layouts or not isinstance(name, str):
            return None
        return layouts.get(name)

    def _adopted_spec(self, layout: Layout) -> NamespaceSpec:
        """The spec of an adopted collection, after checking that it still exists with its
        dimension and metric (``NamespaceNotFound`` when it was deleted, ``BackendError``
        when it changed)."""
        ext = self._describe_external(layout.name)
        if ext.vectors:
            if layout.vector_field not in ext.vectors:
                raise BackendError(
                    f"adopted collection {layout.name!r} no longer has the vector "
                    f"{layout.vector_field!r}; was it recreated outside vecver?",
                    hint="adopt it again under a new collection name",
                )
            ext = ext.with_vector(layout.vector_field)
        if ext.dimension != layout.dimension or ext.metric != layout.metric:
            raise BackendError(
                f"adopted collection {layout.name!r} now holds {ext.dimension}-dimensional "
                f"{ext.metric} vectors, adopted as {layout.dimension}-dimensional "
                f"{layout.metric} ones; was it recreated outside vecver?",
                hint="adopt it again under a new collection name",
            )
        return layout.spec

    def _adopted_keys(
        self, layout: Layout, ids: Sequence[str], *, for_write: bool
    ) -> tuple[dict[str, Key], list[RawPoint]]:
        """The keys of the objects holding ``ids`` (id -> key; with ``for_write``, a new
        deterministic key for an id no object holds) and, with an id field, the objects
        found. ``AdoptedIdDuplicated`` when two objects hold one id."""
        if layout.id_field is None:
            keys: dict[str, Key] = {}
            for i in ids:
                k = write_key(layout, i) if for_write else native_key(layout, i)
                if k is not None:
                    keys[i] = k
            return keys, []
        found = self._find_external(layout, layout.id_field, list(ids), False)
        keys = {}
        dups: list[str] = []
        for p in found:
            did = doc_id_of(layout, p)
            if did is None or did not in ids:
                continue
            if did in keys and keys[did] != p.key:
                dups.append(did)
            keys[did] = p.key
        if dups:
            raise AdoptedIdDuplicated(layout.name, layout.id_field, sorted(set(dups)))
        if for_write:
            fresh = {i: new_key(layout, i) for i in ids if i not in keys}
            if fresh:
                taken = self._get_external(layout, list(fresh.values()), False)
                if taken:
                    raise BackendError(
                        f"adopted collection {layout.name!r}: the key vecver derives for a "
                        f"new document is taken by another object ({taken[0].key!r})",
                        hint="write that document under another id",
                    )
                keys.update(fresh)
        return keys, found

    def _adopted_upsert(self, layout: Layout, records: list[Record]) -> None:
        if layout.writes == "refuse":
            raise AdoptedReadOnly(layout.name)
        caps = self.capabilities
        vectors = validate_records(layout.spec, records, caps, self.name)
        for r in records:
            check_metadata(layout, r)
        step = caps.max_batch
        for start in range(0, len(records), step):
            chunk = records[start : start + step]
            keys, _ = self._adopted_keys(layout, [r.id for r in chunk], for_write=True)
            points = [
                encode(layout, r, keys[r.id], v)
                for r, v in zip(chunk, vectors[start : start + step], strict=True)
            ]
            self._put_external(layout, points)
        if caps.consistency == "eventual":
            want = {r.id: r.stamp.source_hash for r in records}
            self._await_adopted(layout, "upsert", want)

    def _adopted_delete(self, layout: Layout, ids: list[str]) -> None:
        if layout.writes == "refuse":
            raise AdoptedReadOnly(layout.name)
        step = self.capabilities.max_delete_ids
        for start in range(0, len(ids), step):
            keys, _ = self._adopted_keys(layout, ids[start : start + step], for_write=False)
            if keys:
                self._delete_external(layout, list(keys.values()))
        if self.capabilities.consistency == "eventual":
            self._await_adopted(layout, "delete", dict.fromkeys(ids, ""))

    def _adopted_fetch(
        self, layout: Layout, ids: list[str], with_vectors: bool
    ) -> dict[str, Record]:
        out: dict[str, Record] = {}
        step = self.capabilities.max_fetch_ids
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            if layout.id_field is None:
                keys, _ = self._adopted_keys(layout, chunk, for_write=False)
                points = self._get_external(layout, list(keys.values()), with_vectors) \
                    if keys else []
            else:
                points = self._find_external(layout, layout.id_field, chunk, with_vectors)
            wanted = set(chunk)
            for p in points:
                rec = decode(layout, p)
                if rec.id in wanted:
                    if rec.id in out:
                        assert layout.id_field is not None
                        raise AdoptedIdDuplicated(layout.name, layout.id_field, [rec.id])
                    out[rec.id] = rec
        return out

    def _adopted_search(
        self, layout: Layout, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        out: list[list[Hit]] = []
        for row in self._search_external(layout, queries, k, flt):
            hits = []
            for p, score in row:
                rec = decode(layout, p)
                if flt is not None and not flt.matches(rec.metadata):
                    continue  # a database matching wider than vecver (lists): dropped
                hits.append(Hit(rec.id, float(score), rec.text, rec.metadata, rec.stamp))
            out.append(hits)
        return out

    def _adopted_storage_estimate(self, layout: Layout) -> int:
        import json

        n = self._count_external(layout)
        if n == 0:
            return 0
        sample, _ = self._scan_external(layout, None, 100, False)
        per = 0.0
        if sample:
            per = sum(len(json.dumps(p.payload, ensure_ascii=False, default=str).encode())
                      + len((p.text or "").encode("utf-8", "replace")) + 16
                      for p in sample) / len(sample)  # fmt: skip
        return int(n * (4 * layout.dimension + per))

    def _await_adopted(self, layout: Layout, op: str, want: dict[str, str]) -> None:
        """Wait until every id of ``want`` reads back with the source hash written
        (``op="upsert"``) or as absent (``op="delete"``); ``WriteNotVisible`` after
        ``visibility_timeout``. (Adopted objects carry no write time.)"""
        timeout = self.capabilities.visibility_timeout
        start = time.monotonic()
        delay = 0.002
        pending = dict(want)
        while True:
            got = self._adopted_fetch(layout, list(pending), False)
            for i in list(pending):
                rec = got.get(i)
                if (op == "upsert" and rec is not None and rec.stamp.source_hash == pending[i]) \
                        or (op == "delete" and rec is None):
                    del pending[i]
            if not pending:
                return
            waited = time.monotonic() - start
            if waited >= timeout:
                raise WriteNotVisible(layout.name, op, len(pending), waited)
            time.sleep(min(delay, max(0.0, timeout - waited)))
            delay = min(delay * 2, 0.25)

    # -- what a backend implements to adopt collections --------------------------------
    #
    # ``layout.name`` is the physical collection; the base calls these on an open
    # backend, with at most the declared limits of keys or points.

    def _describe_external(self, name: str) -> ExternalCollection:
        """The physical collection ``name`` (not an alias) as the database describes it;
        ``NamespaceNotFound`` when there is none. A collection with several dense
        vectors lists them all in ``vectors`` (the base picks the one adopted)."""
        raise NotImplementedError(f"backend {self.name!r} cannot adopt collections")

    def _scan_external(
        self, layout: Layout, cursor: str | None, limit: int, with_vectors: bool
    ) -> tuple[list[RawPoint], str | None]:
        """One page of at most ``limit`` stored objects after ``cursor``, in a stable
        order, and the cursor of the next page (None after the last)."""
        raise NotImplementedError(f"backend {self.name!r} cannot adopt collections")

    def _get_external(
        self, layout: Layout, keys: Sequence[Key], with_vectors: bool
    ) -> list[RawPoint]:
        """The stored objects among native ``keys`` (absent ones left out)."""
        raise NotImplementedError(f"backend {self.name!r} cannot adopt collections")

    def _find_external(
        self, layout: Layout, field: str, values: Sequence[str], with_vectors: bool
    ) -> list[RawPoint]:
        """The stored objects whose payload ``field`` holds one of ``values`` (a string,
        or an integer whose decimal form is one). Default: a full scan; a database that
        can filter on the field should override it."""
        wanted = set(values)
        out: list[RawPoint] = []
        cursor: str | None = None
        while True:
            points, cursor = self._scan_external(layout, cursor, _SCAN_PAGE, with_vectors)
            for p in points:
                v = p.payload.get(field)
                if not isinstance(v, bool) and isinstance(v, (str, int)) and str(v) in wanted:
                    out.append(p)
            if cursor is None:
                return out

    def _put_external(self, layout: Layout, points: Sequence[RawPoint]) -> None:
        """Insert or replace ``points`` by key, in the collection's own layout (nothing
        else: no field of vecver's). Durable when it returns."""
        raise NotImplementedError(f"backend {self.name!r} cannot adopt collections")

    def _delete_external(self, layout: Layout, keys: Sequence[Key]) -> None:
        """Delete the objects of ``keys``; absent ones are ignored."""
        raise NotImplementedError(f"backend {self.name!r} cannot adopt collections")

    def _search_external(
        self, layout: Layout, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[tuple[RawPoint, float]]]:
        """The ``k`` nearest stored objects of each query row with their scores (vecver's
        convention), best first; ``flt`` applies to payload fields (the base re-checks
        each hit with :meth:`Filter.matches`)."""
        raise NotImplementedError(f"backend {self.name!r} cannot adopt collections")

    def _count_external(self, layout: Layout) -> int:
        """How many objects the collection holds. Default: a scan."""
        n = 0
        cursor: str | None = None
        while True:
            points, cursor = self._scan_external(layout, cursor, _SCAN_PAGE, False)
            n += len(points)
            if cursor is None:
                return n

    # -- plumbing ---------------------------------------------------------------------

    def _spec(self, namespace: object) -> NamespaceSpec:
        if not isinstance(namespace, str) or not namespace:
            raise NamespaceNotFound(namespace)  # type: ignore[arg-type]
        adopted = self._adopted(namespace)
        if adopted is not None:
            return self._adopted_spec(adopted)
        return self._describe_namespace(namespace)

    def _visibility_mark(self, namespace: str) -> object:
        """What an eventual backend needs, besides the ids and stamps written, to confirm
        later that the writes this thread just made to ``namespace`` are visible (e.g. the
        log position the database reported for them); taken right after the writes and
        handed to :meth:`_await_visible`, possibly from another thread. Default: None."""
        return None

    def _await_visible(
        self, namespace: str, op: str, written: dict[str, Stamp | None], since: float,
        mark: object = None,
    ) -> None:
        """Wait until every id of ``written`` reads back as written (``op="upsert"``: the
        stamp written, or a later write) or as gone (``op="delete"``: absent, or written
        again after ``since``); ``WriteNotVisible`` after ``visibility_timeout``.
        ``mark`` is what :meth:`_visibility_mark` returned after the write (unused here;
        a backend that can confirm visibility more cheaply overrides this)."""
        timeout = self.capabilities.visibility_timeout
        start = time.monotonic()
        delay = 0.002
        pending = dict(written)
        step = self.capabilities.max_fetch_ids
        while True:
            ids = list(pending)
            for s in range(0, len(ids), step):
                chunk = ids[s : s + step]
                got = self._fetch(namespace, chunk, False)
                for i in chunk:
                    rec = got.get(i)
                    if op == "upsert":
                        want = pending[i]
                        if rec is not None and want is not None and _reflects(rec.stamp, want):
                            del pending[i]
                    elif rec is None or rec.stamp.written_at > since:
                        del pending[i]
            if not pending:
                return
            waited = time.monotonic() - start
            if waited >= timeout:
                raise WriteNotVisible(namespace, op, len(pending), waited)
            time.sleep(min(delay, max(0.0, timeout - waited)))
            delay = min(delay * 2, 0.25)


class PendingWrite:
    """A write the database accepted whose visibility to reads may not be confirmed yet
    (:meth:`Backend.upsert_deferred`).

    :meth:`confirm` waits, as :meth:`Backend.upsert` does before returning, until reads
    of the namespace through the backend object that wrote reflect the write, and raises
    :class:`~vecver.errors.WriteNotVisible` (transient; the write may still land, and
    writing it again is harmless) after the backend's ``visibility_timeout``. Once it
    returned, ``confirmed`` is True and later calls return at once. ``confirm`` may be
    called from another thread than the write's; one write is confirmed by one thread
    at a time."""

    __slots__ = ("namespace", "size", "_backend", "_op", "_written", "_since", "_mark",
                 "_confirmed")

    def __init__(self, backend: Backend | None, namespace: str, op: str,
                 written: dict[str, Stamp | None], since: float, mark: object) -> None:
        self.namespace = namespace
        self.size = len(written)
        self._backend = backend
        self._op = op
        self._written = written
        self._since = since
        self._mark = mark
        self._confirmed = backend is None

    @classmethod
    def done(cls, namespace: str) -> PendingWrite:
        """A write that is visible already (a strongly consistent backend's)."""
        return cls(None, namespace, "upsert", {}, 0.0, None)

    @property
    def confirmed(self) -> bool:
        return self._confirmed

    def confirm(self) -> None:
        """Wait until the write is visible to reads (see the class docstring)."""
        if self._confirmed:
            return
        be = self._backend
        assert be is not None
        be._check_open()
        be._await_visible(self.namespace, self._op, self._written, self._since, self._mark)
        self._confirmed = True
        self._backend = None
        self._written = {}


def _reflects(stored: Stamp, written: Stamp) -> bool:
    """The stored stamp is the one written, or one written after it."""
    if stored.written_at > written.written_at + 1e-6:
        return True
    return (
        stored.fingerprint == written.fingerprint
        and stored.source_hash == written.source_hash
        and abs(stored.written_at - written.written_at) <= 1e-6
    )


def exact_scores(metric: str, queries: Matrix, vectors: Matrix) -> Matrix:
    """Scores of every query against every vector, by vecver's convention."""
    out: Matrix
    if metric == "cosine":
        qn = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        vn = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        out = np.asarray(qn @ vn.T, dtype=np.float32)
    elif metric == "dot":
        out = np.asarray(queries @ vectors.T, dtype=np.float32)
    else:
        d = (
            (queries**2).sum(axis=1)[:, None]
            - 2.0 * (queries @ vectors.T)
            + (vectors**2).sum(axis=1)[None, :]
        )
        out = np.asarray(-np.maximum(d, 0.0), dtype=np.float32)
    return out


def finite(x: float) -> bool:
    return math.isfinite(x)


def attach_layout(backend: Backend, layout: dict[str, Any] | None) -> None:
    """Attach the adopted layout a manifest row holds (``layout``: the row's JSON; an
    empty one, or one that is not an adopted layout, is ignored) to ``backend``."""
    if not layout or layout.get("kind") != "adopted":
        return
    lay = Layout.from_dict(layout)
    if backend.adopted(lay.name) != lay:
        backend.attach(lay)


def _without_text(records: dict[str, Record]) -> dict[str, Record]:
    """``records`` with every text set to None (``with_text=False``), in place."""
    for r in records.values():
        r.text = None
    return records
