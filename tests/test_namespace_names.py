"""Two (collection, space) pairs that a backend's naming rule maps to one physical name.

The default rule is ``vv_{collection}__{label}_{fingerprint[:8]}``: collection ``a__b`` with
space ``c`` and collection ``a`` with space ``b__c`` meet when both spaces have the same
geometry. Before the check, the second migration failed with a bare ``AssertionError``
(and a first ingest would have been refused only after the namespace was created and the
alias set); now it is a typed refusal before anything is created, and the first
collection's documents are untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from vvcore import SPACES, config, make_docs

import vecver
from vecver.errors import InvalidNamespaceName, NamespaceNameTaken

#: b__c and c share a geometry (hence a fingerprint), v1 is the first space of both
_SP = {**SPACES, "b__c": dict(SPACES["v2"]), "c": dict(SPACES["v2"])}


def _open(root: Path, backend: str, collections: dict[str, str]) -> vecver.Workspace:
    root.mkdir(parents=True, exist_ok=True)
    return vecver.open(config(root, backend, spaces=_SP, collections=collections),
                       progress=False)


@pytest.mark.parametrize("backend", ["memory", "local"])
def test_a_migration_onto_a_name_another_collection_holds_is_refused(
    tmp_path: Path, backend: str
) -> None:
    ws = _open(tmp_path / "w", backend, {"a": "v1", "a__b": "v1"})
    try:
        a, ab = ws.collection("a"), ws.collection("a__b")
        a.upsert(make_docs(6, prefix="x"))
        ab.upsert(make_docs(4, prefix="y"))
        assert vecver.migrate(ws, "a", "b__c").state == "ready"
        taken = ws.manifest.namespace_for("a", "b__c")
        assert taken is not None
        before = sorted(ws.backend.list_namespaces())
        with pytest.raises(NamespaceNameTaken) as info:
            vecver.migrate(ws, "a__b", "c")
        err = info.value
        assert isinstance(err, InvalidNamespaceName)  # handled like any rejected name
        assert err.name == taken.name
        assert (err.owner_collection, err.owner_space) == ("a", "b__c")
        assert "another label" in str(err)
        # nothing was recorded or created, and collection a's new space is intact
        assert ws.manifest.namespace_for("a__b", "c") is None
        assert sorted(ws.backend.list_namespaces()) == before
        assert sorted(r.id for r in ws.backend.scan(taken.name, limit=100).records) == [
            d.id for d in make_docs(6, prefix="x")
        ]
        report = {r.space: r.clean for r in vecver.verify(ws, "a")}
        assert report == {"v1": True, "b__c": True}
        # another label for the same geometry works
        assert vecver.migrate(ws, "a__b", "v2").state == "ready"
    finally:
        ws.close()


@pytest.mark.parametrize("backend", ["memory", "local"])
def test_a_new_collection_whose_first_space_maps_onto_a_taken_name_is_not_created(
    tmp_path: Path, backend: str
) -> None:
    ws = _open(tmp_path / "w", backend, {"a": "b__c", "a__b": "c"})
    try:
        a = ws.collection("a")
        a.upsert(make_docs(3, prefix="x"))
        names = sorted(ws.backend.list_namespaces())
        with pytest.raises(NamespaceNameTaken):
            ws.collection("a__b")
        assert "a__b" not in ws.manifest.collections()
        assert sorted(ws.backend.list_namespaces()) == names
        assert [h.id for h in a.search(make_docs(3, prefix="x")[1].text, k=1)] == ["x0001"]
    finally:
        ws.close()


def test_the_cli_refuses_it_in_one_line_with_exit_2(cli_ws) -> None:  # noqa: ANN001
    from vvcli import hash_config
    from vvcli import make_docs as cli_docs

    extra = """
[spaces.b__c]
embedder = "hash"
dimension = 64
options = { seed = 9 }

[spaces.c]
embedder = "hash"
dimension = 64
options = { seed = 9 }

[collections.a]
space = "v1"

[collections.a__b]
space = "v1"
"""
    cli_ws.write_config(hash_config(extra=extra))
    cli_ws.run("ingest", "a", cli_ws.jsonl("a.jsonl", cli_docs(20, prefix="x")), ok=True)
    cli_ws.run("ingest", "a__b", cli_ws.jsonl("b.jsonl", cli_docs(10, prefix="y")), ok=True)
    cli_ws.run("migrate", "a", "--to", "b__c", ok=True)
    res = cli_ws.run("migrate", "a__b", "--to", "c", ok=False)
    assert res.rc == 2, str(res)
    assert "already the namespace of space 'b__c' of collection 'a'" in res.err
    st = cli_ws.run("verify", "a", ok=True)
    assert st.rc == 0, str(st)
