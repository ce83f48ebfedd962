"""``vecver search``: reading a collection along a route (:mod:`vecver.read`).

The same rules as :mod:`vecver.command`: the signature is the command line, the
docstring its help; the result has ``to_dict()`` (what ``--json`` prints); nothing is
printed here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..cli.render import JSON_TEXT_WIDTH, LINE_TEXT_WIDTH, Renderer, cut
from ..config import Config
from ..errors import InvalidArgument
from ..read.routes import FUSIONS, Dual, parse_route
from ..runtime.progress import notice_if_slow
from ..runtime.workspace import Workspace


@dataclass
class SearchHit:
    """One hit: the document, its raw score (higher is closer) in the space that served
    it, that space and namespace, and — from a fusing or rescoring route — the fused
    score and the hit's rank in each space (``ranks``: space label -> 1-based rank);
    ``rerank_score`` when a re-rank hook scored it."""

    id: str
    score: float
    space: str | None
    metadata: dict[str, Any]
    text: str | None
    namespace: str | None = None
    fused_score: float | None = None
    ranks: dict[str, int] | None = None
    rerank_score: float | None = None


@dataclass
class SearchResult:
    """The hits of ``query`` in ``collection`` through ``route``, best first."""

    collection: str
    query: str
    route: str
    hits: list[SearchHit]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]


def search(
    config: Config,
    collection: str,
    query: str,
    *,
    k: int = 10,
    route: str = "active",
    filter: dict[str, Any] | None = None,
    routing_key: str | None = None,
    fusion: str | None = None,
) -> SearchResult:
    """Search a collection; each hit names the space that served it.

    The query is embedded with the routed space's own model (loading it takes a few
    seconds for a real model, said on stderr when it does). Routes: active, candidate,
    space:LABEL, dual (both spaces fused; dual:zscore, dual:minmax), shadow (serves
    active, compares the candidate: see `vecver shadow report`), canary:P (needs
    --routing-key), rerank or rerank:K (active top K rescored in the candidate space).

    :param collection: the collection to search.
    :param query: the query text.
    :param k: hits to return.
    :param route: active, candidate, space:LABEL, dual[:rrf|zscore|minmax], shadow,
        canary:P, rerank[:K].
    :param filter: a metadata filter, e.g. {"topic": "sport", "year": {"gte": 2020}}.
    :param routing_key: the user or session id a canary route splits by (one key always
        reads one space).
    :param fusion: with --route dual: rrf (default), zscore or minmax.
    :metavar filter: JSON
    :metavar routing_key: KEY
    :metavar fusion: METHOD
    """
    r = parse_route(route)
    if fusion is not None:
        if fusion not in FUSIONS:
            raise InvalidArgument("fusion", fusion, "one of " + ", ".join(FUSIONS))
        if not isinstance(r, Dual):
            raise InvalidArgument("fusion", fusion, "given only with --route dual")
        if r != Dual() and r.fusion != fusion:
            raise InvalidArgument("fusion", fusion, f"the method of --route {route}")
        r = Dual(fusion)
    with Workspace(config) as ws:
        coll = ws.collection(collection)
        plan = coll.read_plan(r, routing_key=routing_key)
        labels = list(dict.fromkeys(leg.embed_space for leg in plan.legs))
        for label in labels:
            ws.embedder(label)  # registered and built here; a real model loads on first use
        what = (f"space {labels[0]!r} (its model and index)" if len(labels) == 1 else
                "spaces " + ", ".join(repr(x) for x in labels) + " (their models and indexes)")
        with notice_if_slow(f"search {collection}: loading {what} ..."):
            hits = coll.search(query, k, route=r, filter=filter, routing_key=routing_key)
        if plan.shadows:
            coll.searcher.flush()  # the comparison is recorded before the process ends
        return SearchResult(collection, query, str(coll.searcher.resolve(r)), [
            SearchHit(h.id, h.score, h.space, dict(h.metadata), h.text, h.namespace,
                      h.fused_score, dict(h.ranks) if h.ranks is not None else None,
                      h.rerank_score)
            for h in hits
        ])


def _json_search(r: SearchResult) -> Any:
    """``search --json``: the list of hits, each text cut to ``JSON_TEXT_WIDTH``; the
    fusion and re-rank fields only where set."""
    out = []
    for h in r.hits:
        d: dict[str, Any] = {"id": h.id, "score": h.score, "space": h.space,
                             "namespace": h.namespace, "metadata": h.metadata,
                             "text": (h.text or "")[:JSON_TEXT_WIDTH]}
        if h.fused_score is not None:
            d["fused_score"] = h.fused_score
        if h.ranks is not None:
            d["ranks"] = h.ranks
        if h.rerank_score is not None:
            d["rerank_score"] = h.rerank_score
        out.append(d)
    return out


def _text_search(r: SearchResult) -> str:
    """One line per hit: rank, raw score, id, ``[space]``, then (fused or rescored) the
    fused score and the rank in each space, then the text."""
    lines = []
    for n, h in enumerate(r.hits, 1):
        extra = ""
        if h.fused_score is not None:
            extra += f"fused {h.fused_score:.4f}  "
        if h.rerank_score is not None:
            extra += f"rerank {h.rerank_score:.4f}  "
        if h.ranks is not None:
            extra += "(" + ", ".join(f"{s} #{rk}" for s, rk in h.ranks.items()) + ")  "
        lines.append(f"{n:>3}. {h.score:.4f}  {h.id}  [{h.space}]  {extra}"
                     f"{cut(h.text, LINE_TEXT_WIDTH)}")
    return "\n".join(lines)


RENDERERS: dict[str, Renderer] = {
    "search": Renderer(_text_search, json=_json_search),
}
