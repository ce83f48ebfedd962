"""The decoding fast paths of the Pinecone and Weaviate searches (session 7): what a hit
carries must not depend on which path decoded it.

Pinecone: :meth:`PineconeBackend._unpack` skips the loop over a vector's metadata when it
holds vecver's fields only, and hands out one stamp object per distinct stamp (bounded
cache); metadata with user fields, ints (stored as doubles), JSON-held values or
unusual stamp types takes the full path. Checked against :class:`PayloadCodec`'s decoding
(the reference) on hand-made metadata, and end to end through the SDK on the emulator.

Weaviate: the near-tie rate lives in a :class:`~vecver.backends._ties.TieRate`, forgotten
when the namespace is dropped (a re-created namespace starts asking without vectors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pinecone", reason="needs the pinecone SDK (pip install 'vecver[pinecone]')")

from vecver.backends._remote import PayloadCodec  # noqa: E402
from vecver.backends.pinecone import _backend as pb  # noqa: E402
from vecver.backends.pinecone import json_key  # noqa: E402
from vecver.testing.data import make_spec  # noqa: E402
from vecver.testing.emulators.pinecone import PineconeEmulator  # noqa: E402
from vecver.types import Record, Stamp  # noqa: E402

KEY = "pc-s7-key"
FP = "f" * 64


def _md(doc: str, *, text: str | None = "some text", at: Any = 1700000000.25,
        **user: Any) -> dict[str, Any]:  # fmt: skip
    md: dict[str, Any] = dict(user)
    md.update({"_vv_id": doc, "_vv_fp": FP, "_vv_hash": "h" * 32, "_vv_at": at})
    if text is not None:
        md["_vv_text"] = text
    return md


def _reference(md: dict[str, Any]) -> tuple[str, str | None, dict[str, Any], Stamp]:
    """What the codec decodes, JSON-held fields restored (the slow path's definition)."""
    plain = {k: v for k, v in md.items() if not k.startswith(pb.JSON_PREFIX)}
    d = PayloadCodec(record_ints=True).decode(plain)
    meta = dict(d.metadata)
    for k, v in md.items():
        if k.startswith(pb.JSON_PREFIX):
            meta[k[len(pb.JSON_PREFIX) :]] = json.loads(v)
    return d.id, d.text, meta, d.stamp


@pytest.fixture(scope="module")
def emulator() -> Iterator[PineconeEmulator]:
    emu = PineconeEmulator(api_key=KEY)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def backend(emulator: PineconeEmulator) -> Iterator[pb.PineconeBackend]:
    b = pb.PineconeBackend("s7-decode", host=emulator.url, api_key=KEY)
    yield b
    b.close()


CASES = [
    _md("a"),  # vecver's fields only: the fast path
    _md("b", text=None),  # no text stored
    _md("c", n=3.0, tag="x", _vv_ints=["n"]),  # an int stored as a double
    _md("d", n=3.5, _vv_ints=["n"]),  # listed as int but not integral: kept
    _md("e", flag=True, score=2.0),  # a double that is not listed stays a float
    {**_md("f", n=1.0), json_key("tags"): json.dumps(["a", "b"]), json_key("none"): "null"},
    _md("g", at=1700000000),  # an int time (not as vecver writes it): converted
]


@pytest.mark.parametrize("md", CASES, ids=[str(m["_vv_id"]) for m in CASES])
def test_unpack_matches_the_codec(backend: pb.PineconeBackend, md: dict[str, Any]) -> None:
    got = backend._unpack(md)
    want = _reference(md)
    assert got == want
    assert list(got[2].items()) == list(want[2].items())  # the same order, too
    assert {k: type(v) for k, v in got[2].items()} == {k: type(v) for k, v in want[2].items()}
    assert type(got[3].written_at) is float


def test_unpack_refuses_metadata_without_vecver_fields(backend: pb.PineconeBackend) -> None:
    from vecver.errors import BackendError

    with pytest.raises(BackendError):
        backend._unpack({"title": "not vecver's"})
    with pytest.raises(BackendError):
        backend._unpack(_md("x", at="not a time"))


def test_stamps_are_shared_and_the_cache_is_bounded(
    backend: pb.PineconeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = backend._unpack(_md("s1"))[3]
    b = backend._unpack(_md("s1"))[3]
    assert a is b  # the same values: the same (frozen) object
    other = backend._unpack(_md("s1", at=1700000001.5))[3]
    assert other is not a and other.written_at == 1700000001.5
    monkeypatch.setattr(pb, "_STAMP_CACHE", 4)
    for i in range(10):
        backend._unpack(_md(f"many{i}"))
    assert len(backend._stamps) <= 4


def test_search_hits_through_the_sdk(backend: pb.PineconeBackend) -> None:
    """Hits decoded on the fast path and on the full one, as written."""
    spec = make_spec("s7_hits", 4, "cosine")
    backend.create_namespace(spec)
    vecs = np.eye(4, dtype=np.float32) + 0.01
    metas: list[dict[str, Any]] = [{}, {"n": 7, "tag": "t"}, {"tags": ["x", 1], "n": 2.5},
                                   {"big": 2**40}]  # fmt: skip
    recs = [Record(f"r{i}", vecs[i], f"text {i}", m, Stamp.now(spec.fingerprint, f"r{i}",
                   f"text {i}")) for i, m in enumerate(metas)]  # fmt: skip
    backend.upsert(spec.name, recs)
    for i, r in enumerate(recs):
        hit = backend.search(spec.name, vecs[i], 1)[0][0]
        assert (hit.id, hit.text, hit.metadata, hit.stamp) == (r.id, r.text, r.metadata,
                                                               r.stamp)  # fmt: skip
        assert {k: type(v) for k, v in hit.metadata.items()} == {
            k: type(v) for k, v in r.metadata.items()}  # fmt: skip
    again = backend.fetch(spec.name, [r.id for r in recs])
    assert {i: (x.metadata, x.stamp) for i, x in again.items()} == {
        r.id: (r.metadata, r.stamp) for r in recs}  # fmt: skip


def test_weaviate_forgets_the_tie_rate_of_a_dropped_namespace() -> None:
    pytest.importorskip("weaviate", reason="needs weaviate-client")
    from vecver.backends.weaviate import WeaviateBackend
    from vecver.testing.emulators.weaviate import WeaviateEmulator

    spec = make_spec("s7_ties", 6, "cosine")
    base = np.eye(6, dtype=np.float32)
    vecs = np.concatenate([base, base])  # every direction twice: exact ties
    recs = [Record(f"t{i:02d}", v, f"t {i}", {}, Stamp.now(spec.fingerprint, f"t{i:02d}",
                   f"t {i}")) for i, v in enumerate(vecs)]  # fmt: skip
    queries = np.random.default_rng(3).standard_normal((30, 6)).astype(np.float32)
    emu = WeaviateEmulator().start()
    try:
        b = WeaviateBackend(emu.url, grpc_port=emu.grpc_port)
        try:
            b.create_namespace(spec)
            b.upsert(spec.name, recs)
            assert not b._ties.upfront(spec.name)
            for q in queries:
                b.search(spec.name, q, 4)
            assert b._ties.upfront(spec.name)  # ties on most searches: vectors upfront
            b.drop_namespace(spec.name)
            assert not b._ties.upfront(spec.name)  # forgotten with the namespace
        finally:
            b.close()
    finally:
        emu.stop()
