"""Read routes: which namespaces a search reads, and in which role.

A :class:`Route` is a small immutable value (``Active()``, ``Dual("rrf")``,
``Canary(0.1)``). Given a :class:`CollectionView` — the collection's namespaces at one
manifest generation — it returns a :class:`ReadPlan`: the namespaces to read, each as a
:class:`Leg` with a role. The searcher (:mod:`vecver.read.searcher`) executes plans; the
callers of ``Collection.search`` only ever name a route, so a new kind of route changes
neither them nor the searcher's interface.

The routes:

- ``active`` (default), ``candidate`` (the newest building or ready space),
  ``space:LABEL`` — one ``serve`` leg;
- ``dual`` / ``dual:rrf`` / ``dual:zscore`` / ``dual:minmax`` — two ``serve`` legs
  (active and candidate, each query embedded by its own space's embedder) and
  ``ReadPlan.fusion`` naming how their hits are merged (:mod:`vecver.read.fusion`);
- ``shadow`` — a ``serve`` leg (active) and a ``shadow`` leg (candidate): the shadow leg
  is queried off the serving path and compared with what was served, never returned;
- ``canary:P`` — for a fraction ``P`` of routing keys the candidate, for the rest the
  active space, chosen by :meth:`Route.select` from a hash of (collection, key): sticky
  per key, and raising ``P`` only moves keys from active to candidate;
- ``rerank`` / ``rerank:K`` — a ``serve`` leg (active, top ``K`` hits) and a ``rescore``
  leg (candidate) whose vectors rescore them;
- ``adapter[...]`` — registered by :mod:`vecver.adapters` with :func:`register_route`: a
  leg whose ``query_space`` differs from its namespace's space and names the ``adapter``
  that maps query vectors from one geometry into the other.

Every route needing a candidate raises ``StateError`` when the collection has none.
Strings are accepted everywhere a route is (:func:`parse_route`).
"""

from __future__ import annotations

import hashlib
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..errors import (
    InvalidArgument,
    InvalidInput,
    RoutingKeyRequired,
    StateError,
    UnknownRoute,
    UnknownSpace,
)
from ..lifecycle import LIVE_STATES
from ..store import NamespaceRow

#: what a leg of a plan is for: ``serve`` (its hits are returned), ``shadow`` (queried
#: and recorded, never returned) or ``rescore`` (its stored vectors rescore the serving
#: leg's hits: ``rerank``)
Role = Literal["serve", "shadow", "rescore"]

#: the fusion methods of ``dual``
FUSIONS: tuple[str, ...] = ("rrf", "zscore", "minmax")

#: states a candidate space can be in
CANDIDATE_STATES = ("building", "ready")


@dataclass(frozen=True)
class CollectionView:
    """The namespaces of one collection as the manifest held them at ``generation``.

    ``namespaces`` is every row (dropped and failed ones included), oldest first;
    ``active`` is the one the collection's alias points at. A view is a snapshot: the
    searcher re-reads it whenever the collection's generation moves (a cutover, a
    rollback, a state change, a new migration)."""

    collection: str
    generation: int
    active: NamespaceRow
    namespaces: tuple[NamespaceRow, ...]

    def live(self) -> list[NamespaceRow]:
        """The namespaces that receive writes and can be read (building, ready, active,
        retired)."""
        return [n for n in self.namespaces if n.state in LIVE_STATES]

    def candidate(self) -> NamespaceRow:
        """The newest building or ready namespace. Raises ``StateError`` (with a hint to
        start a migration) when there is none."""
        cands = [n for n in self.namespaces if n.state in CANDIDATE_STATES]
        if not cands:
            raise StateError(
                f"collection {self.collection!r} has no candidate space",
                hint=f"start one with `vecver migrate {self.collection} --to SPACE`",
            )
        return max(cands, key=lambda n: n.created_at)

    def live_space(self, label: str) -> NamespaceRow:
        """The live namespace of space ``label``. Raises ``UnknownSpace`` (listing the live
        spaces) when the space has none."""
        for n in self.namespaces:
            if n.space_label == label and n.state in LIVE_STATES:
                return n
        raise UnknownSpace(label, [n.space_label for n in self.live()])


