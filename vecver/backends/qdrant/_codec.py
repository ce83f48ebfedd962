"""The Qdrant backend's hot paths of id mapping and payload decoding.

:func:`point_id` equals :func:`vecver.backends._remote.uuid_for`, and :class:`QdrantCodec` is
:class:`~vecver.backends._remote.PayloadCodec` whose record and hit decoding skips the
intermediate :class:`~vecver.backends._remote.Decoded` object. Both give exactly what the
shared helpers give (tests/test_qdrant_codec.py compares them); they exist because every
record a backfill copies, verifies and every hit a search returns goes through them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...types import Hit, Record, Stamp
from .._remote import (
    KEY_AT,
    KEY_FP,
    KEY_HASH,
    KEY_ID,
    KEY_INTS,
    KEY_TEXT,
    VECVER_ID_NAMESPACE,
    PayloadCodec,
)
from ._filters import KEY_LISTS

__all__ = ["QdrantCodec", "point_id"]

#: the payload keys of vecver's every record (others under the prefix may be there too)
_OWN = (KEY_ID, KEY_FP, KEY_HASH, KEY_AT, KEY_TEXT, KEY_LISTS)


#: SHA-1 already fed with the UUID namespace's bytes (copied for each id)
_SHA1_NS = hashlib.sha1(VECVER_ID_NAMESPACE.bytes)
#: the RFC 4122 variant's first hex digit of a UUID, by the digest's digit there
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def point_id(doc_id: str) -> str:
    """The point id of a document id: exactly :func:`~vecver.backends._remote.uuid_for`
    (``str(uuid.uuid5(VECVER_ID_NAMESPACE, doc_id))``), computed from a copy of a SHA-1
    state that has hashed the namespace already and from the hex digest directly (the
    version digit set to 5, the variant's digit to 8-b): once per id of every write,
    fetch and delete. Raises ``UnicodeEncodeError`` for an id that is not valid Unicode,
    as ``uuid_for`` does (ids are checked before they get here)."""
    h = _SHA1_NS.copy()
    h.update(doc_id.encode("utf-8"))
    x = h.hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


@dataclass(frozen=True)
class QdrantCodec(PayloadCodec):
    """:class:`PayloadCodec` (text in the payload, no int list written) with a direct
    decoding of the common payload: vecver's four stamp fields readable and no
    :data:`KEY_INTS` list. Anything else (a field missing or unreadable, ints recorded)
    goes through :meth:`PayloadCodec.decode`, which decides and raises as always."""

    def _direct(self, payload: Mapping[str, Any]) -> tuple[str, Stamp, dict[str, Any]] | None:
        if KEY_INTS in payload:
            return None
        try:
            doc_id = str(payload[KEY_ID])
            stamp = Stamp(str(payload[KEY_FP]), doc_id, str(payload[KEY_HASH]),
                          float(payload[KEY_AT]))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None
        # vecver's usual fields popped from a copy, then the rest checked for the prefix
        # (a few user keys): cheaper than testing every key of the payload
        metadata = dict(payload)
        pop = metadata.pop
        for key in _OWN:
            pop(key, None)
        prefix = self.prefix
        for key in metadata:
            if key.startswith(prefix):
                return doc_id, stamp, {k: v for k, v in metadata.items()
                                       if not k.startswith(prefix)}  # fmt: skip
        return doc_id, stamp, metadata

    def to_record(
        self, payload: Mapping[str, Any], vector: Any = None, *, text: str | None = None
    ) -> Record:
        got = self._direct(payload) if self.store_text else None
        if got is None:
            return super().to_record(payload, vector, text=text)
        doc_id, stamp, metadata = got
        vec = None if vector is None else np.asarray(vector, dtype=np.float32).copy()
        return Record(doc_id, vec, payload.get(KEY_TEXT), metadata, stamp)

    def hit(self, payload: Mapping[str, Any], score: float) -> Hit:
        """The :class:`Hit` of a point whose payload is ``payload``, scored ``score``."""
        got = self._direct(payload) if self.store_text else None
        if got is None:
            d = self.decode(payload)
            return Hit(d.id, score, d.text, d.metadata, d.stamp)
        doc_id, stamp, metadata = got
        return Hit(doc_id, score, payload.get(KEY_TEXT), metadata, stamp)
