"""A producer run in a background thread, a bounded number of items ahead of its consumer
(the backfill reads and embeds page n+1 while it writes page n; verify reads the active
space's page n+1 while it fetches page n's copies), or in the consumer's own thread where
a thread would overlap nothing (``background=False``: the same items, in the same order,
with the same errors)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["ReadAhead"]

T = TypeVar("T")
_END_OF_STREAM = object()


class ReadAhead(Generic[T]):
    """Runs ``produce`` in a background thread, at most ``depth`` items ahead of the
    consumer; an exception in it is raised in the consumer. Leaving the ``with`` block
    stops the thread (and waits for it).

    With ``background=False`` no thread is started: the consumer iterates ``produce()``
    itself, one item at a time (an exception is raised where it happens, in the consumer's
    thread; leaving the block closes the generator). For producers whose work holds the
    interpreter lock throughout, where a thread cannot overlap anything with the
    consumer's work and only adds lock hand-overs and cache misses."""

    def __init__(
        self,
        produce: Callable[[], Iterator[T]],
        depth: int = 2,
        name: str = "read-ahead",
        *,
        background: bool = True,
    ) -> None:
        self._produce = produce
        self._background = background
        self._inline: Iterator[T] | None = None
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name=f"vecver-{name}", daemon=True)

    @property
    def background(self) -> bool:
        """Whether the items are produced in a background thread."""
        return self._background

    def _run(self) -> None:
        try:
            for item in self._produce():
                while not self._stop.is_set():
                    try:
                        self._q.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._q.put(_END_OF_STREAM)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._q.put(e)

    def __enter__(self) -> Iterator[T]:
        if not self._background:
            self._inline = self._produce()
            return self._inline
        self._worker.start()
        return self._items()

    def _items(self) -> Iterator[T]:
        while True:
            item = self._q.get()
            if item is _END_OF_STREAM:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def __exit__(self, *exc: object) -> None:
        if not self._background:
            close = getattr(self._inline, "close", None)
            if callable(close):
                close()  # a generator left early runs its finally blocks now
            return
        self._stop.set()
        while self._worker.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                self._worker.join(0.05)
