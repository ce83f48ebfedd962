"""A change counter in shared memory beside a manifest file, so that a reader can tell
without a database read that nothing was committed since it last read.

The searcher reads a collection's generation before every search (a cutover or a
rollback moves it, and a search that starts after one returned must read the new space).
An SQLite read transaction costs 5-25 us, most of a fast engine's overhead; two integers
read from a shared mapping cost well under a microsecond.

The file ``<manifest>-vvsig`` holds two unsigned 64-bit counters, ``begun`` and ``done``,
mapped by every process that opens the manifest (the mapping is the page cache's page:
a store by one process is seen by the next load of any other on the same host). A write
transaction of the manifest takes an exclusive ``flock`` on the file, then sets ``begun``
one past ``done`` before it commits, and ``done = begun`` after the commit (or the
rollback), then unlocks. A reader trusts a generation it read before only while
``begun == done`` and both still hold the value they held around that read
(:meth:`ChangeSignal.read` before and after). So:

- a transaction that committed has moved both counters before its caller returned: a
  search that starts later sees new values and reads the manifest again;
- a writer killed between the two stores leaves ``begun != done``: every reader reads
  the manifest (correct, only slower) until the next writer, which holds the lock and so
  knows no one else is writing, or the next store opened for writing, repairs it.

What it does not cover, and how that is bounded: a writer that does not bump the counters
(an older vecver; the file deleted while processes have it mapped; a process on another
host, which SQLite does not support anyway). A reader therefore also reads the manifest
again once its last read is older than :data:`MAX_AGE` seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import time

#: a generation read from the manifest is trusted at most this long (seconds), whatever
#: the counters say (see the module docstring)
MAX_AGE = 0.25

_SUFFIX = "-vvsig"
_SIZE = 64  # two counters; the rest reserved
_PAIR = struct.Struct("<QQ")
_ONE = struct.Struct("<Q")


class ChangeSignal:
    """The counters of one manifest (see the module docstring). :meth:`open` gives None
    where the file cannot be created or mapped (a read-only directory without it, a full
    disk): the store then reads the manifest every time, as without one."""

    def __init__(self, fd: int, mm: mmap.mmap, writable: bool) -> None:
        self._fd = fd
        self._mm = mm
        self.writable = writable
        self._held = False

    @classmethod
    def open(cls, manifest_path: str, writable: bool) -> ChangeSignal | None:
        """Map ``<manifest_path>-vvsig`` (created, zeroed, when ``writable`` and absent)."""
        path = manifest_path + _SUFFIX
        fd = -1
        try:
            if writable:
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                except PermissionError:
                    writable = False
            if fd < 0:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            if os.fstat(fd).st_size < _SIZE:
                if not writable:
                    os.close(fd)
                    return None
                os.ftruncate(fd, _SIZE)  # zeros: begun == done == 0
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            mm = mmap.mmap(fd, _SIZE, access=access)
        except (OSError, ValueError):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            return None
        sig = cls(fd, mm, writable)
        if writable:
            sig.repair()
        return sig

    def read(self) -> tuple[int, int]:
        """(begun, done)."""
        pair: tuple[int, int] = _PAIR.unpack_from(self._mm, 0)
        return pair

    def begin(self) -> None:
        """Before a write transaction commits: lock, and set ``begun`` past ``done``
        (after making ``done`` whole again if a writer died between its two stores: the
        lock says no one else is writing). Does nothing on a read-only mapping."""
        if not self.writable or self._held:
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._held = True
        begun, done = self.read()
        if begun != done:
            _ONE.pack_into(self._mm, 8, begun)
        _ONE.pack_into(self._mm, 0, begun + 1)

    def end(self) -> None:
        """After the commit (or the rollback): ``done = begun``, unlock."""
        if not self._held:
            return
        try:
            begun, _ = self.read()
            _ONE.pack_into(self._mm, 8, begun)
        finally:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def repair(self) -> None:
        """Make ``done`` whole again after a writer died between its stores, when no one
        is writing (the lock is free)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # someone is writing: that writer repairs it
        try:
            begun, done = self.read()
            if begun != done:
                _ONE.pack_into(self._mm, 8, begun)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def poison(self) -> None:
        """Leave the counters unequal for good (for a writer that cannot lock: every
        reader then reads the manifest)."""
        if self.writable:
            begun, _ = self.read()
            _ONE.pack_into(self._mm, 0, begun + 1)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError, BufferError):
            self._mm.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)


def now() -> float:
    """The clock :data:`MAX_AGE` is measured on."""
    return time.monotonic()


__all__ = ["MAX_AGE", "ChangeSignal", "now"]
