"""The hubness prior served by the ``adapter`` route, end to end on the local backend: fit
(beta chosen on held-out training documents, stored as an ``adapter-prior`` artifact
tied to both fingerprints), the route's over-fetch and rerank (filters, k beyond the
depth, documents written after the fit), the gate and evaluation measuring the adapter
as served, persistence, replacement, staleness, the CLI and the typed refusals.

The models (tests/prior_models.py) have hub documents that a linear adapter's mapped
queries land near, so the prior has something to correct and the tests can fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prior_models import text_of

import vecver
import vecver.adapters as adapters
from vecver.adapters.pairs import is_held_out
from vecver.adapters.prior import DocPrior, load_prior
from vecver.errors import AdapterStale, InvalidArgument, InvalidInput, NoAdapter
from vecver.types import Document

SPACES: dict[str, dict[str, Any]] = {
    "old": {"embedder": "python:prior_models:old", "dimension": 32},
    "new": {"embedder": "python:prior_models:new", "dimension": 32},
}
N_DOCS, N_HUBS = 600, 30
REF = "c/new->old"


def docs() -> list[Document]:
    out = [Document(f"d{i:04d}", text_of("doc", i), {"topic": f"t{i % 12}"})
           for i in range(N_DOCS)]
    out += [Document(f"h{h:03d}", text_of("hub", h), {"topic": "hub"}) for h in range(N_HUBS)]
    return out


def make_ws(root: Path, gate: float = 0.0) -> vecver.Workspace:
    data: dict[str, Any] = {
        "manifest": {"path": "m.db"}, "backend": {"name": "local", "path": "vectors"},
        "spaces": SPACES, "collections": {"c": {"space": "old"}},
        "adapters": {"min_retention": gate},
    }
    ws = vecver.Workspace(vecver.Config.from_mapping(data, base=root), progress=False)
    if ws.manifest.namespace_for("c", "old") is None:
        ws.collection("c").upsert(docs())
    return ws


@pytest.fixture
def ws(tmp_path: Path) -> Any:
    w = make_ws(tmp_path)
    yield w
    w.close()


#: query i is a noisy short view of document i (judged: d{i})
QUERIES = [i for i in range(N_DOCS) if is_held_out(f"d{i:04d}")] + list(range(0, N_DOCS, 9))


def recall(ws: vecver.Workspace, k: int = 10) -> tuple[float, float]:
    """(recall@k of the queries through the route, share of hubs in their top k)."""
    hits = ws.collection("c").search_many([f"query {i}" for i in QUERIES], k=k,
                                          route="adapter:new")
    rec = np.mean([any(h.id == f"d{i:04d}" for h in hs) for i, hs in zip(QUERIES, hits)])
    hubs = np.mean([h.id.startswith("h") for hs in hits for h in hs])
    return float(rec), float(hubs)


# -- the route ---------------------------------------------------------------------


def test_the_prior_moves_the_routes_top_k_toward_the_truth(ws: vecver.Workspace) -> None:
    """Without the prior the hubs crowd the mapped queries' top 10; with it (beta chosen
    at fit time on held-out training documents) recall@10 through the route rises, and
    the gate's held-out estimate (measured as served) rises with it."""
    off = adapters.fit(ws, "c", "new", "old", pairs=500, prior=False)
    assert off.info["prior"]["on"] is False
    r_off, hubs_off = recall(ws)
    # default: on for procrustes; these synthetic hubs crowd the top 20 of most queries,
    # so the rerank needs the deeper candidate list (BBC: 20 = 50, the default is 20)
    on = adapters.fit(ws, "c", "new", "old", pairs=500, prior_depth=50)
    p = on.info["prior"]
    assert p["on"] and p["beta"] > 0 and p["docs"] == N_DOCS + N_HUBS
    assert p["validation_docs"] >= 20
    assert p["validation_recall_with"] > p["validation_recall_without"]
    r_on, hubs_on = recall(ws)
    assert hubs_off > 0.05 and hubs_on < 0.7 * hubs_off
    assert r_on >= r_off + 0.03, (r_off, r_on)
    assert on.evaluation["prior_beta"] == p["beta"]
    assert on.evaluation["retention"] > off.evaluation["retention"]
    sa = adapters.query_adapter(ws, REF)
    assert sa.prior is not None and sa.prior.beta == p["beta"] and sa.prior.depth == 50


