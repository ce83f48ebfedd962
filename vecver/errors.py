"""Typed errors. Every error vecver raises derives from :class:`VecverError`.

Each error keeps its details as attributes (``DimensionMismatch.expected``) and carries a
``hint`` that tells the user what to do next. ``str(err)`` is a one-line message suitable
for the CLI's stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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


class UnknownBackendInstance(ConfigError):
    """A backend instance name (``migrate --on NAME``, a manifest row) that the config
    does not declare."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(
            f"no backend instance {name!r} in the config",
            hint="declared instances: " + (", ".join(sorted(self.known)) or "none")
            + f"; add a [backends.{name}] table",
        )


class UnknownBackendOption(ConfigError):
    """A backend instance's table holds an option its backend does not take."""

    def __init__(self, instance: str, backend: str, unknown: Sequence[str],
                 valid: Sequence[str]) -> None:
        self.instance = instance
        self.backend = backend
        self.unknown = list(unknown)
        self.valid = list(valid)
        where = "[backend]" if instance == "default" else f"[backends.{instance}]"
        super().__init__(
            f"{where} ({backend} backend): unknown option"
            f"{'s' if len(self.unknown) > 1 else ''} " + ", ".join(map(repr, self.unknown)),
            hint="valid options: " + (", ".join(self.valid) or "none"),
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


class MetricsNotInstalled(ConfigError):
    """The Prometheus exposition of :mod:`vecver.read.metrics` needs ``prometheus-client``,
    which is not installed (``package``; ``extra`` is the vecver extra that brings it)."""

    def __init__(self, package: str = "prometheus-client", extra: str = "metrics") -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"the Prometheus exposition needs the package {package!r}, which is not installed",
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


class ManifestReadOnly(ManifestError):
    """A write to a manifest that can only be read here (read-only file, directory or
    mount). Read-only verbs (``status``, ``history``, ``search``) still work."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"manifest {path} is read-only here ({reason}); this command needs to write it",
            hint="run it where the manifest file and its directory are writable (check "
            "permissions and the mount), or use a read-only verb such as `vecver status`",
        )


class ManifestFull(ManifestError):
    """The manifest could not record a write: its disk (or quota) is full. What was
    recorded before is intact; the failed step recorded nothing."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"no space left to write manifest {path}: {reason}",
            hint="free disk space (or raise the quota) and run the command again; "
            "nothing recorded before was lost",
        )


class ManifestEmpty(ManifestError):
    """The manifest path is an empty (0-byte) file: not a manifest, and not treated as a
    new one, since a truncated manifest would otherwise silently lose its record."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"manifest {path} is an empty file (0 bytes)",
            hint="if it was created by mistake, delete it and vecver will create a new "
            "manifest; if it held a record, restore it from a backup",
        )


class ManifestUnavailable(ManifestError):
    """The manifest cannot be opened or read at all (a directory at its path, a
    permission denied, an I/O error). ``reason`` is the cause reported by the system."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"manifest {path} cannot be opened: {reason}",
            hint="check that [manifest] path names a file vecver may read, on a mounted, "
            "healthy file system",
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


