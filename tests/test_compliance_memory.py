"""The shared compliance suite against the in-memory reference backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vecver_memory import MemoryBackend

from vecver.backend import Backend
from vecver.testing import BackendComplianceSuite


class TestMemoryBackend(BackendComplianceSuite):
    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        b = MemoryBackend()
        yield b
        b.close()
