"""Write-path input rules: one rule per input, the same for the API and JSONL.

- an id is a non-empty string; nothing is coerced (an integer id was turned into a string
  while a float or boolean one was refused);
- a text that is not a string is refused with "text must be a string" (a number was
  reported as "has empty text");
- ``batch_size`` is None or a positive integer (0 meant "the default");
- ``delete`` takes a list of ids (a string was taken as its characters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vvcore import make_docs, snapshot

import vecver
from vecver.errors import InvalidArgument, InvalidId, InvalidInput, SourceError
from vecver.types import Document


@pytest.fixture
def two(make_ws) -> vecver.Workspace:
    """Collection ``c`` in v1 with 10 documents, v2 being built (dual-write on)."""
    ws = make_ws("memory")
    ws.collection("c").upsert(make_docs(10))
    vecver.start_migration(ws, "c", "v2")
    return ws


BAD_IDS: list[Any] = [7, 0, 1.5, True, False, None, ["a"]]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_non_string_ids_are_refused_by_upsert(two: vecver.Workspace, bad: Any) -> None:
    before = snapshot(two)
    with pytest.raises(InvalidId) as err:
        two.collection("c").upsert([{"id": "ok1", "text": "fine"}, {"id": bad, "text": "t"}])
    assert err.value.value == bad
    assert snapshot(two) == before
    assert two.manifest.intents("c") == []


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_non_string_ids_are_refused_in_jsonl_alike(two: vecver.Workspace, tmp_path: Path,
                                                   bad: Any) -> None:
    import json

    path = tmp_path / "ids.jsonl"
    path.write_text(json.dumps({"id": "ok1", "text": "fine"}) + "\n"
                    + json.dumps({"id": bad, "text": "t"}) + "\n", encoding="utf-8")
    with pytest.raises(SourceError, match="invalid id") as err:
        vecver.JsonlSource(path).validate()
    assert err.value.where.endswith(":2")
    if isinstance(bad, (int, float)):
        assert "nothing is coerced" in str(err.value)


@pytest.mark.parametrize("text", [42, 3.5, True, ["a"], {"t": 1}], ids=repr)
def test_a_text_that_is_not_a_string_says_so(two: vecver.Workspace, tmp_path: Path,
                                             text: Any) -> None:
    import json

    before = snapshot(two)
    with pytest.raises(InvalidInput, match="text of document 'x' must be a string") as err:
        two.collection("c").upsert([{"id": "x", "text": text}])
    assert "empty" not in str(err.value)
    assert snapshot(two) == before
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"id": "x", "text": text}) + "\n", encoding="utf-8")
    with pytest.raises(SourceError, match="must be a string"):
        vecver.JsonlSource(path).validate()


@pytest.mark.parametrize("size", [0, -1, True, 2.0, "8"], ids=repr)
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(two: vecver.Workspace,
                                                                size: Any) -> None:
    before = snapshot(two)
    with pytest.raises(InvalidArgument, match="batch_size must be a positive integer") as err:
        two.collection("c").upsert(make_docs(3, start=50), batch_size=size)
    assert err.value.name == "batch_size" and err.value.value == size
    assert snapshot(two) == before


def test_a_good_batch_size_still_splits(two: vecver.Workspace) -> None:
    res = two.collection("c").upsert(make_docs(5, start=50), batch_size=2)
    assert res.documents == 5 and res.spaces == ["v1", "v2"] and res.failed == []


@pytest.mark.parametrize("ids", ["abc", b"abc"], ids=repr)
def test_delete_of_one_string_is_refused(two: vecver.Workspace, ids: Any) -> None:
    c = two.collection("c")
    c.upsert([Document(i, f"{i} text") for i in ("a", "b", "c")])
    before = snapshot(two)
    tombs = two.manifest.tombstone_count("c")
    with pytest.raises(InvalidArgument, match=r"a list of ids \(for one id, pass \[") as err:
        c.delete(ids)
    assert err.value.name == "ids"
    assert snapshot(two) == before
    assert two.manifest.tombstone_count("c") == tombs
    assert c.delete(["a"]).documents == 1  # the list form


def test_a_single_document_instead_of_a_list_is_refused(two: vecver.Workspace) -> None:
    with pytest.raises(InvalidArgument, match="docs must be a list of documents"):
        two.collection("c").upsert({"id": "x", "text": "t"})  # type: ignore[arg-type]
