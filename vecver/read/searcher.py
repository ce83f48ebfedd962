"""The searcher: the one place in the core that calls ``Backend.search``.

For one collection it resolves a route to a read plan (:mod:`vecver.read.routes`),
embeds the query with the serving space's own embedder, checks the fingerprint rule,
searches the namespace on the backend instance that holds it, and labels every hit with
the space and the namespace that served it.

Rules it guarantees:

- **fingerprint rule** — a query vector is only compared with vectors of its own
  geometry: the embedder's fingerprint (for precomputed vectors: the space's current
  fingerprint) must equal the namespace's, else ``FingerprintMismatch``;
- **no stale route** — the plan is cached per manifest generation of the collection, and
  the generation is read on every call (one small manifest read), so a search that starts
  after a cutover or rollback returned — in this process or another — reads the new
  space; a search racing one reads the old or the new space, never a mix;
- **no silent mix of spaces** — hits of two geometries appear in one list only under a
  route that says so (``dual``: fused; ``rerank``: rescored), and every hit names the
  space and namespace it came from (``Hit.space``/``namespace``, raw ``score``; fused:
  ``fused_score`` and ``ranks``; re-ranked by a hook: ``rerank_score``);
- **input rules** — queries are a list of non-empty strings (one string is refused by
  ``search_many``); ``k`` is an ``int`` from 1 to ``[read] max_k`` (a ``bool`` is not a
  count; :meth:`Searcher.search_vectors` takes any ``k`` of at least 1); a filter is
  ``None`` (no filter), a :class:`~vecver.filters.Filter` or a
  mapping (see :mod:`vecver.filters`); ``routing_key`` None or a non-empty string,
  required by ``canary``; ``lazy`` None, ``"async"`` or ``"sync"``; ``rerank_hook`` None or
  a callable. Each is refused with a typed ``InvalidInput`` before anything is embedded,
  and a failed search (any error) tells no observer: nothing is recorded for it.

How each kind of plan is executed:

- one serving leg: embed, search ``k`` (or the hook's top n when more), label;
- ``dual`` (two serving legs): each leg embeds with its own space and is asked for
  :func:`~vecver.read.fusion.dual_depth` hits; :func:`~vecver.read.fusion.fuse` merges,
  told which listed documents a building namespace does not hold yet (one id fetch), so
  that their absence there is imputed rather than counted against them; the served ones
  are named in ``SearchEvent.missing``;
- ``shadow`` legs: searched for ``k`` off the serving path (:mod:`vecver.read.shadow`),
  compared with the served hits and recorded; the served hits are those of the plan
  without the shadow leg, object for object;
- ``rescore`` leg (``rerank``): the serving leg's top K' are rescored with the query
  embedded by the candidate space against each document's stored candidate vector
  (``Backend.fetch(with_vectors=True)``); a document missing there, or stored from
  another text (source hash differs), is embedded on the spot from the served text, at
  most ``[read] rerank_max_sync_embeds`` per query, and named in ``SearchEvent.missing``
  for the lazy queue; the rescored hits come first (candidate score, best first, the
  candidate's space and namespace), the others after them in their active order;
- an adapter leg (``Leg.adapter`` set): the query is embedded by ``leg.embed_space``
  and mapped by ``vecver.adapters.query_adapter(ws, leg.adapter)``, whose
  ``source_fingerprint`` must be the embedder's and ``target_fingerprint`` the
  namespace's (``FingerprintMismatch``); when the adapter carries a hubness prior
  (``prior``), the leg fetches ``prior.fetch_depth(depth)`` hits (never fewer than asked)
  and keeps the ``depth`` best by ``score - beta * prior`` (raw scores stay on the hits;
  :mod:`vecver.adapters.prior`);
- a re-rank hook (``rerank_hook(query, texts) -> scores``): applied last, to the top
  ``hook_top_n`` hits of each query, which it reorders (best score first, stable); the
  hits after them keep their order. A hook that raises, or returns anything but one
  finite number per text, is ``RerankHookError``.

Observers (:class:`ReadObserver` in ``ws.read_observers``) are told of every successful
search with a :class:`SearchEvent`; one that raises is logged and ignored. With
``lazy="sync"``, an observer that wrote the missing documents sets ``event.changed`` and
the plan is executed once more (fresh view) for the results returned.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from ..backends.base import Backend
from ..backends.validate import validate_k
from ..config import ReadSettings
from ..embedders import SpaceEmbedder
from ..errors import (
    FingerprintMismatch,
    InvalidArgument,
    InvalidInput,
    RerankHookError,
    StateError,
)
from ..filters import Filter
from ..store import NamespaceRow
from ..types import Hit, Matrix, Record
from . import shadow as _shadow
from .fusion import RankedList, dual_depth, fuse
from .routes import Canary, CollectionView, Leg, ReadPlan, Route, parse_route

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace

log = logging.getLogger("vecver")

#: how often a view is re-read when the generation moves while it is being read
_VIEW_ATTEMPTS = 8

#: a re-rank hook: (query, texts of its top candidates) -> one score per text, higher better
RerankHook = Callable[[str, Sequence[str]], Sequence[float]]

#: what ``lazy=`` accepts
LazyMode = Literal["async", "sync"]


@dataclass
class LegResult:
    """One executed leg of a plan and its own hits per query (before fusion, rescoring or
    a hook; raw scores, labelled with the leg's space and namespace)."""

    leg: Leg
    results: list[list[Hit]]


@dataclass
class SearchEvent:
    """What one search did, told to every :class:`ReadObserver`.

    ``route`` is the route's string form as asked (``canary:0.1``); ``plan`` the plan
    executed (for a canary: the active or the candidate one). ``results`` are the served
    hits (the caller's own lists: observers must not modify them). ``legs`` holds every
    executed leg, the shadow leg included once it ran (see :class:`Searcher`:
    asynchronous shadow events are told from the shadow worker). ``missing`` maps a
    namespace name to the ids this search found missing or stale there (``rerank``).
    ``latency_s`` is the serving time (route, embed, search, fuse, rescore, hook).
    ``sync`` is ``lazy == "sync"``; an observer that wrote documents for this search sets
    ``changed`` so that the searcher reads again."""

    collection: str
    route: str
    plan: ReadPlan
    queries: list[str]
    k: int
    results: list[list[Hit]]
    legs: list[LegResult]
    latency_s: float
    routing_key: str | None
    sync: bool
    missing: dict[str, list[str]] = field(default_factory=dict)
    changed: bool = False


class HitReranker(Protocol):
    """An adapter's document-side rerank (``vecver.adapters.prior.DocPrior``): how many
    hits to fetch for a top ``k``, and the top ``k`` of each query's fetched hits."""

    def fetch_depth(self, k: int) -> int: ...
    def rerank_hits(self, results: list[list[Hit]], k: int) -> list[list[Hit]]: ...


class QueryAdapter(Protocol):
    """What an adapter leg needs of a trained adapter (``vecver.adapters.query_adapter``):
    the fingerprints it maps from and to, the mapping of a ``(q, d)`` query matrix, and
    its prior's rerank (None: none)."""

    @property
    def source_fingerprint(self) -> str: ...
    @property
    def target_fingerprint(self) -> str: ...
    @property
    def prior(self) -> HitReranker | None: ...
    def transform(self, x: Matrix) -> Matrix: ...


class ReadObserver(Protocol):
    """Told of every successful search (``ws.read_observers``). Called on the searching
    thread, or on the shadow worker for asynchronous shadow searches: must be
    thread-safe, and should be quick (it runs inside the read's wall time but outside
    ``latency_s``). An exception is logged and ignored."""

    def on_search(self, event: SearchEvent) -> None: ...


@dataclass(frozen=True)
class PreparedLeg:
    """A leg bound to what executes it: the backend instance holding its namespace."""

    leg: Leg
    backend: Backend

    @property
    def namespace(self) -> NamespaceRow:
        return self.leg.namespace


@dataclass(frozen=True)
class PreparedPlan:
    """A read plan with its legs bound to backend instances (cached per generation)."""

    plan: ReadPlan
    legs: tuple[PreparedLeg, ...]
    generation: int
    _single: PreparedLeg | None = field(default=None, repr=False)

    @staticmethod
    def bind(plan: ReadPlan, generation: int, backend_for: Callable[[NamespaceRow], Backend]
             ) -> PreparedPlan:
        legs = tuple(PreparedLeg(leg, backend_for(leg.namespace)) for leg in plan.legs)
        single = legs[0] if plan.single is not None else None
        return PreparedPlan(plan, legs, generation, single)

    @property
    def single(self) -> PreparedLeg | None:
        """The one leg, when the plan reads exactly one namespace with its own space."""
        return self._single


def check_queries(queries: object) -> list[str]:
    """``queries`` as a list of non-empty strings; a single string, or an empty or non-string
    query, is refused (``InvalidInput``)."""
    if isinstance(queries, str):
        raise InvalidInput("search_many takes a list of queries")
    if not isinstance(queries, Sequence):
        raise InvalidInput(f"queries must be a list of strings, got {type(queries).__name__}")
    out = list(queries)
    for q in out:
        if not isinstance(q, str) or not q.strip():
            raise InvalidInput("a query must be a non-empty string")
    return out


def check_filter(flt: Filter | Mapping[str, Any] | None) -> Filter | None:
    """The filter a search passes to the backend: None for no filter (``None`` or the empty
    filter, which match everything alike); ``InvalidFilter`` for a malformed one."""
    if flt is None:
        return None
    parsed = Filter.parse(flt)
    return parsed if parsed else None


def label_hits(results: list[list[Hit]], ns: NamespaceRow) -> list[list[Hit]]:
    """Name on every hit the space and the namespace that served it (the one place hits
    are labelled)."""
    label, name = ns.space_label, ns.name
    for hits in results:
        for h in hits:
            h.space = label
            h.namespace = name
    return results


def _check_hook(hook: RerankHook | None) -> RerankHook | None:
    if hook is not None and not callable(hook):
        raise InvalidArgument("rerank_hook", hook, "a callable (query, texts) -> scores")
    return hook


def _check_count(name: str, value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgument(name, value, "a positive integer")
    return int(value)


def apply_hook(hook: RerankHook, queries: Sequence[str], results: list[list[Hit]],
               top_n: int, k: int) -> list[list[Hit]]:
    """Re-rank the top ``top_n`` hits of each query by ``hook`` and cut each list to ``k``.

    The hook gets the query and the texts of those hits (``""`` for a hit without text)
    and must return one finite number per text (higher is better). New lists of new hit
    objects with ``rerank_score`` set are returned; nothing is modified before every query
    was scored, so a ``RerankHookError`` leaves the input as it was."""
    scored: list[list[float]] = []
    for q, hits in zip(queries, results, strict=True):
        top = hits[:top_n]
        if not top:
            scored.append([])
            continue
        texts = [h.text or "" for h in top]
        try:
            raw = hook(q, texts)
        except Exception as e:  # noqa: BLE001 - any failure of the user's hook is typed
            raise RerankHookError(f"it raised {type(e).__name__}: {e}", q) from e
        if isinstance(raw, (str, bytes)) or not isinstance(raw, (Sequence, np.ndarray)):
            raise RerankHookError(
                f"it returned {type(raw).__name__}, not a sequence of scores", q)
        vals = list(np.asarray(raw).ravel()) if isinstance(raw, np.ndarray) else list(raw)
        if isinstance(raw, np.ndarray) and raw.ndim != 1:
            raise RerankHookError(f"it returned an array of shape {raw.shape}, not "
                                  f"({len(texts)},)", q)
        if len(vals) != len(texts):
            raise RerankHookError(f"it returned {len(vals)} scores for {len(texts)} texts", q)
        out: list[float] = []
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise RerankHookError(f"it returned a score of type {type(v).__name__}", q)
            f = float(v)
            if not math.isfinite(f):
                raise RerankHookError(f"it returned a non-finite score ({f})", q)
            out.append(f)
        scored.append(out)
    final: list[list[Hit]] = []
    for hits, sc in zip(results, scored, strict=True):
        order = sorted(range(len(sc)), key=lambda i: (-sc[i], i))
        head = [replace(hits[i], rerank_score=sc[i]) for i in order]
        final.append((head + hits[len(sc):])[:k])
    return final


def _score(metric: str, q: Matrix, vecs: Matrix) -> Matrix:
    """Scores of the rows of ``vecs`` against query ``q`` by vecver's convention (higher
    is closer): cosine similarity, inner product, or negative squared distance."""
    if metric == "dot":
        out = vecs @ q
    elif metric == "l2":
        d = vecs - q[None, :]
        out = -np.einsum("ij,ij->i", d, d)
    else:
        qn = float(np.linalg.norm(q)) or 1.0
        vn = np.linalg.norm(vecs, axis=1)
        vn[vn == 0] = 1.0
        out = (vecs @ q) / (vn * qn)
    return np.asarray(out, dtype=np.float32)


@dataclass
class _Run:
    """What executing a plan once produced."""

    served: list[list[Hit]]
    legs: list[LegResult]
    missing: dict[str, list[str]]


class Searcher:
    """The read path of one collection of a workspace. Thread-safe; cheap to keep.

    Every public method resolves its route against the collection's current manifest
    generation (see the module docstring); errors: ``UnknownCollection``, ``StateError``
    (no candidate space for a route that needs one), ``UnknownSpace`` (``space:LABEL``
    names no live space), ``UnknownRoute`` / ``InvalidInput`` / ``InvalidArgument`` (bad
    route, parameter, queries, ``k`` or filter), ``RoutingKeyRequired`` (``canary``
    without a key), ``RerankHookError``, ``FingerprintMismatch``, and what the backend
    raises (``DimensionMismatch``, ``NonFiniteVector``, ``ZeroVector`` for bad query
    vectors)."""

    def __init__(self, ws: Workspace, collection: str) -> None:
        self.ws = ws
        self.collection = collection
        # (view, plans of that view's generation), replaced as one value
        self._state: tuple[CollectionView, dict[str | Route, PreparedPlan]] | None = None
        # (namespace, its fingerprint, query space) -> the embedder checked against it
        self._checked: dict[tuple[str, str, str], SpaceEmbedder] = {}
        self._lock = threading.Lock()

    @property
    def settings(self) -> ReadSettings:
        """The ``[read]`` settings of the workspace's config."""
        return getattr(self.ws.config, "read", None) or ReadSettings()

    # -- routes -----------------------------------------------------------------------

    def view(self) -> CollectionView:
        """The collection's namespaces at the manifest's current generation."""
        return self._current()[0]

    def plan(self, route: str | Route = "active", *,
             routing_key: str | None = None) -> ReadPlan:
        """The read plan ``route`` resolves to now (for the caller with ``routing_key``)."""
        return self.prepare(route, routing_key=routing_key).plan

    def route(self, route: str | Route = "active", *,
              routing_key: str | None = None) -> NamespaceRow:
        """The one namespace ``route`` reads now. Raises ``InvalidInput`` for a route that
        reads several (such routes are executed by :meth:`search_many` only)."""
        prep = self.prepare(route, routing_key=routing_key)
        if prep.single is None:
            raise InvalidInput(
                f"route {prep.plan.route} reads {len(prep.legs)} namespaces, not one"
            )
        return prep.single.namespace

    def resolve(self, route: str | Route) -> Route:
        """``route`` parsed, with configured defaults filled in (bare ``canary``: the
        ``[read] canary_p`` fraction)."""
        r = parse_route(route)
        if isinstance(r, Canary) and r.p is None:
            r = Canary(self.settings.canary_p)
        return r

    def prepare(self, route: str | Route = "active", *,
                routing_key: str | None = None) -> PreparedPlan:
        """The plan of ``route`` now, bound to backend instances (cached per generation,
        by the route as given, for routes whose plan depends on the view alone). A route
        that splits traffic (``canary``) first picks the route of ``routing_key``."""
        view, cache = self._current()
        try:
            prep = cache.get(route)
            hashable = True
        except TypeError:  # an unhashable value: parse_route says what is wrong with it
            prep, hashable = None, False
        if prep is not None:
            return prep
        r = self.resolve(route)
        chosen = r.select(view, routing_key)
        if chosen is not r:
            return self.prepare(chosen)
        prep = PreparedPlan.bind(r.plan(view), view.generation, self.ws.backend_for)
        if r.cacheable and hashable:
            cache[route] = prep
        return prep

    def _current(self) -> tuple[CollectionView, dict[str | Route, PreparedPlan]]:
        gen = self.ws.manifest.generation(self.collection)
        state = self._state
        if state is not None and state[0].generation == gen:
            return state
        return self._load(gen)

    def _load(self, gen: int) -> tuple[CollectionView, dict[str | Route, PreparedPlan]]:
        """Read the view at generation ``gen``: the rows are only taken when the generation
        is the same after reading them (every change to a collection's namespaces or alias
        moves it), so a view is never a mix of two generations."""
        m = self.ws.manifest
        for _ in range(_VIEW_ATTEMPTS):
            active = m.active_namespace(self.collection)
            rows = tuple(m.namespaces(self.collection))
            after = m.generation(self.collection)
            if after == gen:
                break
            gen = after
        else:
            raise StateError(
                f"collection {self.collection!r} kept changing while its namespaces were read",
                hint="retry the search",
            )
        row = next((r for r in rows if r.name == active), None)
        if row is None:
            raise StateError(
                f"collection {self.collection!r}: the active namespace {active!r} is not "
                "recorded in the manifest",
                hint=f"run `vecver status` and `vecver history {self.collection}`",
            )
        plans: dict[str | Route, PreparedPlan] = {}
        state = (CollectionView(self.collection, gen, row, rows), plans)
        with self._lock:
            cur = self._state
            if cur is None or cur[0].generation <= gen:
                self._state = state
        return state

    # -- searching --------------------------------------------------------------------

    def check_k(self, k: object) -> int:
        """``k`` if it is an integer from 1 to ``[read] max_k``; else ``InvalidInput``."""
        kk = validate_k(k)
        limit = self.settings.max_k
        if kk > limit:
            raise InvalidArgument("k", k, f"at most {limit} (the [read] max_k setting)")
        return kk

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        route: str | Route = "active",
        filter: Filter | Mapping[str, Any] | None = None,
        routing_key: str | None = None,
        lazy: LazyMode | None = None,
        rerank_hook: RerankHook | None = None,
        hook_top_n: int | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` nearest documents to each query along ``route``, best first; every
        hit names its space and namespace. Each query is embedded by the embedder of the
        space it is compared with.

        ``routing_key`` (a user or session id) picks the side of a ``canary``;
        ``lazy`` marks the event ``sync`` (``"sync"``: observers may write missing
        documents before this returns, and the search then reads again);
        ``rerank_hook`` re-ranks the top ``hook_top_n`` (default ``[read] hook_top_n``)
        hits of each query. Input rules and errors: the module docstring."""
        texts = check_queries(queries)
        k = self.check_k(k)
        flt = check_filter(filter)
        if routing_key is not None and (not isinstance(routing_key, str) or not routing_key):
            raise InvalidArgument("routing_key", routing_key, "a non-empty string")
        if lazy not in (None, "async", "sync"):
            raise InvalidArgument("lazy", lazy, "None, 'async' or 'sync'")
        hook = _check_hook(rerank_hook)
        limit = self.settings.max_k
        top_n = _check_count("hook_top_n", hook_top_n, min(self.settings.hook_top_n, limit))
        if top_n > limit:
            raise InvalidArgument("hook_top_n", hook_top_n,
                                  f"at most {limit} (the [read] max_k setting)")
        sync = lazy == "sync"
        t0 = time.perf_counter()
        asked = self.resolve(route)
        prep = self.prepare(route, routing_key=routing_key)
        run = self._run(prep, texts, k, flt, hook, top_n)
        latency = time.perf_counter() - t0
        observers = list(getattr(self.ws, "read_observers", None) or ())
        event = SearchEvent(self.collection, str(asked), prep.plan, texts, k, run.served,
                            run.legs, latency, routing_key, sync, run.missing)
        shadows = [leg for leg in prep.legs if leg.leg.role == "shadow"]
        if shadows and not sync:
            self._shadow_async(shadows, texts, k, flt, run.served, event, observers)
            return run.served
        for leg in shadows:
            self._shadow_leg(leg, texts, k, flt, [[h.id for h in hs] for hs in run.served],
                             event)
        if shadows:  # a synchronous read waits anyway: its comparisons are written now
            _shadow.runner_for(self.ws, self.collection).flush(timeout=0)
        if not observers:
            return run.served
        self._tell(observers, event)
        if sync and event.changed:
            again = self.prepare(route, routing_key=routing_key)
            return self._run(again, texts, k, flt, hook, top_n).served
        return run.served

    def _tell(self, observers: Sequence[ReadObserver], event: SearchEvent) -> None:
        for obs in observers:
            try:
                obs.on_search(event)
            except Exception:  # noqa: BLE001 - an observer never fails a read
                log.warning("read observer %r failed on a search of %s", obs,
                            self.collection, exc_info=True)

    # -- shadow legs ------------------------------------------------------------------

    def _shadow_leg(self, leg: PreparedLeg, texts: list[str], k: int, flt: Filter | None,
                    served: list[list[str]], event: SearchEvent) -> None:
        """Run one shadow leg, record its comparison with ``served``, add it to ``event``.
        A failure is counted and logged, never raised."""
        runner = _shadow.runner_for(self.ws, self.collection)
        ns = leg.namespace
        t0 = time.perf_counter()
        try:
            qv = self._vectors(leg, texts)
            hits = label_hits(leg.backend.search(ns.name, qv, k, filter=flt), ns)
        except Exception:  # noqa: BLE001 - the shadow side never fails the read
            log.warning("shadow leg %s of %s failed", ns.name, self.collection, exc_info=True)
            runner.add(ns.name, {"errors": 1.0}, comparisons=1)
            return
        latency = time.perf_counter() - t0
        runner.record(ns.name, [_shadow.compare_ids(s, [h.id for h in got], k)
                                for s, got in zip(served, hits, strict=True)], k, latency)
        event.legs.append(LegResult(leg.leg, hits))

    def _shadow_async(self, shadows: list[PreparedLeg], texts: list[str], k: int,
                      flt: Filter | None, served: list[list[Hit]], event: SearchEvent,
                      observers: list[ReadObserver]) -> None:
        runner = _shadow.runner_for(self.ws, self.collection)
        # the worker compares the ids served (its own copy: the caller may modify its hits)
        snapshot = [[h.id for h in hits] for hits in served]

        def job() -> None:
            for leg in shadows:
                self._shadow_leg(leg, texts, k, flt, snapshot, event)
            if observers:
                self._tell(observers, event)

        if not runner.submit(job, shadows[0].namespace.name) and observers:
            self._tell(observers, event)  # dropped: still a read to count

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait for this collection's queued shadow reads (and their events) to finish and
        write the shadow counters. True when everything drained within ``timeout``."""
        return _shadow.runner_for(self.ws, self.collection).flush(timeout)

    # -- executing a plan ---------------------------------------------------------------

    def _vectors(self, leg: PreparedLeg, texts: list[str]) -> Matrix:
        """The query vectors of ``leg``: embedded by its own space (fingerprint rule), or,
        for an adapter leg, embedded by ``leg.embed_space`` and mapped by the adapter."""
        if leg.leg.adapter is None:
            return self.embedder(leg).embed_queries(texts)
        return self._adapted(leg, texts)[0]

    def _adapted(self, leg: PreparedLeg, texts: list[str]) -> tuple[Matrix, QueryAdapter]:
        """An adapter leg's mapped query vectors and the adapter that mapped them."""
        assert leg.leg.adapter is not None
        # only adapter routes need the adapters package (engineer ADAPTERS' contract)
        query_adapter = importlib.import_module("vecver.adapters").query_adapter
        emb = self.ws.embedder(leg.leg.embed_space)
        adapter: QueryAdapter = query_adapter(self.ws, leg.leg.adapter)
        ns = leg.namespace
        if adapter.source_fingerprint != emb.space.fingerprint:
            raise FingerprintMismatch(emb.space.label, f"adapter {leg.leg.adapter}",
                                      adapter.source_fingerprint, emb.space.fingerprint)
        if adapter.target_fingerprint != ns.fingerprint:
            raise FingerprintMismatch(ns.space_label, ns.name, ns.fingerprint,
                                      adapter.target_fingerprint)
        qv = emb.embed_queries(texts)
        return np.asarray(adapter.transform(qv), dtype=np.float32), adapter

    def _run(self, prep: PreparedPlan, texts: list[str], k: int, flt: Filter | None,
             hook: RerankHook | None, top_n: int) -> _Run:
        plan = prep.plan
        serving = [leg for leg in prep.legs if leg.leg.role == "serve"]
        rescorers = [leg for leg in prep.legs if leg.leg.role == "rescore"]
        want = max(k, top_n) if hook is not None else k
        settings = self.settings
        legs: list[LegResult] = []
        missing: dict[str, list[str]] = {}
        if plan.fusion is not None:
            depth = min(dual_depth(want, plan.fusion, settings.rrf_k,
                                   settings.dual_candidates), max(settings.max_k, want))
            per = []
            for leg in serving:
                hits = self._search_leg(leg, texts, depth, flt)
                legs.append(LegResult(leg.leg, hits))
                per.append(hits)
            unheld = self._unheld(serving, per)
            served = [
                fuse([RankedList(leg.namespace.space_label, p[qi])
                      for leg, p in zip(serving, per, strict=True)],
                     want, plan.fusion, rrf_k=settings.rrf_k, unheld=unheld)
                for qi in range(len(texts))
            ]
            for leg, lacks in zip(serving, unheld, strict=True):
                if lacks:
                    shown = [h.id for hits in served for h in hits[:k] if h.id in lacks]
                    if shown:
                        missing[leg.namespace.name] = list(dict.fromkeys(shown))
        elif rescorers:
            depth = plan.depth if plan.depth is not None else settings.rerank_depth
            if depth <= want:
                raise InvalidArgument(
                    "rerank depth K'", depth,
                    f"more than k={want} (use rerank:K with K > {want})")
            base = self._search_leg(serving[0], texts, depth, flt)
            legs.append(LegResult(serving[0].leg, base))
            served = self._rescore(base, texts, rescorers[0], serving[0], missing)
            legs.append(LegResult(rescorers[0].leg, served))
        else:
            served = self._search_leg(serving[0], texts, want, flt)
            legs.append(LegResult(serving[0].leg, served))
        if hook is not None:
            served = apply_hook(hook, texts, served, top_n, k)
        elif want != k or plan.fusion is not None or rescorers:
            served = [hits[:k] for hits in served]
        return _Run(served, legs, missing)

    def _unheld(self, legs: Sequence[PreparedLeg], per: Sequence[list[list[Hit]]]
                ) -> list[frozenset[str] | None]:
        """For each serving leg of a fusion: the listed ids its namespace does not hold,
        when it is still being built (one fetch of ids, no vectors); None for a complete
        namespace (ready, active, retired)."""
        union = list(dict.fromkeys(h.id for p in per for hits in p for h in hits))
        out: list[frozenset[str] | None] = []
        for leg in legs:
            if leg.namespace.state != "building" or not union:
                out.append(None)
                continue
            held = leg.backend.fetch(leg.namespace.name, union)
            out.append(frozenset(i for i in union if i not in held))
        return out

    def _search_leg(self, leg: PreparedLeg, texts: list[str], depth: int,
                    flt: Filter | None) -> list[list[Hit]]:
        ns = leg.namespace
        if leg.leg.adapter is None:
            return label_hits(leg.backend.search(ns.name, self._vectors(leg, texts), depth,
                                                 filter=flt), ns)
        qv, adapter = self._adapted(leg, texts)
        prior = getattr(adapter, "prior", None)
        if prior is None:
            return label_hits(leg.backend.search(ns.name, qv, depth, filter=flt), ns)
        hits = leg.backend.search(ns.name, qv, prior.fetch_depth(depth), filter=flt)
        return label_hits(prior.rerank_hits(hits, depth), ns)

    def _rescore(self, base: list[list[Hit]], texts: list[str], cand: PreparedLeg,
                 active: PreparedLeg, missing: dict[str, list[str]]) -> list[list[Hit]]:
        """``rerank``: each query's ``base`` hits rescored in the candidate space (see the
        module docstring). ``missing`` receives the ids missing or stale there."""
        emb = self.embedder(cand)
        metric = emb.space.spec.metric
        qv = np.asarray(emb.embed_queries(texts), dtype=np.float32)
        cns = cand.namespace
        ids = list(dict.fromkeys(h.id for hits in base for h in hits))
        stored = cand.backend.fetch(cns.name, ids, with_vectors=True) if ids else {}
        budget = self.settings.rerank_max_sync_embeds
        act_label, cand_label = active.namespace.space_label, cns.space_label
        lost: list[str] = []
        out: list[list[Hit]] = []
        for qi, hits in enumerate(base):
            vecs: dict[str, np.ndarray] = {}
            stamps: dict[str, Any] = {}
            need: list[Hit] = []
            for h in hits:
                r = stored.get(h.id)
                fresh = r is not None and r.vector is not None and (
                    h.stamp is None or r.stamp.source_hash == h.stamp.source_hash)
                if fresh and r is not None and r.vector is not None:
                    vecs[h.id] = np.asarray(r.vector, dtype=np.float32)
                    stamps[h.id] = r.stamp
                else:
                    need.append(h)
                    lost.append(h.id)
            now = [h for h in need if h.text and h.text.strip()][:budget]
            if now:
                made = emb.embed_documents([h.text or "" for h in now], ids=[h.id for h in now])
                for h, v in zip(now, made, strict=True):
                    vecs[h.id] = np.asarray(v, dtype=np.float32)
                    stamps[h.id] = None
            got = [h for h in hits if h.id in vecs]
            rest = [h for h in hits if h.id not in vecs]
            scores = (_score(metric, qv[qi], np.stack([vecs[h.id] for h in got]))
                      if got else np.zeros(0, dtype=np.float32))
            act_rank = {h.id: n for n, h in enumerate(hits, 1)}
            order = sorted(range(len(got)), key=lambda i: (-float(scores[i]),
                                                          act_rank[got[i].id]))
            row: list[Hit] = []
            for new_rank, i in enumerate(order, 1):
                h = got[i]
                row.append(replace(h, score=float(scores[i]), space=cand_label,
                                   namespace=cns.name, stamp=stamps[h.id],
                                   metadata=dict(h.metadata),
                                   ranks={act_label: act_rank[h.id], cand_label: new_rank}))
            for h in rest:
                row.append(replace(h, metadata=dict(h.metadata),
                                   ranks={act_label: act_rank[h.id]}))
            out.append(row)
        if lost:
            missing[cns.name] = list(dict.fromkeys(lost))
        return out

    def search_vectors(
        self,
        vectors: Matrix,
        k: int,
        *,
        space: str,
        filter: Filter | Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        """Search with precomputed query vectors of ``space`` (rows of a ``(q, d)`` matrix,
        or one vector). The space's current fingerprint must be its namespace's
        (``FingerprintMismatch``); the backend checks dimension, finiteness and, for a
        cosine space, that no query is all zeros. Observers are not told (no query text)."""
        k = validate_k(k)
        flt = check_filter(filter)
        if not isinstance(space, str):
            raise InvalidInput(f"space must be a space label, got {space!r}")
        prep = self.prepare(f"space:{space}")
        leg = prep.single
        assert leg is not None  # a space route reads one namespace
        self.embedder(leg)  # the fingerprint rule, for vectors made elsewhere
        ns = leg.namespace
        return label_hits(leg.backend.search(ns.name, np.asarray(vectors), k, filter=flt), ns)

    def embedder(self, leg: PreparedLeg) -> SpaceEmbedder:
        """The embedder that embeds queries for ``leg``, after checking the fingerprint
        rule against its namespace (once per namespace)."""
        ns = leg.namespace
        key = (ns.name, ns.fingerprint, leg.leg.embed_space)
        emb = self._checked.get(key)
        if emb is not None:
            return emb
        emb = self.ws.embedder(leg.leg.embed_space)
        if leg.leg.query_space is None and emb.space.fingerprint != ns.fingerprint:
            raise FingerprintMismatch(ns.space_label, ns.name, ns.fingerprint,
                                      emb.space.fingerprint)
        self._checked[key] = emb
        return emb

    # -- reads by id ------------------------------------------------------------------

    def get(self, ids: Sequence[str], *, route: str | Route = "active") -> dict[str, Record]:
        """The stored records of ``ids`` in the namespace ``route`` reads (missing ids are
        absent from the result, a repeated id is returned once). ``ids`` is a list (or
        other collection) of ids: one string is refused (``InvalidArgument``) rather than
        read as one id per character; a bad id is ``InvalidId``."""
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise InvalidArgument("ids", ids, "a list of ids" + (
                f" (for one id, pass [{ids!r}])" if isinstance(ids, (str, bytes)) else ""))
        leg = self._single_leg(route)
        return leg.backend.fetch(leg.namespace.name, list(ids))

    def count(self, route: str | Route = "active") -> int:
        """How many documents the namespace ``route`` reads holds."""
        leg = self._single_leg(route)
        return leg.backend.count(leg.namespace.name)

    def _single_leg(self, route: str | Route) -> PreparedLeg:
        prep = self.prepare(route)
        if prep.single is None:
            raise InvalidInput(f"route {prep.plan.route} reads several namespaces, not one")
        return prep.single
