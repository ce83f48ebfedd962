"""The ``adapter`` route: embed queries with the NEW model, map them into the OLD space
with the collection's enabled adapter, search the old namespace.

String forms (registered with :func:`vecver.read.routes.register_route` on import):

- ``adapter`` — queries of the candidate space (the newest building or ready one),
  mapped into the active space;
- ``adapter:NEW`` — queries of space ``NEW`` (which needs no namespace at all: an
  adapter can stand in for a migration), mapped into the active space;
- ``adapter:NEW->OLD`` — queries of ``NEW`` mapped into the live space ``OLD``.

The plan is one ``serve`` leg on the old space's namespace with ``query_space = NEW``
and ``adapter`` = :func:`adapter_ref` (collection, NEW, OLD): a name, resolved by
:func:`vecver.adapters.query_adapter` to the adapter enabled *now* (so refitting or
enabling another version needs no new plan), which also applies the retention gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInput
from .routes import CollectionView, Leg, ReadPlan, Route, register_route

PREFIX = "adapter"


def adapter_ref(collection: str, source: str, target: str) -> str:
    """The reference an adapter leg carries: ``COLLECTION/NEW->OLD``."""
    return f"{collection}/{source}->{target}"


def parse_adapter_ref(ref: str) -> tuple[str, str, str]:
    """(collection, source, target) of an :func:`adapter_ref`; ``InvalidInput`` for
    anything else."""
    coll, sep, pair = ref.partition("/")
    src, arrow, tgt = pair.partition("->")
    if not (sep and arrow and coll and src and tgt):
        raise InvalidInput(f"not an adapter reference: {ref!r}",
                           hint="expected COLLECTION/NEW->OLD")
    return coll, src, tgt


@dataclass(frozen=True)
class AdapterRoute(Route):
    """Queries of space ``source`` (None: the candidate space) mapped by the enabled
    adapter into space ``target`` (None: the active space), searched there."""

    source: str | None = None
    target: str | None = None

    def plan(self, view: CollectionView) -> ReadPlan:
        """One adapter leg. Raises ``StateError`` when ``source`` is None and there is no
        candidate, ``UnknownSpace`` when ``target`` names no live space, ``InvalidInput``
        when both sides are the same space."""
        ns = view.active if self.target is None else view.live_space(self.target)
        src = self.source if self.source is not None else view.candidate().space_label
        if src == ns.space_label:
            raise InvalidInput(
                f"route {self}: queries of space {src!r} need no adapter to search it",
                hint="use route `active` or `space:LABEL`",
            )
        leg = Leg(ns, "serve", query_space=src,
                  adapter=adapter_ref(view.collection, src, ns.space_label))
        return ReadPlan(self, (leg,))

    def __str__(self) -> str:
        if self.source is None and self.target is None:
            return PREFIX
        if self.target is None:
            return f"{PREFIX}:{self.source}"
        return f"{PREFIX}:{self.source or ''}->{self.target}"


def parse(spec: str) -> AdapterRoute:
    """The route of a string form (module docstring); ``InvalidInput`` for another."""
    if spec == PREFIX:
        return AdapterRoute()
    head, sep, rest = spec.partition(":")
    if head != PREFIX or not sep or not rest:
        raise InvalidInput(f"bad adapter route {spec!r}",
                           hint="use adapter, adapter:NEW or adapter:NEW->OLD")
    src, arrow, tgt = rest.partition("->")
    if arrow and not tgt:
        raise InvalidInput(f"bad adapter route {spec!r}: no target space after '->'",
                           hint="use adapter:NEW->OLD")
    if not src and not arrow:
        raise InvalidInput(f"bad adapter route {spec!r}", hint="use adapter:NEW")
    return AdapterRoute(src or None, tgt or None)


register_route(PREFIX, parse)
