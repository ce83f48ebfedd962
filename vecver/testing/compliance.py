"""The backend compliance suite: one test class every backend subclasses.

A backend author checks a backend against the contract of :class:`vecver.backends.base.Backend`
with one import: subclass :class:`BackendComplianceSuite` in a test file and give it one
fixture, ``backend``, that yields a fresh, open backend::

    # tests/test_compliance_mydb.py
    from collections.abc import Iterator
    from pathlib import Path

    import pytest

    from vecver.backends.base import Backend
    from vecver.testing import BackendComplianceSuite
    from mydb_vecver import MyDBBackend


    class TestMyDBBackend(BackendComplianceSuite):
        @pytest.fixture
        def backend(self, tmp_path: Path) -> Iterator[Backend]:
            self.path = str(tmp_path / "db")
            b = MyDBBackend(self.path)
            yield b
            b.close()

        # optional, for persistent backends: the persistence tests are skipped without it
        def reopen(self, backend: Backend) -> Backend:
            backend.close()
            return MyDBBackend(self.path)

        # optional, for backends shared between processes: a second live instance
        def open_second(self, backend: Backend) -> Backend:
            return MyDBBackend(self.path)

Then ``pytest tests/test_compliance_mydb.py``. The suite is split by area into mixins over
that one fixture — :class:`NamespaceTests`, :class:`WriteTests`, :class:`ReadTests` (fetch,
scan, count), :class:`SearchTests`, :class:`FilterTests`, :class:`AliasTests`,
:class:`LifecycleTests`, :class:`PersistenceTests` (reopen, sharing),
:class:`ConsistencyTests` (read-your-writes, a model-based test) and :class:`BadInputTests`
— and :class:`BackendComplianceSuite` is all of them; a backend under construction may
subclass a few mixins first. pytest binds a class's fixtures and tests
to the same instance, so the fixture may leave state (a path, a server address) on
``self`` for :meth:`~BackendComplianceSuite.reopen` and
:meth:`~BackendComplianceSuite.open_second`. The fixture closes the backend at teardown
(``close`` is idempotent, tests may have closed it already).

What the suite checks is driven by the backend's declared
:class:`~vecver.backends.base.Capabilities` (never by probing): alias tests run only with
``native_alias``, each filter test only when its operators are in ``filter_ops``,
persistence tests only with ``persistent`` and an overridden ``reopen``, sharing tests
only with ``shared_between_processes`` and an overridden ``open_second``; batches are cut
to ``max_batch``. Every test's docstring says what it checks and how to troubleshoot a
failure. Class attributes tune the data: :attr:`~BackendComplianceSuite.dimension`,
:attr:`~BackendComplianceSuite.low_dimension` and
:attr:`~BackendComplianceSuite.namespace_prefix` (prepended to every namespace name the
suite creates, for a fixture that shares a server between tests; the rest of a name is
lowercase letters, digits and ``_``).

Search checks compare with exact (brute-force) search on at most 300 vectors, where an
approximate index must be exact: same ids in the same order (exact ties in either order),
scores within 1e-4 of :func:`vecver.backends.base.exact_scores`; stored vectors within 1e-5 (for
``cosine``, directions are compared: a backend may store normalized vectors). Filters are
compared with :meth:`vecver.filters.Filter.matches`, the reference semantics.

This module imports only pytest and numpy besides vecver; hypothesis (for the model-based
test) is imported when that test runs, and the test is skipped when it is not installed.
Everything is deterministic: data come from fixed seeds, hypothesis runs derandomized.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from ..backends.base import Backend, Capabilities, exact_scores
from ..errors import (
    BackendClosed,
    DimensionMismatch,
    InvalidFilter,
    InvalidId,
    InvalidInput,
    InvalidNamespaceName,
    LimitExceeded,
    NamespaceExists,
    NamespaceNotFound,
    NonFiniteVector,
    UnsupportedFilter,
    UnsupportedMetadata,
    ZeroVector,
)
from ..filters import F, Filter
from ..types import METRICS, Matrix, Metric, NamespaceSpec, Record, Stamp
from .checks import (
    assert_hits_carry_payload,
    assert_hits_match_reference,
    assert_metadata_equal,
    assert_record_equal,
    assert_vector_equal,
    reference_search,
    scan_all,
    score_close,
)
from .data import (
    BAD_RECORDS,
    MetadataFn,
    bad_record,
    fingerprint_for,
    make_records,
    make_spec,
    make_vectors,
    mixed_metadata,
    restamp,
    standard_metadata,
)

__all__ = [
    "AliasTests",
    "BackendComplianceSuite",
    "BadInputTests",
    "ComplianceBase",
    "ConsistencyTests",
    "FILTER_CASES",
    "FilterCase",
    "FilterTests",
    "LifecycleTests",
    "NamespaceTests",
    "PersistenceTests",
    "ReadTests",
    "SearchTests",
    "WriteTests",
]


# -- filter cases -------------------------------------------------------------------------
#
# Each case: an id, the filter, the operators it needs, and the data set it runs on
# ("standard": one type per field, see vecver.testing.data; "mixed": the adversarial ``v``
# field holding True, 1, 1.0, "1", "true", ...).

FilterCase = tuple[str, Filter, frozenset[str], str]


def _case(name: str, flt: Filter, ops: str, data: str = "standard") -> FilterCase:
    return (name, flt, frozenset(ops.split()), data)


FILTER_CASES: list[FilterCase] = [
    _case("eq-str", F.eq("topic", "sport"), "eq"),
    _case("eq-int", F.eq("year", 2010), "eq"),
    _case("eq-float", F.eq("rating", 2.5), "eq"),
    _case("eq-bool-true", F.eq("flag", True), "eq"),
    _case("eq-bool-false", F.eq("flag", False), "eq"),
    _case("eq-int-field-float-value", F.eq("year", 2010.0), "eq"),
    _case("eq-float-field-int-value", F.eq("rating", 3), "eq"),
    _case("eq-sometimes-absent-field", F.eq("lang", "en"), "eq"),
    _case("eq-unknown-field", F.eq("no_such_field", "x"), "eq"),
    _case("eq-no-match", F.eq("topic", "no-such-topic"), "eq"),
    _case("eq-str-vs-int", F.eq("year", "2010"), "eq"),
    _case("in-str", F.isin("topic", ["sport", "art"]), "in"),
    _case("in-int", F.isin("year", [2000, 2001, 2002, 2020]), "in"),
    _case("in-single", F.isin("lang", ["fr"]), "in"),
    _case("in-mixed-types", F.isin("year", ["2000", 2001, 2002.0]), "in"),
    _case("range-int-gte-lt", F.range("year", gte=2000, lt=2010), "range"),
    _case("range-int-gt-lte", F.range("year", gt=2015, lte=2020), "range"),
    _case("range-float", F.range("rating", gte=1.5, lte=3.5), "range"),
    _case("range-float-bound-on-int", F.range("year", gt=2010.5), "range"),
    _case("range-lt-only", F.range("rank", lt=50), "range"),
    _case("range-str", F.range("title", gte="c", lt="m"), "range"),
    _case("range-str-gt", F.range("topic", gt="science"), "range"),
    _case("range-num-bound-on-str-field", F.range("topic", gte=0), "range"),
    _case("range-str-bound-on-num-field", F.range("year", gte="2000"), "range"),
    _case("range-on-bool-field", F.range("flag", gte=0), "range"),
    _case("range-empty-interval", F.range("year", gt=2020, lt=2000), "range"),
    _case("range-sometimes-absent-field", F.range("lang", lt="f"), "range"),
    _case("and-eq-range", F.eq("topic", "tech") & F.range("year", gte=2000), "eq range"),
    _case(
        "and-eq-in-range",
        F.eq("flag", True) & F.isin("lang", ["en", "de"]) & F.range("rating", lt=4),
        "eq in range",
    ),
    _case("and-contradictory-eq", F.eq("topic", "sport") & F.eq("topic", "tech"), "eq"),
    _case(
        "and-two-ranges-one-field",
        F.range("year", gte=2010) & F.range("year", gte=2000) & F.range("year", lt=2015),
        "range",
    ),
    _case(
        "and-in-in-one-field",
        F.isin("topic", ["sport", "tech"]) & F.isin("topic", ["tech", "art"]),
        "in",
    ),
    _case(
        "parsed-mapping",
        Filter.parse(
            {"topic": {"in": ["sport", "art", "tech"]}, "year": {"gte": 2005, "lt": 2020}}
        ),
        "in range",
    ),
    # bool, numbers and strings are never equal to each other (True is not 1)
    _case("mixed-eq-true", F.eq("v", True), "eq", "mixed"),
    _case("mixed-eq-false", F.eq("v", False), "eq", "mixed"),
    _case("mixed-eq-1", F.eq("v", 1), "eq", "mixed"),
    _case("mixed-eq-0", F.eq("v", 0), "eq", "mixed"),
    _case("mixed-eq-1.0", F.eq("v", 1.0), "eq", "mixed"),
    _case("mixed-eq-str-1", F.eq("v", "1"), "eq", "mixed"),
    _case("mixed-eq-str-true", F.eq("v", "true"), "eq", "mixed"),
    _case("mixed-eq-empty-str", F.eq("v", ""), "eq", "mixed"),
    _case("mixed-in-true", F.isin("v", [True]), "in", "mixed"),
    _case("mixed-in-1-and-str-true", F.isin("v", [1, "true"]), "in", "mixed"),
    _case("mixed-in-false-and-0", F.isin("v", [False, 0]), "in", "mixed"),
    _case("mixed-range-num", F.range("v", gte=0), "range", "mixed"),
    _case("mixed-range-num-lt", F.range("v", lt=1), "range", "mixed"),
    _case("mixed-range-str", F.range("v", gte="0"), "range", "mixed"),
    _case("mixed-range-str-from-empty", F.range("v", gte=""), "range", "mixed"),
    # a list or object value never matches (no "array contains" semantics): only the
    # records whose ``tags`` is the string "a" match these
    _case("mixed-in-str-values-of-a-list", F.isin("v", ["true", "True"]), "in", "mixed"),
    _case("list-eq-element", F.eq("tags", "a"), "eq", "mixed"),
    _case("list-in-element", F.isin("tags", ["a", "b"]), "in", "mixed"),
    _case("list-range", F.range("tags", gte=""), "range", "mixed"),
]

#: The cases that must match nothing.
_EMPTY_CASES = frozenset({
    "eq-unknown-field", "eq-no-match", "eq-str-vs-int", "range-num-bound-on-str-field",
    "range-str-bound-on-num-field", "range-on-bool-field", "range-empty-interval",
    "and-contradictory-eq",
})  # fmt: skip

_DATASETS: dict[str, tuple[int, MetadataFn]] = {
    "standard": (200, standard_metadata),
    "mixed": (112, mixed_metadata),
}


# -- operations used by the parametrized failure-path tests ---------------------------------

_NamespaceOp = Callable[[Backend, NamespaceSpec], object]


def _one_record(spec: NamespaceSpec) -> list[Record]:
    return make_records(spec, 1, seed=99, id_prefix="op")


_NAMESPACE_OPS: dict[str, _NamespaceOp] = {
    "describe_namespace": lambda b, s: b.describe_namespace(s.name),
    "upsert": lambda b, s: b.upsert(s.name, _one_record(s)),
    "upsert-empty-batch": lambda b, s: b.upsert(s.name, []),
    "delete": lambda b, s: b.delete(s.name, ["op-00000"]),
    "delete-no-ids": lambda b, s: b.delete(s.name, []),
    "fetch": lambda b, s: b.fetch(s.name, ["op-00000"]),
    "scan": lambda b, s: b.scan(s.name),
    "search": lambda b, s: b.search(s.name, make_vectors(1, s.dimension, 5), 3),
    "count": lambda b, s: b.count(s.name),
}

_CLOSED_OPS: dict[str, _NamespaceOp] = {
    **_NAMESPACE_OPS,
    "create_namespace": lambda b, s: b.create_namespace(s),
    "create_namespace-new": lambda b, s: b.create_namespace(
        make_spec(s.name + "_new", s.dimension, s.metric)
    ),
    "list_namespaces": lambda b, s: b.list_namespaces(),
    "drop_namespace": lambda b, s: b.drop_namespace(s.name),
    "set_alias": lambda b, s: b.set_alias(s.name + "_alias", s.name),
    "get_alias": lambda b, s: b.get_alias(s.name + "_alias"),
    "drop_alias": lambda b, s: b.drop_alias(s.name + "_alias"),
}
_ALIAS_OPS = frozenset({"set_alias", "get_alias", "drop_alias"})


class ComplianceBase:
    """The one fixture and the helpers every area of the suite shares.

    A subclass provides the ``backend`` fixture; optionally it overrides :meth:`reopen`,
    :meth:`open_second`, :attr:`dimension`, :attr:`low_dimension` and
    :attr:`namespace_prefix`. See the module docstring for an example.
    """

    #: Dimension of the vectors the suite writes.
    dimension: ClassVar[int] = 16
    #: A second, low dimension some search tests also run at.
    low_dimension: ClassVar[int] = 8
    #: Number of vectors of :meth:`test_search_at_scale`; raise it above the size under
    #: which your backend searches exhaustively, so that its ANN index is tested.
    scale_count: ClassVar[int] = 2400
    #: Smallest mean recall@10 :meth:`test_search_at_scale` accepts.
    min_recall: ClassVar[float] = 0.9
    #: Prepended to every namespace name the suite uses (lowercase letters, digits and
    #: ``_`` follow it, at most 24 characters).
    namespace_prefix: ClassVar[str] = "vv_"

    # -- what a subclass provides -----------------------------------------------------

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        """A fresh, open backend with none of the suite's namespaces. Override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must define a pytest fixture `backend` that yields a "
            "fresh, open vecver Backend (see vecver.testing.compliance)"
        )

    def reopen(self, backend: Backend) -> Backend:
        """Close ``backend`` and return a new instance over the same storage.

        The default skips the persistence tests; a persistent backend overrides it.
        """
        pytest.skip(f"{type(self).__name__} does not override reopen(): persistence untested")

    def open_second(self, backend: Backend) -> Backend:
        """Another instance over the same storage as ``backend``, which stays open (for
        backends declaring ``shared_between_processes``; it stands in for another process).

        The default skips the sharing tests; such a backend overrides it.
        """
        pytest.skip(f"{type(self).__name__} does not override open_second(): sharing untested")

    # -- helpers ----------------------------------------------------------------------

    def ns(self, base: str) -> str:
        """The namespace name the suite uses for ``base``."""
        return f"{self.namespace_prefix}{base}"

    def spec(
        self,
        base: str = "items",
        metric: Metric = "cosine",
        *,
        dimension: int | None = None,
        fingerprint: str | None = None,
    ) -> NamespaceSpec:
        return make_spec(self.ns(base), dimension or self.dimension, metric, fingerprint)

    def write(self, backend: Backend, namespace: str, records: Sequence[Record]) -> None:
        """Upsert ``records`` in batches of at most ``capabilities.max_batch``."""
        step = max(1, backend.capabilities.max_batch)
        for i in range(0, len(records), step):
            backend.upsert(namespace, records[i : i + step])

    def filled(
        self,
        backend: Backend,
        base: str = "items",
        n: int = 50,
        *,
        metric: Metric = "cosine",
        seed: int = 0,
        metadata: MetadataFn | None = standard_metadata,
    ) -> tuple[NamespaceSpec, list[Record]]:
        """Create namespace ``base`` and write ``n`` records to it."""
        spec = self.spec(base, metric)
        backend.create_namespace(spec)
        records = make_records(spec, n, seed, metadata=metadata)
        self.write(backend, spec.name, records)
        return spec, records

    @staticmethod
    def require_filter_ops(backend: Backend, ops: frozenset[str]) -> None:
        missing = sorted(ops - set(backend.capabilities.filter_ops))
        if missing:
            pytest.skip(f"backend declares no support for filter operator(s) {missing}")

    @staticmethod
    def require_native_alias(backend: Backend) -> None:
        if not backend.capabilities.native_alias:
            pytest.skip("backend declares no native aliases (capabilities.native_alias)")

    def reopened(self, backend: Backend) -> Backend:
        """:meth:`reopen`, skipping when the backend does not declare persistence."""
        if not backend.capabilities.persistent:
            pytest.skip("backend declares it is not persistent (capabilities.persistent)")
        new = self.reopen(backend)
        assert new is not backend, "reopen() must return a new backend instance"
        return new

    @staticmethod
    def queries(n: int, dimension: int, seed: int = 123) -> Matrix:
        return make_vectors(n, dimension, seed + 10_000)


