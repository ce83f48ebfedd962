"""The shared compliance suite against the local (hnswlib + SQLite) backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import vecver.backends.local
from vecver.backends.base import Backend
from vecver.testing import BackendComplianceSuite

LocalBackend = vecver.backends.local.LocalBackend


class TestLocalBackend(BackendComplianceSuite):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        self.path = str(tmp_path / "db")
        b: Backend = LocalBackend(self.path)
        yield b
        b.close()

    def reopen(self, backend: Backend) -> Backend:
        backend.close()
        reopened: Backend = LocalBackend(self.path)
        return reopened

    def open_second(self, backend: Backend) -> Backend:
        second: Backend = LocalBackend(self.path)
        return second