def test_the_route_ranks_by_similarity_minus_beta_prior_with_filters_and_large_k(
        ws: vecver.Workspace) -> None:
    """The route's hits are the top ``max(depth, k)`` by raw similarity (under the
    filter), reordered by ``sim - beta * prior``: checked against a brute-force
    computation, for k below and above the over-fetch depth, with and without a filter;
    the raw score stays on each hit."""
    adapters.fit(ws, "c", "new", "old", pairs=500, prior_depth=30)
    sa = adapters.query_adapter(ws, REF)
    prior = sa.prior
    assert prior is not None and prior.depth == 30
    row = ws.manifest.namespace_for("c", "old")
    assert row is not None
    got = ws.backend.fetch(row.name, [d.id for d in docs()], with_vectors=True)
    ids = sorted(got)
    vecs = np.stack([np.asarray(got[i].vector, dtype=np.float32) for i in ids])
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    topic = {d.id: d.metadata["topic"] for d in docs()}
    coll = ws.collection("c")
    for flt, k in ((None, 10), (None, 45), ({"topic": "t3"}, 10), ({"topic": "t3"}, 40)):
        q = f"query {QUERIES[3]}"
        hits = coll.search_many([q], k=k, route="adapter:new", filter=flt)[0]
        z = sa.transform(ws.embedder("new").embed_queries([q]))[0]
        keep = [n for n, i in enumerate(ids) if flt is None or topic[i] == flt["topic"]]
        sims = vecs[keep] @ z
        cand = np.argsort(-sims, kind="stable")[:max(prior.depth, k)]
        adj = sims[cand] - prior.beta * prior.of([ids[keep[j]] for j in cand])
        want = [ids[keep[cand[j]]] for j in np.argsort(-adj, kind="stable")[:k]]
        assert [h.id for h in hits] == want
        assert len(hits) == min(k, len(keep))
        assert flt is None or all(topic[h.id] == flt["topic"] for h in hits)
        for h in hits[:3]:
            assert h.score == pytest.approx(float(vecs[ids.index(h.id)] @ z), abs=1e-4)


def test_documents_written_after_the_fit_get_the_median_prior(ws: vecver.Workspace) -> None:
    adapters.fit(ws, "c", "new", "old", pairs=500)
    prior = adapters.query_adapter(ws, REF).prior
    assert prior is not None
    later = Document("late1", text_of("doc", 7), {"topic": "t7"})
    ws.collection("c").upsert([later])
    assert prior.of(["late1"])[0] == pytest.approx(prior.median)
    assert prior.median == pytest.approx(float(np.median(prior.values)))
    hits = ws.collection("c").search_many([text_of("doc", 7)], k=5, route="adapter:new")[0]
    assert {"late1", "d0007"} <= {h.id for h in hits}


# -- storage -------------------------------------------------------------------------


def test_the_prior_is_a_versioned_artifact_tied_to_the_fit(tmp_path: Path) -> None:
    """Stored once per fit next to the adapter version that names it, with both
    fingerprints; the fit event records beta, sharpness and the documents; a new
    workspace reads back exactly the same prior; refitting replaces it with the adapter,
    and enabling the old version brings its own prior back."""
    ws = make_ws(tmp_path)
    r1 = adapters.fit(ws, "c", "new", "old", pairs=500, prior_depth=50)
    a1 = ws.manifest.enabled_artifact("adapter", "c", "new->old")
    assert a1 is not None and a1.meta["prior"]["beta"] == r1.info["prior"]["beta"]
    p1 = ws.manifest.artifact("adapter-prior", "c", "new->old", a1.meta["prior"]["version"])
    assert p1 is not None and p1.id == a1.meta["prior"]["artifact"]
    assert p1.meta["target_fingerprint"] == a1.meta["target_fingerprint"]
    assert p1.meta["source_fingerprint"] == a1.meta["source_fingerprint"]
    fitted = [e for e in ws.manifest.events("c") if e["kind"] == "adapter.fitted"][-1]
    assert fitted["detail"]["prior"]["beta"] == r1.info["prior"]["beta"]
    assert fitted["detail"]["prior"]["sharpness"] == r1.info["prior"]["sharpness"]
    assert fitted["detail"]["prior"]["docs"] == N_DOCS + N_HUBS
    served1 = adapters.query_adapter(ws, REF).prior
    assert served1 is not None
    back = load_prior(served1.to_bytes())
    assert back.ids == served1.ids and back.beta == served1.beta
    np.testing.assert_array_equal(back.values, served1.values)
    ws.close()
    again = make_ws(tmp_path)
    reread = adapters.query_adapter(again, REF).prior
    assert reread is not None and reread.ids == served1.ids
    np.testing.assert_array_equal(reread.values, served1.values)
    r2 = adapters.fit(again, "c", "new", "old", pairs=400, seed=3, prior_depth=50)
    a2 = again.manifest.enabled_artifact("adapter", "c", "new->old")
    assert a2 is not None and a2.version == 2
    assert a2.meta["prior"]["artifact"] != a1.meta["prior"]["artifact"]
    served2 = adapters.query_adapter(again, REF).prior
    assert served2 is not None and served2.beta == r2.info["prior"]["beta"]
    assert not np.array_equal(served2.values, served1.values)
    listed = adapters.list_adapters(again, "c")
    assert [a.prior_beta for a in listed] == [r1.info["prior"]["beta"],
                                              r2.info["prior"]["beta"]]
    adapters.enable(again, "c", "new", "old", 1)
    served = adapters.query_adapter(again, REF).prior
    assert served is not None
    np.testing.assert_array_equal(served.values, served1.values)
    again.close()


