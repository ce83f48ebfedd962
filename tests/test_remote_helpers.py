"""vecver.backends._remote: the payload codec, the id mappings and the error translation
that every client-server backend shares. The exceptions below imitate the *shapes* of
client libraries' errors (an HTTP status attribute, a response with headers, a gRPC
``code()``), which is all the translation looks at."""

from __future__ import annotations

import email.utils
import uuid
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecver.backends import _remote
from vecver.backends._remote import (
    KEY_ID,
    KEY_INTS,
    PayloadCodec,
    classify,
    retry_after_of,
    translate,
    translated,
    uint64_for,
    uuid_for,
)
from vecver.errors import (
    BackendError,
    NamespaceNotFound,
    ReservedMetadataKey,
    StampMismatch,
    TransientBackendError,
)
from vecver.types import Record, Stamp


def _record(metadata: dict[str, Any], text: str | None = "some text", rid: str = "doc/1") -> Record:
    return Record(rid, np.ones(4, dtype=np.float32), text, metadata,
                  Stamp("f" * 64, rid, "h" * 32, 1700000000.25))  # fmt: skip


# -- payload ---------------------------------------------------------------------------


def test_payload_round_trips_stamp_text_and_metadata() -> None:
    md = {"topic": "sport", "year": 2010, "flag": True, "tags": ["a", 1], "obj": {"k": None}}
    rec = _record(md, text="Zoë — 東京")
    codec = PayloadCodec()
    payload = codec.encode(rec)
    assert payload["topic"] == "sport" and payload["year"] == 2010  # flat: filterable
    assert all(k in payload for k in md)
    back = codec.decode(payload)
    assert (back.id, back.text, back.metadata, back.stamp) == (rec.id, rec.text, md, rec.stamp)
    again = codec.to_record(payload, [1, 2, 3, 4])
    assert again.vector is not None and again.vector.dtype == np.float32
    assert again.metadata == md and again.stamp == rec.stamp


def test_payload_keeps_ints_for_databases_that_store_doubles() -> None:
    codec = PayloadCodec(record_ints=True)
    payload = codec.encode(_record({"year": 2010, "rating": 2.0, "flag": False}))
    assert payload[KEY_INTS] == ["year"]
    as_doubles = {k: (float(v) if k in ("year", "rating") else v) for k, v in payload.items()}
    back = codec.decode(as_doubles)
    assert back.metadata == {"year": 2010, "rating": 2.0, "flag": False}
    assert type(back.metadata["year"]) is int and type(back.metadata["rating"]) is float


def test_text_stored_apart() -> None:
    codec = PayloadCodec(store_text=False)
    payload = codec.encode(_record({}, text="kept elsewhere"))
    assert "kept elsewhere" not in payload.values()
    assert codec.decode(payload, text="kept elsewhere").text == "kept elsewhere"


def test_reserved_metadata_key_is_refused() -> None:
    with pytest.raises(ReservedMetadataKey) as err:
        PayloadCodec().encode(_record({"_vv_id": "spoof"}))
    assert err.value.key == "_vv_id" and err.value.doc_id == "doc/1"


def test_payload_without_vecver_fields_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="vecver"):
        PayloadCodec().decode({"topic": "x"})


def test_collision_is_noticed_by_check_id() -> None:
    payload = PayloadCodec().encode(_record({}, rid="a"))
    assert PayloadCodec.check_id("a", payload)
    assert not PayloadCodec.check_id("b", payload)
    assert payload[KEY_ID] == "a"


# -- ids -------------------------------------------------------------------------------