class NamespaceMissing(StateError):
    """The manifest records a space whose namespace is not on its backend instance any
    more (deleted outside vecver, or the instance's path, URL or layout changed). A
    cutover or rollback onto it is refused, forced or not: readers would find nothing."""

    def __init__(self, collection: str, label: str, namespace: str, instance: str) -> None:
        self.collection = collection
        self.label = label
        self.namespace = namespace
        self.instance = instance
        super().__init__(
            f"space {label!r} of {collection!r}: its namespace {namespace!r} does not exist "
            f"on backend instance {instance!r} (deleted outside vecver, or the instance's "
            "path, URL or layout changed)",
            hint=f"restore it or the instance's settings, or `vecver abort {collection} "
            f"--space {label}` and migrate again",
        )


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
    """The evaluation of the target space is below the configured gate.

    ``reasons``: one line per check that did not pass; ``result``: the whole
    :class:`vecver.ops.cutover.GateResult` (every check, with its status), when known."""

    def __init__(
        self, collection: str, label: str, reasons: Sequence[str], *, result: Any = None,
        hint: str | None = None,
    ) -> None:
        self.collection = collection
        self.label = label
        self.reasons = list(reasons)
        self.result = result
        super().__init__(
            f"cutover of {collection!r} to {label!r} refused by the gate: " + "; ".join(reasons),
            hint=hint or "improve the space, relax [gate], or pass --force",
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


class GateChecksNotRun(GateFailed):
    """A check the ``[gate]`` configures could not run on the recorded evaluations (the
    relevance comparison needs an evaluation with judgments, ``--queries``), so the gate
    cannot say the target is no worse. ``not_run``: the names of those checks."""

    def __init__(
        self, collection: str, label: str, not_run: Sequence[str], reasons: Sequence[str],
        *, result: Any = None, hint: str | None = None,
    ) -> None:
        self.not_run = list(not_run)
        super().__init__(
            collection, label, reasons, result=result,
            hint=hint or f"run `vecver evaluate {collection} --queries FILE` (judged queries) "
            "first, or pass --force",
        )


class FingerprintMismatch(StateError):
    """A read would compare vectors of two geometries: the space's embedder now gives
    another fingerprint than the namespace it reads holds."""

    def __init__(self, label: str, namespace: str, held: str, current: str) -> None:
        self.label = label
        self.namespace = namespace
        self.held = held
        self.current = current
        super().__init__(
            f"space {label!r} now resolves to fingerprint {current[:12]} but namespace "
            f"{namespace!r} holds {held[:12]}: its vectors are not comparable with the query",
            hint="a space whose geometry changed needs a new label; give it one and migrate",
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


class LeaseLost(StateError):
    """A lease this process held was taken over by another owner (it expired: this
    process did not renew it within its TTL). Stop the work it protected."""

    def __init__(self, name: str, holder: str | None) -> None:
        self.name = name
        self.holder = holder
        super().__init__(
            f"lost the lease {name!r} to {holder or 'nobody'}",
            hint="the work was taken over or abandoned; run the command again to resume",
        )


class AlreadyRecorded(StateError):
    """A row the manifest already holds (a collection, a namespace) was to be created
    again. ``what`` is the kind of row, ``key`` its name."""

    def __init__(self, what: str, key: str, detail: str | None = None) -> None:
        self.what = what
        self.key = key
        super().__init__(
            f"{what} {key!r} already exists" + (f" ({detail})" if detail else ""),
        )


class QueueFull(StateError):
    """The work queue of ``kind`` holds ``limit`` items not yet completed."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        super().__init__(
            f"the work queue {kind!r} is full ({limit} items not yet completed)",
            hint="let the workers catch up (or start more), or raise the queue limit",
        )


class CandidateFailed(StateError):
    """The embedder of a space being built (or the source of its backfill) broke.

    The space was marked ``failed``: it no longer receives writes, and the collection's
    active space keeps taking them. ``space`` is its label, ``reason`` what broke."""

    def __init__(self, collection: str, space: str, reason: str) -> None:
        self.collection = collection
        self.space = space
        self.reason = reason
        super().__init__(
            f"space {space!r} of {collection!r} failed and was marked failed: {reason}",
            hint=f"fix the space and resume with `vecver migrate {collection} --to {space}`, "
            f"or abandon it with `vecver abort {collection} --space {space}`",
        )


class NotAbortable(StateError):
    """``abort`` of a space that is not a migration in progress (active, retired, dropped,
    or none at all)."""

    def __init__(self, collection: str, space: str | None, state: str | None,
                 hint: str) -> None:
        self.collection = collection
        self.space = space
        self.state = state
        what = f"space {space!r} of {collection!r}" if space else f"collection {collection!r}"
        why = f" is {state}" if state else " has no migration in progress"
        super().__init__(f"cannot abort: {what}{why}", hint=hint)


# --- input validation ----------------------------------------------------------------


class InvalidInput(VecverError, ValueError):
    """Bad input from the caller. Nothing was written."""


class InvalidArgument(InvalidInput):
    """A call argument of the wrong kind or out of range (``batch_size=0``, a string
    where a list of ids is expected). ``name`` is the argument, ``value`` what was given."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(
            f"{name} must be {expected}, got {value!r}", hint="nothing was written"
        )


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
    """A document id is empty, not a string, holds a NUL character or does not encode as
    UTF-8 (a lone surrogate). ``reason`` says which (None: empty or not a string)."""

    def __init__(self, value: object, reason: str | None = None) -> None:
        self.value = value
        self.reason = reason
        why = f": {reason}" if reason else ""
        super().__init__(
            f"invalid document id {value!r}{why}",
            hint="ids are non-empty strings of valid Unicode without NUL characters; "
            "nothing was written",
        )


class ZeroVector(InvalidInput):
    """A vector of all zeros in a space whose metric needs a norm (cosine): it has no
    direction, so every score against it is meaningless."""

    def __init__(self, doc_id: str | None, metric: str) -> None:
        self.doc_id = doc_id
        self.metric = metric
        who = f" for document {doc_id!r}" if doc_id is not None else " (a query)"
        super().__init__(
            f"vector{who} is all zeros, which has no direction under the {metric} metric",
            hint="check the embedder's output (an all-zero vector usually means a broken "
            "model or empty input); nothing was written",
        )


class LimitExceeded(InvalidInput):
    """A value is larger than the backend declares it accepts (metadata or text size).

    ``what`` names the value (``"metadata"``, ``"text"``), ``limit`` and ``size`` are in
    bytes of UTF-8 (JSON for metadata)."""

    def __init__(self, what: str, doc_id: str | None, size: int, limit: int, backend: str) -> None:
        self.what = what
        self.doc_id = doc_id
        self.size = size
        self.limit = limit
        self.backend = backend
        who = f" of document {doc_id!r}" if doc_id is not None else ""
        super().__init__(
            f"{what}{who} is {size} bytes; the {backend} backend accepts at most {limit}",
            hint=f"shorten the {what}; nothing was written",
        )


class UnsupportedMetadata(InvalidInput):
    """Metadata holds a kind of value the backend cannot store (``kind``: ``"list"``,
    ``"object"``, ``"null"``, ...)."""

    def __init__(self, doc_id: str | None, key: str, kind: str, allowed: Sequence[str],
                 backend: str) -> None:
        self.doc_id = doc_id
        self.key = key
        self.kind = kind
        self.allowed = sorted(allowed)
        self.backend = backend
        who = f" of document {doc_id!r}" if doc_id is not None else ""
        super().__init__(
            f"metadata field {key!r}{who} holds a {kind}, which the {backend} backend "
            "cannot store",
            hint="metadata values there may be: " + ", ".join(self.allowed)
            + "; nothing was written",
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


class ReservedMetadataKey(InvalidInput):
    """User metadata uses a key the backend keeps for vecver's own payload fields."""

    def __init__(self, doc_id: str | None, key: str, prefix: str) -> None:
        self.doc_id = doc_id
        self.key = key
        self.prefix = prefix
        who = f" of document {doc_id!r}" if doc_id is not None else ""
        super().__init__(
            f"metadata field {key!r}{who} uses the prefix {prefix!r}, reserved for vecver",
            hint=f"rename the field (keys starting with {prefix!r} are vecver's); "
            "nothing was written",
        )


class InvalidFilter(InvalidInput):
    """A metadata filter is malformed."""


class UnsupportedFilter(InvalidFilter):
    """A filter uses an operator the backend does not declare in ``capabilities.filter_ops``."""

    def __init__(self, operators: Sequence[str], supported: Sequence[str], backend: str) -> None:
        self.operators = sorted(operators)
        self.supported = sorted(supported)
        self.backend = backend
        super().__init__(
            f"the {backend} backend does not support the filter operator(s) "
            + ", ".join(self.operators),
            hint="supported operators: " + (", ".join(self.supported) or "none"),
        )


class FilterNotExpressible(UnsupportedFilter):
    """A filter uses operators the backend supports, but in a way its query language cannot
    express exactly (a field name it cannot address, a number it cannot compare exactly);
    refused rather than run as a wider or narrower filter. ``field`` names the condition's
    field and ``reason`` says what cannot be expressed."""

    def __init__(self, backend: str, field: str, reason: str, *, hint: str | None = None) -> None:
        self.operators = []
        self.supported = []
        self.backend = backend
        self.field = field
        self.reason = reason
        InvalidFilter.__init__(
            self,
            f"the {backend} backend cannot express the filter on {field!r} exactly: {reason}",
            hint=hint
            or "rewrite that condition (or filter on another field); nothing was searched",
        )


class UnknownRoute(InvalidInput):
    """A route string no route parses (``route`` as given; ``forms`` the accepted forms)."""

    def __init__(self, route: object, forms: Sequence[str]) -> None:
        self.route = route
        self.forms = list(forms)
        super().__init__(f"unknown route {route!r}", hint="use " + ", ".join(self.forms))


class RoutingKeyRequired(InvalidInput):
    """A route that splits traffic by user (``canary``) was called without a routing key."""

    def __init__(self, route: str) -> None:
        self.route = route
        super().__init__(
            f"route {route!r} needs a routing key (a user or session id) so that one user "
            "always sees one space",
            hint="pass routing_key=... (CLI: --routing-key KEY)",
        )


class RerankHookError(InvalidInput):
    """A re-rank hook raised, or returned something other than one finite number per text.

    ``reason`` says what was wrong; ``query`` is the query it was scoring. The search
    returned nothing and recorded nothing."""

    def __init__(self, reason: str, query: str) -> None:
        self.reason = reason
        self.query = query
        super().__init__(
            f"the re-rank hook failed on query {query[:60]!r}: {reason}",
            hint="the hook takes (query, texts) and returns one finite score per text",
        )


class SourceError(InvalidInput):
    """A source of documents (e.g. a JSONL file) is malformed."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}", hint="fix the input; nothing from it was written")


# --- drift detection -----------------------------------------------------------------


class DriftSampleInvalid(InvalidInput):
    """A sample of vectors given to a drift statistic cannot be used: it is empty, not a
    matrix, holds NaN or infinity, or has another dimension than the sample it is
    compared with. ``what`` names the sample, ``reason`` says what is wrong."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(
            f"{what} cannot be used for drift detection: {reason}",
            hint="pass a non-empty matrix of finite vectors of the space's dimension; "
            "nothing was recorded",
        )


class DriftReferenceEmpty(InvalidInput):
    """The reference (or recent) sample of a drift check holds no vectors: nothing was
    written to the space yet, or nothing before the chosen ``--reference`` time.
    ``which`` is ``"reference"`` or ``"recent"``."""

    def __init__(self, collection: str, space: str, which: str, reference: str | None,
                 *, hint: str | None = None) -> None:
        self.collection = collection
        self.space = space
        self.which = which
        self.reference = reference
        at = f" ({reference})" if reference else ""
        super().__init__(
            f"the {which} sample of space {space!r} of {collection!r}{at} holds no vectors",
            hint=hint or "write documents first (vecver samples written vectors "
            "automatically), or pick another --reference; nothing was recorded",
        )


class DriftReferenceMismatch(InvalidInput):
    """A drift reference sample was taken in another space (another fingerprint or
    dimension) than the one checked: its vectors are not comparable."""

    def __init__(self, reference: str, space: str, expected: str, got: str) -> None:
        self.reference = reference
        self.space = space
        self.expected = expected
        self.got = got
        super().__init__(
            f"drift reference {reference!r} belongs to space {got[:24]}, not to the space "
            f"checked, {space!r} ({expected[:12]})",
            hint="use a reference sample of the same space (`--space` selects the space "
            "checked); nothing was recorded",
        )


class UnknownDriftReference(InvalidInput):
    """``--reference`` is neither a time (ISO date, epoch seconds, or an age such as
    ``7d``), nor a saved reference sample, nor a ``.npy``/``.npz`` file."""

    def __init__(self, reference: object, known: Sequence[str] = ()) -> None:
        self.reference = reference
        self.known = list(known)
        saved = ", ".join(sorted(self.known)) or "none"
        super().__init__(
            f"unknown drift reference {reference!r}",
            hint="give a time (2026-11-30, 2026-11-30T12:00, 1764460800, 7d, 12h), a .npy "
            f"or .npz file of vectors, or a saved sample (saved: {saved})",
        )


# --- query adapters ------------------------------------------------------------------


class AdapterPairMismatch(InvalidInput):
    """Training pairs (or vectors given to an adapter) whose shapes do not fit: another
    number of source than target rows, no columns, or another width than the adapter
    maps. ``source_shape`` and ``target_shape`` are the shapes seen."""

    def __init__(self, reason: str, source_shape: tuple[int, ...],
                 target_shape: tuple[int, ...]) -> None:
        self.reason = reason
        self.source_shape = tuple(source_shape)
        self.target_shape = tuple(target_shape)
        super().__init__(
            f"adapter pairs do not fit: {reason}",
            hint="pass one source (new-space) row per target (old-space) row, each of its "
            "space's dimension; nothing was stored",
        )


class NonFinitePairs(InvalidInput):
    """A training pair holds NaN or infinity. ``side`` is ``"source"`` or ``"target"``,
    ``row`` the first bad row."""

    def __init__(self, side: str, row: int) -> None:
        self.side = side
        self.row = row
        super().__init__(
            f"{side} vector of training pair #{row} contains NaN or infinity",
            hint="check the embedder's output and the stored vectors; nothing was stored",
        )


class TooFewPairs(InvalidInput):
    """Fewer training pairs than the adapter kind needs to be fitted at all."""

    def __init__(self, kind: str, got: int, need: int) -> None:
        self.kind = kind
        self.got = got
        self.need = need
        super().__init__(
            f"adapter kind {kind!r} needs at least {need} training pairs, got {got}",
            hint="pass more pairs (--pairs N), write more documents, or choose a simpler "
            "kind (procrustes needs the fewest)",
        )


class UnknownAdapterKind(InvalidInput):
    """An adapter kind this version of vecver does not know."""

    def __init__(self, kind: object, known: Sequence[str]) -> None:
        self.kind = kind
        self.known = list(known)
        super().__init__(f"unknown adapter kind {kind!r}",
                         hint="known kinds: " + ", ".join(self.known))


class NoAdapter(StateError):
    """No (enabled) adapter maps queries of space ``source`` into space ``target`` of the
    collection, or no adapter has the id asked for."""

    def __init__(self, collection: str, source: str | None, target: str | None,
                 detail: str = "") -> None:
        self.collection = collection
        self.source = source
        self.target = target
        pair = f" from {source!r} to {target!r}" if source and target else ""
        super().__init__(
            f"no enabled adapter{pair} in collection {collection!r}" + (
                f": {detail}" if detail else ""),
            hint=f"fit one with `vecver adapter fit {collection} --from NEW --to OLD`, or "
            f"search with route `dual` meanwhile",
        )


class AdapterStale(StateError):
    """An adapter was fitted between spaces whose fingerprints are no longer the
    collection's: comparing through it would mix geometries. ``side`` is ``"source"`` or
    ``"target"``; ``fitted`` the fingerprint it was fitted to, ``current`` the one now."""

    def __init__(self, adapter: str, side: str, label: str, fitted: str,
                 current: str) -> None:
        self.adapter = adapter
        self.side = side
        self.label = label
        self.fitted = fitted
        self.current = current
        super().__init__(
            f"adapter {adapter} was fitted to {side} space {label!r} with fingerprint "
            f"{fitted[:12]}, but that space is now {current[:12]}",
            hint="refit it with `vecver adapter fit`; until then search with route `dual`",
        )


class AdapterGateFailed(StateError):
    """The adapter route was refused: the enabled adapter's held-out retention (its
    recall@k divided by a full re-embed's) is below ``[adapters] min_retention``, or was
    never measured (``retention`` is None)."""

    def __init__(self, collection: str, adapter: str, retention: float | None,
                 threshold: float) -> None:
        self.collection = collection
        self.adapter = adapter
        self.retention = retention
        self.threshold = threshold
        got = "was never measured" if retention is None else f"is {retention:.3f}"
        super().__init__(
            f"adapter {adapter} of {collection!r}: held-out retention {got}, below the "
            f"gate {threshold:.3f}",
            hint="search with route `dual` (both spaces, fused) or finish the backfill and "
            f"cut over; `vecver adapter evaluate {collection}` measures it, a kind with "
            "more capacity or more pairs may pass",
        )


# --- backends ------------------------------------------------------------------------


class BackendError(VecverError):
    """A backend operation failed."""


class TransientBackendError(BackendError):
    """A backend operation failed in a way that may succeed when retried.

    ``retry_after`` is the delay in seconds the database asked for (an HTTP
    ``Retry-After``), or None."""

    retry_after: float | None = None

    def __init__(
        self, message: str, *, hint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        if retry_after is not None:
            self.retry_after = retry_after


class WriteNotVisible(TransientBackendError):
    """A write returned but did not become visible to reads of the same namespace within
    the backend's declared ``visibility_timeout`` (an eventually consistent database).

    ``op`` is ``"upsert"`` or ``"delete"``, ``pending`` how many of its ids were still not
    reflected, ``waited`` the seconds waited. The write itself may still land."""

    def __init__(self, namespace: str, op: str, pending: int, waited: float) -> None:
        self.namespace = namespace
        self.op = op
        self.pending = pending
        self.waited = waited
        super().__init__(
            f"{op} to namespace {namespace!r} was not visible to reads after {waited:.1f} s "
            f"({pending} id(s) not reflected yet)",
            hint="retry; if it persists, raise the backend's visibility_timeout or check "
            "the database's replication",
        )


class StorageFull(BackendError):
    """The backend's storage has no space left (disk full, quota reached). Writes that
    returned before are durable; the failed write left nothing behind."""

    def __init__(self, where: str, cause: str) -> None:
        self.where = where
        self.cause = cause
        super().__init__(
            f"no space left for {where}: {cause}",
            hint="free disk space (or raise the quota) and run the command again; "
            "nothing acknowledged was lost",
        )


class BatchObjectsFailed(BackendError):
    """The database refused some objects of a batch write (Weaviate reports errors per
    object). ``namespace`` is where it wrote, ``failed`` maps each refused record's id to
    the database's message; the other records of the batch may have been written (writes
    are idempotent: fix the input or the cause, then retry the whole batch)."""

    def __init__(self, namespace: str, failed: dict[str, str]) -> None:
        self.namespace = namespace
        self.failed = dict(failed)
        shown = "; ".join(f"{i!r}: {m}" for i, m in list(self.failed.items())[:5])
        more = f" (and {len(self.failed) - 5} more)" if len(self.failed) > 5 else ""
        super().__init__(
            f"{len(self.failed)} record(s) of a batch written to {namespace!r} were refused: "
            f"{shown}{more}",
            hint="the records named were not written; fix what the message says and retry",
        )


class InvalidNamespaceName(InvalidInput):
    """A namespace name the backend's naming rule rejects; checked before anything is
    created. ``reason`` says which rule."""

    def __init__(self, name: object, backend: str, reason: str) -> None:
        self.name = name
        self.backend = backend
        self.reason = reason
        super().__init__(
            f"{name!r} is not a valid namespace name on the {backend} backend: {reason}",
            hint="choose a shorter or simpler collection name or space label",
        )


class NamespaceNameTaken(InvalidNamespaceName):
    """The backend's naming rule maps a new (collection, space) to the physical name of a
    namespace that the manifest already records for another space or collection (names
    are derived from collection names and labels, and two pairs can meet: ``a__b`` + ``c``
    and ``a`` + ``b__c``). Refused before anything is created: sharing it would mix the
    documents of both."""

    def __init__(self, name: str, backend: str, collection: str, space_label: str) -> None:
        self.owner_collection = collection
        self.owner_space = space_label
        super().__init__(
            name, backend,
            f"it is already the namespace of space {space_label!r} of collection "
            f"{collection!r}",
        )
        self.hint = (
            "give the new space another label (or the collection another name): the "
            "physical name is derived from both"
        )


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


class ForeignNamespace(BackendError):
    """A name the backend holds an object under (a collection, an index) that vecver did not
    create: vecver neither writes to it, nor drops it, nor counts it as a namespace."""

    def __init__(self, namespace: str, backend: str) -> None:
        self.namespace = namespace
        self.backend = backend
        super().__init__(
            f"{namespace!r} on the {backend} backend exists but was not created by vecver",
            hint="choose another collection name or space label; vecver leaves it untouched",
        )


class AdoptError(InvalidInput):
    """``adopt`` refused an existing collection (bad input: exit code 2), or an adopted
    collection cannot be used as its layout says. ``namespace`` is the physical
    collection; nothing was recorded or written when adopt raised it."""

    namespace: str = ""


class AdoptedNotFound(AdoptError):
    """The collection to adopt does not exist on the backend instance."""

    def __init__(self, namespace: str, backend: str, instance: str) -> None:
        self.namespace = namespace
        self.backend = backend
        self.instance = instance
        super().__init__(
            f"there is no collection {namespace!r} to adopt on backend instance "
            f"{instance!r} ({backend})",
            hint="check the name (the physical collection, not an alias) and --on INSTANCE",
        )


class AdoptedDimensionMismatch(AdoptError):
    """The collection's vectors have another dimension than the space adopting it."""

    def __init__(self, namespace: str, space: str, expected: int, actual: int) -> None:
        self.namespace = namespace
        self.space = space
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"collection {namespace!r} holds {actual}-dimensional vectors, space {space!r} "
            f"makes {expected}-dimensional ones",
            hint="adopt it as the space of the model that filled it (same dimension); "
            "nothing was recorded",
        )


class AdoptedMetricMismatch(AdoptError):
    """The collection's distance metric is not the space's."""

    def __init__(self, namespace: str, space: str, expected: str, actual: str) -> None:
        self.namespace = namespace
        self.space = space
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"collection {namespace!r} uses the {actual} metric, space {space!r} the "
            f"{expected} metric",
            hint=f"declare the space with metric = \"{actual}\" (the collection's); "
            "nothing was recorded",
        )


