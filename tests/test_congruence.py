"""Congruence (vecver.testing.congruence): the local backend, and the reference behind the
fault wrapper with lagging reads, each driven by the same randomized operations as the
in-memory reference backend, give the same observable results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import vecver.backends.local
from vecver.backends.base import Backend
from vecver.backends.memory import MemoryBackend
from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair
from vecver.testing.faults import FaultyBackend


class TestLocalCongruence(BackendCongruenceSuite):
    """The local backend (hnswlib + SQLite), reopened now and then."""

    @pytest.fixture
    def pair(self, tmp_path: Path) -> Iterator[CongruencePair]:
        path = str(tmp_path / "local")

        def reopen(b: Backend) -> Backend:
            b.close()
            return vecver.backends.local.LocalBackend(path)

        p = CongruencePair(vecver.backends.local.LocalBackend(path), reopen=reopen)
        yield p
        p.close()


class TestLaggingReadsCongruence(BackendCongruenceSuite):
    """A backend whose reads lag its writes by three reads (declared eventual): the base's
    read-your-writes handling makes it indistinguishable from the reference."""

    steps = 40

    @pytest.fixture
    def pair(self) -> Iterator[CongruencePair]:
        p = CongruencePair(FaultyBackend(MemoryBackend(), lag_reads=3, visibility_timeout=5.0))
        yield p
        p.close()
