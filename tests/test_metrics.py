"""Read-path metrics (vecver.read.metrics): per collection and route, the counts equal what
the test issued; the mixed-version rate and each space's share of hits are what the
served hits show; the latency histogram and its quantiles; the lazy queue and backfill
progress; ``vecver stats`` across processes; the Prometheus exposition."""

from __future__ import annotations

import dataclasses
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from vvcli import CliWorkspace, make_docs
from vvcore import config, text_of
from vvcore import make_docs as core_docs

import vecver
from vecver.config import LazySettings
from vecver.errors import InvalidArgument, MetricsNotInstalled, UnknownCollection
from vecver.ops.backfill import backfill, start_migration
from vecver.read import lazy, metrics
from vecver.read.metrics import LATENCY_BUCKETS_MS, bucket_index, quantile, stats

N = 40


@pytest.fixture
def mws(fast_dir: Path):
    """A memory-backend workspace with collection ``c`` (N documents in v1); the flusher
    never runs on its own (flush_interval 1 hour): the tests flush."""
    cfg = dataclasses.replace(config(fast_dir, "memory"),
                              lazy=LazySettings(flush_interval=3600.0))
    ws = vecver.open(cfg, progress=False)
    ws.collection("c").upsert(core_docs(N))
    yield ws
    ws.close()


# ----------------------------------------------------------------------------- pure parts


def test_bucket_index_places_bounds_in_their_own_bucket() -> None:
    assert bucket_index(0.0) == 0
    assert bucket_index(LATENCY_BUCKETS_MS[0]) == 0
    assert bucket_index(LATENCY_BUCKETS_MS[0] + 1e-9) == 1
    assert bucket_index(LATENCY_BUCKETS_MS[-1]) == len(LATENCY_BUCKETS_MS) - 1
    assert bucket_index(LATENCY_BUCKETS_MS[-1] * 10) == len(LATENCY_BUCKETS_MS)


def test_quantile_interpolates_inside_a_bucket() -> None:
    bounds = (1.0, 2.0, 4.0)
    assert quantile([0, 0, 0, 0], 0.5, bounds) is None
    assert quantile([10, 0, 0, 0], 0.5, bounds) == pytest.approx(0.5)
    assert quantile([0, 10, 0, 0], 0.5, bounds) == pytest.approx(1.5)
    # 1 observation in (0,1], 1 in (1,2], 2 in (2,4]: the median is the top of bucket 1
    assert quantile([1, 1, 2, 0], 0.5, bounds) == pytest.approx(2.0)
    assert quantile([1, 1, 2, 0], 0.75, bounds) == pytest.approx(3.0)
    assert quantile([0, 0, 0, 5], 0.99, bounds) == 4.0  # +inf: the last finite bound
    for bad in (-0.1, 1.5, True):
        with pytest.raises(InvalidArgument):
            quantile([1, 0, 0, 0], bad, bounds)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        quantile([1, 0], 0.5, bounds)


# ----------------------------------------------------------------------------- counts


def test_counts_equal_what_was_issued(mws) -> None:
    coll = mws.collection("c")
    hits_v1 = 0
    for i in range(7):
        hits_v1 += len(coll.search(text_of(f"d{i:04d}"), 3))
    many = coll.search_many([text_of("d0001"), text_of("d0002"), text_of("d0003")], 4)
    hits_v1 += sum(len(h) for h in many)
    lazy.flush(mws)
    s = stats(mws, "c")
    r = s.route("active")
    assert r is not None
    assert (r.searches, r.queries, r.result_lists) == (8, 10, 10)
    assert r.hits == {"v1": hits_v1} and r.hit_share == {"v1": 1.0}
    assert r.mixed_lists == 0 and r.mixed_rate == 0.0
    assert sum(r.latency_buckets) == 8
    assert r.latency_p50_ms is not None and r.latency_p99_ms is not None
    assert 0 < r.latency_p50_ms <= r.latency_p99_ms
    assert s.read_total == hits_v1
    assert [x.route for x in s.routes] == ["active"]


def test_unflushed_counts_are_included_and_not_counted_twice(mws) -> None:
    coll = mws.collection("c")
    coll.search(text_of("d0001"), 2)
    assert stats(mws, "c").route("active").queries == 1  # type: ignore[union-attr]
    lazy.flush(mws)
    coll.search(text_of("d0001"), 2)
    assert stats(mws, "c").route("active").queries == 2  # type: ignore[union-attr]
    lazy.flush(mws)
    assert mws.manifest.counters("c", metrics.read_key("active", "queries")) == {
        metrics.read_key("active", "queries"): 2.0}


def test_mixed_version_rate_and_space_shares_follow_the_served_hits(mws) -> None:
    coll = mws.collection("c")
    start_migration(mws, "c", "v2")
    backfill(mws, "c", priority="hot", budget_docs=1)  # nothing read: nothing copied
    # half of the documents in v2 (dual-written)
    coll.upsert([d for d in core_docs(N) if int(d.id[1:]) % 2 == 0])
    served = [coll.search(text_of(f"d{i:04d}"), 6, route="dual") for i in range(12)]
    lazy.flush(mws)
    r = stats(mws, "c").route("dual:rrf") or stats(mws, "c").route("dual")
    assert r is not None
    mixed = sum(1 for hits in served if len({h.space for h in hits}) > 1)
    per_space = Counter(h.space for hits in served for h in hits)
    assert mixed > 0  # the test means something
    assert (r.queries, r.mixed_lists) == (12, mixed)
    assert r.mixed_rate == pytest.approx(mixed / 12)
    assert r.hits == dict(per_space)
    total = sum(per_space.values())
    assert r.hit_share == pytest.approx({k: v / total for k, v in per_space.items()})


