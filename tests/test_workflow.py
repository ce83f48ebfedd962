"""The workflow suite (vecver.testing.workflow) on the backends shipped here: within one
instance (memory-aliased, local) and across two (local -> local in another directory,
local -> memory-aliased, memory-aliased -> local)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vecver.testing.workflow import WorkflowSuite, WorkspaceFactory, workspace_factory_for


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
