"""How the command line shows the verbs' results: tables, one-line summaries, text cut
to a width, the JSON of ``--json``, and the exit status a result implies.

Everything here is a pure function of a result (no I/O but the ``print_*`` helpers),
so :mod:`vecver.demo` and other front ends can reuse the tables.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..command import (
        HistoryReport,
        IngestResult,
        InitResult,
        StatusReport,
        VerifyResult,
    )
    from ..demo import DemoReport
    from ..ops.abort import AbortReport
    from ..ops.backfill import BackfillReport
    from ..ops.cutover import CutoverReport, GateResult
    from ..ops.evaluate import EvaluationReport
    from ..ops.plan import PlanReport

#: characters of a hit's text in ``search --json`` (the Python API returns all of it)
JSON_TEXT_WIDTH = 200
#: characters of a hit's text on a line of ``search``
LINE_TEXT_WIDTH = 80


def cut(text: str | None, width: int) -> str:
    """``text`` on one line, at most ``width`` characters."""
    return (text or "").replace("\r", " ").replace("\n", " ")[:width]


def fmt(v: Any) -> str:
    """A table cell: ``-`` for None, 4 decimals for a small float, thousands separators
    for a large one."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Left-aligned columns under a header and a rule of dashes."""
    cells = [[str(c) for c in header]] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def dumps(obj: Any) -> str:
    """The JSON ``--json`` prints."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str)


# ----------------------------------------------------------------------------- per verb


def text_init(r: InitResult) -> str:
    lines = [f"wrote {r.config}"] if r.wrote_config else []
    lines.append(f"manifest {r.manifest}; collections created: {', '.join(r.created) or '-'}")
    return "\n".join(lines)


def text_ingest(r: IngestResult) -> str:
    return (f"ingested {r.documents} documents into {r.collection} "
            f"(spaces: {', '.join(r.spaces) or '-'}) in {r.seconds:.1f}s")


def text_status(r: StatusReport) -> str:
    if not r.collections:
        return "no collections"
    out = []
    for c in r.collections:
        out.append(f"collection {c.name}: active {c.active}, tombstones {c.tombstones},"
                   f" pending writes {c.pending_writes}")
        instances = {s.backend for s in c.spaces}
        rows = []
        for s in c.spaces:
            bf = s.backfill
            done = (f"{bf.done}" + (" (finished)" if bf.finished else "")) if bf else "-"
            row = [s.label, s.state, "missing" if s.count is None else s.count,
                   s.fingerprint[:12], done]
            if len(instances) > 1:
                row.append(s.backend)
            rows.append(row)
        header = ["space", "state", "vectors", "fingerprint", "backfilled"]
        if len(instances) > 1:
            header.append("backend")
        out.append(table(rows, header))
        out += [f"  {s.label} failed: {s.reason}" for s in c.spaces if s.reason]
        out += [f"  {s.label}: namespace {s.namespace} is missing from backend instance "
                f"{s.backend!r}" for s in c.spaces if s.count is None]
    return "\n".join(out)


def text_plan(r: PlanReport) -> str:
    lines = [
        f"plan {r.collection} -> {r.to} (fingerprint {r.fingerprint[:12]})",
        f"  documents          {r.documents} ({r.already_done} already in the space)",
        f"  to embed           {r.to_embed}",
        f"  embedding rate     {r.embed_rate:,.1f} docs/s (measured on {r.sample_size})",
        f"  estimated time     {r.estimated_seconds:,.0f} s",
        f"  estimated storage  {r.estimated_bytes / 1e6:,.1f} MB "
        f"(vectors {r.vector_bytes / 1e6:,.1f} MB, text {r.text_bytes / 1e6:,.1f} MB)",
    ]
    if r.same_geometry_as_active:
        lines.append("  note: same fingerprint as the active space; nothing would change")
    return "\n".join(lines)


def text_backfill(r: BackfillReport) -> str:
    if r.mode == "lazy-only":
        return (f"migrate {r.collection} -> {r.space}: dual-write on, no backfill (lazy "
                f"only); state {r.state}. Reads queue what they find missing; drain with "
                f"`vecver backfill {r.collection} --lazy`, complete with "
                f"`vecver backfill {r.collection}`")
    if r.mode == "lazy" and r.drain is not None:
        d = r.drain
        return (f"backfill {r.collection} --lazy -> {r.space}: {d.claimed} queued documents "
                f"claimed, {d.reembedded} re-embedded, {d.current} already current, "
                f"{d.obsolete} obsolete; {d.remaining} still queued"
                + (f", {d.leased} leased by other drainers" if d.leased else "")
                + f"; {r.seconds:.1f}s; state {r.state}")
    v = r.verify
    hot = ""
    if r.hot is not None:
        h = r.hot
        hot = (f"\n  most read first: {h.done}/{h.documents} documents ({h.written} written,"
               f" {h.skipped} already current, {h.absent} gone), covering "
               f"{h.traffic_share:.1%} of {h.reads_total} observed reads"
               + (f" (budget {h.budget_docs})" if h.budget_docs is not None else ""))
    if r.mode == "hot-budget":
        return (f"backfill {r.collection} -> {r.space}: the most-read documents within the "
                f"budget, {r.written} embedded and written, {r.seconds:.1f}s; state "
                f"{r.state} (run `vecver backfill {r.collection}` to copy the rest)" + hot)
    line = (
        f"backfill {r.collection} -> {r.space}: {r.scanned} scanned, {r.written} "
        f"embedded and written, {r.skipped} already present, {r.removed} removed "
        f"(deleted meanwhile), {r.reconciled} reconciled, "
        f"{r.seconds:.1f}s ({r.rate:,.0f} docs/s); state {r.state}"
        + (" (resumed)" if r.resumed else "")
    ) + hot
    if v is not None and not v.clean:
        line += (f"\n  not clean: missing {v.missing}, stale {v.stale}, extra {v.extra}, "
                 f"wrongly stamped {v.wrongly_stamped}, unexpected {v.unexpected}")
    return line


def exit_backfill(r: BackfillReport) -> tuple[int, str | None]:
    if r.state == "ready" or r.mode in ("lazy", "lazy-only", "hot-budget"):
        return 0, None  # those leave the space building by design
    return 1, (f"the backfill of {r.space!r} did not verify clean, so it stays {r.state}; "
               f"run `vecver backfill {r.collection}` again or `vecver verify {r.collection}`")


def text_verify(r: VerifyResult) -> str:
    rows = [
        [s.space, s.state, s.expected, s.present, s.missing, s.stale, s.extra,
         s.wrongly_stamped, s.unexpected, s.repaired, "yes" if s.clean else "NO"]
        for s in r.spaces
    ]
    return table(rows, ["space", "state", "expected", "present", "missing", "stale", "extra",
                        "wrong stamp", "unexpected", "repaired", "clean"])


def exit_verify(r: VerifyResult, repair: bool) -> tuple[int, str | None]:
    if r.clean or repair:
        return 0, None
    why = (f" ({r.pending_writes} unfinished writes, e.g. of a crashed process)"
           if r.pending_writes else "")
    return 1, (f"verify: {r.collection} is not consistent{why}; see the report above, "
               f"then `vecver verify {r.collection} --repair`")


def evaluation_table(rep: EvaluationReport | dict[str, Any]) -> str:
    """The evaluation of every space: ANN recall, relevance (with judgments), overlap
    with the active space, latency. ``rep`` is an ``EvaluationReport`` (or its dict)."""
    d = rep if isinstance(rep, dict) else rep.to_dict()
    k = d["k"]
    rows = []
    for s in d["spaces"]:
        rel = s["relevance"] or {}
        rows.append([s["space"], s["state"], s["documents"], s["ann_recall"],
                     rel.get("recall"), rel.get("mrr"), rel.get("ndcg"),
                     s["overlap_with_active"], s["latency_p50_ms"], s["latency_p99_ms"]])
    return table(rows, ["space", "state", "docs", f"ANN recall@{k}", f"recall@{k}",
                        f"MRR@{k}", f"nDCG@{k}", f"overlap@{k}", "p50 ms", "p99 ms"])


#: how a gate check's status reads on the command line
GATE_WORDS = {"passed": "PASS", "failed": "FAIL", "not_run": "NOT RUN"}


def gate_lines(gate: GateResult | None) -> list[str]:
    """The checks of a cutover's gate (a ``GateResult``), one per line, each starting
    PASS, FAIL or NOT RUN; none when the gate was not checked (forced)."""
    if gate is None:
        return []
    out = []
    for c in gate.checks:
        note = " (not required)" if c.status == "not_run" and not c.required else ""
        out.append(f"{GATE_WORDS.get(c.status, c.status)} {c.detail}{note}")
    return out


def text_cutover(r: CutoverReport) -> str:
    forced = " (forced, gate not checked)" if r.forced else ""
    lines = [f"{r.collection}: cut over from {r.from_space} to {r.to_space}{forced}"]
    lines += [f"  gate: {g}" for g in gate_lines(r.gate)]
    return "\n".join(lines)


def text_rollback(r: CutoverReport) -> str:
    return f"{r.collection}: rolled back from {r.from_space} to {r.to_space}"


def text_abort(r: AbortReport) -> str:
    dropped = (f"namespace {r.namespace} dropped" if r.dropped_namespace
               else f"namespace {r.namespace} was already dropped")
    return (f"{r.collection}: aborted the migration to {r.space} (it was {r.from_state}); "
            f"{dropped}")


def text_history(r: HistoryReport) -> str:
    out = []
    for e in r.events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"]))
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e["detail"].items())
                           if not isinstance(v, (dict, list)))
        out.append(f"{when}  {e['kind']:<22} {e['actor']}  {detail}")
    return "\n".join(out)


def text_demo(r: DemoReport) -> str:
    """The demo's summary (its steps were shown as they happened)."""
    if r.evaluation is None:  # it stopped early; exit_demo says why
        return ""
    s = r.summary
    return "\n".join([
        "",
        "evaluation (k=10; queries = titles, relevant = their articles)",
        evaluation_table(r.evaluation),
        "",
        f"active space: {s['active']}    spaces: "
        + ", ".join(f"{x['label']}={x['state']}({x['count']})" for x in r.spaces),
        f"times: ingest {s['ingest_s']}s, migrate {s['migrate_s']}s, "
        f"evaluate {s['evaluate_s']}s, total {s['total_s']}s",
        f"next: vecver --config {r.config} status",
    ])


