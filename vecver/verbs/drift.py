"""``vecver drift``: is a migration or a rebuild due? (:mod:`vecver.drift`).

The same rules as :mod:`vecver.command`: the signature is the command line, the
docstring its help; the result has ``to_dict()`` (what ``--json`` prints); nothing is
printed here. The exit status is 0 when no signal alarms and 1 when one does (a
monitoring job can alert on it); refusals exit as every verb's (2 for bad input).
"""

from __future__ import annotations

from typing import Any

from ..cli.render import Renderer, fmt, table
from ..config import Config
from ..drift._check import DriftReport, Signal
from ..drift._check import check as _check
from ..drift._check import save_reference as _save_reference
from ..errors import InvalidArgument
from ..runtime.workspace import Workspace


def drift(
    config: Config,
    collection: str,
    *,
    space: str | None = None,
    reference: str | None = None,
    save_reference: str | None = None,
    no_recall: bool = False,
) -> DriftReport:
    """Check a space of a collection for drift: MMD with a permutation p-value, shift of
    the mean and of the k-means centroids, canary recall against exact search, and the
    distance from queries to their top result.

    Each signal is shown with its threshold ([drift] in vecver.toml), its status and, when
    it alarms, the action to take: centroid drift above 5% -> retrain IVF centroids or
    rebuild; recall drop above 3 points -> rebuild the graph; query distance rising ->
    re-embed or fine-tune. The reference sample is captured automatically from written
    vectors. The result is recorded in the manifest. Exits 1 when a signal alarms.

    :param collection: the collection to check.
    :param space: the space to check (default: the active space).
    :metavar space: LABEL
    :param reference: what to compare recent vectors with: a time (7d, 12h, 2026-11-30,
        epoch seconds: vectors written before it against those after), a saved sample
        name (see --save-reference), or a .npy/.npz file of vectors (default: the sampled
        vectors written before the recent window).
    :metavar reference: WHEN|SAMPLE
    :param save_reference: first save the space's current sample under this name, to
        compare later checks with (--reference NAME).
    :metavar save_reference: NAME
    :param no_recall: skip the canary recall check (it scans the space for exact search).
    """
    if save_reference is not None and (not isinstance(save_reference, str)
                                       or not save_reference.strip()):
        raise InvalidArgument("save_reference", save_reference, "a non-empty name")
    if reference is not None and (not isinstance(reference, str) or not reference.strip()):
        raise InvalidArgument("reference", reference, "a time, a saved sample or a file")
    with Workspace(config, progress=False) as ws:
        if save_reference is not None:
            ws.manifest.require_writable()
            _save_reference(ws, collection, save_reference, space=space)
        return _check(ws, collection, space, reference, recall=not no_recall)


def _value(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    if name == "mmd":
        return f"p={v:.3f}"
    if name == "recall":  # the drop below the baseline, shown as a change of recall
        return "0.0%" if abs(v) < 5e-4 else f"{-v:+.1%}"
    return f"{v:+.1%}" if name == "query_distance" else f"{v:.1%}"


def _threshold(name: str, t: float) -> str:
    if name == "mmd":
        return f"p<={t:g}"
    return f">{t:.0%}" if name != "recall" else f"drop>{t:.0%}"


def _mmd_cells(s: Signal) -> tuple[str, str]:
    """The MMD's value and threshold cells: the p-value with the MMD^2 next to it, the
    alpha with the effect-size floor."""
    value, thr = _value(s.name, s.value), _threshold(s.name, s.threshold)
    m2, floor = s.detail.get("mmd2"), s.detail.get("min_mmd2")
    if isinstance(m2, (int, float)):
        value += f", MMD^2={m2:.4f}"
    if isinstance(floor, (int, float)):
        thr += f" and MMD^2>={floor:g}"
    return value, thr


def _cells(s: Signal) -> tuple[str, str]:
    if s.name == "mmd":
        return _mmd_cells(s)
    return ("-" if s.status == "baseline" else _value(s.name, s.value),
            _threshold(s.name, s.threshold))


def _text_drift(r: DriftReport) -> str:
    lines = [f"drift of {r.collection} / {r.space} ({r.namespace})",
             f"reference: {r.reference}; recent: {r.n_recent} vectors"]
    rows = [[s.name, *_cells(s), s.status] for s in r.signals]
    lines.append(table(rows, ["signal", "value", "threshold", "status"]))
    rec = next((s for s in r.signals if s.name == "recall"), None)
    if rec is not None and rec.detail:
        lines.append(f"canary recall@{rec.detail.get('k')}: {fmt(rec.detail.get('recall'))} "
                     f"(baseline {fmt(rec.detail.get('baseline'))})")
    mmd = next((s for s in r.signals if s.name == "mmd"), None)
    if mmd is not None and mmd.detail.get("below_floor"):
        lines.append("mmd: significant, but MMD^2 is below the effect-size floor "
                     "([drift] min_mmd2): a change too small to act on")
    if r.drifted:
        lines.append("drift detected:")
        for s in r.signals:
            if s.status == "alarm" and s.action:
                lines.append(f"  {s.name}: {s.action}")
    else:
        lines.append("no drift")
    return "\n".join(lines)


def _exit(r: DriftReport, options: dict[str, Any]) -> tuple[int, str | None]:
    if not r.drifted:
        return 0, None
    names = ", ".join(s.name for s in r.signals if s.status == "alarm")
    return 1, f"drift: {r.collection}/{r.space} alarms on {names}"


RENDERERS: dict[str, Renderer] = {"drift": Renderer(_text_drift, exit=_exit)}
