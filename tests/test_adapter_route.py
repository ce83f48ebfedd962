"""Query adapters through a workspace on the local backend: fitting from a collection's
stored vectors, the artifact and its events, the ``adapter`` route end to end, the
retention gate, evaluation, staleness and the typed refusals. The "new models" are
deterministic maps of the ``hash`` space v1 (tests/adapter_models.py), so the right
adapter is known to exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecver
import vecver.adapters as adapters
from vecver.adapters.pairs import is_held_out, select_documents, training_pairs
from vecver.errors import (
    AdapterGateFailed,
    AdapterStale,
    FingerprintMismatch,
    InvalidArgument,
    InvalidInput,
    NoAdapter,
    TooFewPairs,
    UnknownCollection,
    UnknownSpace,
)
from vecver.read.adapter_route import AdapterRoute
from vecver.read.routes import parse_route
from vecver.types import Document

SPACES: dict[str, dict[str, Any]] = {
    "v1": {"embedder": "hash", "dimension": 64},
    "wide": {"embedder": "python:adapter_models:wide", "dimension": 96},
    "rot": {"embedder": "python:adapter_models:rotated", "dimension": 64},
    "folded": {"embedder": "python:adapter_models:folded", "dimension": 64},
}
N_DOCS = 700


def docs(n: int = N_DOCS) -> list[Document]:
    return [Document(f"d{i:04d}", f"story {i} about w{i % 41} and x{i % 23}, y{i % 13}. "
                     f"more on z{i % 7} follows", {"topic": f"t{i % 4}"}) for i in range(n)]


def make_ws(root: Path, adapters_table: dict[str, Any] | None = None,
            n: int = N_DOCS) -> vecver.Workspace:
    data: dict[str, Any] = {
        "manifest": {"path": "m.db"}, "backend": {"name": "local", "path": "vectors"},
        "spaces": SPACES, "collections": {"c": {"space": "v1"}},
    }
    if adapters_table is not None:
        data["adapters"] = adapters_table
    ws = vecver.Workspace(vecver.Config.from_mapping(data, base=root), progress=False)
    if n and ws.manifest.namespace_for("c", "v1") is None:
        ws.collection("c").upsert(docs(n))
    return ws


@pytest.fixture
def ws(tmp_path: Path) -> Any:
    w = make_ws(tmp_path)
    yield w
    w.close()


def query_of(i: int) -> str:
    return f"story {i} about w{i % 41} and x{i % 23}"


# -- training pairs ------------------------------------------------------------------


def test_pairs_are_stored_old_vectors_next_to_new_embeddings(ws: vecver.Workspace) -> None:
    """The old side is exactly what the namespace stores; the new side the new space's
    embedding of the stored text; held-out documents are never used."""
    row = ws.manifest.namespace_for("c", "v1")
    assert row is not None
    sample = training_pairs(ws.backend, row.name, row.fingerprint, ws.embedder("wide"), 200)
    assert len(sample) == 200 and sample.source.shape == (200, 96)
    stored = ws.backend.fetch(row.name, sample.ids[:5], with_vectors=True)
    for i, doc_id in enumerate(sample.ids[:5]):
        np.testing.assert_array_equal(sample.target[i], stored[doc_id].vector)
        np.testing.assert_allclose(sample.source[i],
                                   ws.embedder("wide").embed_documents([sample.texts[i]])[0])
    assert not any(is_held_out(i) for i in sample.ids)


def test_pair_selection_is_reproducible_and_stratified(ws: vecver.Workspace) -> None:
    row = ws.manifest.namespace_for("c", "v1")
    assert row is not None
    a, strata, scanned = select_documents(ws.backend, row.name, 100, stratify="topic", seed=4)
    b, _, _ = select_documents(ws.backend, row.name, 100, stratify="topic", seed=4)
    c, _, _ = select_documents(ws.backend, row.name, 100, stratify="topic", seed=5)
    assert a == b and a != c and scanned == N_DOCS
    assert sum(strata.values()) == 100 and set(strata) == {"t0", "t1", "t2", "t3"}
    assert max(strata.values()) - min(strata.values()) <= 2  # four equal topics
    held, _, _ = select_documents(ws.backend, row.name, 1000, held_out=True)
    assert held and all(is_held_out(i) for i, _ in held)
    assert not {i for i, _ in held} & {i for i, _ in a}


# -- fit, store, route ---------------------------------------------------------------


def test_fit_stores_a_versioned_artifact_and_logs_events(ws: vecver.Workspace) -> None:
    r1 = adapters.fit(ws, "c", "wide", "v1", pairs=300)
    r2 = adapters.fit(ws, "c", "wide", "v1", pairs=300, kind="lowrank")
    assert (r1.version, r2.version) == (1, 2) and r1.pairs == 300
    listed = adapters.list_adapters(ws, "c")
    assert [(a.version, a.enabled, a.kind) for a in listed] == [
        (1, False, "procrustes"), (2, True, "lowrank")]
    assert all(a.stale is None for a in listed)
    art = ws.manifest.enabled_artifact("adapter", "c", "wide->v1")
    assert art is not None and art.version == 2
    assert art.meta["source_fingerprint"] == ws.space("wide").fingerprint
    assert art.meta["target_fingerprint"] == ws.manifest.namespace_for("c", "v1").fingerprint
    events = ws.manifest.events("c")
    assert [e["kind"] for e in events].count("adapter.fitted") == 2
    puts = [e["detail"] for e in events if e["kind"] == "artifact.put"
            and e["detail"]["of"] == "adapter"]
    assert [(p["name"], p["version"], p["enabled"]) for p in puts] == [
        ("wide->v1", 1, True), ("wide->v1", 2, True)]
    back = adapters.enable(ws, "c", "wide", "v1", 1)
    assert back.version == 1 and back.enabled
    assert ws.manifest.events("c")[-1]["kind"] == "artifact.enabled"
    assert [a.enabled for a in adapters.list_adapters(ws, "c")] == [True, False]


def test_adapter_route_serves_new_model_queries_from_the_old_namespace(
        ws: vecver.Workspace) -> None:
    """Queries embedded by the 96-d model, mapped into v1 (64-d), search v1's namespace:
    hits are labelled v1, and the ranking agrees with v1's own."""
    rep = adapters.fit(ws, "c", "wide", "v1", pairs=400)
    assert rep.evaluation["retention"] is not None and rep.evaluation["retention"] >= 0.95
    coll = ws.collection("c")
    queries = [query_of(i) for i in range(0, 60, 3)]
    mapped = coll.search_many(queries, k=5, route="adapter:wide")
    own = coll.search_many(queries, k=5)
    assert all(h.space == "v1" for hits in mapped for h in hits)
    assert all(h.namespace == ws.manifest.namespace_for("c", "v1").name
               for hits in mapped for h in hits)
    # the hash space has ties (documents sharing words); compare tie-aware: the mapped
    # top hit is one of v1's own top 3, and the top-5 sets mostly agree
    assert sum(m[0].id in {h.id for h in o[:3]} for m, o in zip(mapped, own)) >= 19
    overlap = np.mean([len({h.id for h in m} & {h.id for h in o}) / 5
                       for m, o in zip(mapped, own)])
    assert overlap >= 0.8
    leg = coll.searcher.plan("adapter:wide").legs[0]
    assert leg.query_space == "wide" and leg.adapter == "c/wide->v1"


