"""verify reads the active space's next page in the background where the backends declare
``remote_reads`` (round trips to a server), and in turn otherwise. Both ways must give the
same report and the same repairs, page after page: the divergences here span several pages
of a small page size, and each kind is present."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from vvcore import assert_verify_clean, contents, make_docs, model_of

import vecver
from vecver.backends.memory import MemoryBackend
from vecver.ops.verify import verify_namespace
from vecver.runtime import reconcile as rc
from vecver.types import Document


def _diverge(ws: vecver.Workspace) -> None:
    v2 = ws.manifest.namespace_for("c", "v2")
    assert v2 is not None
    be = ws.backend
    be.delete(v2.name, ["d0001", "d0017", "d0033"])  # missing, on three pages
    for i, text in ((2, "an old text"), (18, "older"), (34, "oldest")):  # stale
        (rec,) = rc.records_for(ws, v2, [Document(f"d{i:04d}", text, {"n": i})])
        be.upsert(v2.name, [rec])
    (rec,) = rc.records_for(ws, v2, [Document("zz", "never in v1")])  # unexpected
    be.upsert(v2.name, [rec])


def _report(ws: vecver.Workspace, repair: bool) -> dict[str, object]:
    v2 = ws.manifest.namespace_for("c", "v2")
    assert v2 is not None
    d = verify_namespace(ws, "c", v2, repair=repair, page_size=8).to_dict()
    d.pop("samples")
    return d


@pytest.mark.parametrize("repair", [False, True])
def test_verify_reads_ahead_on_remote_reads_with_the_same_result(
    make_ws, monkeypatch: pytest.MonkeyPatch, repair: bool
) -> None:
    out = {}
    for remote in (False, True):
        caps = dataclasses.replace(MemoryBackend.capabilities, remote_reads=remote)
        monkeypatch.setattr(MemoryBackend, "capabilities", caps)
        ws = make_ws("memory")
        c = ws.collection("c")
        docs = make_docs(40)
        c.upsert(docs)
        vecver.migrate(ws, "c", "v2", progress=False)
        _diverge(ws)
        threads: set[str] = set()
        scan = MemoryBackend.scan

        def spy(self, *a, _seen=threads, _scan=scan, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            _seen.add(threading.current_thread().name)
            return _scan(self, *a, **k)

        monkeypatch.setattr(MemoryBackend, "scan", spy)
        out[remote] = _report(ws, repair)
        monkeypatch.setattr(MemoryBackend, "scan", scan)
        # where the pages were read: a background thread only for remote reads
        assert ("vecver-verify-scan" in threads) is remote, threads
        if repair:
            v2 = ws.manifest.namespace_for("c", "v2")
            assert v2 is not None
            assert set(contents(ws, v2.name)) == set(model_of(docs))
            assert_verify_clean(ws)
    assert out[True] == out[False]
    assert out[True]["missing"] == 3 and out[True]["stale"] == 3
    assert out[True]["unexpected"] == 1
    assert out[True]["repaired"] == (7 if repair else 0)