class NamespaceTests(ComplianceBase):
    """Creating, describing, listing and dropping namespaces; the naming rule; isolation."""

    def test_capabilities_are_declared(self, backend: Backend) -> None:
        """The backend class declares a name and a :class:`Capabilities` instance.

        Troubleshooting: set ``name = "..."`` and ``capabilities = Capabilities(...)`` as
        class attributes; ``filter_ops`` may only name ``eq``, ``in`` and ``range``, and
        ``max_batch`` must be at least 1.
        """
        cls = type(backend)
        assert isinstance(cls.capabilities, Capabilities)
        assert isinstance(cls.name, str) and cls.name and cls.name != "abstract"
        assert set(cls.capabilities.filter_ops) <= {"eq", "in", "range"}
        assert cls.capabilities.max_batch >= 1
        assert not backend.closed, "the fixture must yield an open backend"

    @pytest.mark.parametrize("metric", METRICS)
    def test_create_and_describe_namespace(self, backend: Backend, metric: Metric) -> None:
        """``describe_namespace`` returns exactly the spec the namespace was created with
        (name, dimension, metric, fingerprint), for every metric, and a new namespace is
        empty.

        Troubleshooting: store the whole spec (fingerprint included) with the namespace;
        map vecver's metric names to the database's own and back.
        """
        spec = self.spec(f"create_{metric}", metric)
        backend.create_namespace(spec)
        got = backend.describe_namespace(spec.name)
        assert got == spec, f"describe_namespace returned {got}, expected {spec}"
        assert backend.count(spec.name) == 0

    def test_create_namespace_is_idempotent(self, backend: Backend) -> None:
        """Creating a namespace again with the same spec is a no-op: no error, and the
        records already in it are kept.

        Troubleshooting: when the namespace exists, compare its stored spec with the
        requested one and return if they are equal (never drop and recreate).
        """
        spec, records = self.filled(backend, n=10)
        backend.create_namespace(spec)
        backend.create_namespace(
            make_spec(spec.name, spec.dimension, spec.metric, spec.fingerprint)
        )
        assert backend.count(spec.name) == 10
        assert set(backend.fetch(spec.name, [r.id for r in records])) == {r.id for r in records}
        assert backend.describe_namespace(spec.name) == spec

    @pytest.mark.parametrize("change", ["dimension", "metric", "fingerprint"])
    def test_create_namespace_with_other_spec_raises(self, backend: Backend, change: str) -> None:
        """Creating an existing namespace with another dimension, metric or fingerprint
        raises ``NamespaceExists`` and leaves the namespace (spec and records) unchanged.

        Troubleshooting: compare all three of dimension, metric and fingerprint with the
        stored spec before anything else.
        """
        spec, _ = self.filled(backend, n=5)
        other = {
            "dimension": make_spec(spec.name, spec.dimension + 1, spec.metric),
            "metric": make_spec(spec.name, spec.dimension, "l2", spec.fingerprint),
            "fingerprint": make_spec(
                spec.name, spec.dimension, spec.metric, fingerprint_for("other")
            ),
        }[change]
        with pytest.raises(NamespaceExists):
            backend.create_namespace(other)
        assert backend.describe_namespace(spec.name) == spec
        assert backend.count(spec.name) == 5

    def test_list_namespaces_is_sorted_and_complete(self, backend: Backend) -> None:
        """``list_namespaces`` contains every created namespace, is sorted, and forgets a
        dropped one.

        Troubleshooting: return plain ``str`` names sorted with ``sorted()``; do not list
        internal tables (manifests, alias records) as namespaces.
        """
        names = [self.ns(b) for b in ("b_two", "a_one", "c_three")]
        for i, name in enumerate(names):
            backend.create_namespace(make_spec(name, self.dimension, METRICS[i]))
        listed = backend.list_namespaces()
        assert isinstance(listed, list) and all(isinstance(n, str) for n in listed)
        assert listed == sorted(listed), f"list_namespaces is not sorted: {listed}"
        assert set(names) <= set(listed), f"missing from list_namespaces: {listed}"
        backend.drop_namespace(names[0])
        listed = backend.list_namespaces()
        assert names[0] not in listed and set(names[1:]) <= set(listed)

    def test_drop_namespace_removes_it(self, backend: Backend) -> None:
        """After ``drop_namespace``, the namespace is gone: describe raises
        ``NamespaceNotFound`` and other namespaces are untouched.

        Troubleshooting: delete the namespace's storage and its spec; scope the deletion to
        that one namespace.
        """
        spec, _ = self.filled(backend, "gone", n=5)
        keep, _ = self.filled(backend, "kept", n=7, seed=1)
        backend.drop_namespace(spec.name)
        with pytest.raises(NamespaceNotFound):
            backend.describe_namespace(spec.name)
        assert spec.name not in backend.list_namespaces()
        assert backend.count(keep.name) == 7

    def test_drop_namespace_is_idempotent(self, backend: Backend) -> None:
        """Dropping a namespace twice, or one that never existed, does not raise.

        Troubleshooting: ignore "not found" from the database in ``drop_namespace``.
        """
        spec, _ = self.filled(backend, n=3)
        backend.drop_namespace(spec.name)
        backend.drop_namespace(spec.name)
        backend.drop_namespace(self.ns("never_created"))

    def test_recreated_namespace_starts_empty(self, backend: Backend) -> None:
        """A namespace dropped and created again (even with another dimension and metric)
        holds none of the old records: count, fetch, scan and search see nothing.

        Troubleshooting: ``drop_namespace`` must remove the vectors and documents, not only
        the spec; cached indexes keyed by name must be evicted.
        """
        spec, records = self.filled(backend, n=20, metric="cosine")
        backend.drop_namespace(spec.name)
        new = make_spec(spec.name, self.dimension + 2, "l2")
        backend.create_namespace(new)
        assert backend.describe_namespace(new.name) == new
        assert backend.count(new.name) == 0
        assert backend.fetch(new.name, [r.id for r in records]) == {}
        assert scan_all(backend, new.name, 7) == []
        assert backend.search(new.name, self.queries(2, new.dimension), 5) == [[], []]

    @pytest.mark.parametrize("op", sorted(_NAMESPACE_OPS))
    def test_unknown_namespace_raises(self, backend: Backend, op: str) -> None:
        """Every data operation on a namespace that was never created raises
        ``NamespaceNotFound`` (even with an empty batch or id list), and creates nothing.

        Troubleshooting: look the namespace up before validating or short-cutting empty
        input; translate the database's "collection not found" into ``NamespaceNotFound``.
        """
        spec = self.spec("unknown")
        with pytest.raises(NamespaceNotFound):
            _NAMESPACE_OPS[op](backend, spec)
        assert spec.name not in backend.list_namespaces()

    @pytest.mark.parametrize("op", sorted(_NAMESPACE_OPS))
    def test_dropped_namespace_raises(self, backend: Backend, op: str) -> None:
        """Every data operation on a dropped namespace raises ``NamespaceNotFound``, and
        does not bring the namespace back.

        Troubleshooting: evict any cached handle or index of a namespace when it is dropped.
        """
        spec, _ = self.filled(backend, "dropped", n=5)
        backend.drop_namespace(spec.name)
        with pytest.raises(NamespaceNotFound):
            _NAMESPACE_OPS[op](backend, spec)
        assert spec.name not in backend.list_namespaces()

    def test_namespaces_are_isolated(self, backend: Backend) -> None:
        """The same ids in two namespaces are two independent records: writes and deletes
        in one never show in the other, and search in one never returns the other's.

        Troubleshooting: key storage by (namespace, id), never by id alone.
        """
        a = self.spec("iso_a")
        b = self.spec("iso_b", "dot")
        backend.create_namespace(a)
        backend.create_namespace(b)
        ra = make_records(a, 30, seed=1)
        rb = make_records(b, 30, seed=2, text_prefix="B ")
        self.write(backend, a.name, ra)
        self.write(backend, b.name, rb)
        backend.delete(a.name, [r.id for r in ra[:10]])
        assert backend.count(a.name) == 20 and backend.count(b.name) == 30
        got = backend.fetch(b.name, [r.id for r in rb], with_vectors=True)
        for r in rb:
            assert_record_equal(b.metric, got[r.id], r, with_vector=True)
        q = self.queries(3, self.dimension)
        assert_hits_match_reference(backend.search(b.name, q, 40), b.metric, q, rb, 40)
        assert_hits_match_reference(backend.search(a.name, q, 40), a.metric, q, ra[10:], 40)

    @pytest.mark.parametrize(
        ("collection", "label"), [("news", "v2"), ("docs", "minilm-v1.5"), ("a", "x")]
    )
    def test_physical_name_is_a_valid_namespace(
        self, backend: Backend, collection: str, label: str
    ) -> None:
        """``physical_name`` gives, for a collection, a space label and a fingerprint, a
        name the backend's own ``check_namespace_name`` accepts and ``create_namespace``
        creates; it is deterministic, differs when any of the three differs, and is never
        the collection's name (that is the alias).

        Troubleshooting: make ``physical_name`` produce only characters your database
        allows in a collection/index name (lowercase, dashes, a leading letter, a length
        limit) and keep the fingerprint prefix in it, so that spaces never share a name.
        """
        cls = type(backend)
        fp, other_fp = fingerprint_for("pn-a"), fingerprint_for("pn-b")
        name = cls.physical_name(collection, label, fp)
        assert isinstance(name, str) and name
        assert name == cls.physical_name(collection, label, fp)
        others = {
            cls.physical_name(collection + "x", label, fp),
            cls.physical_name(collection, label + "x", fp),
            cls.physical_name(collection, label, other_fp),
        }
        assert name not in others and len(others) == 3
        assert name != collection
        cls.check_namespace_name(name)
        spec = make_spec(name, self.dimension, "cosine", fp)
        backend.create_namespace(spec)
        assert name in backend.list_namespaces()
        assert backend.describe_namespace(name) == spec
        backend.drop_namespace(name)

    @pytest.mark.parametrize("bad", ["", "bad\x00name", "tab\there", 3])
    def test_invalid_namespace_name_creates_nothing(self, backend: Backend, bad: Any) -> None:
        """A name the backend's naming rule rejects (empty, with a NUL or another control
        character, not a string) raises ``InvalidNamespaceName`` from both
        ``check_namespace_name`` and ``create_namespace``, and nothing is created.

        Troubleshooting: the base calls ``check_namespace_name`` before
        ``_create_namespace``; an override must raise ``InvalidNamespaceName`` (not return
        False, not let the database fail later).
        """
        before = backend.list_namespaces()
        with pytest.raises(InvalidNamespaceName):
            type(backend).check_namespace_name(bad)
        with pytest.raises(InvalidNamespaceName):
            backend.create_namespace(NamespaceSpec(bad, self.dimension, "cosine", "f" * 64))
        assert backend.list_namespaces() == before


