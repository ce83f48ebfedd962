"""The manifest store: vecver's durable record (SQLite by default).

:class:`ManifestStore` is the protocol the core uses; :class:`Manifest` is the embedded
SQLite implementation; the rows are defined in :mod:`vecver.store.base`.
"""

from ..lifecycle import LIVE_STATES, STATES
from .base import (
    DEFAULT_BACKEND,
    AliasChange,
    Artifact,
    Checkpoint,
    Evaluation,
    Event,
    Intent,
    Lease,
    ManifestStore,
    NamespaceRow,
    QueueStats,
    SpaceRow,
    WorkItem,
)
from .leases import owner_alive, owner_id
from .sqlite import Manifest

__all__ = [
    "DEFAULT_BACKEND", "LIVE_STATES", "STATES", "AliasChange", "Artifact", "Checkpoint",
    "Evaluation", "Event", "Intent", "Lease", "Manifest", "ManifestStore", "NamespaceRow",
    "QueueStats", "SpaceRow", "WorkItem", "owner_alive", "owner_id",
]
