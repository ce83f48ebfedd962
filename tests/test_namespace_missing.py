"""A namespace deleted behind vecver's back (or an instance whose settings changed):
status reports it, and neither a cutover (forced or not) nor a rollback points the alias
at it. Before the check, ``status`` failed as a whole with "namespace ... does not exist",
and ``cutover --force`` switched every reader onto nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from vvcore import config, make_docs

import vecver
from vecver import command
from vecver.errors import NamespaceMissing, StateError, WriteFailed
from vecver.ops import cutover as ops_cutover


@pytest.mark.parametrize("backend", ["memory", "local"])
def test_cutover_and_rollback_refuse_a_space_whose_namespace_is_gone(
    tmp_path: Path, backend: str
) -> None:
    cfg = config(tmp_path, backend)
    ws = vecver.open(cfg, progress=False)
    try:
        coll = ws.collection("c")
        coll.upsert(make_docs(8))
        assert vecver.migrate(ws, "c", "v2").state == "ready"
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None
        ws.backend.drop_namespace(v2.name)  # outside vecver's lifecycle
        for force in (False, True):
            with pytest.raises(NamespaceMissing) as info:
                ops_cutover.cutover(ws, "c", force=force)
            assert isinstance(info.value, StateError)
            assert (info.value.label, info.value.namespace) == ("v2", v2.name)
            assert "vecver abort c --space v2" in str(info.value)
        assert ws.manifest.active_namespace("c") != v2.name
        assert [h.id for h in coll.search(make_docs(8)[3].text, k=1)] == ["d0003"]
        if backend == "memory":
            return  # the memory backend is gone with its process: no second workspace
        st = command.status(cfg)
        counts = {s.label: s.count for s in st.collections[0].spaces}
        assert counts == {"v1": 8, "v2": None}
    finally:
        ws.close()


def test_rollback_refuses_when_the_retired_namespace_is_gone(tmp_path: Path) -> None:
    ws = vecver.open(config(tmp_path, "local"), progress=False)
    try:
        coll = ws.collection("c")
        coll.upsert(make_docs(8))
        vecver.migrate(ws, "c", "v2")
        ops_cutover.cutover(ws, "c", force=True)
        v1 = ws.manifest.namespace_for("c", "v1")
        assert v1 is not None and v1.state == "retired"
        ws.backend.drop_namespace(v1.name)
        with pytest.raises(NamespaceMissing) as info:
            ops_cutover.rollback(ws, "c")
        assert info.value.label == "v1"
        assert ws.manifest.namespace_for("c", "v2").state == "active"  # type: ignore[union-attr]
        assert [h.space for h in coll.search(make_docs(8)[2].text, k=1)] == ["v2"]
    finally:
        ws.close()


def _migrate_then_delete_v2(cli_ws) -> str:  # noqa: ANN001
    """Ingest 30 documents, migrate to v2 through the CLI, then delete v2's namespace the
    way another tool would (the local backend's directory for it); returns its name."""
    from vvcli import make_docs as cli_docs

    cli_ws.run("ingest", "docs", cli_ws.jsonl("d.jsonl", cli_docs(30)), ok=True)
    cli_ws.run("migrate", "docs", "--to", "v2", ok=True)
    st = json.loads(cli_ws.run("status", "--json", ok=True).out)
    ns = next(s["namespace"] for s in st["collections"][0]["spaces"] if s["label"] == "v2")
    vectors = cli_ws.root / "vectors"
    doomed = [p for p in vectors.iterdir() if ns in p.name]
    assert len(doomed) == 1, list(vectors.iterdir())
    shutil.rmtree(doomed[0])
    return str(ns)


def test_the_cli_reports_the_missing_namespace_and_refuses_a_forced_cutover(cli_ws) -> None:  # noqa: ANN001
    ns = _migrate_then_delete_v2(cli_ws)
    text = cli_ws.run("status", ok=True).out
    assert "missing" in text and f"namespace {ns} is missing" in text
    res = cli_ws.run("cutover", "docs", "--force", ok=False)
    assert res.rc == 3, str(res)
    assert f"its namespace {ns!r} does not exist" in res.err
    st = json.loads(cli_ws.run("status", "--json", ok=True).out)
    assert st["collections"][0]["active"] == "v1"


@pytest.mark.parametrize("backend", ["memory", "local"])
@pytest.mark.parametrize("no_backfill", [False, True], ids=["ready", "building"])
def test_a_candidate_whose_namespace_is_gone_fails_and_writes_go_on(
    tmp_path: Path, backend: str, no_backfill: bool
) -> None:
    """Writes skip it (marked failed with the reason), the active space takes them, and
    migrating again recreates the namespace and repairs it to a clean verify."""
    ws = vecver.open(config(tmp_path, backend), progress=False)
    try:
        coll = ws.collection("c")
        coll.upsert(make_docs(8))
        rep = vecver.migrate(ws, "c", "v2", no_backfill=no_backfill)
        assert rep.state == ("building" if no_backfill else "ready")
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None
        ws.backend.drop_namespace(v2.name)
        res = coll.upsert(make_docs(3, start=8))
        assert res.spaces == ["v1"] and res.failed == ["v2"]
        assert "NamespaceMissing" in res.reasons["v2"]
        now = ws.manifest.namespace_for("c", "v2")
        assert now is not None and now.state == "failed"
        assert "does not exist on backend instance" in (now.reason or "")
        assert coll.count() == 11
        assert coll.upsert(make_docs(1, start=11)).failed == []  # no longer live
        assert vecver.migrate(ws, "c", "v2").state == "ready"
        assert {r.space: r.clean for r in vecver.verify(ws, "c")} == {"v1": True, "v2": True}
        assert ws.backend.count(v2.name) == 12
    finally:
        ws.close()


def test_recovery_of_a_write_marks_a_candidate_whose_namespace_is_gone_failed(
    tmp_path: Path,
) -> None:
    """A write intent left open (a writer that failed mid-write) is reconciled into every
    live space by the next recovery; a candidate whose namespace is gone is marked failed
    there too, instead of failing the recovery (and with it every later ingest)."""
    ws = vecver.open(config(tmp_path, "local"), progress=False)
    try:
        coll = ws.collection("c")
        coll.upsert(make_docs(8))
        vecver.migrate(ws, "c", "v2")
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None
        intent = ws.manifest.begin_write("c", "upsert", ["d0001"])
        ws.manifest.fail_write(intent)
        ws.backend.drop_namespace(v2.name)
        rep = ws.recover("c")
        assert rep.failed == ["v2"] and rep.intents == 1
        assert ws.manifest.namespace_for("c", "v2").state == "failed"  # type: ignore[union-attr]
        assert ws.manifest.intents("c") == []
    finally:
        ws.close()


def test_writes_fail_loudly_when_the_retired_namespace_is_gone(tmp_path: Path) -> None:
    """The retired space is the rollback target: it is never marked failed silently; its
    write errors name it (``WriteFailed``), after the active space took the write."""
    ws = vecver.open(config(tmp_path, "local"), progress=False)
    try:
        coll = ws.collection("c")
        coll.upsert(make_docs(8))
        vecver.migrate(ws, "c", "v2")
        ops_cutover.cutover(ws, "c", force=True)
        v1 = ws.manifest.namespace_for("c", "v1")
        assert v1 is not None
        ws.backend.drop_namespace(v1.name)
        with pytest.raises(WriteFailed) as info:
            coll.upsert(make_docs(1, start=8))
        assert info.value.failed == "v1" and info.value.written == ["v2"]
        assert ws.manifest.namespace_for("c", "v1").state == "retired"  # type: ignore[union-attr]
    finally:
        ws.close()


def test_the_cli_ingest_goes_on_when_a_candidate_namespace_is_gone(cli_ws) -> None:  # noqa: ANN001
    from vvcli import make_docs as cli_docs

    _migrate_then_delete_v2(cli_ws)
    cli_ws.run("ingest", "docs", cli_ws.jsonl("e.jsonl", cli_docs(5, start=30)), ok=True)
    st = json.loads(cli_ws.run("status", "--json", ok=True).out)
    spaces = {s["label"]: s for s in st["collections"][0]["spaces"]}
    assert spaces["v1"]["count"] == 35
    assert spaces["v2"]["state"] == "failed" and spaces["v2"]["count"] is None
    cli_ws.run("migrate", "docs", "--to", "v2", ok=True)
    cli_ws.run("verify", "docs", ok=True)
