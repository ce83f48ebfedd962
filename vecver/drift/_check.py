"""The drift check of one space of a collection: every signal, its threshold, status and
the action the literature names for it.

Signals (thresholds from ``[drift]``, :class:`vecver.config.DriftSettings`):

- ``mmd`` — maximum mean discrepancy between the reference sample and the recent vectors
  (RBF kernel, median-heuristic bandwidth), alarm when its permutation p-value is at most
  ``alpha`` AND its MMD^2 is at least ``min_mmd2`` (an effect-size floor: with enough
  vectors a harmless change, an int8 build of the same model, is significant too): the
  distribution of written vectors changed (a model changed behind the space, or the
  data did);
- ``mean_shift`` and ``centroid_shift`` — relative shift of the mean and of the k-means
  (IVF) centroids, alarm above ``max_centroid_shift`` (5%): retrain IVF centroids or
  rebuild;
- ``distribution_shift`` — the energy-distance shift of the whole distribution
  (:func:`vecver.drift.stats.energy_shift`; about the mean shift for a translation, but
  it also sees a change of the mix of topics or of the spread, which moves neither the
  mean much nor any k-means cell), alarm above ``max_centroid_shift``: retrain IVF
  centroids or rebuild, or re-embed if the model changed;
- ``recall`` — recall@k of the backend's ANN search against exact search over the stored
  vectors, on a fixed canary query set (drawn once from the reference sample and stored);
  the first check records the baseline, later ones alarm when recall dropped by more than
  ``max_recall_drop`` (3 points): rebuild the graph;
- ``query_distance`` — the mean distance from queries to their top result, recent against
  reference, from the distances the read path recorded
  (:mod:`vecver.drift.observer`); alarm when it rose by more than ``max_distance_rise``
  and by more than 3 standard errors (not sampling noise): re-embed or fine-tune.
  Without recorded queries, the recent written vectors stand in for
  queries (their distance to the nearest reference vector against the reference's own),
  and the signal says so.

The reference and recent samples come from the space's reservoir
(:mod:`vecver.drift.reservoir`; a space that has none yet, written before sampling
existed or adopted, gets one from a scan of its namespace, the recent window being its
most recently stamped vectors): by default the reservoir's vectors written before the
recent window against the window; ``reference`` may name a time (the vectors written
before it against those after it), a saved sample (:func:`save_reference`) or a
``.npy``/``.npz`` file of vectors.

Each check is recorded: the artifact ``("drift.result", collection, space label)`` (the
newest 20 kept; what the metrics expose) and the event ``drift.checked``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import (
    DriftReferenceEmpty,
    DriftReferenceMismatch,
    DriftSampleInvalid,
    ManifestReadOnly,
    UnknownDriftReference,
    UnknownSpace,
)
from ..store.base import NamespaceRow
from . import observer as _observer
from . import reservoir as _reservoir
from .stats import F32, centroid_drift, check_sample, energy_shift, mmd_test, subsample

if TYPE_CHECKING:
    from ..config import DriftSettings
    from ..runtime.workspace import Workspace

RESULT_KIND = "drift.result"
SAMPLE_KIND = "drift.sample"
CANARY_KIND = "drift.canary"

#: what to do when a signal alarms (the actions the literature names)
ACTIONS: dict[str, str] = {
    "mmd": "the distribution of written vectors changed: if the embedder changed behind "
           "the space, migrate to a new space (re-embed); if the data changed, see the "
           "centroid and recall signals",
    "mean_shift": "retrain the IVF centroids or rebuild the index",
    "centroid_shift": "retrain the IVF centroids or rebuild the index",
    "distribution_shift": "the vectors moved as a whole (their mix or spread, not only "
                          "their mean): retrain the IVF centroids or rebuild the index; "
                          "if the embedder changed behind the space, re-embed",
    "recall": "rebuild the ANN graph (index) of the space",
    "query_distance": "re-embed with a better-suited model or fine-tune the embedder",
}

#: statuses of a signal
STATUSES = ("ok", "alarm", "baseline", "insufficient", "skipped")

#: fewest recorded queries on each side for the query-distance signal
MIN_QUERIES = 30
#: standard errors a rise of the query distance must exceed to alarm
RISE_Z = 3.0
#: hours of recorded queries that count as "recent" (the rest is the reference)
RECENT_HOURS = 24


@dataclass
class Signal:
    """One drift signal. ``value`` is compared with ``threshold`` (``mmd``: the p-value,
    alarm when ``value <= threshold``; the others alarm when ``value > threshold``);
    ``status`` is one of :data:`STATUSES`; ``action`` is what to do, set when it alarms;
    ``detail`` holds the figures behind the value."""

    name: str
    value: float | None
    threshold: float
    status: str
    action: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DriftReport:
    """A drift check of one space: the samples compared and every signal.

    ``drifted`` is True when any signal alarms; ``actions`` lists the recommended actions
    of the alarming signals (each once); ``recorded`` says whether the result was stored
    (False on a read-only manifest)."""

    collection: str
    space: str
    namespace: str
    fingerprint: str
    reference: str
    n_reference: int
    n_recent: int
    signals: list[Signal]
    at: float
    seconds: float = 0.0
    recorded: bool = False

    @property
    def drifted(self) -> bool:
        return any(s.status == "alarm" for s in self.signals)

    @property
    def actions(self) -> list[str]:
        out: list[str] = []
        for s in self.signals:
            if s.status == "alarm" and s.action and s.action not in out:
                out.append(s.action)
        return out

    def signal(self, name: str) -> Signal:
        """The signal called ``name`` (``KeyError`` if the check has none)."""
        for s in self.signals:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["drifted"] = self.drifted
        d["actions"] = self.actions
        return d


# -- references -----------------------------------------------------------------------

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, now: float | None = None) -> float | None:
    """A time given as an age (``30m``, ``12h``, ``7d``, ``2w``: that long ago), epoch
    seconds, or an ISO date/datetime (UTC unless it names a zone); None when ``text`` is
    none of these."""
    s = text.strip()
    now = time.time() if now is None else now
    m = _AGE.match(s)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        v = float(s)
    except ValueError:
        pass
    else:
        return v if math.isfinite(v) else None
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


@dataclass(frozen=True)
class _Samples:
    reference: F32
    recent: F32
    description: str
    since: float | None  # the time that splits reference and recent, when one does


def _load_file(path: str, ns: NamespaceRow, dim: int) -> F32:
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                if "vectors" not in z:
                    raise DriftSampleInvalid(f"reference file {path}",
                                             "an .npz reference needs an array 'vectors'")
                fp = str(z["fingerprint"]) if "fingerprint" in z else None
                vecs = np.asarray(z["vectors"])
            if fp is not None and fp != ns.fingerprint:
                raise DriftReferenceMismatch(path, ns.space_label, ns.fingerprint, fp)
        else:
            vecs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DriftSampleInvalid(f"reference file {path}", f"cannot be read ({e})") from e
    a = check_sample(vecs, f"reference file {path}")
    if a.shape[1] != dim:
        raise DriftReferenceMismatch(path, ns.space_label, ns.fingerprint,
                                     f"dimension {a.shape[1]}")
    return a


def _samples(ws: Workspace, collection: str, ns: NamespaceRow, reference: str | None,
             view: _reservoir.SampleView | None) -> _Samples:
    label = ns.space_label
    if view is None:
        raise DriftReferenceEmpty(
            collection, label, "reference", reference,
            hint="nothing written to this space was sampled yet: write documents through "
            "vecver (upsert, ingest, backfill), or pass --reference FILE.npy")
    recent = view.recent
    if reference is None:
        # the reservoir's vectors written before the recent window, against the window
        # (the newer half of the writes while fewer than two windows were written)
        keep = min(recent.shape[0], view.seen // 2)
        recent = recent[recent.shape[0] - keep:]
        start = int(view.recent_seq[-keep]) if keep else view.seen
        ref = view.sample[view.sample_seq < start]
        desc = (f"reservoir: {ref.shape[0]} of {view.seen} written vectors before the "
                f"last {recent.shape[0]}")
        return _Samples(ref, recent, desc, None)
    when = parse_when(reference)
    if when is not None:
        ref = view.sample[view.sample_at <= when]
        rec = recent[view.recent_at > when]
        iso = datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="seconds")
        if ref.shape[0] == 0:
            raise DriftReferenceEmpty(
                collection, label, "reference", reference,
                hint=f"no sampled vector was written before {iso}; pick a later time")
        if rec.shape[0] == 0:
            raise DriftReferenceEmpty(
                collection, label, "recent", reference,
                hint=f"nothing of the last {recent.shape[0]} written vectors is newer "
                f"than {iso}; pick an earlier time")
        return _Samples(ref, rec, f"written before {iso} (reservoir: {ref.shape[0]}) vs "
                        f"after ({rec.shape[0]})", when)
    if reference.endswith((".npy", ".npz")) or os.path.isfile(reference):
        if not os.path.isfile(reference):
            raise UnknownDriftReference(reference, _saved_names(ws, collection))
        return _Samples(_load_file(reference, ns, view.dimension), recent,
                        f"file {reference}", None)
    art = ws.manifest.artifact(SAMPLE_KIND, collection, reference)
    if art is None:
        raise UnknownDriftReference(reference, _saved_names(ws, collection))
    if art.meta.get("fingerprint") != ns.fingerprint:
        raise DriftReferenceMismatch(reference, label, ns.fingerprint,
                                     f"{art.meta.get('space')} "
                                     f"({str(art.meta.get('fingerprint'))[:12]})")
    vecs = np.load(io.BytesIO(art.data), allow_pickle=False)
    return _Samples(check_sample(vecs, f"saved reference {reference!r}"), recent,
                    f"saved sample {reference!r} (version {art.version})", None)


def _saved_names(ws: Workspace, collection: str) -> list[str]:
    return sorted({a.name for a in ws.manifest.artifacts(SAMPLE_KIND, collection)})


def _namespace(ws: Workspace, collection: str, space: str | None) -> NamespaceRow:
    ws.manifest.require_collection(collection)
    if space is None:
        row = ws.manifest.namespace(ws.manifest.active_namespace(collection))
    else:
        row = ws.manifest.namespace_for(collection, space)
    if row is None or row.state == "dropped":  # a dropped space's vectors are gone
        known = sorted({n.space_label for n in ws.manifest.namespaces(collection)
                        if n.state != "dropped"})
        raise UnknownSpace(str(space), known)
    return row


def save_reference(ws: Workspace, collection: str, name: str, *,
                   space: str | None = None) -> dict[str, Any]:
    """Save the space's current reservoir sample (every sampled vector) as the reference
    sample ``name`` of ``collection`` (a new version of the artifact ``("drift.sample",
    collection, name)``), to compare later writes with: ``check(..., reference=name)``.
    Returns its meta. Raises ``UnknownCollection``, ``UnknownSpace``,
    ``DriftReferenceEmpty`` (nothing sampled yet), ``ManifestReadOnly``."""
    ns = _namespace(ws, collection, space)
    _reservoir.flush_all(ws, collection)
    view = _reservoir.stored_view(ws.manifest, collection, ns.space_label)
    if view is None or view.sample.shape[0] == 0 or view.fingerprint != ns.fingerprint:
        raise DriftReferenceEmpty(collection, ns.space_label, "reference", name)
    buf = io.BytesIO()
    np.save(buf, view.sample, allow_pickle=False)
    meta = {"space": ns.space_label, "fingerprint": ns.fingerprint,
            "dimension": view.dimension, "n": int(view.sample.shape[0]),
            "seen": view.seen, "saved_at": time.time()}
    art = ws.manifest.put_artifact(SAMPLE_KIND, collection, name, buf.getvalue(), meta)
    return {**meta, "name": name, "version": art.version}


# -- the signals ----------------------------------------------------------------------


def _ratio_status(value: float, threshold: float) -> str:
    return "alarm" if value > threshold else "ok"


def _canary(ws: Workspace, collection: str, ns: NamespaceRow, pool: F32,
            s: DriftSettings) -> Signal:
    """ANN recall@k against exact search on the stored canary queries."""
    from ..ops.evaluate import ann_recall_at_k, exact_search

    be = ws.backend_for(ns)
    art = ws.manifest.artifact(CANARY_KIND, collection, ns.name)
    first = art is None or art.meta.get("fingerprint") != ns.fingerprint
    if first:
        rng = np.random.default_rng(s.seed + 17)
        queries = subsample(pool, s.canary_queries, rng)
    else:
        assert art is not None
        queries = np.load(io.BytesIO(art.data), allow_pickle=False)
    k = min(s.k, max(1, be.count(ns.name)))
    ann = be.search(ns.name, queries, k)
    exact = exact_search(be, ns.name, queries, k)
    recall = ann_recall_at_k(ann, exact)
    detail: dict[str, Any] = {"recall": recall, "k": k, "queries": int(queries.shape[0])}
    if first:
        buf = io.BytesIO()
        np.save(buf, queries, allow_pickle=False)
        detail["baseline"] = recall
        with contextlib.suppress(ManifestReadOnly):  # a read-only check records nothing
            ws.manifest.put_artifact(CANARY_KIND, collection, ns.name, buf.getvalue(),
                                     {"fingerprint": ns.fingerprint, "baseline": recall,
                                      "k": k, "at": time.time()}, keep=1)
        return Signal("recall", 0.0, s.max_recall_drop, "baseline", None, detail)
    assert art is not None
    base = float(art.meta.get("baseline", recall))
    drop = base - recall
    detail["baseline"] = base
    status = _ratio_status(drop, s.max_recall_drop)
    return Signal("recall", drop, s.max_recall_drop, status,
                  ACTIONS["recall"] if status == "alarm" else None, detail)


def _pairwise_distance(metric: str, q: F32, v: F32) -> F32:
    from ..backends.base import exact_scores

    sc = exact_scores(metric, q, v)
    out: F32
    if metric == "l2":
        out = np.sqrt(np.maximum(-sc, 0.0)).astype(np.float32)
    else:
        out = (1.0 - sc).astype(np.float32)
    return out


def _query_distance(ws: Workspace, collection: str, ns: NamespaceRow, samples: _Samples,
                    s: DriftSettings) -> Signal:
    threshold = s.max_distance_rise
    series = _observer.distance_series(ws.manifest, collection, ns.space_label)
    if series:
        if samples.since is not None:
            cut = samples.since
        else:
            cut = series[-1].start - (RECENT_HOURS - 1) * _observer.BUCKET_SECONDS
        ref_b = [b for b in series if b.start < cut]
        rec_b = [b for b in series if b.start >= cut]
        n_ref, n_rec = sum(b.n for b in ref_b), sum(b.n for b in rec_b)
        detail: dict[str, Any] = {"source": "queries", "reference_queries": n_ref,
                                  "recent_queries": n_rec}
        if n_ref >= MIN_QUERIES and n_rec >= MIN_QUERIES:
            m_ref = sum(b.total for b in ref_b) / n_ref
            m_rec = sum(b.total for b in rec_b) / n_rec
            v_ref = max(sum(b.total2 for b in ref_b) / n_ref - m_ref * m_ref, 0.0)
            v_rec = max(sum(b.total2 for b in rec_b) / n_rec - m_rec * m_rec, 0.0)
            rise = (m_rec - m_ref) / m_ref if m_ref > 0 else 0.0
            z = _z(m_rec - m_ref, v_ref / n_ref + v_rec / n_rec)
            detail.update(reference_mean=m_ref, recent_mean=m_rec, z=z)
            status = _rise_status(rise, z, threshold)
            return Signal("query_distance", rise, threshold, status,
                          ACTIONS["query_distance"] if status == "alarm" else None, detail)
        # too few recorded queries on one side: fall through to the proxy
        detail["note"] = f"fewer than {MIN_QUERIES} recorded queries on a side"
    # proxy: recent written vectors as queries against the reference sample
    metric = str(ws.space_spec(ns.space_label).metric)
    rng = np.random.default_rng(s.seed + 29)
    ref = samples.reference
    if ref.shape[0] < 4:
        return Signal("query_distance", None, threshold, "insufficient", None,
                      {"source": "recent writes", "reason": "reference too small"})
    perm = rng.permutation(ref.shape[0])
    half = ref.shape[0] // 2
    held, base = ref[perm[:half]], ref[perm[half:]]
    m = min(held.shape[0], samples.recent.shape[0], 1000)
    held = subsample(held, m, rng)
    rec = subsample(samples.recent, m, rng)
    # a recent vector that is also in the reference (a saved sample overlapping the
    # window) would find itself: exact duplicates are left out on both sides
    nn_held = _pairwise_distance(metric, held, base).min(axis=1)
    nn_rec = _pairwise_distance(metric, rec, base).min(axis=1)
    nn_held, nn_rec = nn_held[nn_held > 1e-6], nn_rec[nn_rec > 1e-6]
    if nn_held.size == 0 or nn_rec.size == 0:
        return Signal("query_distance", None, threshold, "insufficient", None,
                      {"source": "recent writes", "reason": "no distinct vectors"})
    d_held, d_rec = float(nn_held.mean()), float(nn_rec.mean())
    rise = (d_rec - d_held) / d_held if d_held > 0 else 0.0
    z = _z(d_rec - d_held, float(nn_held.var()) / nn_held.size
           + float(nn_rec.var()) / nn_rec.size)
    status = _rise_status(rise, z, threshold)
    return Signal("query_distance", rise, threshold, status,
                  ACTIONS["query_distance"] if status == "alarm" else None,
                  {"source": "recent writes (no recorded queries)",
                   "reference_mean": d_held, "recent_mean": d_rec, "n": m, "z": z})


def _z(diff: float, var: float) -> float:
    if var <= 0:
        return math.inf if diff > 0 else 0.0
    return diff / math.sqrt(var)


def _rise_status(rise: float, z: float, threshold: float) -> str:
    """A rise alarms when it exceeds the threshold and is not sampling noise (the
    difference of the means is over :data:`RISE_Z` standard errors)."""
    return "alarm" if rise > threshold and z > RISE_Z else "ok"


def check(
    ws: Workspace,
    collection: str,
    space: str | None = None,
    reference: str | None = None,
    *,
    recall: bool = True,
    record: bool = True,
) -> DriftReport:
    """Check one space of ``collection`` (default: the active one) for drift: every
    signal of the module docstring, with its threshold, status and action.

    ``reference``: None (the reservoir's vectors written before the recent window: the
    last ``[drift] window`` writes, or the newer half of them while fewer than two
    windows were written), a time
    (``7d``, ``2026-11-30``, epoch seconds), the name of a saved sample
    (:func:`save_reference`) or a ``.npy``/``.npz`` file. ``recall=False`` skips the
    canary recall check (it scans the namespace for the exact search). With ``record``
    the result is stored (artifact ``drift.result``, event ``drift.checked``), unless the
    manifest is read-only here.

    Raises ``UnknownCollection``; ``UnknownSpace`` for a space the collection does not
    have; ``DriftReferenceEmpty`` when the reference or recent sample holds nothing;
    ``DriftReferenceMismatch`` for a reference of another space (fingerprint or
    dimension); ``UnknownDriftReference`` for a ``reference`` that is no time, file or
    saved sample; ``DriftSampleInvalid`` for a reference file that is unreadable, empty
    or holds NaN. No drift result is recorded when it raises (the space's sample itself
    is still persisted: the pending vectors, or the sample a first check takes of a
    namespace written without sampling)."""
    t0 = time.perf_counter()
    s = ws.config.drift
    ns = _namespace(ws, collection, space)
    _reservoir.flush_all(ws, collection)
    _observer.flush(ws)
    view = _reservoir.stored_view(ws.manifest, collection, ns.space_label)
    if view is not None and view.fingerprint != ns.fingerprint:
        view = None
    if view is None:
        # written before sampling existed (or adopted): sample what the namespace holds
        view = _reservoir.seed_from_namespace(ws, collection, ns)
    samples = _samples(ws, collection, ns, reference, view)
    if samples.reference.shape[0] == 0:
        raise DriftReferenceEmpty(
            collection, ns.space_label, "reference", reference,
            hint="every sampled vector is in the recent window: write more documents, "
            "lower [drift] window, or pass --reference with an earlier time or a file")
    if samples.recent.shape[0] == 0:
        raise DriftReferenceEmpty(collection, ns.space_label, "recent", reference)
    ref = check_sample(samples.reference, "reference sample")
    rec = check_sample(samples.recent, "recent sample", ref.shape[1])
    signals: list[Signal] = []
    mmd = mmd_test(ref, rec, permutations=s.permutations, max_samples=s.max_samples,
                   seed=s.seed)
    significant = mmd.p_value <= s.alpha
    large = mmd.mmd2 >= s.min_mmd2
    st = "alarm" if significant and large else "ok"
    detail = {**mmd.to_dict(), "min_mmd2": s.min_mmd2, "significant": significant,
              "below_floor": significant and not large}
    signals.append(Signal("mmd", mmd.p_value, s.alpha, st,
                          ACTIONS["mmd"] if st == "alarm" else None, detail))
    cd = centroid_drift(ref, rec, k=s.kmeans_k, seed=s.seed, max_samples=s.max_samples)
    st = _ratio_status(cd.mean_shift, s.max_centroid_shift)
    signals.append(Signal("mean_shift", cd.mean_shift, s.max_centroid_shift, st,
                          ACTIONS["mean_shift"] if st == "alarm" else None,
                          {"raw": cd.raw_mean_shift, "spread": cd.spread}))
    st = _ratio_status(cd.centroid_shift, s.max_centroid_shift)
    signals.append(Signal("centroid_shift", cd.centroid_shift, s.max_centroid_shift, st,
                          ACTIONS["centroid_shift"] if st == "alarm" else None,
                          {"max": cd.max_centroid_shift, "refit": cd.refit_shift,
                           "occupancy_change": cd.occupancy_change, "k": cd.k}))
    es = energy_shift(ref, rec, max_samples=s.max_samples, seed=s.seed)
    st = _ratio_status(es.shift, s.max_centroid_shift)
    signals.append(Signal("distribution_shift", es.shift, s.max_centroid_shift, st,
                          ACTIONS["distribution_shift"] if st == "alarm" else None,
                          {"raw": es.raw_shift, "energy": es.energy, "noise": es.noise,
                           "p_value": es.p_value}))
    if recall:
        pool = view.sample if view is not None else ref
        signals.append(_canary(ws, collection, ns, pool, s))
    else:
        signals.append(Signal("recall", None, s.max_recall_drop, "skipped"))
    signals.append(_query_distance(ws, collection, ns, samples, s))
    rep = DriftReport(collection, ns.space_label, ns.name, ns.fingerprint,
                      samples.description, int(ref.shape[0]), int(rec.shape[0]), signals,
                      time.time())
    rep.seconds = time.perf_counter() - t0
    if record:
        rep.recorded = _record(ws, rep)
    return rep


def _record(ws: Workspace, rep: DriftReport) -> bool:
    summary = {s.name: {"value": s.value, "threshold": s.threshold, "status": s.status}
               for s in rep.signals}
    meta = {"space": rep.space, "namespace": rep.namespace, "fingerprint": rep.fingerprint,
            "drifted": rep.drifted, "at": rep.at, "signals": summary}
    try:
        ws.manifest.put_artifact(RESULT_KIND, rep.collection, rep.space,
                                 json.dumps(rep.to_dict()).encode("utf-8"), meta, keep=20)
        ws.manifest.log("drift.checked", rep.collection, space=rep.space,
                        namespace=rep.namespace, drifted=rep.drifted,
                        reference=rep.reference, signals=summary)
    except ManifestReadOnly:
        return False
    return True


def latest_results(ws: Workspace, collection: str | None = None) -> list[dict[str, Any]]:
    """The meta of the newest recorded drift check of every (collection, space), oldest
    collection first: keys ``collection``, ``space``, ``namespace``, ``fingerprint``,
    ``drifted``, ``at``, ``signals`` (name -> value, threshold, status)."""
    newest: dict[tuple[str, str], Any] = {}
    for a in ws.manifest.artifacts(RESULT_KIND, collection):
        key = (a.collection, a.name)
        if key not in newest or a.version > newest[key].version:
            newest[key] = a
    return [{"collection": c, **newest[(c, n)].meta} for c, n in sorted(newest)]
