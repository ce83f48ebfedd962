"""The weaviate backend through the official ``weaviate-client`` against the in-process
emulator (:mod:`vecver.testing.emulators.weaviate`, built from Weaviate's REST schema and
``.proto`` files): the shared compliance, congruence and workflow suites unchanged, a
cross-provider migration Weaviate -> local, end to end through the command line (ingest,
migrate, kill -9 during the backfill, resume, verify, cutover under concurrent searches,
rollback; the same with injected faults), filter translation, naming, and secrets.

One emulator serves the whole test session (reset between tests)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("weaviate", reason="the weaviate backend needs weaviate-client (vecver[weaviate])")

from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.registry import get_backend_class  # noqa: E402
from vecver.backends.weaviate import (  # noqa: E402
    WeaviateBackend,
    class_name,
    number_property,
    tokens_of,
    translate_filter,
)
from vecver.errors import (  # noqa: E402
    BatchObjectsFailed,
    ConfigError,
    FilterNotExpressible,
    ForeignNamespace,
    InvalidInput,
    InvalidNamespaceName,
    NamespaceExists,
    NamespaceNotFound,
    TransientBackendError,
)
from vecver.filters import F  # noqa: E402
from vecver.testing import BackendComplianceSuite  # noqa: E402
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair  # noqa: E402
from vecver.testing.data import make_records, make_spec  # noqa: E402
from vecver.testing.emulators.weaviate import WeaviateEmulator  # noqa: E402
from vecver.testing.workflow import (  # noqa: E402
    WorkflowSuite,
    WorkspaceFactory,
    workspace_factory_for,
)
from vecver.types import Record, Stamp  # noqa: E402


@pytest.fixture(scope="session")
def emulator() -> Iterator[WeaviateEmulator]:
    emu = WeaviateEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator: WeaviateEmulator) -> WeaviateEmulator:
    emulator.reset()
    return emulator


def _open(emu: WeaviateEmulator, **kw: Any) -> WeaviateBackend:
    return WeaviateBackend(emu.url, grpc_port=emu.grpc_port, **kw)


def _table(emu: WeaviateEmulator) -> dict[str, Any]:
    return {"name": "weaviate", "url": emu.url, "grpc_port": emu.grpc_port}


# -- the shared suites ----------------------------------------------------------------------


class TestWeaviateCompliance(BackendComplianceSuite):
    """The whole contract, on the emulator through the official client (a second client
    stands in for another process)."""

    scale_count = 1200

    @pytest.fixture
    def backend(self, emu: WeaviateEmulator) -> Iterator[Backend]:
        self.emu = emu
        b = _open(emu)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return _open(self.emu)

    def open_second(self, backend: Backend) -> Backend:
        return _open(self.emu)


class TestWeaviateCongruence(BackendCongruenceSuite):
    steps = 40

    @pytest.fixture
    def pair(self, emu: WeaviateEmulator) -> Iterator[CongruencePair]:
        def reopen(b: Backend) -> Backend:
            b.close()
            return _open(emu)

        p = CongruencePair(_open(emu), reopen=reopen)
        yield p
        p.close()


class TestWeaviateWorkflow(WorkflowSuite):
    """Migrate, dual-write, cutover with Weaviate's collection alias, rollback, recover."""

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path, emu: WeaviateEmulator) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {"default": _table(emu)}) as make:
            yield make


class TestWeaviateToLocalWorkflow(WorkflowSuite):
    """v1 on Weaviate, v2 placed on the local backend: a cross-provider migration."""

    migrate_on = "target"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path, emu: WeaviateEmulator) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": _table(emu),
            "target": {"name": "local", "path": str(tmp_path / "local")},
        }) as make:  # fmt: skip
            yield make
