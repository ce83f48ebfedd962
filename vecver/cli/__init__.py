"""The ``vecver`` command line, built over :mod:`vecver.command`.

Exit codes: 0 success; 2 bad input or usage; 3 refused by the lifecycle or the gate
(not ready, gate failed, no previous space, lease held); 4 configuration or manifest
problem; 1 any other error. Every refusal or error prints one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import command
from ..config import DEFAULT_NAME, Config
from ..errors import (
    ConfigError,
    InvalidInput,
    ManifestError,
    StateError,
    UnknownCollection,
    UnknownSpace,
    VecverError,
)


def _doc(fn: Any) -> str:
    """The first sentence of a verb's docstring, for the verb list."""
    text = " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())
    return text.split(". ")[0].rstrip(".").replace("``", "")


def _load(args: argparse.Namespace) -> Config:
    if args.config:
        return Config.load(args.config)
    return Config.find()


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.quiet else None


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


# ----------------------------------------------------------------------------- verbs


def cmd_init(args: argparse.Namespace) -> int:
    res = command.init(args.config or DEFAULT_NAME)
    if res["wrote_config"]:
        print(f"wrote {res['config']}")
    print(f"manifest {res['manifest']}; collections created: {', '.join(res['created']) or '-'}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    res = command.ingest(_load(args), args.collection, args.file, space=args.space,
                         batch_size=args.batch_size, progress=_progress(args))
    print(f"ingested {res['documents']} documents into {args.collection} "
          f"(spaces: {', '.join(res['spaces']) or '-'}) in {res['seconds']:.1f}s")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    res = command.status(_load(args))
    if args.json:
        _print_json(res)
        return 0
    if not res["collections"]:
        print("no collections")
    for c in res["collections"]:
        print(f"collection {c['name']}: active {c['active']}, tombstones {c['tombstones']},"
              f" pending writes {c['pending_writes']}")
        rows = [
            [s["label"], s["state"], s["count"], s["fingerprint"][:12],
             (f"{s['backfill']['done']}" + (" (finished)" if s["backfill"]["finished"] else ""))
             if s["backfill"] else "-"]
            for s in c["spaces"]
        ]
        print(_table(rows, ["space", "state", "vectors", "fingerprint", "backfilled"]))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    rep = command.plan(_load(args), args.collection, args.to)
    if args.json:
        _print_json(rep.to_dict())
        return 0
    print(f"plan {rep.collection} -> {rep.to} (fingerprint {rep.fingerprint[:12]})")
    print(f"  documents          {rep.documents} ({rep.already_done} already in the space)")
    print(f"  to embed           {rep.to_embed}")
    print(f"  embedding rate     {rep.embed_rate:,.1f} docs/s (measured on {rep.sample_size})")
    print(f"  estimated time     {rep.estimated_seconds:,.0f} s")
    print(f"  estimated storage  {rep.estimated_bytes / 1e6:,.1f} MB "
          f"(vectors {rep.vector_bytes / 1e6:,.1f} MB, text {rep.text_bytes / 1e6:,.1f} MB)")
    if rep.same_geometry_as_active:
        print("  note: same fingerprint as the active space; nothing would change")
    return 0


def _print_backfill(rep: Any) -> None:
    v = rep.verify
    print(
        f"backfill {rep.collection} -> {rep.space}: {rep.scanned} scanned, {rep.written} "
        f"embedded and written, {rep.skipped} already present, {rep.removed} removed "
        f"(deleted meanwhile), {rep.refreshed} refreshed, {rep.reconciled} reconciled, "
        f"{rep.seconds:.1f}s ({rep.rate:,.0f} docs/s); state {rep.state}"
        + (" (resumed)" if rep.resumed else "")
    )
    if v is not None and not v.clean:
        print(f"  not clean: missing {v.missing}, stale {v.stale}, extra {v.extra}, "
              f"wrongly stamped {v.wrongly_stamped}, unexpected {v.unexpected}")


def _backfill_exit(rep: Any) -> int:
    if rep.state == "ready":
        return 0
    print(f"vecver: the backfill of {rep.space!r} did not verify clean, so it stays "
          f"{rep.state}; run `vecver backfill {rep.collection}` again or "
          f"`vecver verify {rep.collection}`", file=sys.stderr)
    return 1