@dataclass(frozen=True)
class Leg:
    """One namespace a plan reads.

    ``query_space`` is the space whose embedder turns the query text into a vector; None
    means the namespace's own space (every route so far). ``adapter`` names a trained
    mapping from ``query_space`` into the namespace's space (adapter routes, to come)."""

    namespace: NamespaceRow
    role: Role = "serve"
    query_space: str | None = None
    adapter: str | None = None

    @property
    def embed_space(self) -> str:
        """The label of the space that embeds the query for this leg."""
        return self.query_space or self.namespace.space_label


@dataclass(frozen=True)
class ReadPlan:
    """What one search reads: the legs, and how the serving legs' hits are combined.

    Invariant: at least one ``serve`` leg; ``fusion`` (a method name such as ``"rrf"``) is
    set exactly when there are several. Routes build plans; the searcher executes them."""

    route: Route
    legs: tuple[Leg, ...]
    fusion: str | None = None
    #: how many hits the serving leg is asked for (``rerank``: K'); None: the searcher's
    #: rule (``k``, or the fusion depth)
    depth: int | None = None

    def __post_init__(self) -> None:
        n_serve = sum(1 for leg in self.legs if leg.role == "serve")
        if n_serve == 0:
            raise ValueError(f"read plan of route {self.route} has no serving leg")
        if (n_serve > 1) != (self.fusion is not None):
            raise ValueError(
                f"read plan of route {self.route}: fusion must be named exactly when several "
                "legs serve"
            )

    @property
    def serving(self) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.role == "serve")

    @property
    def shadows(self) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.role == "shadow")

    @property
    def rescorers(self) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.role == "rescore")

    @property
    def single(self) -> NamespaceRow | None:
        """The one namespace the plan reads, when it reads exactly one (no fusion, no
        shadow, no adapter); None otherwise."""
        if len(self.legs) == 1 and self.legs[0].query_space is None \
                and self.legs[0].adapter is None:
            return self.legs[0].namespace
        return None

    def namespaces(self) -> list[NamespaceRow]:
        """Every namespace the plan reads, in leg order."""
        return [leg.namespace for leg in self.legs]


class Route(ABC):
    """Decides, from a collection's current view, what a search reads.

    A route is an immutable, hashable value. ``plan`` must be cheap and must not touch
    storage: it runs on every search whose view is new, and on every search when the route
    is not ``cacheable`` (a plan drawn at random). ``str(route)`` is its string form (what
    :func:`parse_route` accepts, where there is one)."""

    #: the plan depends on the view alone, so the searcher may reuse it for one generation
    cacheable: ClassVar[bool] = True

    @abstractmethod
    def plan(self, view: CollectionView) -> ReadPlan:
        """The read plan for ``view``. Raises ``StateError`` or ``UnknownSpace`` when the
        collection has nothing this route can read."""

    def select(self, view: CollectionView, routing_key: str | None) -> Route:
        """The route that serves the caller with ``routing_key`` (a user or session id)
        now: the route itself, except for routes that split traffic (``canary``). Must be
        cheap, deterministic and must not touch storage."""
        return self


def _one(route: Route, ns: NamespaceRow) -> ReadPlan:
    return ReadPlan(route, (Leg(ns),))


@dataclass(frozen=True)
class Active(Route):
    """The active space: what the collection's alias points at (the default)."""

    def plan(self, view: CollectionView) -> ReadPlan:
        return _one(self, view.active)

    def __str__(self) -> str:
        return "active"


@dataclass(frozen=True)
class Candidate(Route):
    """The newest building or ready space (evaluation, shadow traffic by hand)."""

    def plan(self, view: CollectionView) -> ReadPlan:
        return _one(self, view.candidate())

    def __str__(self) -> str:
        return "candidate"


@dataclass(frozen=True)
class SpaceRoute(Route):
    """The live space with this label (``space:LABEL``)."""

    label: str

    def __post_init__(self) -> None:
        if not isinstance(self.label, str):
            raise InvalidInput(
                f"a space route needs a space label, got {self.label!r}",
                hint="use space:<label>",
            )

    def plan(self, view: CollectionView) -> ReadPlan:
        return _one(self, view.live_space(self.label))

    def __str__(self) -> str:
        return f"space:{self.label}"


