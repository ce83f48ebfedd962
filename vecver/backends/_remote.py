"""Helpers every client-server backend shares (Qdrant, Milvus, Weaviate, Pinecone, ...).

Three things each of them needs and none of them should invent again:

- :class:`PayloadCodec`: a record's stamp, text and metadata as one *flat* payload dict
  (user metadata fields at the top level, so that the database can filter on them
  natively, next to vecver's own fields under a reserved prefix) and back. User metadata
  with a key under the reserved prefix is refused
  (:class:`~vecver.errors.ReservedMetadataKey`). Optionally it records which fields held
  ints, for databases that keep every number as a double.
- Deterministic id mapping: :func:`uuid_for` (UUID5) and :func:`uint64_for` (64 or 63
  bits) turn a document id into the id a database takes. The original id travels in the
  payload (:data:`KEY_ID`), so reads map back — and :meth:`PayloadCodec.check_id` notices
  a hash collision instead of returning the wrong document.
- Error translation: :func:`classify` and :func:`translated` turn a client library's
  exception into :class:`~vecver.errors.TransientBackendError` (timeouts, connection
  failures, HTTP 408/425/429/5xx, gRPC UNAVAILABLE/DEADLINE_EXCEEDED/RESOURCE_EXHAUSTED/
  ABORTED; keeping a ``Retry-After``), :class:`~vecver.errors.NamespaceNotFound` (HTTP 404
  / gRPC NOT_FOUND where a namespace was addressed) or a permanent
  :class:`~vecver.errors.BackendError`, without importing any client library.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import math
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import (
    BackendError,
    NamespaceNotFound,
    ReservedMetadataKey,
    TransientBackendError,
    VecverError,
)
from ..types import Record, Stamp

__all__ = [
    "KEY_AT",
    "KEY_FP",
    "KEY_HASH",
    "KEY_ID",
    "KEY_INTS",
    "KEY_TEXT",
    "RESERVED_PREFIX",
    "VECVER_ID_NAMESPACE",
    "Decoded",
    "ErrorKind",
    "PayloadCodec",
    "classify",
    "retry_after_of",
    "translate",
    "translated",
    "uint64_for",
    "uuid_for",
]

#: Payload keys starting with this are vecver's; user metadata may not use it.
RESERVED_PREFIX = "_vv_"
KEY_ID = "_vv_id"
KEY_FP = "_vv_fp"
KEY_HASH = "_vv_hash"
KEY_AT = "_vv_at"
KEY_TEXT = "_vv_text"
KEY_INTS = "_vv_ints"

#: The UUID5 namespace of document ids (fixed forever: changing it re-keys every database).
VECVER_ID_NAMESPACE = uuid.UUID("6f1c8a52-3c1e-5b7e-9a43-2d0f6e1b7c90")


# -- ids ------------------------------------------------------------------------------


_ID_NS_BYTES = VECVER_ID_NAMESPACE.bytes


def uuid_for(doc_id: str) -> str:
    """The UUID (version 5, canonical string form) a database keyed by UUIDs stores
    ``doc_id`` under. Deterministic across processes, hosts and versions: it equals
    ``str(uuid.uuid5(VECVER_ID_NAMESPACE, doc_id))``, computed from the SHA-1 digest
    directly (no ``uuid.UUID`` object: about 3x faster, once per id of every write)."""
    h = bytearray(hashlib.sha1(_ID_NS_BYTES + doc_id.encode("utf-8")).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def uint64_for(doc_id: str, *, bits: Literal[63, 64] = 64) -> int:
    """The unsigned integer (``bits=63``: one that fits a signed int64, for Milvus' INT64
    primary keys) a database keyed by integers stores ``doc_id`` under: the first bytes of
    BLAKE2b of its UTF-8. Distinct ids collide with probability about n²/2^(bits+1); keep
    the original id in the payload and check it on read (:meth:`PayloadCodec.check_id`)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return value >> 1 if bits == 63 else value


# -- payload --------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """What :meth:`PayloadCodec.decode` gives back."""

    id: str
    text: str | None
    metadata: dict[str, Any]
    stamp: Stamp


