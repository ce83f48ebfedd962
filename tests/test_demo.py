"""The main job: `vecver demo` end to end with the real offline models (a short corpus)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.models, pytest.mark.slow]


def _vecver(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys, vecver.cli; sys.exit(vecver.cli.main())", *args],
        capture_output=True, text=True, cwd=cwd, timeout=600,
    )


def test_demo_migrates_news_to_v2_and_leaves_a_usable_workdir(tmp_path: Path) -> None:
    """Troubleshooting: run `vecver demo --workdir DIR --limit 120` by hand and read its
    output; a model that cannot load offline shows up as an EmbedderError."""
    wd = tmp_path / "demo"
    res = _vecver("--quiet", "demo", "--workdir", str(wd), "--limit", "120")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "refused:" in out and "spaces are never mixed" in out
    assert "ETA" not in res.stderr  # quiet: no progress
    summary = json.loads((wd / "demo-summary.json").read_text())
    assert summary["summary"]["active"] == "v2"
    spaces = {s["space"]: s for s in summary["evaluation"]["spaces"]}
    assert set(spaces) == {"v1", "v2"}
    for s in spaces.values():
        assert s["ann_recall"] >= 0.9
        assert 0.3 < s["relevance"]["mrr"] <= 1.0  # titles find their articles
    st = _vecver("--config", str(wd / "vecver.toml"), "status", "--json")
    assert st.returncode == 0, st.stderr
    coll = json.loads(st.stdout)["collections"][0]
    assert coll["name"] == "news" and coll["active"] == "v2"
    states = {s["label"]: (s["state"], s["count"]) for s in coll["spaces"]}
    assert states == {"v1": ("retired", 120), "v2": ("active", 120)}
    ver = _vecver("--config", str(wd / "vecver.toml"), "verify", "news", "--json")
    assert ver.returncode == 0 and json.loads(ver.stdout)["clean"] is True
    hits = _vecver("--config", str(wd / "vecver.toml"), "search", "news", "oil price", "--json")
    assert hits.returncode == 0
    assert {h["space"] for h in json.loads(hits.stdout)} == {"v2"}


def test_demo_off_a_terminal_says_each_phase_and_prints_json(tmp_path: Path) -> None:
    """Not quiet, stderr a pipe: one line per phase on stderr (no progress line, nothing
    per batch); with --json, stdout is the report and the steps go to stderr."""
    wd = tmp_path / "demo"
    res = _vecver("demo", "--workdir", str(wd), "--limit", "40", "--json")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["ok"] is True and rep["summary"]["active"] == "v2"
    assert [s[:5] for s in rep["steps"]] == [f"[{i}/6]" for i in range(1, 7)]
    err = res.stderr.splitlines()
    assert "\r" not in res.stderr and "ETA" not in res.stderr
    for line in ("vecver: ingest news: 40 docs", "vecver: backfill news -> v2: 40 docs"):
        assert err.count(line) == 1, res.stderr
    assert any(ln.startswith("vecver: evaluate news: ") for ln in err), res.stderr
    assert [ln for ln in err if ln.startswith("[")] == rep["steps"]
