"""Lazy on-read re-embedding (vecver.read.lazy): what reads queue, deduplication, the
bound, synchronous mode, the drainer and the background worker, a lazy-only migration
completed by a plain backfill, and durability across kill -9 of a reader and of a
drainer (subprocesses)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from vvcli import CliWorkspace, hash_config, make_docs
from vvcore import config, text_of
from vvcore import make_docs as core_docs

import vecver
from vecver.config import LazySettings
from vecver.errors import InvalidArgument, InvalidInput, UnknownCollection
from vecver.ops.backfill import backfill, lazy_backfill, migrate, start_migration
from vecver.read import lazy
from vecver.read.metrics import stats
from vecver.runtime.reconcile import records_for, write_records
from vecver.store.sqlite import Manifest
from vecver.types import Document, source_hash

N = 40


@pytest.fixture
def open_ws(fast_dir: Path):
    """Open a workspace (memory backend by default) with ``[lazy]`` settings given as
    keywords; every one opened is closed at teardown."""
    opened: list[vecver.Workspace] = []
    count = [0]

    def make(backend: str = "memory", **lazy_kw: Any) -> vecver.Workspace:
        count[0] += 1
        root = fast_dir / f"lz{count[0]}"
        root.mkdir(parents=True)
        cfg = config(root, backend)
        settings = dataclasses.replace(LazySettings(), **{"flush_interval": 3600.0,
                                                          **lazy_kw})
        ws = vecver.open(dataclasses.replace(cfg, lazy=settings), progress=False)
        opened.append(ws)
        return ws

    yield make
    for w in reversed(opened):
        with contextlib.suppress(Exception):  # a test closed it already
            w.close()


def _setup(ws: vecver.Workspace, n: int = N) -> tuple[Any, Any]:
    """Collection ``c`` with ``n`` documents in v1, and v2 started without a backfill."""
    coll = ws.collection("c")
    coll.upsert(core_docs(n))
    row = start_migration(ws, "c", "v2")
    assert row.state == "building"
    return coll, row


def _queued(ws: vecver.Workspace, collection: str = "c") -> list[dict[str, Any]]:
    """The payloads waiting in the lazy queue (pending or leased), read straight from the
    SQLite file by another handle."""
    m = Manifest(ws.config.manifest_path)
    try:
        with m.transaction() as db:
            rows = db.execute("SELECT payload FROM work_items WHERE kind=? ORDER BY id",
                              (lazy.queue_kind(collection),)).fetchall()
        return [json.loads(r[0]) for r in rows]
    finally:
        m.close()


def _v2(ws: vecver.Workspace, ids: list[str]) -> dict[str, Any]:
    row = ws.manifest.namespace_for("c", "v2")
    assert row is not None
    return ws.backend_for(row).fetch(row.name, ids)


# ----------------------------------------------------------------------------- queueing


def test_a_read_queues_the_hits_missing_from_the_building_space(open_ws) -> None:
    ws = open_ws()
    coll, row = _setup(ws)
    hits = coll.search(text_of("d0003"), 5)
    assert {h.space for h in hits} == {"v1"}
    lazy.flush(ws)
    q = _queued(ws)
    assert sorted(p["id"] for p in q) == sorted(h.id for h in hits)
    assert {(p["collection"], p["namespace"], p["space"]) for p in q} == {("c", row.name, "v2")}
    # the same read again: nothing new waits, the repeats are counted as deduplicated
    coll.search(text_of("d0003"), 5)
    lazy.flush(ws)
    assert len(_queued(ws)) == 5
    s = stats(ws, "c").lazy
    assert (s.pending, s.enqueued, s.deduplicated, s.dropped) == (5, 5, 5, 0)


def test_nothing_is_queued_without_a_building_space_or_for_current_copies(open_ws) -> None:
    ws = open_ws()
    coll = ws.collection("c")
    coll.upsert(core_docs(N))
    coll.search(text_of("d0001"), 5)
    lazy.flush(ws)
    assert _queued(ws) == []
    # a space being built whose copies are current (dual-written): reads queue nothing
    start_migration(ws, "c", "v2")
    coll.upsert(core_docs(N))
    coll.search(text_of("d0001"), 5)
    lazy.flush(ws)
    assert _queued(ws) == []


def test_a_stale_copy_is_queued(open_ws) -> None:
    ws = open_ws()
    coll, row = _setup(ws)
    # v2 holds d0002 embedded from an older text (what a missed update leaves behind)
    write_records(ws, row, records_for(ws, row, [Document("d0002", "an older text", {})]))
    # and d0004 current
    write_records(ws, row, records_for(ws, row, [Document("d0004", text_of("d0004"),
                                                          {"n": 4, "odd": 0})]))
    hits = coll.search(text_of("d0002"), N)  # every document
    ids = [h.id for h in hits]
    assert "d0002" in ids and "d0004" in ids
    lazy.flush(ws)
    queued = {p["id"] for p in _queued(ws)}
    assert "d0002" in queued
    assert "d0004" not in queued
    assert queued == set(ids) - {"d0004"}


def test_the_queue_bound_drops_and_counts_without_failing_the_read(open_ws) -> None:
    ws = open_ws(max_queue=3)
    coll, _ = _setup(ws)
    hits = coll.search(text_of("d0005"), 8)
    assert len(hits) == 8
    lazy.flush(ws)
    assert len(_queued(ws)) == 3
    s = stats(ws, "c").lazy
    assert (s.enqueued, s.dropped, s.limit) == (3, 5, 3)


def test_a_full_store_queue_does_not_fail_the_read(open_ws) -> None:
    ws = open_ws()
    coll, _ = _setup(ws)
    ws.manifest.queue_limit = 2  # type: ignore[attr-defined]  # the store's own bound
    hits = coll.search(text_of("d0006"), 6)
    assert len(hits) == 6
    lazy.flush(ws)
    assert len(_queued(ws)) == 2
    assert stats(ws, "c").lazy.dropped == 4


def test_read_counts_are_batched_into_the_store(open_ws) -> None:
    ws = open_ws()
    coll, _ = _setup(ws)
    want: dict[str, int] = {}
    for q in ("d0001", "d0002", "d0001", "d0009"):
        for h in coll.search(text_of(q), 4):
            want[h.id] = want.get(h.id, 0) + 1
    assert ws.manifest.read_totals("c") == (0, 0)  # nothing written on the read thread
    lazy.flush(ws)
    assert dict(ws.manifest.read_counts("c")) == want
    assert ws.manifest.read_totals("c") == (len(want), sum(want.values()))


def test_notice_candidates_takes_the_deeper_lists_of_dual(open_ws) -> None:
    served_ws = open_ws()
    deep_ws = open_ws(notice="candidates")
    got = {}
    for name, w in (("served", served_ws), ("deep", deep_ws)):
        coll, _ = _setup(w)
        hits = coll.search(text_of("d0009"), 3, route="dual")
        lazy.flush(w)
        got[name] = ({h.id for h in hits}, {p["id"] for p in _queued(w)})
    served, queued = got["served"]
    assert queued == served  # only what the read returned
    _, deep = got["deep"]
    assert deep > served  # dual asked v1 for more than k: those are queued too


def test_rank_weighted_read_counts(open_ws) -> None:
    ws = open_ws(read_weight="rank")
    coll, _ = _setup(ws)
    want: dict[str, int] = {}
    for q in ("d0001", "d0002"):
        for rank, h in enumerate(coll.search(text_of(q), 5), 1):
            want[h.id] = want.get(h.id, 0) + {1: 10, 2: 5, 3: 4, 4: 3, 5: 2}[rank]
    lazy.flush(ws)
    assert dict(ws.manifest.read_counts("c")) == want


def test_lazy_config_is_checked() -> None:
    from vecver.errors import ConfigError

    assert vecver.Config.from_mapping({"lazy": {"read_weight": "rank"}}).lazy.read_weight \
        == "rank"
    for bad in ({"read_weight": "heat"}, {"notice": "all"}, {"max_queue": 0}, {"sync_limit": -1},
                {"flush_interval": 0}, {"lease_ttl": "soon"}, {"enabled": "yes"},
                {"batch": 1.5}, {"colour": 1}):
        with pytest.raises(ConfigError):
            vecver.Config.from_mapping({"lazy": bad})


def test_the_flusher_thread_writes_without_an_explicit_flush(open_ws) -> None:
    ws = open_ws(flush_interval=0.05)
    coll, _ = _setup(ws)
    hits = coll.search(text_of("d0007"), 3)
    deadline = time.monotonic() + 20
    while len(_queued(ws)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(p["id"] for p in _queued(ws)) == sorted(h.id for h in hits)


def test_closing_the_workspace_flushes(fast_dir: Path) -> None:
    root = fast_dir / "close"
    root.mkdir(parents=True)
    cfg = dataclasses.replace(config(root, "local"),
                              lazy=LazySettings(flush_interval=3600.0))
    with vecver.open(cfg, progress=False) as ws:
        coll, _ = _setup(ws)
        ids = [h.id for h in coll.search(text_of("d0008"), 4)]
    with vecver.open(cfg, progress=False) as ws:
        assert sorted(p["id"] for p in _queued(ws)) == sorted(ids)


def test_lazy_disabled_queues_and_counts_nothing(open_ws) -> None:
    ws = open_ws(enabled=False)
    coll, _ = _setup(ws)
    coll.search(text_of("d0001"), 4)
    lazy.flush(ws)
    assert _queued(ws) == []
    assert ws.manifest.read_totals("c") == (0, 0)


# ----------------------------------------------------------------------------- sync


def test_sync_reads_write_before_returning(open_ws) -> None:
    ws = open_ws()
    coll, row = _setup(ws)
    hits = coll.search(text_of("d0010"), 5, lazy="sync")
    ids = [h.id for h in hits]
    have = _v2(ws, ids)
    assert sorted(have) == sorted(ids)  # written before search returned
    for i in ids:
        assert have[i].stamp.fingerprint == row.fingerprint
        assert have[i].stamp.source_hash == source_hash(text_of(i))
    assert stats(ws, "c").lazy.sync_embedded == 5
    lazy.flush(ws)
    assert _queued(ws) == []  # nothing left to do


def test_sync_reads_embed_at_most_the_bound_and_queue_the_rest(open_ws) -> None:
    ws = open_ws(sync_limit=2)
    coll, _ = _setup(ws)
    ids = [h.id for h in coll.search(text_of("d0011"), 6, lazy="sync")]
    assert len(_v2(ws, ids)) == 2
    queued = {p["id"] for p in _queued(ws)}  # durable before the read returned
    assert len(queued) == 4 and queued <= set(ids)
    assert queued.isdisjoint(_v2(ws, ids))


def test_sync_dual_read_serves_from_the_space_just_written(open_ws) -> None:
    ws = open_ws()
    coll, _ = _setup(ws)
    before = coll.search(text_of("d0012"), 5, route="dual")
    assert {h.space for h in before} == {"v1"}
    after = coll.search(text_of("d0012"), 5, route="dual", lazy="sync")
    assert "v2" in {h.space for h in after}


def test_what_rerank_finds_missing_is_queued(open_ws) -> None:
    """The ``rerank`` route reports the active hits lacking a vector in the candidate
    (``event.missing``): each is queued for the candidate, however it was served."""
    ws = open_ws()
    coll, row = _setup(ws)
    # half the documents in v2 already (dual-written): the rest are missing there
    coll.upsert([d for d in core_docs(N) if int(d.id[1:]) % 2 == 0])
    events: list[Any] = []

    class Recorder:
        def on_search(self, event: Any) -> None:
            events.append(event)

    ws.read_observers.append(Recorder())
    coll.search(text_of("d0003"), 5, route="rerank:20")
    missing = set(events[-1].missing.get(row.name, ()))
    assert missing and all(int(i[1:]) % 2 == 1 for i in missing)
    lazy.flush(ws)
    queued = {p["id"] for p in _queued(ws)}
    assert missing <= queued
    assert all(int(i[1:]) % 2 == 1 for i in queued)  # nothing already current is queued


# ----------------------------------------------------------------------------- drainer


def test_drain_reembeds_the_queue_and_completes_it(open_ws) -> None:
    ws = open_ws()
    coll, row = _setup(ws)
    ids = sorted({h.id for q in ("d0001", "d0020", "d0033")
                  for h in coll.search(text_of(q), 5)})
    lazy.flush(ws)
    rep = lazy_backfill(ws, "c", batch_size=4)
    assert rep.mode == "lazy" and rep.state == "building"
    assert rep.drain is not None
    assert (rep.drain.claimed, rep.drain.reembedded, rep.drain.completed) == (
        len(ids), len(ids), len(ids))
    assert rep.drain.remaining == rep.drain.leased == 0
    have = _v2(ws, ids)
    assert sorted(have) == ids
    assert all(have[i].stamp.source_hash == source_hash(text_of(i)) for i in ids)
    assert ws.backend_for(row).count(row.name) == len(ids)
    assert stats(ws, "c").lazy.drained == len(ids)
    # nothing queued: a drain is a report of zeros
    again = lazy_backfill(ws, "c")
    assert again.drain is not None and again.drain.claimed == 0


def test_drain_skips_what_is_current_and_completes_obsolete_items(open_ws) -> None:
    ws = open_ws()
    coll, row = _setup(ws)
    assert "d0002" in {h.id for h in coll.search(text_of("d0002"), 4)}
    lazy.flush(ws)
    # one of them written meanwhile (the write path dual-writes it): current, no re-embed
    coll.upsert([Document("d0002", text_of("d0002"), {"n": 2, "odd": 0})])
    rep = lazy.drain(ws, "c")
    assert rep.claimed == 4 and rep.completed == 4
    assert rep.reembedded == 3 and rep.current == 1
    # items for a space no longer being built are completed without work
    lazy.enqueue(ws, "c", row, ["d0030", "d0031"])
    from vecver.ops.abort import abort

    abort(ws, "c", None)
    rep = lazy.drain(ws, "c")
    assert (rep.claimed, rep.obsolete, rep.reembedded, rep.completed) == (2, 2, 0, 2)


def test_drain_honours_deletes(open_ws) -> None:
    ws = open_ws()
    coll, row = _setup(ws)
    lazy.enqueue(ws, "c", row, ["d0001", "d0002"])
    coll.delete(["d0001"])
    lazy.drain(ws, "c")
    assert sorted(_v2(ws, ["d0001", "d0002"])) == ["d0002"]


def test_items_of_a_dead_drainer_are_claimed_again_after_their_lease(open_ws) -> None:
    ws = open_ws()
    _, row = _setup(ws)
    lazy.enqueue(ws, "c", row, ["d0001", "d0002", "d0003"])
    # another drainer claims two of them and dies (never completes nor renews)
    dead = Manifest(ws.config.manifest_path, owner="dead-drainer@elsewhere:1")
    try:
        claimed = dead.claim(lazy.queue_kind("c"), limit=2, ttl=0.3)
    finally:
        dead.close()
    assert len(claimed) == 2
    first = lazy.drain(ws, "c")
    assert (first.claimed, first.completed, first.leased) == (1, 1, 2)
    time.sleep(0.4)  # the dead drainer's leases expire
    second = lazy.drain(ws, "c")
    assert (second.claimed, second.reembedded, second.completed) == (2, 2, 2)
    assert (second.remaining, second.leased) == (0, 0)
    assert sorted(_v2(ws, ["d0001", "d0002", "d0003"])) == ["d0001", "d0002", "d0003"]


def test_drain_bad_input(open_ws) -> None:
    ws = open_ws()
    _setup(ws)
    for kw in ({"batch": 0}, {"batch": True}, {"ttl": 0}, {"ttl": -1.0}, {"max_items": 0}):
        with pytest.raises(InvalidArgument):
            lazy.drain(ws, "c", **kw)  # type: ignore[arg-type]
    with pytest.raises(UnknownCollection):
        lazy.drain(ws, "nope")
    with pytest.raises(InvalidArgument):
        lazy.LazyWorker(ws, interval=0)
    with pytest.raises(InvalidArgument):
        lazy.LazyWorker(ws, "c")  # type: ignore[arg-type]


def test_background_worker_drains_while_reads_go_on(open_ws) -> None:
    ws = open_ws(flush_interval=0.05)
    coll, _ = _setup(ws)
    ids = sorted({h.id for q in ("d0003", "d0016") for h in coll.search(text_of(q), 5)})
    with lazy.LazyWorker(ws, interval=0.05) as worker:
        deadline = time.monotonic() + 30
        while len(_v2(ws, ids)) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sorted(_v2(ws, ids)) == ids
    assert worker.last_error is None and worker.drained == len(ids)


def test_a_lazy_only_migration_then_a_plain_backfill_skips_lazy_work(open_ws) -> None:
    ws = open_ws()
    coll = ws.collection("c")
    coll.upsert(core_docs(N))
    rep = migrate(ws, "c", "v2", no_backfill=True)
    assert (rep.mode, rep.state, rep.written) == ("lazy-only", "building", 0)
    ids = {h.id for h in coll.search(text_of("d0004"), 6, lazy="sync")}
    full = backfill(ws, "c")
    assert full.state == "ready"
    assert full.skipped == len(ids)
    assert full.embedded == N - len(ids)


def test_migrate_without_backfill_refuses_backfill_options(open_ws) -> None:
    ws = open_ws()
    ws.collection("c").upsert(core_docs(5))
    for kw in ({"priority": "hot"}, {"budget_docs": 3, "priority": "hot"}):
        with pytest.raises(InvalidInput):
            migrate(ws, "c", "v2", no_backfill=True, **kw)  # type: ignore[arg-type]
    assert ws.manifest.namespace_for("c", "v2") is None  # nothing was created


# ----------------------------------------------------------------------------- CLI


def test_cli_lazy_migration_end_to_end(cli_ws: CliWorkspace) -> None:
    docs = make_docs(60)
    cli_ws.run("ingest", "docs", cli_ws.jsonl("d.jsonl", docs), ok=True)
    # no migration at all, nothing queued: draining is fine too
    res = cli_ws.run("backfill", "docs", "--lazy", "--json", ok=True)
    assert res.json()["drain"]["claimed"] == 0 and res.json()["state"] == "-"
    cli_ws.run("backfill", "nope", "--lazy", ok=False)
    res = cli_ws.run("migrate", "docs", "--to", "v2", "--no-backfill", "--json", ok=True)
    assert res.json()["mode"] == "lazy-only" and res.json()["state"] == "building"
    # nothing queued: draining is fine
    res = cli_ws.run("backfill", "docs", "--lazy", "--json", ok=True)
    assert res.json()["drain"]["claimed"] == 0
    res = cli_ws.run("search", "docs", docs[3]["text"], "-k", "5", "--json", ok=True)
    ids = sorted(h["id"] for h in res.json())
    res = cli_ws.run("backfill", "docs", "--lazy", "--json", ok=True)
    d = res.json()["drain"]
    assert (d["claimed"], d["reembedded"], d["remaining"]) == (5, 5, 0)
    assert "re-embedded" in cli_ws.run("backfill", "docs", "--lazy", ok=True).out
    assert cli_ws.spaces()["v2"]["count"] == 5
    res = cli_ws.run("backfill", "docs", "--json", ok=True)
    assert res.json()["state"] == "ready" and res.json()["skipped"] == len(ids)
    cli_ws.run("backfill", "docs", "--lazy", "--restart", ok=False)
    cli_ws.run("migrate", "docs", "--to", "v3", "--no-backfill", "--priority", "hot",
               ok=False)


# ----------------------------------------------------------------------------- crashes

READER = textwrap.dedent("""\
    import sys, time
    import vecver
    from vecver.read import lazy
    ws = vecver.open(sys.argv[1], progress=False)
    coll = ws.collection("docs")
    texts = [line.rstrip("\\n") for line in open(sys.argv[2], encoding="utf-8")]
    for n, t in enumerate(texts):
        hits = coll.search(t, 5)
        if n % 5 == 4:
            lazy.flush(ws)
            print("FLUSHED", " ".join(sorted({h.id for h in hits})), flush=True)
        else:
            print("READ", " ".join(sorted({h.id for h in hits})), flush=True)
    time.sleep(600)
