"""Placement: named backend instances and migrations across them.

- the manifest records where each namespace lives, and every operation goes there;
- a migration placed on an unknown instance, or re-placed elsewhere, is refused before
  anything is created;
- end to end with kill -9: a process running a cross-instance ``migrate`` (local ->
  local in another directory) is killed at random moments and resumed, and ends with
  ``verify`` clean, every document exactly once in each space, correctly stamped;
- between local and the aliased reference (one process, one open workspace).

The random delays come from one seed, printed by the test (``VECVER_CRASH_SEED`` replays).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from test_crash import kill_at
from vvcore import SPACES, config, make_docs

import vecver
from vecver.errors import StateError, UnknownBackendInstance
from vecver.ops.backfill import migrate, start_migration
from vecver.ops.cutover import cutover, rollback
from vecver.ops.verify import verify
from vecver.testing.workflow import records_by_id
from vecver.types import source_hash

SEED = int(os.environ.get("VECVER_CRASH_SEED", str(time.time_ns() % 1_000_000)))


def two_local(base: Path, **kw: Any) -> vecver.Config:
    """The default instance: local in ``base/vectors``; ``second``: local in
    ``base/elsewhere``."""
    return config(base, "local",
                  backends={"second": {"name": "local", "path": str(base / "elsewhere")}}, **kw)


# ------------------------------------------------------------------ where things live


def test_namespaces_live_where_the_manifest_says(tmp_path: Path) -> None:
    with vecver.open(two_local(tmp_path), progress=False) as ws:
        coll = ws.collection("c")
        coll.upsert(make_docs(30))
        rep = migrate(ws, "c", "v2", on="second")
        assert rep.state == "ready"
        rows = {n.space_label: n for n in ws.manifest.namespaces("c")}
        assert (rows["v1"].backend, rows["v2"].backend) == ("default", "second")
        second = ws.instance("second")
        assert ws.backend_for(rows["v2"]) is second and ws.backend_for(rows["v2"].name) is second
        assert ws.backend_for(rows["v1"]) is ws.backend
        # each namespace exists on its own instance only, in its own directory
        assert ws.backend.list_namespaces() == [rows["v1"].name]
        assert second.list_namespaces() == [rows["v2"].name]
        assert (tmp_path / "elsewhere").is_dir() and (tmp_path / "vectors").is_dir()
        assert all(r.clean for r in verify(ws, "c"))
        cutover(ws, "c", force=True)
        hits = coll.search("topic", k=5)
        assert hits and {h.space for h in hits} == {"v2"}
        assert {h.namespace for h in hits} == {rows["v2"].name}
    # reopened: the manifest still routes v2 to the second instance
    with vecver.open(two_local(tmp_path), progress=False) as ws:
        assert ws.collection("c").count() == 30
        assert ws.manifest.namespace_for("c", "v2").backend == "second"  # type: ignore[union-attr]
        rollback(ws, "c")
        assert ws.collection("c").count() == 30


def test_migration_on_an_unknown_instance_creates_nothing(tmp_path: Path) -> None:
    with vecver.open(two_local(tmp_path), progress=False) as ws:
        ws.collection("c").upsert(make_docs(5))
        with pytest.raises(UnknownBackendInstance) as e:
            migrate(ws, "c", "v2", on="elsewhere")
        assert e.value.name == "elsewhere" and e.value.known == ["default", "second"]
        assert "[backends.elsewhere]" in str(e.value)
        assert ws.manifest.namespace_for("c", "v2") is None
        assert not (tmp_path / "elsewhere").exists()  # the second instance was not opened


def test_a_started_migration_is_not_re_placed(tmp_path: Path) -> None:
    with vecver.open(two_local(tmp_path), progress=False) as ws:
        ws.collection("c").upsert(make_docs(5))
        row = start_migration(ws, "c", "v2", on="second")
        with pytest.raises(StateError, match="started on backend instance 'second', not "
                                             "'default'"):
            start_migration(ws, "c", "v2", on="default")
        # resumed without --on (or with the same) it continues where it was placed
        assert start_migration(ws, "c", "v2") == row
        assert migrate(ws, "c", "v2", on="second").state == "ready"


def test_a_namespace_on_an_instance_the_config_dropped(tmp_path: Path) -> None:
    with vecver.open(two_local(tmp_path), progress=False) as ws:
        ws.collection("c").upsert(make_docs(5))
        migrate(ws, "c", "v2", on="second")
    with vecver.open(config(tmp_path, "local"), progress=False) as ws, pytest.raises(
        UnknownBackendInstance, match="no backend instance 'second'"
    ):
        ws.collection("c").upsert(make_docs(6))
    with vecver.open(two_local(tmp_path), progress=False) as ws:  # nothing was written
        assert ws.collection("c").count() == 5
        assert all(r.clean for r in verify(ws, "c"))


def test_local_to_the_aliased_reference_and_back(tmp_path: Path) -> None:
    """The aliased reference lives in one process: one open workspace does it all."""
    cfg = config(tmp_path, "local", backends={"ref": {"name": "memory-aliased"}})
    with vecver.open(cfg, progress=False) as ws:
        coll = ws.collection("c")
        coll.upsert(make_docs(40))
        start_migration(ws, "c", "v2", on="ref")
        coll.upsert(make_docs(5, start=40))  # dual-write across instances
        coll.delete(["d3"])
        assert migrate(ws, "c", "v2", on="ref").state == "ready"
        ref = ws.instance("ref")
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None and v2.backend == "ref"
        assert ref.get_alias("c") is None  # v2 is not active yet
        cutover(ws, "c", force=True)
        assert ref.get_alias("c") == v2.name  # the target's own alias follows
        got = records_by_id(ref, v2.name)
        assert sorted(got) == sorted(d.id for d in make_docs(45) if d.id != "d3")
        for d in make_docs(45):
            if d.id != "d3":
                assert got[d.id].stamp.fingerprint == v2.fingerprint
                assert got[d.id].stamp.source_hash == source_hash(d.text)
        rollback(ws, "c")
        assert ref.get_alias("c") is None
        assert all(r.clean for r in verify(ws, "c"))


def test_workspace_rejects_a_backend_for_an_undeclared_instance(tmp_path: Path) -> None:
    from vecver.backends.memory import MemoryBackend

    with pytest.raises(UnknownBackendInstance):
        vecver.Workspace(config(tmp_path), backends={"nope": MemoryBackend()})


# ------------------------------------------------------------------ kill -9 and resume

N_DOCS = 2500

_MIGRATE = textwrap.dedent("""\
    import sys
    import vecver
    from vecver.ops.backfill import migrate
    with vecver.open(sys.argv[1], progress=False) as ws:
        print("open", flush=True)
        rep = migrate(ws, "docs", "v2", on="second", batch_size=32)
    print(rep.state)
