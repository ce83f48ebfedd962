"""Test tools for vecver backends: the shared compliance suite and deterministic test data.

Check a backend against the contract with one import and one fixture::

    import pytest
    from vecver.testing import BackendComplianceSuite

    class TestMyBackend(BackendComplianceSuite):
        @pytest.fixture
        def backend(self):
            b = MyBackend(...)
            yield b
            b.close()

See :mod:`vecver.testing.compliance` for the options (persistence via ``reopen``, the
dimension, a namespace prefix) and the area mixins the suite is made of.
:mod:`vecver.testing.congruence` compares any backend with the in-memory reference on the
same random operations (:class:`BackendCongruenceSuite`, one fixture), and
:mod:`vecver.testing.faults` wraps any backend to inject failures, hooks and read lag
(:class:`FaultyBackend`). :mod:`vecver.testing.data` makes deterministic records
(:func:`make_records`) and :mod:`vecver.testing.checks` holds the assertions the suite uses,
for congruence tests that compare a backend with the in-memory reference backend.

Importing this package needs pytest (and numpy); it never imports a database client.
"""

from __future__ import annotations

from .checks import (
    assert_hits_carry_payload,
    assert_hits_match_reference,
    assert_metadata_equal,
    assert_record_equal,
    assert_stamp_equal,
    assert_vector_equal,
    reference_search,
    scan_all,
)
from .compliance import (
    FILTER_CASES,
    AliasTests,
    BackendComplianceSuite,
    BadInputTests,
    ComplianceBase,
    ConsistencyTests,
    FilterTests,
    LifecycleTests,
    NamespaceTests,
    PersistenceTests,
    ReadTests,
    SearchTests,
    WriteTests,
)
from .congruence import BackendCongruenceSuite, CongruencePair
from .data import (
    BAD_RECORDS,
    bad_record,
    fingerprint_for,
    make_records,
    make_spec,
    make_vectors,
    mixed_metadata,
    restamp,
    standard_metadata,
)
from .faults import FaultyBackend

__all__ = [
    "AliasTests",
    "BackendComplianceSuite",
    "BackendCongruenceSuite",
    "BadInputTests",
    "ComplianceBase",
    "CongruencePair",
    "ConsistencyTests",
    "FaultyBackend",
    "FilterTests",
    "LifecycleTests",
    "NamespaceTests",
    "PersistenceTests",
    "ReadTests",
    "SearchTests",
    "WriteTests",
    "FILTER_CASES",
    "BAD_RECORDS",
    "bad_record",
    "fingerprint_for",
    "make_records",
    "make_spec",
    "make_vectors",
    "mixed_metadata",
    "restamp",
    "standard_metadata",
    "assert_hits_carry_payload",
    "assert_hits_match_reference",
    "assert_metadata_equal",
    "assert_record_equal",
    "assert_stamp_equal",
    "assert_vector_equal",
    "reference_search",
    "scan_all",
]
