"""Server-side batching (the gRPC ``BatchStream``) on the Weaviate emulator, through the
official ``weaviate-client``'s ``batch.stream()`` (sync and async) and through the raw
stub: every object lands or is reported by uuid with the unary path's message, named
vectors, references refused per reference, backoff messages, the stream ending cleanly
(the client's background threads finish), and the version gate (a 1.32 emulator, the
default, is refused by the client and has no such method)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

weaviate = pytest.importorskip("weaviate", reason="needs weaviate-client (vecver[weaviate])")

import grpc  # noqa: E402
from weaviate.classes.config import Configure, DataType, Property  # noqa: E402
from weaviate.classes.data import DataObject  # noqa: E402
from weaviate.exceptions import (  # noqa: E402
    WeaviateBatchStreamError,
    WeaviateUnsupportedFeatureError,
)
from weaviate.proto.v1 import base_pb2, batch_pb2, weaviate_pb2_grpc  # noqa: E402

from vecver.errors import InvalidArgument  # noqa: E402
from vecver.testing.emulators.weaviate import (  # noqa: E402
    STREAM_VERSION,
    VERSION,
    WeaviateEmulator,
    parse_version,
)
from vecver.verbs.emulator import emulator as emulator_verb  # noqa: E402

Req = batch_pb2.BatchStreamRequest
_CLIENT_THREADS = ("BgBatchLoop", "BgBatchRecv")
_SERVER_THREAD = "weaviate-emulator-batch-stream"


def connect(emu: WeaviateEmulator) -> Any:
    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=emu.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=emu.grpc_port, grpc_secure=False,
        skip_init_checks=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[WeaviateEmulator]:
    with WeaviateEmulator(version=STREAM_VERSION) as emu:
        assert isinstance(emu, WeaviateEmulator)
        yield emu


@pytest.fixture
def client(server: WeaviateEmulator) -> Iterator[Any]:
    server.reset()
    c = connect(server)
    yield c
    c.close()


def _threads_end(timeout: float = 10.0) -> None:
    """The client's batch threads and the emulator's stream readers end (a join with a
    timeout: a stream that never ends fails here instead of hanging the test)."""
    for t in threading.enumerate():
        if t.name in _CLIENT_THREADS or t.name == _SERVER_THREAD:
            t.join(timeout)
            assert not t.is_alive(), f"thread {t.name} still running after the stream ended"


def _make(client: Any, name: str = "Docs") -> Any:
    return client.collections.create(
        name,
        properties=[Property(name="title", data_type=DataType.TEXT),
                    Property(name="n", data_type=DataType.INT)],
        vector_config=Configure.Vectors.self_provided(name="vv"),
    )  # fmt: skip


def test_a_few_thousand_objects_all_land(client: Any) -> None:
    col = _make(client)
    rng = np.random.default_rng(7)
    n = 3000
    vecs = rng.standard_normal((n, 16)).astype(np.float32)
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"doc-{i}") for i in range(n)]
    with col.batch.stream() as batch:
        for i in range(n):
            batch.add_object(properties={"title": f"t{i}", "n": i}, vector={"vv": vecs[i].tolist()},
                             uuid=ids[i])  # fmt: skip
    _threads_end()
    assert col.batch.failed_objects == []
    assert len(col) == n
    got = {o.uuid: o for o in col.iterator(include_vector=True)}
    assert set(got) == set(ids)
    for i in (0, 1, 1234, n - 1):
        o = col.query.fetch_object_by_id(ids[i], include_vector=True)
        assert o is not None and o.properties == {"title": f"t{i}", "n": i}
        np.testing.assert_array_equal(np.asarray(o.vector["vv"], np.float32), vecs[i])
    for i, u in enumerate(ids):
        assert got[u].properties == {"title": f"t{i}", "n": i}
        np.testing.assert_array_equal(np.asarray(got[u].vector["vv"], np.float32), vecs[i])


def test_refused_objects_are_reported_by_uuid_with_the_unary_message(client: Any) -> None:
    """Objects the unary BatchObjects refuses (a vector of another length than the
    collection's, a text where the schema says int) are refused by the stream with the same
    message, under their uuid, in ``client.batch.failed_objects``; the others land."""
    _make(client, "Docs")
    _make(client, "Unary")
    client.collections.get("Unary").data.insert(properties={"n": 0}, vector={"vv": [0.0] * 4})
    client.collections.get("Docs").data.insert(properties={"n": 0}, vector={"vv": [0.0] * 4})
    bad = {uuid.UUID(int=10_001): ({"n": 1}, [1.0, 2.0]),  # wrong length
           uuid.UUID(int=10_002): ({"n": "seven"}, [1.0, 2.0, 3.0, 4.0])}  # wrong type
    with client.batch.stream() as batch:
        for i in range(500):
            batch.add_object(collection="Docs", properties={"n": i}, vector={"vv": [1.0, i, 0, 0]},
                             uuid=uuid.UUID(int=i + 1))  # fmt: skip
            if i == 250:
                for u, (props, vec) in bad.items():
                    batch.add_object(collection="Docs", properties=props, vector={"vv": vec},
                                     uuid=u)  # fmt: skip
    _threads_end()
    failed = {uuid.UUID(str(f.object_.uuid)): f.message for f in client.batch.failed_objects}
    unary = client.collections.get("Unary").data.insert_many(  # (all failing would raise)
        [DataObject(properties=p, vector={"vv": v}, uuid=u) for u, (p, v) in bad.items()]
        + [DataObject(properties={"n": 1}, vector={"vv": [1.0] * 4})]
    )
    assert set(failed) == set(bad) and sorted(unary.errors) == [0, 1]
    assert [failed[u] for u in bad] == [unary.errors[i].message for i in range(len(bad))]
    assert "length 2" in failed[uuid.UUID(int=10_001)]
    docs = client.collections.get("Docs")
    assert len(docs) == 501
    assert all(docs.query.fetch_object_by_id(u) is None for u in bad)
    assert docs.query.fetch_object_by_id(uuid.UUID(int=500)).properties["n"] == 499


def test_named_vectors_through_the_stream(client: Any) -> None:
    col = client.collections.create(
        "Multi", properties=[Property(name="n", data_type=DataType.INT)],
        vector_config=[Configure.Vectors.self_provided(name="a"),
                       Configure.Vectors.self_provided(name="b")],
    )  # fmt: skip
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((400, 3)), rng.standard_normal((400, 5))
    with col.batch.stream() as batch:
        for i in range(400):
            vec = {"a": a[i].tolist(), "b": b[i].tolist()} if i % 2 else {"a": a[i].tolist()}
            batch.add_object(properties={"n": i}, vector=vec, uuid=uuid.UUID(int=i + 1))
        batch.add_object(properties={"n": -1}, vector={"c": [1.0]}, uuid=uuid.UUID(int=9999))
    _threads_end()
    assert [str(f.object_.uuid) for f in col.batch.failed_objects] == [str(uuid.UUID(int=9999))]
    assert "target vector named 'c'" in col.batch.failed_objects[0].message
    for i in (0, 1, 398, 399):
        o = col.query.fetch_object_by_id(uuid.UUID(int=i + 1), include_vector=True)
        assert o is not None
        np.testing.assert_array_equal(o.vector["a"], a[i].astype(np.float32))
        if i % 2:
            np.testing.assert_array_equal(o.vector["b"], b[i].astype(np.float32))
        else:
            assert "b" not in o.vector
    hits = col.query.near_vector(b[1].tolist(), target_vector="b", limit=1)
    assert hits.objects[0].uuid == uuid.UUID(int=2)


def test_references_are_refused_per_reference_never_dropped(client: Any) -> None:
    col = _make(client)
    with client.batch.stream() as batch:
        u = batch.add_object(collection="Docs", properties={"n": 1}, vector={"vv": [1.0, 0.0]})
        deadline = time.monotonic() + 10
        while len(col) == 0 and time.monotonic() < deadline:  # the reference waits for it
            time.sleep(0.05)
        batch.add_reference(from_uuid=u, from_collection="Docs", from_property="rel", to=u)
    _threads_end()
    assert client.batch.failed_objects == []
    [ref] = client.batch.failed_references
    assert str(ref.reference.from_object_uuid) == str(u) and "not supported" in ref.message
    assert len(col) == 1


def test_the_async_client_streams_too(server: WeaviateEmulator) -> None:
    server.reset()
    with connect(server) as c:
        _make(c)

    async def run() -> tuple[list[str], int]:
        ac = weaviate.use_async_with_custom(
            http_host="127.0.0.1", http_port=server.http_port, http_secure=False,
            grpc_host="127.0.0.1", grpc_port=server.grpc_port, grpc_secure=False,
            skip_init_checks=True)  # fmt: skip
        await ac.connect()
        try:
            col = ac.collections.get("Docs")
            async with col.batch.stream() as batch:
                for i in range(600):
                    await batch.add_object(properties={"n": i}, vector={"vv": [1.0, float(i)]})
                await batch.add_object(properties={"n": "x"}, vector={"vv": [1.0, 2.0]})
            total = (await col.aggregate.over_all(total_count=True)).total_count
            return [f.message for f in col.batch.failed_objects], int(total or 0)
        finally:
            await ac.close()

    messages, total = asyncio.run(asyncio.wait_for(run(), timeout=60))
    assert total == 600
    assert len(messages) == 1 and "invalid integer property 'n'" in messages[0]
    _threads_end()


# -- the protocol, through the raw stub -------------------------------------------------


def _raw(emu: WeaviateEmulator, requests: Iterator[Any]) -> list[Any]:
    with grpc.insecure_channel(f"127.0.0.1:{emu.grpc_port}") as ch:
        stub = weaviate_pb2_grpc.WeaviateStub(ch)  # type: ignore[no-untyped-call]
        return list(stub.BatchStream(requests, timeout=30))


def _obj(n: int, vec: list[float]) -> Any:
    v = base_pb2.Vectors(name="vv", vector_bytes=np.asarray(vec, "<f4").tobytes(),
                         type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32)  # fmt: skip
    return batch_pb2.BatchObject(uuid=str(uuid.UUID(int=n)), collection="Docs", vectors=[v])


def test_the_wire_protocol(client: Any, server: WeaviateEmulator) -> None:
    """started; acks naming the message's objects; results (successes and errors by uuid);
    the call ends OK after stop and the half-close."""
    _make(client)
    data = Req(data=Req.Data(objects=Req.Data.Objects(
        values=[_obj(1, [1, 0]), _obj(2, [1, 0, 0]), _obj(3, [0, 1])])))  # fmt: skip
    replies = _raw(server, iter([Req(start=Req.Start()), data, Req(stop=Req.Stop())]))
    kinds = [r.WhichOneof("message") for r in replies]
    assert kinds == ["started", "acks", "results"]
    assert list(replies[1].acks.uuids) == [str(uuid.UUID(int=i)) for i in (1, 2, 3)]
    res = replies[2].results
    assert [s.uuid for s in res.successes] == [str(uuid.UUID(int=1)), str(uuid.UUID(int=3))]
    assert [e.uuid for e in res.errors] == [str(uuid.UUID(int=2))]
    assert "length 3" in res.errors[0].error
    _threads_end()


def test_the_first_message_must_be_start(server: WeaviateEmulator) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _raw(server, iter([Req(stop=Req.Stop())]))
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert "first message must be a start message" in (e.value.details() or "")


def test_backoff_messages_advise_a_batch_size_and_the_client_follows() -> None:
    with WeaviateEmulator(version=STREAM_VERSION, stream_backoff=0.05) as emu:
        assert isinstance(emu, WeaviateEmulator)

        def slow() -> Iterator[Any]:
            yield Req(start=Req.Start())
            time.sleep(0.3)
            yield Req(stop=Req.Stop())

        replies = _raw(emu, slow())
        backoffs = [r.backoff.batch_size for r in replies if r.WhichOneof("message") == "backoff"]
        assert len(backoffs) >= 2 and set(backoffs) == {200}  # Weaviate's starting size
        with connect(emu) as c:
            col = _make(c)
            with col.batch.stream() as batch:
                for i in range(1500):
                    batch.add_object(properties={"n": i}, vector={"vv": [1.0, float(i)]})
                    if i % 500 == 0:
                        time.sleep(0.15)  # backoff messages arrive mid-stream
            assert col.batch.failed_objects == [] and len(col) == 1500
    _threads_end()


def test_a_fault_at_stream_start_is_the_clients_stream_error(
    client: Any, server: WeaviateEmulator
) -> None:
    col = _make(client)
    server.fault_ops = frozenset({"BatchStream"})
    server.fail_next(1)
    try:
        # the client raises its background thread's error from the next add_object (an
        # error arriving after the last one is only logged: the client's behaviour)
        with (
            pytest.raises(WeaviateBatchStreamError, match="UNAVAILABLE"),  # noqa: PT012
            col.batch.stream() as batch,
        ):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                batch.add_object(properties={"n": 0}, vector={"vv": [1.0, 0.0]})
                time.sleep(0.01)
    finally:
        server.reset_faults()
    _threads_end()
    with col.batch.stream() as batch:  # the next stream works
        batch.add_object(properties={"n": 1}, vector={"vv": [1.0, 1.0]})
    assert len(col) == 1


# -- the version ------------------------------------------------------------------------


def test_the_default_version_has_no_stream_as_a_1_32_server() -> None:
    with WeaviateEmulator() as emu:
        assert isinstance(emu, WeaviateEmulator)
        assert emu.version == VERSION == "1.32.0" and not emu.serves_stream
        with connect(emu) as c:
            col = _make(c)
            with pytest.raises(WeaviateUnsupportedFeatureError, match="1.36"):
                col.batch.stream()
            with pytest.raises(WeaviateUnsupportedFeatureError, match="1.36"):
                c.batch.stream()
        with pytest.raises(grpc.RpcError) as e:
            _raw(emu, iter([Req(start=Req.Start())]))
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("bad", ["1.36", "v1.36.0", "latest", "1.36.0.1", "", 136])
def test_a_malformed_version_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="MAJOR.MINOR.PATCH"):
        WeaviateEmulator(version=bad)


def test_version_parsing_and_other_options() -> None:
    assert parse_version("1.36.2-rc.1") == (1, 36, 2)
    assert parse_version(STREAM_VERSION) > parse_version(VERSION)
    with pytest.raises(InvalidArgument, match="stream_backoff"):
        WeaviateEmulator(stream_backoff=0)
    emu = WeaviateEmulator(version="1.37.1")
    assert emu.serves_stream and "1.37.1" in repr(emu)


def test_the_cli_reports_the_given_version() -> None:
    """``vecver emulator weaviate --version``: /v1/meta reports it (the verb in a thread,
    for its --duration); a version for pinecone is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = threading.Thread(target=emulator_verb, args=("weaviate",),
                         kwargs={"port": port, "version": "1.36.4", "duration": 2.0})  # fmt: skip
    t.start()
    try:
        meta: dict[str, Any] = {}
        deadline = time.monotonic() + 10
        while not meta and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/meta", timeout=2) as r:
                    meta = json.load(r)
            except OSError:
                time.sleep(0.05)
        assert meta.get("version") == "1.36.4"
    finally:
        t.join(10)
    assert not t.is_alive()
    with pytest.raises(InvalidArgument, match="pinecone"):
        emulator_verb("pinecone", port=0, version="1.36.0", duration=0.1)
    with pytest.raises(InvalidArgument, match="MAJOR.MINOR.PATCH"):
        emulator_verb("weaviate", port=0, version="1.36", duration=0.1)
