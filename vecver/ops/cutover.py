"""cutover and rollback: switch the collection's alias atomically, behind the gate.

The gate judges a ready target on the evaluations recorded since it became ready
(:func:`vecver.ops.evaluate.evaluate`). Its checks, each ``passed``, ``failed`` or
``not_run``:

- ``ann_recall`` — the target's ANN recall@k against its own exact search is at least
  ``[gate] min_ann_recall`` (an empty space passes: it holds nothing to lose). Always
  required.
- ``relevance`` — the target's relevance ``metric`` (recall, MRR or nDCG on judged
  queries) is at most ``max_regression`` below the active space's *in the same run*.
  Required when the ``[gate]`` table names ``metric`` or ``max_regression``
  (:attr:`vecver.config.Gate.relevance_required`); otherwise it decides only when it was
  measured. It can only run on an evaluation with judgments (``--queries``).

Each check reads the newest evaluation that measured it. The gate passes when no check
failed and no required check was left unrun; the result, with every check, is carried by
:class:`CutoverReport` and recorded in the event log (``cutover.refused`` or the
``alias.cutover`` event).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import Gate
from ..errors import (
    BackendError,
    GateChecksNotRun,
    GateFailed,
    NamespaceMissing,
    NamespaceNotFound,
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

#: the outcome of one gate check
CheckStatus = Literal["passed", "failed", "not_run"]


@dataclass(frozen=True)
class GateCheck:
    """One check of the gate.

    ``required``: whether this check decides the gate — a check that ran always does; a
    check that did not run does when the config requires it. ``run``: the evaluation run
    the check judged (None when it did not run)."""

    name: str
    status: CheckStatus
    detail: str
    required: bool = True
    run: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def blocks(self) -> bool:
        """True when this check keeps the gate closed."""
        return self.status == "failed" or (self.status == "not_run" and self.required)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "required": self.required, "run": self.run}

    def __str__(self) -> str:
        note = " (not required)" if self.status == "not_run" and not self.required else ""
        return f"{self.status.replace('_', ' ')}: {self.detail}{note}"


@dataclass(frozen=True)
class GateResult:
    """What the gate decided about one target, and every check it made."""

    passed: bool
    checks: list[GateCheck] = field(default_factory=list)

    @staticmethod
    def of(checks: list[GateCheck]) -> GateResult:
        """The result of these checks: passed unless one of them blocks."""
        return GateResult(not any(c.blocks for c in checks), list(checks))

    @property
    def reasons(self) -> list[str]:
        """One line per check that keeps the gate closed."""
        return [c.detail for c in self.checks if c.blocks]

    def ran(self) -> list[str]:
        """The names of the checks that ran (passed or failed)."""
        return [c.name for c in self.checks if c.status != "not_run"]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


@dataclass
class CutoverReport:
    """What a cutover or rollback did. ``gate`` is None when the gate was not checked
    (``force``, or a rollback)."""

    collection: str
    from_space: str
    to_space: str
    forced: bool
    gate: GateResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "from_space": self.from_space,
                "to_space": self.to_space, "forced": self.forced,
                "gate": self.gate.to_dict() if self.gate is not None else None}


def _ann_check(gate: Gate, evals: list[dict[str, Any]]) -> GateCheck:
    measured = [e for e in evals if e["results"].get("ann_recall") is not None
                or e["results"].get("documents") == 0]
    if not measured:
        k = evals[-1]["results"].get("k")
        return GateCheck("ann_recall", "not_run", f"ANN recall@{k} was not measured")
    last = measured[-1]
    res, run = last["results"], last["run"]
    ann = res.get("ann_recall")
    k = res.get("k")
    if ann is None:
        # a ready space agrees with the active one: both are empty, nothing can be lost
        return GateCheck("ann_recall", "passed",
                         "ANN recall not measured: the space holds no documents", run=run)
    if ann < gate.min_ann_recall:
        return GateCheck("ann_recall", "failed", f"ANN recall@{k} {ann} < {gate.min_ann_recall}",
                         run=run)
    return GateCheck("ann_recall", "passed", f"ANN recall@{k} {ann:.3f} >= {gate.min_ann_recall}",
                     run=run)


def _relevance_check(ws: Workspace, collection: str, target: NamespaceRow, gate: Gate,
                     evals: list[dict[str, Any]]) -> GateCheck:
    judged = [e for e in evals if e["results"].get("relevance")]
    if not judged:
        return GateCheck(
            "relevance", "not_run",
            f"{gate.metric} was not compared with the active space: no evaluation of "
            f"{target.space_label!r} since it became ready had judged queries "
            f"(`vecver evaluate {collection} --queries FILE`)",
            required=gate.relevance_required,
        )
    last = judged[-1]
    run = last["run"]
    base = [
        e for e in ws.manifest.evaluations(collection)
        if e["run"] == run and e["namespace"] != target.name
        and e["results"].get("state") == "active" and e["results"].get("relevance")
    ]
    if not base:
        # judged alone, the candidate cannot show it is no worse than the active space
        return GateCheck(
            "relevance", "failed",
            f"{gate.metric} of {target.space_label!r} has no baseline: the active space"
            f" was not evaluated on the same queries in run {run}", run=run,
        )
    mine = float(last["results"]["relevance"][gate.metric])
    theirs = float(base[-1]["results"]["relevance"][gate.metric])
    if mine < theirs - gate.max_regression:
        return GateCheck(
            "relevance", "failed",
            f"{gate.metric} {mine:.4f} is below the active space's {theirs:.4f} by more"
            f" than {gate.max_regression}", run=run,
        )
    return GateCheck("relevance", "passed", f"{gate.metric} {mine:.4f} vs active {theirs:.4f}",
                     run=run)


def gate_check(ws: Workspace, collection: str, target: NamespaceRow) -> GateResult:
    """Judge ``target`` by the configured gate (see the module docstring) on the
    evaluations recorded since it became ready. Raises ``NotEvaluated`` when there is none;
    records nothing."""
    gate = ws.config.gate
    evals = [
        dict(e) for e in ws.manifest.evaluations(collection, target.name)
        if target.ready_at is not None and e["at"] >= target.ready_at
    ]
    if not evals:
        raise NotEvaluated(collection, target.space_label)
    return GateResult.of([
        _ann_check(gate, evals),
        _relevance_check(ws, collection, target, gate, evals),
    ])


def _refuse(ws: Workspace, collection: str, target: NamespaceRow, result: GateResult) -> None:
    """Record the refusal (with every check) and raise: ``GateFailed`` when a check failed,
    ``GateChecksNotRun`` when only required checks were left unrun."""
    label = target.space_label
    ws.manifest.log("cutover.refused", collection, space=label, reasons=result.reasons,
                    gate=result.to_dict())
    if any(c.status == "failed" for c in result.checks):
        raise GateFailed(collection, label, result.reasons, result=result)
    not_run = [c.name for c in result.checks if c.blocks]
    hint = None
    if "relevance" not in not_run:
        hint = f"run `vecver evaluate {collection}` again, or pass --force"
    raise GateChecksNotRun(collection, label, not_run, result.reasons, result=result, hint=hint)

def cutover(
    ws: Workspace, collection: str, *, to: str | None = None, force: bool = False
) -> CutoverReport:
    """Point the collection's alias at a ready space, atomically.

    Refused (``NotReady``) unless the target is ``ready``. Unless ``force``, refused
    unless the gate passes: ``NotEvaluated`` (no evaluation since the target became
    ready), ``GateFailed`` (a check failed), ``GateChecksNotRun`` (a configured check could
    not run, e.g. relevance without judged queries); each refusal is recorded with the
    gate's checks. ``force`` skips the gate (the report's ``gate`` is then None). The
    previous active space becomes ``retired`` and keeps receiving writes, so
    :func:`rollback` is exact. Concurrent readers see the old or the new space. Refused
    (``NamespaceMissing``), forced or not, before the gate, when the target's namespace
    is not on its backend instance any more."""
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
    _require_present(ws, collection, target)
    gate: GateResult | None = None
    if not force:
        gate = gate_check(ws, collection, target)
        if not gate.passed:
            _refuse(ws, collection, target, gate)
    prev = ws.manifest.active_namespace(collection)
    _switch(ws, collection, prev, target.name, "cutover", forced=force,
            gate=gate.to_dict() if gate is not None else None)
    prev_row = ws.manifest.namespace(prev)
    return CutoverReport(collection, prev_row.space_label if prev_row else prev,
                         target.space_label, force, gate)


def _require_present(ws: Workspace, collection: str, ns: NamespaceRow) -> None:
    """Raise ``NamespaceMissing`` unless the namespace of ``ns`` exists on its backend
    instance: the alias is never pointed at nothing, not even by a forced cutover."""
    try:
        ws.backend_for(ns).describe_namespace(ns.name)
    except NamespaceNotFound:
        raise NamespaceMissing(collection, ns.space_label, ns.name, ns.backend) from None


def _switch(ws: Workspace, collection: str, prev: str, to_ns: str, reason: str,
            **detail: Any) -> None:
    """Point the alias at ``to_ns``: the database's native alias when ``prev`` and
    ``to_ns`` sit on one instance that has native aliases (made atomic with the manifest
    by a pending cutover that :meth:`Workspace.recover` finishes or clears); otherwise
    the manifest's alias alone, which readers through vecver follow. Across instances, a
    native alias is then moved along after the switch: set on the target's instance and
    dropped from the previous one, so no database alias keeps naming a space that is no
    longer active (the switch is done by then: a database refusing this is logged, not
    raised)."""
    to_be, prev_be = ws.backend_for(to_ns), ws.backend_for(prev)
    if to_be is prev_be and to_be.capabilities.native_alias:
        ws.manifest.begin_cutover(collection, prev, to_ns, reason)
        with_retry(lambda: to_be.set_alias(collection, to_ns), what="alias switch")
        ws.manifest.switch_active(collection, to_ns, reason, **detail)
        return
    ws.manifest.switch_active(collection, to_ns, reason, **detail)
    try:
        if prev_be is not to_be and prev_be.capabilities.native_alias:
            with_retry(lambda: prev_be.drop_alias(collection), what="alias drop")
        if to_be.capabilities.native_alias:
            with_retry(lambda: to_be.set_alias(collection, to_ns), what="alias switch")
    except BackendError as e:
        log.warning("%s of %s done in the manifest, but the database alias could not be "
                    "moved along (%s); readers through vecver use the manifest's", reason,
                    collection, e)


def rollback(ws: Workspace, collection: str) -> CutoverReport:
    """Point the alias back at the previous active space (kept ``retired``, and kept up
    to date by dual-write). The space rolled back from becomes ``ready`` again. Raises
    ``NoPreviousSpace`` when there is none, ``NamespaceMissing`` when its namespace is not
    on its backend instance any more."""
    ws.manifest.require_collection(collection)
    ws.recover(collection)
    prev = ws.manifest.previous_active(collection)
    if prev is None:
        raise NoPreviousSpace(collection)
    current = ws.manifest.active_namespace(collection)
    prev_ns = ws.manifest.namespace(prev)
    if prev_ns is not None:
        _require_present(ws, collection, prev_ns)
    _switch(ws, collection, current, prev, "rollback")
    cur_row = ws.manifest.namespace(current)
    prev_row = ws.manifest.namespace(prev)
    return CutoverReport(
        collection,
        cur_row.space_label if cur_row else current,
        prev_row.space_label if prev_row else prev,
        False,
        None,
    )
