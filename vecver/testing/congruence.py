"""Congruence: any backend against the in-memory reference, driven by the same randomized
sequence of operations, must give the same observable results.

In the style of qdrant-client's congruence tests: every operation runs on both backends and
its outcome is compared at once — the same exception type, or equal results: ``fetch``,
``scan`` (content; each backend's own order is only required to be stable) and ``count``
exactly (vectors within 1e-5, cosine by direction), ``search`` with the same ids in the same
order and scores within 1e-4, and both equal to exact search over what the reference holds.
At most 400 vectors per namespace, where an ANN index must be exact. A persistent backend
is closed and reopened now and then, so persistence is compared too.

A backend author reuses it with one fixture::

    from vecver.testing.congruence import BackendCongruenceSuite, CongruencePair

    class TestMyDBCongruence(BackendCongruenceSuite):
        @pytest.fixture
        def pair(self, tmp_path):
            p = CongruencePair(MyDB(tmp_path), reopen=lambda b: (b.close(), MyDB(tmp_path))[1])
            yield p
            p.close()

or calls :func:`run_random_operations` and :func:`run_failure_paths` on a
:class:`CongruencePair` directly. Everything is deterministic (numpy seeds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import numpy as np
import pytest

from ..backends.base import Backend
from ..backends.memory import MemoryBackend
from ..filters import F, Filter
from ..types import Hit, Metric, NamespaceSpec, Record, Stamp
from .checks import (
    SCORE_TOL,
    assert_hits_match_reference,
    assert_metadata_equal,
    assert_record_equal,
    scan_all,
    score_close,
)
from .data import BAD_RECORDS, bad_record, make_spec, standard_metadata

__all__ = [
    "BackendCongruenceSuite",
    "CongruencePair",
    "FILTERS",
    "run_failure_paths",
    "run_random_operations",
]

T = TypeVar("T")

POOL_SIZE = 400  # ids per namespace: at most this many vectors, where HNSW is exact
DIMENSIONS: dict[Metric, int] = {"cosine": 12, "dot": 8, "l2": 16}

#: Filters the random sequence uses, with the operators each needs.
FILTERS: list[tuple[Filter, frozenset[str]]] = [
    (F.eq("topic", "sport"), frozenset({"eq"})),
    (F.eq("flag", True), frozenset({"eq"})),
    (F.eq("lang", "fr"), frozenset({"eq"})),
    (F.eq("year", 2010.0), frozenset({"eq"})),
    (F.isin("topic", ["tech", "art"]), frozenset({"in"})),
    (F.isin("year", list(range(1990, 2000))), frozenset({"in"})),
    (F.range("year", gte=2000, lt=2012), frozenset({"range"})),
    (F.range("rating", gt=3.5), frozenset({"range"})),
    (F.range("title", lt="g"), frozenset({"range"})),
    (F.eq("flag", False) & F.range("rank", lt=200), frozenset({"eq", "range"})),
    (
        F.isin("lang", ["en", "de"]) & F.range("year", gte=2005) & F.eq("topic", "science"),
        frozenset({"eq", "in", "range"}),
    ),
]


class CongruencePair:
    """The reference and a candidate backend over the same logical state.

    ``reopen(candidate)`` closes the candidate and returns a new instance over the same
    storage (persistent backends); without it the random sequence never reopens.
    ``reference`` defaults to a fresh :class:`~vecver.backends.memory.MemoryBackend`.
    """

    def __init__(
        self,
        candidate: Backend,
        *,
        reopen: Callable[[Backend], Backend] | None = None,
        reference: Backend | None = None,
    ) -> None:
        self.ref: Backend = reference if reference is not None else MemoryBackend()
        self.candidate: Backend = candidate
        self._reopen = reopen
        self.log: list[str] = []

    @property
    def can_reopen(self) -> bool:
        return self._reopen is not None

    def close(self) -> None:
        self.ref.close()
        self.candidate.close()

    def reopen_candidate(self) -> None:
        if self._reopen is not None:
            self.candidate = self._reopen(self.candidate)

    def both(self, what: str, op: Callable[[Backend], T]) -> tuple[T | None, T | None]:
        """Run ``op`` on both; the same exception type or both succeed."""
        self.log.append(what)
        outcomes: list[tuple[T | None, BaseException | None]] = []
        for b in (self.ref, self.candidate):
            try:
                outcomes.append((op(b), None))
            except Exception as e:  # noqa: BLE001 - compared below
                outcomes.append((None, e))
        (r_ok, r_err), (c_ok, c_err) = outcomes
        assert type(r_err) is type(c_err), (
            f"{what}: reference {'raised ' + repr(r_err) if r_err else 'succeeded'}, "
            f"candidate {'raised ' + repr(c_err) if c_err else 'succeeded'}\n" + self.history()
        )
        return r_ok, c_ok

    def call(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """:meth:`both` for one method of the Backend protocol."""
        shown = ", ".join([*(_short(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        return self.both(f"{method}({shown})", lambda b: getattr(b, method)(*args, **kwargs))

    def history(self) -> str:
        return "operations so far:\n  " + "\n  ".join(self.log[-25:])


def _short(a: object) -> str:
    if isinstance(a, (list, tuple)) and len(a) > 3:
        return f"<{len(a)} items>"
    if isinstance(a, np.ndarray):
        return f"<array {a.shape}>"
    return repr(a)


def _records(
    spec: NamespaceSpec, ids: list[int], rng: np.random.Generator, version: int
) -> list[Record]:
    vecs = rng.standard_normal((len(ids), spec.dimension)).astype(np.float32)
    out = []
    for j, i in enumerate(ids):
        rid = f"doc-{i:04d}"
        text = f"document {i}, version {version}"
        md: dict[str, Any] = standard_metadata(i, rng)
        md["version"] = version
        out.append(Record(rid, vecs[j], text, md, Stamp.now(spec.fingerprint, rid, text)))
    return out


def compare_hits(what: str, ref: list[list[Hit]], got: list[list[Hit]], history: str) -> None:
    """Same ids in the same order, scores within the tolerance, same text and metadata."""
    assert len(ref) == len(got), f"{what}: {len(got)} result lists, reference {len(ref)}"
    for qi, (rh, gh) in enumerate(zip(ref, got, strict=True)):
        r_ids = [h.id for h in rh]
        g_ids = [h.id for h in gh]
        assert g_ids == r_ids, f"{what}, query {qi}: ids {g_ids}\nreference {r_ids}\n{history}"
        for a, b in zip(rh, gh, strict=True):
            assert score_close(b.score, a.score), (
                f"{what}, query {qi}, {a.id}: score {b.score} vs reference {a.score} "
                f"(tolerance {SCORE_TOL})\n{history}"
            )
            assert b.text == a.text, f"{what}: text of {a.id} differs"
            assert_metadata_equal(b.metadata, a.metadata, f"{what}: hit {a.id}")


def compare_records(
    metric: Metric, what: str, ref: dict[str, Record], got: dict[str, Record], vectors: bool
) -> None:
    """The same ids, and equal records (vectors when ``vectors``)."""
    assert sorted(got) == sorted(ref), (
        f"{what}: ids {sorted(set(got) ^ set(ref))} are in one backend only"
    )
    for i, r in ref.items():
        assert_record_equal(metric, got[i], r, with_vector=vectors, where=f"{what}: {i}")


def run_random_operations(
    pair: CongruencePair, seed: int, *, steps: int = 70, prefix: str = "cong_"
) -> None:
    """A random sequence of creates, upserts (new and replacing), failing batches, deletes,
    drops and re-creates, fetches, scans, counts, filtered and unfiltered searches on three
    namespaces (cosine, dot, l2), with the candidate reopened now and then (when it can
    be): every outcome must be the same on the candidate as on the reference."""
    rng = np.random.default_rng(seed)
    ops = set(pair.ref.capabilities.filter_ops) & set(pair.candidate.capabilities.filter_ops)
    filters = [f for f, need in FILTERS if need <= ops]
    specs: dict[Metric, NamespaceSpec] = {
        m: make_spec(f"{prefix}{m}_{seed}", DIMENSIONS[m], m) for m in DIMENSIONS
    }
    for spec in specs.values():
        pair.call("create_namespace", spec)
    version = 0

    def check_state(metric: Metric) -> None:
        spec = specs[metric]
        name = spec.name
        rc, cc = pair.call("count", name)
        assert rc == cc, f"count {name}: candidate {cc}, reference {rc}\n{pair.history()}"
        limit = int(rng.choice([1, 7, 64, 1000]))
        vectors = bool(rng.integers(2))
        rs, cs = pair.both(
            f"full scan of {name}, limit={limit}",
            lambda b: scan_all(b, name, limit, with_vectors=vectors),
        )
        assert rs is not None and cs is not None
        c_ids = [r.id for r in cs]
        assert len(c_ids) == len(set(c_ids)), f"scan {name}: duplicates\n{pair.history()}"
        compare_records(
            metric, f"scan {name}", {r.id: r for r in rs}, {r.id: r for r in cs}, vectors
        )

    for step in range(steps):
        metric: Metric = ("cosine", "dot", "l2")[int(rng.integers(3))]
        spec = specs[metric]
        name = spec.name
        op = rng.choice(
            ["upsert", "upsert", "upsert", "bad", "delete", "fetch", "search", "search",
             "filtered", "filtered", "state", "reopen", "drop"],
            p=[0.15, 0.15, 0.15, 0.05, 0.11, 0.07, 0.07, 0.06, 0.07, 0.06, 0.02, 0.02, 0.02],
        )  # fmt: skip
        if step == steps - 1:
            op = "reopen"
        if op == "upsert":
            n = int(rng.integers(1, 80))
            ids = sorted(rng.choice(POOL_SIZE, size=n, replace=False).tolist())
            version += 1
            batch = _records(spec, ids, rng, version)
            pair.call("upsert", name, batch)
        elif op == "bad":
            kind = str(rng.choice(sorted(BAD_RECORDS)))
            ids = rng.choice(POOL_SIZE, size=5, replace=False).tolist()
            good = _records(spec, ids, rng, -1)
            batch = [*good, bad_record(kind, spec, good)]
            pair.log.append(f"(bad record: {kind})")
            pair.call("upsert", name, batch)
            check_state(metric)
        elif op == "delete":
            n = int(rng.integers(1, 60))
            del_ids = [f"doc-{i:04d}" for i in rng.choice(POOL_SIZE + 50, size=n, replace=False)]
            pair.call("delete", name, del_ids)
        elif op == "fetch":
            n = int(rng.integers(0, 40))
            f_ids = [f"doc-{i:04d}" for i in rng.choice(POOL_SIZE + 50, size=n, replace=False)]
            vectors = bool(rng.integers(2))
            rf, cf = pair.call("fetch", name, f_ids, with_vectors=vectors)
            assert rf is not None and cf is not None
            compare_records(metric, f"fetch {name}", rf, cf, vectors)
        elif op in ("search", "filtered"):
            q = rng.standard_normal((int(rng.integers(1, 4)), spec.dimension)).astype(np.float32)
            k = int(rng.choice([1, 5, 10, 50, 500]))
            flt = filters[int(rng.integers(len(filters)))] if op == "filtered" and filters else None
            what = f"search {name} k={k} filter={flt.to_dict() if flt else None}"
            rh, ch = pair.call("search", name, q, k, filter=flt)
            assert rh is not None and ch is not None
            compare_hits(what, rh, ch, pair.history())
            everything = scan_all(pair.ref, name, 1000, with_vectors=True)
            assert_hits_match_reference(ch, metric, q, everything, k, flt, where=what)
        elif op == "state":
            check_state(metric)
        elif op == "reopen":
            if pair.can_reopen:
                pair.log.append("reopen candidate")
                pair.reopen_candidate()
            rl, cl = pair.call("list_namespaces")
            assert rl == cl, f"list_namespaces: candidate {cl}, reference {rl}"
            for m, s in specs.items():
                rd, cd = pair.call("describe_namespace", s.name)
                assert rd == cd == s
                check_state(m)
        elif op == "drop":
            pair.call("drop_namespace", name)
            pair.call("count", name)
            pair.call("create_namespace", spec)
    for m, s in specs.items():
        check_state(m)
        q = rng.standard_normal((10, s.dimension)).astype(np.float32)
        for k in (10, 50):
            rh, ch = pair.call("search", s.name, q, k)
            assert rh is not None and ch is not None
            compare_hits(f"final search {s.name} k={k}", rh, ch, pair.history())


def run_failure_paths(pair: CongruencePair, seed: int, *, prefix: str = "fail_") -> None:
    """Invalid calls fail the same way on both backends and change nothing: unknown and
    dropped namespaces, a namespace created again with another spec, bad queries, bad k,
    bad batches of every kind, ids that cannot round-trip, a single string as ids."""
    rng = np.random.default_rng(100 + seed)
    spec = make_spec(f"{prefix}{seed}", 10, ("cosine", "dot", "l2")[seed % 3])
    name = spec.name
    pair.both("create", lambda b: b.create_namespace(spec))
    batch = _records(spec, list(range(30)), rng, 1)
    pair.both("upsert", lambda b: b.upsert(name, batch))
    other = make_spec(name, 11, spec.metric)
    pair.both("create with another dimension", lambda b: b.create_namespace(other))
    good_q = rng.standard_normal((2, 10)).astype(np.float32)
    nan_q = good_q.copy()
    nan_q[0, 3] = np.nan
    calls: list[tuple[str, Callable[[Backend], object]]] = [
        ("count unknown", lambda b: b.count("nope")),
        ("fetch unknown", lambda b: b.fetch("nope", ["doc-0001"])),
        ("search unknown", lambda b: b.search("nope", good_q, 3)),
        ("search k=0", lambda b: b.search(name, good_q, 0)),
        ("search k=True", lambda b: b.search(name, good_q, True)),
        ("search wrong dimension", lambda b: b.search(name, good_q[:, :9], 3)),
        ("search nan", lambda b: b.search(name, nan_q, 3)),
        ("delete a NUL id", lambda b: b.delete(name, ["doc-0001\x00x"])),
        ("fetch a NUL id", lambda b: b.fetch(name, ["doc-0001\x00x"])),
        ("delete one string", lambda b: b.delete(name, "doc-0001")),
        ("scan limit 0", lambda b: b.scan(name, limit=0)),
    ]
    for what, call in calls:
        pair.both(what, call)
    for kind in sorted(BAD_RECORDS):
        pair.log.append(f"(bad record: {kind})")
        pair.call("upsert", name, [*batch[:3], bad_record(kind, spec, batch[:3])])
    rf, cf = pair.both(
        "fetch all", lambda b: b.fetch(name, [r.id for r in batch], with_vectors=True)
    )
    assert rf is not None and cf is not None
    compare_records(spec.metric, "fetch all", rf, cf, True)
    pair.both("drop", lambda b: b.drop_namespace(name))
    for what, call in calls:
        pair.both(what + " (dropped)", call)
    pair.both("count dropped", lambda b: b.count(name))


class BackendCongruenceSuite:
    """Congruence tests as a class to subclass (name starting with ``Test``) with one
    fixture, ``pair``, yielding a :class:`CongruencePair` around a fresh candidate."""

    #: Steps of each random sequence.
    steps: ClassVar[int] = 70
    #: Prepended to the namespaces the sequences create.
    namespace_prefix: ClassVar[str] = "cong_"

    @pytest.fixture
    def pair(self) -> Iterator[CongruencePair]:
        """A pair around a fresh candidate backend. Override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must define a pytest fixture `pair` yielding a "
            "vecver.testing.congruence.CongruencePair"
        )

    @pytest.mark.parametrize("seed", list(range(8)))
    def test_same_operations_same_results(self, pair: CongruencePair, seed: int) -> None:
        """Random operations give the same outcomes on the candidate and the reference.

        Troubleshooting: the assertion message lists the last operations; replay them on
        both backends by hand. Typical causes: a replaced vector left in the index, a
        filter translated with other type rules, a failing batch partly written, a
        namespace not forgotten on drop.
        """
        run_random_operations(pair, seed, steps=self.steps, prefix=self.namespace_prefix)

    @pytest.mark.parametrize("seed", list(range(3)))
    def test_failure_paths_are_congruent(self, pair: CongruencePair, seed: int) -> None:
        """Invalid calls raise the same error types on both and change nothing.

        Troubleshooting: let the base validate (do not override public methods) and
        translate the database's "not found" into ``NamespaceNotFound``.
        """
        run_failure_paths(pair, seed, prefix=self.namespace_prefix + "fail_")
