"""Deterministic test data for backend tests: namespace specs, vectors and records.

Everything here is a pure function of its arguments (a ``seed`` drives every random
choice), so a failing compliance or congruence test reproduces exactly.

Records made by :func:`make_records` carry:

- a float32 vector drawn from a standard normal distribution (not normalized, so that a
  backend's own normalization for ``cosine`` is exercised),
- a text (with a few non-ASCII characters) and a correct :class:`~vecver.types.Stamp`
  (``Stamp.now(spec.fingerprint, id, text)``),
- metadata with one type per field: ``topic`` (str), ``title`` (str), ``year`` (int),
  ``rank`` (int, the record's position), ``rating`` (float, a multiple of 0.5 in
  ``[0, 5]``), ``flag`` (bool) and ``lang``
  (str, absent from every fourth record).

:func:`mixed_metadata` gives the adversarial values used to check that a backend's
filters keep ``bool``, numbers and strings apart (``True`` never equals ``1``).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import numpy as np

from ..errors import (
    DimensionMismatch,
    DuplicateIds,
    InvalidId,
    InvalidInput,
    NonFiniteVector,
    StampMismatch,
)
from ..types import Matrix, Metric, NamespaceSpec, Record, Stamp

__all__ = [
    "TOPICS",
    "LANGS",
    "WORDS",
    "MIXED_VALUES",
    "ABSENT",
    "fingerprint_for",
    "make_spec",
    "make_vectors",
    "make_records",
    "standard_metadata",
    "mixed_metadata",
    "restamp",
    "copy_record",
    "ids_of",
    "BAD_RECORDS",
    "bad_record",
]

TOPICS: tuple[str, ...] = ("sport", "tech", "politics", "art", "science")
LANGS: tuple[str, ...] = ("en", "fr", "de")
WORDS: tuple[str, ...] = (
    "apple", "banana", "cherry", "delta", "echo", "falcon", "garnet", "harbor", "iris",
    "jasper", "kiwi", "lemon", "mango", "nectar", "olive", "pepper", "quartz", "raven",
    "saffron", "tulip", "umber", "violet", "walnut", "xenon", "yarrow", "zephyr",
)  # fmt: skip

#: Marks the position in :data:`MIXED_VALUES` where the ``v`` field is absent.
ABSENT: Final = "<absent>"

#: Values of the ``v`` field in :func:`mixed_metadata`, cycled by record position: bools,
#: numbers and strings that look alike, JSON null, a list and an object holding values the
#: filters test for (a filter never matches inside them), and :data:`ABSENT`.
MIXED_VALUES: tuple[object, ...] = (
    True, False, 1, 0, 1.0, 0.0, "1", "true", "True", 2.5, -3, "", None,
    ["1", "true", 1, True], {"v": 1, "w": "true"}, ABSENT,
)  # fmt: skip


def fingerprint_for(tag: str) -> str:
    """A fingerprint-shaped string (64 hex digits) derived from ``tag``."""
    return hashlib.sha256(f"vecver-testing:{tag}".encode()).hexdigest()


def make_spec(
    name: str, dimension: int = 16, metric: Metric = "cosine", fingerprint: str | None = None
) -> NamespaceSpec:
    """A namespace spec; the default fingerprint depends on the dimension and metric only."""
    fp = fingerprint if fingerprint is not None else fingerprint_for(f"{dimension}/{metric}")
    return NamespaceSpec(name=name, dimension=dimension, metric=metric, fingerprint=fp)


def make_vectors(n: int, dimension: int, seed: int) -> Matrix:
    """``n`` standard-normal float32 vectors (rows), deterministic in ``seed``."""
    rng = np.random.default_rng([seed, n, dimension])
    return rng.standard_normal((n, dimension)).astype(np.float32)


def standard_metadata(position: int, rng: np.random.Generator) -> dict[str, Any]:
    """Metadata of the record at ``position``: one type per field, ``lang`` sometimes absent."""
    md: dict[str, Any] = {
        "topic": TOPICS[int(rng.integers(len(TOPICS)))],
        "title": WORDS[int(rng.integers(len(WORDS)))] + f"-{int(rng.integers(100)):02d}",
        "year": int(rng.integers(1990, 2025)),
        "rank": position,
        "rating": float(rng.integers(0, 11)) / 2.0,
        "flag": bool(rng.integers(2)),
    }
    if position % 4 != 3:
        md["lang"] = LANGS[int(rng.integers(len(LANGS)))]
    return md


def mixed_metadata(position: int, rng: np.random.Generator) -> dict[str, Any]:
    """Adversarial metadata: field ``v`` takes bools, ints, floats and strings that look
    alike (``True``, ``1``, ``1.0``, ``"1"``, ``"true"``…), null, a list, an object, and is
    absent on some records (see :data:`MIXED_VALUES`); field ``tags`` is the list
    ``["a", "b"]``, the string ``"a"`` or absent."""
    del rng
    md: dict[str, Any] = {"rank": position}
    v = MIXED_VALUES[position % len(MIXED_VALUES)]
    if v != ABSENT:
        md["v"] = copy.deepcopy(v)
    if position % 3 == 0:
        md["tags"] = ["a", "b"]
    elif position % 3 == 1:
        md["tags"] = "a"
    return md


MetadataFn = Callable[[int, np.random.Generator], Mapping[str, Any]]


def make_records(
    spec: NamespaceSpec,
    n: int,
    seed: int = 0,
    *,
    start: int = 0,
    id_prefix: str = "doc",
    text_prefix: str = "",
    metadata: MetadataFn | None = standard_metadata,
    vectors: Matrix | None = None,
) -> list[Record]:
    """``n`` records for ``spec``, deterministic in ``seed``.

    Ids are ``f"{id_prefix}-{start + i:05d}"``. ``text_prefix`` changes the texts (and so
    the stamps' source hashes) without changing anything else, to make "newer" versions of
    the same records. ``metadata`` maps ``(position, rng)`` to a record's metadata
    (``None`` gives empty metadata). ``vectors`` overrides the random vectors (shape
    ``(n, spec.dimension)``).
    """
    rng = np.random.default_rng([seed, start, 7919])
    if vectors is None:
        vectors = make_vectors(n, spec.dimension, seed * 1_000_003 + start)
    if vectors.shape != (n, spec.dimension):
        raise ValueError(f"vectors must have shape {(n, spec.dimension)}, got {vectors.shape}")
    out: list[Record] = []
    for i in range(n):
        pos = start + i
        rid = f"{id_prefix}-{pos:05d}"
        text = f"{text_prefix}document {pos} (seed {seed}) — “{WORDS[pos % len(WORDS)]}” ü\n"
        md = dict(metadata(pos, rng)) if metadata is not None else {}
        out.append(
            Record(
                id=rid,
                vector=np.array(vectors[i], dtype=np.float32),
                text=text,
                metadata=md,
                stamp=Stamp.now(spec.fingerprint, rid, text),
            )
        )
    return out


def restamp(
    record: Record,
    *,
    fingerprint: str | None = None,
    text: str | None = None,
    vector: Matrix | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Record:
    """A copy of ``record`` with another text, vector, metadata or fingerprint, and a fresh,
    consistent stamp (same id)."""
    new_text = record.text if text is None else text
    fp = record.stamp.fingerprint if fingerprint is None else fingerprint
    return Record(
        id=record.id,
        vector=np.array(record.vector if vector is None else vector, dtype=np.float32),
        text=new_text,
        metadata=dict(record.metadata if metadata is None else metadata),
        stamp=Stamp.now(fp, record.id, new_text or ""),
    )


def copy_record(record: Record) -> Record:
    """A deep enough copy of a record (own vector array, own metadata dict)."""
    vec = None if record.vector is None else np.array(record.vector, dtype=np.float32)
    return replace(record, vector=vec, metadata=dict(record.metadata))


def ids_of(records: Sequence[Record]) -> list[str]:
    """The ids of ``records``, in order."""
    return [r.id for r in records]


#: The kinds of invalid record :func:`bad_record` makes, with the error ``upsert`` must raise
#: for a batch holding one.
BAD_RECORDS: dict[str, type[InvalidInput]] = {
    "wrong-dimension": DimensionMismatch,
    "nan": NonFiniteVector,
    "inf": NonFiniteVector,
    "foreign-stamp": StampMismatch,
    "duplicate-id": DuplicateIds,
    "empty-id": InvalidId,
    "non-string-id": InvalidId,
    "stamp-of-other-document": InvalidInput,
    "no-vector": InvalidInput,
}


def bad_record(kind: str, spec: NamespaceSpec, good: Sequence[Record]) -> Record:
    """A record that makes a batch for ``spec`` invalid (``kind`` is a key of
    :data:`BAD_RECORDS`). ``duplicate-id`` repeats the id of ``good[0]``."""
    template = make_records(spec, 1, seed=4242, id_prefix="bad")[0]
    d = spec.dimension
    if kind == "wrong-dimension":
        return restamp(template, vector=make_vectors(1, d + 1, 1)[0])
    if kind in ("nan", "inf"):
        v = np.array(template.vector, dtype=np.float32)
        v[d // 2] = np.nan if kind == "nan" else -np.inf
        return restamp(template, vector=v)
    if kind == "foreign-stamp":
        return restamp(template, fingerprint=fingerprint_for("another space"))
    if kind == "duplicate-id":
        rid = good[0].id
        return Record(rid, template.vector, "dup", {}, Stamp.now(spec.fingerprint, rid, "dup"))
    if kind == "empty-id":
        return Record("", template.vector, "x", {}, Stamp.now(spec.fingerprint, "", "x"))
    if kind == "non-string-id":
        bad_id: Any = 12345
        return Record(bad_id, template.vector, "x", {}, Stamp.now(spec.fingerprint, bad_id, "x"))
    if kind == "stamp-of-other-document":
        stamp = Stamp.now(spec.fingerprint, "someone-else", template.text or "")
        return Record(template.id, template.vector, template.text, {}, stamp)
    if kind == "no-vector":
        return Record(template.id, None, template.text, {}, template.stamp)
    raise ValueError(f"unknown kind of bad record {kind!r}; known: {sorted(BAD_RECORDS)}")
