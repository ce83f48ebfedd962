"""Shadow reads: the candidate space queried off the serving path and compared with what
the active space served.

:class:`ShadowRunner` owns one background worker thread per (workspace, collection)
(:func:`runner_for`), started on demand and ended after a few idle seconds. The serving
thread only hands it a job (appended to a bounded queue, without waking the worker):
when the queue is full the job is dropped and counted, never waited for. The worker runs
the shadow leg, compares it with the served hits (:func:`compare`) and buffers the
aggregates; they are written to the manifest's durable counters
(``ManifestStore.bump_counters``) in batches — every ``[read] shadow_flush_every``
comparisons, when the queue runs empty and the last write is :data:`FLUSH_INTERVAL_S`
old, when the idle worker ends, and on :meth:`ShadowRunner.flush` — always from the
worker or the flushing caller, never from a serving thread (a counter write is a
manifest transaction: searches of this process wait for it to check the collection's
generation, so writes are kept rare). A kill -9 loses at most the comparisons not yet
written (an aggregate, never a served answer); a counter write that fails (read-only
manifest) is logged and the batch kept for the next flush.

Counters, per candidate namespace ``NS``, under ``shadow/NS/``: ``queries``, ``k_sum``,
``overlap_sum`` (overlap@k summed: shared ids / the longer of the two lists),
``top1_agree``, ``common`` (documents in both lists) and ``rank_shift_sum`` (their absolute
rank differences, summed), ``low_overlap`` (queries with overlap below 0.5),
``candidate_empty``, ``latency_sum`` (seconds of the shadow leg), ``errors``, ``dropped``.
:func:`summarise` turns them into rates and a recommendation.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, StateError, UnknownSpace
from ..store.base import NamespaceRow
from ..types import Hit

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace

log = logging.getLogger("vecver")

#: seconds an idle worker waits for a job before it ends (a new job starts another)
IDLE_S = 5.0

#: seconds between two looks of the worker at its queue while it has nothing to do
POLL_S = 0.002

#: the least seconds between two counter writes of a worker whose queue ran empty (a
#: write is one manifest transaction, during which the manifest's other users wait)
FLUSH_INTERVAL_S = 1.0

#: the counter names of one candidate namespace (see the module docstring)
COUNTERS = ("queries", "k_sum", "overlap_sum", "top1_agree", "common", "rank_shift_sum",
            "low_overlap", "candidate_empty", "latency_sum", "errors", "dropped")


def counter_prefix(namespace: str) -> str:
    """The prefix of the shadow counters of candidate namespace ``namespace``."""
    return f"shadow/{namespace}/"


@dataclass(frozen=True)
class Comparison:
    """How one query's shadow hits compare with the served ones (top ``k`` of each)."""

    overlap: float
    top1_agree: bool
    common: int
    rank_shift_sum: int
    candidate_empty: bool

    @property
    def mean_rank_shift(self) -> float | None:
        return self.rank_shift_sum / self.common if self.common else None


def compare(served: Sequence[Hit], shadow: Sequence[Hit], k: int) -> Comparison:
    """Compare the top ``k`` of ``served`` and ``shadow`` by document id: overlap@k is the
    number of shared ids over the longer list (1.0 when both are empty), top-1 agreement
    whether both lists start with the same id, and rank shift the absolute difference of
    a shared document's 1-based ranks."""
    return compare_ids([h.id for h in served[:k]], [h.id for h in shadow[:k]], k)


def compare_ids(served: Sequence[str], shadow: Sequence[str], k: int) -> Comparison:
    """:func:`compare` on the documents' ids."""
    s = list(served[:k])
    t = list(shadow[:k])
    rs = {d: i for i, d in enumerate(s)}
    rt = {d: i for i, d in enumerate(t)}
    common = [d for d in rs if d in rt]
    longest = max(len(rs), len(rt))
    overlap = len(common) / longest if longest else 1.0
    return Comparison(
        overlap=overlap,
        top1_agree=bool(s) and bool(t) and s[0] == t[0],
        common=len(common),
        rank_shift_sum=sum(abs(rs[d] - rt[d]) for d in common),
        candidate_empty=bool(s) and not t,
    )


