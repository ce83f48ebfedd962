"""The workflow suite (vecver.testing.workflow) on the backends shipped here: within one
instance (memory-aliased, local) and across two (local -> local in another directory,
local -> memory-aliased, memory-aliased -> local), and on backends whose reads lag their
writes (through vecver.testing.faults.FaultyBackend)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vecver.backends.base import Backend
from vecver.errors import WriteNotVisible
from vecver.ops.backfill import migrate
from vecver.ops.verify import verify
from vecver.testing.faults import FaultyBackend
from vecver.testing.workflow import (
    WORKFLOW_SPACES,
    WorkflowSuite,
    WorkspaceFactory,
    workflow_docs,
    workspace_factory_for,
)


class TestMemoryAliasedWorkflow(WorkflowSuite):
    """One instance with native aliases: cutover switches the database alias."""

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {"default": {"name": "memory-aliased"}}) as make:
            yield make


class TestLocalWorkflow(WorkflowSuite):
    """One local instance (hnswlib + SQLite); the alias is the manifest's."""

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {"default": {"name": "local"}}) as make:
            yield make


class TestLocalToLocalWorkflow(WorkflowSuite):
    """Two local instances in different directories; v2 is placed on the second."""

    migrate_on = "second"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": {"name": "local", "path": str(tmp_path / "first")},
            "second": {"name": "local", "path": str(tmp_path / "second")},
        }) as make:
            yield make


class TestLocalToAliasedWorkflow(WorkflowSuite):
    """From local (manifest alias) to the aliased reference: after cutover the target's
    native alias names the active namespace, after rollback it is dropped."""

    migrate_on = "ref"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": {"name": "local"},
            "ref": {"name": "memory-aliased"},
        }) as make:
            yield make


class TestAliasedToLocalWorkflow(WorkflowSuite):
    """From the aliased reference to local: the reference's native alias is dropped at
    cutover (it would name a space no longer active) and set again at rollback."""

    migrate_on = "disk"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {
            "default": {"name": "memory-aliased"},
            "disk": {"name": "local"},
        }) as make:
            yield make


# ------------------------------------------------------------ reads that lag writes


def _lagging(**lag: float) -> Callable[[str, Backend], Backend]:
    return lambda _name, be: FaultyBackend(be, **lag)  # type: ignore[arg-type]


class TestLaggingReadsWorkflow(WorkflowSuite):
    """A backend whose writes become visible to reads only after two more reads (an
    eventually consistent database, through the fault wrapper): it declares
    ``consistency="eventual"``, the base waits for each write, and every workflow still
    ends with ``verify`` clean."""

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        with workspace_factory_for(tmp_path, {"default": {"name": "memory-aliased"}},
                                   wrap=_lagging(lag_reads=2)) as make:
            yield make


class TestLocalToLaggingWorkflow(WorkflowSuite):
    """Across instances: from local to a lagging reference (lag in time, not reads)."""

    migrate_on = "lagging"

    @pytest.fixture
    def workspace_factory(self, tmp_path: Path) -> Iterator[WorkspaceFactory]:
        def wrap(name: str, be: Backend) -> Backend:
            return FaultyBackend(be, lag_seconds=0.01) if name == "lagging" else be

        with workspace_factory_for(tmp_path, {
            "default": {"name": "local"},
            "lagging": {"name": "memory"},
        }, wrap=wrap) as make:
            yield make


def test_a_lag_longer_than_the_backend_declares_is_refused(tmp_path: Path) -> None:
    """Where writes stay invisible longer than the backend's declared
    ``visibility_timeout``, read-your-writes cannot hold: the migration is refused with
    ``WriteNotVisible`` naming the namespace, and the active space is untouched."""
    with workspace_factory_for(tmp_path, {
        "default": {"name": "memory"},
        "slow": {"name": "memory"},
    }, wrap=lambda name, be: (FaultyBackend(be, lag_seconds=30.0, visibility_timeout=0.2)
                              if name == "slow" else be)) as make:
        ws = make({"spaces": WORKFLOW_SPACES, "collections": {"c": {"space": "v1"}}})
        coll = ws.collection("c")
        coll.upsert(workflow_docs(10))
        with pytest.raises(WriteNotVisible) as e:
            migrate(ws, "c", "v2", on="slow")
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None and e.value.namespace == v2.name
        assert "visibility_timeout" in str(e.value)
        assert v2.state != "ready"
        assert coll.count() == 10 and all(
            r.clean for r in verify(ws, "c") if r.space == "v1"
        )
