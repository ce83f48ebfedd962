"""Shared fixtures of the test suite (append new ones; several test modules use them)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

# --------------------------------------------------------------- CLI end-to-end workspaces


@pytest.fixture
def cli_ws(tmp_path: Path):  # -> vvcli.CliWorkspace
    """A directory with a hash-embedder, local-backend ``vecver.toml`` (spaces v1, v2, v3;
    collection ``docs`` in v1) and helpers that run the real CLI in subprocesses."""
    from vvcli import CliWorkspace, hash_config

    ws = CliWorkspace(tmp_path / "ws")
    ws.root.mkdir()
    ws.write_config(hash_config())
    return ws


# --------------------------------------------------------------- core behaviour workspaces


@pytest.fixture(params=["memory", "local"])
def backend_name(request: pytest.FixtureRequest) -> str:
    """``memory`` (the exact reference) and ``local`` (hnswlib + SQLite)."""
    return str(request.param)


@pytest.fixture
def fast_dir(tmp_path: Path):  # -> Iterator[Path]
    """A fresh directory on a RAM file system when there is one (the manifest fsyncs every
    transaction; on a slow disk that dominates the suite's time), else under tmp_path."""
    import shutil
    import tempfile

    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="vvtest-", dir=shm))
        yield d
        shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path / "fast"


@pytest.fixture
def make_ws(fast_dir: Path):  # -> Callable[..., vecver.Workspace]
    """Open a workspace on a hash-embedder config rooted in a fresh directory (under
    ``fast_dir``, or ``root``). ``backend`` = memory or local; other keywords go to
    ``vvcore.config``. Every workspace opened is closed at teardown."""
    from vvcore import config

    import vecver

    opened: list[vecver.Workspace] = []
    count = [0]

    def make(backend: str = "memory", *, root: Path | None = None, **kw: object):
        if root is None:
            count[0] += 1
            root = fast_dir / f"ws{count[0]}"
            root.mkdir(parents=True)
        ws = vecver.open(config(root, backend, **kw), progress=False)  # type: ignore[arg-type]
        opened.append(ws)
        return ws

    yield make
    for ws in reversed(opened):
        with contextlib.suppress(Exception):  # a workspace a test already closed
            ws.close()


@pytest.fixture
def ws(make_ws):  # -> vecver.Workspace
    """A memory-backend workspace whose collection ``c`` (space v1) is created."""
    w = make_ws("memory")
    w.collection("c")
    return w
