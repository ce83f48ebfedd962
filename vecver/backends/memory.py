"""The in-memory reference backend: exact (brute-force) search, nothing persisted.

Its behaviour *is* the contract: congruence tests compare every other backend with it.
It is thread-safe, not shared between processes, and loses its data on close.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from vecver.backends.base import (
    Backend,
    Capabilities,
    exact_scores,
    validate_ids,
    validate_limit,
    validate_queries,
    validate_records,
)
from vecver.errors import NamespaceExists, NamespaceNotFound
from vecver.filters import Filter
from vecver.types import Hit, Matrix, NamespaceSpec, Record, ScanPage

__all__ = ["AliasedMemoryBackend", "MemoryBackend"]


class _Namespace:
    def __init__(self, spec: NamespaceSpec) -> None:
        self.spec = spec
        self.records: dict[str, Record] = {}


class MemoryBackend(Backend):
    """Exact in-memory backend. Options: none."""

    name = "memory"
    capabilities = Capabilities(
        native_alias=False,
        namespace_kind="in-memory table",
        max_batch=100_000,
        persistent=False,
        shared_between_processes=False,
    )

    def __init__(self) -> None:
        super().__init__()
        self._ns: dict[str, _Namespace] = {}
        self._lock = threading.RLock()

    def _get(self, name: str) -> _Namespace:
        self._check_open()
        try:
            return self._ns[name]
        except KeyError:
            raise NamespaceNotFound(name) from None

    def create_namespace(self, spec: NamespaceSpec) -> None:
        with self._lock:
            self._check_open()
            have = self._ns.get(spec.name)
            if have is not None:
                if have.spec != spec:
                    raise NamespaceExists(spec.name, f"spec {have.spec}")
                return
            self._ns[spec.name] = _Namespace(spec)

    def describe_namespace(self, name: str) -> NamespaceSpec:
        with self._lock:
            return self._get(name).spec

    def list_namespaces(self) -> list[str]:
        with self._lock:
            self._check_open()
            return sorted(self._ns)

    def drop_namespace(self, name: str) -> None:
        with self._lock:
            self._check_open()
            self._ns.pop(name, None)
            self._forget_aliases_of(name)

    def _forget_aliases_of(self, name: str) -> None:
        """Hook: aliases that pointed at a dropped namespace (none without aliases)."""

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        with self._lock:
            ns = self._get(namespace)
            mat = validate_records(ns.spec, records)
            for r, v in zip(records, mat):
                ns.records[r.id] = Record(r.id, v.copy(), r.text, dict(r.metadata), r.stamp)

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        with self._lock:
            ns = self._get(namespace)
            validate_ids(list(ids))
            for i in ids:
                ns.records.pop(i, None)

    def fetch(
        self, namespace: str, ids: Sequence[str], *, with_vectors: bool = False
    ) -> dict[str, Record]:
        with self._lock:
            ns = self._get(namespace)
            out: dict[str, Record] = {}
            for i in ids:
                r = ns.records.get(i)
                if r is not None:
                    out[i] = _copy(r, with_vectors)
            return out

    def scan(
        self,
        namespace: str,
        *,
        cursor: str | None = None,
        limit: int = 256,
        with_vectors: bool = False,
    ) -> ScanPage:
        with self._lock:
            ns = self._get(namespace)
            validate_limit(limit)
            keys = sorted(k for k in ns.records if cursor is None or k > cursor)
            page = keys[:limit]
            recs = [_copy(ns.records[k], with_vectors) for k in page]
            nxt = page[-1] if len(keys) > limit else None
            return ScanPage(recs, nxt)

    def search(
        self, namespace: str, queries: Matrix, k: int, *, filter: Filter | None = None
    ) -> list[list[Hit]]:
        with self._lock:
            ns = self._get(namespace)
            q = validate_queries(ns.spec, queries, k)
            recs = [
                r for r in ns.records.values() if not filter or filter.matches(r.metadata)
            ]
            if not recs:
                return [[] for _ in range(q.shape[0])]
            mat = np.stack([r.vector for r in recs if r.vector is not None])
            scores = exact_scores(ns.spec.metric, q, mat)
            out: list[list[Hit]] = []
            for row in scores:
                # ties broken by id so results are deterministic
                order = sorted(range(len(recs)), key=lambda j: (-float(row[j]), recs[j].id))[:k]
                out.append(
                    [
                        Hit(recs[j].id, float(row[j]), recs[j].text, dict(recs[j].metadata),
                            recs[j].stamp)
                        for j in order
                    ]
                )
            return out

    def count(self, namespace: str) -> int:
        with self._lock:
            return len(self._get(namespace).records)


def _copy(r: Record, with_vectors: bool) -> Record:
    v = r.vector.copy() if (with_vectors and r.vector is not None) else None
    return replace(r, vector=v, metadata=dict(r.metadata))


class AliasedMemoryBackend(MemoryBackend):
    """The reference backend with native aliases: the behaviour Qdrant, Milvus and
    Weaviate aliases are compared with. Re-pointing an alias is atomic (one assignment
    under the lock); dropping a namespace drops the aliases that pointed at it."""

    name = "memory-aliased"
    capabilities = dataclasses.replace(MemoryBackend.capabilities, native_alias=True)

    def __init__(self) -> None:
        super().__init__()
        self._aliases: dict[str, str] = {}

    def set_alias(self, alias: str, namespace: str) -> None:
        with self._lock:
            self._get(namespace)
            self._aliases[alias] = namespace

    def get_alias(self, alias: str) -> str | None:
        with self._lock:
            self._check_open()
            return self._aliases.get(alias)

    def drop_alias(self, alias: str) -> None:
        with self._lock:
            self._check_open()
            self._aliases.pop(alias, None)

    def _forget_aliases_of(self, name: str) -> None:
        for alias in [a for a, ns in self._aliases.items() if ns == name]:
            del self._aliases[alias]
