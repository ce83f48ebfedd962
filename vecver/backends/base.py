"""The backend protocol: the small synchronous surface every vector database maps onto.

A backend stores *namespaces*; each namespace holds the vectors of exactly one space (one
fingerprint, one dimension, one metric). Everything else — dual-write, backfill, routing,
cutover — lives in the core and is written once.

Implementing a backend means subclassing :class:`Backend`, declaring
:class:`Capabilities` as a class attribute, implementing the abstract methods, and
registering the class under the ``vecver.backends`` entry-point group. The shared
compliance suite in :mod:`vecver.testing` checks the contract.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import (
    BackendClosed,
    DimensionMismatch,
    DuplicateIds,
    InvalidId,
    InvalidInput,
    NonFiniteVector,
    StampMismatch,
)
from ..filters import Filter
from ..types import Hit, Matrix, NamespaceSpec, Record, ScanPage


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared as data (never discovered by probing).

    - ``native_alias``: the database has atomic aliases; the core switches them with
      :meth:`Backend.set_alias`. Otherwise the alias is kept in the manifest.
    - ``namespace_kind``: what one namespace is on this database (for messages and docs).
    - ``filter_ops``: which portable filter operators are supported.
    - ``max_batch``: the largest number of records one ``upsert`` call accepts.
    - ``persistent``: data survives closing and reopening the backend.
    - ``shared_between_processes``: several processes may open it at once and see each
      other's writes.
    """

    native_alias: bool = False
    namespace_kind: str = "namespace"
    filter_ops: frozenset[str] = field(default_factory=lambda: frozenset({"eq", "in", "range"}))
    max_batch: int = 1000
    persistent: bool = True
    shared_between_processes: bool = False


class Backend(ABC):
    """Base class of every backend.

    Contract shared by all methods: they raise :class:`~vecver.errors.BackendClosed` after
    :meth:`close`, :class:`~vecver.errors.NamespaceNotFound` for a namespace that does not
    exist, and :class:`~vecver.errors.TransientBackendError` for failures that may succeed
    when retried (the core retries those with backoff).
    """

    name: ClassVar[str] = "abstract"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self) -> None:
        self._closed = False

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

    # -- namespaces -------------------------------------------------------------------

    @abstractmethod
    def create_namespace(self, spec: NamespaceSpec) -> None:
        """Create a namespace. Idempotent when one with the same dimension, metric and
        fingerprint exists; raises ``NamespaceExists`` when it exists with others."""

    @abstractmethod
    def describe_namespace(self, name: str) -> NamespaceSpec:
        """The spec a namespace was created with."""

    @abstractmethod
    def list_namespaces(self) -> list[str]:
        """Names of all namespaces, sorted."""

    @abstractmethod
    def drop_namespace(self, name: str) -> None:
        """Delete a namespace and everything in it. Idempotent."""

    # -- data -------------------------------------------------------------------------

    @abstractmethod
    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        """Insert or replace records by id. All-or-nothing for one call: after a raise,
        none of ``records`` is visible. Must call :func:`validate_records` first. Durable
        when it returns."""

    @abstractmethod
    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        """Delete records by id; ids that are not present are ignored. Durable on return."""

    @abstractmethod
    def fetch(
        self, namespace: str, ids: Sequence[str], *, with_vectors: bool = False
    ) -> dict[str, Record]:
        """Records for the ids that are present (absent ids are left out)."""

    @abstractmethod
    def scan(
        self,
        namespace: str,
        *,
        cursor: str | None = None,
        limit: int = 256,
        with_vectors: bool = False,
    ) -> ScanPage:
        """One page of all records in a stable order. ``cursor`` is the previous page's
        ``next_cursor`` (an opaque string that stays valid across processes and restarts);
        records written behind the cursor after it was issued may be missed, records
        present for the whole scan are returned exactly once. Raises ``InvalidInput``
        when ``limit < 1``."""

    @abstractmethod
    def search(
        self, namespace: str, queries: Matrix, k: int, *, filter: Filter | None = None
    ) -> list[list[Hit]]:
        """Approximate nearest neighbours for each row of ``queries`` (shape q x d), best
        first, at most ``k`` each, scores by vecver's convention (higher is closer)."""

    @abstractmethod
    def count(self, namespace: str) -> int:
        """Number of records in the namespace."""

    # -- aliases (only when capabilities.native_alias) --------------------------------

    def set_alias(self, alias: str, namespace: str) -> None:
        """Point ``alias`` at ``namespace`` atomically (create or re-point)."""
        raise NotImplementedError(f"backend {self.name!r} has no native aliases")

    def get_alias(self, alias: str) -> str | None:
        """The namespace ``alias`` points at, or None."""
        raise NotImplementedError(f"backend {self.name!r} has no native aliases")

    def drop_alias(self, alias: str) -> None:
        """Remove an alias. Idempotent."""
        raise NotImplementedError(f"backend {self.name!r} has no native aliases")