def test_lazy_queue_and_backfill_progress(mws) -> None:
    coll = mws.collection("c")
    start_migration(mws, "c", "v2")
    ids = {h.id for h in coll.search(text_of("d0005"), 5)}
    lazy.flush(mws)
    s = stats(mws, "c")
    assert (s.lazy.pending, s.lazy.enqueued, s.lazy.noticed) == (5, 5, 5)
    (b,) = s.backfill
    assert (b.space, b.state, b.present, b.expected, b.progress) == ("v2", "building", 0, N,
                                                                      0.0)
    rep = lazy.drain(mws, "c")
    s = stats(mws, "c")
    assert (s.lazy.pending, s.lazy.drained) == (0, rep.completed) and rep.completed == 5
    assert s.lazy.drain_rate > 0
    (b,) = s.backfill
    assert b.present == len(ids) and b.progress == pytest.approx(len(ids) / N)


def test_a_read_only_manifest_never_fails_a_read(mws, caplog) -> None:
    """Reads of a workspace whose manifest can only be read: the counts cannot be written,
    which is said once (INFO), and neither the search nor the flush raises."""
    import logging

    from vecver.store.sqlite import Manifest

    start_migration(mws, "c", "v2")
    writable = mws.manifest
    mws.manifest = Manifest(writable.path, read_only=True)
    try:
        with caplog.at_level(logging.INFO, logger="vecver"):
            hits = mws.collection("c").search(text_of("d0001"), 3)
            assert len(hits) == 3
            lazy.flush(mws)
        assert any("not recorded" in r.getMessage() and r.levelno == logging.INFO
                   for r in caplog.records)
    finally:
        mws.manifest.close()
        mws.manifest = writable
    assert mws.manifest.read_totals("c") == (0, 0)
    assert stats(mws, "c").lazy.pending == 0


def test_stats_of_an_unknown_collection(mws) -> None:
    with pytest.raises(UnknownCollection):
        stats(mws, "nope")


# ----------------------------------------------------------------------------- prometheus


def _families(text: str) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def test_prometheus_exposition(mws, tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client", reason="the vecver[metrics] extra")
    coll = mws.collection("c")
    for i in range(3):
        coll.search(text_of(f"d{i:04d}"), 2)
    lazy.flush(mws)
    fams = _families(metrics.prometheus_text(mws))
    q = {tuple(sorted(s.labels.items())): s.value for s in fams["vecver_queries"].samples}
    assert q[(("collection", "c"), ("route", "active"))] == 3.0
    lat = [s for s in fams["vecver_search_latency_seconds"].samples
           if s.name.endswith("_count")]
    assert [s.value for s in lat] == [3.0]
    hits = {s.labels["space"]: s.value for s in fams["vecver_hits"].samples}
    assert hits == {"v1": 6.0}
    out = tmp_path / "vecver.prom"
    metrics.write_prometheus_textfile(mws, str(out), ["c"])
    assert "vecver_queries_total" in out.read_text(encoding="utf-8")
    with pytest.raises(UnknownCollection):
        metrics.prometheus_text(mws, ["nope"])


def test_prometheus_server(mws) -> None:
    pytest.importorskip("prometheus_client", reason="the vecver[metrics] extra")
    mws.collection("c").search(text_of("d0001"), 2)
    lazy.flush(mws)
    got = metrics.serve_prometheus(mws, 0)
    server = got[0] if isinstance(got, tuple) else got
    try:
        port = server.server_address[1]
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        assert 'vecver_queries_total{collection="c",route="active"} 1.0' in body.decode()
    finally:
        server.shutdown()
    for bad in (-1, 70000, "80", True):
        with pytest.raises(InvalidArgument):
            metrics.serve_prometheus(mws, bad)  # type: ignore[arg-type]


def test_missing_prometheus_client_is_a_typed_error(mws, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    with pytest.raises(MetricsNotInstalled) as e:
        metrics.prometheus_text(mws)
    assert e.value.extra == "metrics" and "vecver[metrics]" in (e.value.hint or "")


# ----------------------------------------------------------------------------- CLI


def test_cli_stats_across_processes(cli_ws: CliWorkspace, tmp_path: Path) -> None:
    docs = make_docs(30)
    cli_ws.run("ingest", "docs", cli_ws.jsonl("d.jsonl", docs), ok=True)
    for d in docs[:3]:
        cli_ws.run("search", "docs", d["text"], "-k", "4", ok=True)
    out = cli_ws.run("stats", "docs", "--json", ok=True).json()
    (r,) = out["routes"]
    assert (r["route"], r["queries"], r["searches"], r["result_lists"]) == ("active", 3, 3, 3)
    assert r["hits"] == {"v1": 12}
    assert out["read_total"] == 12
    text = cli_ws.run("stats", "docs", ok=True).out
    assert "active" in text and "lazy queue: 0 pending" in text
    prom = tmp_path / "m.prom"
    cli_ws.run("stats", "docs", "--textfile", prom, ok=True)
    assert 'vecver_queries_total{collection="docs",route="active"} 3.0' in prom.read_text()
    cli_ws.run("stats", "nope", ok=False)
    cli_ws.run("stats", "docs", "--textfile", tmp_path / "no" / "such" / "dir.prom", ok=False)