class WriteTests(ComplianceBase):
    """Upsert and delete: round trips, replacements, deletes, chunking by the declared limits."""

    @pytest.mark.parametrize("metric", METRICS)
    def test_upsert_fetch_round_trip(self, backend: Backend, metric: Metric) -> None:
        """Every field written comes back from ``fetch(..., with_vectors=True)``: the vector
        (within 1e-5; for cosine the direction), the text, the metadata with the same JSON
        types, and the stamp.

        Troubleshooting: store the stamp's four fields next to the document; keep metadata
        as JSON (bool stays bool, int stays int); return float32 vectors as stored.
        """
        spec, records = self.filled(backend, f"rt_{metric}", n=40, metric=metric)
        got = backend.fetch(spec.name, [r.id for r in records], with_vectors=True)
        assert isinstance(got, dict)
        assert sorted(got) == sorted(r.id for r in records)
        for r in records:
            assert_record_equal(metric, got[r.id], r, with_vector=True)

    def test_metadata_value_types_round_trip(self, backend: Backend) -> None:
        """Awkward metadata values come back with their type and value: ``True``/``False``
        (not 1/0), ``0``, ``1``, large and negative ints (not floats), floats, empty and
        numeric-looking strings, non-ASCII strings, JSON null, lists and nested objects
        (any JSON: the core passes documents' metadata through as JSON); and empty metadata
        stays empty.

        Troubleshooting: store metadata as JSON; a database that keeps numbers as doubles
        must record the original type to give ints back as ints.
        """
        spec = self.spec()
        backend.create_namespace(spec)
        values: list[dict[str, Any]] = [
            {"t": True, "f": False, "zero": 0, "one": 1},
            {"big": 2**40 + 1, "neg": -7, "half": 0.5, "tiny": 1e-7, "neg_float": -2.25},
            {"empty": "", "digits": "1", "word": "true", "uni": "Zoë — 東京 🚀"},
            {"float_int": 3.0, "zero_float": 0.0, "null": None},
            {"tags": ["a", "b", 1, True, None], "obj": {"k": [1.5, {"deep": False}], "e": {}}},
            {"empty_list": [], "list_of_one": ["x"]},
            {},
        ]
        base = make_records(spec, len(values), seed=3)
        records = [restamp(r, metadata=md) for r, md in zip(base, values, strict=True)]
        backend.upsert(spec.name, records)
        got = backend.fetch(spec.name, [r.id for r in records])
        for r in records:
            assert_metadata_equal(got[r.id].metadata, r.metadata, f"record {r.id!r}")

    def test_ids_and_texts_with_special_characters(self, backend: Backend) -> None:
        """Ids and texts are arbitrary non-empty strings: slashes, spaces, quotes, colons,
        non-ASCII, emoji, digits only, 200 characters. They round-trip through fetch, scan
        and search, and an empty text is kept as the empty string.

        Troubleshooting: never parse ids (a database that needs numeric or UUID ids must
        map them and keep the original string); escape ids in query languages.
        """
        spec = self.spec()
        backend.create_namespace(spec)
        ids = ["doc/1", "Doc 2", "it's \"quoted\"", "a:b;c,d", "ü-ñ-東京", "emoji-🚀",
               "0", "1e3", "x" * 200, "-", "UPPER", "upper"]  # fmt: skip
        texts = ["", "line\nbreak", "tab\there", "😀" * 5] + [f"t{i}" for i in range(8)]
        vecs = make_vectors(len(ids), spec.dimension, 8)
        records = [
            Record(i, vecs[j], texts[j], {"n": j}, Stamp.now(spec.fingerprint, i, texts[j]))
            for j, i in enumerate(ids)
        ]
        backend.upsert(spec.name, records)
        got = backend.fetch(spec.name, ids, with_vectors=True)
        assert sorted(got) == sorted(ids)
        for r in records:
            assert_record_equal(spec.metric, got[r.id], r, with_vector=True)
        scanned = scan_all(backend, spec.name, 5)
        assert sorted(r.id for r in scanned) == sorted(ids)
        q = vecs[:3]
        assert_hits_match_reference(backend.search(spec.name, q, 4), spec.metric, q, records, 4)
        backend.delete(spec.name, ids[:6])
        assert sorted(backend.fetch(spec.name, ids)) == sorted(ids[6:])

    def test_upsert_empty_batch_is_a_no_op(self, backend: Backend) -> None:
        """``upsert(ns, [])`` does nothing and does not raise.

        Troubleshooting: return early on an empty batch (after checking the namespace).
        """
        spec, _ = self.filled(backend, n=4)
        backend.upsert(spec.name, [])
        assert backend.count(spec.name) == 4

    def test_upsert_accepts_a_full_batch(self, backend: Backend) -> None:
        """One ``upsert`` of ``min(max_batch, 1000)`` records succeeds and stores them all.

        Troubleshooting: the declared ``capabilities.max_batch`` must really be accepted by
        the database in one call (split internally if the database's limit is lower).
        """
        spec = self.spec()
        backend.create_namespace(spec)
        n = min(backend.capabilities.max_batch, 1000)
        records = make_records(spec, n, seed=11)
        backend.upsert(spec.name, records)
        assert backend.count(spec.name) == n
        assert len(scan_all(backend, spec.name, 1000)) == n

    def test_reupsert_replaces_the_record(self, backend: Backend) -> None:
        """Upserting an existing id replaces the whole record: count unchanged; the newest
        text, vector, stamp and metadata win (metadata is replaced, not merged: a field
        absent from the new version is gone).

        Troubleshooting: delete-then-insert or overwrite by id; never merge metadata, never
        keep two vectors for one id.
        """
        spec, old = self.filled(backend, n=20, metric="dot")
        new_vecs = make_vectors(10, spec.dimension, 77)
        new = [
            restamp(
                r,
                text="NEW " + (r.text or ""),
                vector=new_vecs[i],
                metadata={"topic": "updated", "version": 2},
            )
            for i, r in enumerate(old[:10])
        ]
        backend.upsert(spec.name, new)
        assert backend.count(spec.name) == 20
        got = backend.fetch(spec.name, [r.id for r in old], with_vectors=True)
        for r in new + old[10:]:
            assert_record_equal(spec.metric, got[r.id], r, with_vector=True)
        again = [restamp(r, text="NEWEST") for r in new[:3]]
        backend.upsert(spec.name, again)
        got = backend.fetch(spec.name, [r.id for r in again])
        assert all(got[r.id].text == "NEWEST" for r in again)
        assert backend.count(spec.name) == 20
        assert len(scan_all(backend, spec.name, 1000)) == 20

    def test_reupsert_moves_the_vector_in_search(self, backend: Backend) -> None:
        """After a re-upsert, search uses the new vector only: a record moved onto a query
        is its best hit with the new score, and the old position finds it no more.

        Troubleshooting: update the index entry in place (or delete and re-add it); an
        index keeping the stale vector returns the id at its old position.
        """
        for metric in METRICS:
            spec, records = self.filled(backend, f"move_{metric}", n=60, metric=metric, seed=5)
            target = records[7]
            q = self.queries(1, spec.dimension, seed=55) * 3.0
            moved = restamp(target, vector=q[0], text="moved")
            backend.upsert(spec.name, [moved])
            current = [moved if r.id == target.id else r for r in records]
            got = backend.search(spec.name, q, 5)
            assert got[0][0].id == target.id
            assert_hits_match_reference(got, metric, q, current, 5, where=f"{metric} search")
            old_q = np.asarray(target.vector, dtype=np.float32)[None, :]
            got = backend.search(spec.name, old_q, 5)
            assert_hits_match_reference(got, metric, old_q, current, 5, where=f"{metric} old")

    def test_stored_records_do_not_alias_caller_objects(self, backend: Backend) -> None:
        """Mutating the records, vectors or metadata dicts after ``upsert`` (or mutating what
        ``fetch`` returned) does not change what is stored.

        Troubleshooting: copy vectors and metadata on write and on read.
        """
        spec, records = self.filled(backend, n=5, metric="l2")
        expected = make_records(spec, 5, 0)
        for r in records:
            assert r.vector is not None
            r.vector[:] = 0.0
            r.metadata["topic"] = "mutated"
        got = backend.fetch(spec.name, [r.id for r in expected], with_vectors=True)
        for rec in got.values():
            assert rec.vector is not None
            rec.vector[:] = 1.0
            rec.metadata["topic"] = "mutated again"
        got = backend.fetch(spec.name, [r.id for r in expected], with_vectors=True)
        for r in expected:
            assert got[r.id].stamp.source_hash == r.stamp.source_hash
            assert_vector_equal(spec.metric, got[r.id].vector, r.vector, r.id)
            assert_metadata_equal(got[r.id].metadata, r.metadata, r.id)

    def test_delete_removes_records(self, backend: Backend) -> None:
        """After ``delete``, count drops, fetch leaves the ids out, scan skips them and search
        never returns them (also with k larger than what is left).

        Troubleshooting: remove the id from the vector index (or mark it deleted there) as
        well as from the document store.
        """
        spec, records = self.filled(backend, n=60, metric="cosine")
        gone = [r.id for r in records[::3]]
        backend.delete(spec.name, gone)
        left = [r for r in records if r.id not in set(gone)]
        assert backend.count(spec.name) == len(left)
        assert backend.fetch(spec.name, gone) == {}
        assert sorted(r.id for r in scan_all(backend, spec.name, 7)) == sorted(r.id for r in left)
        q = np.stack([np.asarray(r.vector) for r in records[:6]])
        assert_hits_match_reference(backend.search(spec.name, q, 10), spec.metric, q, left, 10)
        assert_hits_match_reference(backend.search(spec.name, q, 100), spec.metric, q, left, 100)

    def test_delete_ignores_missing_ids(self, backend: Backend) -> None:
        """Deleting ids that are not present (never written, or already deleted) is not an
        error; an empty id list does nothing.

        Troubleshooting: ignore "not found" per id; do not pre-check existence and raise.
        """
        spec, records = self.filled(backend, n=10)
        backend.delete(spec.name, ["never-there"])
        backend.delete(spec.name, [])
        backend.delete(spec.name, [records[0].id, "never-there-2"])
        backend.delete(spec.name, [records[0].id])
        assert backend.count(spec.name) == 9

    def test_delete_then_write_again(self, backend: Backend) -> None:
        """An id deleted and then written again is present once, with the new content, in
        fetch, scan, count and search.

        Troubleshooting: a tombstone or a "deleted" mark in the index must be cleared when
        the id is written again.
        """
        spec, records = self.filled(backend, n=30, metric="l2")
        backend.delete(spec.name, [r.id for r in records[:5]])
        back = [
            restamp(r, text="back", vector=make_vectors(5, spec.dimension, 9)[i])
            for i, r in enumerate(records[:5])
        ]
        backend.upsert(spec.name, back)
        current = back + records[5:]
        assert backend.count(spec.name) == 30
        got = backend.fetch(spec.name, [r.id for r in back], with_vectors=True)
        for r in back:
            assert_record_equal(spec.metric, got[r.id], r, with_vector=True)
        assert sorted(r.id for r in scan_all(backend, spec.name, 4)) == sorted(
            r.id for r in current
        )
        q = make_vectors(5, spec.dimension, 9)
        assert_hits_match_reference(backend.search(spec.name, q, 8), spec.metric, q, current, 8)

    def test_delete_everything(self, backend: Backend) -> None:
        """Deleting every record leaves an empty namespace that still exists: count 0, empty
        scan, search returns one empty list per query; writing again works.

        Troubleshooting: an index with zero live entries must not fail on search.
        """
        spec, records = self.filled(backend, n=25)
        backend.delete(spec.name, [r.id for r in records])
        assert backend.count(spec.name) == 0
        assert scan_all(backend, spec.name, 10) == []
        assert backend.search(spec.name, self.queries(3, spec.dimension), 5) == [[], [], []]
        assert backend.describe_namespace(spec.name) == spec
        backend.upsert(spec.name, records[:2])
        assert backend.count(spec.name) == 2

    def test_calls_longer_than_the_declared_limits_are_chunked(self, backend: Backend) -> None:
        """One ``upsert``, ``fetch`` and ``delete`` of more records/ids than the declared
        ``max_batch`` / ``max_fetch_ids`` / ``max_delete_ids`` (up to 2,500) succeed
        completely: the base cuts them into chunks the database accepts.

        Troubleshooting: declare the database's real limits in ``Capabilities`` (Pinecone
        takes at most 1,000 ids per fetch and delete); the base does the chunking, a
        backend's ``_methods`` only ever see lists within the limits.
        """
        caps = backend.capabilities
        n = min(2 * max(caps.max_batch, caps.max_fetch_ids, caps.max_delete_ids) + 1, 2500)
        spec = self.spec("chunks")
        backend.create_namespace(spec)
        records = make_records(spec, n, seed=12, metadata=None)
        backend.upsert(spec.name, records)
        assert backend.count(spec.name) == n
        got = backend.fetch(spec.name, [r.id for r in records])
        assert sorted(got) == sorted(r.id for r in records)
        backend.delete(spec.name, [r.id for r in records[: n - 3]])
        assert backend.count(spec.name) == 3
        assert sorted(backend.fetch(spec.name, [r.id for r in records])) == sorted(
            r.id for r in records[n - 3 :]
        )


