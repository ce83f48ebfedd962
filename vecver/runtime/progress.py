"""What long work tells the user while it runs, on stderr.

Three modes, chosen by ``enabled`` and the stream:

- a **progress line** (done/total, rate, ETA, redrawn at most 5 times a second) when
  ``enabled`` is True, or None and the stream is a terminal;
- **one line per phase** when ``enabled`` is None and the stream is not a terminal (CI,
  a pipe, a log file): ``label: total unit`` is logged at INFO on the
  :data:`PHASE_LOGGER` logger when the phase starts, and nothing per batch. A library
  caller sees it only if it configures that logger; the ``vecver`` command line shows it
  unless ``--quiet``;
- **nothing** when ``enabled`` is False (``--quiet``).

The caller can always read the counters afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

#: the logger of phase lines and slow-work notices (``vecver: <message>`` in the CLI)
PHASE_LOGGER = "vecver.progress"

_log = logging.getLogger(PHASE_LOGGER)


def _fmt_seconds(s: float) -> str:
    if s != s or s == float("inf"):  # NaN or inf
        return "?"
    s = int(s)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def phase(text: str, *, enabled: bool | None = None) -> None:
    """Announce a phase of long work (one line), unless ``enabled`` is False."""
    if enabled is not False:
        _log.info("%s", text)


@contextlib.contextmanager
def notice_if_slow(
    text: str, *, after: float = 1.0, enabled: bool | None = None
) -> Iterator[None]:
    """Log ``text`` once (as :func:`phase` does) if the block is still running ``after``
    seconds in, e.g. while a model loads; nothing when it is quicker or ``enabled`` is
    False."""
    if enabled is False:
        yield
        return
    timer = threading.Timer(after, phase, args=(text,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class Progress:
    """Counts work and shows it: ``label  done/total  pct  rate/s  ETA`` on a terminal,
    one ``label: total unit`` line elsewhere (see the module docstring)."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        unit: str = "docs",
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.stream = stream or sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        #: a redrawn progress line
        self.enabled = enabled is True or (enabled is None and tty)
        #: one line per phase (logged)
        self.phase_line = enabled is None and not tty
        self.start = time.monotonic()
        self._last = 0.0
        if self.phase_line:  # before the work starts (a model may take seconds to load)
            what = f"{total} {unit}" if total is not None else unit
            phase(f"{label}: {what}")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def rate(self) -> float:
        e = self.elapsed
        return self.done / e if e > 0 else 0.0

    @property
    def eta(self) -> float:
        if self.total is None or self.rate <= 0:
            return float("nan")
        return max(0.0, (self.total - self.done) / self.rate)

    def line(self) -> str:
        tot = f"/{self.total}" if self.total is not None else ""
        pct = (
            f" {100.0 * self.done / self.total:5.1f}%"
            if self.total
            else ""
        )
        return (
            f"{self.label} {self.done}{tot} {self.unit}{pct}  {self.rate:,.0f} {self.unit}/s"
            f"  elapsed {_fmt_seconds(self.elapsed)}  ETA {_fmt_seconds(self.eta)}"
        )

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= 0.2:
            self._last = now
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