""")


def _toml(root: Path) -> str:
    spaces = "\n".join(
        f"[spaces.{k}]\nembedder = 'hash'\ndimension = {v['dimension']}\n"
        + (f"options = {{ seed = {v['options']['seed']} }}\n" if "options" in v else "")
        for k, v in SPACES.items()
    )
    return (f"[manifest]\npath = 'vecver.db'\n[backend]\nname = 'local'\npath = 'first'\n"
            f"[backends.second]\nname = 'local'\npath = 'second'\n{spaces}\n"
            "[collections.docs]\nspace = 'v1'\n")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("placement-template")
    (root / "vecver.toml").write_text(_toml(root), encoding="utf-8")
    with vecver.open(root / "vecver.toml", progress=False) as ws:
        ws.collection("docs").upsert(_crash_docs())
    return root


def _crash_docs() -> list[vecver.Document]:
    """Texts with words unique to each document (so each finds itself first)."""
    from vvcli import make_docs as cli_docs

    return [vecver.Document(d["id"], d["text"], d["metadata"]) for d in cli_docs(N_DOCS)]


def _run_migrate(root: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", _MIGRATE, str(root / "vecver.toml")],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, stdin=subprocess.DEVNULL)


def _kill_at(proc: subprocess.Popen[str], delay: float) -> tuple[str, str]:
    """Once the child says it has opened its workspace, SIGKILL it ``delay`` seconds later
    unless it ended first (``test_crash.kill_at``)."""
    assert proc.stdout is not None
    proc.stdout.readline()  # "open" (or "" when it ended before)
    return kill_at(proc, delay)


def _phase(root: Path) -> str:
    with vecver.open(root / "vecver.toml", progress=False) as ws:
        row = ws.manifest.namespace_for("docs", "v2")
        if row is None:
            return "no namespace yet"
        ck = ws.manifest.checkpoint(row.name)
        return f"{row.state} on {row.backend}, done={ck.done if ck else None}"


def test_kill_a_cross_instance_migrate_then_resume(template: Path, tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}:placement")
    print(f"VECVER_CRASH_SEED={SEED}")
    truth = {d.id: d.text for d in _crash_docs()}
    seen: list[str] = []
    for it in range(3):
        root = tmp_path / f"it{it}"
        shutil.copytree(template, root)
        for _ in range(rng.randint(1, 3)):
            # from "creating the namespace" to "verifying" (the backfill takes ~2 s)
            outcome, err = _kill_at(_run_migrate(root), rng.uniform(0.0, 2.5))
            assert "Traceback" not in err, err
            seen.append(f"it{it}: migrate {outcome} at [{_phase(root)}]")
        proc = _run_migrate(root)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.split() == ["open", "ready"], out + err
        with vecver.open(root / "vecver.toml", progress=False) as ws:
            reps = verify(ws, "docs")
            assert all(r.clean for r in reps), [r.to_dict() for r in reps]
            rows = {n.space_label: n for n in ws.manifest.namespaces("docs")}
            assert rows["v2"].backend == "second" and rows["v2"].state == "ready"
            assert ws.manifest.intents("docs") == []
            first, second = ws.backend, ws.instance("second")
            assert first.list_namespaces() == [rows["v1"].name]
            assert second.list_namespaces() == [rows["v2"].name]
            for label, be in (("v1", first), ("v2", second)):
                got = records_by_id(be, rows[label].name)  # each id once
                assert sorted(got) == sorted(truth), label
                assert be.count(rows[label].name) == N_DOCS
                for i, text in truth.items():
                    r = got[i]
                    assert r.text == text and r.stamp.doc_id == i
                    assert r.stamp.fingerprint == rows[label].fingerprint, f"{label}: {i}"
                    assert r.stamp.source_hash == source_hash(text), f"{label}: {i} stale"
            # a sample finds itself first in the space built on the other instance
            import numpy as np

            sample = rng.sample(sorted(truth), 50)
            recs = second.fetch(rows["v2"].name, sample, with_vectors=True)
            q = np.stack([np.asarray(recs[i].vector) for i in sample]).astype(np.float32)
            for i, hits in zip(sample, second.search(rows["v2"].name, q, 5)):
                best = hits[0].score
                assert i in {h.id for h in hits if h.score >= best - 1e-5}, (
                    f"v2: {i} does not find itself first: "
                    f"{[(h.id, round(h.score, 5)) for h in hits]} ({seen[-3:]})"
                )
    print("\n".join(seen))


# ------------------------------------------------------------------ the CLI


def test_cli_migrate_on_another_instance(cli_ws: Any) -> None:
    from vvcli import hash_config
    from vvcli import make_docs as cli_docs

    cli_ws.write_config(hash_config(extra='[backends.second]\nname = "local"\n'
                                          'path = "elsewhere"\n'))
    cli_ws.run("ingest", "docs", cli_ws.jsonl("d.jsonl", cli_docs(40)), ok=True)
    res = cli_ws.run("migrate", "docs", "--to", "v2", "--on", "nope", ok=False)
    assert res.rc == 4 and "no backend instance 'nope'" in res.err and "second" in res.err
    assert cli_ws.collection_status()["spaces"][1:] == []  # type: ignore[index]
    cli_ws.run("-q", "migrate", "docs", "--to", "v2", "--on", "second", ok=True)
    assert (cli_ws.root / "elsewhere").is_dir()
    rep = cli_ws.run("verify", "docs", "--json", ok=True).json()
    assert rep["clean"] is True
    cli_ws.run("cutover", "docs", "--force", ok=True)
    hits = cli_ws.run("search", "docs", "market", "--json", ok=True).json()
    assert hits and all(h["space"] == "v2" for h in hits)


def test_cli_unknown_backend_option_is_one_line(cli_ws: Any) -> None:
    from vvcli import hash_config

    cli_ws.write_config(hash_config().replace('path = "vectors"',
                                              'path = "vectors"\nef_serch = 64'))
    res = cli_ws.run("status", ok=False)
    assert res.rc == 4
    assert "unknown option 'ef_serch'" in res.err and "ef_search" in res.err


def test_options_of_a_config_built_in_python_are_checked_on_open(tmp_path: Path) -> None:
    from vecver.errors import UnknownBackendOption

    cfg = vecver.Config(manifest_path=str(tmp_path / "m.db"), backend="memory",
                        backend_options={"path": "x"})
    with pytest.raises(UnknownBackendOption, match=r"\[backend\] \(memory backend\): "
                                                   r"unknown option 'path'"):
        vecver.Workspace(cfg)


def test_a_cross_instance_cutover_stands_when_the_old_alias_cannot_be_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Across instances the manifest's alias is the switch; moving a native alias along
    afterwards is best effort: a database refusing it is logged, the cutover stands."""
    from vecver.backends.memory import AliasedMemoryBackend
    from vecver.testing.faults import FaultyBackend

    aliased = FaultyBackend(AliasedMemoryBackend())
    cfg = config(tmp_path, "memory-aliased", backends={"disk": {"name": "local"}})
    with vecver.Workspace(cfg, backend=aliased, progress=False) as ws:
        ws.collection("c").upsert(make_docs(8))
        migrate(ws, "c", "v2", on="disk")
        aliased.fail("drop_alias", every=True, error="permanent")
        rep = cutover(ws, "c", force=True)
        assert rep.to_space == "v2"
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None and ws.manifest.active_namespace("c") == v2.name
        assert "could not be moved along" in caplog.text
        assert {h.space for h in ws.collection("c").search("alpha3", k=2)} == {"v2"}
        # the stale database alias still names v1 there; once the database takes calls
        # again, recovery (run by every write verb) drops it
        assert aliased.get_alias("c") is not None
        aliased.clear_faults()
        rec = ws.recover("c")
        assert rec.aliases == 1 and aliased.get_alias("c") is None, rec
        assert ws.recover("c").aliases == 0


