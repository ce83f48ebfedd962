"""validate_records checks plain metadata inline, and its size (where the backend limits
it) by an upper bound of its JSON size, measuring only when the bound is above the limit:
the bound must never be below the real size, and the limit must hold exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecver.backends.capabilities import Capabilities
from vecver.backends.validate import _json_size_bound, _plain_scalars, validate_records
from vecver.errors import LimitExceeded
from vecver.types import NamespaceSpec, Record, Stamp

_ASCII = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=40)
_VALUES = st.one_of(
    _ASCII, st.integers(), st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
)


def _size(md: dict[str, object]) -> int:
    return len(json.dumps(md, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_ASCII, _VALUES, max_size=12))
def test_the_bound_is_never_below_the_json_size(md: dict[str, object]) -> None:
    assert _plain_scalars(md)
    assert _json_size_bound(md) >= _size(md)


def test_the_bound_is_tight_enough_to_skip_measuring_usual_metadata() -> None:
    md = {"source": "bbc", "n": 123456, "score": math.pi, "ok": True, "x": None}
    assert _size(md) <= _json_size_bound(md) <= 4 * _size(md)


def _spec() -> NamespaceSpec:
    return NamespaceSpec("ns", 4, "cosine", "f" * 64)


def _rec(i: int, md: dict[str, object]) -> Record:
    stamp = Stamp("f" * 64, f"d{i}", "h", 0.0)
    return Record(f"d{i}", np.ones(4, dtype=np.float32), "t", md, stamp)


@pytest.mark.parametrize("value", ["a" * 40, 'q"' * 20, "\x01" * 40, 10**40])
def test_a_metadata_limit_holds_to_the_byte(value: object) -> None:
    md = {"k": value}
    exact = _size(md)
    caps = Capabilities(max_metadata_bytes=exact)
    validate_records(_spec(), [_rec(0, md)], caps)  # exactly at the limit: accepted
    tight = Capabilities(max_metadata_bytes=exact - 1)
    with pytest.raises(LimitExceeded):
        validate_records(_spec(), [_rec(1, md)], tight)
