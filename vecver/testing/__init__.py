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

The suites need pytest (and numpy) and are imported on first use; the emulators
(:mod:`vecver.testing.emulators`) need neither pytest nor a database client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: each public name and the submodule it lives in: imported on first use, so that
#: ``vecver.testing.emulators`` (and the ``vecver emulator`` verb) need no pytest
_EXPORTS: dict[str, str] = {
    "AliasTests": "compliance",
    "BAD_RECORDS": "data",
    "BackendComplianceSuite": "compliance",
    "BackendCongruenceSuite": "congruence",
    "BadInputTests": "compliance",
    "ComplianceBase": "compliance",
    "CongruencePair": "congruence",
    "ConsistencyTests": "compliance",
    "FILTER_CASES": "compliance",
    "FaultyBackend": "faults",
    "FilterTests": "compliance",
    "LifecycleTests": "compliance",
    "NamespaceTests": "compliance",
    "PersistenceTests": "compliance",
    "ReadTests": "compliance",
    "SearchTests": "compliance",
    "WriteTests": "compliance",
    "assert_hits_carry_payload": "checks",
    "assert_hits_match_reference": "checks",
    "assert_metadata_equal": "checks",
    "assert_record_equal": "checks",
    "assert_stamp_equal": "checks",
    "assert_vector_equal": "checks",
    "bad_record": "data",
    "fingerprint_for": "data",
    "make_records": "data",
    "make_spec": "data",
    "make_vectors": "data",
    "mixed_metadata": "data",
    "reference_search": "checks",
    "restamp": "data",
    "scan_all": "checks",
    "standard_metadata": "data",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