def exit_demo(r: DemoReport) -> tuple[int, str | None]:
    if r.ok:
        return 0, None
    return 1, r.error


@dataclass(frozen=True)
class Renderer:
    """How one verb's result is shown: ``text`` (stdout without ``--json``), ``json`` (the
    value ``--json`` prints; default ``to_dict()``), ``exit`` (the status and the one
    stderr line a result implies; default 0)."""

    text: Callable[[Any], str]
    json: Callable[[Any], Any] | None = None
    exit: Callable[[Any, dict[str, Any]], tuple[int, str | None]] | None = None

    def to_json(self, result: Any) -> Any:
        return self.json(result) if self.json else result.to_dict()

    def status(self, result: Any, options: dict[str, Any]) -> tuple[int, str | None]:
        return self.exit(result, options) if self.exit else (0, None)


RENDERERS: dict[str, Renderer] = {
    "init": Renderer(text_init),
    "ingest": Renderer(text_ingest),
    "status": Renderer(text_status),
    "plan": Renderer(text_plan),
    "migrate": Renderer(text_backfill, exit=lambda r, o: exit_backfill(r)),
    "backfill": Renderer(text_backfill, exit=lambda r, o: exit_backfill(r)),
    "verify": Renderer(text_verify, exit=lambda r, o: exit_verify(r, bool(o.get("repair")))),
    "evaluate": Renderer(evaluation_table),
    "cutover": Renderer(text_cutover),
    "rollback": Renderer(text_rollback),
    "abort": Renderer(text_abort),
    "history": Renderer(text_history),
    "demo": Renderer(text_demo, exit=lambda r, o: exit_demo(r)),
}


def renderer(verb: str) -> Renderer:
    """How ``verb``'s result is shown: :data:`RENDERERS`, then the ``RENDERERS`` of the verb
    modules (:mod:`vecver.verbs`), else the result's ``to_dict()`` as indented JSON."""
    r = RENDERERS.get(verb)
    if r is None:
        from .. import verbs

        r = verbs.renderers().get(verb)
    return r if r is not None else Renderer(lambda result: dumps(result.to_dict()))


def print_result(verb: str, result: Any, *, as_json: bool) -> None:
    """Print a verb's result on stdout (text, or JSON with ``as_json``)."""
    r = renderer(verb)
    text = dumps(r.to_json(result)) if as_json else r.text(result)
    if text:
        print(text)
    sys.stdout.flush()
