"""Drift detection (vecver.drift): the statistics' calibration and power, centroid drift
on a known shift, the check of a collection's space (signals, references, recording),
the ``vecver drift`` verb end to end, and bad input as typed errors."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from vvcli import hash_config, make_docs
from vvcore import config
from vvcore import make_docs as core_docs

import vecver
from vecver.config import DriftSettings
from vecver.drift import check as drift_check
from vecver.drift import observer as obs
from vecver.drift import reservoir as rs
from vecver.drift._check import CANARY_KIND, RESULT_KIND, latest_results, save_reference
from vecver.drift.stats import centroid_drift, check_sample, energy_shift, mmd_test
from vecver.errors import (
    ConfigError,
    DriftReferenceEmpty,
    DriftReferenceMismatch,
    DriftSampleInvalid,
    InvalidArgument,
    UnknownDriftReference,
    UnknownSpace,
)
from vecver.ops.backfill import migrate

# ------------------------------------------------------------------------ statistics


def _ks_uniform(p: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of the sample ``p`` from the uniform on [0, 1]."""
    x = np.sort(p)
    n = x.size
    return float(max((np.arange(1, n + 1) / n - x).max(), (x - np.arange(n) / n).max()))


def test_mmd_false_positive_rate_is_near_alpha() -> None:
    """Same-distribution samples: p-values are ~uniform, so p <= 0.05 in about 5% of
    trials. 100 seeded trials: the binomial sd of the rate is 0.022, so the rate must be
    below 0.05 + 3 sd; the KS distance from uniform below 0.2 (the 1% critical value at
    n = 100 is 0.163; the p-value grid of 99 permutations adds 0.01)."""
    rng = np.random.default_rng(0)
    ps = []
    for t in range(100):
        x = rng.standard_normal((60, 5)).astype(np.float32)
        y = rng.standard_normal((60, 5)).astype(np.float32)
        ps.append(mmd_test(x, y, permutations=99, seed=t).p_value)
    p = np.asarray(ps)
    assert (p <= 0.05).mean() <= 0.05 + 3 * 0.022
    assert 0.35 < p.mean() < 0.65
    assert _ks_uniform(p) < 0.2


def test_mmd_power_is_near_one_for_a_clear_shift() -> None:
    """A mean shift of 0.6 sd in every coordinate is detected in every one of 20 trials,
    and a change of scale alone (same mean) too."""
    rng = np.random.default_rng(1)
    for t in range(20):
        x = rng.standard_normal((80, 5)).astype(np.float32)
        y = (rng.standard_normal((80, 5)) + 0.6).astype(np.float32)
        assert mmd_test(x, y, permutations=99, seed=t).p_value <= 0.05
    x = rng.standard_normal((150, 5)).astype(np.float32)
    y = (2.0 * rng.standard_normal((150, 5))).astype(np.float32)
    assert mmd_test(x, y, permutations=99).p_value <= 0.05


def test_mmd_is_seeded_and_subsamples_to_a_bound() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 3)).astype(np.float32)
    y = rng.standard_normal((400, 3)).astype(np.float32)
    a = mmd_test(x, y, permutations=50, max_samples=100, seed=5)
    b = mmd_test(x, y, permutations=50, max_samples=100, seed=5)
    assert a == b
    assert (a.n_reference, a.n_recent) == (100, 100)
    assert 0 < a.p_value <= 1 and a.bandwidth > 0


def test_centroid_drift_measures_a_known_shift() -> None:
    """Moving every vector by 20% of the reference's spread gives a mean shift near 0.2
    and a clear centroid shift (smaller: the reference's cells stay where they are, so
    each cell's mean moves by less than the distribution); two samples of one
    distribution give 0 (net of sampling noise), under the 5% threshold."""
    rng = np.random.default_rng(3)
    d = 8
    x = rng.standard_normal((3000, d))
    spread = math.sqrt(d)
    delta = np.zeros(d)
    delta[0] = 0.2 * spread
    y = rng.standard_normal((3000, d)) + delta
    moved = centroid_drift(x, y, k=4, seed=0)
    assert moved.mean_shift == pytest.approx(0.2, abs=0.03)
    assert 0.08 < moved.centroid_shift <= 0.2
    assert moved.occupancy_change > 0.05
    same = centroid_drift(x, rng.standard_normal((3000, d)), k=4, seed=0)
    assert same.mean_shift < 0.02 and same.centroid_shift < 0.02
    assert same.raw_mean_shift > same.mean_shift  # the correction removed noise


