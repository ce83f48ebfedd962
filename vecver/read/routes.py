"""Read routes: which namespaces a search reads, and in which role.

A :class:`Route` is a small immutable value (``Active()``, ``Candidate()``,
``SpaceRoute("v2")``). Given a :class:`CollectionView` — the collection's namespaces at one
manifest generation — it returns a :class:`ReadPlan`: the namespaces to read, each as a
:class:`Leg` with a role. The searcher (:mod:`vecver.read.searcher`) executes plans; the
callers of ``Collection.search`` only ever name a route, so a new kind of route changes
neither them nor the searcher's interface.

How the routes still to come fit the shape (none is implemented here):

- ``dual`` — two ``serve`` legs (active and candidate) and ``ReadPlan.fusion`` naming how
  their hits are merged (reciprocal rank fusion by default), deduplicated by id;
- ``shadow`` — one ``serve`` leg and one ``shadow`` leg: the shadow leg is queried too and
  its hits are recorded, never returned;
- ``canary(p)`` — a route whose plan is drawn at random per call (``cacheable = False``),
  serving the candidate for a fraction ``p`` of the calls;
- ``adapter`` — a leg whose ``query_space`` differs from its namespace's space and names
  the ``adapter`` that maps query vectors from one geometry into the other.

Strings are still accepted everywhere a route is (:func:`parse_route`): ``active``,
``candidate`` and ``space:LABEL``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..errors import InvalidInput, StateError, UnknownSpace
from ..lifecycle import LIVE_STATES
from ..store import NamespaceRow

#: what a leg of a plan is for: ``serve`` (its hits are returned) or ``shadow`` (queried
#: and recorded, never returned)
Role = Literal["serve", "shadow"]

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


ACTIVE = Active()
CANDIDATE = Candidate()

#: the string forms :func:`parse_route` accepts, for help texts
ROUTE_FORMS: Sequence[str] = ("active", "candidate", "space:<label>")


def parse_route(route: str | Route) -> Route:
    """A route from its string form (``active``, ``candidate``, ``space:LABEL``), or the
    route itself. Raises ``InvalidInput`` ("unknown route") for anything else; an unknown
    label in ``space:LABEL`` is only found when the route is resolved (``UnknownSpace``)."""
    if isinstance(route, str):  # the common case first
        if route == "active":
            return ACTIVE
        if route == "candidate":
            return CANDIDATE
        if route.startswith("space:"):
            return SpaceRoute(route[len("space:"):])
    elif isinstance(route, Route):
        return route
    raise InvalidInput(
        f"unknown route {route!r}", hint="use " + ", ".join(ROUTE_FORMS)
    )
