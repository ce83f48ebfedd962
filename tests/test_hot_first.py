"""Hot-first backfill (``priority="hot"``): the most-read documents are copied first, then
the rest in the usual order; a budget of documents stops after the N most read and
reports the share of read traffic they cover; a run killed (SIGKILL) in the hot phase
resumes there with nothing lost or duplicated; bad input is refused before anything
runs."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from vvcli import CliWorkspace, hash_config, make_docs
from vvcore import contents, text_of
from vvcore import make_docs as core_docs

import vecver
from vecver.errors import InvalidArgument, InvalidInput
from vecver.ops.backfill import HOT_ARTIFACT, backfill, migrate, start_migration
from vecver.read import lazy
from vecver.store.sqlite import Manifest
from vecver.types import source_hash

N = 60


def _reads(n: int, seed: int = 7) -> dict[str, int]:
    """Read counts for a third of ``n`` documents, all distinct (a strict order)."""
    rng = random.Random(seed)
    ids = rng.sample([f"d{i:04d}" for i in range(n)], n // 3)
    return {i: 10 * (len(ids) - r) + 1 for r, i in enumerate(ids)}


def _hot(ws: vecver.Workspace, n: int = N, **kw: Any) -> dict[str, int]:
    coll = ws.collection("c")
    coll.upsert(core_docs(n))
    start_migration(ws, "c", "v2", **kw)
    counts = _reads(n)
    ws.manifest.record_reads("c", counts)
    return counts


def _v2_ids(ws: vecver.Workspace) -> set[str]:
    row = ws.manifest.namespace_for("c", "v2")
    assert row is not None
    return set(contents(ws, row.name))


def _by_heat(counts: dict[str, int]) -> list[str]:
    return sorted(counts, key=lambda i: (-counts[i], i))


def test_the_most_read_documents_are_copied_first(make_ws) -> None:
    ws = make_ws("memory")
    counts = _hot(ws)
    order = _by_heat(counts)
    seen: list[set[str]] = []
    rep = backfill(ws, "c", batch_size=5, priority="hot",
                   on_batch=lambda r: seen.append(_v2_ids(ws)))
    assert rep.state == "ready"
    # batch by batch, v2 holds exactly the most-read prefix until the hot phase ends
    hot_batches = -(-len(order) // 5)
    for b in range(hot_batches):
        assert seen[b] == set(order[: 5 * (b + 1)]), f"after hot batch {b}"
    # then the rest, in the usual order, skipping what the hot phase copied
    assert seen[hot_batches] - set(order) == {f"d{i:04d}" for i in range(5)} - set(order)
    assert rep.hot is not None
    h = rep.hot
    assert (h.documents, h.done, h.written, h.skipped, h.absent) == (
        len(order), len(order), len(order), 0, 0)
    assert h.reads_covered == h.reads_total == sum(counts.values())
    assert rep.embedded == N and rep.skipped == len(order)
    assert _v2_ids(ws) == {f"d{i:04d}" for i in range(N)}


def test_a_budget_copies_the_n_most_read_and_reports_their_share(make_ws) -> None:
    ws = make_ws("memory")
    counts = _hot(ws)
    order = _by_heat(counts)
    rep = backfill(ws, "c", batch_size=4, priority="hot", budget_docs=7)
    assert rep.mode == "hot-budget" and rep.state == "building"
    assert _v2_ids(ws) == set(order[:7])
    assert rep.hot is not None
    top = sum(counts[i] for i in order[:7])
    assert rep.hot.reads_covered == top
    assert rep.hot.traffic_share == pytest.approx(top / sum(counts.values()))
    # a larger budget extends it; a plain backfill then completes the rest
    rep = backfill(ws, "c", batch_size=4, priority="hot", budget_docs=12)
    assert _v2_ids(ws) == set(order[:12])
    assert rep.hot is not None and rep.hot.written == 5 and rep.hot.skipped == 7
    rep = backfill(ws, "c", batch_size=4)
    assert rep.state == "ready"
    assert rep.embedded == N - 12 and rep.skipped == 12


def test_a_time_budget_stops_after_a_batch_and_the_next_run_resumes_there(make_ws) -> None:
    ws = make_ws("memory")
    counts = _hot(ws)
    order = _by_heat(counts)
    rep = backfill(ws, "c", batch_size=4, priority="hot", budget_seconds=1e-6)
    assert rep.mode == "hot-budget" and rep.state == "building"
    assert rep.hot is not None and (rep.hot.done, rep.hot.finished) == (4, False)
    assert _v2_ids(ws) == set(order[:4])
    rep = backfill(ws, "c", batch_size=4)  # resumes the hot phase at 4, then the rest
    assert rep.state == "ready" and rep.resumed
    assert rep.hot is not None
    assert (rep.hot.done, rep.hot.written, rep.hot.skipped) == (len(order), len(order), 0)
    assert rep.embedded == N - 4
    for bad in (0, -1.0, float("inf"), float("nan"), "5"):
        with pytest.raises(InvalidArgument):
            backfill(ws, "c", priority="hot", budget_seconds=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        backfill(ws, "c", budget_seconds=5.0)


def test_deleted_and_updated_documents_win_over_the_hot_order(make_ws) -> None:
    ws = make_ws("memory")
    counts = _hot(ws)
    order = _by_heat(counts)
    coll = ws.collection("c")
    coll.delete([order[0]])
    coll.upsert([vecver.Document(order[1], text_of(order[1], 2), {"n": -1})])
    rep = backfill(ws, "c", batch_size=4, priority="hot", budget_docs=5)
    assert rep.hot is not None and rep.hot.absent == 1
    row = ws.manifest.namespace_for("c", "v2")
    assert row is not None
    have = contents(ws, row.name)
    assert order[0] not in have
    assert have[order[1]].stamp.source_hash == source_hash(text_of(order[1], 2))


def test_reads_counted_by_searches_drive_the_order(make_ws) -> None:
    ws = make_ws("memory")
    coll = ws.collection("c")
    coll.upsert(core_docs(N))
    start_migration(ws, "c", "v2")
    want: dict[str, int] = {}
    for q, times in (("d0017", 5), ("d0042", 3), ("d0005", 1)):
        for _ in range(times):
            for h in coll.search(text_of(q), 1):
                want[h.id] = want.get(h.id, 0) + 1
    lazy.flush(ws)
    assert dict(ws.manifest.read_counts("c")) == want
    rep = backfill(ws, "c", priority="hot", budget_docs=2)
    assert _v2_ids(ws) == {"d0017", "d0042"}
    assert rep.hot is not None and rep.hot.traffic_share == pytest.approx(8 / 9)


def test_no_reads_counted_is_a_plain_backfill(make_ws) -> None:
    ws = make_ws("memory")
    ws.collection("c").upsert(core_docs(10))
    start_migration(ws, "c", "v2")
    rep = backfill(ws, "c", priority="hot")
    assert rep.state == "ready" and rep.hot is not None and rep.hot.documents == 0
    assert rep.embedded == 10


def test_bad_input_is_refused_before_anything_runs(make_ws) -> None:
    ws = make_ws("memory")
    ws.collection("c").upsert(core_docs(10))
    for kw in ({"priority": "cold"}, {"priority": 1}, {"priority": "hot", "budget_docs": 0},
               {"priority": "hot", "budget_docs": -5}, {"priority": "hot", "budget_docs": 2.5},
               {"priority": "hot", "budget_docs": True}):
        with pytest.raises(InvalidArgument):
            migrate(ws, "c", "v2", **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        migrate(ws, "c", "v2", budget_docs=3)
    assert ws.manifest.namespace_for("c", "v2") is None
    start_migration(ws, "c", "v2")
    with pytest.raises(InvalidArgument):
        backfill(ws, "c", priority="warm")
    with pytest.raises(InvalidInput):
        backfill(ws, "c", budget_docs=3)
    row = ws.manifest.namespace_for("c", "v2")
    assert row is not None and ws.manifest.checkpoint(row.name) is None
    assert _v2_ids(ws) == set()


# ----------------------------------------------------------------------------- CLI


def test_cli_priority_and_budget(cli_ws: CliWorkspace) -> None:
    docs = make_docs(80)
    cli_ws.run("ingest", "docs", cli_ws.jsonl("d.jsonl", docs), ok=True)
    cli_ws.run("migrate", "docs", "--to", "v2", "--priority", "cold", ok=False)
    cli_ws.run("migrate", "docs", "--to", "v2", "--budget-docs", "-1", "--priority", "hot",
               ok=False)
    cli_ws.run("migrate", "docs", "--to", "v2", "--budget-docs", "5", ok=False)
    assert "v2" not in cli_ws.spaces()
    for d in docs[:3]:
        cli_ws.run("search", "docs", d["text"], "-k", "1", ok=True)
    res = cli_ws.run("migrate", "docs", "--to", "v2", "--priority", "hot", "--budget-docs",
                     "2", "--json", ok=True)
    out = res.json()
    assert out["mode"] == "hot-budget" and out["state"] == "building"
    assert out["hot"]["documents"] == 2 and out["hot"]["written"] == 2
    assert out["hot"]["reads_total"] == 3
    assert out["hot"]["traffic_share"] == pytest.approx(2 / 3)
    text = cli_ws.run("backfill", "docs", "--priority", "hot", "--budget-docs", "3",
                      ok=True).out
    assert "most read first" in text and "100.0% of 3 observed reads" in text
    res = cli_ws.run("backfill", "docs", "--json", ok=True)
    assert res.json()["state"] == "ready" and res.json()["skipped"] == 3


# ----------------------------------------------------------------------------- crash

SEED = int(os.environ.get("VECVER_CRASH_SEED", str(time.time_ns() % 1_000_000)))


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_kill_9_in_the_hot_phase_resumes_there(tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}:hot")
    print(f"VECVER_CRASH_SEED={SEED}")
    ws = CliWorkspace(tmp_path / "ws")
    ws.root.mkdir()
    ws.write_config(hash_config())
    n = 3000
    docs = make_docs(n)
    ws.run("ingest", "docs", ws.jsonl("d.jsonl", docs), ok=True)
    hot = rng.sample([d["id"] for d in docs], 2000)
    m = Manifest(str(ws.root / "vecver.db"))
    m.record_reads("docs", {i: 5000 - r for r, i in enumerate(hot)})
    m.close()
    seen = []
    watch = Manifest(str(ws.root / "vecver.db"))

    def hot_done() -> int | None:
        row = watch.namespace_for("docs", "v2")
        ck = watch.checkpoint(row.name) if row else None
        h = ck.stats.get("hot") if ck else None
        return None if h is None else int(h["done"])

    try:
        before = 0
        for attempt in range(2):
            # killed once the hot phase is past a random point beyond where it resumed
            target = before + rng.randrange(50, 700)
            proc = ws.popen("-q", "migrate", "docs", "--to", "v2", "--priority", "hot",
                            "--batch-size", "16")
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                done = hot_done()
                if done is not None and done >= target:
                    break
                time.sleep(0.01)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            assert "Traceback" not in err, err
            row = watch.namespace_for("docs", "v2")
            assert row is not None
            ck = watch.checkpoint(row.name)
            assert ck is not None
            h = ck.stats["hot"]
            seen.append(f"attempt {attempt}: rc={proc.returncode} target={target} "
                        f"hot done={h['done']} finished={h['finished']}")
            # the position is exact: what it handled is written (or current) in v2
            assert h["written"] + h["skipped"] + h["absent"] == h["done"]
            assert h["done"] >= before  # resumed where it was, not from the start
            assert ck.cursor is None or h["finished"]  # the usual pass waits for it
            before = h["done"]
    finally:
        watch.close()
    print("\n".join(seen))
    out = ws.run("-q", "backfill", "docs", "--space", "v2", "--batch-size", "16", "--json",
                 ok=True).json()
    assert out["state"] == "ready", out
    if out["hot"] is not None:
        assert out["hot"]["done"] == out["hot"]["documents"] == 2000
    rep = ws.run("verify", "docs", "--json", ok=True).json()
    assert rep["clean"] is True, json.dumps(rep, indent=1)
    with ws.open() as w:
        row = w.manifest.namespace_for("docs", "v2")
        assert row is not None and row.state == "ready"
        be = w.backend_for(row)
        assert be.count(row.name) == n
        texts = {d["id"]: d["text"] for d in docs}
        have = be.fetch(row.name, list(texts))
        assert set(have) == set(texts)
        assert all(have[i].stamp.source_hash == source_hash(texts[i]) for i in texts)
        art = w.manifest.artifact(HOT_ARTIFACT, "docs", row.name)
        assert art is not None
        order = [i for i, _ in json.loads(art.data)]
        assert order == hot  # the snapshot is the read order, most read first