def test_energy_shift_sees_a_move_the_centroid_measures_miss() -> None:
    """The spread grows by 30% around the same mean: the mean and every k-means cell
    stay where they were (mean and centroid shift 0 net of noise), the whole
    distribution did move and the energy shift says so; for a plain translation it
    reads like the mean shift; two samples of one distribution give 0."""
    rng = np.random.default_rng(11)
    d = 32
    x = rng.standard_normal((1500, d))
    wider = 1.3 * rng.standard_normal((1500, d))
    cd = centroid_drift(x, wider, k=4, seed=0)
    es = energy_shift(x, wider, seed=0)
    assert cd.mean_shift < 0.05 and cd.centroid_shift < 0.05
    assert es.shift > 0.1 and es.p_value < 0.05
    delta = np.zeros(d)
    delta[0] = 0.2 * math.sqrt(d)
    moved = rng.standard_normal((1500, d)) + delta
    assert energy_shift(x, moved).shift == pytest.approx(
        centroid_drift(x, moved).mean_shift, abs=0.03)
    same = energy_shift(x, rng.standard_normal((1500, d)), seed=0)
    assert same.shift == 0.0 and same.noise > 0.0 and same.p_value > 0.01
    assert energy_shift(x, wider, seed=0) == es  # seeded


def test_energy_shift_sees_a_change_of_mix_that_moves_no_cell() -> None:
    """Four clusters; the recent window is 70% one of them: every k-means cell keeps
    its mean (centroid shift 0), the whole-distribution shift is large."""
    rng = np.random.default_rng(12)
    centres = rng.standard_normal((4, 16)) * 1.5

    def mix(n: int, w: list[float]) -> np.ndarray:
        lab = rng.choice(4, size=n, p=w)
        return centres[lab] + 0.5 * rng.standard_normal((n, 16))

    x, y = mix(1200, [0.25] * 4), mix(600, [0.7, 0.1, 0.1, 0.1])
    cd = centroid_drift(x, y, k=4, seed=0)
    es = energy_shift(x, y, seed=0)
    assert cd.centroid_shift < 0.02 < 0.3 < es.shift


def test_mmd_effect_size_floor_in_the_check(tmp_path: Path) -> None:
    """A significant MMD alarms only at or above ``[drift] min_mmd2``: the same topic
    shift, with a floor above its MMD^2, is significant but reported ok (below_floor);
    a significant-but-tiny change on Gaussians (2,000 a side, 0.08 sd in one of 16
    dimensions) is below the default floor."""
    with vecver.open(_cfg(tmp_path, min_mmd2=10.0), progress=False) as ws:
        c = ws.collection("c")
        c.upsert(core_docs(400))
        c.upsert(_shifted_docs(100, 0))
        mmd = drift_check(ws, "c", recall=False).signal("mmd")
        assert mmd.value is not None and mmd.value <= 0.05
        assert mmd.status == "ok" and mmd.action is None
        assert mmd.detail["significant"] and mmd.detail["below_floor"]
        assert mmd.detail["min_mmd2"] == 10.0 and mmd.detail["mmd2"] < 10.0
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2000, 16))
    y = rng.standard_normal((2000, 16))
    y[:, 0] += 0.08
    tiny = mmd_test(x, y, permutations=200, seed=0)
    assert tiny.p_value <= 0.05 and tiny.mmd2 < DriftSettings().min_mmd2


@pytest.mark.parametrize("bad", [-0.001, float("inf"), "high", True])
def test_min_mmd2_must_be_a_finite_non_negative_number(bad: object) -> None:
    with pytest.raises(ConfigError, match="min_mmd2"):
        DriftSettings.from_mapping({"min_mmd2": bad})
    assert DriftSettings.from_mapping({"min_mmd2": 0}).min_mmd2 == 0.0
    assert DriftSettings.from_mapping({}).min_mmd2 == 0.001


