"""The Qdrant backend's direct id mapping and payload decoding give exactly what the
shared helpers (``uuid_for``, ``PayloadCodec``) give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecver.backends._remote import (
    KEY_AT,
    KEY_FP,
    KEY_HASH,
    KEY_ID,
    KEY_INTS,
    KEY_TEXT,
    PayloadCodec,
    uuid_for,
)
from vecver.backends.qdrant._codec import QdrantCodec, point_id
from vecver.errors import BackendError
from vecver.types import Hit, Record, Stamp

# valid document ids: any Unicode without NUL or lone surrogates
_IDS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               min_size=1, max_size=40)  # fmt: skip
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10),
                     st.floats(allow_nan=False, allow_infinity=False))  # fmt: skip


@given(_IDS)
@settings(max_examples=300, deadline=None)
def test_point_id_is_uuid_for(doc_id: str) -> None:
    assert point_id(doc_id) == uuid_for(doc_id)


def test_point_id_known_values() -> None:
    for doc_id in ("a", "doc00000001", "é" * 50, "日本語", "🙂", "x" * 5000):
        assert point_id(doc_id) == uuid_for(doc_id)


def _payload(doc_id: str, metadata: dict[str, Any], text: str | None) -> dict[str, Any]:
    return {**metadata, KEY_ID: doc_id, KEY_FP: "f" * 64, KEY_HASH: "h" * 64, KEY_AT: 1.5,
            KEY_TEXT: text}  # fmt: skip


def _same_record(a: Record, b: Record) -> None:
    assert (a.id, a.text, a.metadata, a.stamp) == (b.id, b.text, b.metadata, b.stamp)
    assert type(a.metadata) is type(b.metadata)
    if a.vector is None:
        assert b.vector is None
    else:
        assert b.vector is not None and a.vector.dtype == b.vector.dtype == np.float32
        assert np.array_equal(a.vector, b.vector)


@given(_IDS, st.dictionaries(st.text(max_size=8).filter(lambda k: not k.startswith("_vv_")),
                             _SCALARS, max_size=5),
       st.one_of(st.none(), st.text(max_size=30)), st.booleans())  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_decoding_matches_payload_codec(
    doc_id: str, metadata: dict[str, Any], text: str | None, with_vector: bool
) -> None:
    payload = _payload(doc_id, metadata, text)
    vec = [0.5, -1.0, 2.0] if with_vector else None
    _same_record(QdrantCodec().to_record(payload, vec), PayloadCodec().to_record(payload, vec))
    d = PayloadCodec().decode(payload)
    assert QdrantCodec().hit(payload, 0.25) == Hit(d.id, 0.25, d.text, d.metadata, d.stamp)


def test_decoding_keeps_vecver_fields_out_and_copies_the_vector() -> None:
    payload = _payload("d1", {"n": 3, "_vv_lists": ["x"]}, "t")
    vec = np.array([1.0, 2.0], dtype=np.float32)
    r = QdrantCodec().to_record(payload, vec)
    assert r.metadata == {"n": 3} and r.text == "t"
    assert r.stamp == Stamp("f" * 64, "d1", "h" * 64, 1.5)
    assert r.vector is not None and r.vector is not vec
    r.metadata["n"] = 4
    assert payload["n"] == 3  # the record's metadata is its own


def test_recorded_ints_and_odd_stamp_types_decode_like_the_codec() -> None:
    # ints recorded (a payload written with record_ints): the general path
    payload = {**_payload("d", {"n": 2.0}, "t"), KEY_INTS: ["n"]}
    _same_record(QdrantCodec().to_record(payload), PayloadCodec().to_record(payload))
    assert QdrantCodec().to_record(payload).metadata == {"n": 2}
    # a numeric id and a string time, as a foreign writer might leave them
    payload = {**_payload("d", {}, None), KEY_ID: 7, KEY_AT: "2.5"}
    _same_record(QdrantCodec().to_record(payload), PayloadCodec().to_record(payload))


@pytest.mark.parametrize("broken", [
    {KEY_ID: "d"},  # stamp fields missing
    {KEY_ID: "d", KEY_FP: "f", KEY_HASH: "h", KEY_AT: "not a time"},
    {},
])  # fmt: skip
def test_unreadable_payload_raises_like_the_codec(broken: dict[str, Any]) -> None:
    with pytest.raises(BackendError) as want:
        PayloadCodec().to_record(broken)
    with pytest.raises(BackendError) as got:
        QdrantCodec().to_record(broken)
    assert str(got.value) == str(want.value)
    with pytest.raises(BackendError):
        QdrantCodec().hit(broken, 1.0)
