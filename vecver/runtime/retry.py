"""Retries with exponential backoff and jitter for transient backend errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import TransientBackendError

T = TypeVar("T")
log = logging.getLogger("vecver")


def with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = 6,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    max_retry_after: float = 60.0,
) -> T:
    """Call ``fn``; on :class:`TransientBackendError` wait and try again, up to
    ``attempts`` times in all. Any other exception, and the last transient one, propagate.

    The wait doubles from ``base_delay`` (with jitter, capped at ``max_delay``); when the
    database said how long to wait (``retry_after``, e.g. an HTTP Retry-After), that
    wait is respected instead, capped at ``max_retry_after`` seconds."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TransientBackendError as e:
            if attempt == attempts:
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            if e.retry_after is not None and e.retry_after >= 0:
                delay = min(float(e.retry_after), max_retry_after)
            log.warning("%s failed (%s); retry %d/%d in %.2fs", what, e, attempt, attempts, delay)
            sleep(delay)
    raise AssertionError("unreachable")
