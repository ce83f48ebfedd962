"""Model-based test of a backend (hypothesis stateful testing).

A namespace of a backend is driven by random sequences of operations and compared, after
every step, with a plain ``dict`` of id -> record. Imported only by the compliance test that
uses it, so that :mod:`vecver.testing.compliance` does not need hypothesis.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from ..backends.base import Backend
from ..filters import F
from ..types import METRICS, Metric, NamespaceSpec, Record, Stamp
from .checks import assert_hits_match_reference, assert_record_equal, scan_all
from .data import BAD_RECORDS, bad_record, make_spec, make_vectors

__all__ = ["run_model_test", "POOL"]

#: The ids the model test draws from (a few awkward ones among them).
POOL: tuple[str, ...] = tuple(f"id-{i:02d}" for i in range(10)) + ("a/b", "ü 1", "0")
_ABSENT = "never-written"


def run_model_test(
    backend: Backend,
    *,
    dimension: int = 8,
    namespace_prefix: str = "model_",
    max_examples: int = 25,
    steps: int = 10,
) -> None:
    """Run the state machine against ``backend``; each example uses a fresh namespace
    (``namespace_prefix`` + a counter) and drops it at the end."""
    counter = itertools.count()
    can_filter = "eq" in backend.capabilities.filter_ops

    class BackendModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.spec: NamespaceSpec | None = None
            self.model: dict[str, Record] = {}

        @property
        def ns(self) -> NamespaceSpec:
            assert self.spec is not None
            return self.spec

        @initialize(metric=st.sampled_from(METRICS))
        def create(self, metric: Metric) -> None:
            self.spec = make_spec(f"{namespace_prefix}{next(counter)}", dimension, metric)
            backend.create_namespace(self.spec)

        def _records(self, ids: list[str], seed: int, version: int) -> list[Record]:
            vecs = make_vectors(len(ids), dimension, seed)
            out = []
            for j, i in enumerate(ids):
                text = f"{i} version {version}"
                md: dict[str, Any] = {"version": version, "odd": seed % 2 == 1}
                if version % 2:
                    md["extra"] = f"x{seed % 5}"
                out.append(Record(i, vecs[j], text, md, Stamp.now(self.ns.fingerprint, i, text)))
            return out

        @rule(
            ids=st.lists(st.sampled_from(POOL), min_size=1, max_size=6, unique=True),
            seed=st.integers(0, 10_000),
            version=st.integers(0, 3),
        )
        def upsert(self, ids: list[str], seed: int, version: int) -> None:
            records = self._records(ids, seed, version)
            backend.upsert(self.ns.name, records)
            for r in records:
                self.model[r.id] = r

        @rule(ids=st.lists(st.sampled_from((*POOL, _ABSENT)), max_size=5, unique=True))
        def delete(self, ids: list[str]) -> None:
            backend.delete(self.ns.name, ids)
            for i in ids:
                self.model.pop(i, None)

        @rule(
            ids=st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True),
            kind=st.sampled_from(sorted(BAD_RECORDS)),
            seed=st.integers(0, 10_000),
        )
        def failing_upsert(self, ids: list[str], kind: str, seed: int) -> None:
            good = self._records(ids, seed, 9)
            with pytest.raises(BAD_RECORDS[kind]):
                backend.upsert(self.ns.name, [*good, bad_record(kind, self.ns, good)])

        @rule(limit=st.integers(1, 6), with_vectors=st.booleans())
        def scan(self, limit: int, with_vectors: bool) -> None:
            got = scan_all(backend, self.ns.name, limit, with_vectors=with_vectors)
            ids = [r.id for r in got]
            assert len(ids) == len(set(ids)), f"scan returned an id twice: {ids}"
            assert sorted(ids) == sorted(self.model), f"scan {sorted(ids)} != model"
            for r in got:
                assert_record_equal(self.ns.metric, r, self.model[r.id], with_vector=with_vectors)

        @rule(seed=st.integers(0, 10_000), k=st.integers(1, len(POOL) + 2))
        def search(self, seed: int, k: int) -> None:
            q = make_vectors(2, dimension, seed + 50_000)
            got = backend.search(self.ns.name, q, k)
            assert_hits_match_reference(
                got, self.ns.metric, q, list(self.model.values()), k, where="model search"
            )

        @rule(seed=st.integers(0, 10_000), version=st.integers(0, 3))
        def filtered_search(self, seed: int, version: int) -> None:
            if not can_filter:
                return
            flt = F.eq("version", version)
            q = make_vectors(1, dimension, seed + 70_000)
            got = backend.search(self.ns.name, q, len(POOL), filter=flt)
            assert_hits_match_reference(
                got,
                self.ns.metric,
                q,
                list(self.model.values()),
                len(POOL),
                flt,
                where="model filtered search",
            )

        @invariant()
        def count_and_fetch_agree(self) -> None:
            if self.spec is None:
                return
            assert backend.count(self.ns.name) == len(self.model)
            got = backend.fetch(self.ns.name, [*POOL, _ABSENT], with_vectors=True)
            assert sorted(got) == sorted(self.model), f"fetch {sorted(got)} != model"
            for i, r in got.items():
                assert_record_equal(self.ns.metric, r, self.model[i], with_vector=True)

        def teardown(self) -> None:
            if self.spec is not None:
                backend.drop_namespace(self.spec.name)

    run_state_machine_as_test(
        BackendModel,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
