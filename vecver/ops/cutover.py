"""cutover and rollback: switch the collection's alias atomically, behind the gate."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import (
    GateFailed,
    NoPreviousSpace,
    NotEvaluated,
    NotReady,
    StateError,
    UnknownSpace,
)
from ..runtime.retry import with_retry
from ..runtime.workspace import Workspace
from ..store.sqlite import NamespaceRow

log = logging.getLogger("vecver")


@dataclass
class CutoverReport:
    collection: str
    from_space: str
    to_space: str
    forced: bool
    gate: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate_check(ws: Workspace, collection: str, target: NamespaceRow) -> list[str]:
    """Reasons the target fails the gate (empty: it passes). Raises ``NotEvaluated``
    when no evaluation of the target was recorded since it became ready."""
    gate = ws.config.gate
    evals = [
        e for e in ws.manifest.evaluations(collection, target.name)
        if target.ready_at is not None and e["at"] >= target.ready_at
    ]
    if not evals:
        raise NotEvaluated(collection, target.space_label)
    last = evals[-1]
    res = last["results"]
    reasons: list[str] = []
    passed: list[str] = []
    ann = res.get("ann_recall")
    if ann is None and res.get("documents") == 0:
        # a ready space agrees with the active one: both are empty, nothing can be lost
        passed.append("ANN recall not measured: the space holds no documents")
    elif ann is None:
        reasons.append(f"ANN recall@{res.get('k')} was not measured")
    elif ann < gate.min_ann_recall:
        reasons.append(f"ANN recall@{res.get('k')} {ann} < {gate.min_ann_recall}")
    else:
        passed.append(f"ANN recall@{res.get('k')} {ann:.3f} >= {gate.min_ann_recall}")
    rel = res.get("relevance")
    if rel is not None:
        base = [
            e for e in ws.manifest.evaluations(collection)
            if e["run"] == last["run"] and e["namespace"] != target.name
            and e["results"].get("state") == "active"
        ]
        if base and base[-1]["results"].get("relevance"):
            mine = float(rel[gate.metric])
            theirs = float(base[-1]["results"]["relevance"][gate.metric])
            if mine < theirs - gate.max_regression:
                reasons.append(
                    f"{gate.metric} {mine:.4f} is below the active space's {theirs:.4f} by more"
                    f" than {gate.max_regression}"
                )
            else:
                passed.append(f"{gate.metric} {mine:.4f} vs active {theirs:.4f}")
        else:
            # judged alone, the candidate cannot show it is no worse than the active space
            reasons.append(
                f"{gate.metric} of {target.space_label!r} has no baseline: the active space"
                f" was not evaluated on the same queries in run {last['run']}"
            )
    if reasons:
        return reasons
    return ["PASS " + p for p in passed]


def cutover(
    ws: Workspace, collection: str, *, to: str | None = None, force: bool = False
) -> CutoverReport:
    """Point the collection's alias at a ready space, atomically.

    Refused (``NotReady``) unless the target is ``ready``; refused (``NotEvaluated``,
    ``GateFailed``) unless its evaluation passes the configured gate, when not
    ``force``. The previous active space becomes ``retired`` and keeps receiving writes,
    so :func:`rollback` is exact. Concurrent readers see the old or the new space."""
    ws.manifest.require_collection(collection)
    ws.recover(collection)
    rows = ws.manifest.namespaces(collection)
    if to is not None:
        cands = [n for n in rows if n.space_label == to]
        if not cands:
            raise UnknownSpace(to, [n.space_label for n in rows])
        target = cands[0]
    else:
        ready = [n for n in rows if n.state == "ready"]
        if len(ready) != 1:
            building = [n for n in rows if n.state == "building"]
            if not ready and building:
                raise NotReady(collection, building[-1].space_label, "building")
            raise StateError(
                f"collection {collection!r} has {len(ready)} ready spaces",
                hint="name the target with --to SPACE",
            )
        target = ready[0]
    if target.state == "active":
        raise StateError(f"space {target.space_label!r} is already active in {collection!r}")
    if target.state != "ready":
        raise NotReady(collection, target.space_label, target.state)
    gate: list[str] = []
    if not force:
        gate = gate_check(ws, collection, target)
        if not all(g.startswith("PASS") for g in gate):
            ws.manifest.log("cutover.refused", collection, space=target.space_label, reasons=gate)
            raise GateFailed(collection, target.space_label, gate)
    prev = ws.manifest.active_namespace(collection)
    _switch(ws, collection, prev, target.name, "cutover", forced=force)
    prev_row = ws.manifest.namespace(prev)
    return CutoverReport(collection, prev_row.space_label if prev_row else prev,
                         target.space_label, force, gate)


def _switch(ws: Workspace, collection: str, prev: str, to_ns: str, reason: str,
            **detail: Any) -> None:
    """Point the alias at ``to_ns``: the database's native alias when ``prev`` and
    ``to_ns`` sit on one instance that has native aliases (made atomic with the manifest
    by a pending cutover that :meth:`Workspace.recover` finishes or clears); otherwise
    the manifest's alias alone, which readers through vecver follow. Across instances, a
    native alias is then moved along after the switch: set on the target's instance and
    dropped from the previous one, so no database alias keeps naming a space that is no
    longer active."""
    to_be, prev_be = ws.backend_for(to_ns), ws.backend_for(prev)
    if to_be is prev_be and to_be.capabilities.native_alias:
        ws.manifest.begin_cutover(collection, prev, to_ns, reason)
        with_retry(lambda: to_be.set_alias(collection, to_ns), what="alias switch")
        ws.manifest.switch_active(collection, to_ns, reason, **detail)
        return
    ws.manifest.switch_active(collection, to_ns, reason, **detail)
    if prev_be is not to_be and prev_be.capabilities.native_alias:
        with_retry(lambda: prev_be.drop_alias(collection), what="alias drop")
    if to_be.capabilities.native_alias:
        with_retry(lambda: to_be.set_alias(collection, to_ns), what="alias switch")


def rollback(ws: Workspace, collection: str) -> CutoverReport:
    """Point the alias back at the previous active space (kept ``retired``, and kept up
    to date by dual-write). The space rolled back from becomes ``ready`` again. Raises
    ``NoPreviousSpace`` when there is none."""
    ws.manifest.require_collection(collection)
    ws.recover(collection)
    prev = ws.manifest.previous_active(collection)
    if prev is None:
        raise NoPreviousSpace(collection)
    current = ws.manifest.active_namespace(collection)
    _switch(ws, collection, current, prev, "rollback")
    cur_row = ws.manifest.namespace(current)
    prev_row = ws.manifest.namespace(prev)
    return CutoverReport(
        collection,
        cur_row.space_label if cur_row else current,
        prev_row.space_label if prev_row else prev,
        False,
        [],
    )