def cmd_migrate(args: argparse.Namespace) -> int:
    rep = command.migrate(_load(args), args.collection, args.to, source=args.source,
                          batch_size=args.batch_size, progress=_progress(args))
    if args.json:
        _print_json(rep.to_dict())
    else:
        _print_backfill(rep)
    return _backfill_exit(rep)


def cmd_backfill(args: argparse.Namespace) -> int:
    rep = command.backfill(_load(args), args.collection, space=args.space, source=args.source,
                           batch_size=args.batch_size, restart=args.restart,
                           progress=_progress(args))
    if args.json:
        _print_json(rep.to_dict())
    else:
        _print_backfill(rep)
    return _backfill_exit(rep)


def cmd_verify(args: argparse.Namespace) -> int:
    res = command.verify(_load(args), args.collection, repair=args.repair)
    if args.json:
        _print_json(res)
    else:
        rows = [
            [s["space"], s["state"], s["expected"], s["present"], s["missing"], s["stale"],
             s["extra"], s["wrongly_stamped"], s["unexpected"], s["repaired"],
             "yes" if s["clean"] else "NO"]
            for s in res["spaces"]
        ]
        print(_table(rows, ["space", "state", "expected", "present", "missing", "stale",
                            "extra", "wrong stamp", "unexpected", "repaired", "clean"]))
    if res["clean"] or args.repair:
        return 0
    pending = res.get("pending_writes", 0)
    why = f" ({pending} unfinished writes, e.g. of a crashed process)" if pending else ""
    print(f"vecver: verify: {args.collection} is not consistent{why}; see the report above, "
          f"then `vecver verify {args.collection} --repair`", file=sys.stderr)
    return 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    rep = command.evaluate(_load(args), args.collection, queries=args.queries, k=args.k,
                           sample=args.sample)
    if args.json:
        _print_json(rep.to_dict())
        return 0
    print(evaluation_table(rep.to_dict()))
    return 0


def evaluation_table(rep: dict[str, Any]) -> str:
    k = rep["k"]
    rows = []
    for s in rep["spaces"]:
        rel = s["relevance"] or {}
        rows.append([s["space"], s["state"], s["documents"], s["ann_recall"],
                     rel.get("recall"), rel.get("mrr"), rel.get("ndcg"),
                     s["overlap_with_active"], s["latency_p50_ms"], s["latency_p99_ms"]])
    return _table(rows, ["space", "state", "docs", f"ANN recall@{k}", f"recall@{k}",
                         f"MRR@{k}", f"nDCG@{k}", f"overlap@{k}", "p50 ms", "p99 ms"])


