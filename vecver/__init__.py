"""vecver: versioned embedding spaces for vector databases.

The Python API mirrors the CLI: :func:`open` a workspace, write through a
:class:`Collection` (dual-write to every live space), and run the migration verbs in
:mod:`vecver.command` (or :mod:`vecver.ops` over an open workspace).
"""

from __future__ import annotations

import os

from . import adapters, command, errors  # adapters: registers the `adapter` route
from .backends.base import Backend, Capabilities
from .backends.registry import register as register_backend
from .config import Config, Gate
from .embedders import Embedder, SpaceEmbedder
from .errors import VecverError
from .filters import F, Filter
from .ops.abort import abort
from .ops.backfill import backfill, migrate, start_migration
from .ops.cutover import cutover, rollback
from .ops.evaluate import evaluate
from .ops.plan import plan
from .ops.verify import verify
from .read.routes import (
    Active,
    Canary,
    Candidate,
    Dual,
    Rerank,
    Route,
    Shadow,
    SpaceRoute,
    register_route,
)
from .read.searcher import ReadObserver, SearchEvent
from .runtime.collection import Collection
from .runtime.sources import IterableSource, JsonlSource, NamespaceSource, Source
from .runtime.workspace import Workspace
from .space import Space, SpaceSpec
from .store.base import ManifestStore
from .store.sqlite import Manifest
from .types import Document, Hit, NamespaceSpec, Record, Stamp

__version__ = "0.1.0"


def open(  # noqa: A001 - the natural name
    config: Config | str | os.PathLike[str] | None = None, *, progress: bool | None = None
) -> Workspace:
    """Open the workspace of a config (a path, a :class:`Config`, or ./vecver.toml)."""
    return Workspace(config, progress=progress)


__all__ = [
    "Active", "Backend", "Canary", "Candidate", "Capabilities", "Dual", "ReadObserver",
    "Rerank", "SearchEvent", "Shadow", "register_route", "Collection", "Config", "Document",
    "Embedder", "F", "Filter", "Gate", "Hit", "IterableSource", "JsonlSource", "Manifest",
    "ManifestStore", "NamespaceSource", "NamespaceSpec", "Record", "Route", "Source", "Space",
    "SpaceEmbedder", "SpaceRoute", "SpaceSpec", "Stamp", "VecverError", "Workspace", "abort",
    "adapters", "backfill", "command", "cutover", "errors", "evaluate",
    "migrate", "open", "plan", "register_backend", "rollback", "start_migration", "verify",
    "__version__",
]
