"""The Weaviate emulator through the official ``weaviate-client`` v4: every call the
weaviate backend makes, and the error responses Weaviate documents (unknown class,
invalid names, a class that exists, an alias clash, a vector of the wrong length, the
cursor combined with a filter, a wrong API key), plus fault injection and start/stop."""

from __future__ import annotations

import json
import struct
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

weaviate = pytest.importorskip("weaviate", reason="needs weaviate-client (vecver[weaviate])")

from weaviate.classes.config import (  # noqa: E402
    Configure,
    DataType,
    Property,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.data import DataObject  # noqa: E402
from weaviate.classes.init import Auth  # noqa: E402
from weaviate.classes.query import Filter, MetadataQuery  # noqa: E402
from weaviate.connect.v4 import _ExpectedStatusCodes  # noqa: E402
from weaviate.exceptions import (  # noqa: E402
    UnexpectedStatusCodeError,
    WeaviateBaseError,
    WeaviateInsertManyAllFailedError,
    WeaviateQueryError,
)

from vecver.testing.emulators import create  # noqa: E402
from vecver.testing.emulators.weaviate import VERSION, WeaviateEmulator  # noqa: E402
from vecver.testing.emulators.weaviate_store import distances  # noqa: E402

#: What a raw PUT through the client's connection accepts (as ``config.update`` says).
_OK = _ExpectedStatusCodes(ok_in=200, error="Update collection configuration")


@pytest.fixture(scope="module")
def server() -> Iterator[WeaviateEmulator]:
    with WeaviateEmulator() as emu:
        assert isinstance(emu, WeaviateEmulator)
        yield emu


def connect(emu: WeaviateEmulator, *, checks: bool = False, key: str | None = None) -> Any:
    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=emu.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=emu.grpc_port, grpc_secure=False,
        skip_init_checks=not checks, auth_credentials=Auth.api_key(key) if key else None,
    )  # fmt: skip


@pytest.fixture
def client(server: WeaviateEmulator) -> Iterator[Any]:
    server.reset()
    c = connect(server)
    yield c
    c.close()