def validate_ids(ids: Sequence[str]) -> None:
    """Raise ``InvalidId`` or ``DuplicateIds`` for a bad batch of ids."""
    seen: set[str] = set()
    dups: list[str] = []
    for i in ids:
        if not isinstance(i, str) or not i:
            raise InvalidId(i)
        if i in seen:
            dups.append(i)
        seen.add(i)
    if dups:
        raise DuplicateIds(dups)


def validate_records(spec: NamespaceSpec, records: Sequence[Record]) -> Matrix:
    """Check a batch against a namespace before anything is written.

    Raises ``InvalidId``, ``DuplicateIds``, ``DimensionMismatch``, ``NonFiniteVector`` or
    ``StampMismatch``. Returns the vectors stacked as a contiguous float32 matrix.
    """
    validate_ids([r.id for r in records])
    if not records:
        return np.zeros((0, spec.dimension), dtype=np.float32)
    rows = []
    for r in records:
        if r.stamp.fingerprint != spec.fingerprint:
            raise StampMismatch(spec.name, spec.fingerprint, r.stamp.fingerprint, r.id)
        if r.stamp.doc_id != r.id:
            raise InvalidInput(f"record {r.id!r} carries a stamp for document {r.stamp.doc_id!r}")
        if r.vector is None:
            raise InvalidInput(f"record {r.id!r} has no vector")
        v = np.asarray(r.vector)
        if v.ndim != 1 or v.shape[0] != spec.dimension:
            got = int(v.shape[-1]) if v.ndim else 0
            raise DimensionMismatch(spec.dimension, got, r.id, spec.name)
        rows.append(v)
    mat = np.ascontiguousarray(np.stack(rows), dtype=np.float32)
    if not np.isfinite(mat).all():
        bad = int(np.argwhere(~np.isfinite(mat).all(axis=1))[0][0])
        raise NonFiniteVector(records[bad].id)
    return mat


def validate_limit(limit: int) -> None:
    """Raise ``InvalidInput`` unless ``limit`` (a scan page size) is a positive integer."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"limit must be a positive integer, got {limit!r}")


def validate_queries(spec: NamespaceSpec, queries: Matrix, k: int) -> Matrix:
    """Check a query matrix; returns it as contiguous float32 of shape (q, d)."""
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != spec.dimension:
        raise DimensionMismatch(spec.dimension, int(q.shape[-1]), None, spec.name)
    if not np.isfinite(q).all():
        raise NonFiniteVector(None)
    if not isinstance(k, int) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    return np.ascontiguousarray(q)


def json_safe_metadata(metadata: Mapping[str, Any], doc_id: str) -> dict[str, Any]:
    """Check metadata is a JSON object of JSON values; returns a plain dict copy."""
    import json

    if not isinstance(metadata, Mapping):
        raise InvalidInput(f"metadata of document {doc_id!r} must be an object")
    try:
        out: dict[str, Any] = json.loads(json.dumps(dict(metadata), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"metadata of document {doc_id!r} is not JSON-serializable: {e}") from e
    return out


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
