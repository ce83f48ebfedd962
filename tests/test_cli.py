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
         "cutover", "rollback", "history", "search")


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
    assert res.err == ""
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


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_jsonl_ingests_nothing(cli_ws: CliWorkspace, kind: str) -> None:
    # the good lines come first: all of them would be written by a streaming ingest
    good = make_docs(500, prefix="g")
    bad = cli_ws.root / "bad.jsonl"
    bad.write_text("".join(json.dumps(d) + "\n" for d in good) + MALFORMED[kind])
    # into a collection that does not exist yet: it is not created
    res = cli_ws.run("ingest", "docs", bad, ok=False)
    assert res.rc == 2 and res.out == ""
    if kind == "bad metadata":  # the message names the document, not the line
        assert "'x2'" in res.err
    else:
        assert "bad.jsonl" in res.err and "nothing from it was written" in res.err
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
    # piped stderr: no progress, even without --quiet
    res = cli_ws.run("ingest", "docs", path, "--batch-size", "50", ok=True)
    assert res.err == ""
    res = cli_ws.run("migrate", "docs", "--to", "v2", "--batch-size", "50", ok=True)
    assert res.err == "" and "ETA" not in res.out
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
