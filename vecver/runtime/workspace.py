"""The workspace: a config, its manifest and its backend, and the write/read paths.

>>> ws = vecver.open("vecver.toml")
>>> docs = ws.collection("news")
>>> docs.upsert([vecver.Document("a1", "Stocks rise on ...")])
>>> docs.search("markets", k=5)

Writes go to every *live* space of a collection (dual-write); deletes record tombstones
first. Migration verbs (plan, migrate, backfill, verify, evaluate, cutover, rollback) are
in :mod:`vecver.ops` and :mod:`vecver.command`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field

from ..backends.base import Backend
from ..backends.registry import open_backend
from ..config import Config
from ..embedders import SpaceEmbedder
from ..errors import (
    StateError,
    UnknownSpace,
)
from ..space import Space, SpaceSpec, check_label
from ..store.sqlite import Manifest, owner_alive
from .collection import Collection

log = logging.getLogger("vecver")

ROUTES = ("active", "candidate")


def namespace_name(collection: str, space: Space) -> str:
    """The physical namespace of one space in one collection.

    Portable across databases (letters, digits, underscores; starts with a letter) and
    never equal to a collection name, which is the alias."""
    label = re.sub(r"[^A-Za-z0-9]", "_", space.label)
    return f"vv_{collection}__{label}_{space.fingerprint[:8]}"


def _open_config(config: Config | str | os.PathLike[str] | None) -> Config:
    if isinstance(config, Config):
        return config
    if config is None:
        return Config.find()
    return Config.load(config)


@dataclass
class RecoveryReport:
    """What :meth:`Workspace.recover` repaired."""

    intents: int = 0
    tombstones: int = 0
    cutovers: int = 0
    documents: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.intents or self.tombstones or self.cutovers)


class Workspace:
    """A config with its open manifest and backend. Close it (or use ``with``)."""

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        backend: Backend | None = None,
        progress: bool | None = None,
    ) -> None:
        self.config = _open_config(config)
        self.manifest = Manifest(self.config.manifest_path)
        try:
            self.backend = backend or open_backend(
                self.config.backend, dict(self.config.backend_options)
            )
        except BaseException:
            self.manifest.close()
            raise
        self.progress = progress
        self._embedders: dict[str, SpaceEmbedder] = {}
        self._lock = threading.RLock()

    def close(self) -> None:
        for e in self._embedders.values():
            e.embedder.close()
        self.backend.close()
        self.manifest.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- spaces -----------------------------------------------------------------------

    def space_spec(self, label: str) -> SpaceSpec:
        """The declared spec of a space: from the config, else as the manifest recorded it."""
        if label in self.config.spaces:
            return self.config.spaces[label]
        row = self.manifest.space(label)
        if row is None:
            known = set(self.config.spaces) | {s.label for s in self.manifest.spaces()}
            raise UnknownSpace(label, sorted(known))
        spec = dict(row.spec)
        return SpaceSpec(**spec)

    def embedder(self, label: str) -> SpaceEmbedder:
        """The embedder of a space, loaded once; registers the space in the manifest.

        Raises ``SpaceConflict`` when the label was registered with another fingerprint.
        """
        with self._lock:
            emb = self._embedders.get(label)
            if emb is None:
                emb = SpaceEmbedder.for_spec(self.space_spec(label))
                self.manifest.register_space(
                    label, emb.space.fingerprint, emb.space.revision, emb.space.spec.to_dict()
                )
                self._embedders[label] = emb
            return emb

    def space(self, label: str) -> Space:
        return self.embedder(label).space

    # -- collections ------------------------------------------------------------------

    def collection(self, name: str) -> Collection:
        """A handle on an existing collection (``UnknownCollection`` otherwise), or one
        declared in the config, which is created on first use."""
        if not self.manifest.has_collection(name) and name in self.config.collections:
            try:
                return self.create_collection(name, self.config.collections[name])
            except StateError:
                if not self.manifest.has_collection(name):
                    raise
                # another thread or process created it first: use theirs
        self.manifest.require_collection(name)
        return Collection(self, name)

    def create_collection(self, name: str, space_label: str) -> Collection:
        """Create a collection whose first space is active at once."""
        check_label(name, "collection name")
        if self.manifest.has_collection(name):
            raise StateError(f"collection {name!r} already exists")
        space = self.space(space_label)
        ns = namespace_name(name, space)
        from ..types import NamespaceSpec

        self.backend.create_namespace(
            NamespaceSpec(ns, space.spec.dimension, space.spec.metric, space.fingerprint)
        )
        if self.backend.capabilities.native_alias:
            self.backend.set_alias(name, ns)
        self.manifest.create_collection(name, space_label, space.fingerprint, ns)
        return Collection(self, name)

    # -- recovery ---------------------------------------------------------------------

    def recover(self, collection: str, *, force: bool = False) -> RecoveryReport:
        """Finish or undo what a crashed process left half-done in ``collection``.

        - write intents of dead processes (and failed writes): every live space is made
          to agree with the active space for those documents;
        - tombstones not yet applied: deleted from every live space;
        - a cutover interrupted between the database alias switch and the manifest
          commit: finished if the alias moved, cleared otherwise.

        Intents of live processes are left alone unless ``force``.
        """
        rep = RecoveryReport()
        coll = Collection(self, collection)
        pending = self.manifest.pending_cutover(collection)
        if pending is not None:
            from_ns, to_ns, reason = pending
            current = (
                self.backend.get_alias(collection)
                if self.backend.capabilities.native_alias
                else None
            )
            if current == to_ns:
                self.manifest.switch_active(collection, to_ns, reason, recovered=True)
                rep.details.append(f"finished interrupted {reason} to {to_ns}")
            else:
                self.manifest.clear_cutover(collection)
                rep.details.append(f"cleared interrupted {reason} to {to_ns}")
            rep.cutovers += 1
        for intent in self.manifest.intents(collection):
            if not (force or intent.failed or not owner_alive(intent.owner)):
                continue
            # a delete intent's tombstones are already durable: converging deletes the
            # ids everywhere; an upsert intent is settled by the active space's content
            coll.converge(intent.doc_ids)
            self.manifest.drop_intent(intent.id)
            rep.intents += 1
            rep.documents += len(intent.doc_ids)
        if rep.anything:
            self.manifest.log("recovered", collection, intents=rep.intents,
                              cutovers=rep.cutovers, documents=rep.documents)
        return rep
