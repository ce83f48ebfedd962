"""A producer run in a background thread, a bounded number of items ahead of its consumer
(the backfill reads and embeds page n+1 while it writes page n; verify reads the active
space's page n+1 while it fetches page n's copies)."""

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
    stops the thread (and waits for it)."""

    def __init__(self, produce: Callable[[], Iterator[T]], depth: int = 2,
                 name: str = "read-ahead") -> None:
        self._produce = produce
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name=f"vecver-{name}",
                                        daemon=True)

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
        self._stop.set()
        while self._worker.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                self._worker.join(0.05)
