"""The lifecycle of a namespace (one space inside one collection), as pure rules.

::

    planned -> building -> ready -> active -> retired -> dropped
                  ^  \\______/  \\      ^  \\___________/
                  |     |        \\_____|  (rollback: active -> ready, retired -> active)
                  |     v
                  +-- failed -> dropped

- ``building``: dual-write is on and a backfill copies the rest.
- ``ready``: backfill complete and verified; may become ``active`` (cutover).
- ``active``: the alias points here. Never rebuilt in place, never dropped directly.
- ``retired``: kept for a rollback window; still receives every write.
- ``failed``: a candidate whose embedder or source broke. It is *not* live: it stops
  receiving writes, so a broken candidate cannot take production writes down. It can be
  retried (``failed -> building``) or abandoned (``failed -> dropped``).
- ``dropped``: its data is gone. An abandoned migration (``vecver abort``) may be
  started again: the store plans the same space anew (``replan_namespace``), which is a
  new build, not a transition of the old one.

A store applies these rules inside its transactions; nothing here touches storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from .errors import StateError

#: every state a namespace can be in
STATES = ("planned", "building", "ready", "active", "retired", "dropped", "failed")
#: states whose namespaces receive every write (dual-write); ``failed`` is not live
LIVE_STATES = ("building", "ready", "active", "retired")
#: states a migration can be abandoned from (``vecver abort``): anything not yet active
#: and not kept for a rollback
ABORTABLE_STATES = ("planned", "building", "ready", "failed")

TRANSITIONS: Mapping[str, frozenset[str]] = {
    "planned": frozenset({"building", "active", "dropped", "failed"}),
    "building": frozenset({"ready", "dropped", "failed"}),
    "ready": frozenset({"active", "building", "dropped", "failed"}),
    "active": frozenset({"retired", "ready"}),
    "retired": frozenset({"active", "dropped"}),
    "failed": frozenset({"building", "dropped"}),
    "dropped": frozenset(),
}


class _Ranked(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def name(self) -> str: ...


class _Located(_Ranked, Protocol):
    @property
    def updated_at(self) -> float: ...


_R = TypeVar("_R", bound=_Ranked)
_L = TypeVar("_L", bound=_Located)


def is_live(state: str) -> bool:
    """Whether a namespace in ``state`` receives every write."""
    return state in LIVE_STATES


def can_transition(from_state: str, to_state: str) -> bool:
    """Whether the lifecycle allows ``from_state -> to_state`` (unknown states: no)."""
    return to_state in TRANSITIONS.get(from_state, frozenset())


def check_transition(from_state: str, to_state: str, *, namespace: str | None = None) -> None:
    """Raise :class:`StateError` unless ``from_state -> to_state`` is allowed."""
    if to_state not in STATES:
        raise StateError(f"unknown state {to_state!r}; states are: {', '.join(STATES)}")
    if not can_transition(from_state, to_state):
        what = f"namespace {namespace!r}" if namespace else "a namespace"
        allowed = sorted(TRANSITIONS.get(from_state, ()))
        raise StateError(
            f"{what} cannot go from {from_state} to {to_state}",
            hint=("from " + from_state + " it can go to " + ", ".join(allowed)) if allowed
            else f"{from_state} is final",
        )


def can_become_active(state: str) -> bool:
    """Whether a namespace in ``state`` may be the target of an alias switch."""
    return can_transition(state, "active")


def state_after_switch(reason: str) -> str:
    """The state the previously active namespace takes when the alias moves away from it:
    ``ready`` after a rollback (it may be cut over to again), else ``retired``."""
    return "ready" if reason == "rollback" else "retired"


def live_order(rows: Sequence[_R]) -> list[_R]:
    """The live rows of ``rows``, the active one first, then oldest first (the order in
    which writes go to namespaces and in which a failure is reported)."""
    live = [r for r in rows if r.state in LIVE_STATES]
    live.sort(key=lambda r: (r.state != "active", r.created_at, r.name))
    return live


def rollback_target(
    active: str, history: Sequence[Mapping[str, object]], rows: Sequence[_L]
) -> _L | None:
    """The namespace a rollback returns to, or None.

    ``history`` is the collection's alias history (oldest first, entries with ``from`` and
    ``to``), ``rows`` its namespaces. A rollback returns to the namespace the alias came
    from when it last moved to ``active``, if that one is still ``retired``; otherwise (it
    was dropped, or the history does not say) to the most recently retired namespace."""
    by_name = {r.name: r for r in rows}
    for change in reversed(history):
        if change.get("to") == active and change.get("from"):
            prev = by_name.get(str(change["from"]))
            if prev is not None and prev.state == "retired":
                return prev
            break
    retired = [r for r in rows if r.state == "retired" and r.name != active]
    retired.sort(key=lambda r: r.updated_at)
    return retired[-1] if retired else None
