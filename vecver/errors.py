"""Typed errors. Every error vecver raises derives from :class:`VecverError`.

Each error keeps its details as attributes (``DimensionMismatch.expected``) and carries a
``hint`` that tells the user what to do next. ``str(err)`` is a one-line message suitable
for the CLI's stderr.
"""

from __future__ import annotations

from collections.abc import Sequence


class VecverError(Exception):
    """Root of every error vecver raises on purpose."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


# --- configuration and plugins -------------------------------------------------------


class ConfigError(VecverError):
    """The configuration file is missing, unreadable or inconsistent."""


class UnknownBackend(ConfigError):
    """No backend plugin is registered under this name."""

    def __init__(self, name: str, known: Sequence[str], reason: str | None = None) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(
            reason or f"unknown backend {name!r}",
            hint="available backends: " + ", ".join(sorted(self.known)),
        )


class BackendNotInstalled(ConfigError):
    """The backend exists but its client library is not installed."""

    def __init__(self, name: str, package: str, extra: str) -> None:
        self.name = name
        self.package = package
        self.extra = extra
        super().__init__(
            f"backend {name!r} needs the package {package!r}, which is not installed",
            hint=f"pip install 'vecver[{extra}]'",
        )


class EmbedderNotInstalled(ConfigError):
    """An embedder kind needs a library that is not installed."""

    def __init__(self, kind: str, package: str, extra: str) -> None:
        self.kind = kind
        self.package = package
        self.extra = extra
        super().__init__(
            f"embedder {kind!r} needs the package {package!r}, which is not installed",
            hint=f"pip install 'vecver[{extra}]'",
        )


class EmbedderError(VecverError):
    """An embedder could not be loaded or failed to embed."""


# --- manifest ------------------------------------------------------------------------


class ManifestError(VecverError):
    """The manifest cannot be used."""


class ManifestCorrupt(ManifestError):
    """The manifest file is not a readable SQLite database."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"manifest {path} is corrupt: {reason}",
            hint="restore it from a backup, or point [manifest] path at another file",
        )


class ManifestForeign(ManifestError):
    """The manifest file is a SQLite database that vecver did not create."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is a SQLite database that was not created by vecver",
            hint="point [manifest] path at a new file; vecver will not write into it",
        )


class ManifestVersionError(ManifestError):
    """The manifest was written by a newer vecver."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.path = path
        self.found = found
        self.supported = supported
        super().__init__(
            f"manifest {path} has schema version {found}; this vecver reads up to {supported}",
            hint="upgrade vecver",
        )


# --- spaces, collections, lifecycle --------------------------------------------------


class UnknownSpace(VecverError):
    """A space label is neither in the config nor in the manifest."""

    def __init__(self, label: str, known: Sequence[str] = ()) -> None:
        self.label = label
        self.known = list(known)
        hint = "known spaces: " + ", ".join(sorted(self.known)) if self.known else None
        super().__init__(f"unknown space {label!r}", hint=hint or "declare it under [spaces]")


class UnknownCollection(VecverError):
    """The collection does not exist in the manifest."""

    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        self.name = name
        self.known = list(known)
        hint = (
            "known collections: " + ", ".join(sorted(self.known))
            if self.known
            else "create it with `vecver init` or `vecver ingest`"
        )
        super().__init__(f"unknown collection {name!r}", hint=hint)


class SpaceConflict(VecverError):
    """A label is already registered with a different fingerprint."""

    def __init__(self, label: str, registered: str, configured: str) -> None:
        self.label = label
        self.registered = registered
        self.configured = configured
        super().__init__(
            f"space {label!r} is registered with fingerprint {registered[:12]} but the config "
            f"now gives {configured[:12]}",
            hint="a space whose geometry changed needs a new label; give it one and migrate",
        )


class StateError(VecverError):
    """An operation is not allowed in the current lifecycle state."""


class NotReady(StateError):
    """Cutover to a space whose backfill is not complete and verified."""

    def __init__(self, collection: str, label: str, state: str) -> None:
        self.collection = collection
        self.label = label
        self.state = state
        super().__init__(
            f"space {label!r} of collection {collection!r} is {state}, not ready",
            hint=f"finish it with `vecver backfill {collection}` and check `vecver verify`",
        )


