"""plan: estimate a migration on a measured sample before anything is written."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..runtime.sources import NamespaceSource
from ..runtime.workspace import Workspace
from ..types import Document

log = logging.getLogger("vecver")


@dataclass
class PlanReport:
    """An estimate of a migration, measured on a sample before anything is written."""

    collection: str
    to: str
    fingerprint: str
    documents: int
    already_done: int
    to_embed: int
    sample_size: int
    embed_rate: float  # documents per second, measured
    estimated_seconds: float
    vector_bytes: int
    text_bytes: int
    estimated_bytes: int
    same_geometry_as_active: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(ws: Workspace, collection: str, to: str, *, sample: int = 64) -> PlanReport:
    """Estimate documents to embed, time (from a measured sample) and storage for moving
    ``collection`` to space ``to``. Writes nothing but the space's registration."""
    coll = ws.collection(collection)
    space = ws.space(to)
    active = coll.route("active")
    n = ws.backend_for(active).count(active.name)
    target = ws.manifest.namespace_for(collection, to)
    done = (ws.backend_for(target).count(target.name)
            if target is not None and target.state != "dropped" else 0)
    src = NamespaceSource(ws.backend_for(active), active.name)
    docs: list[Document] = []
    for page, _ in src.pages(None, min(sample, 256)):
        docs.extend(page)
        if len(docs) >= sample:
            break
    docs = docs[:sample]
    emb = ws.embedder(to)
    rate = 0.0
    if docs:
        emb.embed_documents([d.text for d in docs[:4]])  # load the model, warm up
        t0 = time.perf_counter()
        emb.embed_documents([d.text for d in docs])
        dt = max(time.perf_counter() - t0, 1e-9)
        rate = len(docs) / dt
    avg_text = (sum(len(d.text.encode()) for d in docs) / len(docs)) if docs else 0.0
    todo = max(n - done, 0)
    vec_bytes = n * space.spec.dimension * 4
    text_bytes = int(n * (avg_text + 64))
    return PlanReport(
        collection=collection,
        to=to,
        fingerprint=space.fingerprint,
        documents=n,
        already_done=done,
        to_embed=todo,
        sample_size=len(docs),
        embed_rate=rate,
        estimated_seconds=(todo / rate) if rate > 0 else 0.0,
        vector_bytes=vec_bytes,
        text_bytes=text_bytes,
        # vectors are kept twice by index-based backends (store + graph), plus links
        estimated_bytes=int(vec_bytes * 2 + n * 16 * 2 * 4 + text_bytes),
        same_geometry_as_active=space.fingerprint == active.fingerprint,
    )
