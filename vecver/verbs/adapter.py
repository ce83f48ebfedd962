"""``vecver adapter fit|evaluate|list|enable|export``: query adapters (:mod:`vecver.adapters`).

The same rules as :mod:`vecver.command`: the signature is the command line, the
docstring its help; each result has ``to_dict()`` (what ``--json`` prints); nothing is
printed here; refusals are typed errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..adapters import service as _service
from ..adapters.prior import DEPTH
from ..cli.render import Renderer, table
from ..config import Config
from ..errors import InvalidArgument
from ..read.adapter_route import adapter_ref
from ..runtime.workspace import Workspace

GROUP = "adapter"


def fit(
    config: Config, collection: str, *, from_: str, to: str, kind: str | None = None,
    pairs: int | None = None, stratify: str | None = None, seed: int = 0,
    no_enable: bool = False, prior: bool = False, no_prior: bool = False,
    prior_depth: int | None = None, progress: bool | None = None,
) -> _service.FitReport:
    """Fit a query adapter from space NEW into the stored space OLD of a collection, so
    that new-model queries can search the old namespace (route ``adapter``).

    Training pairs are documents of the old namespace (stratified, reproducible, never the
    held-out ones): their stored old vectors next to their text embedded by the new model.
    The old model is not needed. The adapter is stored in the manifest (a new version;
    enabled unless --no-enable, replacing the enabled one) and evaluated on held-out
    documents; the route serves only while that retention passes [adapters]
    min_retention.

    :param collection: the collection.
    :param from_: the NEW space: the model that embeds queries.
    :metavar from_: NEW
    :param to: the OLD space: a live space of the collection, whose vectors are searched.
    :metavar to: OLD
    :param kind: the adapter kind: procrustes (default), procrustes-diag, contrastive
        (Procrustes refined by a retrieval loss), lowrank, mlp.
    :param pairs: training pairs to sample (default [adapters] pairs, 5000).
    :param stratify: a metadata key to stratify the sample by (default: hash buckets).
    :param seed: the sampling and fitting seed.
    :param no_enable: store the adapter without enabling it.
    :param prior: fit the hubness prior (the default for procrustes): one number per
        stored document, and the route reranks its top candidates by similarity - beta x
        prior; beta is chosen on held-out training documents (none is stored when beta 0
        wins there).
    :param no_prior: fit no hubness prior.
    :param prior_depth: candidates the route reranks with the prior (default 20; never
        fewer than k).
    """
    if prior and no_prior:
        raise InvalidArgument("--prior/--no-prior", "both", "one of them")
    with Workspace(config, progress=progress) as ws:
        return _service.fit(ws, collection, from_, to, kind=kind, pairs=pairs,
                            stratify=stratify, seed=seed, enable=not no_enable,
                            progress=progress,
                            prior=True if prior else False if no_prior else None,
                            prior_depth=DEPTH if prior_depth is None else prior_depth)


@dataclass
class EvaluateResult:
    """An adapter's measured retention, and whether the route's gate passes."""

    collection: str
    ref: str
    artifact_id: int
    version: int
    evaluation: dict[str, Any]
    min_retention: float
    passes: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    config: Config, collection: str, *, from_: str | None = None, to: str | None = None,
    queries: str | None = None, k: int = 10, sample: int = _service.EVAL_SAMPLE,
    progress: bool | None = None,
) -> EvaluateResult:
    """Measure the enabled adapter's retention: its recall@k divided by a full
    re-embed's, both searched exactly, and record it (the route's gate reads the newest).

    Without --queries: pseudo-queries (the first sentence of held-out documents no adapter
    was fitted on), the full re-embed being the new model's vectors of those documents.
    With --queries (JSONL of {"query", "relevant": [ids]}): the full re-embed is the new
    space's namespace when it is built, else the judged documents plus a sample,
    re-embedded by the new model.

    :param collection: the collection.
    :param from_: the NEW space of the adapter (needed when several are enabled).
    :metavar from_: NEW
    :param to: the OLD space of the adapter (needed when several are enabled).
    :metavar to: OLD
    :param queries: a JSONL file of judged queries.
    :metavar queries: FILE
    :param k: the cut-off of recall@k.
    :param sample: held-out (or sampled) documents to use at most.
    """
    with Workspace(config, progress=progress) as ws:
        art, ret = _service.evaluate(ws, collection, from_, to, queries=queries, k=k,
                                     sample=sample, progress=progress)
        threshold = ws.config.adapters.min_retention
        m = art.meta
        return EvaluateResult(
            collection, adapter_ref(collection, m["source"], m["target"]), art.id,
            art.version, ret.to_dict(), threshold,
            ret.retention is not None and ret.retention >= threshold)


@dataclass
class AdapterList:
    """The stored adapters (every version)."""

    adapters: list[_service.AdapterInfo] = field(default_factory=list)
    min_retention: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {"adapters": [a.to_dict() for a in self.adapters],
                "min_retention": self.min_retention}


def list_(config: Config, *, collection: str | None = None) -> AdapterList:
    """List the stored query adapters: versions, kinds, spaces, retention, and whether
    each is enabled or stale (a space changed since the fit). Loads no model.

    :param collection: only this collection's adapters.
    :metavar collection: NAME
    """
    with Workspace(config, progress=False) as ws:
        return AdapterList(_service.list_adapters(ws, collection),
                           ws.config.adapters.min_retention)


def enable(config: Config, collection: str, *, from_: str, to: str,
           version: int) -> _service.AdapterInfo:
    """Enable another stored version of an adapter (the others of NEW->OLD are
    disabled; recorded as an event).

    :param collection: the collection.
    :param from_: the NEW space of the adapter.
    :metavar from_: NEW
    :param to: the OLD space of the adapter.
    :metavar to: OLD
    :param version: the version to enable (see `vecver adapter list`).
    """
    with Workspace(config, progress=False) as ws:
        art = _service.enable(ws, collection, from_, to, version)
        return next(a for a in _service.list_adapters(ws, collection) if a.id == art.id)


@dataclass
class ExportResult:
    """Where an adapter was written."""

    collection: str
    ref: str
    version: int
    path: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export(config: Config, collection: str, *, from_: str, to: str, output: str,
           version: int | None = None) -> ExportResult:
    """Write a stored adapter to a file, for a derived space
    (`derive = {from = "NEW-SPACE", adapter = "FILE"}`: the space whose stored vectors
    the adapter maps, i.e. its NEW space) or another workspace.

    :param collection: the collection.
    :param from_: the NEW space of the adapter.
    :metavar from_: NEW
    :param to: the OLD space of the adapter.
    :metavar to: OLD
    :param output: the file to write (replaced atomically).
    :metavar output: FILE
    :param version: the version to write (default: the enabled one).
    """
    with Workspace(config, progress=False) as ws:
        art = _service.export(ws, collection, from_, to, output, version)
        return ExportResult(collection, adapter_ref(collection, from_, to),
                            art.version, output, len(art.data))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _text_fit(r: _service.FitReport) -> str:
    ev = r.evaluation
    state = "enabled" if r.enabled else "stored, not enabled"
    lines = [
        f"adapter {r.ref} v{r.version} ({r.kind}) {state}: {r.pairs} pairs, fitted in "
        f"{r.fit_seconds:.2f}s",
        f"held-out retention {_fmt(ev.get('retention'))} (recall@{ev.get('k')} "
        f"{_fmt(ev.get('recall_adapter'))} vs full re-embed {_fmt(ev.get('recall_full'))}, "
        f"overlap {_fmt(ev.get('overlap'))}, {ev.get('queries')} queries)",
    ]
    p = r.info.get("prior") or {}
    if p.get("on"):
        lines.append(f"hubness prior on: beta {p['beta']:g}, sharpness {p['sharpness']:g}, "
                     f"{p['docs']} documents, rerank of the top {p['depth']} (validation "
                     f"recall@{ev.get('k')} {_fmt(p.get('validation_recall_without'))} -> "
                     f"{_fmt(p.get('validation_recall_with'))} on "
                     f"{p.get('validation_docs')} training documents held out)")
    else:
        lines.append(f"hubness prior off: {p.get('note') or 'not asked for'}")
    if ev.get("note"):
        lines.append(f"note: {ev['note']}")
    return "\n".join(lines)


def _text_evaluate(r: EvaluateResult) -> str:
    ev = r.evaluation
    verdict = "passes" if r.passes else "fails"
    lines = [
        f"adapter {r.ref} v{r.version}: retention {_fmt(ev.get('retention'))} "
        f"({ev.get('method')}, {ev.get('queries')} queries over {ev.get('candidates')} "
        f"documents) {verdict} the gate {r.min_retention:.3f}",
        f"recall@{ev.get('k')}: adapter {_fmt(ev.get('recall_adapter'))}, full re-embed "
        f"{_fmt(ev.get('recall_full'))}; MRR: adapter {_fmt(ev.get('mrr_adapter'))}, full "
        f"{_fmt(ev.get('mrr_full'))}; overlap@{ev.get('k')} {_fmt(ev.get('overlap'))}",
        "hubness prior: " + ("off" if ev.get("prior_beta") is None
                             else f"on (beta {ev['prior_beta']:g}), measured as served"),
    ]
    if ev.get("note"):
        lines.append(f"note: {ev['note']}")
    return "\n".join(lines)


def _text_list(r: AdapterList) -> str:
    if not r.adapters:
        return "no adapters (fit one with `vecver adapter fit COLLECTION --from NEW --to OLD`)"
    rows = [[a.ref, a.version, a.kind, "yes" if a.enabled else "", a.pairs,
             _fmt(a.retention), "-" if a.prior_beta is None else f"beta {a.prior_beta:g}",
             a.stale or ""] for a in r.adapters]
    return table(rows, ["adapter", "version", "kind", "enabled", "pairs", "retention",
                        "prior", "stale"]) + f"\ngate: min_retention {r.min_retention:.3f}"


def _text_info(a: _service.AdapterInfo) -> str:
    return f"adapter {a.ref} v{a.version} ({a.kind}) enabled; retention {_fmt(a.retention)}"


def _exit_evaluate(r: EvaluateResult, options: dict[str, Any]) -> tuple[int, str | None]:
    if r.passes:
        return 0, None
    return 1, (f"adapter {r.ref} fails the gate (min_retention {r.min_retention:.3f}): "
               "search with route `dual` or finish the backfill")


RENDERERS: dict[str, Renderer] = {
    "adapter fit": Renderer(_text_fit),
    "adapter evaluate": Renderer(_text_evaluate, exit=_exit_evaluate),
    "adapter list": Renderer(_text_list),
    "adapter enable": Renderer(_text_info),
    "adapter export": Renderer(lambda r: f"adapter {r.ref} v{r.version} -> {r.path} "
                               f"({r.bytes} bytes)"),
}
