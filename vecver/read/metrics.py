"""Read-path metrics: per collection and route, kept in the manifest's durable counters so
that another process (``vecver stats``, a Prometheus scrape) reads what a service saw.

What is counted, per collection and route (the route as the searcher resolved it, e.g.
``active``, ``dual:rrf``, ``canary:0.1``):

- ``queries`` (queries answered), ``searches`` (calls; ``search_many`` of n queries is
  one call), ``result_lists`` (one per query) and ``mixed_lists``: result lists holding
  hits from more than one space — the *mixed-version retrieval rate* is
  ``mixed_lists / result_lists``;
- ``hits`` per space that served them, and each space's share of the hits;
- the serving latency of each call in a fixed-bucket histogram
  (:data:`LATENCY_BUCKETS_MS`), from which p50 and p99 are estimated (linear inside a
  bucket, as Prometheus' ``histogram_quantile`` does: an estimate no finer than the
  buckets).

Per collection: the lazy queue (depth, documents noticed, queued, deduplicated, dropped
because the queue was full, re-embedded synchronously, drained and the drain rate) and the
backfill progress of every space being built.

Counting is cheap on the read thread (a few dictionary increments under a lock); the
counts reach the store in one ``bump_counters`` transaction per collection every
``[lazy] flush_interval`` seconds, from a background thread (:class:`Flusher`), and when
the workspace closes. A metric write that fails (a read-only manifest) never fails a
read: the counts are dropped and a warning logged once.

Read them with :func:`stats` (or ``Collection.stats()``), ``vecver stats COLLECTION``, or
as a Prometheus exposition (:func:`prometheus_text`, :func:`serve_prometheus`,
:func:`write_prometheus_textfile`; needs ``prometheus-client``, the ``vecver[metrics]``
extra, else :class:`~vecver.errors.MetricsNotInstalled`).
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, ManifestError, ManifestReadOnly, MetricsNotInstalled

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace
    from ..store.base import ManifestStore

log = logging.getLogger("vecver")

#: upper bounds (milliseconds) of the latency histogram's buckets; one more bucket
#: (+inf) holds what is slower than the last
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0,
    200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
)

#: separator of the parts of a counter name (route and space labels never hold it)
SEP = "|"
#: prefix of the per-route read counters
READ_PREFIX = "read" + SEP
#: prefix of the lazy re-embedding counters
LAZY_PREFIX = "lazy" + SEP


def read_key(route: str, *parts: str) -> str:
    """The counter name of a per-route read metric (``read|ROUTE|queries``, ...)."""
    return SEP.join(("read", route, *parts))


def lazy_key(name: str) -> str:
    """The counter name of a lazy re-embedding metric (``lazy|enqueued``, ...)."""
    return LAZY_PREFIX + name


def bucket_index(ms: float) -> int:
    """The histogram bucket of a latency in milliseconds: the first bucket whose upper
    bound is >= ``ms``; ``len(LATENCY_BUCKETS_MS)`` for the +inf bucket."""
    return bisect.bisect_left(LATENCY_BUCKETS_MS, ms)


def quantile(counts: Sequence[float], q: float,
             bounds: Sequence[float] = LATENCY_BUCKETS_MS) -> float | None:
    """The ``q``-quantile (0 <= q <= 1) of a histogram: ``counts[i]`` observations in
    bucket i (upper bound ``bounds[i]``, the last bucket is +inf). Linear inside the
    bucket the quantile falls in (its lower bound is the previous bucket's upper bound, 0
    for the first); a quantile in the +inf bucket is the last finite bound. None for an
    empty histogram. ``InvalidArgument`` for q outside [0, 1] or counts of the wrong
    length."""
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
        raise InvalidArgument("q", q, "a number between 0 and 1")
    if len(counts) != len(bounds) + 1:
        raise InvalidArgument("counts", len(counts), f"{len(bounds) + 1} bucket counts")
    total = float(sum(counts))
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for i, c in enumerate(counts):
        if c <= 0:
            continue
        if seen + c >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lo = float(bounds[i - 1]) if i > 0 else 0.0
            hi = float(bounds[i])
            return lo + (hi - lo) * max(0.0, rank - seen) / c
        seen += c
    return float(bounds[-1])  # pragma: no cover - rank <= total always lands above


# ----------------------------------------------------------------------------- flushing


class Flusher:
    """A daemon thread that calls ``flush`` functions every ``interval`` seconds, started
    on the first :meth:`wake`; :meth:`close` stops it after one last round. A flush
    function that raises is logged and the thread goes on."""

    def __init__(self, interval: float, name: str = "vecver-read-flush",
                 store: FlushStore | None = None) -> None:
        self.interval = float(interval)
        self.store = store
        self._name = name
        self._fns: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._nudge = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._fns.append(fn)

    def wake(self, now: bool = False) -> None:
        """Make sure the thread runs (and with ``now``, flush without waiting for the
        interval). Does nothing once closed."""
        if self._closed:
            return
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    t = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread = t
                    t.start()
        if now:
            self._nudge.set()

    def flush(self) -> None:
        """One round of every flush function, on the calling thread."""
        with self._lock:
            fns = list(self._fns)
        for fn in fns:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a metric write never fails a read
                log.warning("vecver: a batched read-path write failed", exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._nudge.wait(self.interval)
            self._nudge.clear()
            if self._stop.is_set():
                break
            self.flush()

    def close(self) -> None:
        """Stop the thread (waiting for the round in progress: the store it writes to is
        closed next), flush once more on this thread, close the store (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._nudge.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()
        self.flush()
        if self.store is not None:
            self.store.close()


class FlushStore:
    """The store the background flushes write to: a second handle on the workspace's
    SQLite manifest, opened on first use, so that the read thread's own manifest reads
    never wait behind a flush's transaction (SQLite in WAL mode lets readers go on while
    another connection writes); the workspace's store itself for any other store, or when
    a second handle cannot be opened."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._store: ManifestStore | None = None
        self._tried = False
        self._lock = threading.Lock()

    def get(self) -> ManifestStore:
        with self._lock:
            if not self._tried:
                self._tried = True
                self._store = self._open()
            return self._store if self._store is not None else self.ws.manifest

    def _open(self) -> ManifestStore | None:
        from ..store.sqlite import Manifest

        m = self.ws.manifest
        if not isinstance(m, Manifest) or m.read_only:
            return None  # the workspace's own store, whatever it is at each flush
        try:
            second = Manifest(m.path, create=False)
        except ManifestError:
            return None
        second.queue_limit = m.queue_limit
        return second

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()


def bump(ws: Workspace, collection: str, deltas: Mapping[str, float],
         store: ManifestStore | None = None) -> bool:
    """Add ``deltas`` to ``collection``'s durable counters (in ``store``, default the
    workspace's); False (and a warning, once per workspace) when the store cannot take
    them (read-only, unavailable): metrics never fail the caller."""
    if not deltas:
        return True
    try:
        (store or ws.manifest).bump_counters(collection, dict(deltas))
        return True
    except ManifestError as e:
        warn_unrecorded(ws, "read metrics", collection, e)
        return False


_warned: weakref.WeakSet[Any] = weakref.WeakSet()


def warn_unrecorded(ws: Workspace, what: str, collection: str, error: ManifestError) -> None:
    """Say once per workspace that ``what`` could not be written: at INFO for a read-only
    manifest (reads of a read-only workspace are expected), else a warning."""
    if ws in _warned:
        return
    _warned.add(ws)
    level = logging.INFO if isinstance(error, ManifestReadOnly) else logging.WARNING
    log.log(level, "vecver: %s of %s not recorded: %s", what, collection, error)


# ----------------------------------------------------------------------------- observer


class MetricsObserver:
    """A read observer (see :mod:`vecver.read.searcher`) that counts every search per
    collection and route, and writes the counts to the store in batches (through
    ``flusher``). Thread-safe. :meth:`pending` is what was counted and not yet written
    (so that :func:`stats` in this process is exact)."""

    def __init__(self, ws: Workspace, flusher: Flusher) -> None:
        self.ws = ws
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._deltas: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._flusher = flusher
        flusher.add(self.flush)

    def on_search(self, event: Any) -> None:
        collection: str = event.collection
        route: str = str(event.route)
        results: list[list[Any]] = event.results
        ms = float(event.latency_s) * 1000.0
        counts: dict[str, float] = defaultdict(float)
        counts[read_key(route, "searches")] += 1
        counts[read_key(route, "queries")] += len(event.queries)
        counts[read_key(route, "result_lists")] += len(results)
        counts[read_key(route, "latency_ms_sum")] += ms
        counts[read_key(route, "lat", str(bucket_index(ms)))] += 1
        for hits in results:
            spaces = {h.space for h in hits if h.space is not None}
            if len(spaces) > 1:
                counts[read_key(route, "mixed_lists")] += 1
            for h in hits:
                counts[read_key(route, "hits", str(h.space))] += 1
        self.add(collection, counts)

    def add(self, collection: str, counts: Mapping[str, float]) -> None:
        """Count ``counts`` for ``collection`` (written at the next flush)."""
        with self._lock:
            d = self._deltas[collection]
            for k, v in counts.items():
                d[k] += v
        self._flusher.wake()

    def pending(self, collection: str) -> dict[str, float]:
        with self._lock:
            return dict(self._deltas.get(collection, {}))

    def flush(self) -> None:
        """Write what was counted (one transaction per collection). On a failure the
        counts are dropped (see :func:`bump`)."""
        with self._flushing:  # a flush returns once what was counted before it is written
            with self._lock:
                taken = {c: dict(d) for c, d in self._deltas.items() if d}
                self._deltas.clear()
            fs = self._flusher.store
            store = fs.get() if fs is not None else None
            for collection, deltas in taken.items():
                bump(self.ws, collection, deltas, store)

    def close(self) -> None:
        self.flush()


# ----------------------------------------------------------------------------- reading


@dataclass
class RouteStats:
    """The read metrics of one route of a collection (see the module docstring)."""

    route: str
    searches: int
    queries: int
    result_lists: int
    mixed_lists: int
    mixed_rate: float
    hits: dict[str, int]
    hit_share: dict[str, float]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_mean_ms: float | None
    latency_buckets: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LazyStats:
    """The lazy re-embedding queue of a collection: ``pending`` (waiting), ``leased``
    (claimed by a drainer now), ``limit`` (``[lazy] max_queue``) and what was counted
    since the counters began: documents ``noticed`` missing or stale by reads,
    ``enqueued``, ``deduplicated`` (already waiting), ``dropped`` (the queue was full),
    ``sync_embedded`` (re-embedded before a ``lazy="sync"`` read returned), ``drained``
    (completed by a drainer) in ``drain_seconds``, and ``drain_rate`` (documents per
    second of draining)."""

    pending: int
    leased: int
    limit: int
    noticed: int
    enqueued: int
    deduplicated: int
    dropped: int
    sync_embedded: int
    drained: int
    drain_seconds: float
    drain_rate: float
    oldest_pending_age_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BackfillStats:
    """One space being built (or ready): documents ``present`` in it out of ``expected``
    (the active space's count), ``progress`` = present / expected (1.0 when the active
    space is empty), and its checkpoint (``done`` scanned, ``finished``)."""

    space: str
    namespace: str
    state: str
    present: int
    expected: int
    progress: float
    done: int | None
    finished: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CollectionStats:
    """Every metric of one collection (:func:`stats`)."""

    collection: str
    active: str
    routes: list[RouteStats]
    lazy: LazyStats
    backfill: list[BackfillStats]
    read_documents: int
    read_total: int

    def route(self, route: str) -> RouteStats | None:
        """The metrics of ``route`` (None when it served no search)."""
        return next((r for r in self.routes if r.route == route), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection, "active": self.active,
            "routes": [r.to_dict() for r in self.routes], "lazy": self.lazy.to_dict(),
            "backfill": [b.to_dict() for b in self.backfill],
            "read_documents": self.read_documents, "read_total": self.read_total,
        }


def _observers(ws: Workspace) -> Iterator[Any]:
    yield from getattr(ws, "read_observers", ())


def counters(ws: Workspace, collection: str) -> dict[str, float]:
    """The durable counters of ``collection`` plus what this workspace's observers counted
    and have not written yet."""
    out = dict(ws.manifest.counters(collection))
    for o in _observers(ws):
        pending = getattr(o, "pending", None)
        if callable(pending):
            for k, v in pending(collection).items():
                out[k] = out.get(k, 0.0) + v
    return out


def route_stats(raw: Mapping[str, float]) -> list[RouteStats]:
    """The per-route metrics found in a collection's counters ``raw`` (sorted by route)."""
    per: dict[str, dict[str, float]] = defaultdict(dict)
    for key, v in raw.items():
        if not key.startswith(READ_PREFIX):
            continue
        route, _, rest = key[len(READ_PREFIX):].partition(SEP)
        if rest:
            per[route][rest] = v
    out = []
    for route in sorted(per):
        d = per[route]
        hits = {k.split(SEP, 1)[1]: int(v) for k, v in d.items() if k.startswith("hits" + SEP)}
        total_hits = sum(hits.values())
        buckets = [int(d.get(f"lat{SEP}{i}", 0)) for i in range(len(LATENCY_BUCKETS_MS) + 1)]
        lists = int(d.get("result_lists", 0))
        mixed = int(d.get("mixed_lists", 0))
        searches = int(d.get("searches", 0))
        out.append(RouteStats(
            route=route, searches=searches, queries=int(d.get("queries", 0)),
            result_lists=lists, mixed_lists=mixed,
            mixed_rate=mixed / lists if lists else 0.0,
            hits=dict(sorted(hits.items())),
            hit_share={s: n / total_hits for s, n in sorted(hits.items())} if total_hits
            else {},
            latency_p50_ms=quantile(buckets, 0.5),
            latency_p99_ms=quantile(buckets, 0.99),
            latency_mean_ms=d.get("latency_ms_sum", 0.0) / searches if searches else None,
            latency_buckets=buckets,
        ))
    return out


def lazy_stats(ws: Workspace, collection: str, raw: Mapping[str, float]) -> LazyStats:
    """The lazy queue of ``collection`` now, and its counters from ``raw``."""
    from .lazy import queue_kind

    q = ws.manifest.queue_stats(queue_kind(collection))

    def n(name: str) -> float:
        return float(raw.get(lazy_key(name), 0.0))

    secs = n("drain_seconds")
    return LazyStats(
        pending=q.pending, leased=q.leased, limit=ws.config.lazy.max_queue,
        noticed=int(n("noticed")), enqueued=int(n("enqueued")),
        deduplicated=int(n("deduplicated")), dropped=int(n("dropped")),
        sync_embedded=int(n("sync_embedded")), drained=int(n("drained")),
        drain_seconds=secs, drain_rate=n("drained") / secs if secs > 0 else 0.0,
        oldest_pending_age_s=q.oldest_pending_age,
    )


def backfill_stats(ws: Workspace, collection: str) -> list[BackfillStats]:
    """Progress of every space of ``collection`` being built or ready."""
    active = ws.manifest.active_namespace(collection)
    expected = ws.backend_for(active).count(active)
    out = []
    for ns in ws.manifest.namespaces(collection):
        if ns.state not in ("building", "ready"):
            continue
        present = ws.backend_for(ns).count(ns.name)
        ck = ws.manifest.checkpoint(ns.name)
        out.append(BackfillStats(
            space=ns.space_label, namespace=ns.name, state=ns.state, present=present,
            expected=expected,
            progress=min(1.0, present / expected) if expected else 1.0,
            done=ck.done if ck else None, finished=bool(ck and ck.finished),
        ))
    return out


def stats(ws: Workspace, collection: str) -> CollectionStats:
    """Every metric of ``collection`` (see the module docstring): the durable counters
    (written by any process) plus what this workspace counted and has not written yet.
    Loads no model. Raises ``UnknownCollection``."""
    ws.manifest.require_collection(collection)
    raw = counters(ws, collection)
    docs, total = ws.manifest.read_totals(collection)
    active = ws.manifest.active_namespace(collection)
    row = ws.manifest.namespace(active)
    return CollectionStats(
        collection=collection, active=row.space_label if row else active,
        routes=route_stats(raw), lazy=lazy_stats(ws, collection, raw),
        backfill=backfill_stats(ws, collection), read_documents=int(docs),
        read_total=int(total),
    )


# ----------------------------------------------------------------------------- prometheus


def _prometheus() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core  # noqa: F401 - the metric families
    except ImportError:
        raise MetricsNotInstalled() from None
    return prometheus_client


def _collections(ws: Workspace, collections: Iterable[str] | None) -> list[str]:
    if collections is None:
        return list(ws.manifest.collections())
    if isinstance(collections, str):
        raise InvalidArgument("collections", collections, "a list of collection names")
    names = list(collections)
    for c in names:
        ws.manifest.require_collection(c)
    return names


class _Collector:
    """A prometheus-client collector reading :func:`stats` at every scrape."""

    def __init__(self, ws: Workspace, collections: Iterable[str] | None) -> None:
        self.ws = ws
        self.collections = None if collections is None else _collections(ws, collections)

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only (the label values are not known before)

    def collect(self) -> Iterator[Any]:
        pc = _prometheus()
        core = pc.core
        cl = ["collection", "route"]
        queries = core.CounterMetricFamily("vecver_queries", "Queries answered", labels=cl)
        lists = core.CounterMetricFamily("vecver_result_lists", "Result lists served",
                                         labels=cl)
        mixed = core.CounterMetricFamily(
            "vecver_mixed_result_lists", "Result lists holding hits of more than one space",
            labels=cl)
        rate = core.GaugeMetricFamily(
            "vecver_mixed_version_rate", "Share of result lists with hits of several spaces",
            labels=cl)
        hits = core.CounterMetricFamily("vecver_hits", "Hits served, by the space serving",
                                        labels=[*cl, "space"])
        latency = core.HistogramMetricFamily(
            "vecver_search_latency_seconds", "Serving latency of a search call", labels=cl)
        depth = core.GaugeMetricFamily("vecver_lazy_queue_depth",
                                       "Documents waiting in the lazy re-embedding queue",
                                       labels=["collection", "state"])
        lazy = core.CounterMetricFamily("vecver_lazy_documents",
                                        "Documents of lazy re-embedding, by outcome",
                                        labels=["collection", "outcome"])
        drain = core.GaugeMetricFamily("vecver_lazy_drain_rate",
                                       "Documents re-embedded per second of draining",
                                       labels=["collection"])
        progress = core.GaugeMetricFamily("vecver_backfill_progress",
                                          "Share of the documents present in a space built",
                                          labels=["collection", "space", "state"])
        names = self.collections if self.collections is not None else _collections(
            self.ws, None)
        for c in names:
            s = stats(self.ws, c)
            for r in s.routes:
                lab = [c, r.route]
                queries.add_metric(lab, r.queries)
                lists.add_metric(lab, r.result_lists)
                mixed.add_metric(lab, r.mixed_lists)
                rate.add_metric(lab, r.mixed_rate)
                for space, n in r.hits.items():
                    hits.add_metric([*lab, space], n)
                cum, buckets = 0, []
                for bound, n in zip([*LATENCY_BUCKETS_MS, math.inf], r.latency_buckets,
                                    strict=True):
                    cum += n
                    buckets.append(("+Inf" if bound == math.inf else repr(bound / 1000.0), cum))
                mean = r.latency_mean_ms or 0.0
                latency.add_metric(lab, buckets, sum_value=mean * r.searches / 1000.0)
            lz = s.lazy
            depth.add_metric([c, "pending"], lz.pending)
            depth.add_metric([c, "leased"], lz.leased)
            for outcome in ("noticed", "enqueued", "deduplicated", "dropped",
                            "sync_embedded", "drained"):
                lazy.add_metric([c, outcome], getattr(lz, outcome))
            drain.add_metric([c], lz.drain_rate)
            for b in s.backfill:
                progress.add_metric([c, b.space, b.state], b.progress)
        yield from (queries, lists, mixed, rate, hits, latency, depth, lazy, drain, progress)
        from ..drift.metrics import metric_families  # drift signals of the last checks

        yield from metric_families(self.ws, list(names))


def prometheus_registry(ws: Workspace, collections: Iterable[str] | None = None) -> Any:
    """A ``prometheus_client.CollectorRegistry`` exposing the metrics of ``collections``
    (default: every collection, looked up at each scrape), read from the store at each
    scrape. Raises ``MetricsNotInstalled`` without prometheus-client, ``UnknownCollection``
    for a collection the manifest does not know."""
    pc = _prometheus()
    reg = pc.CollectorRegistry(auto_describe=False)
    reg.register(_Collector(ws, collections))
    return reg


def prometheus_text(ws: Workspace, collections: Iterable[str] | None = None) -> str:
    """The metrics in the Prometheus text exposition format (what a scrape returns)."""
    pc = _prometheus()
    return str(pc.generate_latest(prometheus_registry(ws, collections)).decode("utf-8"))


def write_prometheus_textfile(ws: Workspace, path: str,
                              collections: Iterable[str] | None = None) -> None:
    """Write the exposition to ``path`` atomically (a temporary file renamed over it), for
    the node exporter's textfile collector."""
    pc = _prometheus()
    pc.write_to_textfile(str(path), prometheus_registry(ws, collections))


def serve_prometheus(ws: Workspace, port: int, *, addr: str = "127.0.0.1",
                     collections: Iterable[str] | None = None) -> Any:
    """Serve the exposition over HTTP on ``addr:port`` from a daemon thread (for a
    long-lived service) and return what prometheus-client returns (its server and thread,
    in recent versions: call ``server.shutdown()`` to stop). The workspace must stay open
    while it serves. ``InvalidArgument`` for a port outside 0..65535."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgument("port", port, "a TCP port number (0..65535)")
    pc = _prometheus()
    return pc.start_http_server(port, addr=addr, registry=prometheus_registry(ws, collections))