class ShadowRunner:
    """The background worker and the counter buffer of one collection's shadow reads.
    Thread-safe.

    The serving side only appends a job to a bounded deque, under a lock held for
    microseconds: it never signals the worker (waking a sleeping thread can hand the
    core to it in the middle of the serving thread's call on a busy machine); the worker
    polls every :data:`POLL_S` while it lives and ends after :data:`IDLE_S` without work."""

    def __init__(self, ws: Workspace, collection: str, *, queue_size: int,
                 flush_every: int) -> None:
        self._ws_ref = weakref.ref(ws)
        self.collection = collection
        self.flush_every = flush_every
        self.queue_size = queue_size
        self._jobs: deque[Callable[[], None]] = deque()
        self._unfinished = 0  # jobs queued or running
        self._lock = threading.Lock()
        self._buffer: dict[str, float] = {}
        self._pending = 0  # comparisons in the buffer
        self._thread: threading.Thread | None = None
        self._writing = threading.Lock()  # held while the buffer is written
        self._last_write = 0.0

    # -- the serving side: never blocks -------------------------------------------------

    def submit(self, job: Callable[[], None], namespace: str) -> bool:
        """Queue ``job`` for the worker; False (and ``dropped`` counted) when the queue is
        full. Never blocks."""
        with self._lock:
            if len(self._jobs) >= self.queue_size:
                full = True
            else:
                full = False
                self._jobs.append(job)
                self._unfinished += 1
                t = self._thread
                start = t is None or not t.is_alive()
                if start:
                    t = self._thread = threading.Thread(
                        target=self._work, name=f"vecver-shadow-{self.collection}",
                        daemon=True)
        if full:
            self.add(namespace, {"dropped": 1.0}, comparisons=0)
            return False
        if start and t is not None:
            t.start()
        return True

    # -- the worker ---------------------------------------------------------------------

    def _work(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._lock:
                job = self._jobs.popleft() if self._jobs else None
                if job is None and time.monotonic() - idle_since >= IDLE_S:
                    self._thread = None
                    break
            if job is None:
                time.sleep(POLL_S)
                continue
            try:
                job()
            except Exception:  # noqa: BLE001 - a shadow job never takes the worker down
                log.warning("shadow read of %s failed", self.collection, exc_info=True)
            with self._lock:
                self._unfinished -= 1
                empty = not self._jobs
            idle_since = time.monotonic()
            if (empty and idle_since - self._last_write >= FLUSH_INTERVAL_S) \
                    or self._pending >= self.flush_every:
                self._flush_buffer()
        self._flush_buffer()

    # -- counters -----------------------------------------------------------------------

    def add(self, namespace: str, deltas: Mapping[str, float], *, comparisons: int = 1) -> None:
        """Add ``deltas`` to the buffered counters of candidate ``namespace``."""
        prefix = counter_prefix(namespace)
        with self._lock:
            for name, v in deltas.items():
                key = prefix + name
                self._buffer[key] = self._buffer.get(key, 0.0) + float(v)
            self._pending += comparisons

    def record(self, namespace: str, comparisons: Sequence[Comparison], k: int,
               latency_s: float) -> None:
        """Buffer the comparisons of one shadow search (one per query)."""
        d = {"queries": float(len(comparisons)), "k_sum": float(k * len(comparisons)),
             "latency_sum": latency_s}
        for c in comparisons:
            d["overlap_sum"] = d.get("overlap_sum", 0.0) + c.overlap
            d["top1_agree"] = d.get("top1_agree", 0.0) + float(c.top1_agree)
            d["common"] = d.get("common", 0.0) + c.common
            d["rank_shift_sum"] = d.get("rank_shift_sum", 0.0) + c.rank_shift_sum
            d["low_overlap"] = d.get("low_overlap", 0.0) + float(c.overlap < 0.5)
            d["candidate_empty"] = d.get("candidate_empty", 0.0) + float(c.candidate_empty)
        self.add(namespace, d, comparisons=len(comparisons))

    def _flush_buffer(self) -> None:
        with self._writing:
            self._write_buffer()

    def _write_buffer(self) -> None:
        with self._lock:
            buf, self._buffer = self._buffer, {}
            self._pending = 0
        self._last_write = time.monotonic()
        if not buf:
            return
        ws = self._ws_ref()
        if ws is None:
            return
        try:
            ws.manifest.bump_counters(self.collection, buf)
        except Exception as e:  # noqa: BLE001 - metrics never fail a read; keep them
            log.warning("could not write the shadow counters of %s (%s: %s); kept for the "
                        "next flush", self.collection, type(e).__name__, e)
            with self._lock:
                for key, v in buf.items():
                    self._buffer[key] = self._buffer.get(key, 0.0) + v

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait (at most ``timeout`` seconds) for the queued shadow reads to finish, then
        write the buffered counters. True when the queue drained in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        drained = True
        while self._unfinished:
            if deadline is not None and time.monotonic() > deadline:
                drained = False
                break
            time.sleep(0.005)
        self._flush_buffer()
        return drained


_runners: weakref.WeakKeyDictionary[Workspace, dict[str, ShadowRunner]] = \
    weakref.WeakKeyDictionary()
_runners_lock = threading.Lock()


def runner_for(ws: Workspace, collection: str) -> ShadowRunner:
    """The shadow runner of ``collection`` in ``ws`` (one per workspace and collection,
    shared by every handle on it)."""
    with _runners_lock:
        per = _runners.setdefault(ws, {})
        r = per.get(collection)
        if r is None:
            s = ws.config.read
            r = per[collection] = ShadowRunner(ws, collection, queue_size=s.shadow_queue,
                                               flush_every=s.shadow_flush_every)
        return r


# -- the report ---------------------------------------------------------------------------

#: the recommendations :func:`summarise` gives
RECOMMENDATIONS = ("cut over", "keep backfilling", "investigate", "no data")


@dataclass(frozen=True)
class ShadowSummary:
    """The shadow aggregates of one candidate namespace, as rates, and what to do next."""

    namespace: str
    space: str
    state: str
    queries: int
    overlap_at_k: float | None
    top1_agreement: float | None
    mean_rank_shift: float | None
    low_overlap_rate: float | None
    candidate_empty_rate: float | None
    mean_latency_ms: float | None
    errors: int
    dropped: int
    coverage: float | None
    recommendation: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["reasons"] = list(self.reasons)
        return d


def summarise(namespace: str, space: str, state: str, counters: Mapping[str, float], *,
              coverage: float | None, min_overlap: float, min_top1: float,
              max_error_rate: float = 0.01) -> ShadowSummary:
    """Rates from the counters of ``namespace`` (names without the prefix) and a
    recommendation:

    - ``no data`` — no shadow query recorded yet;
    - ``investigate`` — shadow reads failed (errors over ``max_error_rate`` of the
      queries), or the candidate returned nothing for queries the active space answered,
      or — the candidate being complete (state ready, or coverage 1.0) — overlap@k below
      ``min_overlap`` or top-1 agreement below ``min_top1``;
    - ``keep backfilling`` — the candidate is still being built (state building and
      coverage below 1.0): its disagreement is expected to shrink;
    - ``cut over`` — complete, and both agreement figures meet their thresholds (the
      evaluation gate still decides the cutover itself)."""
    c = {name: float(counters.get(name, 0.0)) for name in COUNTERS}
    n = int(c["queries"])
    ok_n = n if n else 1
    reasons: list[str] = []

    def rate(x: float) -> float | None:
        return x / n if n else None

    overlap = rate(c["overlap_sum"])
    top1 = rate(c["top1_agree"])
    empty = rate(c["candidate_empty"])
    complete = state != "building" or (coverage is not None and coverage >= 1.0)
    if n == 0:
        rec = "no data"
        reasons.append("no shadow query recorded: serve some traffic with route='shadow'")
    elif c["errors"] / (ok_n + c["errors"]) > max_error_rate:
        rec = "investigate"
        reasons.append(f"{int(c['errors'])} shadow reads failed (see the service log)")
    elif empty and complete:
        rec = "investigate"
        reasons.append(f"the candidate returned no hits for {empty:.1%} of the queries")
    elif not complete:
        rec = "keep backfilling"
        cov = f"{coverage:.1%}" if coverage is not None else "unknown"
        reasons.append(f"the candidate is still building (coverage {cov}); agreement so far: "
                       f"overlap@k {overlap:.3f}, top-1 {top1:.3f}")
    elif (overlap or 0.0) < min_overlap or (top1 or 0.0) < min_top1:
        rec = "investigate"
        reasons.append(f"overlap@k {overlap:.3f} (threshold {min_overlap}) / top-1 "
                       f"agreement {top1:.3f} (threshold {min_top1}): the candidate ranks "
                       "differently; check it with `vecver evaluate` and judgments")
    else:
        rec = "cut over"
        reasons.append(f"complete, overlap@k {overlap:.3f} >= {min_overlap}, top-1 "
                       f"{top1:.3f} >= {min_top1}: run `vecver evaluate` then `vecver cutover`")
    if c["dropped"]:
        reasons.append(f"{int(c['dropped'])} shadow reads were dropped (queue full): the "
                       "figures are a sample")
    return ShadowSummary(
        namespace=namespace, space=space, state=state, queries=n,
        overlap_at_k=overlap, top1_agreement=top1,
        mean_rank_shift=c["rank_shift_sum"] / c["common"] if c["common"] else None,
        low_overlap_rate=rate(c["low_overlap"]), candidate_empty_rate=empty,
        mean_latency_ms=1000.0 * c["latency_sum"] / n if n else None,
        errors=int(c["errors"]), dropped=int(c["dropped"]), coverage=coverage,
        recommendation=rec, reasons=tuple(reasons),
    )


@dataclass
class ShadowReport:
    """The shadow comparisons of a collection's candidate space, and what to do next."""

    collection: str
    active: str
    summary: ShadowSummary

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "active": self.active,
                **self.summary.to_dict()}