def test_a_prior_tied_to_another_fingerprint_or_missing_is_refused(
        ws: vecver.Workspace) -> None:
    adapters.fit(ws, "c", "new", "old", pairs=500)
    art = ws.manifest.enabled_artifact("adapter", "c", "new->old")
    assert art is not None
    part = ws.manifest.artifact("adapter-prior", "c", "new->old")
    assert part is not None
    # a prior computed over another geometry of the old space: refused like the adapter
    forged = ws.manifest.put_artifact("adapter-prior", "c", "new->old", part.data,
                                      dict(part.meta, target_fingerprint="0" * 64))
    meta = dict(art.meta, prior=dict(art.meta["prior"], artifact=forged.id,
                                     version=forged.version))
    ws.manifest.put_artifact("adapter", "c", "new->old", art.data, meta, enable=True)
    adapters.service._forget(ws)
    with pytest.raises(AdapterStale) as e:
        ws.collection("c").search_many(["query 3"], k=3, route="adapter:new")
    assert e.value.side == "target" and "prior" in str(e.value)
    with pytest.raises(AdapterStale):
        adapters.evaluate(ws, "c")
    meta = dict(art.meta, prior=dict(art.meta["prior"], artifact=10_000, version=99))
    ws.manifest.put_artifact("adapter", "c", "new->old", art.data, meta, enable=True)
    adapters.service._forget(ws)
    with pytest.raises(NoAdapter) as m:
        ws.collection("c").search_many(["query 3"], k=3, route="adapter:new")
    assert "prior" in str(m.value)


def test_an_adapter_whose_namespace_changed_refuses_with_its_prior(
        ws: vecver.Workspace) -> None:
    adapters.fit(ws, "c", "new", "old", pairs=500)
    art = ws.manifest.enabled_artifact("adapter", "c", "new->old")
    assert art is not None
    ws.manifest.put_artifact("adapter", "c", "new->old", art.data,
                             dict(art.meta, target_fingerprint="1" * 64), enable=True)
    adapters.service._forget(ws)
    with pytest.raises(AdapterStale):
        ws.collection("c").search_many(["query 3"], k=3, route="adapter:new")


# -- the gate and evaluation ------------------------------------------------------------


def test_evaluate_and_the_gate_measure_the_adapter_as_served(tmp_path: Path) -> None:
    """``evaluate`` (held-out, and judged queries) ranks the adapter side with the prior
    and says so; the gate reads that figure (the newest)."""
    ws = make_ws(tmp_path)
    rep = adapters.fit(ws, "c", "new", "old", pairs=500)
    beta = rep.info["prior"]["beta"]
    _, held = adapters.evaluate(ws, "c")
    assert held.prior_beta == beta and "hubness prior" in held.note
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"query": f"query {i}", "relevant": [f"d{i:04d}"]})
                             + "\n" for i in QUERIES))
    _, judged = adapters.evaluate(ws, "c", queries=str(qfile))
    assert judged.method == "subcorpus" and judged.prior_beta == beta
    assert adapters.query_adapter(ws, REF).retention == pytest.approx(judged.retention)
    ws.close()


