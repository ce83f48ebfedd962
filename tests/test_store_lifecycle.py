"""The lifecycle rules as pure functions (vecver.lifecycle), and owner ids."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from vecver import lifecycle
from vecver.errors import StateError
from vecver.store import leases
from vecver.store.base import ManifestStore
from vecver.store.sqlite import Manifest


@dataclass(frozen=True)
class Row:
    name: str
    state: str
    created_at: float
    updated_at: float = 0.0


def test_failed_is_a_state_that_is_not_live() -> None:
    assert "failed" in lifecycle.STATES and not lifecycle.is_live("failed")
    assert set(lifecycle.LIVE_STATES) == {"building", "ready", "active", "retired"}
    for s in ("planned", "building", "ready"):
        assert lifecycle.can_transition(s, "failed")
        assert lifecycle.can_transition(s, "dropped")  # an abort
    assert lifecycle.can_transition("failed", "building")  # a retry
    assert lifecycle.can_transition("failed", "dropped")
    for s in ("active", "ready", "retired", "planned"):
        assert not lifecycle.can_transition("failed", s)
    assert not lifecycle.can_transition("active", "failed")
    assert not lifecycle.can_become_active("failed")
    assert set(lifecycle.ABORTABLE_STATES) == {"planned", "building", "ready", "failed"}


def test_check_transition_says_what_is_allowed() -> None:
    lifecycle.check_transition("building", "ready")
    with pytest.raises(StateError, match="cannot go from building to active") as e:
        lifecycle.check_transition("building", "active", namespace="ns1")
    assert "'ns1'" in str(e.value) and "ready" in (e.value.hint or "")
    with pytest.raises(StateError, match="dropped is final"):
        lifecycle.check_transition("dropped", "building")
    with pytest.raises(StateError, match="unknown state"):
        lifecycle.check_transition("building", "bogus")
    with pytest.raises(StateError):
        lifecycle.check_transition("bogus", "ready")


def test_every_state_is_reachable_and_dropped_is_final() -> None:
    seen, todo = {"planned"}, ["planned"]
    while todo:
        for nxt in lifecycle.TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(lifecycle.STATES)
    assert lifecycle.TRANSITIONS["dropped"] == frozenset()
    assert set(lifecycle.TRANSITIONS) == set(lifecycle.STATES)


def test_live_order_puts_active_first_then_oldest() -> None:
    rows = [Row("c", "ready", 3), Row("a", "retired", 1), Row("x", "failed", 0),
            Row("b", "active", 5), Row("p", "planned", 0), Row("d", "building", 2)]
    assert [r.name for r in lifecycle.live_order(rows)] == ["b", "a", "d", "c"]


def test_state_after_switch() -> None:
    assert lifecycle.state_after_switch("rollback") == "ready"
    assert lifecycle.state_after_switch("cutover") == "retired"


def test_rollback_target() -> None:
    hist: list[dict[str, str | None]] = [
        {"from": None, "to": "v1"}, {"from": "v1", "to": "v2"}, {"from": "v2", "to": "v3"}]
    rows = [Row("v1", "retired", 0, updated_at=5), Row("v2", "retired", 1, updated_at=9),
            Row("v3", "active", 2)]
    assert lifecycle.rollback_target("v3", hist, rows) is rows[1]
    rows[1] = Row("v2", "dropped", 1, updated_at=9)  # the predecessor is gone
    assert lifecycle.rollback_target("v3", hist, rows) is rows[0]
    assert lifecycle.rollback_target("v3", [], rows) is rows[0]  # no history: latest retired
    assert lifecycle.rollback_target("v1", hist[:1], [Row("v1", "active", 0)]) is None


def test_owner_ids() -> None:
    me = leases.owner_id()
    parsed = leases.parse_owner(me)
    assert parsed.pid == os.getpid() and parsed.host == socket.gethostname()
    assert parsed.uuid is not None and len(parsed.uuid) == 32
    assert leases.owner_id() == me  # one per process
    assert leases.parse_owner("old-host:12") == leases.Owner(None, "old-host", 12)
    assert leases.parse_owner("u@h:x").pid is None
    assert leases.owner_alive(me)
    assert leases.owner_alive("u@host-elsewhere.invalid:1")  # cannot tell: alive
    assert leases.local_verdict("u@host-elsewhere.invalid:1") is None
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not leases.owner_alive(f"u@{socket.gethostname()}:{p.pid}")
    assert not leases.owner_alive(f"{socket.gethostname()}:{p.pid}")  # an older id


def test_a_forked_child_has_its_own_owner_id() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(w, leases.owner_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(r, 1000).decode()
    os.close(r)
    os.close(w)
    assert child != leases.owner_id()
    assert leases.parse_owner(child).uuid != leases.parse_owner(leases.owner_id()).uuid


def test_the_sqlite_manifest_implements_the_protocol(tmp_path: Path) -> None:
    m: ManifestStore = Manifest(tmp_path / "m.db")  # checked by mypy as well
    try:
        assert isinstance(m, ManifestStore)
        missing = [n for n in dir(ManifestStore)
                   if not n.startswith("_") and not hasattr(m, n)]
        assert missing == []
    finally:
        m.close()