def test_route_forms_and_plans(ws: vecver.Workspace) -> None:
    assert parse_route("adapter") == AdapterRoute()
    assert parse_route("adapter:wide") == AdapterRoute("wide")
    assert parse_route("adapter:wide->v1") == AdapterRoute("wide", "v1")
    assert str(AdapterRoute("wide", "v1")) == "adapter:wide->v1"
    for bad in ("adapter:", "adapter:wide->", "adapter:->"):
        with pytest.raises(InvalidInput):
            parse_route(bad)
    coll = ws.collection("c")
    with pytest.raises(vecver.errors.StateError):  # no candidate for bare `adapter`
        coll.search_many(["x"], k=1, route="adapter")
    with pytest.raises(InvalidInput):
        coll.search_many(["x"], k=1, route="adapter:v1")
    vecver.start_migration(ws, "c", "wide")  # a candidate: bare `adapter` means it
    adapters.fit(ws, "c", "wide", "v1", pairs=300)
    hits = coll.search_many([query_of(7)], k=3, route="adapter")
    assert hits[0][0].space == "v1"


def test_no_adapter_is_a_typed_refusal(ws: vecver.Workspace) -> None:
    with pytest.raises(NoAdapter) as e:
        ws.collection("c").search_many(["x"], k=1, route="adapter:wide")
    assert "dual" in str(e.value) and e.value.source == "wide"


