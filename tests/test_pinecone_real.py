"""The pinecone backend against the real Pinecone service, when one is reachable.

Runs when ``PINECONE_API_KEY`` is set (otherwise every test here is skipped, saying so).
``VECVER_PINECONE_INDEX`` names the index to use (default ``vecver-ci``; created
serverless in ``VECVER_PINECONE_CLOUD``/``VECVER_PINECONE_REGION``, default aws/us-east-1,
when it does not exist; its dimension and metric must be those of the suite's spaces, or
vecver adds ``{index}-{dim}-{metric}`` indexes). Every namespace the suite creates carries
a per-run prefix and is dropped at the end of its test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.skipif(
    not os.environ.get("PINECONE_API_KEY"),
    reason="no Pinecone service: set PINECONE_API_KEY (and VECVER_PINECONE_INDEX) to run "
    "the suites against the real service",
)

pytest.importorskip("pinecone", reason="needs the pinecone SDK (pip install 'vecver[pinecone]')")

from vecver.backends.base import Backend  # noqa: E402
from vecver.backends.pinecone import PineconeBackend  # noqa: E402
from vecver.testing import (  # noqa: E402
    ConsistencyTests,
    NamespaceTests,
    ReadTests,
    SearchTests,
    WriteTests,
)

RUN = uuid.uuid4().hex[:6]


def _open() -> PineconeBackend:
    return PineconeBackend(
        os.environ.get("VECVER_PINECONE_INDEX", "vecver-ci"),
        cloud=os.environ.get("VECVER_PINECONE_CLOUD", "aws"),
        region=os.environ.get("VECVER_PINECONE_REGION", "us-east-1"),
        visibility_timeout=120.0,
    )


class TestPineconeServiceCompliance(NamespaceTests, WriteTests, ReadTests, SearchTests,
                                    ConsistencyTests):  # fmt: skip
    """The contract on the real service (eventually consistent: the waits are real)."""

    namespace_prefix = f"vvci_{RUN}_"

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = _open()
        yield b
        for name in b.list_namespaces():
            if name.startswith(self.namespace_prefix):
                b.drop_namespace(name)
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        return _open()

    def open_second(self, backend: Backend) -> Backend:
        return _open()
