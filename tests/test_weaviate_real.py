"""The weaviate backend against a real Weaviate server: the shared compliance suite, the
workflow suite and the score convention, in both layouts (``collection`` and the in-place
``named`` one), and the server behaviour the named layout and the emulator rely on (a named
vector added to an existing collection, never removed; merges keeping other vectors; a
search on a target vector skipping objects without it). Runs when ``VECVER_WEAVIATE_URL``
names a server (gRPC on ``VECVER_WEAVIATE_GRPC_PORT``, default 50051; API key in the
environment variable ``VECVER_WEAVIATE_API_KEY``, if the server needs one), or else when a
Docker daemon answers (a ``semitechnologies/weaviate`` container through testcontainers,
one per session); otherwise every test skips and says why. It touches only collections and
aliases whose names start with ``Vvtest_`` (``Vvn_vvtest`` for the named layout's shared
collections)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "weaviate", reason="the weaviate backend needs weaviate-client (vecver[weaviate])"
)

from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.weaviate import WeaviateBackend  # noqa: E402
from vecver.testing import BackendComplianceSuite  # noqa: E402
from vecver.testing.data import make_spec  # noqa: E402
from vecver.testing.workflow import WorkflowSuite, WorkspaceFactory, workspace_factory_for  # noqa: E402
from vecver.types import Record, Stamp  # noqa: E402

IMAGE = os.environ.get("VECVER_WEAVIATE_IMAGE", "cr.weaviate.io/semitechnologies/weaviate:1.32.4")
KEY_ENV = "VECVER_WEAVIATE_API_KEY"
PREFIX = "vvtest_"


def _docker_reason() -> str | None:
    """None when a Docker daemon answers, else why not (quickly: no daemon raises at once)."""
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return "the docker package is not installed (pip install testcontainers)"
    try:
        docker.from_env().ping()
    except Exception as e:  # noqa: BLE001 - any failure means: no daemon to use
        return f"no Docker daemon answers ({type(e).__name__})"
    return None


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[str, int, bool]]:
    """(REST url, gRPC port, whether the server is a fresh container of this session)."""
    url = os.environ.get("VECVER_WEAVIATE_URL")
    if url:
        yield url, int(os.environ.get("VECVER_WEAVIATE_GRPC_PORT", "50051")), False
        return
    why = _docker_reason()
    if why is not None:
        pytest.skip(f"no real Weaviate: set VECVER_WEAVIATE_URL to a server (1.32+), or run "
                    f"a Docker daemon; {why}")  # fmt: skip
    from testcontainers.core.container import DockerContainer  # type: ignore[import-untyped]
    from testcontainers.core.waiting_utils import wait_for_logs  # type: ignore[import-untyped]

    c = (DockerContainer(IMAGE)
         .with_env("AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "true")
         .with_env("DEFAULT_VECTORIZER_MODULE", "none")
         .with_env("PERSISTENCE_DATA_PATH", "/var/lib/weaviate")
         .with_exposed_ports(8080, 50051))  # fmt: skip
    c.start()
    try:
        wait_for_logs(c, "Serving weaviate", timeout=120)
        host = c.get_container_host_ip()
        yield f"http://{host}:{c.get_exposed_port(8080)}", int(c.get_exposed_port(50051)), True
    finally:
        c.stop()


def _open(server: tuple[str, int, bool], layout: str = "collection") -> WeaviateBackend:
    return WeaviateBackend(server[0], grpc_port=server[1], api_key_env=KEY_ENV, layout=layout)


def _wipe(b: WeaviateBackend) -> None:
    raw = b.client
    for alias in list(raw.alias.list_all()):
        if alias.lower().startswith(PREFIX) or alias.startswith("Vv_alias_vvtest"):
            raw.alias.delete(alias_name=alias)
    for name in list(raw.collections.list_all()):
        if name.lower().startswith(PREFIX) or name.lower().startswith("vvn_" + PREFIX):
            raw.collections.delete(name)


class TestRealWeaviateCompliance(BackendComplianceSuite):
    namespace_prefix = PREFIX
    scale_count = 3000  # above what a real HNSW index answers exhaustively

    @pytest.fixture
    def backend(self, server: tuple[str, int, bool]) -> Iterator[Backend]:
        self.server = server
        b = _open(server)
        _wipe(b)
        yield b
        _wipe(b)
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return _open(self.server)

    def open_second(self, backend: Backend) -> Backend:
        return _open(self.server)


class TestRealWeaviateNamedCompliance(BackendComplianceSuite):
    """The named layout: every namespace of the suite a named vector of ``Vvn_vvtest_named``."""

    namespace_prefix = PREFIX + "named__"
    scale_count = 3000

    @pytest.fixture
    def backend(self, server: tuple[str, int, bool]) -> Iterator[Backend]:
        self.server = server
        b = _open(server, "named")
        _wipe(b)
        yield b
        _wipe(b)
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return _open(self.server, "named")

    def open_second(self, backend: Backend) -> Backend:
        return _open(self.server, "named")


class TestRealWeaviateWorkflow(WorkflowSuite):
    """The workflow suite on a fresh container only (its collections are named by the
    suite, not by ``PREFIX``, so it never runs against a server of yours)."""

    @pytest.fixture
    def workspace_factory(
        self, tmp_path: Path, server: tuple[str, int, bool]
    ) -> Iterator[WorkspaceFactory]:
        if not server[2]:
            pytest.skip("the workflow suite runs on a fresh Docker container only, not on "
                        "VECVER_WEAVIATE_URL (it creates collections outside vvtest_)")  # fmt: skip
        table: dict[str, Any] = {"name": "weaviate", "url": server[0], "grpc_port": server[1],
                                 "api_key_env": KEY_ENV}  # fmt: skip
        with workspace_factory_for(tmp_path, {"default": table}) as make:
            yield make
        with _open(server) as b:
            for alias in list(b.client.alias.list_all()):
                b.client.alias.delete(alias_name=alias)
            for ns in b.list_namespaces():
                b.drop_namespace(ns)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_real_scores_follow_vecvers_convention(server: tuple[str, int, bool], metric: str) -> None:
    want = {"cosine": 0.6, "dot": 3.0, "l2": -20.0}[metric]
    with _open(server) as b:
        _wipe(b)
        spec = make_spec(f"{PREFIX}score_{metric}", 2, metric)  # type: ignore[arg-type]
        b.create_namespace(spec)
        b.upsert(spec.name, [Record("a", np.array([3, 4], np.float32), None, {},
                                    Stamp.now(spec.fingerprint, "a", ""))])  # fmt: skip
        hit = b.search(spec.name, np.array([[1, 0]], np.float32), 1)[0][0]
        assert abs(hit.score - want) < 1e-4
        _wipe(b)


class TestRealWeaviateNamedWorkflow(WorkflowSuite):
    """The workflow suite in the named layout (v1 and v2 named vectors of one Weaviate
    collection), on a fresh container only."""

    @pytest.fixture
    def workspace_factory(
        self, tmp_path: Path, server: tuple[str, int, bool]
    ) -> Iterator[WorkspaceFactory]:
        if not server[2]:
            pytest.skip("the workflow suite runs on a fresh Docker container only, not on "
                        "VECVER_WEAVIATE_URL (it creates collections outside vvtest_)")  # fmt: skip
        table: dict[str, Any] = {"name": "weaviate", "url": server[0], "grpc_port": server[1],
                                 "api_key_env": KEY_ENV, "layout": "named"}  # fmt: skip
        with workspace_factory_for(tmp_path, {"default": table}) as make:
            yield make
        with _open(server, "named") as b:
            for ns in b.list_namespaces():
                b.drop_namespace(ns)


def test_real_named_vectors_as_the_named_layout_needs(server: tuple[str, int, bool]) -> None:
    """What the named layout (and the emulator) take from Weaviate: ``add_vector`` adds
    a named vector to an existing collection; a class update leaving it out is refused
    (``missing config for vector``: it cannot be removed); a merge (PATCH) keeps the other
    vectors and removes a property given as null; a replace (PUT) keeps only the vectors it
    is given; ``near_vector`` on a target vector skips objects without it; an unknown
    target vector is refused."""
    import uuid

    from weaviate.classes.config import Configure, DataType, Property, VectorDistances
    from weaviate.connect.v4 import _ExpectedStatusCodes
    from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateQueryError

    with _open(server) as b:
        _wipe(b)
        raw = b.client
        name = "Vvtest_named_probe"
        col = raw.collections.create(
            name, properties=[Property(name="t", data_type=DataType.TEXT)],
            vector_config=Configure.Vectors.self_provided(name="a"),
        )  # fmt: skip
        u1, u2 = uuid.uuid4(), uuid.uuid4()
        col.data.insert({"t": "one"}, uuid=u1, vector={"a": [1.0, 0.0, 0.0]})
        col.config.add_vector(vector_config=Configure.Vectors.self_provided(
            name="b", vector_index_config=Configure.VectorIndex.hnsw(
                distance_metric=VectorDistances.DOT)))  # fmt: skip
        assert sorted(col.config.get().vector_config) == ["a", "b"]
        col.data.insert({"t": "two"}, uuid=u2, vector={"b": [0.0, 1.0]})
        col.data.update(uuid=u1, properties={"t": None, "x": "y"}, vector={"b": [1.0, 1.0]})
        o = col.query.fetch_object_by_id(u1, include_vector=True)
        assert o is not None and sorted(o.vector) == ["a", "b"] and "t" not in o.properties
        hits = col.query.near_vector([1.0, 0.0, 0.0], target_vector="a", limit=10).objects
        assert [h.uuid for h in hits] == [u1]
        # a replace (PUT) keeps only what it is given: how a delete strips one namespace
        col.data.replace(uuid=u1, properties={"x": "z"}, vector={"b": [1.0, 1.0]})
        o = col.query.fetch_object_by_id(u1, include_vector=True)
        assert o is not None and sorted(o.vector) == ["b"] and o.properties.get("x") == "z"
        assert col.query.near_vector([1.0, 0.0, 0.0], target_vector="a", limit=10).objects == []
        with pytest.raises(WeaviateQueryError, match="named vector"):
            col.query.near_vector([1.0, 0.0], target_vector="nope", limit=1)
        schema = raw._connection.get(path=f"/schema/{name}").json()
        del schema["vectorConfig"]["b"]
        with pytest.raises(UnexpectedStatusCodeError, match="missing config for vector"):
            raw._connection.put(
                path=f"/schema/{name}", weaviate_object=schema,
                status_codes=_ExpectedStatusCodes(ok_in=200, error="put"),
            )  # fmt: skip
        _wipe(b)