class AdoptedFieldMissing(AdoptError):
    """The collection has no such field (``role``: ``"text"`` or ``"id"``), or stored
    objects lack it (``keys``: some of their native keys, ``count``: how many were
    found lacking it)."""

    def __init__(self, namespace: str, field: str, role: str, keys: Sequence[object],
                 count: int | None = None, fields: Sequence[str] | None = None) -> None:
        self.namespace = namespace
        self.field = field
        self.role = role
        self.keys = list(keys)
        self.count = len(self.keys) if count is None else count
        self.fields = list(fields or [])
        if self.keys:
            shown = ", ".join(repr(k) for k in self.keys[:5])
            what = (f"{self.count} stored object(s) of collection {namespace!r} lack a "
                    f"{'non-blank string' if role == 'text' else 'string or integer'} "
                    f"{role} field {field!r} (keys {shown})")
        else:
            what = f"collection {namespace!r} has no field {field!r} (the {role} field)"
        known = f"; its fields: {', '.join(self.fields)}" if self.fields else ""
        super().__init__(
            what,
            hint=f"name the field that holds the document's {role} with --{role}-field"
            f"{known}",
        )


class AdoptedIdDuplicated(AdoptError):
    """Several stored objects hold the same value in the id field."""

    def __init__(self, namespace: str, field: str, ids: Sequence[str]) -> None:
        self.namespace = namespace
        self.field = field
        self.ids = list(ids)
        super().__init__(
            f"the id field {field!r} of collection {namespace!r} is not unique: "
            + ", ".join(repr(i) for i in self.ids[:5]) + " appear more than once",
            hint="adopt with an id field that is unique per object (or none: the "
            "collection's own keys); nothing was recorded",
        )


