"""abort: abandon a migration — drop the namespace of a space that is not (yet) active."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import LeaseHeld, NotAbortable, StateError, UnknownSpace
from ..lifecycle import ABORTABLE_STATES
from ..runtime.workspace import Workspace
from ..store.sqlite import NamespaceRow
from .verify import backfill_lease

log = logging.getLogger("vecver")


@dataclass
class AbortReport:
    """What :func:`abort` did: the space abandoned, the state it was in, whether its
    namespace was dropped on its backend this time (False when an earlier, interrupted
    abort already had) and whether a backfill checkpoint was cleared."""

    collection: str
    space: str
    namespace: str
    from_state: str
    dropped_namespace: bool
    cleared_checkpoint: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pick(ws: Workspace, collection: str, space: str | None) -> NamespaceRow:
    rows = ws.manifest.namespaces(collection)
    if space is None:
        cands = [r for r in rows if r.state in ABORTABLE_STATES]
        if not cands:
            raise NotAbortable(collection, None, None,
                               hint=f"`vecver status` shows the spaces of {collection!r}")
        if len(cands) > 1:
            raise StateError(
                f"collection {collection!r} has several migrations in progress: "
                + ", ".join(f"{r.space_label} ({r.state})" for r in cands),
                hint="name one with --space",
            )
        return cands[0]
    for r in rows:
        if r.space_label == space:
            return r
    raise UnknownSpace(space, [r.space_label for r in rows])


def abort(ws: Workspace, collection: str, space: str | None = None) -> AbortReport:
    """Abandon the migration of ``collection`` to ``space`` (default: the only space that
    is planned, building, ready or failed): the space is marked ``dropped`` (so writes
    stop going to it at once), then its namespace is dropped on its backend and its
    backfill checkpoint cleared; the event ``migration.aborted`` is logged.

    Refused (``NotAbortable``) for the active space (migrate to another space and cut
    over to it instead) and for a retired one (it is kept for ``vecver rollback``); an
    already dropped space is refused too, unless an interrupted abort left its namespace
    on the backend, which is then dropped (so running it again finishes it). Raises
    ``LeaseHeld`` while a backfill (or a repair) of the space is running: stop it first.
    Nothing is changed when it refuses."""
    ws.manifest.require_collection(collection)
    row = _pick(ws, collection, space)
    be = ws.backend_for(row)
    if row.state == "active":
        raise NotAbortable(
            collection, row.space_label, row.state,
            hint="the active space serves the collection; migrate to another space and "
            f"cut over to it (`vecver migrate {collection} --to SPACE`)",
        )
    if row.state == "retired":
        raise NotAbortable(
            collection, row.space_label, row.state,
            hint=f"a retired space is kept for `vecver rollback {collection}`; it is not a "
            "migration in progress",
        )
    if row.state == "dropped":
        if row.name not in be.list_namespaces():
            raise NotAbortable(collection, row.space_label, row.state,
                               hint="nothing is left to drop")
        be.drop_namespace(row.name)  # finish an abort interrupted after the state change
        ws.manifest.clear_checkpoint(row.name)
        ws.manifest.log("migration.aborted", collection, space=row.space_label,
                        namespace=row.name, from_state="dropped")
        return AbortReport(collection, row.space_label, row.name, "dropped", True, False)
    lease = backfill_lease(row)
    holder = ws.manifest.acquire_lease(lease)
    if holder is not None:
        raise LeaseHeld(f"the backfill of {row.space_label!r} in {collection!r}", holder)
    try:
        # dropped in the manifest first: no writer writes it from now on, and a crash
        # before the namespace is gone is finished by running abort again
        ws.manifest.set_state(row.name, "dropped", expect=[row.state])
        existed = row.name in be.list_namespaces()
        be.drop_namespace(row.name)
        had_checkpoint = ws.manifest.checkpoint(row.name) is not None
        ws.manifest.clear_checkpoint(row.name)
    finally:
        ws.manifest.release_lease(lease)
    ws.manifest.log("migration.aborted", collection, space=row.space_label,
                    namespace=row.name, from_state=row.state)
    log.info("aborted the migration of %s to %s (%s); namespace %s dropped",
             collection, row.space_label, row.state, row.name)
    return AbortReport(collection, row.space_label, row.name, row.state, existed,
                       had_checkpoint)
