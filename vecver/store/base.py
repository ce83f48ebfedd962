"""The manifest store protocol and the rows it returns.

:class:`ManifestStore` is everything the core asks of the durable record: spaces,
collections and their namespaces, the alias and its history, pending cutovers, write
intents and tombstones, backfill checkpoints, leases, a work queue, evaluations and the
append-only event log. :class:`vecver.store.sqlite.Manifest` (one SQLite file) is the
embedded implementation; another store (PostgreSQL, for several hosts) implements the same
methods and proves it with :class:`vecver.testing.store_suite.ManifestStoreSuite`.

Nothing of a particular database crosses this interface: methods take and return plain
Python values and the frozen rows below, and every failure is a :mod:`vecver.errors` type.
Lifecycle rules (which transitions are allowed, which namespaces are live, where a
rollback returns to) are pure code in :mod:`vecver.lifecycle`; a store applies them
atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: the backend instance of a namespace when none is named: the config's ``[backend]`` table
DEFAULT_BACKEND = "default"


@dataclass(frozen=True)
class NamespaceRow:
    """One space of one collection, stored in one physical namespace.

    ``backend`` names the backend *instance* that holds the namespace (``"default"`` for
    the config's ``[backend]`` table). ``reason`` is why the namespace reached its current
    state, when the transition gave one (for ``failed``: what broke)."""

    name: str
    collection: str
    space_label: str
    fingerprint: str
    state: str
    created_at: float
    updated_at: float
    ready_at: float | None
    backend: str = DEFAULT_BACKEND
    reason: str | None = None
    #: how the namespace's physical collection is laid out when vecver did not create it
    #: (an adopted collection: its own id and text fields, no stamps); ``{}`` otherwise
    layout: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class SpaceRow:
    label: str
    fingerprint: str
    revision: str
    spec: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class Checkpoint:
    namespace: str
    source: str
    cursor: str | None
    done: int
    stats: dict[str, Any]
    finished: bool
    updated_at: float


@dataclass(frozen=True)
class Intent:
    """A write (``op`` = ``upsert`` or ``delete``) recorded before its first backend write
    and removed once every live namespace has it."""

    id: int
    collection: str
    op: str
    doc_ids: list[str]
    owner: str
    failed: bool
    at: float


@dataclass(frozen=True)
class Lease:
    """The holder of a named lease and until when it holds it (epoch seconds)."""

    name: str
    owner: str
    expires_at: float


@dataclass(frozen=True)
class WorkItem:
    """A unit of work handed out by :meth:`ManifestStore.claim`.

    ``payload`` is the JSON value given to ``enqueue``; ``attempts`` counts the earlier
    claims that ended in ``release`` (or a lease that expired); ``lease_expires_at`` is
    when the item goes back to the queue unless completed, released or renewed."""

    id: int
    kind: str
    payload: Any
    priority: int
    dedup_key: str | None
    attempts: int
    owner: str
    lease_expires_at: float
    enqueued_at: float
    last_error: str | None = None


@dataclass(frozen=True)
class QueueStats:
    """Counts of one kind of work: ``pending`` (claimable now, including items whose lease
    expired), ``leased`` (held under a live lease), ``completed`` (ever), the ``limit`` on
    pending + leased, and the age in seconds of the oldest claimable item (0 if none)."""

    kind: str
    pending: int
    leased: int
    completed: int
    limit: int
    oldest_pending_age: float = 0.0
    retried: int = 0


@dataclass(frozen=True)
class Artifact:
    """One version of a named blob the core keeps beside the manifest's rows: a query
    adapter, a drift reference sample, a shadow-traffic summary. ``(kind, collection,
    name)`` names it (``collection`` is ``""`` for workspace-wide ones); ``version``
    counts from 1; at most one version of a name is ``enabled``. ``meta`` is a JSON
    object (what the artifact is tied to: fingerprints, sizes, scores)."""

    id: int
    kind: str
    collection: str
    name: str
    version: int
    meta: dict[str, Any] = field(hash=False)
    data: bytes = field(repr=False)
    enabled: bool
    created_at: float

    @property
    def size(self) -> int:
        """The blob's size in bytes."""
        return len(self.data)


# The three record lists below stay plain dicts (JSON-ready, as ``history --json`` shows
# them); the aliases name them and say their keys.

#: one switch of a collection's alias: keys ``id``, ``from`` (None at creation), ``to``,
#: ``reason`` (create, cutover, rollback), ``at``, ``actor``
AliasChange = dict[str, Any]
#: one entry of the append-only event log: keys ``id``, ``at``, ``actor``, ``collection``
#: (None for workspace-wide events), ``kind``, ``detail`` (a dict)
Event = dict[str, Any]
#: one recorded evaluation: keys ``run``, ``namespace``, ``space``, ``at``, ``results``
Evaluation = dict[str, Any]


@runtime_checkable
class ManifestStore(Protocol):
    """The durable record of a workspace. Every method is one atomic step: after a crash
    the store holds either the state before it or after it. Safe to use from several
    threads and processes at once. Errors: :class:`vecver.errors.ManifestError`
    subclasses when the store itself cannot be used (corrupt, read-only, full), a
    :class:`vecver.errors.StateError` when the lifecycle forbids the step (including
    :class:`vecver.errors.AlreadyRecorded` for a row that exists)."""

    path: str

    def close(self) -> None: ...

    @property
    def read_only(self) -> bool: ...

    def require_writable(self) -> None:
        """Raise :class:`vecver.errors.ManifestReadOnly` unless this handle can write: a
        verb that writes calls it before it starts, so it refuses before any work."""
        ...

    # -- event log ------------------------------------------------------------------
    def log(self, kind: str, collection: str | None = None, **detail: Any) -> None: ...
    def events(self, collection: str | None = None) -> list[Event]: ...

    # -- spaces ---------------------------------------------------------------------
    def register_space(
        self, label: str, fingerprint: str, revision: str, spec: dict[str, Any]
    ) -> None: ...
    def space(self, label: str) -> SpaceRow | None: ...
    def spaces(self) -> list[SpaceRow]: ...

    # -- collections and namespaces -------------------------------------------------
    def collections(self) -> list[str]: ...
    def has_collection(self, name: str) -> bool: ...
    def require_collection(self, name: str) -> None: ...
    def create_collection(
        self, name: str, space_label: str, fingerprint: str, ns: str, *,
        backend: str = DEFAULT_BACKEND, layout: Mapping[str, Any] | None = None,
    ) -> None: ...
    def add_namespace(
        self, collection: str, space_label: str, fingerprint: str, ns: str, state: str, *,
        backend: str = DEFAULT_BACKEND, layout: Mapping[str, Any] | None = None,
    ) -> None: ...
    def replan_namespace(
        self, collection: str, space_label: str, fingerprint: str, ns: str, *,
        backend: str = DEFAULT_BACKEND,
    ) -> None: ...
    def namespaces(self, collection: str) -> list[NamespaceRow]: ...
    def namespace(self, name: str) -> NamespaceRow | None: ...
    def namespace_for(self, collection: str, space_label: str) -> NamespaceRow | None: ...
    def live_namespaces(self, collection: str) -> tuple[int, list[NamespaceRow]]: ...
    def generation(self, collection: str) -> int: ...
    def active_namespace(self, collection: str) -> str: ...
    def set_state(
        self, ns: str, to: str, *, expect: Iterable[str] | None = None,
        reason: str | None = None,
    ) -> None: ...
    def switch_active(self, collection: str, to_ns: str, reason: str, **detail: Any) -> str: ...
    def alias_history(self, collection: str) -> list[AliasChange]: ...
    def previous_active(self, collection: str) -> str | None: ...

    # -- pending cutovers (native aliases) ------------------------------------------
    def begin_cutover(self, collection: str, from_ns: str, to_ns: str, reason: str) -> None: ...
    def pending_cutover(self, collection: str) -> tuple[str, str, str] | None: ...
    def clear_cutover(self, collection: str) -> None: ...

    # -- write intents and tombstones -----------------------------------------------
    def begin_write(self, collection: str, op: str, ids: Sequence[str]) -> int: ...
    def end_write(self, intent: int, collection: str, generation: int) -> bool: ...
    def fail_write(self, intent: int) -> None: ...
    def write_epoch(self, collection: str) -> tuple[int, int]: ...
    def intents(self, collection: str) -> list[Intent]: ...
    def drop_intent(self, intent: int) -> None: ...
    def tombstoned(self, collection: str, ids: Sequence[str]) -> set[str]: ...
    def tombstones(
        self, collection: str, after: str | None = None, limit: int = 1000
    ) -> list[str]: ...
    def tombstone_count(self, collection: str) -> int: ...

    # -- checkpoints ----------------------------------------------------------------
    def checkpoint(self, ns: str) -> Checkpoint | None: ...
    def save_checkpoint(
        self, ns: str, source: str, cursor: str | None, done: int, stats: dict[str, Any], *,
        finished: bool = False, lease: str | None = None, lease_ttl: float = 120.0,
    ) -> None: ...
    def clear_checkpoint(self, ns: str) -> None: ...

    # -- owners and leases ----------------------------------------------------------
    @property
    def owner(self) -> str: ...
    def owner_alive(self, owner: str) -> bool: ...
    def heartbeat(self) -> None: ...
    def acquire_lease(self, name: str, ttl: float = 120.0) -> str | None: ...
    def renew_lease(self, name: str, ttl: float = 120.0) -> None: ...
    def release_lease(self, name: str) -> None: ...
    def lease(self, name: str) -> Lease | None: ...

    # -- work queue -----------------------------------------------------------------
    def enqueue(
        self, kind: str, payload: Any, *, priority: int = 0, dedup_key: str | None = None
    ) -> int | None: ...
    def claim(self, kind: str, *, limit: int = 1, ttl: float = 60.0) -> list[WorkItem]: ...
    def complete(self, ids: Sequence[int]) -> list[int]: ...
    def release(self, id: int, *, error: str | None = None) -> bool: ...
    def renew_work(self, ids: Sequence[int], ttl: float = 60.0) -> list[int]: ...
    def queue_stats(self, kind: str) -> QueueStats: ...

    # -- evaluations ----------------------------------------------------------------
    def record_evaluation(
        self, collection: str, run: str, ns: str, space_label: str, results: dict[str, Any]
    ) -> None: ...
    def evaluations(self, collection: str, ns: str | None = None) -> list[Evaluation]: ...

    # -- artifacts (versioned blobs: adapters, reference samples) -------------------
    def put_artifact(
        self, kind: str, collection: str, name: str, data: bytes,
        meta: Mapping[str, Any] | None = None, *, enable: bool = False, keep: int | None = None,
    ) -> Artifact: ...
    def artifact(self, kind: str, collection: str, name: str,
                 version: int | None = None) -> Artifact | None: ...
    def enabled_artifact(self, kind: str, collection: str, name: str) -> Artifact | None: ...
    def artifacts(self, kind: str, collection: str | None = None) -> list[Artifact]: ...
    def enable_artifact(self, id: int) -> Artifact: ...
    def disable_artifact(self, id: int) -> Artifact: ...

    # -- read counts and counters ------------------------------------------------------
    def record_reads(self, collection: str, counts: Mapping[str, int]) -> None: ...
    def read_counts(self, collection: str, *, limit: int | None = None,
                    offset: int = 0) -> list[tuple[str, int]]: ...
    def read_totals(self, collection: str) -> tuple[int, int]: ...
    def bump_counters(self, collection: str, deltas: Mapping[str, float]) -> None: ...
    def counters(self, collection: str, prefix: str = "") -> dict[str, float]: ...
    def reset_counters(self, collection: str, prefix: str = "") -> int: ...

    # -- namespace layout ----------------------------------------------------------
    def set_layout(self, ns: str, layout: Mapping[str, Any]) -> None: ...
