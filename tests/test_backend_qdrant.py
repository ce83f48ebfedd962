"""The qdrant backend against qdrant-client's local mode (``:memory:`` and ``path=``): the
shared compliance suite, congruence with the memory reference, the workflow suite (on one
Qdrant instance, and Qdrant <-> local across instances), filter translation, id mapping,
secrets; and the same suites against a real server when ``VECVER_QDRANT_URL`` names one."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_client", reason="needs qdrant-client (pip install 'vecver[qdrant]')")

from qdrant_client import QdrantClient  # noqa: E402
from qdrant_client.http import models  # noqa: E402

from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.qdrant import QdrantBackend  # noqa: E402
from vecver.backends.qdrant._filters import KEY_LISTS, field_key, translate_filter  # noqa: E402
from vecver.backends.registry import get_backend_class  # noqa: E402
from vecver.errors import (  # noqa: E402
    BackendInUse,
    ConfigError,
    FilterNotExpressible,
    ForeignNamespace,
    InvalidInput,
    InvalidNamespaceName,
    NamespaceExists,
    NamespaceNotFound,
    TransientBackendError,
    UnsupportedFilter,
)
from vecver.filters import F, Filter  # noqa: E402
from vecver.testing import BackendComplianceSuite  # noqa: E402
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair  # noqa: E402
from vecver.testing.data import make_records, make_spec, make_vectors  # noqa: E402
from vecver.testing.workflow import (  # noqa: E402
    WorkflowSuite,
    WorkspaceFactory,
    workspace_factory_for,
)
from vecver.types import Record, Stamp  # noqa: E402

SERVER_URL = os.environ.get("VECVER_QDRANT_URL")
SERVER_KEY = os.environ.get("VECVER_QDRANT_API_KEY")
needs_server = pytest.mark.skipif(
    not SERVER_URL,
    reason="no Qdrant server: set VECVER_QDRANT_URL (and VECVER_QDRANT_API_KEY) to run "
    "the suites against one",
)


# -- compliance -----------------------------------------------------------------------------


class TestQdrantMemoryCompliance(BackendComplianceSuite):
    """Local mode in memory: not persistent, one process."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = QdrantBackend(location=":memory:")
        yield b
        b.close()


class TestQdrantPathCompliance(BackendComplianceSuite):
    """Local mode in a directory: persistent (reopen), one client at a time."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        self.path = tmp_path / "qdrant"
        b = QdrantBackend(path=self.path)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return QdrantBackend(path=self.path)
