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

from vecver.backends.base import Backend, Capabilities, exact_scores
from vecver.errors import NamespaceNotFound
from vecver.filters import Filter
from vecver.types import Hit, Matrix, NamespaceSpec, Record, ScanPage

__all__ = ["AliasedMemoryBackend", "MemoryBackend"]


class MemoryBackend(Backend):
    """Exact in-memory backend. Options: none."""

    name = "memory"
    capabilities = Capabilities(
        native_alias=False,
        namespace_kind="in-memory table",
        max_batch=100_000,
        max_fetch_ids=100_000,
        max_delete_ids=100_000,
        persistent=False,
        shared_between_processes=False,
    )

    def __init__(self) -> None:
        super().__init__()
        self._specs: dict[str, NamespaceSpec] = {}
        self._data: dict[str, dict[str, Record]] = {}
        self._lock = threading.RLock()

    def _records(self, name: str) -> dict[str, Record]:
        try:
            return self._data[name]
        except KeyError:
            raise NamespaceNotFound(name) from None

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        with self._lock:
            have = self._specs.setdefault(spec.name, spec)
            self._data.setdefault(spec.name, {})
            return have

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        with self._lock:
            try:
                return self._specs[name]
            except KeyError:
                raise NamespaceNotFound(name) from None

    def _list_namespaces(self) -> list[str]:
        with self._lock:
            return list(self._specs)

    def _drop_namespace(self, name: str) -> None:
        with self._lock:
            self._specs.pop(name, None)
            self._data.pop(name, None)
            self._forget_aliases_of(name)

    def _forget_aliases_of(self, name: str) -> None:
        """Hook: aliases that pointed at a dropped namespace (none without aliases)."""

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        with self._lock:
            data = self._records(namespace)
            for r, v in zip(records, vectors, strict=True):
                data[r.id] = Record(r.id, v.copy(), r.text, dict(r.metadata), r.stamp)

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        with self._lock:
            data = self._records(namespace)
            for i in ids:
                data.pop(i, None)

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        with self._lock:
            data = self._records(namespace)
            return {i: _copy(data[i], with_vectors) for i in ids if i in data}

    def _scan(self, namespace: str, cursor: str | None, limit: int, with_vectors: bool) -> ScanPage:
        with self._lock:
            data = self._records(namespace)
            keys = sorted(k for k in data if cursor is None or k > cursor)
            page = keys[:limit]
            recs = [_copy(data[k], with_vectors) for k in page]
            return ScanPage(recs, page[-1] if len(keys) > limit else None)

    def _count(self, namespace: str) -> int:
        with self._lock:
            return len(self._records(namespace))

    def _search(
        self, namespace: str, queries: Matrix, k: int, flt: Filter | None
    ) -> list[list[Hit]]:
        with self._lock:
            metric = self._describe_namespace(namespace).metric
            recs = [r for r in self._data[namespace].values() if not flt or flt.matches(r.metadata)]
            if not recs:
                return [[] for _ in range(queries.shape[0])]
            mat = np.stack([r.vector for r in recs if r.vector is not None])
            scores = exact_scores(metric, queries, mat)
            out: list[list[Hit]] = []
            for row in scores:
                # ties broken by id so results are deterministic
                order = sorted(range(len(recs)), key=lambda j: (-float(row[j]), recs[j].id))[:k]
                out.append(
                    [
                        Hit(
                            recs[j].id,
                            float(row[j]),
                            recs[j].text,
                            dict(recs[j].metadata),
                            recs[j].stamp,
                        )
                        for j in order
                    ]
                )
            return out


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

    def _set_alias(self, alias: str, namespace: str) -> None:
        with self._lock:
            self._describe_namespace(namespace)
            self._aliases[alias] = namespace

    def _get_alias(self, alias: str) -> str | None:
        with self._lock:
            return self._aliases.get(alias)

    def _drop_alias(self, alias: str) -> None:
        with self._lock:
            self._aliases.pop(alias, None)

    def _forget_aliases_of(self, name: str) -> None:
        for alias in [a for a, ns in self._aliases.items() if ns == name]:
            del self._aliases[alias]