class AdoptedVectorsMismatch(AdoptError):
    """The stored vectors do not look like the space's embeddings of the stored texts
    (another model, another prefix or the wrong text field)."""

    def __init__(self, namespace: str, space: str, similarity: float, threshold: float,
                 sample: int) -> None:
        self.namespace = namespace
        self.space = space
        self.similarity = similarity
        self.threshold = threshold
        self.sample = sample
        super().__init__(
            f"the vectors of collection {namespace!r} are not space {space!r}'s embeddings "
            f"of their texts: median cosine similarity {similarity:.3f} over {sample} "
            f"objects, at least {threshold:.2f} needed",
            hint="adopt it as the space (model, prefixes) that filled it, check "
            "--text-field, or pass --skip-vector-check if you are sure",
        )


class AdoptedReadOnly(StateError):
    """A write reached an adopted collection that was adopted read-only (refused: exit
    code 3; nothing was written)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        super().__init__(
            f"collection {namespace!r} was adopted read-only: vecver does not write to it",
            hint="writes are refused while the adopted space is live (active, or retired "
            "for a rollback); adopt it without --read-only for a collection that takes "
            "writes",
        )


class AdoptedProtected(StateError):
    """vecver never drops a collection it adopted."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        super().__init__(
            f"collection {namespace!r} was adopted: vecver does not drop it",
            hint="drop it with the database's own client if you no longer need it",
        )