@pytest.mark.parametrize("bad, why", [
    (np.zeros((0, 4)), "empty"),
    (np.array([[1.0, np.nan, 0.0, 0.0]]), "NaN"),
    (np.array([[1.0, np.inf, 0.0, 0.0]]), "NaN or infinity"),
    (np.ones((3, 5)), "dimension 5"),
    ("not vectors", "numeric"),
])
def test_bad_samples_are_typed_errors(bad: object, why: str) -> None:
    good = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(DriftSampleInvalid, match=why):
        mmd_test(good, bad)
    with pytest.raises(DriftSampleInvalid):
        centroid_drift(good, bad)
    with pytest.raises(DriftSampleInvalid):
        energy_shift(good, bad)
    with pytest.raises(DriftSampleInvalid):
        check_sample(bad, "x", 4)
    with pytest.raises(InvalidArgument):
        mmd_test(good, good, permutations=0)
    with pytest.raises(InvalidArgument):
        energy_shift(good, good, permutations=0)


# ------------------------------------------------------------ the check of a collection


def _cfg(root: Path, backend: str = "memory", **drift: object) -> vecver.Config:
    """A hash-embedder workspace config with a small ``[drift]`` (fast checks)."""
    settings: dict[str, object] = {"reservoir_size": 300, "window": 100, "flush_every": 50,
                                   "flush_seconds": 1e9, "permutations": 99}
    settings.update(drift)
    return dataclasses.replace(config(root, backend),
                               drift=DriftSettings(**settings))  # type: ignore[arg-type]


def _shifted_docs(n: int, start: int) -> list[vecver.Document]:
    """Documents dominated by one shared new topic: their (hash) vectors share a
    direction the earlier documents do not have."""
    return [vecver.Document(f"s{i:04d}", f"football football football league goal s{i}x")
            for i in range(start, start + n)]


def test_check_reports_every_signal_and_records_it(tmp_path: Path) -> None:
    """Documents written in an order unrelated to their content: no signal alarms
    (alpha 0.01 here: at 0.05 one seed in twenty would alarm by chance)."""
    with vecver.open(_cfg(tmp_path, alpha=0.01), progress=False) as ws:
        ws.collection("c").upsert(core_docs(400))
        rep = drift_check(ws, "c")
        names = [s.name for s in rep.signals]
        assert names == ["mmd", "mean_shift", "centroid_shift", "distribution_shift", "recall",
                         "query_distance"]
        assert rep.space == "v1" and rep.n_recent == 100 and 0 < rep.n_reference <= 300
        assert rep.signal("mmd").status == "ok" and not rep.drifted
        assert rep.signal("recall").status == "baseline"
        assert rep.signal("recall").detail["recall"] == 1.0  # memory backend: exact
        for s in rep.signals:
            assert s.status in ("ok", "baseline") and s.action is None
        assert rep.recorded
        assert ws.manifest.artifact(RESULT_KIND, "c", "v1") is not None
        assert any(e["kind"] == "drift.checked" for e in ws.manifest.events("c"))
        (latest,) = latest_results(ws, "c")
        assert latest["space"] == "v1" and latest["signals"]["mmd"]["status"] == "ok"
        again = drift_check(ws, "c")
        assert again.signal("recall").status == "ok"
        assert again.signal("recall").value == pytest.approx(0.0)
        json.dumps(again.to_dict())  # the JSON the verb prints


def test_a_topic_shift_alarms_with_the_actions(tmp_path: Path) -> None:
    with vecver.open(_cfg(tmp_path), progress=False) as ws:
        c = ws.collection("c")
        c.upsert(core_docs(400))
        c.upsert(_shifted_docs(100, 0))
        rep = drift_check(ws, "c", recall=False)
        assert rep.drifted
        mmd = rep.signal("mmd")
        assert mmd.status == "alarm" and mmd.value is not None and mmd.value <= 0.05
        assert mmd.action is not None and "re-embed" in mmd.action
        assert rep.signal("mean_shift").status == "alarm"
        assert "retrain the IVF centroids" in " ".join(rep.actions)
        assert rep.signal("recall").status == "skipped"


