"""``vecver stats``: the read-path metrics of a collection (:mod:`vecver.read.metrics`).

The same rules as :mod:`vecver.command`: the signature is the command line, the
docstring its help; the result has ``to_dict()`` (what ``--json`` prints); nothing is
printed here.
"""

from __future__ import annotations

import os
from typing import Any

from ..cli.render import Renderer, fmt, table
from ..config import Config
from ..errors import InvalidArgument
from ..read.metrics import CollectionStats, write_prometheus_textfile
from ..read.metrics import stats as _stats
from ..runtime.workspace import Workspace


def stats(config: Config, collection: str, *, textfile: str | None = None) -> CollectionStats:
    """Read-path metrics of a collection: queries and latency per route, the
    mixed-version retrieval rate, the share of hits each space served, the lazy
    re-embedding queue and the backfill progress.

    Counted by every process that searched the collection (written to the manifest every
    [lazy] flush_interval seconds). Loads no model.

    :param collection: the collection.
    :param textfile: also write the metrics in the Prometheus text format to this file
        (atomically; for the node exporter's textfile collector). Needs prometheus-client
        (the vecver[metrics] extra).
    :metavar textfile: FILE
    """
    if textfile is not None and (not isinstance(textfile, str) or not textfile.strip()):
        raise InvalidArgument("textfile", textfile, "a file path")
    with Workspace(config, progress=False) as ws:
        result = _stats(ws, collection)
        if textfile is not None:
            parent = os.path.dirname(os.path.abspath(textfile))
            if not os.path.isdir(parent):
                raise InvalidArgument("textfile", textfile,
                                      "a path in an existing directory")
            write_prometheus_textfile(ws, textfile, [collection])
        return result


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _text_stats(r: CollectionStats) -> str:
    lines = [f"collection {r.collection}: active {r.active}; reads counted on "
             f"{r.read_documents} documents ({r.read_total} reads)"]
    if r.routes:
        rows: list[list[Any]] = []
        for s in r.routes:
            share = ", ".join(f"{k} {_pct(v)}" for k, v in s.hit_share.items()) or "-"
            rows.append([s.route, s.queries, s.result_lists, _pct(s.mixed_rate), share,
                         s.latency_p50_ms, s.latency_p99_ms])
        lines.append(table(rows, ["route", "queries", "lists", "mixed", "hits by space",
                                  "p50 ms", "p99 ms"]))
    else:
        lines.append("no searches counted yet")
    lz = r.lazy
    lines.append(
        f"lazy queue: {lz.pending} pending, {lz.leased} leased (limit {lz.limit}); "
        f"noticed {lz.noticed}, queued {lz.enqueued}, deduplicated {lz.deduplicated}, "
        f"dropped {lz.dropped}, re-embedded on read {lz.sync_embedded}, drained "
        f"{lz.drained} ({fmt(lz.drain_rate)} docs/s)"
    )
    for b in r.backfill:
        lines.append(f"backfill {b.space} ({b.state}): {b.present}/{b.expected} documents "
                     f"({_pct(b.progress)})" + (" finished" if b.finished else ""))
    return "\n".join(lines)


RENDERERS: dict[str, Renderer] = {"stats": Renderer(_text_stats)}
