"""A deterministic hashing embedder: fast, dependency-free, lexical.

Each lower-cased word (and, with ``options.bigrams = true``, each pair of adjacent words)
is hashed with CRC-32 (salted by ``options.seed``) to a signed bucket of the vector. It
is a real retrieval model in the bag-of-words sense, which makes it useful for tests and
for benchmarks that must not be dominated by a neural model's cost. Different seeds give
different, incompatible geometries of the same dimension.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..types import Matrix
from . import Embedder

_TOKEN = re.compile(r"\w+")


class HashEmbedder(Embedder):
    """``embedder = "hash"``; options: ``seed`` (int, default 0), ``bigrams`` (bool)."""

    kind = "hash"
    #: CRC-32 of each word in a Python loop: it holds the interpreter lock throughout
    gil_bound = True

    def revision(self) -> str:
        return "hash-crc32-v1"

    def geometry_options(self) -> dict[str, Any]:
        return {
            "seed": int(self.spec.options.get("seed", 0)),
            "bigrams": bool(self.spec.options.get("bigrams", False)),
        }

    def embed(self, texts: Sequence[str]) -> Matrix:
        dim = self.spec.dimension
        opts = self.geometry_options()
        salt = str(opts["seed"]).encode() + b":"
        bigrams = opts["bigrams"]
        max_len = self.spec.max_length
        out = np.zeros((len(texts), dim), dtype=np.float32)
        crc = zlib.crc32
        for row, text in enumerate(texts):
            toks = _TOKEN.findall(text.lower())
            if max_len is not None:
                toks = toks[:max_len]
            feats = [t.encode() for t in toks]
            if bigrams:
                feats += [a + b" " + b for a, b in zip(feats, feats[1:], strict=False)]
            if not feats:
                feats = [b"\x00empty"]
            vec = out[row]
            for f in feats:
                h = crc(salt + f)
                vec[h % dim] += 1.0 if (h >> 31) & 1 else -1.0
            if not vec.any():
                vec[crc(salt + feats[0]) % dim] = 1.0
        return out