class AdoptedFieldClash(InvalidInput):
    """A document's metadata has a key that is the adopted collection's text or id
    field."""

    def __init__(self, doc_id: str, field: str, namespace: str) -> None:
        self.doc_id = doc_id
        self.field = field
        self.namespace = namespace
        super().__init__(
            f"metadata field {field!r} of document {doc_id!r} is the text or id field of "
            f"the adopted collection {namespace!r}",
            hint="rename the metadata field; nothing was written",
        )


class AdoptedRowRefused(InvalidInput):
    """A document does not fit the schema of the adopted collection it is written to:
    the schema has fields the metadata lacks (``missing``), or the metadata has fields
    the schema lacks and the collection takes no others (``extra``)."""

    def __init__(self, doc_id: str, namespace: str, missing: Sequence[str],
                 extra: Sequence[str], fields: Sequence[str]) -> None:
        self.doc_id = doc_id
        self.namespace = namespace
        self.missing = list(missing)
        self.extra = list(extra)
        self.fields = list(fields)
        what = []
        if self.missing:
            what.append("lacks " + ", ".join(repr(f) for f in self.missing))
        if self.extra:
            what.append("has fields the schema does not: "
                        + ", ".join(repr(f) for f in self.extra))
        super().__init__(
            f"document {doc_id!r} does not fit the schema of the adopted collection "
            f"{namespace!r}: its metadata " + "; ".join(what),
            hint="give every document the collection's fields in its metadata ("
            + ", ".join(self.fields) + "); nothing was written",
        )


class BackendInUse(BackendError):
    """The backend's storage is held by another client that allows no second one (an
    embedded database in a directory, opened by another process or object)."""

    def __init__(self, backend: str, location: str, detail: str) -> None:
        self.backend = backend
        self.location = location
        super().__init__(
            f"the {backend} storage at {location} is in use by another client: {detail}",
            hint="close the other client (or process) first; for several processes at once "
            "use a database server",
        )


class WriteFailed(BackendError):
    """A dual-write reached some spaces but not all. The manifest keeps the intent.

    ``failed`` names the space that failed and ``written`` the spaces that were written.
    The next write-capable command (or :meth:`vecver.Workspace.recover`) reconciles every
    live space with the active space's content for these documents.
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