def _check_fusion(method: object) -> str:
    if method not in FUSIONS:
        raise InvalidArgument("fusion", method, "one of " + ", ".join(FUSIONS))
    return str(method)


@dataclass(frozen=True)
class Dual(Route):
    """Both the active and the candidate space, fused (``dual``, ``dual:METHOD``).

    ``fusion`` is ``rrf`` (reciprocal rank fusion, the default), ``zscore`` or
    ``minmax`` (score normalisation); hits are deduplicated by document id (see
    :mod:`vecver.read.fusion` for how a document found in both is scored)."""

    fusion: str = "rrf"

    def __post_init__(self) -> None:
        _check_fusion(self.fusion)

    def plan(self, view: CollectionView) -> ReadPlan:
        cand = view.candidate()
        return ReadPlan(self, (Leg(view.active), Leg(cand)), fusion=self.fusion)

    def __str__(self) -> str:
        return "dual" if self.fusion == "rrf" else f"dual:{self.fusion}"


@dataclass(frozen=True)
class Shadow(Route):
    """Serve the active space; query the candidate too, off the serving path, and record
    how its hits compare (``shadow``). The served hits are exactly ``active``'s."""

    def plan(self, view: CollectionView) -> ReadPlan:
        cand = view.candidate()
        return ReadPlan(self, (Leg(view.active), Leg(cand, role="shadow")))

    def __str__(self) -> str:
        return "shadow"


def canary_bucket(collection: str, routing_key: str) -> float:
    """The point in [0, 1) that a routing key falls on for ``collection``: a hash of both,
    the same in every process and version (blake2b)."""
    h = hashlib.blake2b(f"{collection}\x00{routing_key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


@dataclass(frozen=True)
class Canary(Route):
    """A fraction ``p`` of routing keys read the candidate, the others the active space
    (``canary:P``). The choice is :func:`canary_bucket` ``< p``: sticky per key, the same
    in every process, and raising ``p`` only moves keys from active to candidate. Needs
    a routing key (``RoutingKeyRequired``) and a candidate (``StateError``, whatever the
    key), so that a missing candidate is found on the first call, not the unlucky one."""

    #: None (bare ``canary``): the configured ``[read] canary_p``, filled in by the searcher
    p: float | None = None

    def __post_init__(self) -> None:
        p = self.p
        if p is None:
            return
        if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p) \
                or not 0.0 <= p <= 1.0:
            raise InvalidArgument("canary fraction p", p, "a number between 0 and 1")

    def select(self, view: CollectionView, routing_key: str | None) -> Route:
        if routing_key is None:
            raise RoutingKeyRequired(str(self))
        if not isinstance(routing_key, str) or not routing_key:
            raise InvalidArgument("routing_key", routing_key, "a non-empty string")
        if self.p is None:
            raise InvalidInput("bare canary has no fraction here",
                               hint="use canary:<p>, or search through a collection")
        view.candidate()  # StateError when there is none, for every key alike
        if canary_bucket(view.collection, routing_key) < self.p:
            return CANDIDATE
        return ACTIVE

    def plan(self, view: CollectionView) -> ReadPlan:
        raise RoutingKeyRequired(str(self))

    def __str__(self) -> str:
        return "canary" if self.p is None else f"canary:{self.p:g}"


@dataclass(frozen=True)
class Rerank(Route):
    """The active space's top ``depth`` hits (K'; None: the configured
    ``[read] rerank_depth``), rescored by their vectors in the candidate space
    (``rerank``, ``rerank:K``): fetched where stored, embedded on the spot (within a
    per-query bound) where missing or stale."""

    depth: int | None = None

    def __post_init__(self) -> None:
        d = self.depth
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 2):
            raise InvalidArgument("rerank depth K'", d, "an integer of at least 2")

    def plan(self, view: CollectionView) -> ReadPlan:
        cand = view.candidate()
        return ReadPlan(self, (Leg(view.active), Leg(cand, role="rescore")),
                        depth=self.depth)

    def __str__(self) -> str:
        return "rerank" if self.depth is None else f"rerank:{self.depth}"


