"""``vecver shadow report`` / ``vecver shadow reset``: what shadow reads recorded
(:mod:`vecver.read.shadow`).

The same rules as :mod:`vecver.command`: the signature is the command line, the
docstring its help; the result has ``to_dict()`` (what ``--json`` prints); nothing is
printed here. Neither verb loads a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..cli.render import Renderer, fmt
from ..config import Config
from ..read.shadow import ShadowReport, candidate_namespace, check_fraction, counter_prefix
from ..read.shadow import report as shadow_report
from ..runtime.workspace import Workspace

GROUP = "shadow"


@dataclass
class ShadowReset:
    """How many shadow counters of a collection were removed."""

    collection: str
    namespace: str | None
    removed: int

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "namespace": self.namespace,
                "removed": self.removed}


def report(
    config: Config,
    collection: str,
    *,
    space: str | None = None,
    min_overlap: float = 0.5,
    min_top1: float = 0.5,
) -> ShadowReport:
    """Summarise the shadow reads of a collection with a recommendation: cut over, keep
    backfilling, investigate (or no data).

    Shadow reads are searches with route shadow: the active space serves, the candidate
    is queried in the background and compared (overlap@k, top-1 agreement, rank shifts),
    counted in the manifest by every process. The candidate's coverage (its documents
    over the active space's) decides whether disagreement is still expected.

    :param collection: the collection.
    :param space: the candidate space to report on (default: the newest building or ready
        space).
    :param min_overlap: the mean overlap@k a complete candidate needs for "cut over".
    :param min_top1: the top-1 agreement a complete candidate needs for "cut over".
    :metavar space: LABEL
    :metavar min_overlap: FRACTION
    :metavar min_top1: FRACTION
    """
    mo = check_fraction("min_overlap", min_overlap)
    mt = check_fraction("min_top1", min_top1)
    with Workspace(config, progress=False) as ws:
        return shadow_report(ws, collection, space=space, min_overlap=mo, min_top1=mt)


def reset(config: Config, collection: str, *, space: str | None = None) -> ShadowReset:
    """Remove the recorded shadow comparisons of a collection (all, or one space's), to
    start measuring afresh (after a fix to the candidate space, say).

    :param collection: the collection.
    :param space: only this candidate space's comparisons.
    :metavar space: LABEL
    """
    with Workspace(config, progress=False) as ws:
        ws.manifest.require_collection(collection)
        ws.manifest.require_writable()
        if space is None:
            return ShadowReset(collection, None, ws.manifest.reset_counters(collection,
                                                                           "shadow/"))
        ns = candidate_namespace(ws, collection, space)
        return ShadowReset(collection, ns.name,
                           ws.manifest.reset_counters(collection, counter_prefix(ns.name)))


def _text_report(r: ShadowReport) -> str:
    s = r.summary
    rows = [
        ("queries compared", s.queries),
        ("overlap@k (mean)", s.overlap_at_k),
        ("top-1 agreement", s.top1_agreement),
        ("mean rank shift", s.mean_rank_shift),
        ("queries with overlap < 0.5", s.low_overlap_rate),
        ("candidate returned nothing", s.candidate_empty_rate),
        ("shadow leg latency (ms, mean)", s.mean_latency_ms),
        ("coverage (candidate / active docs)", s.coverage),
        ("errors / dropped", f"{s.errors} / {s.dropped}"),
    ]
    width = max(len(a) for a, _ in rows)
    lines = [f"shadow reads of {r.collection}: active {r.active}, candidate {s.space} "
             f"({s.state}, namespace {s.namespace})"]
    lines += [f"  {a:<{width}}  {fmt(b)}" for a, b in rows]
    lines.append(f"recommendation: {s.recommendation.upper()}")
    lines += [f"  {why}" for why in s.reasons]
    return "\n".join(lines)


def _text_reset(r: ShadowReset) -> str:
    where = f" of namespace {r.namespace}" if r.namespace else ""
    return f"{r.collection}: removed {r.removed} shadow counters{where}"


RENDERERS: dict[str, Renderer] = {
    "shadow report": Renderer(_text_report),
    "shadow reset": Renderer(_text_reset),
}
