"""The shared compliance suite against the in-memory reference backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vecver.backends.base import Backend
from vecver.backends.memory import AliasedMemoryBackend, MemoryBackend
from vecver.testing import BackendComplianceSuite


class TestMemoryBackend(BackendComplianceSuite):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = MemoryBackend()
        yield b
        b.close()


class TestAliasedMemoryBackend(BackendComplianceSuite):
    """The reference for databases with native aliases: the alias tests run here."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = AliasedMemoryBackend()
        yield b
        b.close()