@dataclass(frozen=True)
class PayloadCodec:
    """Stamp + text + metadata <-> one flat payload dict.

    ``store_text=False`` leaves the text out (a database with a separate document field).
    ``record_ints=True`` lists under :data:`KEY_INTS` the top-level fields holding ints,
    so that a database storing every number as a double gives ints back as ints.
    """

    store_text: bool = True
    record_ints: bool = False
    prefix: str = RESERVED_PREFIX

    def check_metadata(self, metadata: Mapping[str, Any], doc_id: str | None = None) -> None:
        """``ReservedMetadataKey`` when a key of ``metadata`` starts with the prefix."""
        for key in metadata:
            if isinstance(key, str) and key.startswith(self.prefix):
                raise ReservedMetadataKey(doc_id, key, self.prefix)

    def encode(self, record: Record) -> dict[str, Any]:
        """The payload of ``record`` (its vector is not part of it)."""
        self.check_metadata(record.metadata, record.id)
        out: dict[str, Any] = dict(record.metadata)
        st = record.stamp
        out[KEY_ID] = record.id
        out[KEY_FP] = st.fingerprint
        out[KEY_HASH] = st.source_hash
        out[KEY_AT] = float(st.written_at)
        if self.store_text:
            out[KEY_TEXT] = record.text
        if self.record_ints:
            ints = sorted(
                k
                for k, v in record.metadata.items()
                if isinstance(v, int) and not isinstance(v, bool)
            )
            if ints:
                out[KEY_INTS] = ints
        return out

    def decode(self, payload: Mapping[str, Any], *, text: str | None = None) -> Decoded:
        """The record fields stored in ``payload``; ``text`` when the text is stored apart.
        ``BackendError`` when vecver's fields are missing (an object vecver did not write)."""
        try:
            doc_id = payload[KEY_ID]
            stamp = Stamp(
                str(payload[KEY_FP]), str(doc_id), str(payload[KEY_HASH]), float(payload[KEY_AT])
            )
        except (KeyError, TypeError, ValueError) as e:
            raise BackendError(
                f"stored object lacks vecver's payload fields ({e}); was it written by vecver?"
            ) from e
        ints = payload.get(KEY_INTS) or ()
        metadata: dict[str, Any] = {}
        for k, v in payload.items():
            if k.startswith(self.prefix):
                continue
            if k in ints and isinstance(v, float) and v.is_integer():
                v = int(v)
            metadata[k] = v
        if self.store_text:
            text = payload.get(KEY_TEXT)
        return Decoded(str(doc_id), text, metadata, stamp)

    def to_record(
        self, payload: Mapping[str, Any], vector: Any = None, *, text: str | None = None
    ) -> Record:
        """A :class:`Record` from a payload (and the vector, when read)."""
        import numpy as np

        d = self.decode(payload, text=text)
        vec = None if vector is None else np.asarray(vector, dtype=np.float32).copy()
        return Record(d.id, vec, d.text, d.metadata, d.stamp)

    @staticmethod
    def check_id(requested: str, payload: Mapping[str, Any]) -> bool:
        """True when ``payload`` (found under the mapped id of ``requested``) really is
        ``requested``'s; False for a hash collision (treat it as absent)."""
        return payload.get(KEY_ID) == requested


# -- errors ---------------------------------------------------------------------------

ErrorKind = Literal["transient", "not_found", "permanent"]

_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
_TRANSIENT_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})
_TRANSIENT_TYPE_WORDS = (
    "timeout", "timedout", "connection", "connecterror", "unavailable", "toomanyrequests",
    "ratelimit", "throttl", "temporar", "remoteprotocol", "brokenpipe",
)  # fmt: skip


def _http_status(exc: BaseException) -> int | None:
    for obj in (exc, getattr(exc, "response", None)):
        if obj is None:
            continue
        for attr in ("status_code", "status", "http_status", "code"):
            value = getattr(obj, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def _grpc_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if callable(code):
        with contextlib.suppress(Exception):
            code = code()
    if code is None or isinstance(code, int):
        return None
    name = getattr(code, "name", None)
    if isinstance(name, str):
        return name.upper()
    if isinstance(code, str) and code.isupper():
        return code
    return None


def _headers(exc: BaseException) -> Mapping[str, Any] | None:
    for obj in (exc, getattr(exc, "response", None)):
        headers = getattr(obj, "headers", None) if obj is not None else None
        if headers is not None and hasattr(headers, "get"):
            return headers  # type: ignore[no-any-return]
    return None


def retry_after_of(exc: BaseException, *, now: float | None = None) -> float | None:
    """The delay (seconds, >= 0) a ``Retry-After`` header of ``exc`` (or of its
    ``response``) asks for — in seconds or as an HTTP date — or None."""
    headers = _headers(exc)
    if headers is None:
        return None
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    text = str(raw).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def classify(exc: BaseException) -> ErrorKind:
    """Whether a client exception may succeed when retried (``transient``), says that the
    addressed collection/index does not exist (``not_found``), or will fail again
    (``permanent``). Decided by the HTTP status, then the gRPC status code, then the
    exception's type (builtin timeouts and connection errors, and client types whose
    names say timeout/connection/unavailable/rate limit)."""
    if isinstance(exc, TransientBackendError):
        return "transient"
    if isinstance(exc, NamespaceNotFound):
        return "not_found"
    status = _http_status(exc)
    if status is not None:
        if status in _TRANSIENT_HTTP:
            return "transient"
        if status == 404:
            return "not_found"
        return "permanent"
    code = _grpc_code(exc)
    if code is not None:
        if code in _TRANSIENT_GRPC:
            return "transient"
        if code == "NOT_FOUND":
            return "not_found"
        return "permanent"
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return "transient"
    for cls in type(exc).__mro__:
        lowered = cls.__name__.lower()
        if any(word in lowered for word in _TRANSIENT_TYPE_WORDS):
            return "transient"
    return "permanent"


def translate(exc: BaseException, what: str, *, namespace: str | None = None) -> VecverError:
    """The vecver error to raise for client exception ``exc`` during ``what`` (e.g.
    ``"qdrant upsert"``): ``TransientBackendError`` (with ``retry_after``),
    ``NamespaceNotFound`` (a not-found answer while ``namespace`` was addressed) or
    ``BackendError``. vecver's own errors are returned unchanged."""
    if isinstance(exc, VecverError):
        return exc
    kind = classify(exc)
    detail = f"{what} failed: {type(exc).__name__}: {exc}"
    if kind == "transient":
        return TransientBackendError(detail, retry_after=retry_after_of(exc))
    if kind == "not_found" and namespace is not None:
        return NamespaceNotFound(namespace)
    return BackendError(detail)


@contextlib.contextmanager
def translated(what: str, *, namespace: str | None = None) -> Iterator[None]:
    """Run a block of client calls, re-raising what escapes as :func:`translate` says
    (the client's exception is kept as ``__cause__``)."""
    try:
        yield
    except VecverError:
        raise
    except Exception as e:  # noqa: BLE001 - classified here, never swallowed
        raise translate(e, what, namespace=namespace) from e