def cmd_cutover(args: argparse.Namespace) -> int:
    rep = command.cutover(_load(args), args.collection, to=args.to, force=args.force)
    forced = " (forced, gate not checked)" if rep.forced else ""
    print(f"{rep.collection}: cut over from {rep.from_space} to {rep.to_space}{forced}")
    for g in rep.gate:
        print(f"  gate: {g}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    rep = command.rollback(_load(args), args.collection)
    print(f"{rep.collection}: rolled back from {rep.from_space} to {rep.to_space}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    res = command.history(_load(args), args.collection)
    if args.json:
        _print_json(res)
        return 0
    for e in res["events"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"]))
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e["detail"].items())
                           if not isinstance(v, (dict, list)))
        print(f"{when}  {e['kind']:<22} {e['actor']}  {detail}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    flt = json.loads(args.filter) if args.filter else None
    hits = command.search(_load(args), args.collection, args.query, k=args.k, route=args.route,
                          filter=flt)
    if args.json:
        _print_json(hits)
        return 0
    for n, h in enumerate(hits, 1):
        text = h["text"].replace("\n", " ")[:80]
        print(f"{n:>3}. {h['score']:.4f}  {h['id']}  [{h['space']}]  {text}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(args.workdir, quiet=args.quiet, limit=args.limit)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vecver",
        description="Versioned embedding spaces: safe, resumable, reversible embedding-model "
        "migrations for vector databases.",
    )
    p.add_argument("--config", "-c", help=f"config file (default: ./{DEFAULT_NAME})")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument("--verbose", "-v", action="store_true", help="log details to stderr")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, fn: Any, handler: Any) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=_doc(fn),
                            description=(fn.__doc__ or "").strip().replace("``", ""))
        sp.set_defaults(handler=handler)
        return sp

    verb("init", command.init, cmd_init)
    sp = verb("ingest", command.ingest, cmd_ingest)
    sp.add_argument("collection")
    sp.add_argument("file", help="JSONL: one {id, text, metadata?} per line")
    sp.add_argument("--space", help="space of a new collection")
    sp.add_argument("--batch-size", type=int)
    sp = verb("status", command.status, cmd_status)
    sp.add_argument("--json", action="store_true")
    sp = verb("plan", command.plan, cmd_plan)
    sp.add_argument("collection")
    sp.add_argument("--to", required=True, metavar="SPACE")
    sp.add_argument("--json", action="store_true")
    sp = verb("migrate", command.migrate, cmd_migrate)
    sp.add_argument("collection")
    sp.add_argument("--to", required=True, metavar="SPACE")
    sp.add_argument("--source", help="JSONL to backfill from (default: the active space)")
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--json", action="store_true")
    sp = verb("backfill", command.backfill, cmd_backfill)
    sp.add_argument("collection")
    sp.add_argument("--space", help="the space being built (when there are several)")
    sp.add_argument("--source", help="JSONL to backfill from (must match the checkpoint)")
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--restart", action="store_true", help="ignore the checkpoint")
    sp.add_argument("--json", action="store_true")
    sp = verb("verify", command.verify, cmd_verify)
    sp.add_argument("collection")
    sp.add_argument("--repair", action="store_true")
    sp.add_argument("--json", action="store_true")
    sp = verb("evaluate", command.evaluate, cmd_evaluate)
    sp.add_argument("collection")
    sp.add_argument("--queries", help="JSONL: one {query, relevant: [ids]} per line")
    sp.add_argument("-k", type=int)
    sp.add_argument("--sample", type=int, default=100, help="queries for ANN recall")
    sp.add_argument("--json", action="store_true")
    sp = verb("cutover", command.cutover, cmd_cutover)
    sp.add_argument("collection")
    sp.add_argument("--to", metavar="SPACE")
    sp.add_argument("--force", action="store_true", help="skip the evaluation gate")
    sp = verb("rollback", command.rollback, cmd_rollback)
    sp.add_argument("collection")
    sp = verb("history", command.history, cmd_history)
    sp.add_argument("collection")
    sp.add_argument("--json", action="store_true")
    sp = verb("search", command.search, cmd_search)
    sp.add_argument("collection")
    sp.add_argument("query")
    sp.add_argument("-k", type=int, default=10)
    sp.add_argument("--route", default="active", help="active, candidate or space:LABEL")
    sp.add_argument("--filter", help='JSON, e.g. {"topic": "sport", "year": {"gte": 2020}}')
    sp.add_argument("--json", action="store_true")
    from ..demo import run_demo

    sp = sub.add_parser("demo", help=_doc(run_demo), description=(run_demo.__doc__ or "").strip())
    sp.set_defaults(handler=cmd_demo)
    sp.add_argument("--workdir", default="vecver-demo")
    sp.add_argument("--limit", type=int, default=None, help="use only the first N articles")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="vecver: %(levelname)s: %(message)s",
    )
    try:
        rc = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return rc
    except BrokenPipeError:
        # the reader went away (`vecver history docs --json | head`): stop quietly
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by it
    except (InvalidInput, UnknownCollection, UnknownSpace) as e:
        print(f"vecver: error: {e}", file=sys.stderr)
        return 2
    except StateError as e:
        print(f"vecver: refused: {e}", file=sys.stderr)
        return 3
    except (ConfigError, ManifestError) as e:
        print(f"vecver: error: {e}", file=sys.stderr)
        return 4
    except VecverError as e:
        print(f"vecver: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vecver: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except json.JSONDecodeError as e:
        print(f"vecver: error: invalid JSON: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
