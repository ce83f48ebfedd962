"""Congruence: the local backend and the in-memory reference backend, driven by the same
randomized sequence of operations, give the same observable results.

In the style of qdrant-client's congruence tests: every operation runs on both backends and
its outcome is compared at once — the same exception type, or equal results: ``fetch``,
``scan`` (content; each backend's own order is only required to be stable) and ``count``
exactly (vectors within 1e-5, cosine by direction), ``search`` with the same ids in the same
order and scores within 1e-4. At most 400 vectors per namespace, where HNSW is exact.
The local backend is also closed and reopened now and then, so persistence is compared too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

import vecver.backends.local
from vecver.backends.base import Backend
from vecver.backends.memory import MemoryBackend
from vecver.filters import F, Filter
from vecver.testing import (
    BAD_RECORDS,
    assert_hits_match_reference,
    assert_metadata_equal,
    assert_record_equal,
    bad_record,
    make_spec,
    scan_all,
    standard_metadata,
)
from vecver.testing.checks import SCORE_TOL, score_close
from vecver.types import Hit, Metric, NamespaceSpec, Record, Stamp

T = TypeVar("T")

POOL_SIZE = 400  # ids per namespace: at most this many vectors, where HNSW is exact
DIMENSIONS: dict[Metric, int] = {"cosine": 12, "dot": 8, "l2": 16}
SEEDS = list(range(8))
STEPS = 70

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


class Pair:
    """The reference and the local backend over the same logical state."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.ref: Backend = MemoryBackend()
        self.local: Backend = vecver.backends.local.LocalBackend(self.path)
        self.log: list[str] = []

    def close(self) -> None:
        self.ref.close()
        self.local.close()

    def reopen_local(self) -> None:
        self.local.close()
        self.local = vecver.backends.local.LocalBackend(self.path)

    def both(self, what: str, op: Callable[[Backend], T]) -> tuple[T | None, T | None]:
        """Run ``op`` on both; the same exception type or both succeed."""
        self.log.append(what)
        outcomes: list[tuple[T | None, BaseException | None]] = []
        for b in (self.ref, self.local):
            try:
                outcomes.append((op(b), None))
            except Exception as e:  # noqa: BLE001 - compared below
                outcomes.append((None, e))
        (r_ok, r_err), (l_ok, l_err) = outcomes
        assert type(r_err) is type(l_err), (
            f"{what}: reference {'raised ' + repr(r_err) if r_err else 'succeeded'}, "
            f"local {'raised ' + repr(l_err) if l_err else 'succeeded'}\n" + self.history()
        )
        return r_ok, l_ok

    def call(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """``both`` for one method of the Backend protocol."""
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


def _compare_hits(what: str, ref: list[list[Hit]], loc: list[list[Hit]], history: str) -> None:
    assert len(ref) == len(loc), f"{what}: {len(loc)} result lists, reference {len(ref)}"
    for qi, (rh, lh) in enumerate(zip(ref, loc, strict=True)):
        r_ids = [h.id for h in rh]
        l_ids = [h.id for h in lh]
        assert l_ids == r_ids, f"{what}, query {qi}: ids {l_ids}\nreference {r_ids}\n{history}"
        for a, b in zip(rh, lh, strict=True):
            assert score_close(b.score, a.score), (
                f"{what}, query {qi}, {a.id}: score {b.score} vs reference {a.score} "
                f"(tolerance {SCORE_TOL})\n{history}"
            )
            assert b.text == a.text, f"{what}: text of {a.id} differs"
            assert_metadata_equal(b.metadata, a.metadata, f"{what}: hit {a.id}")


def _compare_records(
    metric: Metric, what: str, ref: dict[str, Record], loc: dict[str, Record], vectors: bool
) -> None:
    assert sorted(loc) == sorted(ref), (
        f"{what}: ids {sorted(set(loc) ^ set(ref))} are in one backend only"
    )
    for i, r in ref.items():
        assert_record_equal(metric, loc[i], r, with_vector=vectors, where=f"{what}: {i}")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path / "local")
    yield p
    p.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_same_operations_same_results(pair: Pair, seed: int) -> None:
    """A random sequence of creates, upserts (new and replacing), failing batches, deletes,
    drops and re-creates, fetches, scans, counts, filtered and unfiltered searches on three
    namespaces (cosine, dot, l2), with the local backend reopened now and then: every
    outcome is the same on the local backend as on the reference."""
    rng = np.random.default_rng(seed)
    ops = set(pair.ref.capabilities.filter_ops) & set(pair.local.capabilities.filter_ops)
    filters = [f for f, need in FILTERS if need <= ops]
    specs: dict[Metric, NamespaceSpec] = {
        m: make_spec(f"cong_{m}_{seed}", DIMENSIONS[m], m) for m in DIMENSIONS
    }
    for spec in specs.values():
        pair.call("create_namespace", spec)
    version = 0

    def check_state(metric: Metric) -> None:
        spec = specs[metric]
        name = spec.name
        rc, lc = pair.call("count", name)
        assert rc == lc, f"count {name}: local {lc}, reference {rc}\n{pair.history()}"
        limit = int(rng.choice([1, 7, 64, 1000]))
        vectors = bool(rng.integers(2))
        rs, ls = pair.both(
            f"full scan of {name}, limit={limit}",
            lambda b: scan_all(b, name, limit, with_vectors=vectors),
        )
        assert rs is not None and ls is not None
        l_ids = [r.id for r in ls]
        assert len(l_ids) == len(set(l_ids)), f"scan {name}: duplicates\n{pair.history()}"
        _compare_records(
            metric, f"scan {name}", {r.id: r for r in rs}, {r.id: r for r in ls}, vectors
        )

    for step in range(STEPS):
        metric: Metric = ("cosine", "dot", "l2")[int(rng.integers(3))]
        spec = specs[metric]
        name = spec.name
        op = rng.choice(
            ["upsert", "upsert", "upsert", "bad", "delete", "fetch", "search", "search",
             "filtered", "filtered", "state", "reopen", "drop"],
            p=[0.15, 0.15, 0.15, 0.05, 0.11, 0.07, 0.07, 0.06, 0.07, 0.06, 0.02, 0.02, 0.02],
        )  # fmt: skip
        if step == STEPS - 1:
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
            rf, lf = pair.call("fetch", name, f_ids, with_vectors=vectors)
            assert rf is not None and lf is not None
            _compare_records(metric, f"fetch {name}", rf, lf, vectors)
        elif op in ("search", "filtered"):
            q = rng.standard_normal((int(rng.integers(1, 4)), spec.dimension)).astype(np.float32)
            k = int(rng.choice([1, 5, 10, 50, 500]))
            flt = filters[int(rng.integers(len(filters)))] if op == "filtered" and filters else None
            what = f"search {name} k={k} filter={flt.to_dict() if flt else None}"
            rh, lh = pair.call("search", name, q, k, filter=flt)
            assert rh is not None and lh is not None
            _compare_hits(what, rh, lh, pair.history())
            # and both agree with exact search over what the reference holds
            everything = scan_all(pair.ref, name, 1000, with_vectors=True)
            assert_hits_match_reference(lh, metric, q, everything, k, flt, where=what)
        elif op == "state":
            check_state(metric)
        elif op == "reopen":
            pair.log.append("reopen local")
            pair.reopen_local()
            rl, ll = pair.call("list_namespaces")
            assert rl == ll, f"list_namespaces: local {ll}, reference {rl}"
            for m, s in specs.items():
                rd, ld = pair.call("describe_namespace", s.name)
                assert rd == ld == s
                check_state(m)
        elif op == "drop":
            pair.call("drop_namespace", name)
            pair.call("count", name)
            pair.call("create_namespace", spec)
    for m, s in specs.items():
        check_state(m)
        q = rng.standard_normal((10, s.dimension)).astype(np.float32)
        for k in (10, 50):
            rh, lh = pair.call("search", s.name, q, k)
            _compare_hits(f"final search {s.name} k={k}", rh, lh, pair.history())


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_failure_paths_are_congruent(pair: Pair, seed: int) -> None:
    """Invalid calls fail the same way on both backends and change nothing: unknown and
    dropped namespaces, a namespace created again with another spec, bad queries, bad k,
    bad batches of every kind."""
    rng = np.random.default_rng(100 + seed)
    spec = make_spec(f"fail_{seed}", 10, ("cosine", "dot", "l2")[seed % 3])
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
        ("search wrong dimension", lambda b: b.search(name, good_q[:, :9], 3)),
        ("search nan", lambda b: b.search(name, nan_q, 3)),
    ]
    for what, call in calls:
        pair.both(what, call)
    for kind in sorted(BAD_RECORDS):
        pair.log.append(f"(bad record: {kind})")
        pair.call("upsert", name, [*batch[:3], bad_record(kind, spec, batch[:3])])
    rf, lf = pair.both(
        "fetch all", lambda b: b.fetch(name, [r.id for r in batch], with_vectors=True)
    )
    assert rf is not None and lf is not None
    _compare_records(spec.metric, "fetch all", rf, lf, True)
    pair.both("drop", lambda b: b.drop_namespace(name))
    for what, call in calls:
        pair.both(what + " (dropped)", call)
    pair.both("count dropped", lambda b: b.count(name))
