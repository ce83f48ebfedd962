"""The manifest store: vecver's durable record (SQLite by default)."""

from .sqlite import (
    LIVE_STATES,
    STATES,
    Checkpoint,
    Intent,
    Manifest,
    NamespaceRow,
    SpaceRow,
    owner_alive,
    owner_id,
)

__all__ = [
    "LIVE_STATES", "STATES", "Checkpoint", "Intent", "Manifest", "NamespaceRow", "SpaceRow",
    "owner_alive", "owner_id",
]
