"""Query adapters on BBC News: how much of a full re-embed's recall a fitted adapter keeps.

Setup (bench/_bbc.py): the 2,225 article bodies are the index; the articles are split in
half (stratified by topic, seed 0); the titles of the query half are the queries (each
judged against the article(s) it heads); training pairs are body sentences of the
*other* half (never a title, never a sentence of a query's article), seeded sample.
Every text is truncated to 128 tokens by every model (bench/_bbc.py's spaces).

For each old <- new pair: the index holds the OLD model's document vectors; a query is
embedded by the NEW model and mapped through an adapter fitted on (new, old) sentence
pairs. Rows: old model for queries (the ceiling while it exists), full re-embed (new
model on new-model document vectors, exact search), unmapped new-model queries (when the
dimensions match), each adapter kind. Retention = adapter recall@10 / full re-embed
recall@10; overlap@10 = share of the full re-embed's exact top-10 the adapter's top-10
holds. Search is exact (brute force), so the figures are the adapter's, not an index's.

    python bench/adapter_bench.py --embed-only      # fill the embedding cache (slow: mpnet)
    python bench/adapter_bench.py                   # the tables -> bench/results/adapter-*.txt
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bbc  # noqa: E402

N_TRAIN = 10_000
TRAIN_SEED = 1
PAIRS = (("minilm-l6", "mpnet"), ("minilm-l6", "minilm-l3"), ("mpnet", "minilm-l6"))


def data() -> dict[str, object]:
    sp = _bbc.split(0.5, seed=0)
    qs = _bbc.queries(sp.query_articles)
    pool = [s.text for s in _bbc.sentences(sp.train_articles)]
    rng = random.Random(TRAIN_SEED)
    rng.shuffle(pool)
    return {
        "docs": [d["text"] for d in _bbc.documents()],
        "doc_ids": [d["id"] for d in _bbc.documents()],
        "all_queries": [q.text for q in _bbc.queries()],
        "queries": qs,
        "train": pool[:N_TRAIN],
        "pool_size": len(pool),
    }


#: training sentences embedded per model (mpnet is slow here: ~2-5 texts/s on a shared
#: 2-core machine, so it gets the 5,000 the targets allow; the others 10,000)
TRAIN_PER_MODEL = {"mpnet": 5_000}


def n_train(model: str) -> int:
    return TRAIN_PER_MODEL.get(model, N_TRAIN)


def train_vectors(model: str, d: dict[str, object]) -> np.ndarray:
    return _bbc.embed(model, d["train"][: n_train(model)], "doc")  # type: ignore[index]


def embed_all(models: list[str]) -> None:
    d = data()
    for m in models:
        _bbc.embed(m, d["all_queries"], "query")  # type: ignore[arg-type]
        _bbc.embed(m, d["docs"], "doc")  # type: ignore[arg-type]
        train_vectors(m, d)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--embed-only", action="store_true")
    ap.add_argument("--models", default="minilm-l3,minilm-l6,mpnet")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if a.embed_only:
        embed_all(a.models.split(","))
