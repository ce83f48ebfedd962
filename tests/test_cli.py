"""End-to-end tests of the ``vecver`` command line: every verb, run as a real subprocess
(``python -m vecver.cli``) on a hash-embedder workspace over the local backend.

Each refusal or error must exit non-zero with exactly one line on stderr (no traceback).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from vvcli import CLI, CliWorkspace, hash_config, make_docs

from vecver.types import source_hash

N = 300
HEX64 = re.compile(r"^[0-9a-f]{64}$")

VERBS = ("init", "ingest", "status", "plan", "migrate", "backfill", "verify", "evaluate",
         "cutover", "rollback", "abort", "history", "search", "demo", "shadow", "stats",
         "adapter", "drift", "adopt", "emulator")


def assert_phase_lines(err: str, *expected: str) -> None:
    """stderr off a terminal: only ``vecver: ...`` phase lines (no progress line, no
    carriage return, no ETA), each expected one exactly once."""
    assert "\r" not in err and "ETA" not in err, err
    lines = err.splitlines()
    assert all(ln.startswith("vecver: ") for ln in lines), err
    for e in expected:
        assert lines.count(f"vecver: {e}") == 1, (e, err)
    assert len(lines) == len(set(lines)), err  # a phase is announced once


def fingerprints(ws: CliWorkspace) -> dict[str, str]:
    with ws.open() as w:
        return {label: w.space(label).fingerprint for label in ("v1", "v2", "v3")}


def queries_for(ws: CliWorkspace, docs: list[dict[str, Any]], n: int = 20) -> Path:
    """Judgments: a document's own text must retrieve it."""
    return ws.jsonl("queries.jsonl", [
        {"query": d["text"], "relevant": [d["id"]]} for d in docs[:: max(1, len(docs) // n)][:n]
    ])


@pytest.fixture
def ingested(cli_ws: CliWorkspace) -> tuple[CliWorkspace, list[dict[str, Any]]]:
    docs = make_docs(N)
    path = cli_ws.jsonl("docs.jsonl", docs)
    res = cli_ws.run("ingest", "docs", path, ok=True)
    assert f"ingested {N} documents into docs (spaces: v1)" in res.out
    return cli_ws, docs


@pytest.fixture(scope="module")
def ready_ws(tmp_path_factory: pytest.TempPathFactory) -> CliWorkspace:
    """docs ingested in v1, migrated to v2 (ready, not cut over). Tests using it must
    not change it (refusals only)."""
    ws = CliWorkspace(tmp_path_factory.mktemp("ready"))
    ws.write_config(hash_config())
    ws.run("ingest", "docs", ws.jsonl("docs.jsonl", make_docs(100)), ok=True)
    ws.run("--quiet", "migrate", "docs", "--to", "v2", ok=True)
    return ws


# ----------------------------------------------------------------------------- entry


def test_python_m_vecver_cli_and_help() -> None:
    p = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: vecver")
    for verb in VERBS:
        assert verb in p.stdout
    assert p.stderr == ""
    p = subprocess.run([*CLI], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2  # argparse usage error: a verb is required


# ----------------------------------------------------------------------------- init


def test_init_writes_starter_config_in_cwd(tmp_path: Path) -> None:
    ws = CliWorkspace(tmp_path)
    res = ws.run("init", config=None, ok=True)
    assert res.out.splitlines()[0] == "wrote vecver.toml"
    assert "collections created: docs" in res.out
    text = (tmp_path / "vecver.toml").read_text()
    assert '[backend]\nname = "local"' in text and "[spaces.v1]" in text
    assert (tmp_path / "vecver.db").exists()
    # a second init keeps the file and creates nothing
    res = ws.run("init", config=None, ok=True)
    assert "wrote" not in res.out
    assert "collections created: -" in res.out
    assert (tmp_path / "vecver.toml").read_text() == text
    c = ws.collection_status("docs")
    assert c is not None and c["active"] == "v1"
    assert [(s["label"], s["state"], s["count"]) for s in c["spaces"]] == [("v1", "active", 0)]


def test_init_with_given_config_creates_declared_collections(cli_ws: CliWorkspace) -> None:
    before = cli_ws.config.read_text()
    res = cli_ws.run("init", ok=True)
    assert "wrote" not in res.out
    assert "collections created: docs" in res.out
    assert cli_ws.config.read_text() == before
    fp = fingerprints(cli_ws)
    c = cli_ws.collection_status("docs")
    assert c is not None
    assert c["active"] == "v1"
    assert c["spaces"][0]["fingerprint"] == fp["v1"]


# ----------------------------------------------------------------------------- lifecycle


def test_status_json_shape(ingested: tuple[CliWorkspace, list[dict[str, Any]]]) -> None:
    ws, _ = ingested
    fp = fingerprints(ws)
    data = ws.status()
    assert set(data) >= {"collections"}
    assert len(data["collections"]) == 1
    c = data["collections"][0]
    assert set(c) >= {"name", "active", "spaces"}
    assert (c["name"], c["active"]) == ("docs", "v1")
    assert len(c["spaces"]) == 1
    s = c["spaces"][0]
    assert set(s) >= {"label", "fingerprint", "state", "count"}
    assert {k: s[k] for k in ("label", "fingerprint", "state", "count")} == {
        "label": "v1", "fingerprint": fp["v1"], "state": "active", "count": N,
    }
    assert HEX64.match(s["fingerprint"])
    # the text form says the same
    out = ws.run("status", ok=True).out
    assert "collection docs: active v1" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("v1 "))
    assert row.split()[:4] == ["v1", "active", str(N), fp["v1"][:12]]


def test_full_lifecycle(ingested: tuple[CliWorkspace, list[dict[str, Any]]]) -> None:
    ws, docs = ingested
    fp = fingerprints(ws)

    # plan: numbers measured, nothing written
    plan = ws.run("plan", "docs", "--to", "v2", "--json", ok=True).json()
    assert plan["documents"] == N and plan["already_done"] == 0 and plan["to_embed"] == N
    assert plan["fingerprint"] == fp["v2"]
    assert plan["sample_size"] == 64 and plan["embed_rate"] > 0
    assert 0 <= plan["estimated_seconds"] < 60
    assert plan["vector_bytes"] == N * 64 * 4
    assert plan["estimated_bytes"] >= plan["vector_bytes"] + plan["text_bytes"]
    assert plan["same_geometry_as_active"] is False
    text = ws.run("plan", "docs", "--to", "v3", ok=True).out
    assert f"documents          {N} (0 already in the space)" in text
    assert f"to embed           {N}" in text
    same = ws.run("plan", "docs", "--to", "v1", "--json", ok=True).json()
    assert same["same_geometry_as_active"] is True and same["to_embed"] == 0
    assert [s["label"] for s in ws.status()["collections"][0]["spaces"]] == ["v1"]

    # migrate: v2 built, verified, ready
    res = ws.run("migrate", "docs", "--to", "v2", "--batch-size", "50", ok=True)
    assert f"backfill docs -> v2: {N} scanned, {N} embedded and written" in res.out
    assert res.out.rstrip().endswith("state ready")
    # stderr is not a terminal: one line per phase, no progress line
    assert_phase_lines(res.err, "backfill docs -> v2: 300 docs")
    sp = ws.spaces()
    assert (sp["v2"]["state"], sp["v2"]["count"], sp["v2"]["fingerprint"]) == ("ready", N, fp["v2"])
    assert (sp["v1"]["state"], sp["v1"]["count"]) == ("active", N)
    assert ws.collection_status()["active"] == "v1"  # type: ignore[index]
    # migrating again is a no-op that still reports ready
    again = ws.run("migrate", "docs", "--to", "v2", "--json", ok=True).json()
    assert again["state"] == "ready" and again["written"] == 0 and again["verify"]["clean"]

    # verify, text and JSON
    out = ws.run("verify", "docs", ok=True).out
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines()[2:]}
    assert lines["v1"][1:4] == ["active", str(N), str(N)] and lines["v1"][-1] == "yes"
    assert lines["v2"][1:4] == ["ready", str(N), str(N)] and lines["v2"][-1] == "yes"
    rep = ws.run("verify", "docs", "--json", ok=True).json()
    assert rep["clean"] is True and rep["collection"] == "docs"
    for s in rep["spaces"]:
        assert s["clean"] and s["expected"] == s["present"] == s["stored"] == N
        assert s["missing"] == s["stale"] == s["extra"] == s["wrongly_stamped"] == 0
        assert s["unexpected"] == 0
    assert {s["space"]: s["state"] for s in rep["spaces"]} == {"v1": "active", "v2": "ready"}

    # evaluate, with judgments, JSON and text
    q = queries_for(ws, docs)
    ev = ws.run("evaluate", "docs", "--queries", q, "--json", ok=True).json()
    assert ev["collection"] == "docs" and ev["k"] == 10
    by = {s["space"]: s for s in ev["spaces"]}
    assert set(by) == {"v1", "v2"}
    for label in ("v1", "v2"):
        s = by[label]
        assert s["documents"] == N
        assert s["ann_recall"] >= 0.9
        assert s["relevance"]["mrr"] >= 0.9 and s["relevance"]["queries"] == 20
    assert by["v2"]["overlap_with_active"] is not None
    table = ws.run("evaluate", "docs", "--sample", "20", ok=True).out
    assert "ANN recall@10" in table.splitlines()[0]
    assert {ln.split()[0] for ln in table.splitlines()[2:]} == {"v1", "v2"}

    # cutover passes the gate
    res = ws.run("cutover", "docs", ok=True)
    assert res.out.splitlines()[0] == "docs: cut over from v1 to v2"
    assert all(ln.strip().startswith("gate: PASS") for ln in res.out.splitlines()[1:])
    c = ws.collection_status()
    assert c is not None and c["active"] == "v2"
    assert {s["label"]: s["state"] for s in c["spaces"]} == {"v1": "retired", "v2": "active"}

    # search is served by v2; a document's own text finds it first
    d = docs[7]
    out = ws.run("search", "docs", d["text"], "-k", "3", ok=True).out.splitlines()
    assert len(out) == 3
    assert out[0].split()[0] == "1." and d["id"] in out[0] and "[v2]" in out[0]
    hits = ws.run("search", "docs", d["text"], "-k", "5", "--json", ok=True).json()
    assert len(hits) == 5 and hits[0]["id"] == d["id"]
    assert {h["space"] for h in hits} == {"v2"}
    assert hits[0]["metadata"] == d["metadata"] and hits[0]["text"] == d["text"][:200]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    hits = ws.run("search", "docs", d["text"], "--route", "space:v1", "--json", ok=True).json()
    assert hits[0]["id"] == d["id"] and {h["space"] for h in hits} == {"v1"}
    flt = json.dumps({"topic": docs[3]["metadata"]["topic"]})
    hits = ws.run("search", "docs", "market", "--filter", flt, "-k", "50", "--json",
                  ok=True).json()
    assert hits and all(h["metadata"]["topic"] == docs[3]["metadata"]["topic"] for h in hits)

    # ingest after the cutover writes both live spaces (the retired one too)
    more = make_docs(20, prefix="e", seed=5)
    res = ws.run("ingest", "docs", ws.jsonl("more.jsonl", more), ok=True)
    assert "ingested 20 documents into docs (spaces: v2, v1)" in res.out
    sp = ws.spaces()
    assert sp["v1"]["count"] == sp["v2"]["count"] == N + 20

    # rollback, then a second rollback is refused
    res = ws.run("rollback", "docs", ok=True)
    assert res.out.strip() == "docs: rolled back from v2 to v1"
    c = ws.collection_status()
    assert c is not None and c["active"] == "v1"
    assert {s["label"]: s["state"] for s in c["spaces"]} == {"v1": "active", "v2": "ready"}
    res = ws.run("rollback", "docs", ok=False)
    assert res.rc == 3 and "no previous active space" in res.err
    rep = ws.run("verify", "docs", "--json", ok=True).json()
    assert rep["clean"] and all(s["expected"] == N + 20 for s in rep["spaces"])

    # cut over again (explicit target)
    res = ws.run("cutover", "docs", "--to", "v2", ok=True)
    assert res.out.splitlines()[0] == "docs: cut over from v1 to v2"

    # history: the alias moves and the event log, in order
    hist = ws.run("history", "docs", "--json", ok=True).json()
    assert [a["reason"] for a in hist["aliases"]] == ["create", "cutover", "rollback", "cutover"]
    kinds = [e["kind"] for e in hist["events"]]
    for k in ("collection.created", "migration.started", "backfill.finished", "evaluated",
              "alias.cutover", "alias.rollback"):
        assert k in kinds
    assert kinds.index("migration.started") < kinds.index("backfill.finished")
    assert kinds.index("backfill.finished") < kinds.index("alias.cutover")
    assert kinds.index("alias.cutover") < kinds.index("alias.rollback")
    text = ws.run("history", "docs", ok=True).out
    assert len(text.splitlines()) == len(hist["events"])
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  collection\.created ", text)


def test_backfill_verb_resumes_a_started_migration(
    ingested: tuple[CliWorkspace, list[dict[str, Any]]],
) -> None:
    ws, docs = ingested
    from vecver.ops.backfill import start_migration

    with ws.open() as w:
        start_migration(w, "docs", "v2")
    sp = ws.spaces()
    assert (sp["v2"]["state"], sp["v2"]["count"]) == ("building", 0)
    # not ready: cutover is refused, by name or not
    for args in (("cutover", "docs"), ("cutover", "docs", "--to", "v2"),
                 ("cutover", "docs", "--to", "v2", "--force")):
        res = ws.run(*args, ok=False)
        assert res.rc == 3 and "not ready" in res.err and "building" in res.err, str(res)
    # search can already read the candidate (empty)
    res = ws.run("search", "docs", "market", "--route", "candidate", "--json", ok=True)
    assert res.json() == []
    res = ws.run("--quiet", "backfill", "docs", "--batch-size", "40", ok=True)
    assert f"backfill docs -> v2: {N} scanned, {N} embedded and written" in res.out
    assert res.out.rstrip().endswith("state ready")
    sp = ws.spaces()
    assert (sp["v2"]["state"], sp["v2"]["count"]) == ("ready", N)
    assert sp["v2"]["backfill"]["done"] == N and sp["v2"]["backfill"]["finished"] is True
    assert ws.run("verify", "docs", "--json", ok=True).json()["clean"] is True
    # nothing left to build
    res = ws.run("backfill", "docs", ok=False)
    assert res.rc == 3 and "no space being built" in res.err
    # the named ready space: reported ready again, nothing written
    rep = ws.run("backfill", "docs", "--space", "v2", "--json", ok=True).json()
    assert rep["state"] == "ready" and rep["written"] == 0
    hits = ws.run("search", "docs", docs[0]["text"], "--route", "candidate", "--json",
                  ok=True).json()
    assert hits[0]["id"] == docs[0]["id"] and hits[0]["space"] == "v2"


def test_cutover_needs_an_evaluation_unless_forced(ready_ws: CliWorkspace) -> None:
    res = ready_ws.run("cutover", "docs", ok=False)
    assert res.rc == 3 and "no evaluation" in res.err
    assert ready_ws.collection_status()["active"] == "v1"  # type: ignore[index]


def test_cutover_force_then_rollback(
    ingested: tuple[CliWorkspace, list[dict[str, Any]]],
) -> None:
    ws, _ = ingested
    ws.run("--quiet", "migrate", "docs", "--to", "v3", ok=True)
    res = ws.run("cutover", "docs", "--force", ok=True)
    assert res.out.strip() == "docs: cut over from v1 to v3 (forced, gate not checked)"
    assert ws.collection_status()["active"] == "v3"  # type: ignore[index]
    hist = ws.run("history", "docs", "--json", ok=True).json()
    assert hist["events"][-1]["kind"] == "alias.cutover"
    assert hist["events"][-1]["detail"]["forced"] is True
    ws.run("rollback", "docs", ok=True)
    assert ws.collection_status()["active"] == "v1"  # type: ignore[index]


def test_gate_failure_refuses_the_cutover(tmp_path: Path) -> None:
    ws = CliWorkspace(tmp_path)
    # a 2-dimensional hash space: its relevance collapses
    ws.write_config(hash_config(
        gate='[gate]\nmin_ann_recall = 0.0\nmetric = "mrr"\nmax_regression = 0.02\nk = 10\n',
        extra='[spaces.tiny]\nembedder = "hash"\ndimension = 2\n',
    ))
    docs = make_docs(200)
    ws.run("ingest", "docs", ws.jsonl("docs.jsonl", docs), ok=True)
    ws.run("--quiet", "migrate", "docs", "--to", "tiny", ok=True)
    ev = ws.run("evaluate", "docs", "--queries", queries_for(ws, docs), "--json", ok=True).json()
    by = {s["space"]: s for s in ev["spaces"]}
    assert by["tiny"]["relevance"]["mrr"] < by["v1"]["relevance"]["mrr"] - 0.02
    res = ws.run("cutover", "docs", ok=False)
    assert res.rc == 3 and "refused by the gate" in res.err and "mrr" in res.err
    assert ws.collection_status()["active"] == "v1"  # type: ignore[index]
    kinds = [e["kind"] for e in ws.run("history", "docs", "--json", ok=True).json()["events"]]
    assert "cutover.refused" in kinds and "alias.cutover" not in kinds
    # forcing is the explicit way past it
    ws.run("cutover", "docs", "--force", ok=True)
    assert ws.collection_status()["active"] == "tiny"  # type: ignore[index]


# ----------------------------------------------------------------------------- config


def test_default_config_is_looked_up_in_cwd(cli_ws: CliWorkspace, tmp_path: Path) -> None:
    docs = make_docs(10)
    cli_ws.run("ingest", "docs", cli_ws.jsonl("d.jsonl", docs), config=None, ok=True)
    out = cli_ws.run("status", "--json", config=None, ok=True).json()
    assert out["collections"][0]["spaces"][0]["count"] == 10
    # relative paths in the config are relative to the config file, not the cwd
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = cli_ws.run("status", "--json", cwd=elsewhere, ok=True).json()
    assert out["collections"][0]["spaces"][0]["count"] == 10
    assert not (elsewhere / "vecver.db").exists() and not (elsewhere / "vectors").exists()
    # no vecver.toml in the cwd (and none looked up in a parent)
    sub = cli_ws.root / "sub"
    sub.mkdir()
    res = cli_ws.run("status", config=None, cwd=sub, ok=False)
    assert res.rc == 4 and "no vecver.toml" in res.err
    # -c is --config
    res = cli_ws.run("-c", cli_ws.config, "status", "--json", config=None, cwd=sub, ok=True)
    assert res.json()["collections"][0]["name"] == "docs"


@pytest.mark.parametrize("verb", ["status", "ingest", "migrate", "history"])
def test_missing_config(tmp_path: Path, verb: str) -> None:
    ws = CliWorkspace(tmp_path)
    args = {"status": ["status"], "ingest": ["ingest", "docs", "x.jsonl"],
            "migrate": ["migrate", "docs", "--to", "v2"], "history": ["history", "docs"]}[verb]
    res = ws.run(*args, config=None, ok=False)
    assert res.rc == 4 and "no vecver.toml" in res.err
    res = ws.run(*args, config=tmp_path / "nope.toml", ok=False)
    assert res.rc == 4 and "does not exist" in res.err
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_bad_configs(cli_ws: CliWorkspace) -> None:
    cli_ws.write_config(hash_config(backend="nosuch"), "nb.toml")
    res = cli_ws.run("status", config=cli_ws.root / "nb.toml", ok=False)
    assert res.rc == 4 and "unknown backend 'nosuch'" in res.err and "local" in res.err
    cli_ws.write_config("[backend\nname=", "bt.toml")
    res = cli_ws.run("status", config=cli_ws.root / "bt.toml", ok=False)
    assert res.rc == 4 and "cannot read config" in res.err
    cli_ws.write_config(hash_config(extra="[spaces.v9]\nembedder = \"hash\"\n"), "ns.toml")
    res = cli_ws.run("status", config=cli_ws.root / "ns.toml", ok=False)
    assert res.rc == 4 and "v9" in res.err
    cli_ws.write_config(hash_config(extra="[backfil]\nbatch_size = 3\n"), "typo.toml")
    res = cli_ws.run("status", config=cli_ws.root / "typo.toml", ok=False)
    assert res.rc == 4 and "backfil" in res.err


def _checkpointed(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pages", "foreign"])
def test_corrupt_manifest(ready_ws: CliWorkspace, tmp_path: Path, damage: str) -> None:
    ws = CliWorkspace(tmp_path)
    ws.write_config(hash_config())
    db = ws.root / "vecver.db"
    if damage == "garbage":
        db.write_bytes(b"this is not a database\n" * 100)
    elif damage == "foreign":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE users (name TEXT)")
        con.commit()
        con.close()
    else:
        _checkpointed(ready_ws.root / "vecver.db")
        data = (ready_ws.root / "vecver.db").read_bytes()
        assert len(data) > 8 * 4096
        if damage == "truncated":
            data = data[:100]
        else:  # destroy the root pages of the tables, except the schema and meta
            con = sqlite3.connect(ready_ws.root / "vecver.db")
            page = con.execute("PRAGMA page_size").fetchone()[0]
            roots = [r for n, r in con.execute(
                "SELECT name, rootpage FROM sqlite_master WHERE type = 'table'"
            ) if n in ("collections", "namespaces", "events", "alias_history")]
            con.close()
            buf = bytearray(data)
            for r in roots:
                buf[(r - 1) * page : r * page] = b"\xff" * page
            data = bytes(buf)
        db.write_bytes(data)
    for args in (["status"], ["status", "--json"], ["history", "docs"], ["verify", "docs"],
                 ["cutover", "docs", "--force"], ["search", "docs", "market"]):
        res = ws.run(*args, ok=False)
        assert res.rc == 4, str(res)
        assert ("corrupt" in res.err or "not created by vecver" in res.err), str(res)
    _checkpointed(ready_ws.root / "vecver.db")
    assert ready_ws.collection_status()["active"] == "v1"  # type: ignore[index]


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("args", [
    ["plan", "nope", "--to", "v2"],
    ["migrate", "nope", "--to", "v2"],
    ["backfill", "nope"],
    ["verify", "nope"],
    ["evaluate", "nope"],
    ["cutover", "nope"],
    ["rollback", "nope"],
    ["history", "nope"],
    ["search", "nope", "market"],
])
def test_unknown_collection(ready_ws: CliWorkspace, args: list[str]) -> None:
    res = ready_ws.run(*args, ok=False)
    assert "unknown collection 'nope'" in res.err and "docs" in res.err
    assert res.out == ""


@pytest.mark.parametrize("args", [
    ["plan", "docs", "--to", "v9"],
    ["migrate", "docs", "--to", "v9"],
    ["cutover", "docs", "--to", "v9"],
    ["cutover", "docs", "--to", "v9", "--force"],
    ["backfill", "docs", "--space", "v9"],
    ["search", "docs", "market", "--route", "space:v9"],
])
def test_unknown_space(ready_ws: CliWorkspace, args: list[str]) -> None:
    res = ready_ws.run(*args, ok=False)
    assert "unknown space 'v9'" in res.err
    assert res.out == ""
    sp = ready_ws.spaces()
    assert set(sp) == {"v1", "v2"} and sp["v2"]["state"] == "ready"


def test_other_refusals(ready_ws: CliWorkspace, tmp_path: Path) -> None:
    res = ready_ws.run("rollback", "docs", ok=False)
    assert res.rc == 3 and "no previous active space" in res.err
    res = ready_ws.run("cutover", "docs", "--to", "v1", ok=False)
    assert res.rc == 3 and "already active" in res.err
    res = ready_ws.run("migrate", "docs", "--to", "v1", ok=False)
    assert res.rc == 3 and "already the active space" in res.err
    res = ready_ws.run("search", "docs", "market", "--route", "sideways", ok=False)
    assert res.rc == 2 and "unknown route" in res.err
    res = ready_ws.run("search", "docs", "market", "--filter", "{not json", ok=False)
    assert res.rc == 2
    res = ready_ws.run("evaluate", "docs", "--queries", tmp_path / "none.jsonl", ok=False)
    assert res.rc == 2
    res = ready_ws.run("ingest", "fresh", ready_ws.jsonl("one.jsonl", make_docs(1)), ok=False)
    assert res.rc == 4 and "does not exist" in res.err
    assert ready_ws.collection_status("fresh") is None


MALFORMED = {
    "bad json": '{"id": "x1", "text": "fine"}\n{"id": "x2", "text": "broken"\n',
    "no text": '{"id": "x1", "text": "fine"}\n{"id": "x2"}\n',
    "empty text": '{"id": "x1", "text": "fine"}\n{"id": "x2", "text": "   "}\n',
    "no id": '{"id": "x1", "text": "fine"}\n{"text": "anonymous"}\n',
    "duplicate id": '{"id": "x1", "text": "fine"}\n{"id": "x1", "text": "again"}\n',
    "not an object": '{"id": "x1", "text": "fine"}\n["x2", "text"]\n',
    "bad metadata": '{"id": "x1", "text": "fine"}\n{"id": "x2", "text": "t", "metadata": 7}\n',
}


#: lines that parse as JSON (or look like UTF-8) but hold what cannot be hashed or
#: stored; they used to pass the check and crash after 256 documents were written
UNSTORABLE = {
    "surrogate escape in text": b'{"id": "x2", "text": "bad \\ud800 x"}\n',
    "surrogate escape in id": b'{"id": "x\\udfff", "text": "fine"}\n',
    "surrogate escape in metadata": b'{"id": "x2", "text": "t", "metadata": {"k": "\\ud83d"}}\n',
    "surrogate escape in a metadata key":
        b'{"id": "x2", "text": "t", "metadata": {"\\udc00": 1}}\n',
    "UTF-8-encoded surrogate": b'{"id": "x2", "text": "bad \xed\xa0\x80 x"}\n',
    "invalid UTF-8": b'{"id": "x2", "text": "bad \xff\xfe x"}\n',
    "truncated UTF-8": b'{"id": "x2", "text": "caf\xc3"}\n',
}


@pytest.mark.parametrize("kind", sorted(MALFORMED) + sorted(UNSTORABLE))
def test_malformed_jsonl_ingests_nothing(cli_ws: CliWorkspace, kind: str) -> None:
    # the good lines come first: all of them would be written by a streaming ingest
    good = make_docs(500, prefix="g")
    bad = cli_ws.root / "bad.jsonl"
    tail = UNSTORABLE[kind] if kind in UNSTORABLE else MALFORMED[kind].encode()
    bad.write_bytes("".join(json.dumps(d) + "\n" for d in good).encode()
                    + b'{"id": "x1", "text": "fine"}\n' * (kind in UNSTORABLE) + tail)
    # into a collection that does not exist yet: it is not created
    res = cli_ws.run("ingest", "docs", bad, ok=False)
    assert res.rc == 2 and res.out == ""
    if kind == "bad metadata":  # the message names the document, not the line
        assert "'x2'" in res.err
    else:
        assert "bad.jsonl" in res.err and "nothing from it was written" in res.err
    if kind in UNSTORABLE:  # the line is named: 500 good ones, x1, then the bad one
        assert "bad.jsonl:502: " in res.err, str(res)
        assert ("surrogate" in res.err) or ("not valid UTF-8" in res.err), str(res)
    assert cli_ws.collection_status("docs") is None
    # into an existing collection: its count is unchanged
    docs = make_docs(5)
    cli_ws.run("ingest", "docs", cli_ws.jsonl("ok.jsonl", docs), ok=True)
    res = cli_ws.run("ingest", "docs", bad, ok=False)
    assert res.rc == 2
    assert cli_ws.spaces()["v1"]["count"] == 5
    with cli_ws.open() as w:
        assert w.collection("docs").get([d["id"] for d in good[:3]] + ["x1"]) == {}


def test_ingest_updates_and_missing_file(cli_ws: CliWorkspace) -> None:
    docs = make_docs(30)
    cli_ws.run("ingest", "docs", cli_ws.jsonl("d.jsonl", docs), ok=True)
    changed = [dict(d, text=d["text"] + " revised") for d in docs[:10]]
    cli_ws.run("ingest", "docs", cli_ws.jsonl("c.jsonl", changed), ok=True)
    assert cli_ws.spaces()["v1"]["count"] == 30
    with cli_ws.open() as w:
        got = w.collection("docs").get([d["id"] for d in changed])
        assert {i: r.stamp.source_hash for i, r in got.items()} == {
            d["id"]: source_hash(d["text"]) for d in changed
        }
    res = cli_ws.run("ingest", "docs", cli_ws.root / "missing.jsonl", ok=False)
    assert res.rc == 2 and "missing.jsonl" in res.err
    # a new collection in a named space
    res = cli_ws.run("ingest", "other", cli_ws.root / "d.jsonl", "--space", "v3", ok=True)
    assert "(spaces: v3)" in res.out
    c = cli_ws.collection_status("other")
    assert c is not None and c["active"] == "v3" and c["spaces"][0]["count"] == 30
    res = cli_ws.run("ingest", "third", cli_ws.root / "d.jsonl", "--space", "v9", ok=False)
    assert "unknown space 'v9'" in res.err
    assert cli_ws.collection_status("third") is None


# ----------------------------------------------------------------------------- progress


def _run_with_tty_stderr(ws: CliWorkspace, *args: Any, timeout: float = 60) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; returns (exit code, what it showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(ws.argv(args), cwd=ws.root, stdout=subprocess.DEVNULL, stderr=slave,
                         stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif p.poll() is not None:
                break
    finally:
        os.close(master)
    rc = p.wait(timeout=timeout)
    return rc, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_only_on_a_terminal_and_not_quiet(cli_ws: CliWorkspace) -> None:
    cli_ws.write_config(hash_config(extra='[spaces.v4]\nembedder = "hash"\ndimension = 32\n'))
    docs = make_docs(400)
    path = cli_ws.jsonl("docs.jsonl", docs)
    # piped stderr: no progress line, one line per phase (not one per batch)
    res = cli_ws.run("ingest", "docs", path, "--batch-size", "50", ok=True)
    assert res.err == "vecver: ingest docs: 400 docs\n"
    res = cli_ws.run("migrate", "docs", "--to", "v2", "--batch-size", "50", ok=True)
    assert_phase_lines(res.err, "backfill docs -> v2: 400 docs")
    assert "ETA" not in res.out
    # --quiet, before or after the verb: nothing
    res = cli_ws.run("ingest", "docs", path, "--batch-size", "50", "--quiet", ok=True)
    assert res.err == ""
    # a terminal: a progress line with an ETA
    rc, shown = _run_with_tty_stderr(cli_ws, "migrate", "docs", "--to", "v3", "--batch-size", "50")
    assert rc == 0, shown
    assert "ETA" in shown and "backfill docs -> v3" in shown
    rc, shown = _run_with_tty_stderr(cli_ws, "ingest", "docs", path, "--batch-size", "100")
    assert rc == 0 and "ETA" in shown and "ingest docs" in shown
    # --quiet: nothing, even on a terminal
    rc, shown = _run_with_tty_stderr(cli_ws, "--quiet", "ingest", "docs", path)
    assert rc == 0 and shown == ""
    rc, shown = _run_with_tty_stderr(cli_ws, "-q", "migrate", "docs", "--to", "v4",
                                     "--batch-size", "50")
    assert rc == 0 and shown == ""
    assert cli_ws.spaces()["v4"]["state"] == "ready"
    # a refusal on a terminal is still one line
    rc, shown = _run_with_tty_stderr(cli_ws, "migrate", "docs", "--to", "v1")
    assert rc == 3 and len(shown.strip().splitlines()) == 1 and "ETA" not in shown


@pytest.mark.parametrize("args", [
    ["ingest", "docs", "{docs}", "--batch-size", "0"],
    ["ingest", "docs", "{docs}", "--batch-size", "-5"],
    ["ingest", "fresh", "{docs}", "--space", "v1", "--batch-size", "-5"],
    ["migrate", "docs", "--to", "v3", "--batch-size", "-3"],
    ["migrate", "docs", "--to", "v3", "--batch-size", "0"],
    ["backfill", "docs", "--batch-size", "0"],
    ["evaluate", "docs", "--sample", "0"],
    ["evaluate", "docs", "--sample", "-3"],
    ["evaluate", "docs", "-k", "0"],
    ["search", "docs", "market", "-k", "0"],
    ["search", "docs", "market", "-k", "-1"],
    ["search", "docs", " "],
])
def test_bad_counts_are_refused_before_anything_happens(
    ready_ws: CliWorkspace, args: list[str]
) -> None:
    # a non-positive batch size used to "ingest" every document and write none of them
    path = ready_ws.jsonl("more.jsonl", make_docs(20, prefix="m"))
    res = ready_ws.run(*[a.format(docs=path) for a in args], ok=False)
    assert res.rc == 2 and "must be" in res.err, str(res)
    sp = ready_ws.spaces()
    assert set(sp) == {"v1", "v2"} and sp["v1"]["count"] == sp["v2"]["count"] == 100
    assert ready_ws.collection_status("fresh") is None


def test_closed_stdout_is_not_an_error(ready_ws: CliWorkspace) -> None:
    """`vecver ... --json | head`: the reader goes away; no traceback, SIGPIPE's status."""
    for args in (["history", "docs", "--json"], ["search", "docs", "market", "-k", "50"]):
        p = subprocess.Popen(ready_ws.argv(args), cwd=ready_ws.root, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        assert p.stdout is not None
        p.stdout.close()
        _, err = p.communicate(timeout=60)
        assert err == "" and p.returncode == 141, (p.returncode, err)


# ----------------------------------------------------------------------------- generated


def _spec_parsers() -> tuple[Any, dict[str, Any]]:
    """The real parser and its sub-parser per verb."""
    import argparse

    from vecver.cli import build_parser

    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return p, dict(sub.choices)


def test_every_command_function_is_a_verb_and_every_parameter_an_option() -> None:
    """The CLI is generated from vecver.command: every public function is a verb, every
    parameter (but the config, --quiet and the documented Python-only callbacks) is an
    argument of the same kind, type, default and help, and nothing else is."""
    import dataclasses
    import inspect
    import typing

    from vecver import command
    from vecver.cli.spec import CONTEXT_PARAMETERS, PYTHON_ONLY, option_flag, parse_doc
    from vecver.demo import run_demo

    _, subs = _spec_parsers()
    functions = {n: f for n, f in vars(command).items() if inspect.isfunction(f)
                 and f.__module__ == "vecver.command" and not n.startswith("_")}
    functions["demo"] = run_demo
    from vecver import verbs as verb_modules

    extra = verb_modules.functions()  # verbs of vecver.verbs.* (tests of their own)
    groups = {n.split(" ")[0] for n in extra if " " in n}
    assert set(subs) == set(functions) | {n for n in extra if " " not in n} | groups
    assert set(subs) == set(VERBS)
    import argparse

    def sub_parser(verb: str) -> Any:
        if " " not in verb:
            return subs[verb]
        group, word = verb.split(" ", 1)
        nested = next(a for a in subs[group]._actions
                      if isinstance(a, argparse._SubParsersAction))
        return nested.choices[word]

    for verb, fn in {**functions, **extra}.items():
        sp = sub_parser(verb)
        doc = parse_doc(fn.__doc__)
        actions = {a.dest: a for a in sp._actions
                   if a.dest not in ("help", "_json", "config", "quiet", "verbose")}
        assert "--json" in sp._option_string_actions, verb
        for g in ("--config", "--quiet", "--verbose"):
            assert g in sp._option_string_actions, (verb, g)
        expected = set()
        for p in inspect.signature(fn).parameters.values():
            if p.name in CONTEXT_PARAMETERS:
                continue
            help_text = doc.params[p.name]  # every parameter is documented
            if help_text.startswith(PYTHON_ONLY):
                assert p.kind is p.KEYWORD_ONLY and p.default is not p.empty, (verb, p)
                continue
            expected.add(p.name)
            a = actions[p.name]
            assert a.help is not None and a.help.startswith(help_text.rstrip(".")), (verb, p)
            if p.kind is p.KEYWORD_ONLY:
                assert a.option_strings == [option_flag(p.name)], (verb, p.name)
                assert a.required == (p.default is p.empty), (verb, p.name)
                if p.default is not p.empty:
                    assert a.default == p.default, (verb, p.name)
                if p.annotation in ("bool", bool):
                    assert a.nargs == 0 and a.const is True, (verb, p.name)  # a flag
                elif "int" in str(p.annotation):
                    assert a.type is not None and a.type("3") == 3, (verb, p.name)
            else:
                assert a.option_strings == [], (verb, p.name)  # positional
        assert set(actions) == expected, verb  # no argument without a parameter
        returned = typing.get_type_hints(fn)["return"]  # a dataclass with to_dict()
        assert dataclasses.is_dataclass(returned) and callable(returned.to_dict), verb


def test_each_verb_calls_its_function_with_what_was_parsed(tmp_path: Path) -> None:
    """Parse a full command line of every verb and bind the call the CLI would make to
    the function's real signature: a parameter renamed on either side fails here."""
    import inspect

    from vecver.cli import build_parser, call_arguments

    cfg = tmp_path / "vecver.toml"
    cfg.write_text(hash_config())
    samples = {
        "init": [],
        "ingest": ["docs", "f.jsonl", "--space", "v1", "--batch-size", "7"],
        "status": [],
        "plan": ["docs", "--to", "v2"],
        "migrate": ["docs", "--to", "v2", "--on", "other", "--source", "s.jsonl",
                    "--batch-size", "5"],
        "backfill": ["docs", "--space", "v2", "--source", "s.jsonl", "--batch-size", "3",
                     "--restart"],
        "verify": ["docs", "--repair"],
        "evaluate": ["docs", "--queries", "q.jsonl", "-k", "4", "--sample", "9"],
        "cutover": ["docs", "--to", "v2", "--force"],
        "rollback": ["docs"],
        "abort": ["docs", "--space", "v2"],
        "history": ["docs"],
        "search": ["docs", "a query", "-k", "3", "--route", "candidate", "--filter",
                   '{"topic": "sport"}', "--routing-key", "user-7", "--fusion", "zscore"],
        "demo": ["--workdir", "wd", "--limit", "12"],
        "shadow report": ["docs", "--space", "v2", "--min-overlap", "0.6", "--min-top1", "0.7"],
        "shadow reset": ["docs", "--space", "v2"],
        "stats": ["docs", "--textfile", "m.prom"],
        "adapter fit": ["docs", "--from", "v2", "--to", "v1", "--kind", "procrustes",
                        "--pairs", "500", "--stratify", "topic", "--seed", "3", "--no-enable"],
        "adapter evaluate": ["docs", "--from", "v2", "--to", "v1", "--queries", "q.jsonl",
                             "-k", "5", "--sample", "40"],
        "adapter list": ["--collection", "docs"],
        "adapter enable": ["docs", "--from", "v2", "--to", "v1", "--version", "2"],
        "adapter export": ["docs", "--from", "v2", "--to", "v1", "--output", "a.npz",
                           "--version", "1"],
        "drift": ["docs", "--space", "v1", "--reference", "7d", "--save-reference", "base",
                  "--no-recall"],
        "adopt": ["docs", "--namespace", "legacy", "--space", "v1", "--text-field", "body",
                  "--id-field", "doc_id", "--on", "other", "--read-only", "--check-all",
                  "--skip-vector-check"],
        "emulator": ["pinecone", "--port", "5081", "--host", "127.0.0.1", "--duration", "2.5",
                     "--lag", "0.1", "--rate-limit", "0.2", "--unavailable", "0.1",
                     "--latency", "0.01"],
    }
    parser = build_parser()
    from vecver.cli import verbs as all_verbs

    assert set(samples) == set(all_verbs())
    for verb, argv in samples.items():
        args = parser.parse_args(["--config", str(cfg), "-q", *verb.split(), *argv, "--json"])
        spec = args._verb
        pos, kw = call_arguments(spec, args)
        bound = inspect.signature(spec.function).bind(*pos, **kw)
        given = {k: v for k, v in bound.arguments.items() if k not in ("config", "config_path")}
        if "progress" in given:
            assert given.pop("progress") is False  # -q
        shown = [str(v) for v in given.values() if v not in (None, False)]
        for word in argv:
            if not word.startswith("-"):
                assert word in shown or json.loads(word) in given.values(), (verb, word)
    args = parser.parse_args(["search", "docs", "q", "-c", str(cfg)])
    assert call_arguments(args._verb, args)[1] == {
        "k": 10, "route": "active", "filter": None, "routing_key": None, "fusion": None}


def test_the_generator_refuses_what_it_cannot_follow() -> None:
    from collections.abc import Callable

    from vecver.cli.spec import VerbSpecError, parse_doc, verb_spec

    def undocumented(config: Any, collection: str, *, k: int = 1) -> None:
        """Do a thing.

        :param collection: the collection.
        """

    def flag_on(config: Any, collection: str, *, fast: bool = True) -> None:
        """Do a thing.

        :param collection: the collection.
        :param fast: go fast.
        """

    def callback(config: Any, collection: str, *, hook: Callable[[], None] | None = None) -> None:
        """Do a thing.

        :param collection: the collection.
        :param hook: called at the end.
        """

    def stale(config: Any, collection: str) -> None:
        """Do a thing.

        :param collection: the collection.
        :param gone: a parameter that was removed.
        """

    for fn in (undocumented, flag_on, callback, stale):
        with pytest.raises(VerbSpecError):
            verb_spec(fn.__name__, fn)
    doc = parse_doc("""Summary here. More.

    Details.

    :param a: first line
        continued.
    :metavar a: THING
    """)
    assert doc.headline == "Summary here"
    assert doc.params == {"a": "first line continued."} and doc.metavars == {"a": "THING"}
    assert doc.description == "Summary here. More.\n\nDetails."


def test_help_is_the_docstring(cli_ws: CliWorkspace) -> None:
    res = cli_ws.run("migrate", "--help", ok=True)
    text = " ".join(res.out.split())
    assert "usage: vecver migrate" in res.out and "--to SPACE" in res.out
    assert "--on INSTANCE" in text and "the backend instance ([backends.NAME])" in text
    assert "Migrate a collection to a new space" in text
    res = cli_ws.run("abort", "--help", ok=True)
    assert "usage: vecver abort" in res.out and "--space SPACE" in res.out


def test_cli_and_demo_do_not_import_each_other() -> None:
    """demo -> command; cli -> command, render, and demo only to list its verb: no cycle."""
    def imported(code: str) -> str:
        p = subprocess.run([sys.executable, "-c", "import sys; " + code], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    assert imported("import vecver.demo, vecver.command; "
                    "print([m for m in sys.modules if m.startswith('vecver.cli')])") == "[]"
    assert imported("import vecver.cli.render, vecver.cli.spec; "
                    "print('vecver.demo' in sys.modules)") == "False"
    # not even inside a function (the old demo imported the CLI's table lazily)
    import ast

    import vecver

    root = Path(vecver.__file__).parent
    for module in ("demo.py", "command.py"):
        tree = ast.parse((root / module).read_text())
        names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in names if m.startswith(("cli", "vecver.cli"))], (module, names)


# ----------------------------------------------------------------------------- frictions


def test_global_options_before_or_after_the_verb(cli_ws: CliWorkspace, tmp_path: Path) -> None:
    docs = make_docs(30)
    path = cli_ws.jsonl("d.jsonl", docs)
    res = cli_ws.run("ingest", "docs", path, "--quiet", ok=True)
    assert res.err == "" and "ingested 30 documents" in res.out
    res = cli_ws.run("ingest", "docs", path, "-q", "--batch-size", "10", ok=True)
    assert res.err == ""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["status", "--json", "--config", cli_ws.config],
                 ["status", "-c", cli_ws.config, "--json", "-v"],
                 ["--quiet", "status", "--config", cli_ws.config, "--json"]):
        res = cli_ws.run(*args, config=None, cwd=elsewhere, ok=True)
        assert res.json()["collections"][0]["spaces"][0]["count"] == 30
    # given on both sides, the one after the verb wins
    res = cli_ws.run("--config", elsewhere / "nope.toml", "status", "--config", cli_ws.config,
                     config=None, ok=True)
    assert "collection docs" in res.out
    res = cli_ws.run("migrate", "docs", "--to", "v2", "--quiet", ok=True)
    assert res.err == ""


@pytest.mark.parametrize("args", [
    [],
    ["nosuchverb"],
    ["ingest"],
    ["ingest", "docs"],
    ["migrate", "docs"],
    ["search", "docs", "q", "-k", "many"],
    ["search", "docs", "q", "--filter", "{not json"],
    ["search", "docs", "q", "--filter", "[1, 2]"],
    ["evaluate", "docs", "--sample", "1.5"],
    ["status", "--bogus"],
    ["status", "extra"],
])
def test_usage_errors_are_one_line(cli_ws: CliWorkspace, args: list[str]) -> None:
    res = cli_ws.run(*args, ok=False)
    assert res.rc == 2 and res.out == ""
    assert res.err_lines[0].startswith("vecver: error: ") and "--help" in res.err


def test_json_on_every_verb(tmp_path: Path) -> None:
    import argparse

    from vecver.cli import verbs as all_verbs

    _, subs = _spec_parsers()
    for verb in all_verbs():  # a grouped verb: its sub-parser under the group's
        sp = subs[verb.split(" ")[0]]
        if " " in verb:
            nested = next(a for a in sp._actions if isinstance(a, argparse._SubParsersAction))
            sp = nested.choices[verb.split(" ", 1)[1]]
        assert "--json" in sp._option_string_actions, verb
    ws = CliWorkspace(tmp_path)
    ws.write_config(hash_config())
    init = ws.run("init", "--json", ok=True).json()
    assert init == {"config": str(ws.config), "wrote_config": False,
                    "manifest": str(ws.root / "vecver.db"), "created": ["docs"]}
    docs = make_docs(40)
    ing = ws.run("ingest", "docs", ws.jsonl("d.jsonl", docs), "--json", "-q", ok=True).json()
    assert (ing["collection"], ing["documents"], ing["spaces"]) == ("docs", 40, ["v1"])
    ws.run("-q", "migrate", "docs", "--to", "v3", ok=True)
    cut = ws.run("cutover", "docs", "--force", "--json", ok=True).json()
    assert (cut["collection"], cut["from_space"], cut["to_space"], cut["forced"]) == (
        "docs", "v1", "v3", True)
    back = ws.run("rollback", "docs", "--json", ok=True).json()
    assert (back["from_space"], back["to_space"]) == ("v3", "v1")
    st = ws.status()
    spaces = st["collections"][0]["spaces"]
    assert {s["label"]: s["backend"] for s in spaces} == {"v1": "default", "v3": "default"}
    hits = ws.run("search", "docs", docs[0]["text"], "--json", ok=True).json()
    assert isinstance(hits, list) and hits[0]["id"] == docs[0]["id"]


def test_exit_codes_follow_one_rule_per_error_class() -> None:
    """The documented table (README "Command line", vecver.cli's docstring)."""
    from vecver import errors as E
    from vecver.cli import ConfigLoadError, exit_code

    table: list[tuple[BaseException, int]] = [
        (E.InvalidInput("bad"), 2),
        (E.SourceError("f.jsonl:3", "not valid JSON"), 2),
        (E.DimensionMismatch(3, 4), 2),
        (E.MissingText("d1"), 2),
        (E.InvalidFilter("bad filter"), 2),
        (E.UnknownCollection("nope"), 2),
        (E.UnknownSpace("v9"), 2),
        (E.NotReady("docs", "v2", "building"), 3),
        (E.GateFailed("docs", "v2", ["mrr"]), 3),
        (E.NotEvaluated("docs", "v2"), 3),
        (E.NoPreviousSpace("docs"), 3),
        (E.LeaseHeld("backfill", "me"), 3),
        (E.StateError("refused"), 3),
        (E.ConfigError("bad config"), 4),
        (E.UnknownBackend("x", ["local"]), 4),
        (E.BackendNotInstalled("x", "pkg", "x"), 4),
        (E.SpaceConflict("v1", "a" * 64, "b" * 64), 4),
        (E.ManifestCorrupt("m.db", "garbage"), 4),
        (E.ManifestForeign("m.db"), 4),
        (ConfigLoadError(E.UnknownSpace("v9")), 4),  # a config naming an undeclared space
        (E.BackendError("down"), 1),
        (E.WriteFailed("v2", ["v1"], RuntimeError("x")), 1),
        (E.EmbedderError("cannot load"), 1),
        (E.VecverError("other"), 1),
    ]
    for name in ("NotAbortable", "CandidateFailed", "AlreadyRecorded"):  # when they exist
        cls = getattr(E, name, None)
        if cls is not None:
            assert issubclass(cls, E.StateError) and exit_code(cls.__new__(cls))[0] == 3
    for err, code in table:
        assert exit_code(err)[0] == code, (type(err).__name__, exit_code(err), code)
    assert exit_code(E.StateError("x"))[1] == "refused"
    assert exit_code(E.InvalidInput("x"))[1] == "error"


def test_exit_codes_end_to_end(cli_ws: CliWorkspace) -> None:
    docs = cli_ws.jsonl("d.jsonl", make_docs(10))
    cli_ws.run("-q", "ingest", "docs", docs, ok=True)
    # the config changes the geometry of a registered label: a configuration problem
    cli_ws.write_config(hash_config().replace('[spaces.v1]\nembedder = "hash"\ndimension = 64',
                                              '[spaces.v1]\nembedder = "hash"\ndimension = 32'))
    res = cli_ws.run("ingest", "docs", docs, ok=False)
    assert res.rc == 4 and "registered with fingerprint" in res.err
    # the config names an undeclared initial space: a configuration problem too
    cli_ws.write_config(hash_config(collection="fresh").replace(
        '[collections.fresh]\nspace = "v1"', '[collections.fresh]\nspace = "v9"'))
    res = cli_ws.run("ingest", "fresh", docs, ok=False)
    assert res.rc == 4 and "v9" in res.err
    # the command line names an unknown space: bad input
    cli_ws.write_config(hash_config())
    res = cli_ws.run("ingest", "other", docs, "--space", "v9", ok=False)
    assert res.rc == 2 and "unknown space 'v9'" in res.err


def test_search_says_so_while_a_model_loads(cli_ws: CliWorkspace) -> None:
    (cli_ws.root / "slow_model.py").write_text(
        "import time\n"
        "import numpy as np\n"
        "class Slow:\n"
        "    revision = 'slow-1'\n"
        "    def __init__(self):\n"
        "        self.loaded = False\n"
        "    def __call__(self, texts):\n"
        "        if not self.loaded:\n"
        "            time.sleep(3.0)  # a model that takes seconds to load\n"
        "            self.loaded = True\n"
        "        out = np.zeros((len(texts), 8), dtype=np.float32)\n"
        "        for i, t in enumerate(texts):\n"
        "            out[i, len(t) % 8] = 1.0\n"
        "            out[i, (len(t) // 8) % 8] += 0.5\n"
        "        return out\n"
    )
    cli_ws.write_config(hash_config(extra=(
        '[spaces.slow]\nembedder = "python:slow_model:Slow"\ndimension = 8\n')))
    path = cli_ws.jsonl("d.jsonl", make_docs(5))
    cli_ws.run("-q", "ingest", "slow", path, "--space", "slow", ok=True)
    res = cli_ws.run("search", "slow", "market", "--json", ok=True)
    assert len(res.json()) == 5
    assert res.err_lines == [
        "vecver: search slow: loading space 'slow' (its model and index) ..."], str(res)
    res = cli_ws.run("search", "slow", "market", "-q", ok=True)
    assert res.err == ""


def test_migrate_off_a_terminal_prints_one_line_per_phase(cli_ws: CliWorkspace) -> None:
    docs = make_docs(120)
    cli_ws.run("-q", "ingest", "docs", cli_ws.jsonl("d.jsonl", docs), ok=True)
    res = cli_ws.run("migrate", "docs", "--to", "v2", "--batch-size", "10", ok=True)
    assert_phase_lines(res.err, "backfill docs -> v2: 120 docs")
    assert len(res.err_lines) < 12  # 12 batches: not a line per batch
    # a refusal is still one line: the phases start after the checks
    res = cli_ws.run("migrate", "docs", "--to", "v1", ok=False)
    assert res.rc == 3


def test_demo_workdir_is_ignored_by_git() -> None:
    root = Path(__file__).resolve().parents[1]
    lines = (root / ".gitignore").read_text().splitlines()
    assert "/vecver-demo/" in lines
    readme = (root / "README.md").read_text()
    assert "--workdir vecver-demo" in readme


# ----------------------------------------------------------------------------- placement


def test_abort_and_migrate_on_another_instance(cli_ws: CliWorkspace, tmp_path: Path) -> None:
    """`vecver abort` (vecver.ops.abort) and `vecver migrate --on` (placement)."""
    cli_ws.write_config(hash_config(extra=(
        f'[backends.other]\nname = "local"\npath = "{tmp_path / "other-vectors"}"\n')))
    docs = make_docs(60)
    cli_ws.run("-q", "ingest", "docs", cli_ws.jsonl("d.jsonl", docs), ok=True)
    # abort a migration: its namespace is dropped, the active space is untouched
    cli_ws.run("-q", "migrate", "docs", "--to", "v2", ok=True)
    rep = cli_ws.run("abort", "docs", "--json", ok=True).json()
    assert rep["collection"] == "docs"
    sp = cli_ws.spaces()
    assert sp["v2"]["state"] == "dropped" and sp["v1"]["state"] == "active"
    assert sp["v1"]["count"] == 60
    res = cli_ws.run("abort", "docs", ok=False)
    assert res.rc == 3
    res = cli_ws.run("abort", "docs", "--space", "v1", ok=False)  # the active space
    assert res.rc == 3 and "v1" in res.err
    # place the new space on another instance
    res = cli_ws.run("migrate", "docs", "--to", "v3", "--on", "other", "-q", ok=True)
    assert res.out.rstrip().endswith("state ready")
    sp = cli_ws.spaces()
    assert (sp["v3"]["backend"], sp["v3"]["state"], sp["v3"]["count"]) == ("other", "ready", 60)
    assert (tmp_path / "other-vectors").is_dir()
    out = cli_ws.run("status", ok=True).out
    assert "backend" in out.splitlines()[1] and "other" in out
    res = cli_ws.run("migrate", "docs", "--to", "v2", "--on", "nosuch", ok=False)
    assert res.rc == 4 and "nosuch" in res.err


def test_emulator_lag_is_refused_in_one_line_for_weaviate() -> None:
    """--lag emulates Pinecone's eventual consistency; the Weaviate emulator has none, and
    asking for it is a usage refusal (exit 2, one line), not a traceback."""
    bad = subprocess.run([sys.executable, "-m", "vecver", "emulator", "weaviate", "--port", "0",
                          "--lag", "0.1", "--duration", "1"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert "lag must be 0 for weaviate" in lines[0]
