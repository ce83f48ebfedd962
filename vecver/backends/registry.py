"""Backend plugins: a lazy registry keyed by name.

Backends are found through the ``vecver.backends`` entry-point group, so a third-party
package adds one with::

    [project.entry-points."vecver.backends"]
    mydb = "mypackage.backend:MyDBBackend"

Importing vecver never imports a database client: a backend module is imported only when
:func:`get_backend_class` is called, and a missing client library is reported as
:class:`~vecver.errors.BackendNotInstalled` naming the extra to install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ..errors import BackendNotInstalled, UnknownBackend
from .base import Backend

ENTRY_POINT_GROUP = "vecver.backends"


@dataclass(frozen=True)
class KnownBackend:
    """A backend vecver knows about even when its plugin is not installed."""

    target: str  # "module:Class"
    package: str  # the client library it needs (import name)
    extra: str  # the vecver extra that installs it


#: Backends shipped with vecver. Entry points override and extend this table.
KNOWN: dict[str, KnownBackend] = {
    "memory": KnownBackend("vecver.backends.memory:MemoryBackend", "numpy", "local"),
    "memory-aliased": KnownBackend("vecver.backends.memory:AliasedMemoryBackend", "numpy", "local"),
    "local": KnownBackend("vecver.backends.local:LocalBackend", "hnswlib", "local"),
    "qdrant": KnownBackend("vecver.backends.qdrant:QdrantBackend", "qdrant_client", "qdrant"),
    "milvus": KnownBackend("vecver.backends.milvus:MilvusBackend", "pymilvus", "milvus"),
    "pinecone": KnownBackend("vecver.backends.pinecone:PineconeBackend", "pinecone", "pinecone"),
    "weaviate": KnownBackend("vecver.backends.weaviate:WeaviateBackend", "weaviate", "weaviate"),
}

#: Backends on the roadmap whose plugins are not part of this release.
PLANNED: frozenset[str] = frozenset()

_registered: dict[str, type[Backend]] = {}


def register(name: str, cls: type[Backend]) -> None:
    """Register a backend class at run time (tests, notebooks)."""
    _registered[name] = cls


def available() -> list[str]:
    """Names of all backends vecver can find (installed or not)."""
    names = set(KNOWN) | set(_registered)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def _load_target(name: str, target: str, known: KnownBackend | None) -> type[Backend]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if known is not None and (missing == known.package or missing.startswith(known.package)):
            raise BackendNotInstalled(name, known.package, known.extra) from e
        if known is not None and missing == module_name:
            raise BackendNotInstalled(name, module_name, known.extra) from e
        raise
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{target} is not a vecver Backend subclass")
    return cls


def get_backend_class(name: str) -> type[Backend]:
    """The backend class registered under ``name``.

    Raises ``UnknownBackend`` when no plugin has that name, ``BackendNotInstalled`` when
    its client library is missing.
    """
    if name in _registered:
        return _registered[name]
    known = KNOWN.get(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return _load_target(name, ep.value, known)
    if known is not None:
        return _load_target(name, known.target, known)
    if name in PLANNED:
        raise UnknownBackend(
            name,
            available(),
            reason=f"the {name} backend is planned but not part of this vecver release",
        )
    raise UnknownBackend(name, available())


def open_backend(name: str, options: dict[str, Any]) -> Backend:
    """Instantiate a backend by name with its options (from the config's [backend])."""
    cls = get_backend_class(name)
    return cls(**options)
