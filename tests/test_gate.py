"""The cutover gate: a typed result that says (and records) which checks ran; a gated
cutover refused while a configured check could not run; zero vectors never reach a
cosine space, so they cannot pass the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vvcore import SPACES, active_label, make_docs, states

import vecver
from vecver.config import Gate
from vecver.errors import (
    GateChecksNotRun,
    GateFailed,
    NotEvaluated,
    NotReady,
    VecverError,
)
from vecver.ops.cutover import CutoverReport, GateCheck, GateResult, gate_check
from vecver.ops.evaluate import Judgment

#: a gate that names the relevance comparison, as `vecver init` writes it
RELEVANCE_GATE = {"min_ann_recall": 0.5, "metric": "mrr", "max_regression": 0.05}


def _judgments(n: int) -> list[Judgment]:
    return [Judgment(f"alpha{i} beta{i} gamma{i}", frozenset({f"d{i:04d}"})) for i in range(n)]


def _ready(make_ws, **kw: object) -> vecver.Workspace:
    ws = make_ws(**kw)
    ws.collection("c").upsert(make_docs(40))
    vecver.migrate(ws, "c", "v2", progress=False)
    return ws


def _events(ws: vecver.Workspace, kind: str) -> list[dict]:
    return [e["detail"] for e in ws.manifest.events("c") if e["kind"] == kind]


# ------------------------------------------------------------------------ the result type


def test_gate_result_passes_unless_a_check_blocks() -> None:
    ok = GateCheck("ann_recall", "passed", "ANN recall@10 0.990 >= 0.9", run="r1")
    skipped = GateCheck("relevance", "not_run", "mrr was not compared", required=False)
    missing = GateCheck("relevance", "not_run", "mrr was not compared", required=True)
    bad = GateCheck("ann_recall", "failed", "ANN recall@10 0.5 < 0.9", run="r1")
    assert GateResult.of([ok, skipped]).passed
    assert GateResult.of([ok, skipped]).reasons == []
    assert not GateResult.of([ok, missing]).passed
    assert GateResult.of([ok, missing]).reasons == ["mrr was not compared"]
    assert not GateResult.of([bad, skipped]).passed
    assert GateResult.of([ok, bad, missing]).ran() == ["ann_recall", "ann_recall"]
    assert ok.passed and not bad.passed and not skipped.passed
    assert str(ok) == "passed: ANN recall@10 0.990 >= 0.9"
    assert str(skipped) == "not run: mrr was not compared (not required)"
    d = GateResult.of([ok, skipped]).to_dict()
    assert d == {"passed": True, "checks": [
        {"name": "ann_recall", "status": "passed", "detail": "ANN recall@10 0.990 >= 0.9",
         "required": True, "run": "r1"},
        {"name": "relevance", "status": "not_run", "detail": "mrr was not compared",
         "required": False, "run": None},
    ]}
    rep = CutoverReport("c", "v1", "v2", False, GateResult.of([ok]))
    assert json.loads(json.dumps(rep.to_dict()))["gate"]["checks"][0]["status"] == "passed"
    assert CutoverReport("c", "v1", "v2", True, None).to_dict()["gate"] is None


def test_relevance_is_configured_when_the_gate_table_names_it() -> None:
    assert not Gate().relevance_required
    assert not Gate.from_mapping({}).relevance_required
    assert not Gate.from_mapping({"min_ann_recall": 0.8, "k": 5}).relevance_required
    assert Gate.from_mapping({"metric": "mrr"}).relevance_required
    assert Gate.from_mapping({"max_regression": 0.1}).relevance_required
    assert Gate.from_mapping(RELEVANCE_GATE).relevance_required


# ------------------------------------------------------------------------ configured checks


def test_configured_relevance_without_judged_queries_refuses_the_cutover(make_ws) -> None:
    """``evaluate`` without ``--queries`` cannot compare relevance: a gate that names
    ``metric`` no longer passes on ANN recall alone."""
    ws = _ready(make_ws, gate=RELEVANCE_GATE)
    vecver.evaluate(ws, "c")
    with pytest.raises(GateChecksNotRun) as err:
        vecver.cutover(ws, "c")
    assert isinstance(err.value, GateFailed) and err.value.label == "v2"
    assert err.value.not_run == ["relevance"]
    assert "vecver evaluate c --queries FILE" in str(err.value) and "--force" in str(err.value)
    assert any("mrr" in r for r in err.value.reasons)
    result = err.value.result
    assert isinstance(result, GateResult) and not result.passed
    assert [(c.name, c.status, c.required) for c in result.checks] == [
        ("ann_recall", "passed", True), ("relevance", "not_run", True)]
    assert states(ws) == {"v1": "active", "v2": "ready"}
    (refused,) = _events(ws, "cutover.refused")
    assert refused["space"] == "v2" and refused["gate"] == result.to_dict()
    # forcing is the explicit way past it: the gate is then not checked (and says so)
    rep = vecver.cutover(ws, "c", force=True)
    assert rep.forced and rep.gate is None and active_label(ws) == "v2"
    assert _events(ws, "alias.cutover")[-1]["gate"] is None
    assert _events(ws, "alias.cutover")[-1]["forced"] is True


def test_with_judged_queries_the_configured_gate_passes_and_is_recorded(make_ws) -> None:
    ws = _ready(make_ws, gate=RELEVANCE_GATE)
    ev = vecver.evaluate(ws, "c", queries=_judgments(20))
    rep = vecver.cutover(ws, "c")
    assert rep.gate is not None and rep.gate.passed and rep.gate.ran() == ["ann_recall",
                                                                            "relevance"]
    assert all(c.status == "passed" and c.run == ev.run for c in rep.gate.checks)
    assert rep.gate.checks[1].detail.startswith("mrr ")
    (cut,) = _events(ws, "alias.cutover")
    assert cut["gate"] == rep.gate.to_dict() and cut["forced"] is False
    assert json.loads(json.dumps(rep.to_dict()))["gate"] == rep.gate.to_dict()


def test_each_check_reads_the_newest_evaluation_that_measured_it(make_ws) -> None:
    """A later evaluation without queries does not erase the relevance comparison made
    since the space became ready."""
    ws = _ready(make_ws, gate=RELEVANCE_GATE)
    judged = vecver.evaluate(ws, "c", queries=_judgments(20))
    quick = vecver.evaluate(ws, "c", sample=20)
    target = ws.manifest.namespace_for("c", "v2")
    assert target is not None
    result = gate_check(ws, "c", target)
    assert result.passed
    assert {c.name: c.run for c in result.checks} == {"ann_recall": quick.run,
                                                     "relevance": judged.run}


def test_a_gate_without_relevance_keys_passes_on_ann_recall(make_ws) -> None:
    """Configs that do not name a relevance metric keep working without judgments; the
    result still says the relevance comparison did not run."""
    ws = _ready(make_ws, gate={"min_ann_recall": 0.5})
    vecver.evaluate(ws, "c")
    rep = vecver.cutover(ws, "c")
    assert rep.gate is not None and rep.gate.passed and rep.gate.ran() == ["ann_recall"]
    (rel,) = [c for c in rep.gate.checks if c.name == "relevance"]
    assert (rel.status, rel.required) == ("not_run", False)
    assert "--queries" in rel.detail


def test_a_failed_check_is_gate_failed_not_checks_not_run(make_ws) -> None:
    ws = _ready(make_ws, gate=dict(RELEVANCE_GATE, min_ann_recall=1.1))
    vecver.evaluate(ws, "c")
    with pytest.raises(GateFailed) as err:
        vecver.cutover(ws, "c")
    assert not isinstance(err.value, GateChecksNotRun)
    statuses = {c.name: c.status for c in err.value.result.checks}
    assert statuses == {"ann_recall": "failed", "relevance": "not_run"}
    assert len(err.value.reasons) == 2  # both keep the gate closed
    assert "relax [gate]" in str(err.value)


def test_no_evaluation_is_still_not_evaluated(make_ws) -> None:
    ws = _ready(make_ws, gate=RELEVANCE_GATE)
    with pytest.raises(NotEvaluated):
        vecver.cutover(ws, "c")
    assert _events(ws, "cutover.refused") == []


# ------------------------------------------------------------------------ zero vectors


def test_an_all_zero_embedder_cannot_pass_the_gate(make_ws, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A model returning all-zero vectors into a cosine space used to be accepted:
    ANN recall 1.0, a gated cutover passed, and every search then scored 0. Its
    vectors are now refused before they are written, so it never becomes ready."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    spaces = dict(SPACES, zero={"embedder": "python:fake_models:zeros", "dimension": 8})
    ws = make_ws(spaces=spaces, gate={"min_ann_recall": 0.9})
    c = ws.collection("c")
    c.upsert(make_docs(30))
    with pytest.raises(VecverError, match="all zeros"):
        vecver.migrate(ws, "c", "zero", progress=False)
    assert states(ws)["zero"] != "ready"
    zero_ns = ws.manifest.namespace_for("c", "zero")
    assert zero_ns is not None and ws.backend_for(zero_ns).count(zero_ns.name) == 0
    with pytest.raises(NotReady):
        vecver.cutover(ws, "c", to="zero")
    assert active_label(ws) == "v1"
    hits = c.search(make_docs(30)[5].text, 3)
    assert hits[0].id == "d0005" and hits[0].score > 0.5
