"""The Qdrant backend's hot paths of id mapping and payload decoding.

:func:`point_id` is :func:`vecver.backends._remote.uuid_for`, and :class:`QdrantCodec` is
:class:`~vecver.backends._remote.PayloadCodec` whose record and hit decoding skips the
intermediate :class:`~vecver.backends._remote.Decoded` object. Both give exactly what the
shared helpers give (tests/test_qdrant_codec.py compares them); they exist because every
record a backfill copies, verifies and every hit a search returns goes through them.
"""

from __future__ import annotations

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
    PayloadCodec,
    uuid_for,
)
from ._filters import KEY_LISTS

__all__ = ["QdrantCodec", "point_id"]

#: the payload keys of vecver's every record (others under the prefix may be there too)
_OWN = (KEY_ID, KEY_FP, KEY_HASH, KEY_AT, KEY_TEXT, KEY_LISTS)


#: the point id of a document id: :func:`~vecver.backends._remote.uuid_for` itself
point_id = uuid_for


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
