"""A small progress line for long work: done/total, rate and ETA, on stderr.

Shown only when stderr is a terminal and not quiet; otherwise silent (``--quiet``, CI,
pipes). The caller can always read the counters afterwards.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _fmt_seconds(s: float) -> str:
    if s != s or s == float("inf"):  # NaN or inf
        return "?"
    s = int(s)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """Counts work and renders ``label  done/total  pct  rate/s  ETA`` at most 5 times/s."""

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
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.start = time.monotonic()
        self._last = 0.0

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