def check_fraction(name: str, v: float) -> float:
    """``v`` as a float when it is a number in [0, 1]; else ``InvalidArgument``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) \
            or not 0.0 <= v <= 1.0:
        raise InvalidArgument(name, v, "a number between 0 and 1")
    return float(v)


def candidate_namespace(ws: Workspace, collection: str, space: str | None) -> NamespaceRow:
    """The namespace whose shadow counters to read: the live or retired-but-recorded
    namespace of ``space``, else the current candidate (``StateError`` when none)."""
    rows = ws.manifest.namespaces(collection)
    if space is not None:
        found = [n for n in rows if n.space_label == space and n.state != "dropped"]
        if not found:
            raise UnknownSpace(space, sorted({n.space_label for n in rows}))
        return max(found, key=lambda n: n.created_at)
    cands = [n for n in rows if n.state in ("building", "ready")]
    if not cands:
        raise StateError(
            f"collection {collection!r} has no candidate space to report on",
            hint=f"name one with --space, or start a migration: `vecver migrate {collection} "
                 "--to SPACE`",
        )
    return max(cands, key=lambda n: n.created_at)


def report(ws: Workspace, collection: str, *, space: str | None = None,
                  min_overlap: float = 0.5, min_top1: float = 0.5) -> ShadowReport:
    """The shadow comparisons recorded for the candidate space of ``collection`` (or
    ``space``), summarised with a recommendation (:func:`summarise`); the candidate's
    coverage is its document count over the active space's. Loads no model. Raises
    ``UnknownCollection``, ``UnknownSpace`` (``space`` has no namespace in the
    collection), ``StateError`` (no candidate and no ``space``) and ``InvalidArgument``
    (a threshold outside [0, 1])."""
    mo = check_fraction("min_overlap", min_overlap)
    mt = check_fraction("min_top1", min_top1)
    ws.manifest.require_collection(collection)
    ns = candidate_namespace(ws, collection, space)
    active_name = ws.manifest.active_namespace(collection)
    active = next(n for n in ws.manifest.namespaces(collection) if n.name == active_name)
    prefix = counter_prefix(ns.name)
    raw = ws.manifest.counters(collection, prefix)
    counters = {key[len(prefix):]: v for key, v in raw.items()}
    coverage: float | None
    try:
        have = ws.backend_for(ns).count(ns.name)
        total = ws.backend_for(active).count(active.name)
        coverage = 1.0 if total == 0 else min(1.0, have / total)
    except Exception:  # noqa: BLE001 - the report still shows what was recorded
        coverage = None
    summary = summarise(ns.name, ns.space_label, ns.state, counters, coverage=coverage,
                        min_overlap=mo, min_top1=mt)
    return ShadowReport(collection, active.space_label, summary)
