"""Progress output (rate, ETA, quiet off a TTY) and retries of transient backend errors."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pytest

import vecver
from vecver.backends.memory import MemoryBackend
from vecver.backends.registry import register
from vecver.errors import BackendError, TransientBackendError, WriteFailed
from vecver.runtime.progress import Progress
from vecver.runtime.retry import with_retry
from vecver.types import Record


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_rate_and_eta_on_a_tty() -> None:
    out = _Tty()
    bar = Progress("backfill c -> v2", 1000, stream=out)
    assert bar.enabled
    bar._last = -1.0
    bar.update(250)
    bar.close()
    text = out.getvalue()
    assert "250/1000" in text and "25.0%" in text
    assert "docs/s" in text and "ETA" in text


def test_progress_is_silent_off_a_tty_and_when_disabled() -> None:
    out = io.StringIO()
    bar = Progress("x", 10, stream=out)
    bar.update(5)
    bar.close()
    quiet = Progress("x", 10, stream=_Tty(), enabled=False)
    quiet.update(5)
    quiet.close()
    assert out.getvalue() == ""
    assert quiet.done == 5


def test_with_retry_retries_transient_errors_then_succeeds() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientBackendError("busy")
        return "ok"

    assert with_retry(flaky, what="t", sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2 and sleeps[1] > 0


def test_with_retry_gives_up_and_does_not_retry_permanent_errors() -> None:
    def always() -> None:
        raise TransientBackendError("down")

    with pytest.raises(TransientBackendError):
        with_retry(always, what="t", attempts=3, sleep=lambda s: None)
    calls: list[int] = []

    def permanent() -> None:
        calls.append(1)
        raise BackendError("no")

    with pytest.raises(BackendError):
        with_retry(permanent, what="t", sleep=lambda s: None)
    assert len(calls) == 1


class FlakyBackend(MemoryBackend):
    """Fails every third upsert with a transient error (like a database under load)."""

    name = "flaky"
    failures = 0

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        FlakyBackend.failures += 1
        if FlakyBackend.failures % 3 == 0:
            raise TransientBackendError("503 from the database")
        super().upsert(namespace, records)


class BrokenBackend(MemoryBackend):
    """Fails every upsert into namespaces of space v2 permanently."""

    name = "broken"

    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        if "__v2_" in namespace:
            raise TransientBackendError("v2 is down")
        super().upsert(namespace, records)


def _cfg(tmp_path: Path, backend: str) -> vecver.Config:
    return vecver.Config.from_mapping(
        {
            "manifest": {"path": "m.db"},
            "backend": {"name": backend},
            "spaces": {
                "v1": {"embedder": "hash", "dimension": 32},
                "v2": {"embedder": "hash", "dimension": 32, "options": {"seed": 3}},
            },
            "collections": {"c": {"space": "v1"}},
            "backfill": {"batch_size": 16},
        },
        base=tmp_path,
    )


def test_backfill_survives_transient_backend_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vecver.runtime.retry.time.sleep", lambda s: None)
    register("flaky", FlakyBackend)
    with vecver.open(_cfg(tmp_path, "flaky")) as ws:
        c = ws.collection("c")
        c.upsert([{"id": f"d{i}", "text": f"text {i}"} for i in range(200)], batch_size=16)
        rep = vecver.migrate(ws, "c", "v2", progress=False)
        assert rep.state == "ready"
        assert FlakyBackend.failures > 20
        assert all(r.clean for r in vecver.verify(ws, "c"))
        assert ws.backend.count(ws.manifest.namespace_for("c", "v2").name) == 200


def test_a_space_that_stays_down_fails_the_write_naming_it_then_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vecver.runtime.retry.time.sleep", lambda s: None)
    register("broken", BrokenBackend)
    backend = BrokenBackend()
    with vecver.Workspace(_cfg(tmp_path, "broken"), backend=backend) as ws:
        c = ws.collection("c")
        c.upsert([{"id": "a", "text": "alpha"}])
        vecver.start_migration(ws, "c", "v2")
        with pytest.raises(WriteFailed) as err:
            c.upsert([{"id": "b", "text": "beta"}])
        assert err.value.failed == "v2" and err.value.written == ["v1"]
        assert "v2" in str(err.value)
        assert [i.failed for i in ws.manifest.intents("c")] == [True]
        # the database comes back: recovery converges the failed write
        BrokenBackend.upsert = MemoryBackend.upsert  # type: ignore[method-assign]
        rep = ws.recover("c")
        assert rep.intents == 1 and not ws.manifest.intents("c")
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None and "b" in ws.backend.fetch(v2.name, ["b"])
