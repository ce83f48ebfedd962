"""The shared compliance suite against the in-memory reference backend, its aliased
variant, a variant declaring tight limits (so that the base's chunking and size checks run
under every test), and a minimal backend that implements only the eight required methods
(so that the defaults built on top — count by scan, exact search by scan — are checked)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence

import pytest

from vecver.backends.base import Backend, Capabilities
from vecver.backends.memory import AliasedMemoryBackend, MemoryBackend
from vecver.errors import NamespaceNotFound
from vecver.testing import BackendComplianceSuite
from vecver.types import Matrix, NamespaceSpec, Record, ScanPage


class TestMemoryBackend(BackendComplianceSuite):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = MemoryBackend()
        yield b
        b.close()


class TestAliasedMemoryBackend(BackendComplianceSuite):
    """The reference for databases with native aliases: the alias tests run here."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = AliasedMemoryBackend()
        yield b
        b.close()


class LimitedMemoryBackend(MemoryBackend):
    """The reference backend declaring small limits: every call longer than them is cut
    into chunks by the base, larger metadata and texts are refused, and only ``eq`` and
    ``in`` filters are accepted."""

    name = "memory-limited"
    capabilities = dataclasses.replace(
        MemoryBackend.capabilities,
        max_batch=7,
        max_fetch_ids=5,
        max_delete_ids=3,
        max_metadata_bytes=2048,
        max_text_bytes=2048,
        filter_ops=frozenset({"eq", "in"}),
    )

    def __init__(self) -> None:
        super().__init__()
        self.longest: dict[str, int] = {"upsert": 0, "fetch": 0, "delete": 0}

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        self.longest["upsert"] = max(self.longest["upsert"], len(records))
        super()._upsert(namespace, records, vectors)

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        self.longest["fetch"] = max(self.longest["fetch"], len(ids))
        return super()._fetch(namespace, ids, with_vectors)

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        self.longest["delete"] = max(self.longest["delete"], len(ids))
        super()._delete(namespace, ids)


class TestLimitedMemoryBackend(BackendComplianceSuite):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = LimitedMemoryBackend()
        yield b
        caps = b.capabilities
        # the database never saw a call longer than it declared
        assert b.longest["upsert"] <= caps.max_batch
        assert b.longest["fetch"] <= caps.max_fetch_ids
        assert b.longest["delete"] <= caps.max_delete_ids
        b.close()


class MinimalBackend(Backend):
    """A backend with only the eight required methods: what a new backend must write."""

    name = "minimal"
    capabilities = Capabilities(persistent=False, max_batch=500)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._specs: dict[str, NamespaceSpec] = {}
        self._rows: dict[str, dict[str, Record]] = {}

    def _table(self, name: str) -> dict[str, Record]:
        if name not in self._rows:
            raise NamespaceNotFound(name)
        return self._rows[name]

    def _create_namespace(self, spec: NamespaceSpec) -> NamespaceSpec:
        with self._lock:
            self._rows.setdefault(spec.name, {})
            return self._specs.setdefault(spec.name, spec)

    def _describe_namespace(self, name: str) -> NamespaceSpec:
        with self._lock:
            self._table(name)
            return self._specs[name]

    def _list_namespaces(self) -> list[str]:
        return list(self._specs)

    def _drop_namespace(self, name: str) -> None:
        with self._lock:
            self._specs.pop(name, None)
            self._rows.pop(name, None)

    def _upsert(self, namespace: str, records: Sequence[Record], vectors: Matrix) -> None:
        with self._lock:
            table = self._table(namespace)
            for r, v in zip(records, vectors, strict=True):
                table[r.id] = Record(r.id, v.copy(), r.text, dict(r.metadata), r.stamp)

    def _delete(self, namespace: str, ids: Sequence[str]) -> None:
        with self._lock:
            table = self._table(namespace)
            for i in ids:
                table.pop(i, None)

    def _fetch(self, namespace: str, ids: Sequence[str], with_vectors: bool) -> dict[str, Record]:
        with self._lock:
            table = self._table(namespace)
            return {i: _copy(table[i], with_vectors) for i in ids if i in table}

    def _scan(
        self, namespace: str, cursor: str | None, limit: int, with_vectors: bool
    ) -> ScanPage:
        with self._lock:
            table = self._table(namespace)
            keys = sorted(k for k in table if cursor is None or k > cursor)
            page = [_copy(table[k], with_vectors) for k in keys[:limit]]
            return ScanPage(page, page[-1].id if len(keys) > limit else None)


def _copy(r: Record, with_vectors: bool) -> Record:
    vec = r.vector.copy() if with_vectors and r.vector is not None else None
    return dataclasses.replace(r, vector=vec, metadata=dict(r.metadata))


class TestMinimalBackend(BackendComplianceSuite):
    """The defaults of the base (exact search by scan, count by scan, storage estimate)
    meet the whole contract."""

    scale_count = 600  # exact search by scan: no ANN index to push past a threshold

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = MinimalBackend()
        yield b
        b.close()
