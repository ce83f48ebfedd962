"""A complete migration through the Python API, on the local backend, in a few seconds.

Uses the built-in `hash` embedder so that it needs no model; swap the spaces for
`onnx-minilm` / `sentence-transformers` ones (see README.md) for real models.

    python examples/quickstart.py [WORKDIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import vecver

CONFIG = """
[manifest]
path = "vecver.db"

[backend]
name = "local"
path = "vectors"

[spaces.v1]
embedder = "hash"
dimension = 64

[spaces.v2]
embedder = "hash"
dimension = 128
options = { bigrams = true }

[collections.notes]
space = "v1"

[gate]
min_ann_recall = 0.9
"""


def main() -> None:
    workdir = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="vecver-"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "vecver.toml").write_text(CONFIG)
    with vecver.open(workdir / "vecver.toml", progress=False) as ws:
        notes = ws.collection("notes")  # declared in the config: created in v1
        notes.upsert(
            {"id": f"n{i}", "text": f"note {i} about {topic}", "metadata": {"topic": topic}}
            for i, topic in enumerate(["cats", "dogs", "birds", "fish"] * 250)
        )
        print("plan:", vecver.plan(ws, "notes", "v2").to_dict())

        report = vecver.migrate(ws, "notes", "v2")  # dual-write on, backfill, verify
        print(f"backfill: {report.written} written, state {report.state}")

        notes.upsert([{"id": "n-new", "text": "a note written during the migration"}])
        notes.delete(["n0"])  # tombstoned first: no backfill can bring it back

        evaluation = vecver.evaluate(ws, "notes")
        for s in evaluation.spaces:
            print(f"  {s.space}: ANN recall@{s.k} {s.ann_recall:.3f}, p50 {s.latency_p50_ms:.2f}ms")

        gate = vecver.cutover(ws, "notes").gate  # every check the gate made, and how it went
        print("cutover gate:", "; ".join(str(c) for c in gate.checks) if gate else "not checked")
        hits = notes.search("dogs", k=3, filter=vecver.F.eq("topic", "dogs"))
        print("served by", {h.space for h in hits}, [h.id for h in hits])

        vecver.rollback(ws, "notes")
        print("after rollback, served by", notes.search("dogs", k=1)[0].space)
    print(f"workspace left in {workdir}: vecver --config {workdir / 'vecver.toml'} status")


if __name__ == "__main__":
    main()
