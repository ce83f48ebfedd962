"""The CLI around a broken candidate: `migrate` refuses, `status` says why the space
failed, production writes go on, `abort` abandons it and `migrate` can start it again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vvcli import CliWorkspace, hash_config, make_docs

TESTS = str(Path(__file__).parent)


BROKEN = """
[spaces.bad]
embedder = "python:broken_models:raises"
dimension = 64
"""


def test_status_shows_why_a_candidate_failed_and_writes_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = CliWorkspace(tmp_path)
    ws.write_config(hash_config(extra=BROKEN))
    monkeypatch.setenv("PYTHONPATH", TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    docs = make_docs(20)
    docs[7]["text"] += " POISON"
    ws.run("ingest", "docs", ws.jsonl("a.jsonl", docs), ok=True)
    res = ws.run("migrate", "docs", "--to", "bad", "--quiet")
    assert res.rc == 3, str(res)
    bad = ws.spaces()["bad"]
    assert bad["state"] == "failed" and bad["reason"], bad
    text = ws.run("status", ok=True).out
    assert "bad failed: " in text, text
    # production writes go on, into the active space only
    more = make_docs(5, start=100)
    ws.run("ingest", "docs", ws.jsonl("b.jsonl", more), ok=True)
    assert ws.spaces()["v1"]["count"] == 25
    ws.run("abort", "docs", "--space", "bad", ok=True)
    assert ws.spaces()["bad"]["state"] == "dropped"
    assert ws.spaces()["bad"]["reason"] is None
