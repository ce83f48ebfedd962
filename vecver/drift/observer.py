"""Query-to-top-result distance over time, recorded from the read path.

:class:`QueryDistanceObserver` is a read observer (``ws.read_observers``, see
:mod:`vecver.read.searcher`): for every query a serving leg answered it takes the
distance to the top hit (cosine and dot: ``1 - score``; l2: the Euclidean distance) and
adds it to an hourly bucket of that space — count, sum and sum of squares. The buckets
reach the manifest's durable counters (``drift|qdist|SPACE|HOUR|n``, ``...|sum``,
``...|sum2``) in one ``bump_counters`` per collection after ``flush_every`` queries or
``flush_seconds``, and on :meth:`flush`; never per query. Counting costs a few dictionary
updates under a lock; a failure to store is logged and never fails a read.

:func:`distance_series` reads the buckets back for a drift check.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace
    from ..store.base import ManifestStore

log = logging.getLogger("vecver")

SEP = "|"
PREFIX = "drift" + SEP + "qdist" + SEP
#: seconds in one bucket of the series
BUCKET_SECONDS = 3600


def distance_of(metric: str, score: float) -> float:
    """The distance a hit's score (vecver's convention: higher is closer) stands for."""
    if metric == "l2":
        return math.sqrt(max(-score, 0.0))
    return 1.0 - score


def counter_key(space: str, bucket: int, part: str) -> str:
    return f"{PREFIX}{space}{SEP}{bucket}{SEP}{part}"


class QueryDistanceObserver:
    """Records the top-result distance of every served query (see the module docstring).
    Thread-safe."""

    def __init__(self, ws: Workspace, *, flush_every: int = 256,
                 flush_seconds: float = 30.0) -> None:
        self.ws = ws
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.lock = threading.Lock()
        self.pending: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.count = 0
        self.flushed_at = time.monotonic()
        self.metrics: dict[str, str] = {}
        self._warned = False

    def _metric(self, label: str) -> str:
        m = self.metrics.get(label)
        if m is None:
            m = str(self.ws.space_spec(label).metric)
            self.metrics[label] = m
        return m

    def on_search(self, event: Any) -> None:
        now = time.time()
        bucket = int(now // BUCKET_SECONDS)
        adds: list[tuple[str, float]] = []
        for lr in getattr(event, "legs", ()):
            leg = lr.leg
            if getattr(leg, "role", "serve") != "serve":
                continue
            label = leg.namespace.space_label
            metric = self._metric(label)
            for hits in lr.results:
                if hits:
                    adds.append((label, distance_of(metric, float(hits[0].score))))
        if not adds:
            return
        with self.lock:
            acc = self.pending[event.collection]
            for label, d in adds:
                acc[counter_key(label, bucket, "n")] += 1.0
                acc[counter_key(label, bucket, "sum")] += d
                acc[counter_key(label, bucket, "sum2")] += d * d
            self.count += len(adds)
            due = (self.count >= self.flush_every
                   or time.monotonic() - self.flushed_at >= self.flush_seconds)
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the buckets counted so far to the manifest's counters."""
        with self.lock:
            pending, self.pending = self.pending, defaultdict(lambda: defaultdict(float))
            self.count = 0
            self.flushed_at = time.monotonic()
        for collection, deltas in pending.items():
            try:
                self.ws.manifest.bump_counters(collection, dict(deltas))
            except Exception:
                if not self._warned:
                    log.warning("query distances of %s could not be stored; dropped",
                                collection, exc_info=True)
                    self._warned = True

    def close(self) -> None:
        self.flush()


def install(ws: Workspace) -> QueryDistanceObserver | None:
    """Add a :class:`QueryDistanceObserver` to ``ws.read_observers`` (once); None when the
    workspace has no observer list. Call :meth:`QueryDistanceObserver.flush` (or
    :func:`flush`) before the workspace closes."""
    observers = getattr(ws, "read_observers", None)
    if observers is None:
        return None
    for o in observers:
        if isinstance(o, QueryDistanceObserver):
            return o
    obs = QueryDistanceObserver(ws)
    observers.append(obs)
    return obs


def flush(ws: Workspace) -> None:
    """Flush the query-distance observers of ``ws`` (a drift check calls it first)."""
    for o in list(getattr(ws, "read_observers", None) or ()):
        if isinstance(o, QueryDistanceObserver):
            o.flush()


@dataclass(frozen=True)
class Bucket:
    """One hour of recorded top-result distances of a space."""

    start: float
    n: float
    total: float
    total2: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0


def distance_series(manifest: ManifestStore, collection: str, space: str) -> list[Bucket]:
    """The recorded hourly buckets of ``space`` in ``collection``, oldest first."""
    raw: Mapping[str, float] = manifest.counters(collection, f"{PREFIX}{space}{SEP}")
    parts: dict[int, dict[str, float]] = defaultdict(dict)
    for key, value in raw.items():
        rest = key[len(PREFIX) + len(space) + 1:]
        b, _, part = rest.partition(SEP)
        try:
            parts[int(b)][part] = value
        except ValueError:
            continue
    return [Bucket(float(b * BUCKET_SECONDS), p.get("n", 0.0), p.get("sum", 0.0),
                   p.get("sum2", 0.0))
            for b, p in sorted(parts.items()) if p.get("n", 0.0) > 0]