# -- the gate ------------------------------------------------------------------------


def test_gate_refuses_an_adapter_below_min_retention(tmp_path: Path) -> None:
    """A nonlinear new model no linear adapter can map: the route refuses with a hint to
    use dual or a backfill; a workspace whose gate is 0 serves it."""
    ws = make_ws(tmp_path)
    rep = adapters.fit(ws, "c", "folded", "v1", pairs=400)
    ret = rep.evaluation["retention"]
    assert ret is not None and ret < 0.95
    with pytest.raises(AdapterGateFailed) as e:
        ws.collection("c").search_many([query_of(3)], k=3, route="adapter:folded")
    assert e.value.retention == pytest.approx(ret) and e.value.threshold == 0.95
    assert "dual" in str(e.value) and "backfill" in str(e.value)
    ws.close()
    lenient = make_ws(tmp_path, {"min_retention": 0.0})
    hits = lenient.collection("c").search_many([query_of(3)], k=3, route="adapter:folded")
    assert len(hits[0]) == 3
    lenient.close()


def test_gate_refuses_an_unmeasured_adapter_until_evaluated(tmp_path: Path) -> None:
    """Too few held-out documents to measure recall@10: retention unknown, refused; an
    evaluation with judged queries measures it and the route then serves."""
    ws = make_ws(tmp_path, n=120)
    rep = adapters.fit(ws, "c", "wide", "v1", pairs=100)
    assert rep.evaluation["retention"] is None and "held-out" in rep.evaluation["note"]
    with pytest.raises(AdapterGateFailed) as e:
        ws.collection("c").search_many(["story 3"], k=3, route="adapter:wide")
    assert e.value.retention is None
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"query": query_of(i), "relevant": [f"d{i:04d}"]})
                             + "\n" for i in range(0, 120, 4)))
    _, ret = adapters.evaluate(ws, "c", queries=str(qfile))
    assert ret.method == "subcorpus" and ret.retention is not None and ret.retention >= 0.95
    hits = ws.collection("c").search_many([query_of(8)], k=3, route="adapter:wide")
    assert hits[0][0].id == "d0008"
    ws.close()


def test_evaluate_uses_the_built_new_namespace_when_there_is_one(ws: vecver.Workspace,
                                                                 tmp_path: Path) -> None:
    adapters.fit(ws, "c", "rot", "v1", pairs=300)
    _, held = adapters.evaluate(ws, "c")
    assert held.method == "held-out" and held.retention is not None
    vecver.migrate(ws, "c", "rot")
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"query": query_of(i), "relevant": [f"d{i:04d}"]})
                             + "\n" for i in range(0, 300, 10)))
    _, ret = adapters.evaluate(ws, "c", queries=str(qfile))
    assert ret.method == "namespace" and ret.candidates == N_DOCS
    assert ret.recall_full is not None and ret.recall_full > 0.9
    assert ret.retention is not None and ret.retention > 0.95
    kinds = [e["kind"] for e in ws.manifest.events("c")]
    assert kinds.count("adapter.evaluated") == 2