class NoPreviousSpace(StateError):
    """Rollback when no space was active before the current one."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        super().__init__(
            f"collection {collection!r} has no previous active space to roll back to",
        )


class GateFailed(StateError):
    """The evaluation of the target space is below the configured gate."""

    def __init__(self, collection: str, label: str, reasons: Sequence[str]) -> None:
        self.collection = collection
        self.label = label
        self.reasons = list(reasons)
        super().__init__(
            f"cutover of {collection!r} to {label!r} refused by the gate: " + "; ".join(reasons),
            hint="improve the space, relax [gate], or pass --force",
        )


class NotEvaluated(StateError):
    """Cutover without a recorded evaluation of the target space."""

    def __init__(self, collection: str, label: str) -> None:
        self.collection = collection
        self.label = label
        super().__init__(
            f"space {label!r} of {collection!r} has no evaluation since it became ready",
            hint=f"run `vecver evaluate {collection}` first, or pass --force",
        )


class LeaseHeld(StateError):
    """Another live process holds the lease for this operation."""

    def __init__(self, name: str, owner: str) -> None:
        self.name = name
        self.owner = owner
        super().__init__(
            f"{name} is being run by {owner}",
            hint="wait for it to finish; a crashed owner's lease is taken over automatically",
        )


# --- input validation ----------------------------------------------------------------


class InvalidInput(VecverError, ValueError):
    """Bad input from the caller. Nothing was written."""


class DimensionMismatch(InvalidInput):
    """A vector's length is not the namespace's dimension."""

    def __init__(self, expected: int, got: int, doc_id: str | None = None, where: str = "") -> None:
        self.expected = expected
        self.got = got
        self.doc_id = doc_id
        target = f" in {where}" if where else ""
        who = f" for document {doc_id!r}" if doc_id is not None else ""
        super().__init__(
            f"vector{who} has dimension {got}, expected {expected}{target}",
            hint="embed with the space's own embedder; a new dimension needs a new space",
        )


class NonFiniteVector(InvalidInput):
    """A vector holds NaN or infinity."""

    def __init__(self, doc_id: str | None = None) -> None:
        self.doc_id = doc_id
        who = f" for document {doc_id!r}" if doc_id is not None else ""
        super().__init__(
            f"vector{who} contains NaN or infinity",
            hint="check the embedder's input and output; nothing was written",
        )


class StampMismatch(InvalidInput):
    """A vector stamped with one space was offered to another space's namespace."""

    def __init__(self, namespace: str, expected: str, got: str, doc_id: str | None = None) -> None:
        self.namespace = namespace
        self.expected = expected
        self.got = got
        self.doc_id = doc_id
        who = f" of document {doc_id!r}" if doc_id is not None else ""
        super().__init__(
            f"vector{who} is stamped with space {got[:12]} but namespace {namespace!r} holds "
            f"space {expected[:12]}: spaces are never mixed",
            hint="embed the text with the target space's embedder",
        )


class MissingText(InvalidInput):
    """A document has no text, or empty text."""

    def __init__(self, doc_id: str) -> None:
        self.doc_id = doc_id
        super().__init__(
            f"document {doc_id!r} has no text",
            hint="every document needs a non-empty 'text'; nothing was written",
        )


class InvalidId(InvalidInput):
    """A document id is empty or not a string."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(
            f"invalid document id {value!r}", hint="ids are non-empty strings; nothing was written"
        )


class DuplicateIds(InvalidInput):
    """The same document id appears more than once in one batch."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:5])
        more = f" and {len(self.ids) - 5} more" if len(self.ids) > 5 else ""
        super().__init__(
            f"duplicate document ids in one batch: {shown}{more}",
            hint="send each id once per batch; nothing was written",
        )


class InvalidFilter(InvalidInput):
    """A metadata filter is malformed."""


class SourceError(InvalidInput):
    """A source of documents (e.g. a JSONL file) is malformed."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}", hint="fix the input; nothing from it was written")


# --- backends ------------------------------------------------------------------------


class BackendError(VecverError):
    """A backend operation failed."""


class TransientBackendError(BackendError):
    """A backend operation failed in a way that may succeed when retried."""


class BackendClosed(BackendError):
    """An operation on a backend that was closed."""

    def __init__(self, name: str) -> None:
        super().__init__(f"backend {name!r} is closed", hint="open a new one")


class NamespaceNotFound(BackendError):
    """The namespace does not exist on the backend."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        super().__init__(f"namespace {namespace!r} does not exist")


class NamespaceExists(BackendError):
    """A namespace of that name exists with another dimension, metric or fingerprint."""

    def __init__(self, namespace: str, reason: str) -> None:
        self.namespace = namespace
        super().__init__(f"namespace {namespace!r} already exists with {reason}")


class WriteFailed(BackendError):
    """A dual-write reached some spaces but not all. The manifest keeps the intent.

    ``failed`` names the space that failed and ``written`` the spaces that were written.
    The next write-capable command (or :meth:`vecver.Workspace.recover`) converges every
    live space to the active space's content for these documents.
    """

    def __init__(self, failed: str, written: Sequence[str], cause: BaseException) -> None:
        self.failed = failed
        self.written = list(written)
        self.cause = cause
        super().__init__(
            f"write to space {failed!r} failed ({cause}); written to: "
            + (", ".join(self.written) or "none"),
            hint="retry the write; `vecver verify` shows and repairs any divergence",
        )
