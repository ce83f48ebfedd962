"""The examples in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_quickstart_then_external_source(tmp_path: Path) -> None:
    wd = tmp_path / "ws"
    out = _run(str(ROOT / "examples" / "quickstart.py"), str(wd))
    assert "state ready" in out
    assert "served by {'v2'}" in out
    assert "after rollback, served by v1" in out
    out = _run(str(ROOT / "examples" / "external_source.py"), str(wd))
    assert "state ready" in out