def test_the_held_out_estimate_is_not_optimistic_for_a_weak_adapter(tmp_path: Path) -> None:
    """An adapter fitted on 30 pairs maps the 96-d model back into v1 poorly (judged
    queries over the built new namespace: retention ~0.5-0.7). The default held-out estimate
    searches title-length leads among the held-out documents plus distractors (here the
    whole collection), so it refuses it too; it used to search 32-word leads among the
    ~70 held-out documents alone and said ~0.93. A well-fitted adapter still passes."""
    ws = make_ws(tmp_path)
    vecver.migrate(ws, "c", "wide")
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"query": query_of(i), "relevant": [f"d{i:04d}"]})
                             + "\n" for i in range(N_DOCS)))
    # one 30-pair fit is a noisy sample (its SVD is near-degenerate, and how it rounds
    # depends on the machine's LAPACK): four seeds, each refused by the gate (default
    # min_retention 0.95), the mean gap to the truth within 0.2 (measured: 0.08-0.23 per
    # seed, mean ~0.16; on another machine estimates 0.74-0.91, mean gap 0.18)
    gaps = []
    for seed in range(4):
        est = adapters.fit(ws, "c", "wide", "v1", pairs=30, seed=seed).evaluation
        assert est["candidates"] == N_DOCS and "distractors" in est["note"]
        assert est["retention"] is not None
        assert est["retention"] < ws.config.adapters.min_retention
        _, truth = adapters.evaluate(ws, "c", queries=str(qfile))
        assert truth.method == "namespace" and truth.retention is not None
        assert truth.retention < 0.8
        gaps.append(est["retention"] - truth.retention)
    assert abs(sum(gaps) / len(gaps)) < 0.2, gaps
    with pytest.raises(AdapterGateFailed):
        ws.collection("c").search_many([query_of(3)], k=3, route="adapter:wide")
    good = adapters.fit(ws, "c", "wide", "v1", pairs=400)
    assert good.evaluation["retention"] is not None and good.evaluation["retention"] >= 0.95
    _, again = adapters.evaluate(ws, "c")  # without pairs: sampled distractors
    assert again.candidates == N_DOCS and again.retention is not None
    assert again.retention >= 0.95
    ws.close()


# -- staleness and bad input ---------------------------------------------------------


def test_an_adapter_whose_spaces_changed_is_refused(ws: vecver.Workspace) -> None:
    """An adapter tied to another fingerprint of v1 than the collection's (as if v1's
    namespace had been rebuilt in another geometry) is stale: listed as such, refused by
    the route and by evaluate."""
    adapters.fit(ws, "c", "wide", "v1", pairs=300)
    art = ws.manifest.enabled_artifact("adapter", "c", "wide->v1")
    assert art is not None
    meta = dict(art.meta, target_fingerprint="0" * 64)
    ws.manifest.put_artifact("adapter", "c", "wide->v1", art.data, meta, enable=True)
    adapters.service._forget(ws)
    assert adapters.list_adapters(ws, "c")[-1].stale == "target"
    with pytest.raises(AdapterStale) as e:
        ws.collection("c").search_many(["x"], k=1, route="adapter:wide")
    assert e.value.side == "target" and e.value.label == "v1"
    with pytest.raises(AdapterStale):
        adapters.evaluate(ws, "c")


def test_a_contrastive_adapter_serves_the_route_and_is_tied_to_both_fingerprints(
        ws: vecver.Workspace) -> None:
    """``kind="contrastive"`` through the workspace: stored with both spaces'
    fingerprints, its archive decodes to the same kind, the route serves with it; once
    the source space's fingerprint no longer matches, the route and evaluate refuse."""
    rep = adapters.fit(ws, "c", "wide", "v1", pairs=400, kind="contrastive")
    assert rep.kind == "contrastive" and rep.info["best_epoch"] >= 0
    art = ws.manifest.enabled_artifact("adapter", "c", "wide->v1")
    assert art is not None and art.meta["kind"] == "contrastive"
    assert art.meta["source_fingerprint"] == ws.space("wide").fingerprint
    assert art.meta["target_fingerprint"] == ws.manifest.namespace_for("c", "v1").fingerprint
    assert adapters.load_adapter(art.data).kind == "contrastive"
    hits = ws.collection("c").search_many([query_of(3)], k=3, route="adapter:wide")[0]
    assert hits and all(h.space == "v1" for h in hits)
    meta = dict(art.meta, source_fingerprint="1" * 64)
    ws.manifest.put_artifact("adapter", "c", "wide->v1", art.data, meta, enable=True)
    adapters.service._forget(ws)
    assert adapters.list_adapters(ws, "c")[-1].stale == "source"
    with pytest.raises(AdapterStale) as e:
        ws.collection("c").search_many(["x"], k=1, route="adapter:wide")
    assert e.value.side == "source" and e.value.label == "wide"
    with pytest.raises(AdapterStale):
        adapters.evaluate(ws, "c")