""")


def _lazy_ws(root: Path, n: int, ttl: float = 1.0) -> tuple[CliWorkspace, list[dict[str, Any]]]:
    ws = CliWorkspace(root)
    root.mkdir(parents=True, exist_ok=True)
    ws.write_config(hash_config(extra=f"[lazy]\nlease_ttl = {ttl}\nbatch = 8\n"
                                      "flush_interval = 3600\n"))
    docs = make_docs(n)
    ws.run("ingest", "docs", ws.jsonl("d.jsonl", docs), ok=True)
    ws.run("migrate", "docs", "--to", "v2", "--no-backfill", ok=True)
    return ws, docs


def _queue_of(ws: CliWorkspace) -> tuple[set[str], int]:
    """(ids waiting in the lazy queue, how many of them are claimed), read through a plain
    read-only SQLite connection (no write lock that would stall the process watched)."""
    db = sqlite3.connect(f"file:{ws.root / 'vecver.db'}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT payload, owner FROM work_items WHERE kind=?",
                          (lazy.queue_kind("docs"),)).fetchall()
    finally:
        db.close()
    return {json.loads(r[0])["id"] for r in rows}, sum(r[1] is not None for r in rows)


def _v2_ids(ws: CliWorkspace) -> dict[str, str]:
    with ws.open() as w:
        row = w.manifest.namespace_for("docs", "v2")
        assert row is not None
        be = w.backend_for(row)
        out: dict[str, str] = {}
        cursor = None
        while True:
            page = be.scan(row.name, cursor=cursor, limit=500)
            for r in page.records:
                assert r.id not in out, f"{r.id} twice in v2"
                assert r.stamp.fingerprint == row.fingerprint
                out[r.id] = r.stamp.source_hash
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_queued_ids_survive_kill_9_of_the_reader(tmp_path: Path) -> None:
    ws, docs = _lazy_ws(tmp_path / "ws", 200)
    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(d["text"] for d in docs[:40]) + "\n", encoding="utf-8")
    script = tmp_path / "reader.py"
    script.write_text(READER, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(ws.config), str(queries)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    read: set[str] = set()
    flushed: set[str] = set()  # what the reader read before a flush it reported done
    flushes = 0
    assert proc.stdout is not None
    for line in proc.stdout:  # kill it after its second flush, mid-way through its reads
        word, *ids = line.split()
        read.update(ids)
        if word == "FLUSHED":
            flushed |= read
            flushes += 1
            if flushes == 2:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    queued, leased = _queue_of(ws)
    assert flushed <= queued, f"lost {sorted(flushed - queued)[:5]}"
    assert leased == 0
    # draining (another process) re-embeds exactly what was queued
    res = ws.run("backfill", "docs", "--lazy", "--json", ok=True)
    assert res.json()["drain"]["reembedded"] == len(queued)
    texts = {d["id"]: d["text"] for d in docs}
    v2 = _v2_ids(ws)
    assert set(v2) == queued
    assert all(v2[i] == source_hash(texts[i]) for i in v2)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_claimed_ids_survive_kill_9_of_the_drainer(tmp_path: Path) -> None:
    ws, docs = _lazy_ws(tmp_path / "ws", 1500, ttl=1.0)
    with ws.open() as w:
        row = w.manifest.namespace_for("docs", "v2")
        assert row is not None
        r = lazy.enqueue(w, "docs", row, [d["id"] for d in docs])
        assert r.enqueued == len(docs)
    seen = []
    for n in range(3):
        proc = ws.popen("-q", "backfill", "docs", "--lazy", "--batch-size", "8")
        # killed mid-drain: once it completed another ~100 items
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if len(_queue_of(ws)[0]) <= len(docs) - 100 * (n + 1):
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        queued, leased = _queue_of(ws)
        seen.append((proc.returncode, len(queued), leased))
        # nothing is lost: every document is either in v2 or still queued
        assert set(d["id"] for d in docs) <= queued | set(_v2_ids(ws))
    print(seen)
    time.sleep(1.2)  # the dead drainer's leases expire
    res = ws.run("backfill", "docs", "--lazy", "--json", ok=True)
    assert res.json()["drain"]["remaining"] == 0 and res.json()["drain"]["leased"] == 0
    v2 = _v2_ids(ws)
    texts = {d["id"]: d["text"] for d in docs}
    assert set(v2) == set(texts)
    assert all(v2[i] == source_hash(texts[i]) for i in v2)
    assert _queue_of(ws) == (set(), 0)