def test_reference_by_time_and_by_saved_sample(tmp_path: Path) -> None:
    with vecver.open(_cfg(tmp_path), progress=False) as ws:
        c = ws.collection("c")
        c.upsert(core_docs(300))
        saved = save_reference(ws, "c", "before")
        assert saved["n"] == 300 and saved["space"] == "v1"
        rs.flush_all(ws)
        cut = rs.stored_view(ws.manifest, "c", "v1")
        assert cut is not None
        when = float(cut.sample_at.max()) + 1e-3
        ws.manifest  # noqa: B018 - the same workspace goes on writing
        c.upsert(_shifted_docs(100, 0))
        by_time = drift_check(ws, "c", reference=repr(when), recall=False)
        now = rs.stored_view(ws.manifest, "c", "v1")
        assert now is not None
        # the sampled vectors written before the cut (some were replaced since)
        assert by_time.n_reference == int((now.sample_at <= when).sum()) > 150
        assert by_time.n_recent == 100
        assert by_time.signal("mmd").status == "alarm"
        by_name = drift_check(ws, "c", reference="before", recall=False)
        assert "saved sample 'before'" in by_name.reference
        assert by_name.signal("mmd").status == "alarm"
        npy = tmp_path / "ref.npy"
        np.save(npy, cut.sample)
        by_file = drift_check(ws, "c", reference=str(npy), recall=False)
        assert by_file.n_reference == 300 and by_file.signal("mmd").status == "alarm"


def test_a_recall_drop_below_the_baseline_alarms(tmp_path: Path) -> None:
    """The first check records the canary baseline; a later recall more than 3 points
    under it alarms with "rebuild the graph". (The memory backend is exact, so the drop
    is made by a baseline recorded higher than what the index gives now.)"""
    with vecver.open(_cfg(tmp_path), progress=False) as ws:
        ws.collection("c").upsert(core_docs(300))
        first = drift_check(ws, "c")
        assert first.signal("recall").status == "baseline"
        ns = ws.manifest.active_namespace("c")
        art = ws.manifest.artifact(CANARY_KIND, "c", ns)
        assert art is not None and art.meta["baseline"] == 1.0
        ws.manifest.put_artifact(CANARY_KIND, "c", ns, art.data,
                                 {**art.meta, "baseline": 1.05}, keep=1)
        rep = drift_check(ws, "c")
        rec = rep.signal("recall")
        assert rec.status == "alarm" and rec.value == pytest.approx(0.05)
        assert rec.action is not None and "rebuild the ANN graph" in rec.action


def test_query_distances_are_recorded_from_the_read_path(tmp_path: Path) -> None:
    """The observer turns each served query's top hit into a distance bucket in the
    store's counters; a check then uses them (source "queries")."""
    with vecver.open(_cfg(tmp_path), progress=False) as ws:
        ws.collection("c").upsert(core_docs(200))
        o = obs.QueryDistanceObserver(ws, flush_every=10_000)
        hit = SimpleNamespace(score=0.75)
        leg = SimpleNamespace(role="serve",
                              namespace=SimpleNamespace(space_label="v1"))
        event = SimpleNamespace(collection="c",
                                legs=[SimpleNamespace(leg=leg, results=[[hit], [], [hit]])])
        for _ in range(40):
            o.on_search(event)
        assert obs.distance_series(ws.manifest, "c", "v1") == []  # not flushed yet
        o.flush()
        (bucket,) = obs.distance_series(ws.manifest, "c", "v1")
        assert bucket.n == 80 and bucket.mean == pytest.approx(0.25)
        rep = drift_check(ws, "c", recall=False)
        qd = rep.signal("query_distance")
        # one hour of queries only: no reference window yet, the proxy stands in
        assert qd.detail["source"].startswith("recent writes")
        ws.manifest.bump_counters("c", {obs.counter_key("v1", 1, "n"): 100.0,
                                        obs.counter_key("v1", 1, "sum"): 10.0})
        rep = drift_check(ws, "c", recall=False)
        qd = rep.signal("query_distance")
        assert qd.detail["source"] == "queries"
        assert qd.value == pytest.approx((0.25 - 0.1) / 0.1)
        assert qd.status == "alarm" and qd.action is not None and "re-embed" in qd.action


