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
import threading
from collections.abc import Mapping

from ..backends.base import Backend, attach_layout
from ..backends.registry import get_backend_class, open_backend
from ..config import DEFAULT_INSTANCE, Config, check_backend_options
from ..embedders import SpaceEmbedder
from ..errors import (
    NamespaceNameTaken,
    StateError,
    UnknownSpace,
)
from ..read.searcher import ReadObserver
from ..space import Space, SpaceSpec, check_label
from ..store.base import ManifestStore
from ..store.sqlite import Manifest, NamespaceRow
from .collection import Collection
from .recover import RecoveryReport, recover

log = logging.getLogger("vecver")

ROUTES = ("active", "candidate")


def _open_config(config: Config | str | os.PathLike[str] | None) -> Config:
    if isinstance(config, Config):
        return config
    if config is None:
        return Config.find()
    return Config.load(config)


class Workspace:
    """A config with its open manifest and backend instances. Close it (or use ``with``).

    The default backend instance (the config's ``[backend]``) is opened at once and is
    :attr:`backend`; any other instance (``[backends.NAME]``) is opened on first use.
    ``backend`` and ``backends`` hand in already open instances instead (tests, notebooks);
    the workspace closes them with itself.
    """

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        backend: Backend | None = None,
        backends: Mapping[str, Backend] | None = None,
        progress: bool | None = None,
    ) -> None:
        self.config = _open_config(config)
        given = dict(backends or {})
        if backend is not None:
            given[DEFAULT_INSTANCE] = backend
        for name in given:
            self.config.backend_config(name)  # UnknownBackendInstance for a stray name
        self.manifest: ManifestStore = Manifest(self.config.manifest_path)
        self._backends: dict[str, Backend] = given
        self._lock = threading.RLock()
        try:
            self.backend: Backend = self.instance(DEFAULT_INSTANCE)
        except BaseException:
            self.manifest.close()
            raise
        self.progress = progress
        self._embedders: dict[str, SpaceEmbedder] = {}
        #: told of every successful search of any collection of this workspace (see
        #: :class:`vecver.read.searcher.ReadObserver`); append to it
        self.read_observers: list[ReadObserver] = []
        # read counts, metrics and lazy re-embedding ([lazy]); flushed by close()
        from ..read.lazy import install

        self.read_telemetry = install(self)
        # query-to-top-result distances for drift detection ([drift]); flushed by close()
        from ..drift.observer import install as install_drift

        install_drift(self)

    def close(self) -> None:
        telemetry = getattr(self, "read_telemetry", None)
        if telemetry is not None:
            self.read_telemetry = None
            telemetry.close()  # what reads noted is written while the manifest is open
        from ..drift.observer import flush as flush_distances
        from ..drift.reservoir import flush_all as flush_samples

        for flush in (flush_distances, flush_samples):  # before the manifest closes
            try:
                flush(self)
            except Exception:  # noqa: BLE001 - a sample not kept never fails a close
                log.warning("drift: could not save samples at close", exc_info=True)
        for e in self._embedders.values():
            e.embedder.close()
        for be in self._backends.values():
            be.close()
        self.manifest.close()

    # -- backend instances ------------------------------------------------------------

    def backend_for(self, ns: NamespaceRow | str) -> Backend:
        """The backend instance that holds the namespace ``ns`` (a manifest row, or a
        namespace name looked up in the manifest).

        A namespace lives on the instance its manifest row records; a name the manifest
        does not know is on the default instance (:attr:`backend`). Raises
        ``UnknownBackendInstance`` when the row names an instance the config no longer
        declares. The namespace of an adopted collection (a row with a ``layout``) is
        attached to its instance with that layout (:meth:`Backend.attach`)."""
        if isinstance(ns, str):
            row = self.manifest.namespace(ns)
            if row is None:
                return self.backend
            ns = row
        be = self.instance(ns.backend)
        if ns.layout:
            attach_layout(be, ns.layout)
        return be

    def instance(self, name: str) -> Backend:
        """The backend instance called ``name`` in the config, opened on first use and
        kept open until :meth:`close`.

        Raises ``UnknownBackendInstance`` when the config declares no such instance,
        ``BackendNotInstalled`` when its plugin's client library is missing, and
        ``UnknownBackendOption`` for an option the plugin does not take (checked when the
        config is read if the plugin could be imported then, else here)."""
        with self._lock:
            be = self._backends.get(name)
            if be is None:
                bc = self.config.backend_config(name)
                check_backend_options(bc, get_backend_class(bc.name))
                be = open_backend(bc.name, dict(bc.options))
                self._backends[name] = be
            return be

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
        declared in the config, which is created on first use.

        Raises ``UnknownBackendInstance`` when a live space of the collection lives on a
        backend instance the config no longer declares (before any write could reach
        the other spaces)."""
        if not self.manifest.has_collection(name) and name in self.config.collections:
            try:
                return self.create_collection(name, self.config.collections[name],
                                              on=self.config.collection_backends.get(name))
            except StateError:
                if not self.manifest.has_collection(name):
                    raise
                # another thread or process created it first: use theirs
        self.manifest.require_collection(name)
        for ns in self.manifest.live_namespaces(name)[1]:
            self.config.backend_config(ns.backend)
        return Collection(self, name)

    def create_collection(
        self, name: str, space_label: str, *, on: str | None = None
    ) -> Collection:
        """Create a collection whose first space is active at once, its namespace on the
        backend instance ``on`` (default: the default instance).

        Raises ``UnknownBackendInstance`` for an instance the config does not declare and
        ``InvalidNamespaceName`` when the instance's naming rule rejects the namespace,
        both before anything is created."""
        check_label(name, "collection name")
        if self.manifest.has_collection(name):
            raise StateError(f"collection {name!r} already exists")
        instance = on or DEFAULT_INSTANCE
        be = self.instance(instance)
        space = self.space(space_label)
        ns = self.namespace_name(name, space, be)
        from ..types import NamespaceSpec

        be.create_namespace(
            NamespaceSpec(ns, space.spec.dimension, space.spec.metric, space.fingerprint)
        )
        if be.capabilities.native_alias:
            be.set_alias(name, ns)
        self.manifest.create_collection(name, space_label, space.fingerprint, ns,
                                        backend=instance)
        return Collection(self, name)

    def namespace_name(self, collection: str, space: Space, backend: Backend) -> str:
        """The physical namespace of ``space`` in ``collection`` on ``backend``, by that
        backend's naming rule; ``InvalidNamespaceName`` when the rule rejects it, and
        ``NamespaceNameTaken`` when the manifest records that name for another space or
        collection (the rule maps both to one name: sharing it would mix their documents).
        Checked before anything is created."""
        name = backend.physical_name(collection, space.label, space.fingerprint)
        backend.check_namespace_name(name)
        owner = self.manifest.namespace(name)
        if owner is not None and (owner.collection, owner.space_label) != (
            collection, space.label
        ):
            raise NamespaceNameTaken(name, backend.name, owner.collection, owner.space_label)
        return name

    # -- recovery ---------------------------------------------------------------------

    def recover(self, collection: str, *, force: bool = False) -> RecoveryReport:
        """Crash recovery of ``collection``: see :func:`vecver.runtime.recover.recover`."""
        return recover(self, collection, force=force)
