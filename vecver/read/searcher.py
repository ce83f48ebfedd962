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
- **input rules** — queries are a list of non-empty strings (one string is refused by
  ``search_many``); ``k`` is an ``int`` of at least 1 (a ``bool`` is not a count); a
  filter is ``None`` (no filter), a :class:`~vecver.filters.Filter` or a mapping (see
  :mod:`vecver.filters`); each is refused with a typed ``InvalidInput`` before anything
  is embedded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import Backend
from ..backends.validate import validate_k
from ..embedders import SpaceEmbedder
from ..errors import FingerprintMismatch, InvalidArgument, InvalidInput, StateError
from ..filters import Filter
from ..store import NamespaceRow
from ..types import Hit, Matrix, Record
from .routes import CollectionView, Leg, ReadPlan, Route, parse_route

if TYPE_CHECKING:
    from ..runtime.workspace import Workspace

#: how often a view is re-read when the generation moves while it is being read
_VIEW_ATTEMPTS = 8


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


class Searcher:
    """The read path of one collection of a workspace. Thread-safe; cheap to keep.

    Every public method resolves its route against the collection's current manifest
    generation (see the module docstring); errors: ``UnknownCollection``, ``StateError``
    (no candidate space), ``UnknownSpace`` (``space:LABEL`` names no live space),
    ``InvalidInput`` (bad route, queries, ``k`` or filter), ``FingerprintMismatch``, and
    what the backend raises (``DimensionMismatch``, ``NonFiniteVector``, ``ZeroVector``
    for bad query vectors)."""

    def __init__(self, ws: Workspace, collection: str) -> None:
        self.ws = ws
        self.collection = collection
        # (view, plans of that view's generation), replaced as one value
        self._state: tuple[CollectionView, dict[str | Route, PreparedPlan]] | None = None
        # (namespace, its fingerprint, query space) -> the embedder checked against it
        self._checked: dict[tuple[str, str, str], SpaceEmbedder] = {}
        self._lock = threading.Lock()

    # -- routes -----------------------------------------------------------------------

    def view(self) -> CollectionView:
        """The collection's namespaces at the manifest's current generation."""
        return self._current()[0]

    def plan(self, route: str | Route = "active") -> ReadPlan:
        """The read plan ``route`` resolves to now."""
        return self.prepare(route).plan

    def route(self, route: str | Route = "active") -> NamespaceRow:
        """The one namespace ``route`` reads now. Raises ``InvalidInput`` for a route that
        reads several (such routes are executed by :meth:`search_many` only)."""
        prep = self.prepare(route)
        if prep.single is None:
            raise InvalidInput(
                f"route {prep.plan.route} reads {len(prep.legs)} namespaces, not one"
            )
        return prep.single.namespace

    def prepare(self, route: str | Route = "active") -> PreparedPlan:
        """The plan of ``route`` now, bound to backend instances (cached per generation,
        by the route as given, for routes whose plan depends on the view alone)."""
        view, cache = self._current()
        try:
            prep = cache.get(route)
            hashable = True
        except TypeError:  # an unhashable value: parse_route says what is wrong with it
            prep, hashable = None, False
        if prep is not None:
            return prep
        r = parse_route(route)
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

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        route: str | Route = "active",
        filter: Filter | Mapping[str, Any] | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` nearest documents to each query along ``route``, best first; every
        hit names its space and namespace. Each query is embedded by the embedder of the
        space it is compared with."""
        texts = check_queries(queries)
        k = validate_k(k)
        flt = check_filter(filter)
        prep = self.prepare(route)
        return self._execute(prep, k, flt, lambda leg: self.embedder(leg).embed_queries(texts))

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
        cosine space, that no query is all zeros."""
        k = validate_k(k)
        flt = check_filter(filter)
        if not isinstance(space, str):
            raise InvalidInput(f"space must be a space label, got {space!r}")
        prep = self.prepare(f"space:{space}")

        def given(leg: PreparedLeg) -> Matrix:
            self.embedder(leg)  # the fingerprint rule, for vectors made elsewhere
            return np.asarray(vectors)

        return self._execute(prep, k, flt, given)

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

    def _execute(
        self,
        prep: PreparedPlan,
        k: int,
        flt: Filter | None,
        vectors_for: Callable[[PreparedLeg], Matrix],
    ) -> list[list[Hit]]:
        leg = prep.single
        if leg is None:
            # fusion (dual), shadow legs and adapters are executed here when they come
            raise InvalidInput(
                f"route {prep.plan.route} needs a read plan this version of vecver cannot "
                "execute (several legs, a shadow leg or an adapter)"
            )
        qv = vectors_for(leg)
        ns = leg.namespace
        return label_hits(leg.backend.search(ns.name, qv, k, filter=flt), ns)

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