class ReadTests(ComplianceBase):
    """Fetch, scan (stable order, cursors, writes between pages), count, storage estimate."""

    def test_fetched_vectors_are_float32_arrays(self, backend: Backend) -> None:
        """Vectors come back as 1-d float32 numpy arrays of the namespace's dimension.

        Troubleshooting: ``np.asarray(v, dtype=np.float32)`` before building the Record.
        """
        spec, records = self.filled(backend, n=5, metric="l2")
        for rec in backend.fetch(spec.name, [r.id for r in records], with_vectors=True).values():
            v = rec.vector
            assert isinstance(v, np.ndarray), f"vector is a {type(v).__name__}"
            assert v.dtype == np.float32 and v.shape == (self.dimension,), (v.dtype, v.shape)

    def test_fetch_without_vectors_keeps_the_document(self, backend: Backend) -> None:
        """``fetch`` without vectors still returns text, metadata and stamp (the vector may
        be ``None``).

        Troubleshooting: fetch the stored document fields even when vectors are not asked.
        """
        spec, records = self.filled(backend, n=10)
        got = backend.fetch(spec.name, [r.id for r in records])
        for r in records:
            assert_record_equal(spec.metric, got[r.id], r, with_vector=False)
            if got[r.id].vector is not None:
                assert_vector_equal(spec.metric, got[r.id].vector, r.vector, r.id)

    def test_reads_without_text(self, backend: Backend) -> None:
        """``fetch`` and ``scan`` with ``with_text=False`` give the records a read with
        the text gives (ids, stamps, metadata; vectors when asked), every ``text`` None;
        the scan has the same order and cursors as one with the text, and either kind of
        scan resumes from the other's cursor.

        Troubleshooting: ``_fetch_without_text`` / ``_scan_without_text`` must read the
        same records as ``_fetch`` / ``_scan`` and leave out only the text (a field list
        or payload selector that drops a stamp or metadata field is the usual bug).
        """
        spec, records = self.filled(backend, n=23, metric="l2")
        lean = {r.id: dataclasses.replace(r, text=None) for r in records}
        ids = [r.id for r in records]
        for with_vectors in (False, True):
            got = backend.fetch(spec.name, [*ids, "absent-1"], with_vectors=with_vectors,
                                with_text=False)
            assert sorted(got) == sorted(lean), "fetch without text: other ids"
            for i, rec in got.items():
                assert_record_equal(spec.metric, rec, lean[i], with_vector=with_vectors,
                                    where=f"fetch without text of {i!r}")
        full_pages: list[tuple[list[str], str | None]] = []
        cursor: str | None = None
        while True:
            page = backend.scan(spec.name, cursor=cursor, limit=5)
            full_pages.append(([r.id for r in page.records], page.next_cursor))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        cursor = None
        for n, (want_ids, want_next) in enumerate(full_pages):
            page = backend.scan(spec.name, cursor=cursor, limit=5, with_vectors=(n == 1),
                                with_text=False)
            assert [r.id for r in page.records] == want_ids, f"page {n}: another order"
            assert page.next_cursor == want_next, f"page {n}: another cursor"
            for r in page.records:
                assert_record_equal(spec.metric, r, lean[r.id], with_vector=(n == 1),
                                    where=f"scan without text of {r.id!r}")
            cursor = page.next_cursor
        # cursors are interchangeable: a scan with the text resumes a lean one, and back
        lean_first = backend.scan(spec.name, limit=7, with_text=False)
        assert lean_first.next_cursor is not None
        rest = scan_all(backend, spec.name, 7, cursor=lean_first.next_cursor)
        assert [r.id for r in lean_first.records + rest] == [i for p, _ in full_pages
                                                              for i in p]
        texts = {r.id: r.text for r in records}
        assert all(r.text == texts[r.id] for r in rest), "a scan with the text lost it"
        full_first = backend.scan(spec.name, limit=7)
        assert full_first.next_cursor is not None
        tail = backend.scan(spec.name, cursor=full_first.next_cursor, limit=100,
                            with_text=False)
        assert [r.id for r in full_first.records + tail.records] == [
            i for p, _ in full_pages for i in p]
        assert all(r.text is None for r in tail.records)

    def test_fetch_leaves_out_absent_ids(self, backend: Backend) -> None:
        """``fetch`` returns only present ids: absent ones are left out (no error, no
        ``None`` values); an empty id list gives an empty dict.

        Troubleshooting: build the result from what the database returned, not from the
        requested ids.
        """
        spec, records = self.filled(backend, n=10)
        ids = [records[0].id, "absent-1", records[5].id, "absent-2"]
        got = backend.fetch(spec.name, ids)
        assert sorted(got) == sorted([records[0].id, records[5].id])
        assert backend.fetch(spec.name, []) == {}
        assert backend.fetch(spec.name, ["absent-3"]) == {}

    def test_scan_covers_every_record_once(self, backend: Backend) -> None:
        """Scanning with page sizes 1, 7 and 1000 returns every record exactly once, in the
        same order each time; pages hold at most ``limit`` records; the last page's
        ``next_cursor`` is ``None``; with vectors, records are complete.

        Troubleshooting: order by a unique, immutable key (e.g. the id); the cursor must
        encode the position after the last returned record, not a page number.
        """
        spec, records = self.filled(backend, n=53, metric="dot")
        by_id = {r.id: r for r in records}
        orders = []
        for limit in (1, 7, 1000):
            got = scan_all(backend, spec.name, limit, with_vectors=(limit == 7))
            ids = [r.id for r in got]
            assert len(ids) == len(set(ids)), f"limit={limit}: duplicates in scan"
            assert sorted(ids) == sorted(by_id), f"limit={limit}: scan misses records"
            orders.append(ids)
            for r in got:
                assert_record_equal(spec.metric, r, by_id[r.id], with_vector=(limit == 7))
        assert orders[0] == orders[1] == orders[2], "scan order depends on the page size"
        again = [r.id for r in scan_all(backend, spec.name, 13)]
        assert again == orders[0], "scan order is not stable between scans"

    def test_scan_default_limit(self, backend: Backend) -> None:
        """``scan(ns)`` with the default limit (256) returns at most 256 records per page and
        covers everything.

        Troubleshooting: honour the ``limit`` keyword's default.
        """
        spec, records = self.filled(backend, n=300)
        first = backend.scan(spec.name)
        assert 0 < len(first.records) <= 256 and first.next_cursor is not None
        rest = scan_all(backend, spec.name, 256, cursor=first.next_cursor)
        assert sorted(r.id for r in first.records + rest) == sorted(r.id for r in records)

    def test_scan_resumes_from_a_cursor(self, backend: Backend) -> None:
        """Scanning from any page's ``next_cursor`` (even with another page size, and
        repeated) returns exactly the records after that page, in the same order.

        Troubleshooting: a cursor must be self-contained (no server-side session that
        expires or is consumed by its first use).
        """
        spec, _ = self.filled(backend, n=40)
        full = [r.id for r in scan_all(backend, spec.name, 40)]
        cursor: str | None = None
        seen: list[str] = []
        for _ in range(3):
            page = backend.scan(spec.name, cursor=cursor, limit=6)
            seen += [r.id for r in page.records]
            cursor = page.next_cursor
            assert cursor is not None
        for limit in (1, 5, 100):
            rest = [r.id for r in scan_all(backend, spec.name, limit, cursor=cursor)]
            assert seen + rest == full, f"resuming with limit={limit} gives another order"

    def test_scan_of_an_empty_namespace(self, backend: Backend) -> None:
        """Scanning an empty namespace gives one empty page with ``next_cursor=None``.

        Troubleshooting: do not hand out a cursor when nothing is left.
        """
        spec = self.spec()
        backend.create_namespace(spec)
        page = backend.scan(spec.name, limit=10)
        assert page.records == [] and page.next_cursor is None

    def test_scan_exact_multiple_of_limit(self, backend: Backend) -> None:
        """When the count is a multiple of ``limit``, the scan still ends (possibly with one
        empty last page) and returns every record once.

        Troubleshooting: the cursor after the last record must lead to an empty final page
        with ``next_cursor=None``.
        """
        spec, records = self.filled(backend, n=20)
        got = scan_all(backend, spec.name, 5)
        assert sorted(r.id for r in got) == sorted(r.id for r in records)

    def test_scan_during_writes(self, backend: Backend) -> None:
        """Records present for the whole scan are returned exactly once even when records are
        written, replaced and deleted between pages; a record deleted before its page is
        reached is not returned; no record is returned twice.

        Troubleshooting: a cursor must be a position in the stable order (e.g. the last id),
        not an offset (offsets skip or repeat records when earlier ones are deleted or
        inserted).
        """
        spec, records = self.filled(backend, n=60)
        page = backend.scan(spec.name, limit=10)
        first = [r.id for r in page.records]
        assert page.next_cursor is not None
        deleted = {r.id for r in records[5:16]} | {r.id for r in records[40:46]}
        backend.delete(spec.name, sorted(deleted))
        backend.upsert(spec.name, make_records(spec, 15, seed=31, id_prefix="a-new"))
        backend.upsert(spec.name, make_records(spec, 15, seed=32, id_prefix="z-new"))
        backend.upsert(spec.name, [restamp(r, text="changed") for r in records[20:30]])
        rest = [r.id for r in scan_all(backend, spec.name, 10, cursor=page.next_cursor)]
        everything = first + rest
        assert len(everything) == len(set(everything)), "a record was returned twice"
        stayed = {r.id for r in records} - deleted
        missing = sorted(stayed - set(everything))
        assert not missing, f"records present for the whole scan were skipped: {missing}"
        resurrected = sorted(deleted & set(rest))
        assert not resurrected, f"deleted records returned after deletion: {resurrected}"

    def test_count_tracks_writes(self, backend: Backend) -> None:
        """``count`` is 0 for a new namespace and follows inserts, replacements (no change)
        and deletes (including of absent ids), exactly.

        Troubleshooting: count live records only (not deleted marks, not index capacity).
        """
        spec = self.spec()
        backend.create_namespace(spec)
        assert backend.count(spec.name) == 0
        records = make_records(spec, 30, seed=4)
        backend.upsert(spec.name, records[:20])
        assert backend.count(spec.name) == 20
        backend.upsert(spec.name, records[10:30])
        assert backend.count(spec.name) == 30
        backend.delete(spec.name, [r.id for r in records[:7]] + ["absent"])
        assert backend.count(spec.name) == 23
        assert isinstance(backend.count(spec.name), int)

    def test_storage_estimate_grows_with_the_data(self, backend: Backend) -> None:
        """``storage_estimate`` is a non-negative int that is larger for a namespace holding
        300 records than for an empty one, and raises ``NamespaceNotFound`` for a namespace
        that does not exist.

        Troubleshooting: override ``_storage_estimate`` with what the database reports, or
        keep the default (count times vector and payload size).
        """
        empty = self.spec("est_empty")
        backend.create_namespace(empty)
        spec, _ = self.filled(backend, "est_full", n=300)
        small = backend.storage_estimate(empty.name)
        big = backend.storage_estimate(spec.name)
        assert isinstance(big, int) and 0 <= small < big
        with pytest.raises(NamespaceNotFound):
            backend.storage_estimate(self.ns("est_none"))