def test_no_prior_when_there_are_too_few_validation_documents(tmp_path: Path) -> None:
    ws = make_ws(tmp_path)
    rep = adapters.fit(ws, "c", "new", "old", pairs=40)
    assert rep.info["prior"]["on"] is False and "beta" in rep.info["prior"]["note"]
    assert adapters.query_adapter(ws, REF).prior is None
    assert not ws.manifest.artifacts("adapter-prior", "c")
    fixed = adapters.fit(ws, "c", "new", "old", pairs=40, prior_beta=0.3,
                         prior_sharpness=20.0)
    assert fixed.info["prior"]["on"] and fixed.info["prior"]["beta"] == 0.3
    ws.close()


# -- bad input -------------------------------------------------------------------------


def test_bad_priors_and_options_are_typed_refusals(ws: vecver.Workspace) -> None:
    with pytest.raises(InvalidInput, match="2 document ids"):
        DocPrior(["a", "b"], [0.1, 0.2, 0.3], beta=0.2, sharpness=20.0)
    with pytest.raises(InvalidInput, match="not finite"):
        DocPrior(["a", "b"], [0.1, float("nan")], beta=0.2, sharpness=20.0)
    with pytest.raises(InvalidInput, match="repeated"):
        DocPrior(["a", "a"], [0.1, 0.2], beta=0.2, sharpness=20.0)
    with pytest.raises(InvalidArgument):
        DocPrior(["a"], [0.1], beta=-0.1, sharpness=20.0)
    with pytest.raises(InvalidArgument):
        DocPrior(["a"], [0.1], beta=0.1, sharpness=0.0)
    with pytest.raises(InvalidArgument):
        DocPrior(["a"], [0.1], beta=0.1, sharpness=20.0, depth=0)
    with pytest.raises(InvalidInput):
        load_prior(b"not an archive")
    for bad in ({"prior_beta": -1.0}, {"prior_beta": float("nan")}, {"prior_depth": 0},
                {"prior_sharpness": 0.0}, {"prior": "yes"}):
        with pytest.raises(InvalidArgument):
            adapters.fit(ws, "c", "new", "old", pairs=500, **bad)
    assert not ws.manifest.artifacts("adapter", "c")
    assert not ws.manifest.artifacts("adapter-prior", "c")


# -- the command line ----------------------------------------------------------------


def test_cli_fit_list_evaluate_with_the_prior(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    make_ws(tmp_path).close()
    toml = tmp_path / "vecver.toml"
    lines = ['[manifest]\npath = "m.db"\n', '[backend]\nname = "local"\npath = "vectors"\n',
             '[collections.c]\nspace = "old"\n', '[adapters]\nmin_retention = 0.0\n']
    for label, table in SPACES.items():
        body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
        lines.append(f"[spaces.{label}]\n{body}\n")
    toml.write_text("\n".join(lines))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))

    def cli(*args: str, json_out: bool = True, rc: int = 0) -> Any:
        out = subprocess.run([sys.executable, "-m", "vecver", *args, "-c", str(toml),
                              *(["--json"] if json_out else [])], capture_output=True,
                             text=True, env=env, timeout=300)
        assert out.returncode == rc, out.stderr
        return json.loads(out.stdout) if json_out and rc == 0 else out.stdout + out.stderr

    on = cli("adapter", "fit", "c", "--from", "new", "--to", "old", "--pairs", "500",
             "--prior", "--prior-depth", "40")
    assert on["info"]["prior"]["on"] and on["info"]["prior"]["depth"] == 40
    off = cli("adapter", "fit", "c", "--from", "new", "--to", "old", "--pairs", "500",
              "--no-prior")
    assert off["info"]["prior"]["on"] is False and off["evaluation"]["prior_beta"] is None
    listed = cli("adapter", "list")
    assert [a["prior_beta"] for a in listed["adapters"]] == [on["info"]["prior"]["beta"],
                                                             None]
    cli("adapter", "enable", "c", "--from", "new", "--to", "old", "--version", "1")
    ev = cli("adapter", "evaluate", "c")
    assert ev["evaluation"]["prior_beta"] == on["info"]["prior"]["beta"]
    text = cli("adapter", "list", json_out=False)
    assert "prior" in text and f"beta {on['info']['prior']['beta']:g}" in text
    text = cli("adapter", "evaluate", "c", json_out=False)
    assert "hubness prior: on" in text
    both = cli("adapter", "fit", "c", "--from", "new", "--to", "old", "--prior",
               "--no-prior", json_out=False, rc=2)
    assert "--prior" in both
