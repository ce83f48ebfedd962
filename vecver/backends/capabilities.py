"""What a backend can do and accept, declared as data (never discovered by probing).

:class:`Capabilities` is a class attribute of every backend. The base class
(:class:`vecver.backends.base.Backend`) enforces every limit declared here before a call
reaches the database, and the compliance suite (:mod:`vecver.testing`) checks that what is
declared is really honoured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Capabilities", "Consistency", "FILTER_OPS", "METADATA_KINDS"]

Consistency = Literal["strong", "eventual"]

#: Every portable filter operator (:mod:`vecver.filters`).
FILTER_OPS: frozenset[str] = frozenset({"eq", "in", "range"})

#: Every kind of JSON value metadata may hold. ``list`` and ``object`` values are checked
#: element by element against the same set.
METADATA_KINDS: frozenset[str] = frozenset(
    {"null", "bool", "int", "float", "str", "list", "object"}
)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, and the limits the base class enforces for it.

    Features:

    - ``native_alias``: the database has atomic aliases; the core switches them with
      :meth:`Backend.set_alias`. Otherwise the alias is kept in the manifest.
    - ``namespace_kind``: what one namespace is on this database (for messages and docs).
    - ``filter_ops``: the portable filter operators ``search`` accepts; a filter using
      another one is refused with :class:`~vecver.errors.UnsupportedFilter`.
    - ``persistent``: data survives closing and reopening the backend.
    - ``shared_between_processes``: several processes may open it at once and see each
      other's writes.
    - ``remote_reads``: a read is a round trip to a server (another process or host),
      waited for without holding the interpreter, so two reads overlap: ``verify`` reads
      the active space's next page while it fetches this page's copies. False (the
      default) for an engine that runs in this process, where overlapping only adds
      contention.

    Limits (each enforced by the base before the database is called):

    - ``max_batch``: records per database write; a longer ``upsert`` is cut into chunks.
    - ``max_fetch_ids`` / ``max_delete_ids``: ids per database fetch / delete; longer lists
      are cut into chunks (Pinecone takes at most 1,000).
    - ``max_metadata_bytes``: the JSON (UTF-8) size of one record's metadata, or None.
    - ``max_text_bytes``: the UTF-8 size of one record's text, or None.
    - ``metadata_kinds``: the kinds of metadata values the database stores (a subset of
      :data:`METADATA_KINDS`); other values are refused with
      :class:`~vecver.errors.UnsupportedMetadata`.

    Consistency:

    - ``consistency``: ``"strong"`` when a read issued after a write returned reflects it;
      ``"eventual"`` when reads may lag. For an eventual backend the base waits after every
      ``upsert``/``delete`` until the write is visible to ``fetch`` (polling with backoff)
      for at most ``visibility_timeout`` seconds, and raises
      :class:`~vecver.errors.WriteNotVisible` (transient) when it is not.
    """

    native_alias: bool = False
    namespace_kind: str = "namespace"
    filter_ops: frozenset[str] = field(default_factory=lambda: FILTER_OPS)
    max_batch: int = 1000
    max_fetch_ids: int = 1000
    max_delete_ids: int = 1000
    max_metadata_bytes: int | None = None
    max_text_bytes: int | None = None
    metadata_kinds: frozenset[str] = field(default_factory=lambda: METADATA_KINDS)
    consistency: Consistency = "strong"
    visibility_timeout: float = 30.0
    persistent: bool = True
    shared_between_processes: bool = False
    remote_reads: bool = False

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_fetch_ids", "max_delete_ids"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Capabilities.{name} must be an integer >= 1, got {value!r}")
        for name in ("max_metadata_bytes", "max_text_bytes"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"Capabilities.{name} must be None or an integer >= 1")
        if not set(self.filter_ops) <= FILTER_OPS:
            raise ValueError(f"Capabilities.filter_ops may only name {sorted(FILTER_OPS)}")
        if not set(self.metadata_kinds) <= METADATA_KINDS:
            raise ValueError(f"Capabilities.metadata_kinds may only name {sorted(METADATA_KINDS)}")
        if self.consistency not in ("strong", "eventual"):
            raise ValueError("Capabilities.consistency must be 'strong' or 'eventual'")
        if not self.visibility_timeout > 0:
            raise ValueError("Capabilities.visibility_timeout must be > 0")
