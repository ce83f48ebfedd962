"""Query adapters: map new-model query vectors into an old space's geometry, so that a
collection can be searched with the new model before (or instead of) re-embedding it.

Numerical core (numpy only; torch is never needed): :mod:`.base` (the contract,
persistence, input checks), :mod:`.procrustes` (centred orthogonal Procrustes, and with a
diagonal rescaling), :mod:`.contrastive` (Procrustes refined by an InfoNCE ranking loss),
:mod:`.lowrank` (reduced-rank ridge), :mod:`.mlp` (a residual MLP); :mod:`.hubness` (a
per-document hubness prior of the stored vectors and the rerank that applies it) and
:mod:`.prior` (that prior as fitted, stored and served by the ``adapter`` route).
Workspace level: :mod:`.pairs` (training pairs from stored vectors), :mod:`.service`
(fit, store, evaluate, list, the gate). Importing this package registers the ``adapter``
route (:mod:`vecver.read.adapter_route`).

>>> rep = vecver.adapters.fit(ws, "news", "minilm-l6", "minilm-l3", pairs=5000)
>>> ws.collection("news").search("markets", route="adapter:minilm-l6")
"""

from __future__ import annotations

from ..read import adapter_route as _adapter_route  # noqa: F401 - registers the route
from . import contrastive as _contrastive  # noqa: F401 - registers the kind
from . import lowrank as _lowrank  # noqa: F401 - registers the kind
from . import mlp as _mlp  # noqa: F401 - registers the kind
from . import procrustes as _procrustes  # noqa: F401 - registers the kind
from .base import KINDS, Adapter, adapter_class, check_pairs, load_adapter
from .service import (
    AdapterInfo,
    FitReport,
    Retention,
    StoredAdapter,
    enable,
    evaluate,
    fit,
    list_adapters,
    query_adapter,
)

list_ = list_adapters

__all__ = [
    "KINDS", "Adapter", "AdapterInfo", "FitReport", "Retention", "StoredAdapter",
    "adapter_class", "check_pairs", "enable", "evaluate", "fit", "list_", "list_adapters",
    "load_adapter", "query_adapter",
]