def test_id_mappings_are_deterministic_and_distinct() -> None:
    ids = ["doc/1", "Doc 1", "ü-東京", "x" * 300, "0", "1e3"]
    uuids = [uuid_for(i) for i in ids]
    assert uuids == [uuid_for(i) for i in ids]  # stable
    assert len(set(uuids)) == len(ids)
    assert all(uuid.UUID(u).version == 5 for u in uuids)
    # fixed forever: a change would re-key every database
    assert uuid_for("doc/1") == str(uuid.uuid5(_remote.VECVER_ID_NAMESPACE, "doc/1"))
    ints = [uint64_for(i) for i in ids]
    assert len(set(ints)) == len(ids) and all(0 <= v < 2**64 for v in ints)
    signed = [uint64_for(i, bits=63) for i in ids]
    assert all(0 <= v < 2**63 for v in signed) and len(set(signed)) == len(ids)
    assert uint64_for("doc/1") == uint64_for("doc/1")


# -- errors ----------------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.headers = headers or {}


class _Response:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers


class WrappedHttpError(Exception):
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__("wrapped")
        self.response = _Response(status, headers)


class _Code:
    def __init__(self, name: str) -> None:
        self.name = name


class GrpcError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._code = _Code(name)

    def code(self) -> _Code:
        return self._code


class ReadTimeout(Exception):
    pass


class ClientSideBug(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (HttpError(429), "transient"),
        (HttpError(503), "transient"),
        (HttpError(500), "transient"),
        (HttpError(408), "transient"),
        (HttpError(400), "permanent"),
        (HttpError(401), "permanent"),
        (HttpError(404), "not_found"),
        (WrappedHttpError(502, {}), "transient"),
        (WrappedHttpError(422, {}), "permanent"),
        (GrpcError("UNAVAILABLE"), "transient"),
        (GrpcError("DEADLINE_EXCEEDED"), "transient"),
        (GrpcError("RESOURCE_EXHAUSTED"), "transient"),
        (GrpcError("INVALID_ARGUMENT"), "permanent"),
        (GrpcError("NOT_FOUND"), "not_found"),
        (TimeoutError("slow"), "transient"),
        (ConnectionResetError("reset"), "transient"),
        (ReadTimeout("client timeout type"), "transient"),
        (ClientSideBug("nope"), "permanent"),
        (ValueError("bad"), "permanent"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_classify(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert retry_after_of(HttpError(429, {"Retry-After": "7"})) == 7.0
    assert retry_after_of(WrappedHttpError(503, {"retry-after": "1.5"})) == 1.5
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert retry_after_of(HttpError(503, {"Retry-After": when}), now=1_000_000.0) == 30.0
    assert retry_after_of(HttpError(503, {"Retry-After": "soon"})) is None
    assert retry_after_of(HttpError(503)) is None


def test_translate_keeps_retry_after_and_the_cause() -> None:
    with pytest.raises(TransientBackendError) as err, translated("qdrant upsert"):
        raise HttpError(429, {"Retry-After": "3"})
    assert err.value.retry_after == 3.0
    assert isinstance(err.value.__cause__, HttpError)
    assert "qdrant upsert" in str(err.value)


def test_translate_not_found_only_where_a_namespace_was_addressed() -> None:
    assert isinstance(translate(GrpcError("NOT_FOUND"), "x", namespace="ns"), NamespaceNotFound)
    assert type(translate(GrpcError("NOT_FOUND"), "x")) is BackendError


def test_translate_permanent_and_vecver_errors_pass_through() -> None:
    with pytest.raises(BackendError) as err, translated("milvus search", namespace="ns"):
        raise ClientSideBug("boom")
    assert not isinstance(err.value, TransientBackendError)
    own = StampMismatch("ns", "a" * 12, "b" * 12)
    with pytest.raises(StampMismatch), translated("x"):
        raise own
    assert translate(own, "x") is own


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=200).filter(lambda s: "\x00" not in s))
def test_uuid_for_is_uuid5_in_vecvers_namespace(doc_id: str) -> None:
    """The digest-based ``uuid_for`` is exactly uuid5 (every stored deployment depends on
    it never changing)."""
    try:
        want = str(uuid.uuid5(_remote.VECVER_ID_NAMESPACE, doc_id))
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            uuid_for(doc_id)
        return
    assert uuid_for(doc_id) == want
