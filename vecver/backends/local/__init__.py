"""The ``local`` backend: HNSW indexes (hnswlib) over SQLite stores, in one directory.

Layout of ``path``::

    <path>/
      <safe-name>-<hash>/        one directory per namespace
        store.sqlite             the durable truth (WAL): rows, vectors, stamps, the spec
        hnsw-<seq>.bin           newest snapshot of the HNSW index, complete up to write <seq>
      .trash-<uuid>/             a namespace being dropped (removed on sight)

The index is a cache: opening a namespace loads the newest snapshot and replays every row
written after it, so a process killed at any moment loses nothing that ``upsert`` returned
from. hnswlib is imported only when a :class:`LocalBackend` is constructed.
"""

from __future__ import annotations

from ._backend import LocalBackend

__all__ = ["LocalBackend"]