def test_observer_installed_on_a_workspace_counts_real_searches(tmp_path: Path) -> None:
    with vecver.open(_cfg(tmp_path), progress=False) as ws:
        c = ws.collection("c")
        c.upsert(core_docs(50))
        o = obs.install(ws)
        assert o is not None and obs.install(ws) is o
        c.search_many([d.text for d in core_docs(5)], k=3)
        o.flush()
        (bucket,) = obs.distance_series(ws.manifest, "c", "v1")
        assert bucket.n == 5 and bucket.mean == pytest.approx(0.0, abs=1e-3)


def test_bad_references_and_spaces_are_typed_errors(tmp_path: Path) -> None:
    with vecver.open(_cfg(tmp_path), progress=False) as ws:
        c = ws.collection("c")
        with pytest.raises(DriftReferenceEmpty, match="holds no vectors"):
            drift_check(ws, "c")  # nothing written yet
        c.upsert(core_docs(150))
        with pytest.raises(UnknownSpace):
            drift_check(ws, "c", space="v9")
        with pytest.raises(UnknownDriftReference, match="saved: none"):
            drift_check(ws, "c", reference="no-such-sample")
        with pytest.raises(DriftReferenceEmpty, match="before"):
            drift_check(ws, "c", reference="2001-01-01")
        nan = tmp_path / "nan.npy"
        np.save(nan, np.full((4, 64), np.nan, dtype=np.float32))
        with pytest.raises(DriftSampleInvalid, match="NaN"):
            drift_check(ws, "c", reference=str(nan))
        empty = tmp_path / "empty.npy"
        np.save(empty, np.zeros((0, 64), dtype=np.float32))
        with pytest.raises(DriftSampleInvalid, match="empty"):
            drift_check(ws, "c", reference=str(empty))
        narrow = tmp_path / "narrow.npy"
        np.save(narrow, np.ones((4, 8), dtype=np.float32))
        with pytest.raises(DriftReferenceMismatch, match="dimension 8"):
            drift_check(ws, "c", reference=str(narrow))
        save_reference(ws, "c", "v1-sample")
        migrate(ws, "c", "v2", progress=False)
        with pytest.raises(DriftReferenceMismatch, match="v1"):
            drift_check(ws, "c", space="v2", reference="v1-sample")
        assert drift_check(ws, "c", space="v2", recall=False).space == "v2"
        checked = [e for e in ws.manifest.events("c") if e["kind"] == "drift.checked"]
        assert len(checked) == 1  # the refusals recorded nothing


# ------------------------------------------------------------------------ the verb


def _cli_config(extra: str = "") -> str:
    return hash_config(extra="[drift]\nreservoir_size = 300\nwindow = 100\n"
                             "flush_every = 1000\npermutations = 99\n" + extra)


def test_verb_end_to_end(cli_ws) -> None:  # type: ignore[no-untyped-def]
    """ingest (one process) then drift (another): the sample was persisted by the first
    process; the report is JSON with every signal; a drift exits 1 with one line."""
    cli_ws.write_config(_cli_config())
    cli_ws.run("ingest", "docs", cli_ws.jsonl("a.jsonl", make_docs(400)), ok=True)
    res = cli_ws.run("drift", "docs", "--json", ok=True)
    data = res.json()
    assert data["space"] == "v1" and data["drifted"] is False
    assert {s["name"]: s["status"] for s in data["signals"]}["recall"] == "baseline"
    text = cli_ws.run("drift", "docs", "--no-recall", ok=True).out
    assert "mmd" in text and "no drift" in text
    assert "distribution_shift" in text and "MMD^2>=0.001" in text  # the floor is shown
    shifted = [{"id": f"s{i}", "text": f"football football league goal s{i}x"}
               for i in range(100)]
    cli_ws.run("ingest", "docs", cli_ws.jsonl("b.jsonl", shifted), ok=True)
    res = cli_ws.run("drift", "docs", "--no-recall", ok=False)
    assert res.rc == 1 and "alarms on mmd" in res.err
    assert "retrain the IVF centroids" in res.out
    bad = cli_ws.run("drift", "docs", "--space", "v9", ok=False)
    assert bad.rc == 2 and "unknown space" in bad.err
    bad = cli_ws.run("drift", "docs", "--reference", "nope", ok=False)
    assert bad.rc == 2 and "unknown drift reference" in bad.err