ACTIVE = Active()
CANDIDATE = Candidate()
DUAL = Dual()
SHADOW = Shadow()

#: the string forms :func:`parse_route` accepts, for help texts (registered prefixes are
#: added by :func:`route_forms`)
ROUTE_FORMS: Sequence[str] = (
    "active", "candidate", "space:<label>", "dual[:rrf|zscore|minmax]", "shadow",
    "canary[:<p>]", "rerank[:<K>]",
)

_BUILTIN_PREFIXES = frozenset({"active", "candidate", "space", "dual", "shadow", "canary",
                               "rerank"})
_registered: dict[str, Callable[[str], Route]] = {}
_registry_lock = threading.Lock()


def register_route(prefix: str, factory: Callable[[str], Route]) -> None:
    """Make :func:`parse_route` accept ``PREFIX`` and ``PREFIX:...``: ``factory`` gets the
    whole string and returns the route (or raises ``InvalidInput`` for a bad one).

    Registering the same factory again is a no-op; another factory for a prefix already
    taken, a built-in prefix, or a prefix that is not a plain word is ``InvalidInput``."""
    if not isinstance(prefix, str) or not prefix.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgument("route prefix", prefix, "a word (letters, digits, - or _)")
    if prefix in _BUILTIN_PREFIXES:
        raise InvalidInput(f"route prefix {prefix!r} is built in and cannot be registered")
    if not callable(factory):
        raise InvalidArgument("route factory", factory, "a callable (spec) -> Route")
    with _registry_lock:
        have = _registered.get(prefix)
        if have is not None and have is not factory:
            raise InvalidInput(f"route prefix {prefix!r} is already registered",
                               hint="pick another prefix")
        _registered[prefix] = factory


def unregister_route(prefix: str) -> bool:
    """Undo :func:`register_route` (for tests and plugins that unload); True when the
    prefix was registered."""
    with _registry_lock:
        return _registered.pop(prefix, None) is not None


def route_forms() -> list[str]:
    """Every string form :func:`parse_route` accepts now (built-in and registered)."""
    return [*ROUTE_FORMS, *(f"{p}[:...]" for p in sorted(_registered))]


def _int_suffix(route: str, rest: str) -> int:
    if not rest.isdigit():
        raise UnknownRoute(route, route_forms())
    return int(rest)


def _float_suffix(route: str, rest: str) -> float:
    try:
        return float(rest)
    except ValueError:
        raise UnknownRoute(route, route_forms()) from None


def parse_route(route: str | Route) -> Route:
    """A route from its string form (see :data:`ROUTE_FORMS` and :func:`register_route`),
    or the route itself.

    Raises ``UnknownRoute`` (an ``InvalidInput``) for a string no route parses,
    ``InvalidArgument`` for a known route with a bad parameter (``canary:2``,
    ``dual:max``, ``rerank:1``); an unknown label in ``space:LABEL`` is only found when
    the route is resolved (``UnknownSpace``)."""
    if isinstance(route, str):  # the common case first
        if route == "active":
            return ACTIVE
        if route == "candidate":
            return CANDIDATE
        if route.startswith("space:"):
            return SpaceRoute(route[len("space:"):])
        head, sep, rest = route.partition(":")
        if head == "dual":
            return Dual(rest) if sep else DUAL
        if head == "shadow" and not sep:
            return SHADOW
        if head == "canary":
            return Canary(_float_suffix(route, rest)) if sep else Canary()
        if head == "rerank":
            return Rerank(_int_suffix(route, rest)) if sep else Rerank()
        factory = _registered.get(head)
        if factory is not None:
            made = factory(route)
            if not isinstance(made, Route):
                raise InvalidInput(f"the factory of route prefix {head!r} returned "
                                   f"{type(made).__name__}, not a Route")
            return made
    elif isinstance(route, Route):
        return route
    raise UnknownRoute(route, route_forms())