def test_a_declared_collection_starts_on_the_instance_it_names(tmp_path: Path) -> None:
    """``[collections.NAME] backend = "INSTANCE"`` places the first space there (the
    manifest records it, the files appear there, not on the default instance); an
    undeclared instance or an unknown key is a ConfigError naming it."""
    from vecver.errors import ConfigError

    (tmp_path / "vecver.toml").write_text(
        _toml(tmp_path).replace("[collections.docs]\nspace = 'v1'\n",
                                "[collections.docs]\nspace = 'v1'\nbackend = 'second'\n"))
    cfg = vecver.Config.load(tmp_path / "vecver.toml")
    assert cfg.collection_backends == {"docs": "second"}
    with vecver.Workspace(cfg) as ws:
        coll = ws.collection("docs")
        coll.upsert(_crash_docs()[:10])
        (row,) = ws.manifest.namespaces("docs")
        assert row.backend == "second"
        assert ws.backend_for(row).count(row.name) == 10
        assert not ws.instance("default").list_namespaces()
    for bad, word in (("backend = 'nope'", "nope"), ("backnd = 'second'", "backnd")):
        (tmp_path / "bad.toml").write_text(_toml(tmp_path).replace(
            "[collections.docs]\nspace = 'v1'\n", f"[collections.docs]\nspace = 'v1'\n{bad}\n"))
        with pytest.raises(ConfigError, match=word):
            vecver.Config.load(tmp_path / "bad.toml")
