"""Run one bench command against several vecver trees, interleaved, in one run:

    python bench/ab_trees.py --tree before=/tmp/base --tree after=/tmp/after --rounds 3 \
        --out bench/results/x.txt -- python bench/db_bench.py --engines qdrant \
        --only-backfill --rounds 1 --out -

Each round runs the command once per tree (``VECVER_SRC`` set to the tree; the order
rotates from round to round, so that neither tree always runs first on a machine whose
load drifts), each run in its own process. Every line of a run's output that holds the
word ``ratio`` is a figure: its numbers are collected by line (the numbers replaced by
``#`` name the figure, and the n-th number of the line is figure n of it). Printed: every
run's output, then per figure the median over the rounds for each tree and the rounds'
values. A tree is the root of a checkout (the folder holding ``vecver/``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TextIO

_NUMBER = re.compile(r"[-+]?\d+\.\d+|[-+]?\d+")


def figures(output: str) -> dict[str, list[float]]:
    """The numbers of every line that mentions a ratio, by the line's shape."""
    out: dict[str, list[float]] = {}
    for line in output.splitlines():
        if "ratio" not in line:
            continue
        shape = _NUMBER.sub("#", line.strip())
        shape = re.sub(r"\s+", " ", shape)
        out[shape] = [float(x) for x in _NUMBER.findall(line)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", action="append", required=True,
                    help="LABEL=PATH (repeat: two or more trees)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, help="results file (besides stdout)")
    ap.add_argument("command", nargs=argparse.REMAINDER,
                    help="after --: the bench command (run in the current directory)")
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        raise SystemExit("give the bench command after --")
    trees: list[tuple[str, str]] = []
    for t in args.tree:
        label, sep, path = t.partition("=")
        if not sep or not (Path(path) / "vecver" / "__init__.py").is_file():
            raise SystemExit(f"--tree {t!r}: expected LABEL=PATH with PATH/vecver/__init__.py")
        trees.append((label, str(Path(path).resolve())))
    sink: TextIO | None = args.out.open("w", encoding="utf-8") if args.out else None

    def say(text: str = "") -> None:
        print(text, flush=True)
        if sink is not None:
            sink.write(text + "\n")
            sink.flush()

    now = datetime.datetime.now(datetime.timezone.utc)
    say(f"# ab_trees.py, {now:%Y-%m-%d %H:%M} UTC; load {os.getloadavg()}")
    say("# command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    say("# trees: " + ", ".join(f"{label}={path}" for label, path in trees))
    got: dict[str, dict[str, list[list[float]]]] = {label: {} for label, _ in trees}
    for r in range(args.rounds):
        shift = r % len(trees)
        for label, path in trees[shift:] + trees[:shift]:
            env = dict(os.environ, VECVER_SRC=path)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            say(f"\n--- round {r + 1}, {label} (exit {proc.returncode}, load "
                f"{os.getloadavg()[0]:.2f}) ---")
            say(proc.stdout.rstrip())
            if proc.returncode != 0:
                say(proc.stderr[-4000:])
                raise SystemExit(f"the run of {label} failed")
            for shape, nums in figures(proc.stdout).items():
                got[label].setdefault(shape, []).append(nums)
    say(f"\n== medians over {args.rounds} rounds (per figure: each tree's median, then "
        "its rounds)")
    first = trees[0][0]
    for shape in got[first]:
        say(f"\n{shape}")
        for label, _ in trees:
            rounds = got[label].get(shape, [])
            if not rounds:
                continue
            cols = list(zip(*rounds, strict=False))
            meds = [statistics.median(c) for c in cols]
            say(f"  {label:>10s}: median " + " ".join(f"{m:.3f}" for m in meds)
                + "   rounds " + " | ".join(" ".join(f"{x:.3f}" for x in nums)
                                           for nums in rounds))
    say(f"\n# load at end {os.getloadavg()}")
    if sink is not None:
        sink.close()


if __name__ == "__main__":
    main()
