"""Helpers for the core behaviour tests (tests/test_lifecycle.py, test_bad_input.py,
test_properties.py, test_concurrency.py, test_manifest.py). The fixtures built on them
live in conftest.py.

Every workspace uses the ``hash`` embedder (fast, deterministic, no model files) and the
``memory`` or the ``local`` backend.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import vecver
from vecver.store.sqlite import LIVE_STATES
from vecver.types import Document, Record, source_hash

DIM = 64

#: the spaces every test workspace declares: same embedder, incompatible geometries
SPACES: dict[str, dict[str, Any]] = {
    "v1": {"embedder": "hash", "dimension": DIM},
    "v2": {"embedder": "hash", "dimension": DIM, "options": {"seed": 1}},
    "v3": {"embedder": "hash", "dimension": DIM, "options": {"seed": 2}},
}


def config(
    base: Path,
    backend: str = "memory",
    *,
    spaces: Mapping[str, Mapping[str, Any]] | None = None,
    gate: Mapping[str, Any] | None = None,
    collections: Mapping[str, str] | None = None,
    batch_size: int | None = None,
    backends: Mapping[str, Mapping[str, Any]] | None = None,
) -> vecver.Config:
    """A config rooted at ``base`` (manifest ``m.db``; the local backend in ``vectors``).
    ``backends`` adds ``[backends.NAME]`` instances (tables as in vecver.toml)."""
    be: dict[str, Any] = {"name": backend}
    if backend == "local":
        be["path"] = "vectors"
    data: dict[str, Any] = {
        "manifest": {"path": "m.db"},
        "backend": be,
        "spaces": {k: dict(v) for k, v in (spaces or SPACES).items()},
        "collections": {k: {"space": v} for k, v in (collections or {"c": "v1"}).items()},
    }
    if gate is not None:
        data["gate"] = dict(gate)
    if batch_size is not None:
        data["backfill"] = {"batch_size": batch_size}
    if backends:
        data["backends"] = {k: dict(v) for k, v in backends.items()}
    return vecver.Config.from_mapping(data, base=base)


def text_of(doc_id: str, version: int = 0) -> str:
    """A distinctive text: the id's own words (so it is its own best match), a shared
    topic word, and the version (so updates change the source hash)."""
    n = int(doc_id.lstrip("abcdefghijklmnopqrstuvwxyz") or 0)
    return f"{doc_id} alpha{n} beta{n} gamma{n} topic{n % 5} version{version}"


def make_docs(n: int, *, start: int = 0, version: int = 0, prefix: str = "d") -> list[Document]:
    return [
        Document(f"{prefix}{i:04d}", text_of(f"{prefix}{i:04d}", version), {"n": i, "odd": i % 2})
        for i in range(start, start + n)
    ]


def contents(ws: vecver.Workspace, namespace: str) -> dict[str, Record]:
    """Every record of a namespace by a full scan; fails on a duplicate id."""
    out: dict[str, Record] = {}
    cursor: str | None = None
    while True:
        page = ws.backend.scan(namespace, cursor=cursor, limit=97)
        for r in page.records:
            assert r.id not in out, f"{r.id!r} appears twice in {namespace}"
            out[r.id] = r
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert ws.backend.count(namespace) == len(out), f"count of {namespace} != records scanned"
    return out


def ns_of(ws: vecver.Workspace, collection: str, label: str) -> str:
    row = ws.manifest.namespace_for(collection, label)
    assert row is not None, f"{label} has no namespace in {collection}"
    return row.name


def state_of(ws: vecver.Workspace, collection: str, label: str) -> str | None:
    row = ws.manifest.namespace_for(collection, label)
    return row.state if row is not None else None


def states(ws: vecver.Workspace, collection: str = "c") -> dict[str, str]:
    return {n.space_label: n.state for n in ws.manifest.namespaces(collection)}


def active_label(ws: vecver.Workspace, collection: str = "c") -> str:
    row = ws.manifest.namespace(ws.manifest.active_namespace(collection))
    assert row is not None
    return row.space_label


def snapshot(ws: vecver.Workspace, collection: str = "c") -> dict[str, dict[str, str]]:
    """{space label: {id: source hash}} of every live space (to prove nothing changed)."""
    out = {}
    for n in ws.manifest.namespaces(collection):
        if n.state in LIVE_STATES:
            out[n.space_label] = {i: r.stamp.source_hash for i, r in contents(ws, n.name).items()}
    return out


def assert_space_matches(
    ws: vecver.Workspace,
    collection: str,
    label: str,
    model: Mapping[str, str],
    *,
    subset: bool = False,
) -> None:
    """The space holds exactly the model's documents ({id: text}), each once, stamped
    with the space's fingerprint and the text's source hash. ``subset``: a space being
    built may lack documents, but holds nothing else and nothing stale."""
    row = ws.manifest.namespace_for(collection, label)
    assert row is not None
    have = contents(ws, row.name)
    fp = ws.space(label).fingerprint
    assert row.fingerprint == fp
    for i, r in have.items():
        assert r.stamp.fingerprint == fp, f"{i} in {label} stamped with another space"
        assert r.stamp.doc_id == i
        assert i in model, f"{i} in {label} ({row.state}) but deleted/never written"
        assert r.stamp.source_hash == source_hash(model[i]), f"{i} in {label} is stale"
        assert r.text == model[i]
    if not subset:
        missing = sorted(set(model) - set(have))
        assert not missing, f"{label} ({row.state}) lacks {missing[:5]}"


def assert_all_live_match(
    ws: vecver.Workspace, collection: str, model: Mapping[str, str]
) -> None:
    for n in ws.manifest.namespaces(collection):
        if n.state in LIVE_STATES:
            assert_space_matches(ws, collection, n.space_label, model,
                                 subset=n.state == "building")


def assert_verify_clean(ws: vecver.Workspace, collection: str = "c") -> None:
    for rep in vecver.verify(ws, collection):
        if rep.state == "building":
            continue
        assert rep.clean, rep.to_dict()


def foreign_owner(pid: int | None = None) -> str:
    """A lease/intent owner that is another *live* process of this host (our parent)."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getppid()}"


def dead_owner() -> str:
    """An owner that is a process of this host that has exited (and was reaped)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return f"{socket.gethostname()}:{p.pid}"


def model_of(docs: Iterable[Document]) -> dict[str, str]:
    return {d.id: d.text for d in docs}


def ids_of(hits: Sequence[Any]) -> list[str]:
    return [h.id for h in hits]
