"""Progress output (rate, ETA, quiet off a TTY) and retries of transient backend errors."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

import pytest

import vecver
from vecver.backends.memory import MemoryBackend
from vecver.errors import BackendError, TransientBackendError, WriteFailed
from vecver.runtime.progress import PHASE_LOGGER, Progress, notice_if_slow, phase
from vecver.runtime.retry import with_retry
from vecver.testing.faults import FaultyBackend


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


def _phase_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PHASE_LOGGER]


def test_progress_off_a_tty_logs_one_line_per_phase(caplog: pytest.LogCaptureFixture) -> None:
    """Off a terminal (CI, a pipe): one line when the phase starts, none per batch, no
    progress line on the stream; the CLI shows the logger's lines on stderr."""
    caplog.set_level(logging.INFO, logger=PHASE_LOGGER)
    out = io.StringIO()
    bar = Progress("backfill c -> v2", 1000, stream=out)
    assert not bar.enabled and bar.phase_line
    # said when the phase starts, before its first batch (a model may load meanwhile)
    assert _phase_lines(caplog) == ["backfill c -> v2: 1000 docs"]
    bar.done = 200  # resumed from a checkpoint
    for _ in range(8):
        bar.update(100)
    bar.close()
    assert _phase_lines(caplog) == ["backfill c -> v2: 1000 docs"]
    assert out.getvalue() == ""
    Progress("scan c", None, stream=io.StringIO(), unit="records").close()
    assert _phase_lines(caplog)[-1] == "scan c: records"
    # quiet, or a terminal (the progress line instead): no phase line
    caplog.clear()
    for p in (Progress("q", 5, stream=io.StringIO(), enabled=False),
              Progress("t", 5, stream=_Tty())):
        p.update(5)
        p.close()
    phase("never shown", enabled=False)
    assert _phase_lines(caplog) == []


def test_notice_if_slow(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=PHASE_LOGGER)
    with notice_if_slow("loading", after=60.0):
        pass  # quicker than the delay: nothing
    assert _phase_lines(caplog) == []
    seen = threading.Event()
    got: list[str] = []

    class _Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record.getMessage())
            seen.set()

    handler = _Seen()
    logging.getLogger(PHASE_LOGGER).addHandler(handler)
    try:
        with notice_if_slow("loading the model ...", after=0.01):
            assert seen.wait(30)  # the block outlives the delay: the notice shows
        with notice_if_slow("quiet", after=0.0, enabled=False):
            pass
    finally:
        logging.getLogger(PHASE_LOGGER).removeHandler(handler)
    assert got == ["loading the model ..."]


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


def test_with_retry_respects_the_wait_the_database_asked_for() -> None:
    """A 429 with Retry-After: 7 waits 7 s (not the 0.2 s backoff), capped at the limit."""
    asked = iter([7.0, 500.0])
    sleeps: list[float] = []

    def throttled() -> str:
        wait = next(asked, None)
        if wait is not None:
            raise TransientBackendError("rate limited", retry_after=wait)
        return "ok"

    assert with_retry(throttled, what="t", sleep=sleeps.append, max_retry_after=30.0) == "ok"
    assert sleeps == [7.0, 30.0]


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


def _cfg(tmp_path: Path) -> vecver.Config:
    return vecver.Config.from_mapping(
        {
            "manifest": {"path": "m.db"},
            "backend": {"name": "memory"},
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
    """Every third upsert fails with a transient error (a database under load)."""
    monkeypatch.setattr("vecver.runtime.retry.time.sleep", lambda s: None)
    backend = FaultyBackend(MemoryBackend())
    seen = [0]

    def every_third(call: object) -> None:
        seen[0] += 1
        if seen[0] % 3 == 0:
            raise TransientBackendError("503 from the database")

    backend.before("upsert", every_third)
    with vecver.Workspace(_cfg(tmp_path), backend=backend, progress=False) as ws:
        c = ws.collection("c")
        c.upsert([{"id": f"d{i}", "text": f"text {i}"} for i in range(200)], batch_size=16)
        rep = vecver.migrate(ws, "c", "v2", progress=False)
        assert rep.state == "ready"
        assert seen[0] > 20  # upserts that reached the database, a third of them failed
        assert all(r.clean for r in vecver.verify(ws, "c"))
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None and ws.backend.count(v2.name) == 200


def test_a_space_that_stays_down_fails_the_write_naming_it_then_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vecver.runtime.retry.time.sleep", lambda s: None)
    backend = FaultyBackend(MemoryBackend())
    with vecver.Workspace(_cfg(tmp_path), backend=backend, progress=False) as ws:
        c = ws.collection("c")
        c.upsert([{"id": "a", "text": "alpha"}])
        vecver.start_migration(ws, "c", "v2")
        v2 = ws.manifest.namespace_for("c", "v2")
        assert v2 is not None
        # every upsert into the namespace of v2 fails, transiently: it stays down
        backend.fail("upsert", every=True, error="transient", namespace=v2.name)
        with pytest.raises(WriteFailed) as err:
            c.upsert([{"id": "b", "text": "beta"}])
        assert err.value.failed == "v2" and err.value.written == ["v1"]
        assert "v2" in str(err.value)
        assert [i.failed for i in ws.manifest.intents("c")] == [True]
        # the database comes back: recovery converges the failed write
        backend.clear_faults()
        rep = ws.recover("c")
        assert rep.intents == 1 and not ws.manifest.intents("c")
        assert "b" in ws.backend.fetch(v2.name, ["b"])