def _make(client: Any, name: str = "Docs", metric: VectorDistances = VectorDistances.COSINE) -> Any:
    return client.collections.create(
        name,
        description="spec",
        properties=[
            Property(name="title", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
            Property(name="keys", data_type=DataType.TEXT_ARRAY, tokenization=Tokenization.FIELD),
            Property(name="n", data_type=DataType.NUMBER),
        ],
        vector_config=Configure.Vectors.self_provided(
            name="vv", vector_index_config=Configure.VectorIndex.hnsw(distance_metric=metric)
        ),
    )


def _objects(n: int, dim: int = 4, seed: int = 0) -> list[DataObject]:
    rng = np.random.default_rng(seed)
    return [
        DataObject(
            properties={"title": f"t{i}", "keys": [f"k{i % 3}", "all"], "n": float(i)},
            vector={"vv": rng.standard_normal(dim).astype(np.float32).tolist()},
            uuid=uuid.uuid5(uuid.NAMESPACE_URL, str(i)),
        )
        for i in range(n)
    ]


# -- connecting ------------------------------------------------------------------------------


def test_connect_with_the_clients_init_checks(server: WeaviateEmulator) -> None:
    """The client's own start-up (meta, version check, gRPC health ping) succeeds, and
    the meta says a version with aliases."""
    with connect(server, checks=True) as c:
        assert c.is_ready() and c.is_live()
        meta = c.get_meta()
        assert meta["version"] == VERSION
        assert tuple(int(x) for x in VERSION.split(".")[:2]) >= (1, 32)


def test_factory_and_stop_release_the_ports() -> None:
    emu = create("weaviate")
    assert isinstance(emu, WeaviateEmulator) and not emu.running
    emu.start()
    port = emu.http_port
    assert emu.url == f"http://127.0.0.1:{port}" and emu.port == port and emu.grpc_port > 0
    emu.stop()
    emu.stop()
    assert not emu.running
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again


# -- schema ------------------------------------------------------------------------------------


def test_schema_create_get_list_delete(client: Any) -> None:
    col = _make(client, "docs")
    assert col.name == "Docs"  # capitalised, as Weaviate does
    assert client.collections.exists("Docs") and client.collections.exists("docs")
    cfg = client.collections.get("Docs").config.get()
    assert cfg.description == "spec"
    vc = cfg.vector_config["vv"]
    assert vc.vector_index_config.distance_metric == VectorDistances.COSINE
    assert {p.name for p in cfg.properties} == {"title", "keys", "n"}
    assert list(client.collections.list_all()) == ["Docs"]
    col.config.add_property(Property(name="extra", data_type=DataType.NUMBER))
    assert "extra" in {p.name for p in col.config.get().properties}
    client.collections.delete("Docs")
    assert not client.collections.exists("Docs")


@pytest.mark.parametrize("name", ["1docs", "do-cs", "do cs"])
def test_invalid_class_names_are_422(client: Any, name: str) -> None:
    with pytest.raises(UnexpectedStatusCodeError) as ei:
        client.collections.create(name, vector_config=Configure.Vectors.self_provided())
    assert ei.value.status_code == 422


def test_an_existing_class_is_422(client: Any) -> None:
    _make(client)
    with pytest.raises(UnexpectedStatusCodeError) as ei:
        _make(client)
    assert ei.value.status_code == 422 and "already exists" in str(ei.value)


def test_a_vectorizer_module_is_refused(client: Any) -> None:
    with pytest.raises(UnexpectedStatusCodeError) as ei:
        client.collections.create("Vec", vector_config=Configure.Vectors.text2vec_openai(name="x"))
    assert ei.value.status_code == 422


def test_an_unknown_class_is_404(client: Any) -> None:
    with pytest.raises(WeaviateBaseError):
        client.collections.get("Nope").config.get()
    assert not client.collections.exists("Nope")


# -- aliases -----------------------------------------------------------------------------------


def test_aliases_create_get_list_update_delete_and_query_through(client: Any) -> None:
    one, two = _make(client, "One"), _make(client, "Two")
    one.data.insert_many(_objects(2))
    two.data.insert_many(_objects(5, seed=1))
    client.alias.create(alias_name="Cur", target_collection="One")
    got = client.alias.get(alias_name="Cur")
    assert got is not None and got.collection == "One"
    assert set(client.alias.list_all()) == {"Cur"}
    assert set(client.alias.list_all(collection="Two")) == set()
    via = client.collections.get("Cur")
    assert len(via.query.fetch_objects(limit=50).objects) == 2
    assert client.alias.update(alias_name="Cur", new_target_collection="Two") is True
    assert len(via.query.fetch_objects(limit=50).objects) == 5
    q = [0.1, 0.2, 0.3, 0.4]
    assert len(via.query.near_vector(q, limit=3, target_vector="vv").objects) == 3
    assert client.alias.delete(alias_name="Cur") is True
    assert client.alias.get(alias_name="Cur") is None
    assert client.alias.delete(alias_name="Cur") is False  # 404


def test_alias_errors(client: Any) -> None:
    _make(client, "One")
    with pytest.raises(UnexpectedStatusCodeError):
        client.alias.create(alias_name="One", target_collection="One")  # a class's name
    with pytest.raises(UnexpectedStatusCodeError):
        client.alias.create(alias_name="A", target_collection="Missing")
    client.alias.create(alias_name="A", target_collection="One")
    with pytest.raises(UnexpectedStatusCodeError):
        client.alias.create(alias_name="A", target_collection="One")
    assert client.alias.update(alias_name="Nope", new_target_collection="One") is False
    with pytest.raises(UnexpectedStatusCodeError):
        _make(client, "A")  # a class may not take an alias's name
    client.collections.delete("One")
    assert client.alias.get(alias_name="A") is None  # dropped with its class


# -- data --------------------------------------------------------------------------------------


def test_batch_insert_replace_and_per_object_errors(client: Any) -> None:
    col = _make(client)
    objs = _objects(10)
    assert col.data.insert_many(objs).errors == {}
    again = DataObject(
        properties={"title": "new"}, vector={"vv": [1.0, 0, 0, 0]}, uuid=objs[0].uuid
    )
    bad = DataObject(properties={"title": "bad"}, vector={"vv": [1.0, 2.0]}, uuid=uuid.uuid4())
    res = col.data.insert_many([again, bad])
    assert list(res.errors) == [1]
    assert "vector with length 2" in res.errors[1].message
    assert col.aggregate.over_all(total_count=True).total_count == 10
    got = col.query.fetch_object_by_id(objs[0].uuid)
    assert got.properties["title"] == "new"
    with pytest.raises(WeaviateInsertManyAllFailedError):
        col.data.insert_many([bad])


def test_wrong_property_types_are_per_object_errors(client: Any) -> None:
    col = _make(client)
    wrong = DataObject(properties={"title": 5}, vector={"vv": [1.0, 0, 0, 0]})
    res = col.data.insert_many([wrong]
                               + _objects(1))  # fmt: skip
    assert list(res.errors) == [0] and "text" in res.errors[0].message


def test_fetch_by_ids_with_vectors_and_chosen_properties(client: Any) -> None:
    col = _make(client)
    objs = _objects(6)
    col.data.insert_many(objs)
    ids = [objs[1].uuid, objs[4].uuid, uuid.uuid4()]
    res = col.query.fetch_objects(filters=Filter.by_id().contains_any(ids), limit=10,
                                  return_properties=["title"], include_vector=["vv"])  # fmt: skip
    assert sorted(str(o.uuid) for o in res.objects) == sorted(str(u) for u in ids[:2])
    for o in res.objects:
        assert set(o.properties) == {"title"}
        want = next(x for x in objs if x.uuid == o.uuid).vector["vv"]  # type: ignore[index]
        assert np.allclose(o.vector["vv"], want)


def test_cursor_iteration_in_uuid_order(client: Any) -> None:
    col = _make(client)
    col.data.insert_many(_objects(25))
    seen: list[str] = []
    after = None
    while True:
        page = col.query.fetch_objects(limit=7, after=after)
        if not page.objects:
            break
        seen.extend(str(o.uuid) for o in page.objects)
        after = page.objects[-1].uuid
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 25
    assert sorted(str(o.uuid) for o in col.iterator()) == seen  # the client's own iterator


def test_the_cursor_with_a_filter_is_refused(client: Any) -> None:
    col = _make(client)
    col.data.insert_many(_objects(3))
    with pytest.raises(WeaviateQueryError):
        col.query.fetch_objects(limit=2, after=uuid.uuid4(),
                                filters=Filter.by_property("n").greater_than(0))  # fmt: skip


@pytest.mark.parametrize("metric", [VectorDistances.COSINE, VectorDistances.DOT,
                                    VectorDistances.L2_SQUARED])  # fmt: skip
def test_near_vector_distances_are_exact(client: Any, metric: VectorDistances) -> None:
    """Distances as Weaviate reports them: 1 - cosine, -dot, squared euclidean; sorted
    ascending; certainty (cosine only) = 1 - d/2."""
    col = _make(client, metric=metric)
    objs = _objects(40, dim=8)
    col.data.insert_many(objs)
    q = np.random.default_rng(9).standard_normal(8).astype(np.float32)
    res = col.query.near_vector(q.tolist(), limit=5, target_vector="vv",
                                return_metadata=MetadataQuery(distance=True,
                                                              certainty=True))  # fmt: skip
    mat = np.asarray([o.vector["vv"] for o in objs], np.float32)  # type: ignore[index]
    if metric == VectorDistances.COSINE:
        qn, mn = q / np.linalg.norm(q), mat / np.linalg.norm(mat, axis=1)[:, None]
        want = 1 - mn @ qn
    elif metric == VectorDistances.DOT:
        want = -(mat @ q)
    else:
        want = ((mat - q) ** 2).sum(axis=1)
    order = np.argsort(want)[:5]
    assert [str(o.uuid) for o in res.objects] == [str(objs[j].uuid) for j in order]
    for o, j in zip(res.objects, order, strict=True):
        assert abs(o.metadata.distance - float(want[j])) < 1e-4
        if metric == VectorDistances.COSINE:
            assert abs(o.metadata.certainty - (1 - float(want[j]) / 2)) < 1e-4
        else:
            assert o.metadata.certainty is None
    assert np.allclose(distances("l2-squared", q, mat), ((mat - q) ** 2).sum(axis=1), atol=1e-4)


def test_filters_on_properties_and_ids(client: Any) -> None:
    col = _make(client)
    objs = _objects(12)
    col.data.insert_many(objs)

    def titles(f: Any) -> list[str]:
        return sorted(
            o.properties["title"] for o in col.query.fetch_objects(filters=f, limit=50).objects
        )

    assert titles(Filter.by_property("keys").contains_any(["k1"])) == ["t1", "t10", "t4", "t7"]
    assert titles(Filter.by_property("keys").contains_all(["k1", "all"])) == [
        "t1",
        "t10",
        "t4",
        "t7",
    ]
    assert titles(Filter.by_property("n").greater_or_equal(10)) == ["t10", "t11"]
    assert titles(
        Filter.by_property("n").less_than(2) & Filter.by_property("title").equal("t1")
    ) == ["t1"]
    assert titles(
        Filter.by_property("n").less_than(1) | Filter.by_property("n").greater_than(10)
    ) == ["t0", "t11"]
    assert titles(Filter.by_id().equal(objs[3].uuid)) == ["t3"]
    assert titles(Filter.by_property("title").like("t1*")) == ["t1", "t10", "t11"]
    with pytest.raises(WeaviateQueryError):
        titles(Filter.by_property("missing").equal("x"))  # no such property


def test_near_vector_with_a_filter_and_a_wrong_length(client: Any) -> None:
    col = _make(client)
    col.data.insert_many(_objects(12))
    res = col.query.near_vector([1, 0, 0, 0], limit=10, target_vector="vv",
                                filters=Filter.by_property("keys")
                                .contains_any(["k2"]))  # fmt: skip
    assert sorted(o.properties["title"] for o in res.objects) == ["t11", "t2", "t5", "t8"]
    with pytest.raises(WeaviateQueryError):
        col.query.near_vector([1.0, 0.0], limit=3, target_vector="vv")


def test_batch_delete_by_ids_and_count(client: Any) -> None:
    col = _make(client)
    objs = _objects(8)
    col.data.insert_many(objs)
    dry = col.data.delete_many(where=Filter.by_id().contains_any([objs[0].uuid]), dry_run=True)
    assert dry.matches == 1 and col.aggregate.over_all(total_count=True).total_count == 8
    ids = [objs[0].uuid, objs[1].uuid, uuid.uuid4()]
    out = col.data.delete_many(where=Filter.by_id().contains_any(ids),
                               verbose=True)  # fmt: skip
    assert out.matches == out.successful == 2 and len(out.objects) == 2  # type: ignore[arg-type]
    assert col.aggregate.over_all(total_count=True).total_count == 6
    n = col.aggregate.over_all(total_count=True, filters=Filter.by_property("n").greater_than(5.5))
    assert n.total_count == 2


def test_rest_objects_insert_exists_delete(client: Any) -> None:
    col = _make(client)
    u = col.data.insert({"title": "one"}, vector={"vv": [1.0, 2.0, 3.0, 4.0]})
    assert col.data.exists(u)
    assert col.query.fetch_object_by_id(u).properties["title"] == "one"
    assert col.data.delete_by_id(u) is True
    assert not col.data.exists(u)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_unnamed_default_vector_collections(client: Any) -> None:
    col = client.collections.create("Legacy", vectorizer_config=Configure.Vectorizer.none())
    col.data.insert_many([DataObject(properties={"a": "x"}, vector=[1.0, 0.0], uuid=uuid.uuid4()),
                          DataObject(properties={"a": "y"}, vector=[0.0, 1.0],
                                     uuid=uuid.uuid4())])  # fmt: skip
    res = col.query.near_vector([0.9, 0.1], limit=1, include_vector=True,
                                return_metadata=MetadataQuery(distance=True))  # fmt: skip
    assert res.objects[0].properties["a"] == "x"
    assert res.objects[0].vector["default"] == [1.0, 0.0]


def test_vectors_travel_as_little_endian_float32(client: Any) -> None:
    col = _make(client)
    v = [0.1, -2.5, 3.25, 1e-7]
    u = uuid.uuid4()
    col.data.insert_many([DataObject(properties={}, vector={"vv": v}, uuid=u)])
    got = col.query.fetch_object_by_id(u, include_vector=["vv"]).vector["vv"]
    assert got == list(struct.unpack("<4f", struct.pack("<4f", *v)))


# -- auth, faults, threads ---------------------------------------------------------------------


def test_a_wrong_api_key_is_refused() -> None:
    with WeaviateEmulator(api_key="right") as emu:
        assert isinstance(emu, WeaviateEmulator)
        with connect(emu, key="right") as c:
            assert c.collections.list_all() == {}
        with connect(emu, key="wrong") as c, pytest.raises(UnexpectedStatusCodeError) as ei:
            c.collections.list_all()
        assert ei.value.status_code == 401
        assert "right" not in repr(emu)


def test_fault_injection(client: Any, server: WeaviateEmulator) -> None:
    col = _make(client)
    server.fail_next(1)
    with pytest.raises(UnexpectedStatusCodeError) as ei:
        client.collections.list_all()
    assert ei.value.status_code == 503
    assert list(client.collections.list_all()) == ["Docs"]
    server.fault_ops = frozenset({"BatchDelete"})
    server.fail_next(1)
    with pytest.raises(WeaviateBaseError, match="UNAVAILABLE"):
        col.data.delete_many(where=Filter.by_id().contains_any([uuid.uuid4()]))
    assert server.faults_fired == 2
    server.reset_faults()


def test_concurrent_writers_and_readers(client: Any, server: WeaviateEmulator) -> None:
    col = _make(client)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            with connect(server) as c:
                h = c.collections.get("Docs")
                for j in range(5):
                    objs = [DataObject(properties={"title": f"{seed}-{j}-{i}"},
                                       vector={"vv": [float(seed), float(j), float(i), 1.0]})
                            for i in range(10)]  # fmt: skip
                    assert h.data.insert_many(objs).errors == {}
                    h.query.near_vector([1.0, 1.0, 1.0, 1.0], limit=5, target_vector="vv")
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert col.aggregate.over_all(total_count=True).total_count == 200


def test_cli_style_options() -> None:
    """``create("weaviate", port=N, ...)`` (what ``vecver emulator weaviate --port N``
    calls): gRPC on N + 1, probabilistic 503s and 429s, and no read lag to emulate."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emu = create("weaviate", port=port, host="127.0.0.1", lag=0.0, rate_limit=0.0,
                 unavailable=1.0, latency=0.0)  # fmt: skip
    assert isinstance(emu, WeaviateEmulator) and emu.grpc_port == port + 1
    with emu, connect(emu) as c:
        with pytest.raises(UnexpectedStatusCodeError) as ei:
            c.collections.list_all()
        assert ei.value.status_code == 503
        emu.unavailable, emu.rate_limit = 0.0, 1.0
        with pytest.raises(UnexpectedStatusCodeError) as ei:
            c.collections.list_all()
        assert ei.value.status_code == 429
        emu.rate_limit = 0.0
        assert c.collections.list_all() == {}
    with pytest.raises(ValueError, match="lag"):
        create("weaviate", lag=0.5)


# -- named vectors added in place (the named layout of the weaviate backend) -----------------


def _vec(client: Any, col: Any, name: str, metric: VectorDistances) -> None:
    col.config.add_vector(vector_config=Configure.Vectors.self_provided(
        name=name, vector_index_config=Configure.VectorIndex.hnsw(distance_metric=metric)))


def test_add_vector_is_a_class_update_and_a_vector_is_never_removed(client: Any) -> None:
    """``config.add_vector`` reads the class and PUTs it back with the new
    ``vectorConfig`` entry; a PUT leaving a vector out, changing its distance or index
    type, or adding a property is refused with Weaviate's messages, and changes nothing."""
    col = _make(client)
    _vec(client, col, "v2", VectorDistances.DOT)
    cfg = col.config.get()
    assert sorted(cfg.vector_config) == ["v2", "vv"]
    assert cfg.vector_config["v2"].vector_index_config.distance_metric.value == "dot"  # type: ignore[union-attr]
    http = client._connection  # raw requests, as the client sends them, edited
    with pytest.raises(UnexpectedStatusCodeError, match="already exists"):
        http.post(path="/schema/Docs/properties", weaviate_object={
            "name": "Title", "dataType": ["text"]}, status_codes=_OK)  # fmt: skip
    schema = http.get(path="/schema/Docs").json()
    for change, message in (
        (lambda s: s["vectorConfig"].pop("v2"), 'missing config for vector "v2"'),
        (lambda s: s["vectorConfig"]["v2"]["vectorIndexConfig"].update(distance="l2-squared"),
         "distance is immutable"),
        (lambda s: s["vectorConfig"]["vv"].update(vectorIndexType="flat"),
         'vector index type of vector "vv" is immutable'),
        (lambda s: s["properties"].append({"name": "extra", "dataType": ["text"]}),
         "property fields other than description cannot be updated"),
    ):
        body = json.loads(json.dumps(schema))
        change(body)
        with pytest.raises(UnexpectedStatusCodeError) as exc:
            http.put(path="/schema/Docs", weaviate_object=body,
                     error_msg="update", status_codes=_OK)  # fmt: skip
        assert exc.value.status_code == 422 and message in str(exc.value), str(exc.value)
    assert col.config.get() == cfg
    col.config.update(description="d2", property_descriptions={"title": "the title"})
    got = col.config.get()
    assert got.description == "d2"
    assert {p.name: p.description for p in got.properties}["title"] == "the title"


def test_objects_hold_some_named_vectors_and_search_skips_the_others(client: Any) -> None:
    """Objects may hold only some named vectors: ``near_vector`` on a target searches
    only the objects holding it, ``include_vector`` returns what each holds; a vector of
    another length than its index's is refused per object; an unknown target vector is
    Weaviate's ``extract target vectors`` error."""
    col = _make(client)
    _vec(client, col, "v2", VectorDistances.L2_SQUARED)
    objs = _objects(6)
    col.data.insert_many(objs)
    both = [DataObject(properties={"title": f"b{i}"},
                       uuid=uuid.uuid5(uuid.NAMESPACE_URL, f"b{i}"),
                       vector={"vv": [1.0, 0, 0, 0], "v2": [float(i), 1.0]})
            for i in range(3)]  # fmt: skip
    only2 = DataObject(properties={"title": "o"}, uuid=uuid.uuid5(uuid.NAMESPACE_URL, "o"),
                       vector={"v2": [0.0, 1.0]})  # fmt: skip
    assert not col.data.insert_many([*both, only2]).errors
    res = col.query.near_vector([0.0, 1.0], target_vector="v2", limit=100,
                                return_metadata=MetadataQuery(distance=True))  # fmt: skip
    assert [o.properties["title"] for o in res.objects] == ["b0", "o", "b1", "b2"]
    assert [o.metadata.distance for o in res.objects] == [0.0, 0.0, 1.0, 4.0]
    res = col.query.near_vector([1.0, 0, 0, 0], target_vector="vv", limit=100)
    assert "o" not in {o.properties["title"] for o in res.objects} and len(res.objects) == 9
    got = col.query.fetch_object_by_id(only2.uuid, include_vector=True)
    assert got is not None and got.vector == {"v2": [0.0, 1.0]}
    with pytest.raises(WeaviateInsertManyAllFailedError,
                       match="length 3. Existing nodes have vectors with length 2"):  # fmt: skip
        col.data.insert_many([DataObject(properties={"title": "x"}, vector={"v2": [1.0, 2, 3]},
                                         uuid=uuid.uuid5(uuid.NAMESPACE_URL, "x"))])  # fmt: skip
    with pytest.raises(WeaviateQueryError, match="does not have named vector nope configured"):
        col.query.near_vector([0.0, 1.0], target_vector="nope")


def test_patch_merges_named_vectors_and_properties(client: Any) -> None:
    """``data.update`` (PATCH): the given properties and vectors replace theirs, the
    other vectors and properties are kept, a property given as None is removed; an
    absent object is a 404, a vector of the wrong length the index's 500 (repo.merge),
    an unknown vector name a 422. ``data.replace`` (PUT) drops what it leaves out."""
    col = _make(client)
    _vec(client, col, "v2", VectorDistances.COSINE)
    u = uuid.uuid5(uuid.NAMESPACE_URL, "m")
    col.data.insert({"title": "a", "n": 1.0}, uuid=u, vector={"vv": [1.0, 0, 0, 0]})
    col.data.update(uuid=u, properties={"keys": ["k"], "n": None}, vector={"v2": [0.0, 1.0]})
    o = col.query.fetch_object_by_id(u, include_vector=True)
    assert o is not None and o.properties == {"title": "a", "keys": ["k"]}
    assert o.vector == {"vv": [1.0, 0.0, 0.0, 0.0], "v2": [0.0, 1.0]}
    col.data.update(uuid=u, vector={"vv": [0.0, 0, 1, 0]})
    o = col.query.fetch_object_by_id(u, include_vector=True)
    assert o is not None and o.vector == {"vv": [0.0, 0.0, 1.0, 0.0], "v2": [0.0, 1.0]}
    with pytest.raises(UnexpectedStatusCodeError) as exc:
        col.data.update(uuid=uuid.uuid5(uuid.NAMESPACE_URL, "absent"), properties={"title": "x"})
    assert exc.value.status_code == 404
    with pytest.raises(UnexpectedStatusCodeError) as exc:
        col.data.update(uuid=u, vector={"v2": [1.0, 2.0, 3.0]})
    assert exc.value.status_code == 500 and "repo.merge" in str(exc.value)
    with pytest.raises(UnexpectedStatusCodeError) as exc:
        col.data.update(uuid=u, vector={"v9": [1.0]})
    assert exc.value.status_code == 422
    col.data.replace(uuid=u, properties={"title": "only"}, vector={"v2": [1.0, 1.0]})
    o = col.query.fetch_object_by_id(u, include_vector=True)
    assert o is not None and o.properties == {"title": "only"} and o.vector == {"v2": [1.0, 1.0]}
    res = col.query.near_vector([1.0, 0, 0, 0], target_vector="vv", limit=5)
    assert res.objects == []
