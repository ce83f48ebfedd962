"""The manifest's change counters (vecver.store._signal): a generation read is reused
only while no write transaction has begun since, in any process; a writer killed between
its two stores leaves every reader reading the file; MAX_AGE bounds the rest."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import vecver.store.sqlite as store_sqlite
from vecver.store.sqlite import Manifest


def _manifest(tmp_path: Path) -> Manifest:
    m = Manifest(tmp_path / "vecver.db")
    m.register_space("v1", "fp1", "r1", {"embedder": "hash"})
    m.register_space("v2", "fp2", "r1", {"embedder": "hash"})
    m.create_collection("c", "v1", "fp1", "c__v1")
    return m


def _raw_bump(path: Path) -> None:
    """A write that bypasses vecver (and so the counters)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("UPDATE collections SET generation = generation + 1 WHERE name='c'")
    finally:
        db.close()


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_a_read_is_reused_until_a_write_begins(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_sqlite, "SIGNAL_MAX_AGE", 1e9)
    m = _manifest(tmp_path)
    try:
        assert m._signal is not None  # noqa: SLF001
        g0 = m.generation("c")
        _raw_bump(tmp_path / "vecver.db")
        # reused: the bypassing write did not move the counters (this is what MAX_AGE
        # bounds), so the read is not repeated
        assert m.generation("c") == g0
        with m.transaction() as db:  # any write through vecver moves them
            db.execute("SELECT 1")
        assert m.generation("c") == g0 + 1
    finally:
        m.close()


def test_max_age_bounds_what_the_counters_cannot_see(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_sqlite, "SIGNAL_MAX_AGE", 0.05)
    m = _manifest(tmp_path)
    try:
        g0 = m.generation("c")
        _raw_bump(tmp_path / "vecver.db")
        time.sleep(0.1)
        assert m.generation("c") == g0 + 1
    finally:
        m.close()


def test_a_cutover_in_another_process_is_seen_at_once(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract the searcher relies on: once another process's cutover returned, the
    next generation read here sees it (MAX_AGE made huge, so only the counters can tell)."""
    monkeypatch.setattr(store_sqlite, "SIGNAL_MAX_AGE", 1e9)
    m = _manifest(tmp_path)
    try:
        m.add_namespace("c", "v2", "fp2", "c__v2", "ready")
        g0 = m.generation("c")
        assert m.generation("c") == g0
        assert m.active_namespace("c") == "c__v1"
        done = _run(f"""
            from vecver.store.sqlite import Manifest
            m = Manifest({str(tmp_path / "vecver.db")!r})
            m.switch_active("c", "c__v2", "test")
            m.close()
        """)
        assert done.returncode == 0, done.stderr
        assert m.generation("c") > g0
        assert m.active_namespace("c") == "c__v2"
    finally:
        m.close()


def test_a_writer_killed_between_its_stores_leaves_readers_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 inside a write transaction: the counters stay unequal, so no read is
    reused (a bypassing write is seen at once); the next write through vecver makes them
    whole again, as does opening the file for writing."""
    monkeypatch.setattr(store_sqlite, "SIGNAL_MAX_AGE", 1e9)
    path = tmp_path / "vecver.db"
    m = _manifest(tmp_path)
    try:
        g0 = m.generation("c")
        ready = tmp_path / "ready"
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import time
            from pathlib import Path
            from vecver.store.sqlite import Manifest
            m = Manifest({str(path)!r})
            with m.transaction() as db:
                db.execute("UPDATE collections SET generation = generation + 5")
                Path({str(ready)!r}).write_text("in")
                time.sleep(60)
        """)])  # fmt: skip
        deadline = time.time() + 60
        while not ready.exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        sig = m._signal  # noqa: SLF001
        assert sig is not None
        begun, done = sig.read()
        assert begun == done + 1
        assert m.generation("c") == g0  # the killed transaction was rolled back
        _raw_bump(path)
        assert m.generation("c") == g0 + 1  # not reused while the counters are unequal
        other = Manifest(path)  # opening for writing repairs them (no one is writing)
        try:
            b2, d2 = sig.read()
            assert b2 == d2 == begun
            assert other.generation("c") == m.generation("c") == g0 + 1
            _raw_bump(path)
            assert m.generation("c") == g0 + 1  # reused again
        finally:
            other.close()
        with m.transaction() as db:
            db.execute("SELECT 1")
        b3, d3 = sig.read()
        assert b3 == d3 == begun + 1
        assert m.generation("c") == g0 + 2
    finally:
        m.close()


def test_without_the_counters_every_read_is_a_read(tmp_path: Path) -> None:
    """A store whose counters cannot be mapped (here: taken away) reads the file each
    time."""
    m = _manifest(tmp_path)
    try:
        sig = m._signal  # noqa: SLF001
        assert sig is not None
        sig.close()
        m._signal = None  # noqa: SLF001
        g0 = m.generation("c")
        _raw_bump(tmp_path / "vecver.db")
        assert m.generation("c") == g0 + 1
        with m.transaction() as db:
            db.execute("SELECT 1")
    finally:
        m.close()


def test_the_counters_file_is_beside_the_manifest(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    m.close()
    side = tmp_path / "vecver.db-vvsig"
    assert side.is_file() and side.stat().st_size == 64
    reopened = Manifest(tmp_path / "vecver.db", read_only=True)
    try:
        assert reopened._signal is not None and not reopened._signal.writable  # noqa: SLF001
        assert reopened.generation("c") == reopened.generation("c")
    finally:
        reopened.close()
