"""The Pinecone backend's concurrent reads against the Pinecone emulator: a fetch of more
than 100 ids and a scan page of several ``list`` pages are sent as concurrent fetch
requests of 100 ids; the result must be what one request gives, a failing request must
fail the read (never a partial result), and closing the backend stops its fetch threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("pinecone", reason="needs the pinecone SDK (pip install 'vecver[pinecone]')")

from vecver.backends.pinecone import PineconeBackend  # noqa: E402
from vecver.errors import BackendClosed, BackendError, TransientBackendError  # noqa: E402
from vecver.testing.data import make_records, make_spec  # noqa: E402
from vecver.testing.emulators.pinecone import PineconeEmulator  # noqa: E402

KEY = "pc-concurrent-key"
N = 350


@pytest.fixture(scope="module")
def emulator() -> Iterator[PineconeEmulator]:
    emu = PineconeEmulator(api_key=KEY)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def filled(emulator: PineconeEmulator, request: pytest.FixtureRequest
           ) -> Iterator[tuple[PineconeBackend, str, list[str]]]:  # fmt: skip
    emulator.faults.clear()
    index = f"cr-{request.node.name[:20].replace('_', '-').strip('-').lower()}"
    b = PineconeBackend(index, host=emulator.url, api_key=KEY)
    spec = make_spec("vv_many", 8, "cosine")
    b.create_namespace(spec)
    recs = make_records(spec, N, seed=3)
    for r in recs:
        r.metadata = {"tags": ["a", "b"], "n": 7}  # a JSON-held field and an int
    b.upsert(spec.name, recs)
    yield b, spec.name, [r.id for r in recs]
    emulator.faults.clear()
    b.close()


def test_a_fetch_of_many_ids_is_what_each_id_reads_alone(
    filled: tuple[PineconeBackend, str, list[str]],
) -> None:
    b, ns, ids = filled
    many = b.fetch(ns, [*ids, "absent-id"], with_vectors=True)
    assert sorted(many) == sorted(ids)
    for i in (ids[0], ids[150], ids[-1]):
        alone = b.fetch(ns, [i], with_vectors=True)[i]
        got = many[i]
        assert (got.text, got.metadata, got.stamp) == (alone.text, alone.metadata, alone.stamp)
        assert got.metadata == {"tags": ["a", "b"], "n": 7}
        assert isinstance(got.metadata["n"], int)
        assert got.vector is not None and alone.vector is not None
        assert np.array_equal(got.vector, alone.vector)


def test_a_scan_of_several_list_pages_returns_each_record_once_in_list_order(
    filled: tuple[PineconeBackend, str, list[str]],
) -> None:
    b, ns, ids = filled
    big = b.scan(ns, limit=N + 10)
    assert big.next_cursor is None
    small: list[str] = []
    cursor: str | None = None
    while True:
        page = b.scan(ns, cursor=cursor, limit=60)  # one list request per page
        small.extend(r.id for r in page.records)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [r.id for r in big.records] == small
    assert sorted(small) == sorted(ids)
    part = b.scan(ns, limit=250)
    assert [r.id for r in part.records] == small[:250] and part.next_cursor is not None


def test_a_failing_request_fails_the_whole_read(
    emulator: PineconeEmulator, filled: tuple[PineconeBackend, str, list[str]],
) -> None:
    b, ns, ids = filled
    emulator.faults.fail_next(1, 400)  # one of the four requests fails, the others do not
    with pytest.raises(BackendError):
        b.fetch(ns, ids)
    emulator.faults.unavailable = 1.0  # every data-plane request answers 503
    with pytest.raises(TransientBackendError):
        b.fetch(ns, ids)
    with pytest.raises(TransientBackendError):
        b.scan(ns, limit=N)
    emulator.faults.clear()
    assert len(b.fetch(ns, ids)) == N  # and the same read succeeds once it can


def test_close_stops_the_fetch_threads(
    filled: tuple[PineconeBackend, str, list[str]],
) -> None:
    b, ns, ids = filled
    assert len(b.fetch(ns, ids)) == N
    assert any(t.name.startswith("vecver-pinecone-fetch") for t in threading.enumerate())
    b.close()
    assert not any(t.name.startswith("vecver-pinecone-fetch") for t in threading.enumerate())
    with pytest.raises(BackendClosed):
        b.fetch(ns, ids)
    b.close()  # idempotent



@pytest.mark.parametrize("char", ["x", "\u00e9", "\U0001f600"])
def test_an_upsert_over_the_request_limit_is_sent_in_parts(
    emulator: PineconeEmulator, char: str
) -> None:
    """Texts of ~30 KB each, 100 records: over Pinecone's 2 MiB per request (the emulator
    refuses a larger request), so the backend must split the call; ASCII, 2-byte and
    4-byte UTF-8 characters (the size estimate must hold for each)."""
    emulator.faults.clear()
    with PineconeBackend(f"cr-split-{len(char.encode())}", host=emulator.url,
                         api_key=KEY) as b:  # fmt: skip
        spec = make_spec("vv_big", 8, "cosine")
        b.create_namespace(spec)
        recs = make_records(spec, 100, seed=4, metadata=None)
        text = char * (30_000 // len(char.encode("utf-8")))
        for r in recs:
            r.text = text + r.id
        b.upsert(spec.name, recs)
        got = b.fetch(spec.name, [r.id for r in recs])
        assert {i: g.text for i, g in got.items()} == {r.id: r.text for r in recs}