class SearchTests(ComplianceBase):
    """Nearest-neighbour search against exact search, at small and larger scale."""

    @pytest.mark.parametrize("dims", ["default", "low"])
    @pytest.mark.parametrize("metric", METRICS)
    def test_search_matches_exact_search(self, backend: Backend, metric: Metric, dims: str) -> None:
        """On 300 vectors, search for 6 queries at once (one of them a stored vector) returns
        for each query the exact top-k ids (k = 1, 10, 50) in order, scores within 1e-4 of
        ``vecver.backends.base.exact_scores`` (cosine similarity, inner product, negative squared
        euclidean distance), sorted descending. Run at the suite's dimension and at
        :attr:`low_dimension` (where graph indexes over inner product lose recall first).

        Troubleshooting: map the database's distance to vecver's score convention
        (declare it in ``score_from_distance``; l2 is the *squared* distance, negated); raise
        ``ef``/``num_candidates`` or search small namespaces exhaustively, so that small
        collections are searched exactly.
        """
        spec = self.spec(f"s_{metric}_{dims}", metric)
        if dims == "low":
            spec = make_spec(spec.name, self.low_dimension, metric)
        backend.create_namespace(spec)
        records = make_records(spec, 300, seed=7)
        self.write(backend, spec.name, records)
        stored = np.asarray(records[42].vector, dtype=np.float32)[None, :]
        q = np.ascontiguousarray(np.concatenate([self.queries(5, spec.dimension), stored]))
        for k in (1, 10, 50):
            got = backend.search(spec.name, q, k)
            assert_hits_match_reference(got, metric, q, records, k, where=f"search k={k}")
        if metric != "dot":  # under inner product a longer vector may beat the vector itself
            assert backend.search(spec.name, q, 1)[5][0].id == records[42].id

    @pytest.mark.parametrize("dims", ["default", "low"])
    @pytest.mark.parametrize("metric", METRICS)
    def test_search_exact_after_incremental_writes(
        self, backend: Backend, metric: Metric, dims: str
    ) -> None:
        """Like :meth:`test_search_matches_exact_search`, but the namespace (at most 300
        records at any time) is built the way the core writes: many small batches, with
        replacements of existing ids and deletions in between. Search must still return
        the exact top-k (k = 10 and 50) for 20 queries. At the suite's dimension and at
        :attr:`low_dimension`.

        Troubleshooting: an ANN index updated in place (hnswlib re-adding a label, marking
        deletions) loses recall, inner product (``dot``) worst of all, since it is not a
        metric; search small namespaces exhaustively, or raise ``ef`` with the count.
        """
        spec = self.spec(f"inc_{metric}_{dims}", metric)
        if dims == "low":
            spec = make_spec(spec.name, self.low_dimension, metric)
        backend.create_namespace(spec)
        rng = np.random.default_rng(2024)
        current: dict[str, Record] = {}
        for rnd in range(12):
            ids = sorted(rng.choice(300, size=40, replace=False).tolist())
            vecs = rng.standard_normal((len(ids), spec.dimension)).astype(np.float32)
            batch = []
            for i, vec in zip(ids, vecs, strict=True):
                rid, text = f"inc-{i:05d}", f"round {rnd}"
                stamp = Stamp.now(spec.fingerprint, rid, text)
                batch.append(Record(rid, vec, text, {"round": rnd}, stamp))
            for start in range(0, len(batch), 10):
                backend.upsert(spec.name, batch[start : start + 10])
            current.update({r.id: r for r in batch})
            if rnd % 3 == 2:
                gone = [f"inc-{i:05d}" for i in rng.choice(300, size=15, replace=False)]
                backend.delete(spec.name, gone)
                for i in gone:
                    current.pop(i, None)
        records = list(current.values())
        assert backend.count(spec.name) == len(records)
        q = self.queries(20, spec.dimension, seed=99)
        for k in (10, 50):
            got = backend.search(spec.name, q, k)
            assert_hits_match_reference(got, metric, q, records, k, where=f"search k={k}")

    @pytest.mark.parametrize("metric", METRICS)
    def test_search_at_scale(self, backend: Backend, metric: Metric) -> None:
        """On :attr:`scale_count` (2400) vectors — past the size below which backends often
        search exhaustively, so that an ANN index answers — with 5% of the records
        replaced and 10% deleted: every hit is a live record, returned once, with the
        exact score of its current vector (within 1e-4), hits are sorted descending, k hits
        come back, and the mean recall@10 over 20 queries (against exact search) is at
        least :attr:`min_recall` (0.9).

        Troubleshooting: a deleted id returned means deletions do not reach the index (or a
        replaced vector left its old entry behind); wrong scores mean a distance was not
        mapped to vecver's convention; low recall means ``ef``/``num_candidates`` is too
        small for this size.
        """
        n = self.scale_count
        spec = self.spec(f"scale_{metric}", metric)
        backend.create_namespace(spec)
        records = make_records(spec, n, seed=3, metadata=None)
        self.write(backend, spec.name, records)
        rng = np.random.default_rng(5)
        order = rng.permutation(n)
        replaced_at, deleted_at = order[: n // 20], order[n // 20 : n // 20 + n // 10]
        vecs = make_vectors(len(replaced_at), spec.dimension, 6)
        current = list(records)
        for j, i in enumerate(replaced_at.tolist()):
            current[i] = restamp(records[i], vector=vecs[j], text="replaced")
        self.write(backend, spec.name, [current[i] for i in replaced_at.tolist()])
        backend.delete(spec.name, [records[i].id for i in deleted_at.tolist()])
        dead = {records[i].id for i in deleted_at.tolist()}
        live = [r for r in current if r.id not in dead]
        assert backend.count(spec.name) == len(live)
        by_id = {r.id: r for r in live}
        # queries near replaced vectors' old and new positions, and random ones
        q = np.concatenate(
            [
                np.stack([np.asarray(records[i].vector) for i in replaced_at[:5].tolist()]),
                vecs[:5],
                np.stack([np.asarray(records[i].vector) for i in deleted_at[:5].tolist()]),
                self.queries(5, spec.dimension, seed=8),
            ]
        ).astype(np.float32)
        k = 10
        got = backend.search(spec.name, q, k)
        exact = reference_search(metric, q, live, k)
        assert len(got) == len(q)
        recalls = []
        for qi, (hits, exp) in enumerate(zip(got, exact, strict=True)):
            ids = [h.id for h in hits]
            assert len(ids) == k, f"query {qi}: {len(ids)} hits for k={k}"
            assert len(set(ids)) == k, f"query {qi}: an id returned twice: {ids}"
            stale = [i for i in ids if i not in by_id]
            assert not stale, f"query {qi}: deleted records returned: {stale}"
            scores = exact_scores(
                metric, q[qi : qi + 1], np.stack([np.asarray(by_id[i].vector) for i in ids])
            )[0]
            for h, s in zip(hits, scores, strict=True):
                assert score_close(h.score, float(s)), (
                    f"query {qi}: score of {h.id} is {h.score}, exact score of its current "
                    f"vector is {float(s):.6f}"
                )
            assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
            recalls.append(len(set(ids) & {i for i, _ in exp}) / k)
        recall = float(np.mean(recalls))
        assert recall >= self.min_recall, (
            f"mean recall@{k} is {recall:.3f} < {self.min_recall} (per query: {recalls})"
        )

    def test_search_hits_carry_the_document(self, backend: Backend) -> None:
        """Each hit carries the stored record's text, metadata and stamp, and a Python float
        score.

        Troubleshooting: request the payload/document fields with the search; convert numpy
        scores with ``float()``.
        """
        spec, records = self.filled(backend, n=40)
        got = backend.search(spec.name, self.queries(3, spec.dimension), 5)
        assert_hits_carry_payload(spec.metric, got, {r.id: r for r in records}, "search")

    def test_search_k_larger_than_count(self, backend: Backend) -> None:
        """With ``k`` larger than the number of records, every record is returned, once, in
        exact order.

        Troubleshooting: clamp k to the live count before asking an ANN index (hnswlib
        raises when it cannot fill k results).
        """
        for metric in METRICS:
            spec, records = self.filled(backend, f"big_k_{metric}", n=12, metric=metric)
            q = self.queries(2, spec.dimension)
            assert_hits_match_reference(backend.search(spec.name, q, 50), metric, q, records, 50)
            assert_hits_match_reference(backend.search(spec.name, q, 12), metric, q, records, 12)

    def test_search_empty_namespace(self, backend: Backend) -> None:
        """Search on an empty namespace returns one empty list per query.

        Troubleshooting: do not query an empty index (several raise); return ``[[]] * q``
        built as separate lists.
        """
        for metric in METRICS:
            spec = self.spec(f"empty_{metric}", metric)
            backend.create_namespace(spec)
            got = backend.search(spec.name, self.queries(4, spec.dimension), 10)
            assert got == [[], [], [], []]


class FilterTests(ComplianceBase):
    """Filtered search against the reference semantics of ``Filter.matches``."""

    def test_search_with_empty_filter(self, backend: Backend) -> None:
        """An empty ``Filter()`` matches everything: results equal unfiltered search.

        Troubleshooting: treat a falsy filter as no filter.
        """
        spec, records = self.filled(backend, n=50)
        q = self.queries(2, spec.dimension)
        got = backend.search(spec.name, q, 10, filter=Filter())
        assert_hits_match_reference(got, spec.metric, q, records, 10)

    @pytest.mark.parametrize("case", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
    def test_filtered_search_matches_reference(self, backend: Backend, case: FilterCase) -> None:
        """Filtered search equals exact search over exactly the records for which
        ``Filter.matches(metadata)`` is true (the reference semantics): equality,
        membership and ranges on strings, ints, floats and bools; a condition on an absent
        field is false; bool, numbers and strings never equal each other (``True`` is not
        ``1``, ``"1"`` is not ``1``) while ints and floats compare as numbers; a range never
        matches a bool or a value of the other kind; conditions combine with AND, also
        several on one field. k=10 and k=300 (more than the matches).

        Troubleshooting: translate each condition separately (do not merge conditions on one
        field into one dict); add explicit type guards where the database compares
        ``True == 1`` or strings with numbers; let an ANN index's filtered search look far
        enough to find every match on small data.
        """
        name, flt, ops, data = case
        self.require_filter_ops(backend, ops)
        n, md = _DATASETS[data]
        spec, records = self.filled(backend, f"f_{data}", n=n, seed=13, metadata=md)
        q = self.queries(3, spec.dimension, seed=17)
        for k in (10, 300):
            got = backend.search(spec.name, q, k, filter=flt)
            assert_hits_match_reference(
                got, spec.metric, q, records, k, flt, where=f"filter {name} {flt.to_dict()} k={k}"
            )
        hits = backend.search(spec.name, q[:1], 300, filter=flt)[0]
        for h in hits:
            assert flt.matches(h.metadata), f"hit {h.id} has metadata {h.metadata}"

    def test_filter_cases_are_not_vacuous(self) -> None:
        """(Self-check of the suite.) The filter cases select a proper, non-trivial subset
        of their data set, except the cases that must match nothing."""
        for name, flt, _ops, data in FILTER_CASES:
            n, md = _DATASETS[data]
            rng = np.random.default_rng([13, 0, 7919])
            metas = [md(i, rng) for i in range(n)]
            hits = sum(flt.matches(m) for m in metas)
            if name in _EMPTY_CASES:
                assert hits == 0, name
            else:
                assert 0 < hits < n, (name, hits)

    def test_undeclared_filter_operator_is_refused(self, backend: Backend) -> None:
        """A filter using an operator the backend does not declare in
        ``capabilities.filter_ops`` raises ``UnsupportedFilter`` (an ``InvalidFilter``)
        before the database is asked; something that is not a ``Filter`` raises
        ``InvalidFilter``. (The first part runs when some operator is undeclared.)

        Troubleshooting: declare exactly the operators ``_search`` translates; the base
        refuses the others.
        """
        spec, _ = self.filled(backend, n=5)
        q = self.queries(1, spec.dimension)
        with pytest.raises(InvalidFilter):
            backend.search(spec.name, q, 3, filter={"topic": "sport"})  # type: ignore[arg-type]
        missing = sorted({"eq", "in", "range"} - set(backend.capabilities.filter_ops))
        if not missing:
            pytest.skip("backend declares every filter operator")
        flt = {"eq": F.eq("topic", "sport"), "in": F.isin("topic", ["a"]),
               "range": F.range("year", gte=1)}[missing[0]]  # fmt: skip
        with pytest.raises(UnsupportedFilter):
            backend.search(spec.name, q, 3, filter=flt)


class AliasTests(ComplianceBase):
    """Native aliases (runs with ``capabilities.native_alias``)."""

    def test_alias_set_get_repoint_drop(self, backend: Backend) -> None:
        """``set_alias`` creates an alias, ``get_alias`` returns its namespace, a second
        ``set_alias`` re-points it, ``drop_alias`` removes it (idempotently), and the
        namespaces themselves are untouched.

        Troubleshooting: re-point atomically in one database call (create-or-alter); map
        "alias not found" to ``None`` in get_alias and to a no-op in drop_alias.
        """
        self.require_native_alias(backend)
        one, _ = self.filled(backend, "alias_one", n=4)
        two, _ = self.filled(backend, "alias_two", n=6, seed=1)
        alias = self.ns("docs")
        assert backend.get_alias(alias) is None
        backend.set_alias(alias, one.name)
        assert backend.get_alias(alias) == one.name
        backend.set_alias(alias, two.name)
        assert backend.get_alias(alias) == two.name
        backend.set_alias(alias, two.name)
        assert backend.get_alias(alias) == two.name
        backend.drop_alias(alias)
        assert backend.get_alias(alias) is None
        backend.drop_alias(alias)
        backend.drop_alias(self.ns("never_an_alias"))
        assert backend.count(one.name) == 4 and backend.count(two.name) == 6
        assert alias not in backend.list_namespaces()

    def test_several_aliases(self, backend: Backend) -> None:
        """Several aliases may point at one namespace; dropping one keeps the others.

        Troubleshooting: key aliases by alias name, not by namespace.
        """
        self.require_native_alias(backend)
        spec, _ = self.filled(backend, n=2)
        a1, a2 = self.ns("al_1"), self.ns("al_2")
        backend.set_alias(a1, spec.name)
        backend.set_alias(a2, spec.name)
        backend.drop_alias(a1)
        assert backend.get_alias(a1) is None and backend.get_alias(a2) == spec.name

    def test_alias_to_unknown_namespace_raises(self, backend: Backend) -> None:
        """``set_alias`` to a namespace that does not exist raises ``NamespaceNotFound`` and
        creates no alias.

        Troubleshooting: check the target exists; translate the database's error.
        """
        self.require_native_alias(backend)
        alias = self.ns("dangling")
        with pytest.raises(NamespaceNotFound):
            backend.set_alias(alias, self.ns("no_such_namespace"))
        assert backend.get_alias(alias) is None


class LifecycleTests(ComplianceBase):
    """``close``, ``closed`` and the context manager."""

    def test_close_is_idempotent(self, backend: Backend) -> None:
        """``close()`` may be called twice; ``closed`` is then True.

        Troubleshooting: guard the release of resources with the closed flag.
        """
        self.filled(backend, n=3)
        backend.close()
        backend.close()
        assert backend.closed

    @pytest.mark.parametrize("op", sorted(_CLOSED_OPS))
    def test_closed_backend_raises(self, backend: Backend, op: str) -> None:
        """After ``close()``, every method raises ``BackendClosed`` (not NamespaceNotFound,
        not a database client error), even for a namespace that existed.

        Troubleshooting: the public methods of the base check this; a backend overriding one
        must call the base's.
        """
        if op in _ALIAS_OPS:
            self.require_native_alias(backend)
        spec, _ = self.filled(backend, n=3)
        backend.close()
        with pytest.raises(BackendClosed):
            _CLOSED_OPS[op](backend, spec)

    def test_context_manager_closes(self, backend: Backend) -> None:
        """``with backend:`` closes the backend on exit.

        Troubleshooting: do not override ``__exit__`` without calling ``close()``.
        """
        with backend as b:
            assert b is backend
            b.list_namespaces()
        assert backend.closed
        with pytest.raises(BackendClosed):
            backend.list_namespaces()


class PersistenceTests(ComplianceBase):
    """Reopening (``persistent`` and ``reopen``) and sharing (``shared_between_processes``
    and ``open_second``)."""

    def test_reopen_keeps_everything(self, backend: Backend) -> None:
        """After closing and reopening, namespaces, specs, records (vectors, text, metadata,
        stamps), replacements and deletions are all there, and search still matches exact
        search. (Runs when ``capabilities.persistent`` and ``reopen`` is overridden.)

        Troubleshooting: flush the index and the documents on every upsert and delete
        ("durable when it returns"); store specs with the data, not only in memory.
        """
        a, ra = self.filled(backend, "keep_a", n=80, metric="cosine", seed=1)
        b, rb = self.filled(backend, "keep_b", n=30, metric="l2", seed=2)
        backend.create_namespace(self.spec("keep_empty", "dot"))
        new = [restamp(r, text="changed", metadata={"v": 2}) for r in ra[:10]]
        backend.upsert(a.name, new)
        backend.delete(a.name, [r.id for r in ra[70:]])
        backend.delete(b.name, [r.id for r in rb[:5]])
        live_a = new + ra[10:70]
        live_b = rb[5:]
        b2 = self.reopened(backend)
        try:
            assert set(b2.list_namespaces()) >= {a.name, b.name, self.ns("keep_empty")}
            assert b2.describe_namespace(a.name) == a and b2.describe_namespace(b.name) == b
            assert b2.count(a.name) == 70 and b2.count(b.name) == 25
            assert b2.count(self.ns("keep_empty")) == 0
            for spec, live, dead in ((a, live_a, ra[70:]), (b, live_b, rb[:5])):
                got = b2.fetch(spec.name, [r.id for r in live + dead], with_vectors=True)
                assert sorted(got) == sorted(r.id for r in live)
                for r in live:
                    assert_record_equal(spec.metric, got[r.id], r, with_vector=True)
                q = self.queries(3, spec.dimension)
                assert_hits_match_reference(b2.search(spec.name, q, 20), spec.metric, q, live, 20)
            extra = make_records(a, 5, seed=9, id_prefix="after")
            b2.upsert(a.name, extra)
            assert b2.count(a.name) == 75
        finally:
            b2.close()

    def test_reopen_after_drop(self, backend: Backend) -> None:
        """A dropped namespace stays dropped after reopening; a namespace recreated with
        another spec comes back with the new spec and only the new records.

        Troubleshooting: remove a dropped namespace's files/tables, not only its entry in
        memory.
        """
        spec, _ = self.filled(backend, "dropme", n=10)
        other, _ = self.filled(backend, "recreated", n=10)
        backend.drop_namespace(spec.name)
        backend.drop_namespace(other.name)
        new = make_spec(other.name, self.dimension + 1, "dot")
        backend.create_namespace(new)
        recs = make_records(new, 3, seed=5)
        backend.upsert(new.name, recs)
        b2 = self.reopened(backend)
        try:
            assert spec.name not in b2.list_namespaces()
            with pytest.raises(NamespaceNotFound):
                b2.count(spec.name)
            assert b2.describe_namespace(new.name) == new
            assert b2.count(new.name) == 3
        finally:
            b2.close()

    def test_scan_cursor_survives_reopen(self, backend: Backend) -> None:
        """A scan cursor issued before closing resumes the scan after reopening: together
        the pages hold every record exactly once.

        Troubleshooting: make the cursor self-contained (e.g. the last id), not a handle of
        the closed instance.
        """
        spec, records = self.filled(backend, n=30)
        page = backend.scan(spec.name, limit=8)
        assert page.next_cursor is not None
        b2 = self.reopened(backend)
        try:
            rest = scan_all(b2, spec.name, 8, cursor=page.next_cursor)
            ids = [r.id for r in page.records + rest]
            assert len(ids) == len(set(ids)) and sorted(ids) == sorted(r.id for r in records)
        finally:
            b2.close()

    def test_reopen_keeps_aliases(self, backend: Backend) -> None:
        """Aliases survive closing and reopening. (Runs with ``native_alias``.)

        Troubleshooting: aliases live in the database, not in the backend object.
        """
        self.require_native_alias(backend)
        spec, _ = self.filled(backend, n=3)
        backend.set_alias(self.ns("alias_p"), spec.name)
        b2 = self.reopened(backend)
        try:
            assert b2.get_alias(self.ns("alias_p")) == spec.name
        finally:
            b2.close()

    def test_second_instance_sees_writes(self, backend: Backend) -> None:
        """Two instances over the same storage see each other's namespaces, writes,
        replacements, deletes and drops at once: count, fetch, scan and search agree.
        (Runs with ``capabilities.shared_between_processes`` and an overridden
        ``open_second``.)

        Troubleshooting: do not serve reads from a per-instance cache without checking
        that the storage has not changed since (a version counter, a file's mtime);
        forget a namespace another instance dropped.
        """
        if not backend.capabilities.shared_between_processes:
            pytest.skip("backend declares it is not shared between processes")
        other = self.open_second(backend)
        try:
            spec, records = self.filled(backend, "shared", n=40, metric="l2")
            assert other.describe_namespace(spec.name) == spec
            assert spec.name in other.list_namespaces()
            assert other.count(spec.name) == 40
            q = self.queries(3, spec.dimension)
            assert_hits_match_reference(other.search(spec.name, q, 10), "l2", q, records, 10)
            changed = [restamp(r, text="changed", vector=make_vectors(1, spec.dimension, i)[0])
                       for i, r in enumerate(records[:5])]  # fmt: skip
            other.upsert(spec.name, changed)
            other.delete(spec.name, [r.id for r in records[5:10]])
            current = changed + records[10:]
            assert backend.count(spec.name) == 35
            got = backend.fetch(spec.name, [r.id for r in records], with_vectors=True)
            assert sorted(got) == sorted(r.id for r in current)
            for r in current:
                assert_record_equal(spec.metric, got[r.id], r, with_vector=True)
            assert sorted(r.id for r in scan_all(backend, spec.name, 9)) == sorted(got)
            assert_hits_match_reference(backend.search(spec.name, q, 10), "l2", q, current, 10)
            other.drop_namespace(spec.name)
            with pytest.raises(NamespaceNotFound):
                backend.count(spec.name)
            new = make_spec(spec.name, self.dimension + 1, "dot")
            backend.create_namespace(new)
            assert other.describe_namespace(spec.name) == new
            assert other.count(spec.name) == 0
        finally:
            other.close()


class ConsistencyTests(ComplianceBase):
    """Read-your-writes, and random operation sequences against a model."""

    def test_reads_reflect_writes_when_they_return(self, backend: Backend) -> None:
        """Read-your-writes: as soon as ``upsert`` or ``delete`` returns, ``fetch``,
        ``scan``, ``count`` and ``search`` of the namespace reflect it — inserts,
        replacements (the new stamp and vector) and deletes, round after round, with no
        sleep in between. The core's dual-write, backfill and verify rely on this.

        Troubleshooting: a database whose reads lag its writes (bounded staleness,
        eventual consistency) must declare ``consistency="eventual"`` and a
        ``visibility_timeout``: the base then waits until each write is visible (or raises
        ``WriteNotVisible``). Where the database offers it, ask for strong consistency
        (Milvus ``consistency_level="Strong"``, a refresh or wait flag on writes).
        """
        spec = self.spec("ryw", "l2")
        backend.create_namespace(spec)
        current: dict[str, Record] = {}
        for rnd in range(6):
            fresh = make_records(spec, 8, seed=40 + rnd, id_prefix=f"r{rnd}")
            vecs = make_vectors(4, spec.dimension, 80 + rnd)
            replaced = [restamp(r, text=f"round {rnd}", vector=vecs[i])
                        for i, r in enumerate(list(current.values())[:4])]  # fmt: skip
            backend.upsert(spec.name, fresh + replaced)
            current.update({r.id: r for r in fresh + replaced})
            got = backend.fetch(spec.name, list(current), with_vectors=True)
            assert sorted(got) == sorted(current), f"round {rnd}: fetch misses a write"
            for r in replaced:
                assert_record_equal(spec.metric, got[r.id], r, with_vector=True)
            assert backend.count(spec.name) == len(current), f"round {rnd}: count lags"
            assert sorted(r.id for r in scan_all(backend, spec.name, 5)) == sorted(current)
            if replaced:
                q = np.stack([np.asarray(r.vector, dtype=np.float32) for r in replaced])
                hits = backend.search(spec.name, q, 1)
                assert [h[0].id for h in hits] == [r.id for r in replaced]
            gone = sorted(current)[:3]
            backend.delete(spec.name, gone)
            for i in gone:
                del current[i]
            assert backend.fetch(spec.name, gone) == {}, f"round {rnd}: a delete lags"
            assert backend.count(spec.name) == len(current)
            assert not set(gone) & {r.id for r in scan_all(backend, spec.name, 100)}

    def test_random_operations_agree_with_a_model(self, backend: Backend) -> None:
        """Random sequences of upserts (new and replacing), deletes (present and absent
        ids), failing batches, scans and searches, generated by hypothesis, keep count,
        fetch, scan and exhaustive search equal to a plain dict model of the namespace.
        Deterministic (derandomized), 25 sequences of up to 10 steps.

        Troubleshooting: hypothesis prints the failing sequence of steps; replay it by hand
        on your backend. Typical causes: a replaced vector left in the index, a deleted id
        still returned by search or scan, a failing batch partly written.
        """
        pytest.importorskip("hypothesis")
        from ._model import run_model_test

        run_model_test(backend, dimension=8, namespace_prefix=self.ns("model_"))


class BadInputTests(ComplianceBase):
    """Bad input is refused with a typed error and changes nothing."""

    @pytest.mark.parametrize(("kind", "error"), list(BAD_RECORDS.items()), ids=list(BAD_RECORDS))
    def test_bad_batch_raises_and_writes_nothing(
        self, backend: Backend, kind: str, error: type[Exception]
    ) -> None:
        """A batch with one bad record (placed last, after new records and a replacement of
        an existing one) raises the typed error — ``DimensionMismatch``,
        ``NonFiniteVector``, ``StampMismatch``, ``DuplicateIds``, ``InvalidId`` or
        ``InvalidInput`` — and nothing of the batch is visible afterwards: count, fetch,
        scan and search are as before. The backend stays usable.

        Troubleshooting: the base validates the whole batch before calling ``_upsert``; if
        the database can fail half-way through one ``_upsert`` chunk, write into a staging
        area or roll back.
        """
        spec, existing = self.filled(backend, n=10, metric="l2")
        fresh = make_records(spec, 5, seed=21, id_prefix="new")
        replaced = restamp(
            existing[0], text="replacement", vector=make_vectors(1, spec.dimension, 3)[0]
        )
        good = [*fresh, replaced]
        batch = [*good, bad_record(kind, spec, good)]
        with pytest.raises(error):
            backend.upsert(spec.name, batch)
        assert backend.count(spec.name) == 10
        ids = [r.id for r in batch if isinstance(r.id, str) and r.id]
        got = backend.fetch(spec.name, ids, with_vectors=True)
        assert sorted(got) == [existing[0].id], f"records of the failed batch are visible: {got}"
        assert_record_equal(spec.metric, got[existing[0].id], existing[0], with_vector=True)
        assert sorted(r.id for r in scan_all(backend, spec.name, 1000)) == sorted(
            r.id for r in existing
        )
        q = self.queries(2, spec.dimension)
        assert_hits_match_reference(backend.search(spec.name, q, 30), "l2", q, existing, 30)
        backend.upsert(spec.name, good)
        assert backend.count(spec.name) == 15

    @pytest.mark.parametrize("limit", [0, -5])
    def test_scan_rejects_limit_below_one(self, backend: Backend, limit: int) -> None:
        """``scan`` with ``limit < 1`` raises ``InvalidInput`` (a typed error, like
        ``search`` with ``k < 1``), on an empty and on a non-empty namespace.

        Troubleshooting: check ``limit`` before touching the database; an unchecked limit
        of 0 tends to give an ``IndexError`` or an endless loop of empty pages.
        """
        spec = self.spec("empty_scan")
        backend.create_namespace(spec)
        with pytest.raises(InvalidInput):
            backend.scan(spec.name, limit=limit)
        full, _ = self.filled(backend, n=5)
        with pytest.raises(InvalidInput):
            backend.scan(full.name, limit=limit)

    @pytest.mark.parametrize("k", [0, -1])
    def test_search_rejects_k_below_one(self, backend: Backend, k: int) -> None:
        """``k < 1`` raises ``InvalidInput``.

        Troubleshooting: the base checks ``k``; do not override the public ``search``.
        """
        spec, _ = self.filled(backend, n=5)
        with pytest.raises(InvalidInput):
            backend.search(spec.name, self.queries(1, spec.dimension), k)

    def test_search_rejects_wrong_dimension(self, backend: Backend) -> None:
        """A query of another dimension raises ``DimensionMismatch`` (also on an empty
        namespace).

        Troubleshooting: the base checks queries (``vecver.backends.validate``); do not
        override the public ``search``.
        """
        spec, _ = self.filled(backend, n=5)
        for d in (spec.dimension - 1, spec.dimension + 1):
            with pytest.raises(DimensionMismatch):
                backend.search(spec.name, self.queries(2, d), 3)
        empty = self.spec("empty")
        backend.create_namespace(empty)
        with pytest.raises(DimensionMismatch):
            backend.search(empty.name, self.queries(1, spec.dimension + 3), 3)

    @pytest.mark.parametrize("bad", ["nan", "inf"])
    def test_search_rejects_non_finite_queries(self, backend: Backend, bad: str) -> None:
        """A query holding NaN or infinity raises ``NonFiniteVector``.

        Troubleshooting: the base checks queries (``vecver.backends.validate``); do not
        override the public ``search``.
        """
        spec, _ = self.filled(backend, n=5)
        q = self.queries(3, spec.dimension)
        q[1, 2] = np.nan if bad == "nan" else np.inf
        with pytest.raises(NonFiniteVector):
            backend.search(spec.name, q, 3)

    @pytest.mark.parametrize(
        ("bad", "why"), [("a\x00b", "NUL"), ("\x00", "NUL"), ("lone\ud800", "surrogate")]
    )
    def test_ids_that_cannot_round_trip_are_refused(
        self, backend: Backend, bad: str, why: str
    ) -> None:
        """An id with a NUL character or a lone surrogate (which does not encode as UTF-8)
        is refused by ``upsert``, ``delete`` and ``fetch`` with ``InvalidId`` saying why,
        and nothing changes: in particular deleting ``"a\\x00b"`` never deletes ``"a"``
        (SQLite's JSON functions, for one, cut strings at NUL).

        Troubleshooting: the base refuses these before your ``_methods`` run; if this
        fails, a public method is overridden without calling the base.
        """
        spec = self.spec("bad_ids")
        backend.create_namespace(spec)
        keep = make_records(spec, 1, seed=3)[0]
        keep = Record("a", keep.vector, "a", {}, Stamp.now(spec.fingerprint, "a", "a"))
        backend.upsert(spec.name, [keep])
        with pytest.raises(InvalidId, match=why):
            backend.delete(spec.name, [bad])
        with pytest.raises(InvalidId, match=why):
            backend.fetch(spec.name, [bad])
        rec = Record(bad, keep.vector, "t", {}, Stamp.now(spec.fingerprint, bad, "t"))
        with pytest.raises(InvalidId, match=why):
            backend.upsert(spec.name, [rec])
        assert sorted(backend.fetch(spec.name, ["a"])) == ["a"]
        assert backend.count(spec.name) == 1

    def test_a_single_string_is_not_a_list_of_ids(self, backend: Backend) -> None:
        """``delete(ns, "abc")`` and ``fetch(ns, "abc")`` raise ``InvalidInput`` instead of
        taking three one-letter ids; nothing is deleted.

        Troubleshooting: the base refuses it; do not override the public methods.
        """
        spec = self.spec("one_string")
        backend.create_namespace(spec)
        vecs = make_vectors(3, spec.dimension, 4)
        recs = [Record(i, v, i, {}, Stamp.now(spec.fingerprint, i, i))
                for i, v in zip("abc", vecs, strict=True)]  # fmt: skip
        backend.upsert(spec.name, recs)
        with pytest.raises(InvalidInput):
            backend.delete(spec.name, "abc")
        with pytest.raises(InvalidInput):
            backend.fetch(spec.name, "abc")
        assert backend.count(spec.name) == 3

    def test_zero_vectors_are_refused_under_cosine(self, backend: Backend) -> None:
        """An all-zero vector has no direction: under ``cosine`` a batch holding one raises
        ``ZeroVector`` naming the document (nothing written), and an all-zero query raises
        ``ZeroVector``; under ``dot`` and ``l2`` both are fine.

        Troubleshooting: the base checks this; a database that normalizes vectors would
        otherwise store NaN or score every hit 0.
        """
        for metric in METRICS:
            spec = self.spec(f"zero_{metric}", metric)
            backend.create_namespace(spec)
            good = make_records(spec, 3, seed=5)
            zero = restamp(good[2], vector=np.zeros(spec.dimension, dtype=np.float32))
            zq = np.zeros((1, spec.dimension), dtype=np.float32)
            if metric == "cosine":
                with pytest.raises(ZeroVector) as err:
                    backend.upsert(spec.name, [*good[:2], zero])
                assert err.value.doc_id == zero.id
                assert backend.count(spec.name) == 0
                with pytest.raises(ZeroVector):
                    backend.search(spec.name, zq, 3)
            else:
                backend.upsert(spec.name, [*good[:2], zero])
                assert backend.count(spec.name) == 3
                assert len(backend.search(spec.name, zq, 3)[0]) == 3

    def test_declared_metadata_and_text_limits_are_enforced(self, backend: Backend) -> None:
        """Metadata larger than ``max_metadata_bytes``, a text larger than
        ``max_text_bytes`` and a metadata value of a kind not in ``metadata_kinds`` are
        refused (``LimitExceeded``, ``UnsupportedMetadata``) before anything is written.
        (Runs when the backend declares such a limit.)

        Troubleshooting: declare the database's real limits; the base enforces them.
        """
        caps = backend.capabilities
        spec = self.spec("limits")
        backend.create_namespace(spec)
        base = make_records(spec, 1, seed=6)[0]
        ran = False
        if caps.max_metadata_bytes is not None:
            ran = True
            big = restamp(base, metadata={"blob": "x" * (caps.max_metadata_bytes + 1)})
            with pytest.raises(LimitExceeded):
                backend.upsert(spec.name, [big])
        if caps.max_text_bytes is not None:
            ran = True
            with pytest.raises(LimitExceeded):
                backend.upsert(spec.name, [restamp(base, text="y" * (caps.max_text_bytes + 1))])
        samples = {"null": None, "bool": True, "int": 1, "float": 1.5, "str": "s",
                   "list": ["a"], "object": {"k": "v"}}  # fmt: skip
        for kind, value in samples.items():
            if kind not in caps.metadata_kinds:
                ran = True
                with pytest.raises(UnsupportedMetadata):
                    backend.upsert(spec.name, [restamp(base, metadata={"f": value})])
        if not ran:
            pytest.skip("backend declares no metadata or text limits")
        assert backend.count(spec.name) == 0

    def test_metadata_that_is_not_json_is_refused(self, backend: Backend) -> None:
        """Metadata that is not a JSON object of JSON values (a set, NaN, a non-string
        key, bytes) raises ``InvalidInput`` and writes nothing.

        Troubleshooting: the base checks this; do not override the public methods.
        """
        spec = self.spec("not_json")
        backend.create_namespace(spec)
        base = make_records(spec, 1, seed=7)[0]
        for md in ({"s": {1, 2}}, {"n": float("nan")}, {1: "int key"}, {"b": b"bytes"}):
            with pytest.raises(InvalidInput):
                backend.upsert(spec.name, [restamp(base, metadata=md)])  # type: ignore[arg-type]
        assert backend.count(spec.name) == 0


class BackendComplianceSuite(
    NamespaceTests,
    WriteTests,
    ReadTests,
    SearchTests,
    FilterTests,
    AliasTests,
    LifecycleTests,
    PersistenceTests,
    ConsistencyTests,
    BadInputTests,
):
    """The whole contract of :class:`~vecver.backends.base.Backend`, as tests: every area
    mixin over the one ``backend`` fixture (see :class:`ComplianceBase`). Subclass it (the
    subclass's name must start with ``Test``) and provide the fixture; or subclass only the
    mixins of the areas you want to run (each is a ``ComplianceBase``)."""