def test_the_searcher_checks_the_adapters_fingerprints(ws: vecver.Workspace) -> None:
    """Even a resolved adapter whose source fingerprint is not the query space's is not
    used (the searcher's fingerprint rule)."""
    adapters.fit(ws, "c", "wide", "v1", pairs=300)
    real = adapters.service.query_adapter

    def forged(w: Any, ref: str) -> Any:
        import dataclasses
        return dataclasses.replace(real(w, ref), source_fingerprint="f" * 64)

    adapters.query_adapter = forged  # type: ignore[assignment]
    try:
        with pytest.raises(FingerprintMismatch):
            ws.collection("c").search_many(["x"], k=1, route="adapter:wide")
    finally:
        adapters.query_adapter = real


def test_fit_refusals(ws: vecver.Workspace, tmp_path: Path) -> None:
    with pytest.raises(UnknownCollection):
        adapters.fit(ws, "nope", "wide", "v1")
    with pytest.raises(UnknownSpace):
        adapters.fit(ws, "c", "wide", "rot")  # rot has no namespace in c
    with pytest.raises(InvalidArgument):
        adapters.fit(ws, "c", "v1", "v1")
    with pytest.raises(InvalidArgument):
        adapters.fit(ws, "c", "wide", "v1", pairs=0)
    with pytest.raises(vecver.errors.UnknownAdapterKind):
        adapters.fit(ws, "c", "wide", "v1", kind="magic")
    small = make_ws(tmp_path / "small", n=30)
    with pytest.raises(TooFewPairs) as e:
        adapters.fit(small, "c", "wide", "v1", kind="mlp")
    assert e.value.need == 50 and e.value.got < 50
    assert not small.manifest.artifacts("adapter", "c")  # nothing stored
    small.close()


# -- the command line ----------------------------------------------------------------


def test_cli_fit_list_evaluate(tmp_path: Path) -> None:
    """``vecver adapter fit|list|evaluate|export`` on a real workspace, as JSON."""
    import os
    import subprocess
    import sys

    make_ws(tmp_path).close()
    toml = tmp_path / "vecver.toml"
    lines = ['[manifest]\npath = "m.db"\n', '[backend]\nname = "local"\npath = "vectors"\n',
             '[collections.c]\nspace = "v1"\n']
    for label, table in SPACES.items():
        body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
        lines.append(f"[spaces.{label}]\n{body}\n")
    toml.write_text("\n".join(lines))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))

    def cli(*args: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "vecver", *args, "-c", str(toml),
                              "--json"], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    fitted = cli("adapter", "fit", "c", "--from", "wide", "--to", "v1", "--pairs", "300")
    assert fitted["pairs"] == 300 and fitted["version"] == 1 and fitted["enabled"]
    listed = cli("adapter", "list")
    assert [a["ref"] for a in listed["adapters"]] == ["c/wide->v1"]
    assert listed["min_retention"] == 0.95
    ev = cli("adapter", "evaluate", "c")
    assert ev["passes"] and ev["evaluation"]["method"] == "held-out"
    out = tmp_path / "a.npz"
    exported = cli("adapter", "export", "c", "--from", "wide", "--to", "v1", "--output",
                   str(out))
    assert exported["version"] == 1 and out.stat().st_size == exported["bytes"]
    con = cli("adapter", "fit", "c", "--from", "wide", "--to", "v1", "--pairs", "300",
              "--kind", "contrastive")
    assert con["kind"] == "contrastive" and con["version"] == 2 and con["enabled"]
