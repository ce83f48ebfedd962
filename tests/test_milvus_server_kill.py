"""kill -9 of the embedded Milvus server (the real Milvus 2.3.5 binaries) in the middle of
a backfill, a restart of the server, and the backfill resumed from its checkpoint to
exactly the right result.

The server is the one of tests/test_backend_milvus.py when it already runs in this
process (its health port 9091 is fixed: one server per machine), else one started for
this module and stopped at its end (tests/test_adopt.py's ``milvus_uri`` fixture). The
test kills the server's process with SIGKILL and starts it again on the same data
directory, so the other tests of the session find it running as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pymilvus", reason="the milvus backend needs pymilvus (vecver[milvus])")

from test_adopt import _milvus_fill, _wipe_server, embed_v1, milvus_uri  # noqa: E402,F401

import vecver  # noqa: E402
from vecver.errors import TransientBackendError  # noqa: E402
from vecver.ops import backfill as ops_backfill  # noqa: E402
from vecver.ops import verify as ops_verify  # noqa: E402
from vecver.ops.adopt import adopt  # noqa: E402
from vecver.testing.workflow import records_by_id  # noqa: E402
from vecver.types import Document, source_hash  # noqa: E402

N = 360
BATCH = 30
KILL_AFTER = 120  # documents backfilled when the server is killed
SPACES = {
    "v1": {"embedder": "hash", "dimension": 32},
    "v2": {"embedder": "hash", "dimension": 32, "options": {"seed": 7}},
}


def text_for(i: int) -> str:
    return f"doc{i} topic{i % 7} beta{i * 3 % 17} unique{i}z"


@pytest.fixture
def workspace(tmp_path: Path, milvus_uri: str) -> Iterator[Any]:  # noqa: F811
    _wipe_server(milvus_uri)
    opened: list[vecver.Workspace] = []

    def make(timeout: float = 30.0) -> vecver.Workspace:
        cfg = vecver.Config.from_mapping({
            "manifest": {"path": "m.db"},
            "backend": {"name": "milvus", "uri": milvus_uri, "timeout": timeout},
            "spaces": SPACES,
            "backfill": {"batch_size": BATCH},
        }, base=tmp_path)  # fmt: skip
        ws = vecver.Workspace(cfg, progress=False)
        opened.append(ws)
        return ws

    yield make
    for ws in reversed(opened):
        with contextlib.suppress(Exception):  # a client of a killed server may not close
            ws.close()


@pytest.mark.parametrize("source", ["vecver", "adopted"])
def test_kill_9_of_the_server_mid_backfill_then_resume(workspace: Any, source: str) -> None:
    """The backfill to v2 stops with a transient error once the server is gone; after the
    restart, resuming it (a new workspace, as a new process would) completes v2 from the
    checkpoint: every document exactly once, embedded from its own text, verify clean."""
    milvus = pytest.importorskip("milvus")
    server = milvus.default_server
    # a short timeout per call, so that the dead server fails the backfill soon
    ws = workspace(timeout=3.0)
    texts = {str(i): text_for(i) for i in range(1, N + 1)}
    if source == "vecver":
        ws.create_collection("docs", "v1")
        ws.collection("docs").upsert([Document(i, t, {"n": int(i)}) for i, t in texts.items()])
    else:
        keys = list(range(1, N + 1))
        vecs = embed_v1([texts[str(k)] for k in keys])
        _milvus_fill(ws.backend, [
            {"key": k, "vector": v, "text": texts[str(k)], "doc_key": f"key-{k}",
             "topic": f"topic{k % 7}", "n": k}
            for k, v in zip(keys, vecs, strict=True)
        ])
        adopt(ws, "docs", namespace="articles", space="v1", text_field="text")

    killed: list[float] = []

    def kill_midway(rep: Any) -> None:
        if rep.done >= KILL_AFTER and not killed:
            killed.append(time.monotonic())
            proc = server.server_proc
            assert proc is not None
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    with pytest.raises(TransientBackendError):
        ops_backfill.migrate(ws, "docs", "v2", on_batch=kill_midway, progress=False)
    assert killed, "the server was never killed"
    server.stop()
    server.start()

    ws2 = workspace()
    v2 = ws2.manifest.namespace_for("docs", "v2")
    assert v2 is not None and v2.state == "building"
    ckpt = ws2.manifest.checkpoint(v2.name)
    assert ckpt is not None and KILL_AFTER <= ckpt.done < N
    rep = ops_backfill.backfill(ws2, "docs", progress=False)
    assert rep.resumed
    assert ws2.manifest.namespace_for("docs", "v2").state == "ready"  # type: ignore[union-attr]
    got = records_by_id(ws2.backend_for(v2), v2.name)
    assert set(got) == set(texts)
    for doc_id, rec in got.items():
        assert rec.text == texts[doc_id]
        assert rec.stamp.source_hash == source_hash(texts[doc_id])
        assert rec.stamp.fingerprint == v2.fingerprint
    for r in ops_verify.verify(ws2, "docs"):
        assert r.clean, r.to_dict()
