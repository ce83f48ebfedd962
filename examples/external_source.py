"""Backfill a new space from your own database instead of the vectors' stored text.

Any re-iterable that yields the same documents in the same order works; the checkpoint
counts documents, so a crashed backfill resumes where it stopped. Writes that go through
vecver meanwhile (upsert/delete) always win over the rows read here.

    python examples/external_source.py WORKDIR   # a workdir made by quickstart.py
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import vecver


class Rows:
    """Rows of a SQL table, in primary-key order (stable across runs)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rows = self.db.execute("SELECT id, body, topic FROM notes ORDER BY id")
        for doc_id, body, topic in rows:
            yield {"id": doc_id, "text": body, "metadata": {"topic": topic}}

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM notes").fetchone()[0])


def main() -> None:
    workdir = Path(sys.argv[1])
    cfg = workdir / "vecver.toml"
    if "[spaces.v3]" not in cfg.read_text():
        with cfg.open("a") as f:  # a third space to migrate to
            f.write('\n[spaces.v3]\nembedder = "hash"\ndimension = 96\noptions = { seed = 5 }\n')
    with vecver.open(cfg) as ws:
        notes = ws.collection("notes")
        db = sqlite3.connect(":memory:", check_same_thread=False)  # read by the backfill thread
        db.execute("CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT, topic TEXT)")
        for doc_id, rec in notes.get([f"n{i}" for i in range(1000)]).items():
            db.execute(
                "INSERT INTO notes VALUES (?,?,?)", (doc_id, rec.text, rec.metadata.get("topic"))
            )
        source = vecver.IterableSource(Rows(db), name="notes-table")
        report = vecver.migrate(ws, "notes", "v3", source=source)
        print(f"v3 from the table: {report.written} written, {report.reconciled} reconciled from "
              f"the active space (documents the table lacks), state {report.state}")


if __name__ == "__main__":
    main()