def test_results_are_exposed_as_metrics(tmp_path: Path) -> None:
    """The newest check of each space becomes gauges (value, threshold, alarm), and the
    reservoir's size is exposed too; the Prometheus text holds them when the client is
    installed."""
    from vecver.drift import metrics

    with vecver.open(_cfg(tmp_path), progress=False) as ws:
        c = ws.collection("c")
        c.upsert(core_docs(300))
        c.upsert(_shifted_docs(100, 0))
        drift_check(ws, "c", recall=False)
        got = {(n, tuple(sorted(lab.items()))): v for n, lab, v in metrics.samples(ws)}
        key = (("collection", "c"), ("signal", "mmd"), ("space", "v1"))
        assert got[("vecver_drift_alarm", key)] == 1.0
        assert got[("vecver_drift_threshold", key)] == 0.05
        assert got[("vecver_drift_drifted", (("collection", "c"), ("space", "v1")))] == 1.0
        seen = (("collection", "c"), ("part", "seen"), ("space", "v1"))
        assert got[("vecver_drift_reservoir_vectors", seen)] == 400.0
        assert metrics.samples(ws, ["other"]) == []
        prometheus_client = pytest.importorskip("prometheus_client",
                                                reason="prometheus-client not installed")
        reg = prometheus_client.CollectorRegistry(auto_describe=False)
        metrics.register(reg, ws)
        text = prometheus_client.generate_latest(reg).decode()
        assert 'vecver_drift_alarm{collection="c",signal="mmd",space="v1"} 1.0' in text


def test_a_space_written_without_sampling_is_seeded_from_its_namespace(
        tmp_path: Path) -> None:
    """A collection written while sampling was off (as before the feature existed) has no
    reservoir; the first check samples the namespace (the newest-stamped vectors as the
    recent window), stores it, and later writes continue it."""
    root = tmp_path / "w"
    root.mkdir()
    with vecver.open(_cfg(root, "local", sample_writes=False), progress=False) as ws:
        c = ws.collection("c")
        c.upsert(core_docs(300))
        c.upsert(_shifted_docs(100, 0))  # written last: the recent window
        assert ws.manifest.artifact(rs.KIND, "c", "v1") is None
    with vecver.open(_cfg(root, "local"), progress=False) as ws:
        rep = drift_check(ws, "c", recall=False)
        # a uniform 300 of the 400 stored, less those in the window (about 3/4 of 300)
        assert 150 < rep.n_reference < 300 and rep.n_recent == 100
        assert rep.signal("mmd").status == "alarm"
        stored = rs.stored_view(ws.manifest, "c", "v1")
        assert stored is not None and stored.seen == 400
        shifted = _shifted_docs(100, 0)
        want = ws.embedder("v1").embed_documents([d.text for d in shifted],
                                                 [d.id for d in shifted])
        d2 = ((stored.recent[:, None, :] - want[None, :, :]) ** 2).sum(-1)
        assert d2.min(axis=1).max() < 1e-4  # every recent vector is a shifted document's
        ws.collection("c").upsert(core_docs(10, start=300))
        rs.flush_all(ws)
        again = rs.stored_view(ws.manifest, "c", "v1")
        assert again is not None and again.seen == 410


def test_the_package_function_stays_callable_after_its_module_is_imported() -> None:
    """``vecver.drift.check`` is the function, also after the CLI's verb module (which
    imports the implementation) was imported and after a first call: the implementation
    lives in ``vecver.drift._check``, so importing it never replaces the package's
    attribute (it did when the module was ``vecver.drift.check``)."""
    import importlib

    import vecver.drift as drift

    importlib.import_module("vecver.verbs.drift")
    assert callable(drift.check) and drift.check.__module__ == "vecver.drift"
    assert drift.DriftReport.__name__ == "DriftReport"
    assert callable(drift.latest_results)
    with pytest.raises(AttributeError):
        drift.no_such_name  # noqa: B018
