"""The Pinecone backend (``pip install 'vecver[pinecone]'``): one Pinecone namespace per
space inside the user's index (a separate index when the dimension or metric differ),
through the official ``pinecone`` SDK. See :class:`PineconeBackend`."""

from __future__ import annotations

from ._backend import REGISTRY, PineconeBackend
from ._filters import NOTHING, json_key, translate_filter

__all__ = ["NOTHING", "REGISTRY", "PineconeBackend", "json_key", "translate_filter"]
