"""Helpers for the end-to-end tests that drive the real ``vecver`` CLI in subprocesses
(tests/test_cli.py, tests/test_crash.py). The fixtures built on them live in conftest.py.

Every workspace uses the ``hash`` embedder (fast, deterministic, no model files) and the
``local`` backend (hnswlib + SQLite), so several processes can share it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the CLI as a module: ``python -m vecver.cli ARGS``
CLI = (sys.executable, "-m", "vecver.cli")

GATE_LENIENT = """\
[gate]
min_ann_recall = 0.5
metric = "mrr"
max_regression = 0.05
k = 10
"""


def hash_config(
    *,
    backend: str = "local",
    v2: str = "options = { seed = 1 }",
    gate: str = GATE_LENIENT,
    extra: str = "",
    collection: str = "docs",
) -> str:
    """A vecver.toml over the hash embedder: v1 (dim 64), v2 (dim 64, another seed by
    default, so another fingerprint) and v3 (dim 96)."""
    return f"""\
[manifest]
path = "vecver.db"

[backend]
name = "{backend}"
path = "vectors"

[spaces.v1]
embedder = "hash"
dimension = 64

[spaces.v2]
embedder = "hash"
dimension = 64
{v2}

[spaces.v3]
embedder = "hash"
dimension = 96
options = {{ seed = 3 }}

[collections.{collection}]
space = "v1"

{gate}
{extra}"""


_WORDS = [
    "market", "stock", "bond", "rate", "bank", "match", "goal", "team", "league", "coach",
    "planet", "orbit", "rocket", "star", "comet", "virus", "cell", "gene", "protein", "drug",
    "court", "judge", "law", "vote", "party", "movie", "actor", "song", "album", "stage",
    "river", "mountain", "forest", "ocean", "storm", "engine", "battery", "chip", "robot",
    "code", "bread", "cheese", "wine", "garden", "harvest", "train", "bridge", "tunnel",
]


def make_docs(
    n: int, *, seed: int = 0, prefix: str = "d", start: int = 0, words: int = 24
) -> list[dict[str, Any]]:
    """``n`` documents ``{id, text, metadata}`` with ids ``<prefix><number:06d>``; each text
    mixes common words with a rare word unique to the document, so that searching a
    document's own text finds it first."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        body = " ".join(rng.choice(_WORDS) for _ in range(words))
        out.append({
            "id": f"{prefix}{i:06d}",
            "text": f"{body} uniq{prefix}{i}x{seed} tag{prefix}{i}y{seed}",
            "metadata": {"n": i, "topic": _WORDS[i % 7]},
        })
    return out


def write_jsonl(path: Path, docs: Iterable[Mapping[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    return path


@dataclass
class Result:
    args: Sequence[str]
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return (f"vecver {' '.join(self.args)} -> {self.rc}\n--- stdout\n{self.out}\n"
                f"--- stderr\n{self.err}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class CliWorkspace:
    """A directory with a vecver.toml; runs the CLI against it."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "vecver.toml"

    def write_config(self, text: str, name: str = "vecver.toml") -> Path:
        p = self.root / name
        p.write_text(text, encoding="utf-8")
        return p

    def jsonl(self, name: str, docs: Iterable[Mapping[str, Any]]) -> Path:
        return write_jsonl(self.root / name, docs)

    def argv(
        self, args: Sequence[Any], config: str | os.PathLike[str] | None = "default"
    ) -> list[str]:
        pre: list[str] = []
        if config == "default":
            pre = ["--config", str(self.config)]
        elif config is not None:
            pre = ["--config", str(config)]
        return [*CLI, *pre, *[str(a) for a in args]]

    def run(
        self,
        *args: Any,
        config: str | os.PathLike[str] | None = "default",
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 120,
        ok: bool | None = None,
    ) -> Result:
        """Run ``vecver ARGS``; ``ok=True`` asserts exit 0, ``ok=False`` asserts a refusal
        (non-zero exit, exactly one line on stderr, no traceback)."""
        argv = self.argv(args, config)
        p = subprocess.run(
            argv, cwd=cwd or self.root, capture_output=True, text=True, timeout=timeout,
            env=_env(), stdin=subprocess.DEVNULL,
        )
        res = Result([str(a) for a in args], p.returncode, p.stdout, p.stderr)
        if ok is True:
            assert res.rc == 0, str(res)
        elif ok is False:
            assert res.rc != 0, str(res)
            assert len(res.err_lines) == 1, str(res)
            assert "Traceback" not in res.err, str(res)
            assert res.err_lines[0].startswith("vecver: "), str(res)
        return res

    def popen(self, *args: Any, config: str | None = "default") -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(args, config), cwd=self.root, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=_env(), stdin=subprocess.DEVNULL,
        )

    def status(self) -> dict[str, Any]:
        res = self.run("status", "--json", ok=True)
        data: dict[str, Any] = res.json()
        return data

    def collection_status(self, name: str = "docs") -> dict[str, Any] | None:
        for c in self.status()["collections"]:
            if c["name"] == name:
                return dict(c)
        return None

    def spaces(self, name: str = "docs") -> dict[str, dict[str, Any]]:
        c = self.collection_status(name)
        assert c is not None, f"collection {name} absent"
        return {s["label"]: s for s in c["spaces"]}

    def open(self) -> Any:
        """The Python API's workspace on the same files."""
        import vecver.runtime.workspace

        return vecver.runtime.workspace.Workspace(str(self.config), progress=False)
