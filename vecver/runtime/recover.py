"""Crash recovery: finish or undo what a crashed (or failed) writer left half-done."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BackendError, CandidateFailed, NamespaceNotFound
from .reconcile import fail_if_missing, reconcile

if TYPE_CHECKING:
    from .workspace import Workspace

log = logging.getLogger("vecver")


@dataclass
class RecoveryReport:
    """What :func:`recover` repaired: write ``intents`` of dead processes (or failed
    writes) reconciled, over ``documents`` documents; interrupted ``cutovers`` finished
    or cleared; ``aliases``: database aliases moved back in line with the manifest's
    active space; ``failed``: candidate spaces marked failed on the way (their embedder
    broke while being reconciled)."""

    intents: int = 0
    tombstones: int = 0
    cutovers: int = 0
    documents: int = 0
    aliases: int = 0
    failed: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.intents or self.tombstones or self.cutovers or self.aliases)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recover(ws: Workspace, collection: str, *, force: bool = False) -> RecoveryReport:
    """Finish or undo what a crashed process left half-done in ``collection``.

    - write intents of dead processes (and failed writes): every live space is
      reconciled with the active space for those documents (a delete intent's tombstones
      are already durable, so reconciling deletes the ids everywhere);
    - a cutover interrupted between the database alias switch and the manifest commit:
      finished if the alias moved, cleared otherwise;
    - database aliases out of line with the manifest (a cutover across backend instances
      commits in the manifest first, then moves the native aliases along; a crash or a
      refusal in between leaves one stale): the instance holding the active namespace
      gets the alias, an instance holding only other namespaces of the collection loses
      it. Best effort: a database refusing is logged, recovery goes on.

    Intents of live processes are left alone unless ``force``. A candidate space whose
    embedder breaks meanwhile is marked failed (named in ``RecoveryReport.failed``), and
    recovery goes on with the other spaces. Idempotent."""
    rep = RecoveryReport()
    pending = ws.manifest.pending_cutover(collection)
    if pending is not None:
        _, to_ns, reason = pending
        be = ws.backend_for(to_ns)
        current = be.get_alias(collection) if be.capabilities.native_alias else None
        if current == to_ns:
            ws.manifest.switch_active(collection, to_ns, reason, recovered=True)
            rep.details.append(f"finished interrupted {reason} to {to_ns}")
        else:
            ws.manifest.clear_cutover(collection)
            rep.details.append(f"cleared interrupted {reason} to {to_ns}")
        rep.cutovers += 1
    _align_aliases(ws, collection, rep)
    for intent in ws.manifest.intents(collection):
        if not (force or intent.failed or not ws.manifest.owner_alive(intent.owner)):
            continue
        _, live = ws.manifest.live_namespaces(collection)  # the active space first
        for ns in live:
            try:
                reconcile(ws, collection, ns, intent.doc_ids)
            except CandidateFailed as e:
                rep.failed.append(e.space)
            except NamespaceNotFound as e:
                if fail_if_missing(ws, collection, ns, e) is None:
                    raise
                rep.failed.append(ns.space_label)
        ws.manifest.drop_intent(intent.id)
        rep.intents += 1
        rep.documents += len(intent.doc_ids)
    if rep.anything:
        ws.manifest.log("recovered", collection, intents=rep.intents,
                        cutovers=rep.cutovers, documents=rep.documents, aliases=rep.aliases)
    return rep


def _align_aliases(ws: Workspace, collection: str, rep: RecoveryReport) -> None:
    """Make every native database alias of ``collection`` agree with the manifest (see
    :func:`recover`). Only when no cutover is pending: a pending one is the switch itself,
    settled above."""
    if ws.manifest.pending_cutover(collection) is not None:
        return
    active = ws.manifest.active_namespace(collection)
    rows = [n for n in ws.manifest.namespaces(collection) if n.state != "dropped"]
    ours = {n.name for n in rows}
    holder = ws.backend_for(active)
    for instance in sorted({n.backend for n in rows}):
        be = ws.instance(instance)
        if not be.capabilities.native_alias:
            continue
        try:
            current = be.get_alias(collection)
            if be is holder and current != active:
                be.set_alias(collection, active)
                rep.details.append(f"pointed the {instance} alias {collection} at {active}")
            elif be is not holder and current is not None and current in ours:
                be.drop_alias(collection)
                rep.details.append(f"dropped the stale {instance} alias {collection}")
            else:
                continue
            rep.aliases += 1
        except BackendError as e:
            log.warning("the %s alias of %s disagrees with the manifest and could not be "
                        "fixed (%s); readers through vecver use the manifest's", instance,
                        collection, e)
